//! The API server's client of every part ([`client`]), and what `plan` and `apply` read of the
//! cluster of the current kubeconfig for `--secrets-from-cluster`: the Secrets the input refers
//! to. (`plan --from-cluster` is the controller's own decision, run dry: `controller::preview`.)

use crate::input::Input;
use kube::client::ConfigExt;

/// A client of the API server of `config`, with at most `in_flight` requests at once if given.
/// It is kube's own (`kube::Client::try_from`: the kubeconfig's authentication, headers,
/// timeouts and retries) but for one thing: its connections send at once (TCP_NODELAY). kube
/// leaves Nagle's algorithm on (kube-rs/kube#2056), so the first request of every new TLS
/// connection waited for the API server's delayed acknowledgement of the handshake, 40 ms here;
/// `run` opens its connections in four waves at start (the Lease, the fingerprint key, the
/// lists, the writes). A proxy is left to kube's builder, which says which proxies it supports.
pub fn client(config: kube::Config, in_flight: Option<usize>) -> Result<kube::Client, kube::Error> {
    use tower::ServiceBuilder;
    let limit = tower::util::option_layer(in_flight.map(tower::limit::ConcurrencyLimitLayer::new));
    if config.proxy_url.is_some() {
        return Ok(kube::client::ClientBuilder::try_from(config)?
            .with_layer(&limit)
            .build());
    }
    let mut timeouts = hyper_timeout::TimeoutConnector::new(config.rustls_https_connector_with_connector(tcp())?);
    timeouts.set_connect_timeout(config.connect_timeout);
    timeouts.set_read_timeout(config.read_timeout);
    timeouts.set_write_timeout(config.write_timeout);
    timeouts.set_reset_reader_on_write(config.reset_reader_on_write);
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(timeouts);
    let retry = config
        .default_retry
        .then(|| tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry()));
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(retry)
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(http);
    Ok(kube::client::ClientBuilder::new(service, config.default_namespace)
        .with_layer(&limit)
        .build())
}

/// The TCP side of [`client`]'s connections.
fn tcp() -> hyper_util::client::legacy::connect::HttpConnector {
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp
}

/// [`client`] of the current kubeconfig (or the pod's service account).
pub async fn default_client() -> Result<kube::Client, kube::Error> {
    let config = kube::Config::infer().await.map_err(kube::Error::InferConfig)?;
    client(config, None)
}

/// Adds the Secrets that `input`'s objects refer to and the input does not hold, read from the
/// cluster of the current kubeconfig (each in its object's namespace). A Secret the cluster does
/// not have stays unresolved, as one missing from the input does; one not labelled for the
/// operator ([`crate::model::SECRET_LABEL`]) is an error, as in the controller: a manifest of a
/// shared repository must not send whatever Secret it names to an endpoint of its author's.
pub async fn add_secrets(input: &mut Input) -> crate::Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    let mut wanted = std::collections::BTreeSet::new();
    for m in &input.manifests {
        let ns = m.object.namespace();
        let own = m.object.placement().credentials_ref.iter().map(|r| r.name.clone());
        for name in m.object.secret_refs().into_iter().map(|(_, r)| r.name).chain(own) {
            if input.secrets.keys(ns, &name).is_none() {
                wanted.insert((ns.to_string(), name));
            }
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let kube = default_client().await.map_err(|e| {
        crate::Error::kube(
            "--secrets-from-cluster: cannot reach the Kubernetes API server (KUBECONFIG)",
            e,
        )
    })?;
    for (ns, name) in wanted {
        let api: kube::Api<Secret> = kube::Api::namespaced(kube.clone(), &ns);
        let secret = api
            .get_opt(&name)
            .await
            .map_err(|e| crate::Error::kube(format!("--secrets-from-cluster: cannot read Secret {ns}/{name}"), e))?;
        if let Some(secret) = secret {
            if !crate::model::secret_usable(secret.metadata.labels.as_ref()) {
                return Err(crate::Error::Config {
                    var: "--secrets-from-cluster",
                    message: format!(
                        "Secret {ns}/{name} is not labelled {label}=true: sinch-operator uses only Secrets labelled for it (kubectl -n {ns} label secret {name} {label}=true); nothing was sent",
                        label = crate::model::SECRET_LABEL
                    ),
                });
            }
            let data = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            input.secrets.insert(&ns, &name, data);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    /// The connections of [`super::client`] send at once: Nagle's algorithm held the first
    /// request of each new connection for 40 ms (the handshake's delayed acknowledgement).
    #[tokio::test]
    async fn the_connections_to_the_api_server_send_at_once() {
        use tower::ServiceExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: http::Uri = format!("http://{}", listener.local_addr().unwrap()).parse().unwrap();
        let connection = super::tcp().oneshot(url).await.unwrap();
        assert!(connection.inner().nodelay().unwrap());
    }

    /// The client is kube's in what a request carries: the kubeconfig's token, to its server.
    #[tokio::test]
    async fn the_client_sends_the_kubeconfigs_credentials() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = axum::Router::new().route(
            "/api/v1/namespaces/ns/secrets/s",
            axum::routing::get(move |headers: axum::http::HeaderMap| async move {
                let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
                record.lock().unwrap().push(auth);
                let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "NotFound", "code": 404, "message": "secrets \"s\" not found"});
                (axum::http::StatusCode::NOT_FOUND, axum::Json(status))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut config = kube::Config::new(url.parse().unwrap());
        config.auth_info.token = Some("canary-token".to_string().into());
        for in_flight in [None, Some(2)] {
            let client = super::client(config.clone(), in_flight).unwrap();
            let api: kube::Api<k8s_openapi::api::core::v1::Secret> = kube::Api::namespaced(client, "ns");
            assert!(api.get_opt("s").await.unwrap().is_none());
        }
        assert_eq!(*seen.lock().unwrap(), vec![Some("Bearer canary-token".to_string()); 2]);
    }
}
