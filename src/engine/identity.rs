//! Rule 1, identity without a state file: how a manifest finds its object among the live ones.
//! A recorded id (the controller's status) wins; then the id the spec names; then the natural key
//! (an app's display name in its project and region, a webhook's target within its app, a
//! template's id), so that an object created by a run that crashed before recording it is
//! adopted, never duplicated.

use crate::model::ConversationAppSpec;
use crate::sinch::app::App;
use crate::sinch::template::Template;
use crate::sinch::webhook::Webhook;

/// The live app a ConversationApp manages; `Ok(None)` when it does not exist yet.
pub fn app<'l>(recorded: Option<&str>, spec: &ConversationAppSpec, live: &'l [App]) -> Result<Option<&'l App>, String> {
    let by_id = |id: &str| live.iter().find(|a| a.id.as_deref() == Some(id));
    if let Some(app) = recorded.and_then(by_id) {
        return Ok(Some(app));
    }
    if let Some(id) = &spec.app_id {
        return by_id(id)
            .map(Some)
            .ok_or_else(|| format!("spec.appId: no app {id} exists in this project and region"));
    }
    let named: Vec<&App> = live
        .iter()
        .filter(|a| a.display_name.as_deref() == Some(spec.display_name.as_str()))
        .collect();
    match named.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(format!(
            "{} apps are named {:?} in this project and region ({}): set spec.appId to the one to manage",
            many.len(),
            spec.display_name,
            many.iter()
                .filter_map(|a| a.id.as_deref())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The live webhook a Webhook manages within its app.
pub fn webhook<'l>(recorded: Option<&str>, target: &str, live: &'l [Webhook]) -> Option<&'l Webhook> {
    recorded
        .and_then(|id| live.iter().find(|w| w.id.as_deref() == Some(id)))
        .or_else(|| live.iter().find(|w| w.target.as_deref() == Some(target)))
}

pub fn template<'l>(id: &str, live: &'l [Template]) -> Option<&'l Template> {
    live.iter().find(|t| t.id.as_deref() == Some(id))
}
