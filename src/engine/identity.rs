//! Rule 1, identity without a state file: how a manifest finds its object among the live ones.
//! A recorded id (the controller's status) wins; then the id the spec names; then the natural key
//! (an app's display name in its project and region, a webhook's target within its app, a
//! template's id), so that an object created by a run that crashed before recording it is
//! adopted, never duplicated.

use crate::model::ConversationAppSpec;
use crate::sinch::app::App;
use crate::sinch::template::Template;
use crate::sinch::webhook::Webhook;
use std::sync::Arc;

/// Why a ConversationApp has no one app to manage.
#[derive(Debug)]
pub enum AppError {
    /// `spec.appId` names an app that does not exist.
    NoSuchId(String),
    /// Several apps have its display name: their ids.
    Ambiguous { name: String, ids: Vec<String> },
}

impl AppError {
    /// As a person reads it. `name_ids`: whether the ids of apps the reader may not manage are
    /// told (the CLI's admin, yes; a tenant of the controller, no: a guessed display name must
    /// not tell it the ids of others' apps).
    pub fn message(&self, name_ids: bool) -> String {
        match self {
            AppError::NoSuchId(id) => format!("spec.appId: no app {id} exists in this project and region"),
            AppError::Ambiguous { name, ids } if name_ids => format!(
                "{} apps are named {name:?} in this project and region ({}): set spec.appId to the one to manage",
                ids.len(),
                ids.join(", ")
            ),
            AppError::Ambiguous { name, ids } => format!(
                "{} apps are named {name:?} in this project and region: set spec.appId to the one to manage",
                ids.len()
            ),
        }
    }
}

/// The live app a ConversationApp manages; `Ok(None)` when it does not exist yet.
pub fn app<'l>(
    recorded: Option<&str>,
    spec: &ConversationAppSpec,
    live: &'l [Arc<App>],
) -> Result<Option<&'l App>, AppError> {
    let by_id = |id: &str| live.iter().map(|a| &**a).find(|a| a.id.as_deref() == Some(id));
    if let Some(app) = recorded.and_then(by_id) {
        return Ok(Some(app));
    }
    if let Some(id) = &spec.app_id {
        return by_id(id).map(Some).ok_or_else(|| AppError::NoSuchId(id.clone()));
    }
    let named: Vec<&App> = live
        .iter()
        .map(|a| &**a)
        .filter(|a| a.display_name.as_deref() == Some(spec.display_name.as_str()))
        .collect();
    match named.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(AppError::Ambiguous {
            name: spec.display_name.clone(),
            ids: many.iter().filter_map(|a| a.id.clone()).collect(),
        }),
    }
}

/// The live webhook a Webhook manages within its app.
pub fn webhook<'l>(recorded: Option<&str>, target: &str, live: &'l [Arc<Webhook>]) -> Option<&'l Webhook> {
    let mut live = live.iter().map(|w| &**w);
    recorded
        .and_then(|id| live.clone().find(|w| w.id.as_deref() == Some(id)))
        .or_else(|| live.find(|w| w.target.as_deref() == Some(target)))
}

pub fn template<'l>(id: &str, live: &'l [Arc<Template>]) -> Option<&'l Template> {
    live.iter().map(|t| &**t).find(|t| t.id.as_deref() == Some(id))
}
