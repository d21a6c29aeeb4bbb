//! Where each API lives. Each endpoint is a URL template in which `{region}` becomes the
//! object's region, so one setting serves every region (and the simulator's `/{region}` paths).

use crate::model::Region;
use url::Url;

pub const DEFAULT_AUTH_URL: &str = "https://auth.sinch.com/oauth2/token";
pub const DEFAULT_CONVERSATION_URL: &str = "https://{region}.conversation.api.sinch.com";
pub const DEFAULT_TEMPLATE_URL: &str = "https://{region}.template.api.sinch.com";

/// The environment variables that override the defaults.
pub const AUTH_URL_VAR: &str = "SINCH_AUTH_URL";
pub const CONVERSATION_URL_VAR: &str = "SINCH_CONVERSATION_URL";
pub const TEMPLATE_URL_VAR: &str = "SINCH_TEMPLATE_URL";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    auth: String,
    conversation: String,
    template: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            auth: DEFAULT_AUTH_URL.into(),
            conversation: DEFAULT_CONVERSATION_URL.into(),
            template: DEFAULT_TEMPLATE_URL.into(),
        }
    }
}

impl Endpoints {
    /// The endpoints from `lookup` (the environment, in the CLI), each checked.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> crate::Result<Self> {
        let get = |var: &'static str, default: &str| -> crate::Result<String> {
            let template = lookup(var)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string());
            check(&template).map_err(|message| crate::Error::Config { var, message })?;
            Ok(template.trim_end_matches('/').to_string())
        };
        Ok(Endpoints {
            auth: get(AUTH_URL_VAR, DEFAULT_AUTH_URL)?,
            conversation: get(CONVERSATION_URL_VAR, DEFAULT_CONVERSATION_URL)?,
            template: get(TEMPLATE_URL_VAR, DEFAULT_TEMPLATE_URL)?,
        })
    }

    /// The token endpoint for credentials used in `region`.
    pub fn auth(&self, region: Region) -> Url {
        expand(&self.auth, region)
    }

    /// The Conversation API base URL of `region` (paths start with `/v1/projects/...`).
    pub fn conversation(&self, region: Region) -> Url {
        expand(&self.conversation, region)
    }

    /// The Template Management API base URL of `region` (paths start with `/v2/projects/...`).
    pub fn template(&self, region: Region) -> Url {
        expand(&self.template, region)
    }
}

fn expand(template: &str, region: Region) -> Url {
    Url::parse(&template.replace("{region}", region.as_str())).expect("checked when the endpoints were built")
}

/// An absolute URL in every region; https, or plain http to this machine only: credentials and
/// tokens never cross a network in clear.
fn check(template: &str) -> Result<(), String> {
    for region in Region::ALL {
        let url = Url::parse(&template.replace("{region}", region.as_str()))
            .map_err(|e| format!("{template:?} is not an absolute URL ({e})"))?;
        let host = url.host_str().unwrap_or_default();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(format!(
                    "plain http is allowed only for loopback hosts (127.0.0.1, [::1], localhost); use https for {host}"
                ));
            }
            other => return Err(format!("{template:?} must be an https URL, not {other}")),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{template:?} must not carry a query or fragment"));
        }
    }
    Ok(())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn endpoints(vars: &[(&str, &str)]) -> crate::Result<Endpoints> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Endpoints::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_real_regional_hosts() {
        let e = endpoints(&[]).unwrap();
        assert_eq!(e.auth(Region::Eu).as_str(), "https://auth.sinch.com/oauth2/token");
        assert_eq!(
            e.conversation(Region::Eu).as_str(),
            "https://eu.conversation.api.sinch.com/"
        );
        assert_eq!(e.template(Region::Br).as_str(), "https://br.template.api.sinch.com/");
    }

    #[test]
    fn region_is_substituted_in_paths_too() {
        let e = endpoints(&[
            (AUTH_URL_VAR, "http://127.0.0.1:8080/oauth2/token"),
            (CONVERSATION_URL_VAR, "http://127.0.0.1:8080/{region}/"),
            (TEMPLATE_URL_VAR, "http://localhost:8080/{region}"),
        ])
        .unwrap();
        assert_eq!(e.conversation(Region::Us).as_str(), "http://127.0.0.1:8080/us");
        assert_eq!(e.template(Region::Eu).as_str(), "http://localhost:8080/eu");
    }

    #[test]
    fn plain_http_is_refused_off_this_machine() {
        let err = endpoints(&[(CONVERSATION_URL_VAR, "http://10.0.0.5:8080/{region}")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SINCH_CONVERSATION_URL: plain http is allowed only for loopback hosts (127.0.0.1, [::1], localhost); use https for 10.0.0.5"
        );
        assert!(endpoints(&[(TEMPLATE_URL_VAR, "http://[::1]:9/{region}")]).is_ok());
        let err = endpoints(&[(AUTH_URL_VAR, "http://auth.example.com/token")]).unwrap_err();
        assert!(err.to_string().starts_with("SINCH_AUTH_URL: plain http"), "{err}");
        let err = endpoints(&[(AUTH_URL_VAR, "ftp://127.0.0.1/token")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SINCH_AUTH_URL: \"ftp://127.0.0.1/token\" must be an https URL, not ftp"
        );
        let err = endpoints(&[(TEMPLATE_URL_VAR, "{region}.example.com")]).unwrap_err();
        assert!(err.to_string().contains("is not an absolute URL"), "{err}");
    }
}
