//! Live objects as manifests, for `import`: the inverse of `desired`, by the naming rule of
//! design.md (wire snake_case -> camelCase, a secret field `x` -> `xRef` to a Secret). Output-only
//! fields are dropped, secret values are never written (each becomes a reference to a Secret
//! this module names), and every manifest is read back through the model's types, so that what
//! is written is what `plan` reads. Planning the result against the same live state shows no
//! changes.

use super::diff::is_default;
use crate::model::{
    API_VERSION, ConversationAppSpec, DEFAULT_NAMESPACE, Kind, ProjectSettingsSpec, Region, TemplateSpec, WebhookSpec,
};
use crate::sinch::app::App;
use crate::sinch::settings::ProjectSettings;
use crate::sinch::template::{LATEST, Template};
use crate::sinch::webhook::Webhook;
use crate::sinch::{Descriptor, Wire};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// What one region holds.
#[derive(Clone, Debug, Default)]
pub struct RegionLive {
    pub apps: Vec<(App, Vec<Webhook>)>,
    pub templates: Vec<Template>,
    pub settings: Option<ProjectSettings>,
}

/// One file to write: its path below the output directory and its YAML.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub path: String,
    pub yaml: String,
}

#[derive(Clone, Debug, Default)]
pub struct Imported {
    pub files: Vec<File>,
    /// Secret name -> the keys the manifests refer to: what must exist before `apply`.
    pub secrets: BTreeMap<String, BTreeSet<String>>,
    pub counts: BTreeMap<Kind, usize>,
    /// Objects that the model cannot express (say, a channel newer than this tool).
    pub skipped: Vec<String>,
}

/// Names unique across the whole import (validate refuses two objects of one kind and name).
#[derive(Default)]
struct Names(BTreeSet<(Kind, String)>);

impl Names {
    fn take(&mut self, kind: Kind, wanted: &str, region: Region) -> String {
        let base = slug(wanted);
        let mut candidates = vec![base.clone(), slug(&format!("{base}-{region}"))];
        candidates.extend((2..).take(1000).map(|n| slug(&format!("{base}-{region}-{n}"))));
        let name = candidates
            .into_iter()
            .find(|c| !self.0.contains(&(kind, c.clone())))
            .expect("one of a thousand names is free");
        self.0.insert((kind, name.clone()));
        name
    }
}

/// A Kubernetes object name (DNS-1123 label, 63 characters at most) made from any text.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            _ if !out.ends_with('-') => out.push('-'),
            _ => {}
        }
    }
    let out: String = out.trim_matches('-').chars().take(63).collect();
    match out.trim_end_matches('-') {
        "" => "object".into(),
        s => s.to_string(),
    }
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// Secret references made while converting one object.
struct Refs<'a> {
    secret: &'a str,
    /// Put before each key: the channel of a credential, the webhook's name.
    prefix: String,
    keys: Vec<String>,
}

impl Refs<'_> {
    /// For objects with no secret fields (templates, settings).
    fn none() -> Refs<'static> {
        Refs {
            secret: "",
            prefix: String::new(),
            keys: Vec::new(),
        }
    }
}

/// Wire JSON in the model's spelling. Message bodies (other than media) are free-form and kept as
/// they are, and so are the keys of maps that hold user data (channel names, parameters).
fn convert(fields: &Descriptor, value: &Value, refs: &mut Refs) -> Value {
    let Value::Object(map) = value else {
        return match value {
            Value::Array(items) => Value::Array(items.iter().map(|v| convert(fields, v, refs)).collect()),
            v => v.clone(),
        };
    };
    let mut out = Map::new();
    for (k, v) in map {
        // A webhook's app is its manifest's appRef, not a field of its spec.
        if fields.is_output_only(k) || k == "app_id" {
            continue;
        }
        if fields.is_secret(k) {
            if v.as_str().is_some_and(|s| !s.is_empty()) {
                let key = format!("{}{}", refs.prefix, k.replace('_', "-"));
                out.insert(format!("{}Ref", camel(k)), json!({"name": refs.secret, "key": key}));
                refs.keys.push(key);
            }
            continue;
        }
        let converted = match k.as_str() {
            "parameters" | "parameter_mappings" => v.clone(),
            k if k.ends_with("_message") && k != "media_message" => v.clone(),
            "channel_template_overrides" => match v {
                Value::Object(o) => Value::Object(
                    o.iter()
                        .map(|(ch, ov)| (ch.clone(), convert(fields, ov, refs)))
                        .collect(),
                ),
                v => v.clone(),
            },
            "channel_credentials" => match v {
                Value::Array(items) => Value::Array(
                    items
                        .iter()
                        .map(|item| {
                            let saved = refs.prefix.clone();
                            let channel = item.get("channel").and_then(Value::as_str).unwrap_or("channel");
                            refs.prefix = match item.get("credential_ordinal_number").and_then(Value::as_i64) {
                                Some(n) if n != 0 => format!("{saved}{}-{n}-", slug(channel)),
                                _ => format!("{saved}{}-", slug(channel)),
                            };
                            let out = convert(fields, item, refs);
                            refs.prefix = saved;
                            out
                        })
                        .collect(),
                ),
                v => v.clone(),
            },
            _ => convert(fields, v, refs),
        };
        // proto3 defaults (`0`, `false`, `""`) mean "not set": writing them would declare
        // values, some of them out of the model's range, that nobody chose.
        if !is_default(&converted) {
            out.insert(camel(k), converted);
        }
    }
    Value::Object(out)
}

fn manifest(kind: Kind, name: &str, spec: Value) -> String {
    let doc = json!({"apiVersion": API_VERSION, "kind": kind.name(), "metadata": {"name": name}, "spec": spec});
    serde_yaml::to_string(&doc).expect("JSON values always serialise as YAML")
}

/// Reads `spec` through the model's type `T` (dropping what the model does not have) and back.
fn through<T: serde::de::DeserializeOwned + serde::Serialize>(spec: Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(spec).map_err(|e| e.to_string())?;
    Ok(serde_json::to_value(typed).expect("model types always serialise"))
}

/// The manifests of everything in `regions` (in the order given).
pub fn manifests(regions: &[(Region, RegionLive)]) -> Imported {
    let mut names = Names::default();
    let mut out = Imported::default();
    for (region, live) in regions {
        for (app, webhooks) in &live.apps {
            out.app(&mut names, *region, app, webhooks);
        }
        for t in &live.templates {
            out.template(&mut names, *region, t);
        }
        if let Some(settings) = &live.settings {
            out.settings(&mut names, *region, settings);
        }
    }
    out.secrets.retain(|_, keys| !keys.is_empty());
    out
}

impl Imported {
    fn count(&mut self, kind: Kind) {
        let n = self.counts.entry(kind).or_default();
        *n = n.saturating_add(1);
    }

    /// An app and, in a file beside it, its webhooks (each an `appRef` to it).
    fn app(&mut self, names: &mut Names, region: Region, app: &App, webhooks: &[Webhook]) {
        let dir = region.as_str();
        let label = format!(
            "app {:?} ({})",
            app.display_name.as_deref().unwrap_or_default(),
            app.id.as_deref().unwrap_or_default()
        );
        let name = names.take(
            Kind::ConversationApp,
            app.display_name.as_deref().unwrap_or("app"),
            region,
        );
        let secret = format!("{name}-credentials");
        let mut refs = Refs {
            secret: &secret,
            prefix: String::new(),
            keys: Vec::new(),
        };
        let mut spec = convert(
            App::FIELDS,
            &serde_json::to_value(app).expect("wire types serialise"),
            &mut refs,
        );
        spec["region"] = json!(region);
        // The id pins identity: two apps of one display name stay two apps.
        spec["appId"] = json!(app.id);
        let spec = match through::<ConversationAppSpec>(spec) {
            Ok(spec) => spec,
            Err(e) => {
                self.skipped.push(format!("{label} in {region}: {e}"));
                return;
            }
        };
        self.secrets.entry(secret.clone()).or_default().extend(refs.keys);
        self.files.push(File {
            path: format!("{dir}/apps/{name}.yaml"),
            yaml: manifest(Kind::ConversationApp, &name, spec),
        });
        self.count(Kind::ConversationApp);
        let mut docs = Vec::new();
        let hook_secret = format!("{name}-webhooks");
        for w in webhooks {
            let target = w.target.as_deref().unwrap_or_default();
            let short = target.split_once("://").map_or(target, |(_, rest)| rest);
            let wname = names.take(Kind::Webhook, &format!("{name}-{short}"), region);
            let mut refs = Refs {
                secret: &hook_secret,
                prefix: format!("{wname}-"),
                keys: Vec::new(),
            };
            let mut spec = convert(
                Webhook::FIELDS,
                &serde_json::to_value(w).expect("wire types serialise"),
                &mut refs,
            );
            spec["appRef"] = json!({"name": name});
            match through::<WebhookSpec>(spec) {
                Ok(spec) => {
                    self.secrets.entry(hook_secret.clone()).or_default().extend(refs.keys);
                    docs.push(manifest(Kind::Webhook, &wname, spec));
                    self.count(Kind::Webhook);
                }
                Err(e) => self
                    .skipped
                    .push(format!("webhook {target} of {label} in {region}: {e}")),
            }
        }
        if !docs.is_empty() {
            self.files.push(File {
                path: format!("{dir}/webhooks/{name}.yaml"),
                yaml: docs.join("---\n"),
            });
        }
    }

    /// A template as stored: its `latest` copies and its version left out.
    fn template(&mut self, names: &mut Names, region: Region, t: &Template) {
        let id = t.id.clone().unwrap_or_default();
        let name = names.take(Kind::Template, &id, region);
        let mut stored = t.clone();
        stored.translations = Some(
            t.stored_translations()
                .filter(|tr| tr.version.as_deref() != Some(LATEST))
                .cloned()
                .collect(),
        );
        stored.version = None;
        let mut refs = Refs::none();
        let mut spec = convert(
            Template::FIELDS,
            &serde_json::to_value(&stored).expect("wire types serialise"),
            &mut refs,
        );
        spec["region"] = json!(region);
        if name != id {
            spec["templateId"] = json!(id);
        }
        match through::<TemplateSpec>(spec) {
            Ok(spec) => {
                self.files.push(File {
                    path: format!("{}/templates/{name}.yaml", region.as_str()),
                    yaml: manifest(Kind::Template, &name, spec),
                });
                self.count(Kind::Template);
            }
            Err(e) => self.skipped.push(format!("template {id} in {region}: {e}")),
        }
    }

    fn settings(&mut self, names: &mut Names, region: Region, settings: &ProjectSettings) {
        let name = names.take(Kind::ProjectSettings, "project-settings", region);
        let mut refs = Refs::none();
        let mut spec = convert(
            ProjectSettings::FIELDS,
            &serde_json::to_value(&settings.settings).expect("wire types serialise"),
            &mut refs,
        );
        spec["region"] = json!(region);
        match through::<ProjectSettingsSpec>(spec) {
            Ok(spec) => {
                self.files.push(File {
                    path: format!("{}/{name}.yaml", region.as_str()),
                    yaml: manifest(Kind::ProjectSettings, &name, spec),
                });
                self.count(Kind::ProjectSettings);
            }
            Err(e) => self.skipped.push(format!("project settings in {region}: {e}")),
        }
    }
}

/// The Secret every imported reference names, with empty values to fill in, so that a person
/// sees exactly what to provide. Written commented out: an empty value would be a real value.
pub fn secrets_template(secrets: &BTreeMap<String, BTreeSet<String>>) -> String {
    let mut out = String::from(
        "# The Secrets the imported manifests refer to. Sinch's secret values are never imported:\n\
         # provide them (here, uncommented, kept out of version control, or in the cluster) before\n\
         # `apply`. Until then `plan` reports them as unresolved and does not compare them.\n",
    );
    for (name, keys) in secrets {
        out.push_str(&format!(
            "#---\n# apiVersion: v1\n# kind: Secret\n# metadata:\n#   name: {name}\n#   namespace: {DEFAULT_NAMESPACE}\n# stringData:\n"
        ));
        for key in keys {
            out.push_str(&format!("#   {key}: \"\"\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_and_unique() {
        assert_eq!(slug("Customer Support (US)"), "customer-support-us");
        assert_eq!(slug("order_shipped"), "order-shipped");
        assert_eq!(slug("!!!"), "object");
        assert_eq!(slug(&"a".repeat(80)).len(), 63);
        let mut names = Names::default();
        assert_eq!(names.take(Kind::ConversationApp, "Shop", Region::Us), "shop");
        assert_eq!(names.take(Kind::ConversationApp, "Shop", Region::Eu), "shop-eu");
        assert_eq!(names.take(Kind::ConversationApp, "Shop", Region::Eu), "shop-eu-2");
        assert_eq!(names.take(Kind::Template, "Shop", Region::Eu), "shop");
    }

    #[test]
    fn secrets_become_references_named_after_their_place_and_output_only_fields_go() {
        let app: App = serde_json::from_value(json!({
            "id": "01A", "display_name": "Shop", "rate_limits": {"outbound": 20},
            "callback_settings": {"secret_for_overridden_callback_urls": "canary-1"},
            "channel_credentials": [
                {"channel": "SMS", "callback_secret": "", "state": {"status": "ACTIVE"}, "channel_known_id": "",
                 "static_bearer": {"claimed_identity": "plan", "token": "canary-2"}},
                {"channel": "LINE", "credential_ordinal_number": 1,
                 "line_enterprise_credentials": {"line_japan": {"token": "********", "secret": "canary-3"}}}
            ]
        }))
        .unwrap();
        let imported = manifests(&[(
            Region::Us,
            RegionLive {
                apps: vec![(app, vec![])],
                ..Default::default()
            },
        )]);
        assert_eq!(imported.files.len(), 1);
        let yaml = &imported.files[0].yaml;
        assert!(!yaml.contains("canary") && !yaml.contains("****"), "{yaml}");
        let doc: Value = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(
            doc["spec"]["channelCredentials"][1]["lineEnterpriseCredentials"]["lineJapan"]["secretRef"],
            json!({"name": "shop-credentials", "key": "line-1-secret"})
        );
        assert_eq!(
            doc["spec"]["channelCredentials"][0],
            json!({"channel": "SMS", "staticBearer": {"claimedIdentity": "plan", "tokenRef": {"name": "shop-credentials", "key": "sms-token"}}})
        );
        assert_eq!(doc["spec"]["appId"], "01A");
        assert!(doc["spec"].get("rateLimits").is_none());
        assert_eq!(
            imported.secrets["shop-credentials"].iter().collect::<Vec<_>>(),
            [
                "line-1-secret",
                "line-1-token",
                "secret-for-overridden-callback-urls",
                "sms-token"
            ]
        );
    }
}
