//! Nothing secret leaves the process (design rule 14): the one scrubber of every text that may
//! quote a credential on its way to output, a saved plan, a status, an event or a log.
//!
//! Two kinds of text, two treatments:
//! - [`upstream`]: what an answer says (an API error's message, a proxy's page, a token
//!   endpoint's `error_description`). Anything there may quote the request it answers, so every
//!   credential *form* is taken out (`Authorization: Bearer ...`, `Basic ...`, `access_token=...`,
//!   `"client_secret": "..."`), whatever its value, and the text is cut to a bounded length. Done
//!   once, where the answer is read (the client), so no error carries it further.
//! - [`Known`]: the values this process holds (the access key's secret, `base64(id:secret)` as
//!   Basic auth sends it, live tokens, the input's Secret values), replaced wherever they appear.
//!   Applied where text leaves: the CLI's output and the controller's status and events.
//!   Patterns are not applied there: a template text saying "Basic plan" is the user's, and a
//!   plan must show it as it is.

use base64::Engine;

/// What an upstream text is cut to, in characters: enough for any API error a person reads,
/// too little for a debug page to carry a request's worth of headers.
pub const UPSTREAM_TEXT_LIMIT: usize = 300;

/// What replaces a secret.
pub use crate::sinch::SENSITIVE;

/// Names whose value is a credential, in `name=value`, `name: value` or `"name": "value"` form.
const CREDENTIAL_NAMES: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "key_secret",
    "keysecret",
    "password",
    "api_key",
    "apikey",
    "x-api-key",
    "authorization",
    "cookie",
    "set-cookie",
];

/// Authorization schemes whose next word is a credential.
const SCHEMES: &[&str] = &["bearer", "basic", "token", "digest"];

/// An answer's text with every credential form taken out, cut to [`UPSTREAM_TEXT_LIMIT`]
/// characters (with `...` when cut), on one line.
pub fn upstream(text: &str) -> String {
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let scrubbed = credential_values(&schemes(&words));
    cut(&scrubbed, UPSTREAM_TEXT_LIMIT)
}

/// `text` cut to `limit` characters, `...` marking the cut.
pub fn cut(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        None => text.to_string(),
        Some((end, _)) => format!("{}...", &text[..end]),
    }
}

/// The word after an authorization scheme (`Bearer abc.def`) is a credential.
fn schemes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut words = text.split(' ').peekable();
    while let Some(word) = words.next() {
        out.push_str(word);
        let bare = word
            .trim_matches(|c: char| !c.is_ascii_alphabetic())
            .to_ascii_lowercase();
        if SCHEMES.contains(&bare.as_str())
            && let Some(next) = words.peek()
            && looks_like_credential(next)
        {
            words.next();
            out.push(' ');
            out.push_str(SENSITIVE);
        }
        if words.peek().is_some() {
            out.push(' ');
        }
    }
    out
}

/// A token-like word: base64, JWT or hex characters, long enough not to be prose.
fn looks_like_credential(word: &str) -> bool {
    let token = word.trim_end_matches(['"', '\'', ',', ';', ')', '}', ']']);
    token.len() >= 8
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+/=:".contains(c))
}

/// The value after a credential's name (`"access_token": "..."`, `password=...`).
fn credential_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let next = CREDENTIAL_NAMES
            .iter()
            .filter_map(|name| lower[at..].find(name).map(|i| (at.saturating_add(i), name.len())))
            .min();
        let Some((start, len)) = next else { break };
        let name_end = start.saturating_add(len);
        let Some(value) = value_after(text, name_end) else {
            out.push_str(&text[at..name_end]);
            at = name_end;
            continue;
        };
        out.push_str(&text[at..value.start]);
        out.push_str(SENSITIVE);
        at = value.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Where the value of a name ending at `from` lies: after an optional quote, `:` or `=`, and
/// an optional quote; up to the closing quote, or the first separator when unquoted. An
/// `Authorization: Bearer x` value is the whole `Bearer x` (the scheme pass left `(sensitive)`).
fn value_after(text: &str, from: usize) -> Option<std::ops::Range<usize>> {
    let rest = &text[from..];
    let after_name = rest.trim_start_matches(['"', '\'']);
    let after_name = after_name.trim_start();
    let separator = after_name.chars().next().filter(|c| *c == ':' || *c == '=')?;
    let value = after_name[separator.len_utf8()..].trim_start();
    let offset = text.len().saturating_sub(value.len());
    if let Some(quoted) = value.strip_prefix('"') {
        let end = quoted.find('"').unwrap_or(quoted.len());
        let start = offset.saturating_add(1);
        return Some(start..start.saturating_add(end));
    }
    let word_end = |from: usize| {
        value[from..]
            .find(|c: char| c.is_whitespace() || "&,;}\"<".contains(c))
            .map_or(value.len(), |i| from.saturating_add(i))
    };
    let mut end = word_end(0);
    // `Authorization: Bearer x`: the scheme and its credential.
    if SCHEMES.contains(&value[..end].to_ascii_lowercase().as_str()) && value[end..].starts_with(' ') {
        end = word_end(end.saturating_add(1));
    }
    (end > 0).then(|| offset..offset.saturating_add(end))
}

/// The secret values this process holds, each taken out of a text wherever it appears.
#[derive(Clone, Default)]
pub struct Known {
    values: Vec<String>,
}

impl std::fmt::Debug for Known {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Known({} values)", self.values.len())
    }
}

impl Known {
    /// Adds a value. Values under 4 characters are left out: replacing them would mangle the
    /// text and guard nothing.
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.chars().count() >= 4 && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_string());
        }
    }

    /// An access key: its secret, and the `base64(id:secret)` that HTTP Basic sends.
    pub fn add_key(&mut self, key: &crate::sinch::client::Credentials) {
        let key_secret = key.key_secret.0.as_str();
        self.add(key_secret);
        let basic = format!("{}:{key_secret}", key.key_id);
        self.add(&base64::engine::general_purpose::STANDARD.encode(&basic));
        self.add(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&basic));
    }

    pub fn extend(&mut self, other: &Known) {
        for v in &other.values {
            self.add(v);
        }
    }

    /// `text` with every known value shown as `(sensitive)`; longer values first, so that a
    /// value containing another is taken out whole.
    pub fn scrub(&self, text: &str) -> String {
        let mut values: Vec<&String> = self.values.iter().filter(|v| text.contains(v.as_str())).collect();
        if values.is_empty() {
            return text.to_string();
        }
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = text.to_string();
        for value in values {
            out = out.replace(value.as_str(), SENSITIVE);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_text_loses_every_credential_form() {
        let cases = [
            (
                "upstream said: GET /v1/apps Authorization: Bearer X837.abc-DEF_ghi Accept: */*",
                "upstream said: GET /v1/apps Authorization: (sensitive) Accept: */*",
            ),
            ("bearer eyJhbGciOiJIUzI1NiJ9.e30.sig done", "bearer (sensitive) done"),
            ("Basic a2V5LWlkOmtleS1zZWNyZXQ= refused", "Basic (sensitive) refused"),
            (
                r#"{"access_token": "tok-123456789", "expires_in": 3600}"#,
                r#"{"access_token": "(sensitive)", "expires_in": 3600}"#,
            ),
            (
                "grant_type=x&client_secret=s3cr3t-value&scope=y",
                "grant_type=x&client_secret=(sensitive)&scope=y",
            ),
            ("password: hunter22, user: ada", "password: (sensitive), user: ada"),
        ];
        for (text, want) in cases {
            assert_eq!(upstream(text), want, "{text}");
        }
    }

    #[test]
    fn prose_survives_and_long_texts_are_cut() {
        assert_eq!(
            upstream("the token is invalid; basic auth is rate limited"),
            "the token is invalid; basic auth is rate limited"
        );
        assert_eq!(upstream("a\n\n  b\tc"), "a b c");
        let long = upstream(&"x".repeat(1000));
        assert_eq!(long.chars().count(), UPSTREAM_TEXT_LIMIT + 3);
        assert!(long.ends_with("..."));
        assert_eq!(upstream(&"é".repeat(400)).chars().count(), UPSTREAM_TEXT_LIMIT + 3);
    }

    #[test]
    fn known_values_go_wherever_they_appear_including_basic_auth() {
        let mut known = Known::default();
        known.add_key(&crate::sinch::client::Credentials {
            key_id: "key-id".into(),
            key_secret: crate::sinch::Sensitive("canary-key-secret".into()),
        });
        known.add("tok");
        let basic = base64::engine::general_purpose::STANDARD.encode("key-id:canary-key-secret");
        let text = format!("sent canary-key-secret and {basic} with tok");
        assert_eq!(known.scrub(&text), "sent (sensitive) and (sensitive) with tok");
    }
}
