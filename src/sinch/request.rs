//! A request to Sinch as plain data. The plan holds these (`apply` sends exactly what `plan`
//! showed) and the client sends them; every path of both APIs is spelled here, once.

use super::app::App;
use super::settings::ProjectSettingsRequest;
use super::template::Template;
use super::webhook::Webhook;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Which of the two APIs (and so which host) a request goes to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    Conversation,
    Template,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[serde_with::serde_as]
#[derive(Serialize, Deserialize, Clone, PartialEq)]
pub struct Request {
    pub api: Api,
    pub method: Method,
    /// The path with its parameters named (`/v1/projects/{project_id}/apps/{app_id}`): what logs
    /// and metrics group by.
    pub route: Cow<'static, str>,
    /// The path sent, each segment percent-encoded.
    pub path: String,
    /// Query parameters other than the mask.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<(String, String)>,
    /// The top-level fields a PATCH writes, sent (and saved) as one comma-separated `update_mask`.
    #[serde_as(as = "Option<serde_with::StringWithSeparator::<serde_with::formats::CommaSeparator, String>>")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_mask: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

/// Without the body: it may hold channel tokens and webhook secrets, and a Debug line ends up
/// in logs and panics.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("update_mask", &self.update_mask)
            .field("body", &self.body.as_ref().map(|_| NotShown))
            .finish()
    }
}

struct NotShown;

impl std::fmt::Debug for NotShown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(not shown)")
    }
}

/// Whether `id` may name a Sinch object in a path. Sinch documents no character set for its
/// ids (template ids are chosen by the client, and the fact sheet leaves their charset open,
/// Q6; app and webhook ids are ULIDs), so ids are held to the URL-unreserved characters of
/// RFC 3986 §2.3, `[A-Za-z0-9._~-]`, which every server and proxy passes as they are, and never
/// only dots: `.` and `..` are relative segments, which URL parsers remove with what precedes.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && !id.bytes().all(|b| b == b'.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// One path segment, percent-encoded as `url` encodes it. A segment `url` would drop or change
/// (`.` and `..`, which it skips, and anything with a control character: it strips tab, CR and
/// LF first, so `.\t.` becomes `..` and removes the segment before it) is encoded byte by byte
/// instead: it stays one segment of the path the plan shows, and [`Request::unsendable`] keeps
/// it from being sent. Ids from the input are checked ([`is_valid_id`]); these come from Sinch's
/// answers.
fn segment(s: &str) -> String {
    if matches!(s, "." | "..") || s.chars().any(char::is_control) {
        return s.bytes().map(|b| format!("%{b:02X}")).collect();
    }
    let mut url = url::Url::parse("http://x/").expect("a valid URL");
    url.path_segments_mut().expect("an http URL has a path").push(s);
    url.path()[1..].to_string()
}

impl Request {
    fn new(api: Api, method: Method, route: &'static str, segments: &[&str]) -> Request {
        Request {
            api,
            method,
            route: Cow::Borrowed(route),
            path: segments.iter().map(|s| format!("/{}", segment(s))).collect(),
            query: Vec::new(),
            update_mask: None,
            body: None,
        }
    }

    fn body(mut self, body: &impl Serialize) -> Request {
        self.body = Some(serde_json::to_value(body).expect("wire types always serialise"));
        self
    }

    fn mask(mut self, fields: Vec<String>) -> Request {
        self.update_mask = Some(fields);
        self
    }

    fn query(mut self, name: &str, value: &str) -> Request {
        self.query.push((name.to_string(), value.to_string()));
        self
    }

    /// Why the path must not be sent, if it must not: a segment that is empty, a dot segment in
    /// any spelling (`.`, `%2e`, `.%2E`...: URL parsers, the client's among them, remove it with
    /// the segment before), or one with a control character (which servers and proxies strip or
    /// refuse). Any of these would reach another object than the one planned.
    pub fn unsendable(&self) -> Option<String> {
        self.path.split('/').skip(1).find_map(|s| {
            let decoded = percent_encoding::percent_decode_str(s).decode_utf8_lossy();
            let problem = match decoded.as_ref() {
                "" => "an empty segment",
                "." | ".." => "a dot segment, which URL parsers remove or resolve",
                d if d.chars().any(char::is_control) => "a segment with a control character",
                _ => return None,
            };
            Some(format!("{problem} ({decoded:?})"))
        })
    }

    /// `METHOD /path?query` as a person reads it in an error message.
    pub fn describe(&self) -> String {
        let mut query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if let Some(mask) = &self.update_mask {
            query.push(format!("update_mask={}", mask.join(",")));
        }
        match query.is_empty() {
            true => format!("{} {}", self.method, self.path),
            false => format!("{} {}?{}", self.method, self.path, query.join("&")),
        }
    }

    // Apps.

    pub fn list_apps(project: &str) -> Request {
        Request::new(
            Api::Conversation,
            Method::Get,
            "/v1/projects/{project_id}/apps",
            &["v1", "projects", project, "apps"],
        )
    }

    pub fn get_app(project: &str, app: &str) -> Request {
        Request::new(
            Api::Conversation,
            Method::Get,
            APP,
            &["v1", "projects", project, "apps", app],
        )
    }

    /// AppCreateRequest requires `channel_credentials`: an app declared with no channels sends
    /// an empty list.
    pub fn create_app(project: &str, body: &App) -> Request {
        let mut body = body.clone();
        body.channel_credentials.get_or_insert_with(Vec::new);
        Request::new(
            Api::Conversation,
            Method::Post,
            "/v1/projects/{project_id}/apps",
            &["v1", "projects", project, "apps"],
        )
        .body(&body)
    }

    /// A merge-all PATCH: `body` holds exactly the fields named in `mask`, each complete (an
    /// [`App`], or the plan's diff of one as it is, not turned back into the type).
    pub fn update_app(project: &str, app: &str, body: &impl Serialize, mask: Vec<String>) -> Request {
        Request::new(
            Api::Conversation,
            Method::Patch,
            APP,
            &["v1", "projects", project, "apps", app],
        )
        .body(body)
        .mask(mask)
    }

    pub fn delete_app(project: &str, app: &str) -> Request {
        Request::new(
            Api::Conversation,
            Method::Delete,
            APP,
            &["v1", "projects", project, "apps", app],
        )
    }

    // Webhooks: listed under their app, otherwise addressed by id within the project.

    pub fn list_webhooks(project: &str, app: &str) -> Request {
        Request::new(
            Api::Conversation,
            Method::Get,
            "/v1/projects/{project_id}/apps/{app_id}/webhooks",
            &["v1", "projects", project, "apps", app, "webhooks"],
        )
    }

    pub fn get_webhook(project: &str, webhook: &str) -> Request {
        Request::new(
            Api::Conversation,
            Method::Get,
            WEBHOOK,
            &["v1", "projects", project, "webhooks", webhook],
        )
    }

    pub fn create_webhook(project: &str, body: &Webhook) -> Request {
        Request::new(
            Api::Conversation,
            Method::Post,
            "/v1/projects/{project_id}/webhooks",
            &["v1", "projects", project, "webhooks"],
        )
        .body(body)
    }

    /// Like [`Request::update_app`]: the fields of `mask` of a [`Webhook`].
    pub fn update_webhook(project: &str, webhook: &str, body: &impl Serialize, mask: Vec<String>) -> Request {
        Request::new(
            Api::Conversation,
            Method::Patch,
            WEBHOOK,
            &["v1", "projects", project, "webhooks", webhook],
        )
        .body(body)
        .mask(mask)
    }

    pub fn delete_webhook(project: &str, webhook: &str) -> Request {
        Request::new(
            Api::Conversation,
            Method::Delete,
            WEBHOOK,
            &["v1", "projects", project, "webhooks", webhook],
        )
    }

    // Templates v2, on the template hosts.

    pub fn list_templates(project: &str) -> Request {
        Request::new(
            Api::Template,
            Method::Get,
            "/v2/projects/{project_id}/templates",
            &["v2", "projects", project, "templates"],
        )
    }

    pub fn get_template(project: &str, template: &str) -> Request {
        Request::new(
            Api::Template,
            Method::Get,
            TEMPLATE,
            &["v2", "projects", project, "templates", template],
        )
    }

    pub fn create_template(project: &str, body: &Template) -> Request {
        Request::new(
            Api::Template,
            Method::Post,
            "/v2/projects/{project_id}/templates",
            &["v2", "projects", project, "templates"],
        )
        .body(body)
    }

    /// A full replace; `body.version` must be the live version.
    pub fn update_template(project: &str, template: &str, body: &Template) -> Request {
        Request::new(
            Api::Template,
            Method::Put,
            TEMPLATE,
            &["v2", "projects", project, "templates", template],
        )
        .body(body)
    }

    pub fn delete_template(project: &str, template: &str) -> Request {
        Request::new(
            Api::Template,
            Method::Delete,
            TEMPLATE,
            &["v2", "projects", project, "templates", template],
        )
    }

    /// The stored translations (the `latest` copies only when asked for by that version).
    pub fn list_translations(
        project: &str,
        template: &str,
        language_code: Option<&str>,
        translation_version: Option<&str>,
    ) -> Request {
        let mut r = Request::new(
            Api::Template,
            Method::Get,
            "/v2/projects/{project_id}/templates/{template_id}/translations",
            &["v2", "projects", project, "templates", template, "translations"],
        );
        if let Some(l) = language_code {
            r = r.query("language_code", l);
        }
        if let Some(v) = translation_version {
            r = r.query("translation_version", v);
        }
        r
    }

    // Project settings: a singleton without an update mask.

    pub fn get_settings(project: &str) -> Request {
        Request::new(
            Api::Conversation,
            Method::Get,
            SETTINGS,
            &["v1", "projects", project, "settings"],
        )
    }

    pub fn create_settings(project: &str, body: &ProjectSettingsRequest) -> Request {
        Request::new(
            Api::Conversation,
            Method::Post,
            SETTINGS,
            &["v1", "projects", project, "settings"],
        )
        .body(body)
    }

    /// The declared fields of a [`ProjectSettingsRequest`] (a PATCH with no mask merges them).
    pub fn update_settings(project: &str, body: &impl Serialize) -> Request {
        Request::new(
            Api::Conversation,
            Method::Patch,
            SETTINGS,
            &["v1", "projects", project, "settings"],
        )
        .body(body)
    }

    /// The create that stands for an update of settings Sinch showed but does not hold yet
    /// (a fresh project may answer GET with defaults and PATCH with 404 until a POST).
    pub fn settings_created_instead(update: &Request) -> Option<Request> {
        (update.route == SETTINGS && update.method == Method::Patch).then(|| Request {
            method: Method::Post,
            ..update.clone()
        })
    }

    pub fn delete_settings(project: &str) -> Request {
        Request::new(
            Api::Conversation,
            Method::Delete,
            SETTINGS,
            &["v1", "projects", project, "settings"],
        )
    }

    /// One page of identity conflicts (`page_token` empty for the first).
    pub fn list_identity_conflicts(project: &str, page_size: u32, page_token: &str) -> Request {
        let r = Request::new(
            Api::Conversation,
            Method::Get,
            "/v1/projects/{project_id}/contacts:identityConflicts",
            &["v1", "projects", project, "contacts:identityConflicts"],
        )
        .query("page_size", &page_size.to_string());
        match page_token.is_empty() {
            true => r,
            false => r.query("page_token", page_token),
        }
    }
}

const APP: &str = "/v1/projects/{project_id}/apps/{app_id}";
const WEBHOOK: &str = "/v1/projects/{project_id}/webhooks/{webhook_id}";
const TEMPLATE: &str = "/v2/projects/{project_id}/templates/{template_id}";
const SETTINGS: &str = "/v1/projects/{project_id}/settings";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_what_is_sent_where_but_never_the_body() {
        let app: App = serde_json::from_value(serde_json::json!({
            "display_name": "Shop",
            "channel_credentials": [{"channel": "SMS", "static_bearer": {"claimed_identity": "a", "token": "canary-debug-7d1e"}}]
        }))
        .unwrap();
        let shown = format!("{:?}", Request::create_app("p", &app));
        assert_eq!(
            shown,
            r#"Request { method: Post, path: "/v1/projects/p/apps", query: [], update_mask: None, body: Some((not shown)) }"#
        );
    }

    #[test]
    fn segments_are_encoded_and_the_mask_is_one_comma_separated_value() {
        let r = Request::update_app(
            "p 1",
            "01ABC",
            &App::default(),
            vec!["display_name".into(), "retention_policy".into()],
        );
        assert_eq!(r.path, "/v1/projects/p%201/apps/01ABC");
        assert_eq!(
            r.describe(),
            "PATCH /v1/projects/p%201/apps/01ABC?update_mask=display_name,retention_policy"
        );
        let r = Request::list_identity_conflicts("p", 20, "");
        assert_eq!(r.path, "/v1/projects/p/contacts:identityConflicts");
        assert_eq!(
            r.describe(),
            "GET /v1/projects/p/contacts:identityConflicts?page_size=20"
        );
        let r = Request::get_template("p", "a/b");
        assert_eq!(r.path, "/v2/projects/p/templates/a%2Fb");
        assert_eq!(r.unsendable(), None);
    }

    /// `url` skips `.` and `..` segments and strips tab, CR and LF before its dot check, so
    /// `.\t.` would remove `templates` and a PUT would go to the project: such an id stays one
    /// segment, encoded byte by byte, and the path says it must not be sent.
    #[test]
    fn dot_and_control_segments_cannot_change_the_path() {
        let cases = [
            (
                "..",
                "%2E%2E",
                r#"a dot segment, which URL parsers remove or resolve ("..")"#,
            ),
            (
                ".",
                "%2E",
                r#"a dot segment, which URL parsers remove or resolve (".")"#,
            ),
            (".\t.", "%2E%09%2E", r#"a segment with a control character (".\t.")"#),
            (
                "a\r\nb",
                "%61%0D%0A%62",
                r#"a segment with a control character ("a\r\nb")"#,
            ),
            ("", "", r#"an empty segment ("")"#),
        ];
        for (id, encoded, problem) in cases {
            let r = Request::update_template("p", id, &Template::default());
            assert_eq!(r.path, format!("/v2/projects/p/templates/{encoded}"), "{id:?}");
            assert_eq!(r.unsendable().as_deref(), Some(problem), "{id:?}");
        }
        // A path from elsewhere (a saved plan) in any spelling a URL parser reads as a dot.
        for spelled in ["%2e", ".%2E", "%2E.", "%2e%2e"] {
            let mut r = Request::get_template("p", "x");
            r.path = format!("/v2/projects/p/templates/{spelled}");
            assert!(
                r.unsendable().is_some_and(|p| p.starts_with("a dot segment")),
                "{spelled}"
            );
        }
        assert_eq!(Request::get_template("p", "a.b~c_d-1").unsendable(), None);
    }

    #[test]
    fn ids_are_url_unreserved_characters_and_never_only_dots() {
        for ok in ["01JD5X3K9Q", "order_shipped", "welcome.v2", "a~b-c", "..a"] {
            assert!(is_valid_id(ok), "{ok:?}");
        }
        for bad in ["", ".", "..", "...", "a/b", "a?b", "a#b", "a%2Fb", "a b", "a\tb", "é"] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }
}
