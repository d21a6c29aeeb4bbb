//! Which access key an object's reconcile uses, and what its namespace may reach with it.
//!
//! In order: the object's own `credentialsRef` (a key its namespace holds, so it reaches only
//! what that key reaches); the `SinchConnection` it names; the connection the admin made the
//! default of its namespace; the operator's own key (`SINCH_KEY_ID`...), only in the namespaces
//! the admin named with `run --operator-key-namespaces` (`*`: all, a single-tenant install).
//! Nothing falls back to the operator's key on its own: connections that disappear leave their
//! namespaces refused (`NoConnection`), not writing into the operator's project. A connection
//! fixes the project (an object naming another is refused before anything is sent) and which
//! namespaces may manage the project's settings.

use super::status::Reason;
use super::status::{Blocked, Retry};
use crate::engine::Defaults;
use crate::model::{AppOf, ConversationApp, Kind, LocalRef, Object, Region, SinchConnection};
use crate::sinch::Sensitive;
use crate::sinch::client::Credentials;
use futures_util::FutureExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::ResourceExt;
use kube::api::Api;
use kube::core::{PartialObjectMeta, Selector, SelectorExt};
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which namespaces the operator's own key serves (when no connection allows them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OperatorKey {
    /// None: an object needs a connection or its own `credentialsRef`.
    #[default]
    Nowhere,
    /// Every namespace (`*`): a single-tenant install.
    Everywhere,
    Only(std::collections::BTreeSet<String>),
}

impl std::str::FromStr for OperatorKey {
    type Err = String;
    /// `*`, or namespace names separated by commas; empty: none.
    fn from_str(s: &str) -> Result<OperatorKey, String> {
        let names: std::collections::BTreeSet<String> = s
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        match names.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            [] => Ok(OperatorKey::Nowhere),
            ["*"] => Ok(OperatorKey::Everywhere),
            _ if names.contains("*") => Err("`*` stands alone: every namespace".into()),
            _ => Ok(OperatorKey::Only(names)),
        }
    }
}

impl OperatorKey {
    pub fn serves(&self, ns: &str) -> bool {
        match self {
            OperatorKey::Nowhere => false,
            OperatorKey::Everywhere => true,
            OperatorKey::Only(names) => names.contains(ns),
        }
    }
}

/// What decides which key and project an object reaches Sinch with: the operator's own key and
/// where it serves, the admin's connections, the namespaces' labels and the apps (a webhook
/// with `appRef` uses its app's). The controller's watches keep the stores current;
/// `plan --from-cluster` fills them from one list each.
pub struct Tenancy {
    pub kube: kube::Client,
    /// The operator's own access key, for objects without `credentialsRef`.
    pub credentials: Option<Credentials>,
    /// The namespaces it serves (when no connection allows them).
    pub operator_key: OperatorKey,
    pub defaults: Defaults,
    /// Where the Secrets of SinchConnections live.
    pub operator_namespace: String,
    /// What the webhooks' apps say (their ids, project, region, readiness, credentials).
    pub apps: Store<ConversationApp>,
    pub connections: Store<SinchConnection>,
    /// Namespaces' labels, for connections that select namespaces by label.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// The Secrets read so far, when reads are remembered (`plan --from-cluster`, one pass over
    /// many objects naming the same Secrets). The controller reads each anew (but for reads
    /// seconds apart, [`SECRET_REUSE`]): Secrets are not watched, and a rotated one must be seen
    /// at the next poll.
    pub read: Option<SecretsRead>,
    /// The reads of Secrets on their way or just answered: a reconcile that asks for a Secret
    /// shares another's read of it (see [`SECRET_REUSE`]). At 1,000 apps whose tokens are in one
    /// Secret, each poll read that Secret (100 KiB) once per app.
    pub shared: SharedReads,
}

/// How long a Secret's answer also serves the reconciles that ask after it. During a
/// convergence the apps of a namespace ask for their Secret one after another: sharing only
/// the reads in flight still made 930 GETs of the bench's 100 KiB Secret at 1,000 apps, each a
/// read from etcd for the API server that the controller's writes wait behind. A rotated Secret
/// is still seen at the object's next poll, this much later at most.
pub const SECRET_REUSE: Duration = Duration::from_secs(2);

/// One read of a Secret, awaited by every reconcile that asked for it meanwhile.
type SharedRead = futures_util::future::Shared<
    futures_util::future::BoxFuture<'static, Result<Option<Arc<Secret>>, Arc<kube::Error>>>,
>;

struct Read {
    read: SharedRead,
    /// When it was answered; until then it is in flight.
    answered: Option<Instant>,
}

#[derive(Default)]
pub struct SharedReads(std::sync::Mutex<std::collections::HashMap<(String, String), Read>>);

impl SharedReads {
    /// The reads held: in flight, or answered less than [`SECRET_REUSE`] ago.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.0.lock().expect("never poisoned").len()
    }
}

/// Secrets by (namespace, name), `None` where none exists.
pub type SecretsRead = std::sync::Mutex<std::collections::HashMap<(String, String), Option<Arc<Secret>>>>;

/// What a reconcile reaches Sinch with.
#[derive(Clone, Debug)]
pub struct Access {
    pub credentials: Credentials,
    pub defaults: Defaults,
    /// The connection it came from (none: the object's own key, or a single-tenant install).
    pub connection: Option<Arc<SinchConnection>>,
}

/// The access of `object` (a webhook with `appRef` already resolved to its app's placement).
pub async fn access(object: &Object, ctx: &Tenancy) -> Result<Access, Blocked> {
    let ns = object.namespace();
    if let Some(r) = credentials_ref(object, ctx) {
        let secret = get_tenant_secret(ctx, ns, &r.name, "spec.credentialsRef")
            .await?
            .ok_or_else(|| {
                Blocked::new(
                    Reason::CredentialsNotFound,
                    format!("Secret {ns}/{} (spec.credentialsRef) does not exist", r.name),
                    Retry::Poll,
                )
            })?;
        let (credentials, defaults) = credentials_from(&secret, "spec.credentialsRef", &ctx.defaults)?;
        return Ok(Access {
            credentials,
            defaults,
            connection: None,
        });
    }
    let connection = match connection_of(object, ctx) {
        Ok(Some(connection)) => connection,
        // No connection allows the namespace: the operator's key, where the admin said so.
        Ok(None)
        | Err(Blocked {
            reason: Reason::NoConnection,
            ..
        }) if ctx.operator_key.serves(ns) => {
            return match &ctx.credentials {
                Some(c) => Ok(Access {
                    credentials: c.clone(),
                    defaults: ctx.defaults.clone(),
                    connection: None,
                }),
                None => Err(Blocked::new(
                    Reason::CredentialsMissing,
                    "no SinchConnection allows this namespace, spec.credentialsRef is not set and the operator has no SINCH_KEY_ID and SINCH_KEY_SECRET",
                    Retry::Poll,
                )),
            };
        }
        Ok(None) => return Err(no_connection(ns)),
        Err(blocked) => return Err(blocked),
    };
    let name = connection.name_any();
    let spec = &connection.spec;
    if let Some(project) = &object.placement().project_id
        && *project != spec.project_id
    {
        return Err(Blocked::new(
            Reason::ProjectNotAllowed,
            format!(
                "spec.projectId {project:?} is not the project of SinchConnection {name} ({}): this namespace may use only that project",
                spec.project_id
            ),
            Retry::OnChange,
        ));
    }
    if object.kind() == Kind::ProjectSettings && !spec.settings_namespaces.iter().any(|n| n == ns) {
        return Err(Blocked::new(
            Reason::SettingsNotAllowed,
            format!(
                "SinchConnection {name} does not let namespace {ns} manage the settings of project {} (spec.settingsNamespaces)",
                spec.project_id
            ),
            Retry::Poll,
        ));
    }
    let secret_name = &spec.credentials_secret_ref.name;
    let operator_ns = &ctx.operator_namespace;
    let secret = get_secret(ctx, operator_ns, secret_name).await?.ok_or_else(|| {
        Blocked::new(
            Reason::CredentialsNotFound,
            format!("SinchConnection {name}: Secret {operator_ns}/{secret_name} does not exist"),
            Retry::Poll,
        )
    })?;
    let defaults = Defaults {
        project: Some(spec.project_id.clone()),
        region: spec.region.unwrap_or(Region::Us),
    };
    let (credentials, _) = credentials_from(&secret, &format!("SinchConnection {name}"), &defaults)?;
    Ok(Access {
        credentials,
        defaults,
        connection: Some(connection),
    })
}

/// The connection an object uses: the one it names, else its namespace's default; `None` only
/// while no connection exists in the cluster.
fn connection_of(object: &Object, ctx: &Tenancy) -> Result<Option<Arc<SinchConnection>>, Blocked> {
    let ns = object.namespace();
    let all = ctx.connections.state();
    if let Some(r) = &object.placement().connection_ref {
        let Some(c) = all.iter().find(|c| c.name_any() == r.name) else {
            return Err(Blocked::new(
                Reason::ConnectionNotFound,
                format!("SinchConnection {} (spec.connectionRef) does not exist", r.name),
                Retry::Poll,
            ));
        };
        if !allows(c, ns, ctx) {
            return Err(Blocked::new(
                Reason::ConnectionRefused,
                format!(
                    "SinchConnection {} (spec.connectionRef) does not allow namespace {ns}",
                    r.name
                ),
                Retry::Poll,
            ));
        }
        return Ok(Some(c.clone()));
    }
    if all.is_empty() {
        return Ok(None);
    }
    let mut allowed: Vec<&Arc<SinchConnection>> = all.iter().filter(|c| allows(c, ns, ctx)).collect();
    allowed.sort_by_key(|c| c.name_any());
    let defaults: Vec<&Arc<SinchConnection>> = allowed
        .iter()
        .copied()
        .filter(|c| c.spec.default == Some(true))
        .collect();
    let names = |cs: &[&Arc<SinchConnection>]| cs.iter().map(|c| c.name_any()).collect::<Vec<_>>().join(", ");
    match (defaults.as_slice(), allowed.as_slice()) {
        ([one], _) | ([], [one]) => Ok(Some((*one).clone())),
        (_, []) => Err(no_connection(ns)),
        ([], many) => Err(Blocked::new(
            Reason::ConnectionAmbiguous,
            format!(
                "several SinchConnections allow namespace {ns} and none is its default ({}): name one in spec.connectionRef",
                names(many)
            ),
            Retry::Poll,
        )),
        (many, _) => Err(Blocked::new(
            Reason::ConnectionAmbiguous,
            format!(
                "several SinchConnections are defaults of namespace {ns} ({}): name one in spec.connectionRef",
                names(many)
            ),
            Retry::Poll,
        )),
    }
}

fn no_connection(ns: &str) -> Blocked {
    Blocked::new(
        Reason::NoConnection,
        format!(
            "no SinchConnection allows namespace {ns}: the platform admin decides which namespace uses which project"
        ),
        Retry::Poll,
    )
}

/// Whether `connection` lets namespace `ns` use it: by name, or by the namespace's labels.
pub fn allows(connection: &SinchConnection, ns: &str, ctx: &Tenancy) -> bool {
    let spec = &connection.spec.namespaces;
    if spec.names.iter().any(|n| n == ns) {
        return true;
    }
    let Some(selector) = &spec.selector else { return false };
    let Ok(selector) = Selector::try_from(selector.clone()) else {
        return false; // an invalid selector selects nothing
    };
    let Some(namespace) = ctx.namespaces.get(&ObjectRef::new(ns)) else {
        return false;
    };
    let labels: &BTreeMap<String, String> = namespace.labels();
    selector.matches(labels)
}

/// Reads one Secret with `get` (the operator may list or watch none). A refusal is the
/// namespace not having opted in, which its admin can fix.
/// Shared, not copied: one Secret may hold the tokens of thousands of apps, and a copy per
/// reconcile made each poll O(apps x keys).
pub async fn get_secret(ctx: &Tenancy, ns: &str, name: &str) -> Result<Option<Arc<Secret>>, Blocked> {
    let key = (ns.to_string(), name.to_string());
    if let Some(read) = &ctx.read
        && let Some(secret) = read.lock().expect("never poisoned").get(&key)
    {
        return Ok(secret.clone());
    }
    let read = {
        let mut reads = ctx.shared.0.lock().expect("never poisoned");
        // Those too old to share go, so that no Secret is held longer than that.
        reads.retain(|_, r| r.answered.is_none_or(|at| at.elapsed() <= SECRET_REUSE));
        let api: Api<Secret> = Api::namespaced(ctx.kube.clone(), ns);
        let name = name.to_string();
        let read = async move { api.get_opt(&name).await.map(|s| s.map(Arc::new)).map_err(Arc::new) };
        let entry = reads.entry(key.clone()).or_insert_with(|| Read {
            read: read.boxed().shared(),
            answered: None,
        });
        entry.read.clone()
    };
    let answer = read.clone().await;
    if let Some(r) = ctx.shared.0.lock().expect("never poisoned").get_mut(&key)
        && r.read.ptr_eq(&read)
        && r.answered.is_none()
    {
        r.answered = Some(Instant::now());
    }
    let secret = answer.map_err(|e| match &*e {
        kube::Error::Api(s) if s.code == 403 => Blocked::new(
            Reason::SecretForbidden,
            format!(
                "the operator may not read Secret {ns}/{name}: namespace {ns} has not let it read its Secrets \
                 (kubectl -n {ns} create rolebinding sinch-operator-secrets --clusterrole=sinch-operator-secret-reader \
                 --serviceaccount=sinch-operator-system:sinch-operator)"
            ),
            Retry::Poll,
        ),
        e => Blocked::new(
            Reason::SecretUnreadable,
            format!("cannot read Secret {ns}/{name}: {}", crate::kube_message(e)),
            Retry::Backoff,
        ),
    })?;
    if let Some(read) = &ctx.read {
        read.lock().expect("never poisoned").insert(key, secret.clone());
    }
    Ok(secret)
}

/// A Secret of the object's namespace (its own key, or what its fields refer to), only when
/// labelled for the operator ([`crate::model::SECRET_LABEL`]); `what` names the field.
pub async fn get_tenant_secret(
    ctx: &Tenancy,
    ns: &str,
    name: &str,
    what: &str,
) -> Result<Option<Arc<Secret>>, Blocked> {
    let Some(secret) = get_secret(ctx, ns, name).await? else {
        return Ok(None);
    };
    if !crate::model::secret_usable(secret.metadata.labels.as_ref()) {
        return Err(Blocked::new(
            Reason::SecretNotLabelled,
            format!(
                "Secret {ns}/{name} ({what}) is not labelled for the operator: it uses only Secrets labelled {}=true \
                 (kubectl -n {ns} label secret {name} {}=true)",
                crate::model::SECRET_LABEL,
                crate::model::SECRET_LABEL
            ),
            Retry::Poll,
        ));
    }
    Ok(Some(secret))
}

/// The access key in a Secret (`keyId`, `keySecret`, optional `projectId` and `region`, which
/// replace `defaults`); `what` names where the Secret was referred to.
pub fn credentials_from(secret: &Secret, what: &str, defaults: &Defaults) -> Result<(Credentials, Defaults), Blocked> {
    let (ns, name) = (secret.namespace().unwrap_or_default(), secret.name_any());
    let value = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let invalid = |message: String| Blocked::new(Reason::InvalidCredentials, message, Retry::Poll);
    let (Some(key_id), Some(key_secret)) = (value("keyId"), value("keySecret")) else {
        return Err(invalid(format!(
            "Secret {ns}/{name} ({what}) needs the keys keyId and keySecret"
        )));
    };
    let region = match value("region") {
        None => defaults.region,
        Some(r) => r
            .parse()
            .map_err(|e| invalid(format!("Secret {ns}/{name} ({what}): region {e}")))?,
    };
    Ok((
        Credentials {
            key_id,
            key_secret: Sensitive(key_secret),
        },
        Defaults {
            project: value("projectId").or_else(|| defaults.project.clone()),
            region,
        },
    ))
}

/// The `credentialsRef` an object uses: its own, else (a webhook with `appRef`) its app's.
pub fn credentials_ref(object: &Object, ctx: &Tenancy) -> Option<LocalRef> {
    let own = object.placement().credentials_ref.clone();
    match object {
        Object::Webhook(w) if own.is_none() => match w.app_of() {
            AppOf::Object { namespace, name } => ctx
                .apps
                .get(&ObjectRef::new(name).within(namespace))
                .and_then(|a| a.spec.placement.credentials_ref.clone()),
            AppOf::Id(_) => None,
        },
        _ => own,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_come_from_the_secret_with_its_project_and_region() {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "sinch", "namespace": "ns"},
            "data": {"keyId": "a2V5", "keySecret": "c2VjcmV0", "projectId": "cHJvag==", "region": "ZXU="}
        }))
        .unwrap();
        let defaults = Defaults {
            project: Some("env".into()),
            region: Region::Us,
        };
        let (c, d) = credentials_from(&secret, "spec.credentialsRef", &defaults).unwrap();
        assert_eq!((c.key_id.as_str(), c.key_secret.0.as_str()), ("key", "secret"));
        assert_eq!((d.project.as_deref(), d.region), (Some("proj"), Region::Eu));
        let partial: Secret = serde_json::from_value(json!({
            "metadata": {"name": "sinch", "namespace": "ns"}, "data": {"keyId": "a2V5"}
        }))
        .unwrap();
        let e = credentials_from(&partial, "spec.credentialsRef", &defaults).unwrap_err();
        assert_eq!(e.reason, Reason::InvalidCredentials);
        assert_eq!(
            e.message,
            "Secret ns/sinch (spec.credentialsRef) needs the keys keyId and keySecret"
        );
    }
}
