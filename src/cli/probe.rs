//! `sinch-operator probe`: settles the open questions of docs/sinch-api.md against a real
//! project with throwaway objects, deletes them, and says which simulator variant Sinch follows.
//! It never changes an object it did not create (the settings are sent back as they were read).

use super::{connection, exit};
use crate::sinch::Sensitive;
use crate::sinch::app::{App, ChannelCredentials, StaticBearer};
use crate::sinch::client::Project;
use crate::sinch::error::{Class, ErrorKind, RequestError};
use crate::sinch::template::{Template, Translation};
use crate::sinch::webhook::Webhook;
use serde::Serialize;
use std::io::Write;

/// The name of everything the probe creates, before a random part: whoever finds one left
/// over knows what made it and that it may go.
pub const PREFIX: &str = "sinch-operator-probe-";
/// Where the probe's webhooks point (never called: the app sends nothing).
const TARGET: &str = "https://example.com/sinch-operator-probe/";
/// The variant of an answer the simulator plays by default.
const DEFAULT: &str = "default";
/// Webhooks an app may have ([CONV] `Webhooks_CreateWebhook`): the probe makes one more.
const MAX_WEBHOOKS: usize = 5;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub connection: connection::ConnectionArgs,
    /// How to show the answers.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// The answer to one question, or why the check could not run.
#[derive(Serialize, Debug, PartialEq)]
pub struct Finding {
    pub question: &'static str,
    pub answer: Option<String>,
    /// How the simulator plays this answer: `default`, `--variant NAME` or `--mask-secrets`;
    /// none when no setting does.
    pub variant: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An object the probe created and could not delete: a person has to.
#[derive(Serialize, Debug, PartialEq)]
pub struct LeftOver {
    pub kind: &'static str,
    pub id: String,
    pub error: String,
}

#[derive(Serialize, Debug, Default)]
pub struct Report {
    pub answers: Vec<Finding>,
    pub left_over: Vec<LeftOver>,
}

struct Answer {
    text: String,
    variant: Option<&'static str>,
}

fn answer(text: impl Into<String>, variant: Option<&'static str>) -> Answer {
    Answer {
        text: text.into(),
        variant,
    }
}

/// A check's outcome: an answer, or why it could not run.
type Checked = Result<Answer, String>;

/// What one run creates, with the secret values it sends.
struct Probe {
    project: Project,
    name: String,
    /// The SMS credential's token: random, so that a GET showing it proves it is in clear.
    token: String,
    /// The RCS credential's token of the channel order check.
    rcs_token: String,
    template: Option<String>,
    app: Option<String>,
    webhooks: Vec<String>,
}

/// Random letters and digits: never starting `fail-`, which the simulator's channels refuse.
fn random(n: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric).take(n).collect()
}

impl Probe {
    fn new(project: Project) -> Probe {
        Probe {
            project,
            name: format!("{PREFIX}{}", random(10).to_ascii_lowercase()),
            token: random(32),
            rcs_token: random(32),
            template: None,
            app: None,
            webhooks: Vec::new(),
        }
    }

    /// Every check in order, then the cleanup, whatever failed.
    async fn run(mut self) -> Report {
        let mut answers = Vec::new();
        let mut add = |question, checked: Checked| answers.push(finding(question, checked));
        add("project settings", self.settings().await);
        add("stale template PUT", self.stale_put().await);
        let read = self.create_app().await;
        add(
            "secrets on GET",
            read.as_ref().map(|app| self.secrets(app)).map_err(Clone::clone),
        );
        add("retry settings left unset", read.map(|app| unset_retry(&app)));
        add("credential ordinal outside LINE", self.ordinal().await);
        add("channel order", self.channel_order().await);
        add("sixth webhook", self.sixth_webhook().await);
        Report {
            answers,
            left_over: self.clean_up().await,
        }
    }

    async fn settings(&self) -> Checked {
        let Some(shown) = self.project.get_settings().await.map_err(|e| e.to_string())? else {
            return Ok(answer("404 when none", Some(DEFAULT)));
        };
        // The values just read, sent back: a PATCH that changes nothing, or is refused.
        match self.project.update_settings(&shown.settings.unwrap_or_default()).await {
            Ok(_) => Ok(answer("the project has settings: not settled here", None)),
            Err(e) => match refusal(&e) {
                Some((404, _)) => Ok(answer(
                    "200 with defaults, PATCH 404 until a POST",
                    Some("--variant settings-defaults"),
                )),
                Some((status, api)) => Ok(answer(format!("200, then PATCH {}", shown_status(status, api)), None)),
                None => Err(e.to_string()),
            },
        }
    }

    async fn stale_put(&mut self) -> Checked {
        let mut body = Template {
            id: Some(self.name.clone()),
            default_translation: Some("en-US".into()),
            translations: Some(vec![Translation {
                language_code: Some("en-US".into()),
                message: serde_json::json!({"text_message": {"text": "sinch-operator probe"}})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                ..Translation::default()
            }]),
            ..Template::default()
        };
        // Recorded before it is sent: the id is ours, and a create whose answer was lost
        // still has to be deleted.
        self.template = Some(self.name.clone());
        let failed = |what: &str, e: RequestError| format!("{what}: {e}");
        self.project
            .create_template(&body)
            .await
            .map_err(|e| failed("the template could not be created", e))?;
        body.version = Some(1);
        self.project
            .update_template(&self.name, &body)
            .await
            .map_err(|e| failed("the first PUT, at version 1, was refused", e))?;
        match self.project.update_template(&self.name, &body).await {
            Ok(_) => Ok(answer("accepted: a stale version is not refused", None)),
            Err(e) => match refusal(&e) {
                Some((409, api)) => Ok(answer(shown_status(409, api), Some(DEFAULT))),
                Some((400, api)) => Ok(answer(shown_status(400, api), Some("--variant stale-put-400"))),
                Some((status, api)) => Ok(answer(format!("unknown: {}", shown_status(status, api)), None)),
                None => Err(e.to_string()),
            },
        }
    }

    fn sms(&self, ordinal: Option<i64>) -> ChannelCredentials {
        static_bearer("SMS", &self.name, &self.token, ordinal)
    }

    /// Creates the app of checks 3 to 7 and reads it back.
    async fn create_app(&mut self) -> Result<App, String> {
        let body = App {
            display_name: Some(self.name.clone()),
            channel_credentials: Some(vec![self.sms(None)]),
            ..App::default()
        };
        let created = self
            .project
            .create_app(&body)
            .await
            .map_err(|e| format!("the app could not be created: {e}"))?;
        let id = created.id.ok_or_else(|| {
            format!(
                "the app was created without an id in the answer: find the app named {} and delete it",
                self.name
            )
        })?;
        self.app = Some(id.clone());
        self.project.get_app(&id).await.map_err(|e| e.to_string())
    }

    fn app_id(&self) -> Result<String, String> {
        self.app.clone().ok_or_else(|| "no app: it could not be created".into())
    }

    fn secrets(&self, app: &App) -> Answer {
        let sms = app.channel_credentials.iter().flatten().find(|c| c.channel == "SMS");
        let shown = sms
            .and_then(|c| c.static_bearer.as_ref())
            .and_then(|b| b.token.as_ref());
        secret_shown(shown.map(|t| t.0.as_str()), &self.token)
    }

    async fn patch_channels(&self, app: &str, channels: Vec<ChannelCredentials>) -> Result<App, RequestError> {
        let body = App {
            channel_credentials: Some(channels),
            ..App::default()
        };
        self.project
            .update_app(app, &body, vec!["channel_credentials".into()])
            .await
    }

    async fn ordinal(&self) -> Checked {
        let app = self.app_id()?;
        if let Err(e) = self.patch_channels(&app, vec![self.sms(Some(2))]).await {
            return match refusal(&e) {
                Some((status, api)) => Ok(answer(format!("refused: {}", shown_status(status, api)), None)),
                None => Err(e.to_string()),
            };
        }
        let read = self.project.get_app(&app).await.map_err(|e| e.to_string())?;
        let sms = read.channel_credentials.iter().flatten().find(|c| c.channel == "SMS");
        Ok(match sms.and_then(|c| c.credential_ordinal_number) {
            None | Some(0) => answer("stored as 0", Some(DEFAULT)),
            Some(2) => answer("kept as sent", None),
            Some(n) => answer(format!("stored as {n}"), None),
        })
    }

    async fn channel_order(&self) -> Checked {
        let app = self.app_id()?;
        let rcs = static_bearer("RCS", &self.name, &self.rcs_token, None);
        let failed = |e: RequestError| format!("the channels could not be set: {e}");
        self.patch_channels(&app, vec![self.sms(None), rcs.clone()])
            .await
            .map_err(failed)?;
        self.patch_channels(&app, vec![rcs, self.sms(None)])
            .await
            .map_err(failed)?;
        let read = self.project.get_app(&app).await.map_err(|e| e.to_string())?;
        let order: Vec<&str> = read
            .channel_credentials
            .iter()
            .flatten()
            .map(|c| c.channel.as_str())
            .collect();
        Ok(match order[..] {
            ["RCS", "SMS"] => answer("kept, a reorder is applied", Some(DEFAULT)),
            _ => answer(format!("sent RCS, SMS; read back {}", order.join(", ")), None),
        })
    }

    async fn create_webhook(&mut self, app: &str, n: usize) -> Result<(), RequestError> {
        let body = Webhook {
            app_id: Some(app.to_string()),
            target: Some(format!("{TARGET}{n}")),
            target_type: Some("HTTP".into()),
            triggers: Some(vec!["MESSAGE_DELIVERY".into()]),
            ..Webhook::default()
        };
        let created = self.project.create_webhook(&body).await?;
        // One without an id in the answer is found by the cleanup's list of the app's webhooks.
        self.webhooks.extend(created.id);
        Ok(())
    }

    async fn sixth_webhook(&mut self) -> Checked {
        let app = self.app_id()?;
        for n in 1..=MAX_WEBHOOKS {
            self.create_webhook(&app, n)
                .await
                .map_err(|e| format!("webhook {n} of {MAX_WEBHOOKS} could not be created: {e}"))?;
        }
        match self.create_webhook(&app, MAX_WEBHOOKS + 1).await {
            Ok(()) => Ok(answer(
                format!("accepted: more than {MAX_WEBHOOKS} webhooks per app"),
                None,
            )),
            Err(e) => match refusal(&e) {
                Some((400, Some(api))) if api == "INVALID_ARGUMENT" => {
                    Ok(answer(shown_status(400, Some(api)), Some(DEFAULT)))
                }
                Some((status, api)) => Ok(answer(shown_status(status, api), None)),
                None => Err(e.to_string()),
            },
        }
    }

    /// Deletes what the run created, each object tried whatever failed before; a 404 means it
    /// is gone already.
    async fn clean_up(self) -> Vec<LeftOver> {
        let mut left = Vec::new();
        let mut gone = |kind, id: &str, result: Result<(), RequestError>| match result {
            Err(e) if !e.is_not_found() => left.push(LeftOver {
                kind,
                id: id.to_string(),
                error: e.to_string(),
            }),
            _ => {}
        };
        let mut webhooks = self.webhooks.clone();
        if let Some(app) = &self.app {
            // Every webhook of the app is the probe's, those whose create answer was lost too.
            if let Ok(listed) = self.project.list_webhooks(app).await {
                webhooks.extend(listed.into_iter().filter_map(|w| w.id));
            }
        }
        webhooks.sort();
        webhooks.dedup();
        for id in &webhooks {
            gone("webhook", id, self.project.delete_webhook(id).await);
        }
        if let Some(app) = &self.app {
            gone("app", app, self.project.delete_app(app).await);
        }
        if let Some(template) = &self.template {
            gone("template", template, self.project.delete_template(template).await);
        }
        left
    }
}

fn static_bearer(channel: &str, name: &str, token: &str, ordinal: Option<i64>) -> ChannelCredentials {
    ChannelCredentials {
        channel: channel.into(),
        credential_ordinal_number: ordinal,
        static_bearer: Some(StaticBearer {
            claimed_identity: Some(name.into()),
            token: Some(Sensitive(token.into())),
            ..StaticBearer::default()
        }),
        ..ChannelCredentials::default()
    }
}

fn finding(question: &'static str, checked: Checked) -> Finding {
    match checked {
        Ok(a) => Finding {
            question,
            answer: Some(a.text),
            variant: a.variant,
            error: None,
        },
        Err(error) => Finding {
            question,
            answer: None,
            variant: None,
            error: Some(error),
        },
    }
}

/// The HTTP status and the API's `status` string of a refusal: an answer to a question. Any
/// other failure (no answer, a server error after retries, refused credentials) means the
/// check could not run.
fn refusal(e: &RequestError) -> Option<(u16, Option<String>)> {
    match &e.kind {
        ErrorKind::Status { status, api, .. } if matches!(e.class(), Class::Terminal | Class::NotFound) => {
            Some((*status, api.as_ref().and_then(|a| a.status.clone())))
        }
        _ => None,
    }
}

fn shown_status(status: u16, api: Option<String>) -> String {
    match api {
        Some(api) => format!("{status} {api}"),
        None => status.to_string(),
    }
}

/// How a secret came back: the token itself is never part of the answer, only its shape.
fn secret_shown(shown: Option<&str>, token: &str) -> Answer {
    let last4: String = token.chars().skip(token.chars().count().saturating_sub(4)).collect();
    match shown {
        None => answer("omitted", None),
        Some("") => answer("empty", None),
        Some(s) if s == token => answer("in clear", Some(DEFAULT)),
        Some(s) if s.chars().all(|c| c == '*') => answer(
            format!("all stars, {} of them", s.chars().count()),
            Some("--mask-secrets"),
        ),
        Some(s) if s.strip_prefix("****") == Some(last4.as_str()) => {
            answer("****<4 visible>", Some("--variant partial-mask"))
        }
        Some(s) => answer(
            format!(
                "masked as {} ({} characters; the token has {})",
                mask_pattern(s, token),
                s.chars().count(),
                token.chars().count()
            ),
            None,
        ),
    }
}

/// `shown` with the characters it shares with the token's start and end counted, not shown
/// (`<2 visible>****<4 visible>`), and a middle of anything but mask characters counted too.
fn mask_pattern(shown: &str, token: &str) -> String {
    let (s, t): (Vec<char>, Vec<char>) = (shown.chars().collect(), token.chars().collect());
    let start = s.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let end = s[start..]
        .iter()
        .rev()
        .zip(t.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let middle = &s[start..s.len().saturating_sub(end)];
    let mut out = String::new();
    if start > 0 {
        out.push_str(&format!("<{start} visible>"));
    }
    if middle.iter().all(|c| matches!(c, '*' | '•' | '.' | '…' | '#')) {
        out.extend(middle);
    } else {
        out.push_str(&format!("<{} other>", middle.len()));
    }
    if end > 0 {
        out.push_str(&format!("<{end} visible>"));
    }
    out
}

/// Retry settings and fallback of an app that set neither.
fn unset_retry(app: &App) -> Answer {
    let fields = [
        (
            "message_retry_settings",
            serde_json::to_value(&app.message_retry_settings),
        ),
        (
            "delivery_report_based_fallback",
            serde_json::to_value(&app.delivery_report_based_fallback),
        ),
    ];
    let shown: Vec<(&str, serde_json::Value)> = fields
        .into_iter()
        .map(|(field, v)| (field, v.unwrap_or_default()))
        .collect();
    if shown.iter().all(|(_, v)| v.is_null()) {
        return answer("null", Some("--variant null-defaults"));
    }
    if shown.iter().all(|(field, v)| {
        Some(v)
            == <crate::sinch::app::App as crate::sinch::Wire>::FIELDS
                .server_default(field)
                .as_ref()
    }) {
        return answer("the defaults shown", Some(DEFAULT));
    }
    let each: Vec<String> = shown.iter().map(|(field, v)| format!("{field} {v}")).collect();
    answer(each.join(", "), None)
}

impl Report {
    fn ran(&self) -> bool {
        self.answers.iter().all(|f| f.error.is_none()) && self.left_over.is_empty()
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.answers {
            let said = match (&f.answer, &f.error) {
                (_, Some(error)) => format!("could not run: {error}"),
                (answer, None) => answer.clone().unwrap_or_default(),
            };
            let line = match f.variant {
                Some(DEFAULT) => format!("{}: {said} (the simulator's default)", f.question),
                Some(variant) => format!("{}: {said} ({variant})", f.question),
                None => format!("{}: {said}", f.question),
            };
            out.push_str(&line);
            out.push('\n');
        }
        for l in &self.left_over {
            out.push_str(&format!(
                "left over: {} {} could not be deleted ({}): delete it by hand\n",
                l.kind, l.id, l.error
            ));
        }
        out
    }
}

pub fn exec(args: Args) -> crate::Result<u8> {
    let runtime = super::runtime()?;
    let (report, known) = runtime.block_on(async {
        let connection = connection::connect(&args.connection, |v| std::env::var(v).ok()).await?;
        let project = connection.defaults.project.clone().ok_or(crate::Error::Config {
            var: connection::PROJECT_VAR,
            message: "not set: the project to probe".into(),
        })?;
        let probe = Probe::new(connection.client.project(
            &project,
            connection.defaults.region,
            connection.credentials.clone(),
        ));
        let mut known = super::plan::known(&crate::input::Input::default(), &connection);
        known.add(&probe.token);
        known.add(&probe.rcs_token);
        let report = probe.run().await;
        connection.close().await;
        Ok::<_, crate::Error>((report, known))
    })?;
    let shown = match args.output {
        Output::Text => report.text(),
        Output::Json => serde_json::to_string_pretty(&report).expect("a report always serialises") + "\n",
    };
    std::io::stdout()
        .write_all(known.scrub(&shown).as_bytes())
        .map_err(crate::Error::Output)?;
    Ok(if report.ran() { exit::OK } else { exit::ERROR })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_described_by_its_shape_never_shown() {
        let token = "abcdefghijklmnop1234";
        let text = |shown| secret_shown(shown, token).text;
        assert_eq!(text(Some(token)), "in clear");
        assert_eq!(text(Some("********")), "all stars, 8 of them");
        assert_eq!(text(Some("****1234")), "****<4 visible>");
        assert_eq!(text(None), "omitted");
        assert_eq!(
            text(Some("ab••••••34")),
            "masked as <2 visible>••••••<2 visible> (10 characters; the token has 20)"
        );
        assert_eq!(
            text(Some("zzzz")),
            "masked as <4 other> (4 characters; the token has 20)"
        );
    }
}
