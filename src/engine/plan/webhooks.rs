//! Rule 3 in the plan: the webhooks of each app, grouped by the app they belong to, the limits
//! counted over declared and live webhooks, deletes before updates and creates.

use super::builder::created_fields;
use super::prune::pruned;
use super::saved::observed;
use super::{Action, AppSlot, Builder, Declared, KNOWN_AFTER_APPLY};
use crate::engine::observe::List;
use crate::engine::{Scope, Target, desired, identity};
use crate::model::{AppOf, Kind, Object, WebhookSpec};
use crate::sinch::request::Request;
use crate::sinch::webhook::{Limits, MAX_PER_APP as MAX_WEBHOOKS_PER_APP, Webhook};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

impl Builder<'_> {
    pub(super) fn webhooks(&mut self, targets: &[Target], apps: &BTreeMap<(String, String), AppSlot>) {
        // Group the declared webhooks by their app: (scope, app slot, label for messages).
        let mut groups: BTreeMap<(Scope, String), (AppSlot, String, Vec<Declared>)> = BTreeMap::new();
        let webhooks = targets.iter().filter_map(|t| match t.object() {
            Object::Webhook(w) => Some((t, w)),
            _ => None,
        });
        for (t, w) in webhooks {
            let (slot, label) = match w.app_of() {
                AppOf::Id(id) => (AppSlot::Live(id.to_string()), format!("app {id}")),
                AppOf::Object { namespace: ns, name } => {
                    let slot = apps.get(&(ns.to_string(), name.to_string())).cloned();
                    (
                        slot.unwrap_or(AppSlot::Failed(None)),
                        format!("ConversationApp {ns}/{name}"),
                    )
                }
            };
            let key = match &slot {
                AppSlot::Live(id) => format!("live:{id}"),
                AppSlot::Created(i) => format!("new:{i}"),
                AppSlot::Failed(_) => format!("failed:{label}"),
            };
            groups
                .entry((t.scope.clone(), key))
                .or_insert((slot, label, Vec::new()))
                .2
                .push((t, &w.spec));
        }
        // With prune, also the declared apps that have no webhook manifest: all theirs go.
        for t in targets.iter().filter(|t| t.kind() == Kind::ConversationApp) {
            if self.prunes(&t.scope, Kind::Webhook) {
                let key = (t.object().namespace().to_string(), t.object().name().to_string());
                if let Some(AppSlot::Live(id)) = apps.get(&key) {
                    groups.entry((t.scope.clone(), format!("live:{id}"))).or_insert((
                        AppSlot::Live(id.clone()),
                        format!("ConversationApp {}/{}", key.0, key.1),
                        Vec::new(),
                    ));
                }
            }
        }
        for ((scope, _), (slot, label, declared)) in groups {
            self.app_webhooks(&scope, &slot, &label, &declared);
        }
    }

    /// The webhooks of one app (rule 3): limits counted over declared and live, deletes first.
    fn app_webhooks(&mut self, scope: &Scope, slot: &AppSlot, label: &str, declared: &[Declared]) {
        let Some((app_id, live)) = self.live_webhooks(scope, slot, label, declared) else {
            return;
        };
        let matched: Vec<Option<&Webhook>> = declared
            .iter()
            .map(|(t, spec)| identity::webhook(t.recorded.id.as_deref(), &spec.target, &live))
            .collect();
        let undeclared: Vec<&Webhook> = live
            .iter()
            .map(|l| &**l)
            .filter(|l| !matched.iter().flatten().any(|m| m.id == l.id))
            .collect();
        let prune = self.prunes(scope, Kind::Webhook);
        let kept: &[&Webhook] = if prune { &[] } else { &undeclared };
        if let Some(message) = over_the_limits(label, declared, kept) {
            for (t, _) in declared {
                self.error(t, message.clone());
            }
            return;
        }
        let salt = self.options.salt.clone();
        let mut deletes = Vec::new();
        for w in undeclared.iter().filter(|_| prune) {
            let id = w.id.clone().unwrap_or_default();
            let c = pruned(
                Kind::Webhook,
                w.target.clone().unwrap_or_default(),
                id.clone(),
                scope,
                format!(" ({label})"),
                observed(&salt, Some(*w)),
            );
            deletes.extend(self.push(c, &[]));
        }
        let mut later: Vec<(usize, &Target, &WebhookSpec, Option<&Webhook>)> = declared
            .iter()
            .copied()
            .zip(matched)
            .enumerate()
            .map(|(i, ((t, spec), m))| (i, t, spec, m))
            .collect();
        // Updates before creates, so that a target moved from one webhook frees its slot first.
        later.sort_by_key(|(i, _, _, m)| (m.is_none(), *i));
        for (_, t, spec, found) in later {
            self.webhook(scope, slot, app_id.as_deref(), (t, spec), found, &deletes);
        }
    }

    /// The app's id (none yet for one this plan creates) and its live webhooks; `None` when
    /// they are unknown, with the error on each declared webhook.
    fn live_webhooks(
        &mut self,
        scope: &Scope,
        slot: &AppSlot,
        label: &str,
        declared: &[Declared],
    ) -> Option<(Option<String>, Arc<List<Webhook>>)> {
        let (failure, class) = match slot {
            AppSlot::Created(_) => return Some((None, Arc::default())),
            AppSlot::Failed(class) => (format!("not planned: {label} has an error"), *class),
            AppSlot::Live(id) => match self.live.webhooks.get(&(scope.clone(), id.clone())) {
                Some(Ok(list)) => return Some((Some(id.clone()), list.clone())),
                Some(Err(e)) => (
                    format!("cannot read the webhooks of {label} ({id}): {e}"),
                    Some(e.class),
                ),
                None => (format!("the webhooks of {label} ({id}) were not read"), None),
            },
        };
        for (t, _) in declared {
            self.error_of(t, failure.clone(), class);
        }
        None
    }

    /// One declared webhook's create or update, after the app's deletes (and its app's create).
    fn webhook(
        &mut self,
        scope: &Scope,
        slot: &AppSlot,
        app_id: Option<&str>,
        (t, spec): Declared,
        found: Option<&Webhook>,
        deletes: &[usize],
    ) {
        let salt = self.options.salt.clone();
        let app_for_body = app_id.unwrap_or(KNOWN_AFTER_APPLY);
        let desired = desired::webhook(spec, app_for_body, t.object().namespace(), &self.input.secrets);
        let wanted = self.wanted(t, &desired.wire, &desired.secrets);
        match found {
            None => {
                if self.cannot_create(t, "webhook", &desired) {
                    return;
                }
                let mut c = self.change(t, Action::Create, None, observed::<Webhook>(&salt, None));
                c.fields = created_fields(wanted.fields, &wanted.wire);
                c.request = Some(Request::create_webhook(&scope.project, &desired.wire));
                c.after = deletes.to_vec();
                if let AppSlot::Created(i) = slot {
                    c.app_from = Some(*i);
                    c.after.insert(0, *i);
                }
                self.push(c, &desired.secrets);
            }
            Some(live) => {
                let id = live.id.clone().unwrap_or_default();
                let Some((mut c, update)) = self.found(t, &id, live, &wanted) else {
                    return;
                };
                if c.action == Action::Update {
                    // The API requires `target` in every webhook PATCH; the mask keeps it unwritten.
                    let mut body = update.body;
                    body.insert("target".into(), Value::String(spec.target.clone()));
                    c.request = Some(Request::update_webhook(&scope.project, &id, &body, update.mask));
                    c.after = deletes.to_vec();
                }
                self.push(c, &desired.secrets);
            }
        }
    }
}

/// Why the declared webhooks and the live ones kept beside them break rule 3 (more than five,
/// or one target twice), if they do.
fn over_the_limits(label: &str, declared: &[Declared], kept: &[&Webhook]) -> Option<String> {
    let mut targets: Vec<Option<&str>> = declared.iter().map(|(_, spec)| Some(spec.target.as_str())).collect();
    // Sinch lists webhooks in no promised order: name the undeclared ones sorted, so the
    // message is the same on every run.
    let mut undeclared_targets: Vec<Option<&str>> = kept.iter().map(|w| w.target.as_deref()).collect();
    undeclared_targets.sort();
    targets.extend(undeclared_targets);
    let limits = Limits::of(targets.iter().copied());
    if limits.too_many {
        let named: Vec<&str> = targets.iter().flatten().copied().collect();
        return Some(format!(
            "{label} would have {} webhooks, more than the {MAX_WEBHOOKS_PER_APP} Sinch allows: {} declared and {} in Sinch that no manifest declares ({}); delete those or run with --prune",
            targets.len(),
            declared.len(),
            kept.len(),
            named.join(", ")
        ));
    }
    let (repeat, _) = limits.repeats.first()?;
    Some(format!(
        "{label} would have two webhooks with the target {}",
        targets[*repeat].unwrap_or_default()
    ))
}
