//! The rules across the objects of one input: unique names, the identities each object claims
//! (rule 1), a webhook's app and placement, and the webhook limits per app (rule 3). The
//! per-object field rules they run beside are in `fields.rs`.

use super::fields::{check_channels, check_ids, check_secret_refs, check_template, check_webhook};
use crate::diagnostic::Diagnostic;
use crate::input::{Input, Manifest};
use crate::load::Source;
use crate::model::{AppOf, ConversationApp, Kind, Object, Region, Template, Webhook};
use crate::sinch::webhook::{Limits, MAX_PER_APP as MAX_WEBHOOKS_PER_APP};
use std::collections::{BTreeMap, HashMap};

/// The Sinch scope an object is declared in; `None` parts come from the connection at run time.
type Scope = (Option<String>, Option<Region>);

fn scope(object: &Object) -> Scope {
    let p = object.placement();
    (p.project_id.clone(), p.region)
}

fn describe_scope(scope: &Scope) -> String {
    let project = scope.0.as_deref().unwrap_or("the default project");
    match scope.1 {
        Some(r) => format!("{project}, region {r}"),
        None => format!("{project}, the default region"),
    }
}

/// The rules across objects and within each object's spec beyond its schema.
pub(super) fn cross_check(input: &Input) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let manifests = &input.manifests;
    unique_names(manifests, &mut errors);
    let apps: HashMap<(&str, &str), &ConversationApp> = manifests
        .iter()
        .filter_map(|m| match &m.object {
            Object::ConversationApp(a) => Some(((m.object.namespace(), m.object.name()), a)),
            _ => None,
        })
        .collect();
    let mut identities = Identities::default();
    // Webhooks grouped by the app they belong to: its id when known, else the app object.
    let mut webhooks_of: BTreeMap<String, Vec<&Manifest>> = BTreeMap::new();
    for m in manifests {
        check_secret_refs(m, &input.secrets, &mut errors);
        check_ids(m, &mut errors);
        match &m.object {
            Object::ConversationApp(app) => {
                identities.app(m, app, &mut errors);
                check_channels(m, app, &mut errors);
            }
            Object::Webhook(hook) => {
                let key = webhook_app(m, hook, &apps, &mut errors);
                check_webhook(m, hook, &mut errors);
                if let Some(key) = key {
                    webhooks_of.entry(key).or_default().push(m);
                }
            }
            Object::Template(t) => {
                identities.template(m, t, &mut errors);
                check_template(m, t, &mut errors);
            }
            Object::ProjectSettings(_) => identities.settings(m, &mut errors),
        }
    }
    for (app, hooks) in &webhooks_of {
        check_webhooks_of(app, hooks, &mut errors);
    }
    errors
}

/// Two objects of one kind with one namespace and name.
fn unique_names(manifests: &[Manifest], errors: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<(Kind, &str, &str), &Manifest> = HashMap::new();
    for m in manifests {
        let key = (m.object.kind(), m.object.namespace(), m.object.name());
        if let Some(first) = seen.insert(key, m) {
            errors.push(m.error(
                "metadata.name",
                format!("is declared twice; first at {}", at(&first.source)),
            ));
        }
    }
}

/// The identities seen so far, each of which one object at most may claim (rule 1): an app's id,
/// else its display name, in its scope; a template's id in its scope; a project's settings.
#[derive(Default)]
struct Identities<'m> {
    by_display_name: HashMap<(Scope, &'m str), &'m Manifest>,
    by_app_id: HashMap<(Scope, &'m str), &'m Manifest>,
    templates: HashMap<(Scope, String), &'m Manifest>,
    settings: HashMap<Option<String>, &'m Manifest>,
}

impl<'m> Identities<'m> {
    fn app(&mut self, m: &'m Manifest, app: &'m ConversationApp, errors: &mut Vec<Diagnostic>) {
        let s = scope(&m.object);
        match &app.spec.app_id {
            Some(id) => {
                if let Some(first) = self.by_app_id.insert((s, id), m) {
                    errors.push(m.error(
                        "spec.appId",
                        format!(
                            "{id:?} is also claimed by {} at {}",
                            first.object.label(),
                            at(&first.source)
                        ),
                    ));
                }
            }
            None => {
                if let Some(first) = self.by_display_name.insert((s.clone(), &app.spec.display_name), m) {
                    errors.push(m.error(
                        "spec.displayName",
                        format!(
                            "{:?} is also the display name of {} at {} in {}; apps without spec.appId are found by display name, so it must be unique",
                            app.spec.display_name,
                            first.object.label(),
                            at(&first.source),
                            describe_scope(&s)
                        ),
                    ));
                }
            }
        }
    }

    fn template(&mut self, m: &'m Manifest, t: &Template, errors: &mut Vec<Diagnostic>) {
        let id = t
            .spec
            .template_id
            .clone()
            .unwrap_or_else(|| m.object.name().to_string());
        if let Some(first) = self.templates.insert((scope(&m.object), id.clone()), m) {
            errors.push(m.error(
                if t.spec.template_id.is_some() {
                    "spec.templateId"
                } else {
                    "metadata.name"
                },
                format!(
                    "template id {id:?} is also declared by {} at {}",
                    first.object.label(),
                    at(&first.source)
                ),
            ));
        }
    }

    fn settings(&mut self, m: &'m Manifest, errors: &mut Vec<Diagnostic>) {
        let project = m.object.placement().project_id.clone();
        if let Some(first) = self.settings.insert(project.clone(), m) {
            errors.push(m.error(
                "spec.projectId",
                format!(
                    "{} already has ProjectSettings {}/{} at {}; at most one per project",
                    project.as_deref().unwrap_or("the default project"),
                    first.object.namespace(),
                    first.object.name(),
                    at(&first.source)
                ),
            ));
        }
    }
}

/// The key a webhook's app is counted under for rule 3 (`app <id>`, or the app object), once its
/// `appRef` names an app of the input placed where the webhook is.
fn webhook_app(
    m: &Manifest,
    hook: &Webhook,
    apps: &HashMap<(&str, &str), &ConversationApp>,
    errors: &mut Vec<Diagnostic>,
) -> Option<String> {
    match hook.app_of() {
        AppOf::Id(id) => Some(format!("app {id}")),
        AppOf::Object { namespace: ns, name } => match apps.get(&(ns, name)) {
            None => {
                errors.push(m.error(
                    "spec.appRef.name",
                    format!("no ConversationApp {ns}/{name} is declared in the input"),
                ));
                None
            }
            Some(app) => {
                check_webhook_placement(m, hook, app, errors);
                Some(match &app.spec.app_id {
                    Some(id) => format!("app {id}"),
                    None => format!("ConversationApp {ns}/{name}"),
                })
            }
        },
    }
}

/// Rule 3 over the declared webhooks of one app (plan counts the live ones too).
fn check_webhooks_of(app: &str, hooks: &[&Manifest], errors: &mut Vec<Diagnostic>) {
    let limits = Limits::of(hooks.iter().map(|m| Some(target_of(m))));
    for &(repeat, first) in &limits.repeats {
        let (m, first) = (hooks[repeat], hooks[first]);
        errors.push(m.error(
            "spec.target",
            format!(
                "{:?} is also the target of {} at {}; targets must be unique per app ({app})",
                target_of(m),
                first.object.label(),
                at(&first.source)
            ),
        ));
    }
    if limits.too_many {
        let names: Vec<String> = hooks
            .iter()
            .map(|m| format!("{} ({})", m.object.name(), target_of(m)))
            .collect();
        let last = hooks.last().expect("more than five");
        errors.push(last.error(
            "spec.appRef",
            format!(
                "{app} would have {} webhooks, more than the {MAX_WEBHOOKS_PER_APP} Sinch allows: {}",
                hooks.len(),
                names.join(", ")
            ),
        ));
    }
}

fn target_of(m: &Manifest) -> &str {
    match &m.object {
        Object::Webhook(h) => &h.spec.target,
        _ => "",
    }
}

fn at(source: &Source) -> String {
    format!("{}:{}", source.origin.file, source.line())
}

/// A Webhook of a ConversationApp lives in the app's project and region.
fn check_webhook_placement(m: &Manifest, hook: &Webhook, app: &ConversationApp, errors: &mut Vec<Diagnostic>) {
    let (mine, theirs) = (&hook.spec.placement, &app.spec.placement);
    if let (Some(a), Some(b)) = (&mine.project_id, &theirs.project_id)
        && a != b
    {
        errors.push(m.error(
            "spec.projectId",
            format!("{a:?} differs from the project of its app ({b:?}); leave it out to use the app's"),
        ));
    }
    if let (Some(a), Some(b)) = (mine.region, theirs.region)
        && a != b
    {
        errors.push(m.error(
            "spec.region",
            format!("{a} differs from the region of its app ({b}); leave it out to use the app's"),
        ));
    }
}
