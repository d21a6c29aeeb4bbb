//! The reconciliation engine: from validated manifests to a [`plan::Plan`] and its execution.
//!
//! `targets` places each manifest in a (project, region) scope; `observe` reads what Sinch holds
//! there with list calls; `plan` compares (through `desired`, `identity` and `diff`, all pure) and
//! yields plain data that the renderers show and `execute` carries out.

pub mod desired;
pub mod diff;
pub mod execute;
pub mod identity;
pub mod import;
pub mod observe;
pub mod plan;

use crate::input::{Input, Manifest};
use crate::model::{AppOf, Kind, Object, Region};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A project in a region: the unit that list calls read and rate limits count.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub project: String,
    pub region: Region,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "project {} in region {}", self.project, self.region)
    }
}

/// Where objects that name no project or region go: the connection's.
#[derive(Clone, Debug)]
pub struct Defaults {
    pub project: Option<String>,
    pub region: Region,
}

/// A manifest placed in its scope.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    pub manifest: &'a Manifest,
    pub scope: Scope,
    /// What the controller recorded in the object's status; the CLI records nothing.
    pub recorded: Recorded,
}

/// What the last write recorded about an object (the controller keeps it in the status).
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    /// The Sinch id: it wins over the natural key (rule 1).
    pub id: Option<String>,
    /// JSON pointer of a secret in the request body -> the fingerprint of the value written,
    /// keyed by the plan's salt (rule 7).
    pub secret_hashes: std::collections::BTreeMap<String, String>,
    /// The salt of hashes recorded before fingerprints were keyed with a secret (the object's
    /// uid, public): such a hash still matches its value, so an upgrade rewrites no secret.
    pub legacy_salt: Option<String>,
}

impl Target<'_> {
    pub fn object(&self) -> &Object {
        &self.manifest.object
    }

    pub fn kind(&self) -> Kind {
        self.manifest.object.kind()
    }

    /// `namespace/name`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.object().namespace(), self.object().name())
    }
}

/// The objects (their labels) that name no project where the connection names none either;
/// each caller says where a project comes from (the CLI's environment, a SinchConnection).
#[derive(Debug, PartialEq, Eq)]
pub struct NoProject(pub Vec<String>);

/// Places every manifest: its own `projectId`/`region`, else the connection's; a webhook with
/// `appRef` takes its app's (validate has checked that they agree). Objects that end up with no
/// project are named together.
pub fn targets<'a>(input: &'a Input, defaults: &Defaults) -> Result<Vec<Target<'a>>, NoProject> {
    let own = |m: &Manifest| {
        let p = m.object.placement();
        (
            p.project_id.clone().or_else(|| defaults.project.clone()),
            p.region.unwrap_or(defaults.region),
        )
    };
    // A webhook with `appRef` goes where its app goes: the apps by name, looked up once each.
    let mut apps: HashMap<AppOf<'_>, &Manifest> = HashMap::new();
    for m in &input.manifests {
        if let Object::ConversationApp(app) = &m.object {
            apps.entry(AppOf::object(app)).or_insert(m);
        }
    }
    let mut out = Vec::new();
    let mut homeless = Vec::new();
    for m in &input.manifests {
        let (project, region) = match &m.object {
            Object::Webhook(w) => apps.get(&w.app_of()).map_or_else(|| own(m), |app| own(app)),
            _ => own(m),
        };
        match project {
            Some(project) => out.push(Target {
                manifest: m,
                scope: Scope { project, region },
                recorded: Recorded::default(),
            }),
            None => homeless.push(m.object.label()),
        }
    }
    if !homeless.is_empty() {
        return Err(NoProject(homeless));
    }
    Ok(out)
}
