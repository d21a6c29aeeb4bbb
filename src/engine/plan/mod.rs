//! The plan: what would change in Sinch, as plain data. Built from the targets and what
//! `observe` read (no I/O here); shown by the renderers, saved with `--out`, carried out by
//! `execute`. Each change holds the exact request it sends, with secrets as placeholders: a plan
//! never holds a secret value, so any rendering or saved file is safe to share.

use super::diff::FieldChange;
use super::observe::Live;
use super::{Scope, Target};
use crate::input::Input;
use crate::model::{Kind, Object, Region, WebhookSpec};
use crate::sinch::error::Class;
use crate::sinch::request::Request;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

mod builder;
mod kinds;
mod prune;
mod saved;
mod webhooks;

pub use kinds::template_update;
pub use prune::delete;
pub(crate) use saved::hex16;
#[cfg(test)]
pub(crate) use saved::legacy_fingerprint;
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
    /// With the connection's key secret, keys the fingerprints of this plan (see
    /// [`Options::salt`]): the file alone lets nobody test guesses of a secret value.
    pub nonce: String,
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
                Action::Create => summary.create = summary.create.saturating_add(1),
                Action::Update => summary.update = summary.update.saturating_add(1),
                Action::Delete => summary.delete = summary.delete.saturating_add(1),
                Action::Noop => summary.unchanged = summary.unchanged.saturating_add(1),
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
    /// Secret hashes the controller recorded with the public uid as salt (before 0.2) that
    /// still match, keyed anew: the status then holds nothing a reader could test guesses
    /// against. By pointer; empty in the CLI.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rekeyed: BTreeMap<String, String>,
}

impl Change {
    /// A change of `kind` object `name` in `scope`, nothing to send yet (no fields, request or
    /// notes); `observed`: the fingerprint of the live object it was planned from.
    pub fn new(
        kind: Kind,
        name: String,
        action: Action,
        id: Option<String>,
        scope: &Scope,
        observed: String,
    ) -> Change {
        Change {
            kind,
            name,
            action,
            id,
            project: scope.project.clone(),
            region: scope.region,
            fields: Vec::new(),
            request: None,
            notes: Vec::new(),
            secrets: Vec::new(),
            after: Vec::new(),
            app_from: None,
            observed,
            rekeyed: BTreeMap::new(),
        }
    }

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
    /// When a read of Sinch failed, its class (rule 8): whether planning again may help without
    /// a change of the input. None: the input or Sinch's state is the cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<Class>,
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
    /// Keys every fingerprint of the plan; never saved or shown. The CLI's is derived from the
    /// connection's key secret and the plan's `nonce`, the controller's from a key it keeps.
    pub salt: String,
    /// What a saved plan records to derive its salt again.
    pub nonce: String,
    /// The plan is a tenant's (the controller's): its errors tell no id of a Sinch object the
    /// tenant's object does not manage.
    pub tenant: bool,
    pub secrets_from_cluster: bool,
}

/// The app a webhook belongs to, as planning knows it.
#[derive(Clone, Debug)]
enum AppSlot {
    /// Exists in Sinch.
    Live(String),
    /// Created by the change at this index.
    Created(usize),
    /// Could not be planned; its webhooks cannot be either. The class of the read that
    /// failed, when one did, is theirs too.
    Failed(Option<Class>),
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
            class: None,
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
            // One change per target at most, before prune's deletes: no regrowth of large items.
            changes: Vec::with_capacity(targets.len()),
            errors: Vec::new(),
            summary: Summary::default(),
            saved: Saved {
                inputs: options.inputs.clone(),
                prune: options.prune,
                nonce: options.nonce.clone(),
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
