//! What a project settings body may hold (§3.2).

use super::Ty::*;
use super::{Check, Field, Object, Violation, opt};

const SETTINGS: &[Field] = &[opt("contact_settings", Obj(&[opt("unified_contact_id_enabled", Bool)]))];

/// `POST` and `PATCH /v1/projects/{project_id}/settings` (ProjectSettingsRequest).
pub fn settings(body: &Object) -> Vec<Violation> {
    let mut check = Check::default();
    check.object("", body, SETTINGS, false, &[]);
    check.done()
}
