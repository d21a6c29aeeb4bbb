//! The plan: what would change in Sinch, as plain data. Built from the targets and what
//! `observe` read (no I/O here); shown by the renderers, saved with `--out`, carried out by
//! `execute`. Each change holds the exact request it sends, with secrets as placeholders: a plan
//! never holds a secret value, so any rendering or saved file is safe to share.

use super::desired::{self, SecretUse};
use super::diff::{self, FieldChange, SENSITIVE, SecretPointers};
use super::observe::{Live, Read};
use super::{Scope, Target, identity};
use crate::input::Input;
use crate::model::{
    AppOf, ConversationApp, Kind, Object, ProjectSettings, Region, Template as TemplateObject, WebhookApp, WebhookSpec,
};
use crate::sinch::request::Request;
use crate::sinch::template::{LATEST, Template};
use crate::sinch::webhook::MAX_PER_APP as MAX_WEBHOOKS_PER_APP;
use crate::sinch::webhook::Webhook;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

mod saved;
mod webhooks;

use saved::legacy_fingerprint;
pub use saved::{fingerprint, observed, stale};

pub const FORMAT_VERSION: &str = "1";

/// What the body of a webhook for an app that a change creates says until that change is done.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    Noop,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Plan {
    pub format_version: String,
    pub changes: Vec<Change>,
    pub errors: Vec<PlanError>,
    pub summary: Summary,
    /// What `apply PLANFILE` needs to check and carry out the plan later.
    pub saved: Saved,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Saved {
    /// The `-f` inputs the plan was made from (their Secrets fill the placeholders).
    pub inputs: Vec<String>,
    pub prune: bool,
    /// Keys the fingerprints of this plan.
    pub salt: String,
    /// The Secrets not in the inputs come from the cluster (`--secrets-from-cluster`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secrets_from_cluster: bool,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub unchanged: usize,
}

impl Summary {
    pub fn of(changes: &[Change]) -> Summary {
        let mut summary = Summary::default();
        for c in changes {
            match c.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Delete => summary.delete += 1,
                Action::Noop => summary.unchanged += 1,
            }
        }
        summary
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Change {
    pub kind: Kind,
    /// `namespace/name` of the manifest; for an object no manifest declares (a prune), its
    /// natural key: display name, target or template id.
    pub name: String,
    pub action: Action,
    /// The Sinch id, when known.
    pub id: Option<String>,
    pub project: String,
    pub region: Region,
    pub fields: Vec<FieldChange>,
    /// What is sent; none for `noop`.
    pub request: Option<Request>,
    /// What a person should know: secrets not compared, values kept from Sinch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The placeholders of `request.body` and the Secret keys that fill them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretSlot>,
    /// Changes (indices) that must succeed first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<usize>,
    /// The change (index) creating the app whose id goes into this webhook's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_from: Option<usize>,
    /// A fingerprint of the live object this change was planned from (`absent` when none): a
    /// saved plan is stale when it differs.
    pub observed: String,
}

impl Change {
    pub fn label(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SecretSlot {
    /// Where the value goes in `request.body` (a JSON pointer).
    pub pointer: String,
    pub namespace: String,
    pub name: String,
    pub key: String,
    /// Of the value the plan was made with (keyed by the plan's salt).
    pub fingerprint: String,
}

/// An object that cannot be planned; nothing is sent for it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PlanError {
    pub kind: Option<Kind>,
    pub name: Option<String>,
    pub message: String,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.kind, &self.name) {
            (Some(kind), Some(name)) => write!(f, "{kind} {name}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl Plan {
    /// A plan of these changes alone (the controller's delete).
    /// A plan of these changes (its summary counted from them), no errors, nothing saved.
    pub fn of(changes: Vec<Change>) -> Plan {
        Plan {
            format_version: FORMAT_VERSION.into(),
            summary: Summary::of(&changes),
            changes,
            errors: Vec::new(),
            saved: Saved::default(),
        }
    }

    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::Noop)
    }
}

/// What a new plan records for `apply PLANFILE`.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub prune: bool,
    pub inputs: Vec<String>,
    pub salt: String,
    pub secrets_from_cluster: bool,
}

/// The app a webhook belongs to, as planning knows it.
#[derive(Clone, Debug)]
enum AppSlot {
    /// Exists in Sinch.
    Live(String),
    /// Created by the change at this index.
    Created(usize),
    /// Could not be planned; its webhooks cannot be either.
    Failed,
}

struct Builder<'a> {
    input: &'a Input,
    live: &'a Live,
    options: &'a Options,
    /// Where `--prune` deletes nothing: the scopes whose plan had errors without it.
    no_prune: &'a BTreeSet<Scope>,
    /// (scope, kind) the input declares: `--prune` deletes only those kinds.
    declared: BTreeSet<(Scope, Kind)>,
    /// The scopes whose plan has errors.
    failed: BTreeSet<Scope>,
    plan: Plan,
}

/// Plans every target against what was read: apps, then webhooks (per app: deletes, updates,
/// creates), templates, settings, and with `prune` the deletes of undeclared objects in the
/// scopes the input touches.
///
/// `--prune` deletes only what is certainly not wanted: objects of the kinds the input declares
/// in a scope, and nothing in a scope whose plan has an error (an app whose identity is
/// ambiguous, a list that could not be read: what looks undeclared may be declared). Such a
/// scope is planned again without deletes, and the plan says why.
pub fn build(input: &Input, targets: &[Target], live: &Live, options: &Options) -> Plan {
    let (plan, failed) = build_with(input, targets, live, options, &BTreeSet::new());
    if !options.prune || failed.is_empty() {
        return plan;
    }
    let (mut plan, _) = build_with(input, targets, live, options, &failed);
    for scope in failed {
        plan.errors.push(PlanError {
            kind: None,
            name: None,
            message: format!("--prune deletes nothing in {scope}: its plan has errors"),
        });
    }
    plan
}

/// A declared webhook with its spec, grouped by app for rule 3.
type Declared<'t, 'a> = (&'t Target<'a>, &'a WebhookSpec);

fn build_with(
    input: &Input,
    targets: &[Target],
    live: &Live,
    options: &Options,
    no_prune: &BTreeSet<Scope>,
) -> (Plan, BTreeSet<Scope>) {
    let mut b = Builder {
        input,
        live,
        options,
        no_prune,
        declared: targets.iter().map(|t| (t.scope.clone(), t.kind())).collect(),
        failed: BTreeSet::new(),
        plan: Plan {
            format_version: FORMAT_VERSION.into(),
            changes: Vec::new(),
            errors: Vec::new(),
            summary: Summary::default(),
            saved: Saved {
                inputs: options.inputs.clone(),
                prune: options.prune,
                salt: options.salt.clone(),
                secrets_from_cluster: options.secrets_from_cluster,
            },
        },
    };
    let mut apps: BTreeMap<(String, String), AppSlot> = BTreeMap::new();
    for (t, a) in targets.iter().filter_map(|t| match t.object() {
        Object::ConversationApp(a) => Some((t, a)),
        _ => None,
    }) {
        let slot = b.app(t, a);
        apps.insert(
            (t.object().namespace().to_string(), t.object().name().to_string()),
            slot,
        );
    }
    b.webhooks(targets, &apps);
    for t in targets {
        if let Object::Template(tpl) = t.object() {
            b.template(t, tpl);
        }
    }
    for t in targets {
        if let Object::ProjectSettings(s) = t.object() {
            b.settings(t, s);
        }
    }
    if options.prune {
        b.prune(targets);
    }
    b.plan.summary = Summary::of(&b.plan.changes);
    (b.plan, b.failed)
}

/// The secret pointers of a desired body; with hashes recorded at the last write, whether each
/// value differs from what was written.
fn pointers(uses: &[SecretUse], recorded: &super::Recorded, salt: &str, body: &Value) -> SecretPointers {
    SecretPointers {
        written: uses
            .iter()
            .filter(|u| u.unresolved.is_none())
            .filter_map(|u| {
                let hash = recorded.secret_hashes.get(&u.pointer)?;
                let value = body.pointer(&u.pointer)?.as_str()?.as_bytes();
                let same = fingerprint(salt, value) == *hash
                    || recorded
                        .legacy_salt
                        .as_deref()
                        .is_some_and(|legacy| legacy_fingerprint(legacy, value) == *hash);
                Some((u.pointer.clone(), !same))
            })
            .collect(),
        resolved: uses
            .iter()
            .filter(|u| u.unresolved.is_none())
            .map(|u| u.pointer.clone())
            .collect(),
        unresolved: uses
            .iter()
            .filter(|u| u.unresolved.is_some())
            .map(|u| u.pointer.clone())
            .collect(),
    }
}

fn unresolved_notes(uses: &[SecretUse]) -> Vec<String> {
    uses.iter()
        .filter_map(|u| {
            u.unresolved
                .as_ref()
                .map(|why| format!("{}: {why}; not compared", u.field))
        })
        .collect()
}

fn to_map(value: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(value).expect("wire types always serialise") {
        Value::Object(map) => map,
        _ => unreachable!("wire objects serialise as objects"),
    }
}

fn from_map<T: serde::de::DeserializeOwned>(map: Map<String, Value>) -> T {
    serde_json::from_value(Value::Object(map)).expect("a wire object read back as its type")
}

impl Builder<'_> {
    /// Whether `--prune` deletes undeclared objects of `kind` in `scope`.
    fn prunes(&self, scope: &Scope, kind: Kind) -> bool {
        self.options.prune && !self.no_prune.contains(scope) && self.declared.contains(&(scope.clone(), kind))
    }

    fn error(&mut self, t: &Target, message: impl Into<String>) {
        self.failed.insert(t.scope.clone());
        self.plan.errors.push(PlanError {
            kind: Some(t.kind()),
            name: Some(t.name()),
            message: message.into(),
        });
    }

    fn read<'l, T>(&mut self, t: &Target, what: &str, read: Option<&'l Read<T>>) -> Option<&'l T> {
        match read {
            Some(Ok(value)) => Some(&**value),
            Some(Err(e)) => {
                let message = format!("cannot read the {what} of {}: {e}", t.scope);
                self.error(t, message);
                None
            }
            None => {
                let message = format!("the {what} of {} were not read", t.scope);
                self.error(t, message);
                None
            }
        }
    }

    /// Adds a change; secret values in its body become placeholders first.
    fn push(&mut self, mut change: Change, uses: &[SecretUse]) -> usize {
        if let Some(body) = change.request.as_mut().and_then(|r| r.body.as_mut()) {
            for u in uses.iter().filter(|u| u.unresolved.is_none()) {
                if let Some(slot) = body.pointer_mut(&u.pointer) {
                    let value = std::mem::replace(slot, Value::String(SENSITIVE.into()));
                    change.secrets.push(SecretSlot {
                        pointer: u.pointer.clone(),
                        namespace: u.namespace.clone(),
                        name: u.name.clone(),
                        key: u.key.clone(),
                        fingerprint: fingerprint(&self.options.salt, value.as_str().unwrap_or_default().as_bytes()),
                    });
                }
            }
        }
        self.plan.changes.push(change);
        self.plan.changes.len() - 1
    }

    fn change(&self, t: &Target, action: Action, id: Option<String>, observed: String) -> Change {
        Change {
            kind: t.kind(),
            name: t.name(),
            action,
            id,
            project: t.scope.project.clone(),
            region: t.scope.region,
            fields: Vec::new(),
            request: None,
            notes: Vec::new(),
            secrets: Vec::new(),
            after: Vec::new(),
            app_from: None,
            observed,
        }
    }

    /// The change of an object found in Sinch, from its merge-all update (request left to the
    /// caller); `None`, with the error recorded, when the update cannot be sent.
    fn found(
        &mut self,
        t: &Target,
        id: &str,
        live: &impl Serialize,
        uses: &[SecretUse],
        secrets: &SecretPointers,
        update: &diff::Update,
    ) -> Option<Change> {
        if !update.blocked.is_empty() {
            self.error(t, format!("cannot update: {}", update.blocked.join("; ")));
            return None;
        }
        let action = if update.mask.is_empty() {
            Action::Noop
        } else {
            Action::Update
        };
        let mut c = self.change(
            t,
            action,
            Some(id.to_string()),
            observed(&self.options.salt, Some(live)),
        );
        c.fields = update.fields.clone();
        c.notes = unresolved_notes(uses);
        note_hidden(&mut c, &serde_json::to_value(live).unwrap_or_default(), secrets);
        Some(c)
    }

    fn app(&mut self, t: &Target, a: &ConversationApp) -> AppSlot {
        let Some(apps) = self.read(t, "apps", self.live.apps(&t.scope)) else {
            return AppSlot::Failed;
        };
        let found = match identity::app(t.recorded.id.as_deref(), &a.spec, apps) {
            Ok(found) => found,
            Err(message) => {
                self.error(t, message);
                return AppSlot::Failed;
            }
        };
        let desired = desired::app(&a.spec, t.object().namespace(), &self.input.secrets);
        let wire = serde_json::to_value(&desired.wire).expect("wire types always serialise");
        let secrets = pointers(&desired.secrets, &t.recorded, &self.options.salt, &wire);
        let project = &t.scope.project;
        let salt = self.options.salt.clone();
        match found {
            None => {
                if let Some(u) = desired.unresolved().next() {
                    let message = format!(
                        "cannot create the app: {}: {}",
                        u.field,
                        u.unresolved.as_deref().unwrap_or_default()
                    );
                    self.error(t, message);
                    return AppSlot::Failed;
                }
                let mut c = self.change(t, Action::Create, None, observed(&salt, None::<&Value>));
                let body = to_map(&desired.wire);
                c.fields = created_fields(&body);
                c.request = Some(Request::create_app(project, &desired.wire));
                AppSlot::Created(self.push(c, &desired.secrets))
            }
            Some(live) => {
                let id = live.id.clone().unwrap_or_default();
                let update = diff::update(&to_map(&desired.wire), &to_map(live), &["id"], &secrets);
                let Some(mut c) = self.found(t, &id, live, &desired.secrets, &secrets, &update) else {
                    return AppSlot::Failed;
                };
                if c.action == Action::Update {
                    c.request = Some(Request::update_app(project, &id, &from_map(update.body), update.mask));
                }
                self.push(c, &desired.secrets);
                AppSlot::Live(id)
            }
        }
    }

    fn template(&mut self, t: &Target, tpl: &TemplateObject) {
        let reads = self.live.scopes.get(&t.scope).and_then(|s| s.templates.as_ref());
        let Some(templates) = self.read(t, "templates", reads) else {
            return;
        };
        let desired = desired::template(&tpl.spec, t.object().name());
        let id = desired.id.clone().unwrap_or_default();
        let salt = self.options.salt.clone();
        match identity::template(&id, templates) {
            None => {
                let mut c = self.change(t, Action::Create, None, observed(&salt, None::<&Value>));
                c.fields = created_fields(&to_map(&desired));
                c.request = Some(Request::create_template(&t.scope.project, &desired));
                self.push(c, &[]);
            }
            Some(live) => {
                let mut c = self.change(t, Action::Noop, Some(id.clone()), observed(&salt, Some(live)));
                if let Some((fields, body)) = template_update(&desired, live) {
                    c.action = Action::Update;
                    c.fields = fields;
                    c.request = Some(Request::update_template(&t.scope.project, &id, &body));
                }
                self.push(c, &[]);
            }
        }
    }

    fn settings(&mut self, t: &Target, s: &ProjectSettings) {
        let scope = self.live.scopes.get(&t.scope);
        let Some(live) = self.read(t, "settings", scope.and_then(|s| s.settings.as_ref())) else {
            return;
        };
        let desired = desired::settings(&s.spec);
        let salt = self.options.salt.clone();
        if let Some(conflicts) = scope.and_then(|s| s.conflicts.as_ref()) {
            match conflicts {
                Ok(list) if list.is_empty() => {}
                Ok(list) => {
                    let first = &list[0];
                    let message = format!(
                        "contactSettings.unifiedContactIdEnabled: {} identity conflict{} in {} block enabling unified contact id (first: {} on {}, contacts {}); resolve them, then plan again",
                        list.len(),
                        if list.len() == 1 { "" } else { "s" },
                        t.scope,
                        first.identity,
                        first.channels.join(", "),
                        first.contact_ids.join(", ")
                    );
                    return self.error(t, message);
                }
                Err(e) => return self.error(t, format!("cannot read the identity conflicts of {}: {e}", t.scope)),
            }
        }
        match live {
            None => {
                let mut c = self.change(
                    t,
                    Action::Create,
                    Some(t.scope.project.clone()),
                    observed(&salt, None::<&Value>),
                );
                c.fields = created_fields(&to_map(&desired));
                c.request = Some(Request::create_settings(&t.scope.project, &desired));
                self.push(c, &[]);
            }
            Some(live) => {
                let current = live.settings.clone().unwrap_or_default();
                let update = diff::update(&to_map(&desired), &to_map(&current), &[], &SecretPointers::default());
                let action = if update.mask.is_empty() {
                    Action::Noop
                } else {
                    Action::Update
                };
                let mut c = self.change(t, action, Some(t.scope.project.clone()), observed(&salt, Some(live)));
                if action == Action::Update {
                    c.fields = update.fields;
                    c.request = Some(Request::update_settings(&t.scope.project, &from_map(update.body)));
                }
                self.push(c, &[]);
            }
        }
    }

    /// Deletes of the templates and apps that no manifest declares, in the scopes the input
    /// touches (the undeclared webhooks of declared apps are handled with their app).
    fn prune(&mut self, targets: &[Target]) {
        let salt = self.options.salt.clone();
        let scopes: std::collections::BTreeSet<&Scope> = targets.iter().map(|t| &t.scope).collect();
        let mut deletes = Vec::new();
        for scope in scopes {
            let Some(live) = self.live.scopes.get(scope) else {
                continue;
            };
            if let Some(Ok(templates)) = &live.templates
                && self.prunes(scope, Kind::Template)
            {
                for tpl in templates.iter() {
                    let id = tpl.id.clone().unwrap_or_default();
                    let declared = targets.iter().any(|t| match t.object() {
                        Object::Template(d) => {
                            &t.scope == scope
                                && desired::template(&d.spec, t.object().name()).id.as_deref() == Some(&id)
                        }
                        _ => false,
                    });
                    if !declared {
                        deletes.push((
                            Kind::Template,
                            id.clone(),
                            id.clone(),
                            scope.clone(),
                            observed(&salt, Some(tpl)),
                        ));
                    }
                }
            }
            if let Some(Ok(apps)) = &live.apps
                && self.prunes(scope, Kind::ConversationApp)
            {
                for app in apps.iter() {
                    let id = app.id.clone().unwrap_or_default();
                    let declared = targets.iter().any(|t| match t.object() {
                        Object::ConversationApp(a) => {
                            &t.scope == scope
                                && identity::app(t.recorded.id.as_deref(), &a.spec, apps)
                                    .ok()
                                    .flatten()
                                    .and_then(|m| m.id.as_deref())
                                    == Some(&id)
                        }
                        Object::Webhook(w) => &t.scope == scope && w.spec.app == WebhookApp::AppId(id.clone()),
                        _ => false,
                    });
                    if !declared {
                        let name = app.display_name.clone().unwrap_or_default();
                        deletes.push((
                            Kind::ConversationApp,
                            name,
                            id.clone(),
                            scope.clone(),
                            observed(&salt, Some(app)),
                        ));
                    }
                }
            }
        }
        for (kind, name, id, scope, observed) in deletes {
            let change = pruned(kind, name, id, &scope, String::new(), observed);
            self.push(change, &[]);
        }
    }
}

/// The delete of a Sinch object (`None` for project settings, which cannot be deleted): with
/// `--prune`, of one no manifest declares; in the controller, of a deleted object's.
pub fn delete(kind: Kind, name: String, id: String, scope: &Scope, note: String) -> Option<Change> {
    let request = match kind {
        Kind::ConversationApp => Request::delete_app(&scope.project, &id),
        Kind::Webhook => Request::delete_webhook(&scope.project, &id),
        Kind::Template => Request::delete_template(&scope.project, &id),
        Kind::ProjectSettings => return None,
    };
    Some(Change {
        kind,
        name,
        action: Action::Delete,
        id: Some(id),
        project: scope.project.clone(),
        region: scope.region,
        fields: Vec::new(),
        request: Some(request),
        notes: vec![note],
        secrets: Vec::new(),
        after: Vec::new(),
        app_from: None,
        observed: "absent".into(),
    })
}

/// The delete of an object no manifest declares (only with `--prune`).
fn pruned(kind: Kind, name: String, id: String, scope: &Scope, context: String, observed: String) -> Change {
    let note = format!("not declared by any manifest; deleted because of --prune{context}");
    Change {
        observed,
        ..delete(kind, name, id, scope, note).expect("apps, webhooks and templates can be deleted")
    }
}

/// Rule 4: a template update is a PUT of the whole template with the live version. Compared on
/// the stored translations (the `latest` copies dropped); a description the manifest leaves out
/// keeps its live value. `None` when nothing declared differs.
pub fn template_update(desired: &Template, live: &Template) -> Option<(Vec<FieldChange>, Template)> {
    let mut stored = live.clone();
    stored.translations = Some(live.stored_translations().cloned().collect());
    let update = diff::update(&to_map(desired), &to_map(&stored), &["id"], &SecretPointers::default());
    if update.mask.is_empty() {
        return None;
    }
    let mut body = desired.clone();
    body.version = live.version;
    if body.description.is_none() {
        body.description = live.description.clone();
    }
    body.translations = body.translations.map(|ts| {
        ts.into_iter()
            .filter(|t| t.version.as_deref() != Some(LATEST))
            .collect()
    });
    Some((update.fields, body))
}

/// The fields of a new object, leaf by leaf (list elements whole), secrets redacted.
fn created_fields(body: &Map<String, Value>) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (k, v) in body.iter().filter(|(k, _)| k.as_str() != "id") {
        diff::field_changes(
            v,
            &Value::Null,
            k,
            k,
            &format!("/{k}"),
            &SecretPointers::default(),
            &mut out,
        );
    }
    out
}

fn note_hidden(c: &mut Change, live: &Value, secrets: &SecretPointers) {
    let hidden = diff::hidden_secrets(live, secrets);
    if hidden > 0 {
        c.notes.push(format!(
            "{hidden} secret{} not compared: Sinch does not return {} in clear",
            if hidden == 1 { "" } else { "s" },
            if hidden == 1 { "it" } else { "them" }
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Recorded;
    use crate::engine::desired::SecretUse;
    use serde_json::json;

    fn token_use() -> SecretUse {
        SecretUse {
            field: "spec.channelCredentials[0].staticBearer.tokenRef".into(),
            pointer: "/channel_credentials/0/static_bearer/token".into(),
            namespace: "ns".into(),
            name: "s".into(),
            key: "token".into(),
            unresolved: None,
        }
    }

    #[test]
    fn fingerprints_are_keyed_and_hashes_of_older_versions_still_match() {
        let value = b"canary-token-5151";
        // Keyed: without the salt, the hash of a guessed value tells nothing.
        assert_ne!(fingerprint("secret-salt", value), fingerprint("other-salt", value));
        assert_eq!(fingerprint("secret-salt", value), fingerprint("secret-salt", value));
        assert_eq!(fingerprint("secret-salt", value).len(), 32);
        let body = json!({"channel_credentials": [{"static_bearer": {"token": "canary-token-5151"}}]});
        let recorded = |hash: String| Recorded {
            id: None,
            secret_hashes: [("/channel_credentials/0/static_bearer/token".to_string(), hash)].into(),
            legacy_salt: Some("uid-1".into()),
        };
        let changed = |r: &Recorded| pointers(&[token_use()], r, "secret-salt", &body).written;
        let pointer = "/channel_credentials/0/static_bearer/token";
        // A hash recorded by an older version (sha256 with the uid) matches: no rewrite.
        assert!(!changed(&recorded(legacy_fingerprint("uid-1", value)))[pointer]);
        assert!(!changed(&recorded(fingerprint("secret-salt", value)))[pointer]);
        // A rotated value differs under either.
        assert!(changed(&recorded(legacy_fingerprint("uid-1", b"old")))[pointer]);
        assert!(changed(&recorded(fingerprint("secret-salt", b"old")))[pointer]);
    }
}
