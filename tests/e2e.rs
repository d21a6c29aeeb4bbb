//! End to end: the controller as a process, against a real kube-apiserver (v1.20, started by
//! `scripts/e2e`, which sets SINCH_E2E_DIR) and the simulator. The controller runs as the user
//! `sinch-operator`, bound to exactly the RBAC of `manifests/rbac.yaml`.
//!
//! Each test has its own namespace, simulator, controller and Lease. Run with `scripts/e2e`.

mod common;

use base64::Engine as _;
use common::{Connection, examples, root};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use serde::Deserialize;
use serde_json::{Value, json};
use sinch_operator::model::{ConversationApp, Kind, ProjectSettings, Region, Template, Webhook};
use sinch_operator::sim::{self, Sim};
use sinch_operator::sinch::Sensitive;
use sinch_operator::sinch::app::App;
use sinch_operator::sinch::client::{Credentials, Project};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PROJECT: &str = "p-e2e";
const OPERATOR_NS: &str = "sinch-operator-system";

/// The operator's key, as the controller's environment holds it.
const OPERATOR: Connection = Connection {
    project: PROJECT,
    key_id: "e2e-key",
    key_secret: "canary-operator-key-5150",
};

fn cluster_dir() -> PathBuf {
    PathBuf::from(std::env::var("SINCH_E2E_DIR").expect("SINCH_E2E_DIR: run this suite with scripts/e2e"))
}

async fn client(kubeconfig: &str) -> kube::Client {
    let kc = Kubeconfig::read_from(cluster_dir().join(kubeconfig)).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// Server-side applies YAML documents (into `ns` when they are namespaced and name none).
async fn apply_yaml(kube: &kube::Client, yaml: &str, ns: Option<&str>) {
    for (value, api) in documents(kube, yaml, ns) {
        let (kind, name) = (&value["kind"], &value["metadata"]["name"]);
        api.patch(
            name.as_str().unwrap(),
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&value),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {kind} {name}: {e}"));
    }
}

/// Each document of `yaml` with the API it goes to (namespaced ones into `ns` when given).
fn documents(kube: &kube::Client, yaml: &str, ns: Option<&str>) -> Vec<(Value, Api<DynamicObject>)> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let mut value: Value = serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap();
        if value.is_null() {
            continue;
        }
        let api_version = value["apiVersion"].as_str().unwrap().to_string();
        let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
        let kind = value["kind"].as_str().unwrap().to_string();
        let resource = match Kind::from_name(&kind) {
            Some(k) if group == "conversation.sinch.com" => resource(k),
            _ => ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &kind)),
        };
        let api = if matches!(
            kind.as_str(),
            "ClusterRole" | "ClusterRoleBinding" | "Namespace" | "SinchConnection" | "SinchClaim"
        ) {
            Api::all_with(kube.clone(), &resource)
        } else {
            if let Some(ns) = ns {
                value["metadata"]["namespace"] = json!(ns);
            }
            let ns = value["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
            Api::namespaced_with(kube.clone(), &ns, &resource)
        };
        out.push((value, api));
    }
    out
}

/// Once per test: the CRDs (created, not applied: see toolchain facts), the RBAC of
/// manifests/ bound to the controller's user, and a fresh namespace.
async fn setup(ns: &str) -> kube::Client {
    let admin = setup_closed(ns).await;
    allow_secrets(&admin, ns).await;
    admin
}

/// The cluster, and namespace `ns` without the opt-in that lets the operator read its Secrets.
async fn setup_closed(ns: &str) -> kube::Client {
    let admin = client("admin.kubeconfig").await;
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for crd in sinch_operator::model::crds() {
        match crds.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("creating the CRD {:?}: {e}", crd.metadata.name),
        }
    }
    for crd in sinch_operator::model::crds() {
        established(&crds, &crd.metadata.name.unwrap()).await;
    }
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for name in [OPERATOR_NS, ns] {
        let _ = namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
            )
            .await;
    }
    let rbac = std::fs::read_to_string(root().join("manifests/rbac.yaml")).unwrap();
    apply_yaml(&admin, &rbac, None).await;
    // The same roles, bound to the user the controller runs as here (no pods, no tokens).
    let bindings = format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: sinch-operator-e2e}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: sinch-operator}}
subjects: [{{kind: User, name: sinch-operator, apiGroup: rbac.authorization.k8s.io}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: sinch-operator-leader-e2e, namespace: {OPERATOR_NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: sinch-operator-leader}}
subjects: [{{kind: User, name: sinch-operator, apiGroup: rbac.authorization.k8s.io}}]
"#
    );
    apply_yaml(&admin, &bindings, None).await;
    allow_secrets(&admin, OPERATOR_NS).await;
    // Every test has a simulator of its own, all with project PROJECT: the claims of an
    // earlier test name objects of a simulator that is gone, and would refuse this test's.
    let claims: Api<sinch_operator::model::SinchClaim> = Api::all(admin.clone());
    claims
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    admin
}

async fn established(crds: &Api<CustomResourceDefinition>, name: &str) {
    eventually(Duration::from_secs(30), &format!("CRD {name} established"), || async {
        let crd = crds.get(name).await.ok()?;
        crd.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;
}

/// The namespace lets the operator read its Secrets (the opt-in of manifests/rbac.yaml).
async fn allow_secrets(admin: &kube::Client, ns: &str) {
    let binding = format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: sinch-operator-secrets-e2e, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: sinch-operator-secret-reader}}
subjects: [{{kind: User, name: sinch-operator, apiGroup: rbac.authorization.k8s.io}}]
"#
    );
    apply_yaml(admin, &binding, None).await;
}

/// A name of its own for each run: namespaces cannot be deleted here (the test server runs no
/// controller-manager), so every run starts in new ones.
fn unique(base: &str) -> String {
    format!("{base}-{:06x}", fastrand::u32(..0xff_ffff))
}

/// Polls `check` until it answers, or fails the test naming what it waited for.
async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sinch-operator run` as a process; killed when dropped.
struct Controller {
    child: Child,
    metrics: String,
    /// Its stderr: the log.
    log: PathBuf,
}

impl Controller {
    fn start(sim: &Sim, ns: &str, lease: &str, extra: &[&str]) -> Controller {
        Controller::start_logging(sim, ns, lease, extra, "info,kube=warn")
    }

    /// With `SINCH_OPERATOR_LOG=filter`.
    fn start_logging(sim: &Sim, ns: &str, lease: &str, extra: &[&str], filter: &str) -> Controller {
        Controller::start_in(sim, ns, lease, OPERATOR_NS, PROJECT, extra, filter)
    }

    /// With `operator_ns` as the operator's namespace (its Lease and fingerprint key) and
    /// `project` as the operator key's project.
    fn start_in(
        sim: &Sim,
        ns: &str,
        lease: &str,
        operator_ns: &str,
        project: &str,
        extra: &[&str],
        filter: &str,
    ) -> Controller {
        let port = free_port();
        let connection = Connection { project, ..OPERATOR };
        let mut cmd = common::command(
            sim,
            &connection,
            &["run", "--lease-name", lease, "--operator-namespace", operator_ns],
        );
        // An empty namespace: all of them, served by connections only; one namespace is a
        // single-tenant install, served by the operator's key.
        if !ns.is_empty() {
            cmd.args(["--namespace", ns, "--operator-key-namespaces", ns]);
        }
        cmd.args([
            "--metrics-listen",
            &format!("127.0.0.1:{port}"),
            "--lease-duration",
            "4s",
        ])
        .args(extra)
        .env("KUBECONFIG", cluster_dir().join("controller.kubeconfig"))
        .env("SINCH_OPERATOR_LOG", filter)
        .stdout(Stdio::null());
        let log = cluster_dir().join(format!("controller-{lease}-{port}.log"));
        cmd.stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
        Controller {
            child: cmd.spawn().unwrap(),
            metrics: format!("http://127.0.0.1:{port}/metrics"),
            log,
        }
    }

    /// Whether the process still runs (it has not exited, by a panic or otherwise).
    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// What it logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    async fn metrics(&self) -> Option<String> {
        reqwest::get(&self.metrics).await.ok()?.text().await.ok()
    }

    /// A series' value, 0 when absent.
    async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics().await.unwrap_or_default();
        text.lines()
            .filter(|l| {
                l.split_once(' ')
                    .is_some_and(|(name, _)| name == series || name.starts_with(&format!("{series}{{")))
            })
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    }

    /// SIGKILL: a crash, no chance to release the Lease or finish a reconcile.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as Kubernetes stops a pod; waits for the exit.
    fn terminate(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_sim() -> Sim {
    start_sim_with(sim::Config::default()).await
}

async fn start_sim_with(config: sim::Config) -> Sim {
    common::start(config).await
}

fn sinch(sim: &Sim, region: Region) -> Project {
    sinch_in(sim, PROJECT, region)
}

fn sinch_in(sim: &Sim, project: &str, region: Region) -> Project {
    sim.project(project, region).unwrap()
}

fn condition(obj: &DynamicObject, kind: &str) -> Option<(String, String, String)> {
    let c = obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?
        .clone();
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
        c["message"].as_str()?.to_string(),
    ))
}

fn resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::ConversationApp => ApiResource::erase::<ConversationApp>(&()),
        Kind::Webhook => ApiResource::erase::<Webhook>(&()),
        Kind::Template => ApiResource::erase::<Template>(&()),
        Kind::ProjectSettings => ApiResource::erase::<ProjectSettings>(&()),
    }
}

fn dynamic(kube: &kube::Client, ns: &str, kind: Kind) -> Api<DynamicObject> {
    Api::namespaced_with(kube.clone(), ns, &resource(kind))
}

/// Every object of the namespace, with its Ready and Synced conditions.
async fn conditions(
    kube: &kube::Client,
    ns: &str,
) -> Vec<(
    String,
    Option<(String, String, String)>,
    Option<(String, String, String)>,
)> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        for o in dynamic(kube, ns, kind).list(&ListParams::default()).await.unwrap() {
            out.push((
                format!("{kind} {}", o.metadata.name.clone().unwrap()),
                condition(&o, "Ready"),
                condition(&o, "Synced"),
            ));
        }
    }
    out
}

async fn all_ready(kube: &kube::Client, ns: &str, count: usize) {
    eventually(
        Duration::from_secs(90),
        &format!("{count} objects Ready and Synced in {ns}"),
        || async {
            let all = conditions(kube, ns).await;
            let ready = all
                .iter()
                .filter(|(_, r, s)| {
                    r.as_ref().is_some_and(|r| r.0 == "True") && s.as_ref().is_some_and(|s| s.0 == "True")
                })
                .count();
            (all.len() == count && ready == count).then_some(())
        },
    )
    .await;
}

async fn events(kube: &kube::Client, ns: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(kube.clone(), ns);
    api.list(&ListParams::default()).await.unwrap().items
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn examples_become_ready_drift_is_reverted_and_the_steady_state_writes_nothing() {
    let ns = &unique("e2e-examples");
    let admin = setup(ns).await;
    let sim = start_sim().await;
    let controller = Controller::start(&sim, ns, ns, &["--resync", "3s"]);
    apply_yaml(&admin, &examples(), Some(ns)).await;
    all_ready(&admin, ns, 10).await;

    // Exactly what the examples declare, nothing twice.
    let us = sinch(&sim, Region::Us);
    let eu = sinch(&sim, Region::Eu);
    let (us_apps, eu_apps) = (us.list_apps().await.unwrap(), eu.list_apps().await.unwrap());
    assert_eq!((us_apps.len(), eu_apps.len()), (1, 1));
    let us_app = us_apps[0].id.clone().unwrap();
    assert_eq!(us.list_webhooks(&us_app).await.unwrap().len(), 3);
    assert_eq!(
        eu.list_webhooks(eu_apps[0].id.as_deref().unwrap()).await.unwrap().len(),
        2
    );
    assert_eq!(
        us.list_templates().await.unwrap().len() + eu.list_templates().await.unwrap().len(),
        2
    );
    // Channel states are read at the first poll after the create.
    let app = eventually(Duration::from_secs(15), "the channel states in the status", || async {
        let app = dynamic(&admin, ns, Kind::ConversationApp)
            .get("support-us")
            .await
            .ok()?;
        app.data["status"]["channels"].is_array().then_some(app)
    })
    .await;
    assert_eq!(app.data["status"]["appId"], json!(us_app));
    assert_eq!(app.data["status"]["projectId"], json!(PROJECT));
    assert_eq!(
        app.data["status"]["channels"].as_array().map(Vec::len),
        app.data["spec"]["channelCredentials"].as_array().map(Vec::len)
    );

    // Steady state: polls read, never write. Once the read-backs of the creates are done
    // (no write for a whole interval), a window in which every object polls at least twice.
    eventually(Duration::from_secs(30), "no more writes", || async {
        sim.reset_stats();
        tokio::time::sleep(Duration::from_secs(3)).await;
        (sim.stats().writes == 0).then_some(())
    })
    .await;
    sim.reset_stats();
    let reconciles = controller.metric("sinch_operator_reconciles_total").await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let stats = sim.stats();
    assert_eq!(stats.writes, 0, "{stats:?}");
    assert!(
        controller.metric("sinch_operator_reconciles_total").await >= reconciles + 10.0,
        "the window held a poll of each of the ten objects"
    );
    // One observation of both scopes reads 7 lists (per scope the apps, each app's webhooks and
    // the templates; the settings once), shared by all ten objects; in 7 s at a 3 s interval
    // that is at most three rounds: no reconcile loops on its own writes.
    eprintln!("steady state: {stats:?}");
    assert!((7..=21).contains(&stats.total), "{stats:?}");

    // Drift made in the dashboard is set back within the poll interval.
    let live = us.get_app(&us_app).await.unwrap();
    let wanted = live.display_name.clone().unwrap();
    us.update_app(
        &us_app,
        &App {
            display_name: Some("renamed in the dashboard".into()),
            ..App::default()
        },
        vec!["display_name".into()],
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(15), "the display name set back", || async {
        (us.get_app(&us_app).await.ok()?.display_name.as_deref() == Some(wanted.as_str())).then_some(())
    })
    .await;
    let reverted = eventually(Duration::from_secs(10), "a DriftReverted event", || async {
        events(&admin, ns)
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("DriftReverted"))
    })
    .await;
    assert_eq!(reverted.type_.as_deref(), Some("Warning"));
    let report = format!("~ display_name: \"renamed in the dashboard\" -> \"{wanted}\"");
    assert_eq!(
        reverted.note.as_deref(),
        Some(format!("display_name changed in Sinch; set back to the spec (app {us_app}):\n{report}").as_str())
    );
    // The app's Drifted condition holds the same report.
    let apps: Api<ConversationApp> = Api::namespaced(admin.clone(), ns);
    let drifted = eventually(Duration::from_secs(10), "the Drifted condition", || async {
        let app = apps.get("support-us").await.ok()?;
        app.status?.sync.conditions.into_iter().find(|c| c.type_ == "Drifted")
    })
    .await;
    assert_eq!(
        (drifted.status.as_str(), drifted.reason.as_str()),
        ("False", "Reverted")
    );
    assert_eq!(
        drifted.message,
        format!("changed in Sinch, set back to the spec:\n{report}")
    );

    // No secret value of the examples' Secrets in any event or status.
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), ns);
    let mut values = Vec::new();
    for s in secrets.list(&ListParams::default()).await.unwrap() {
        for v in s.data.unwrap_or_default().values() {
            values.push(String::from_utf8(v.0.clone()).unwrap());
        }
    }
    assert!(values.len() >= 5, "{values:?}");
    let mut shown = serde_json::to_string(&events(&admin, ns).await).unwrap();
    for kind in Kind::ALL {
        shown.push_str(
            &serde_json::to_string(
                &dynamic(&admin, ns, kind)
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items
                    .iter()
                    .map(|o| o.data["status"].clone())
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
        );
    }
    for v in values {
        assert!(!shown.contains(&v), "a secret value appears in events or status");
    }
}

const SHOP: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: shop-sms, labels: {conversation.sinch.com/operator-secret: "true"}}
stringData: {token: canary-sms-token-4242}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {name: shop}
spec:
  displayName: Shop
  channelCredentials:
    - channel: SMS
      staticBearer: {claimedIdentity: shop-sms, tokenRef: {name: shop-sms, key: token}}
"#;

#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn deleting_a_webhook_deletes_it_in_sinch_and_orphan_leaves_it() {
    let ns = &unique("e2e-delete");
    let admin = setup(ns).await;
    let sim = start_sim().await;
    let _controller = Controller::start(&sim, ns, ns, &[]);
    let yaml = SHOP.to_string()
        + r#"
---
apiVersion: conversation.sinch.com/v1alpha1
kind: Webhook
metadata: {name: orders}
spec: {appRef: {name: shop}, target: "https://orders.example.com/hook", triggers: [MESSAGE_INBOUND]}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: Webhook
metadata: {name: crm}
spec: {appRef: {name: shop}, target: "https://crm.example.com/hook", triggers: [MESSAGE_DELIVERY], deletionPolicy: Orphan}
"#;
    apply_yaml(&admin, &yaml, Some(ns)).await;
    all_ready(&admin, ns, 3).await;
    let us = sinch(&sim, Region::Us);
    let app = us.list_apps().await.unwrap()[0].id.clone().unwrap();
    let hooks = dynamic(&admin, ns, Kind::Webhook);
    let id_of = |o: &DynamicObject| o.data["status"]["webhookId"].as_str().unwrap().to_string();
    let orders = id_of(&hooks.get("orders").await.unwrap());
    let crm = id_of(&hooks.get("crm").await.unwrap());
    let ids = || async {
        us.list_webhooks(&app)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|w| w.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids().await.len(), 2);

    sim.reset_stats();
    hooks.delete("orders", &DeleteParams::default()).await.unwrap();
    eventually(
        Duration::from_secs(30),
        "Webhook orders gone from the cluster",
        || async { hooks.get_opt("orders").await.unwrap().is_none().then_some(()) },
    )
    .await;
    assert_eq!(ids().await, vec![crm.clone()], "deleted in Sinch: {orders}");
    assert_eq!(
        sim.stats()
            .count("DELETE /{region}/v1/projects/{project_id}/webhooks/{webhook_id}"),
        1
    );

    hooks.delete("crm", &DeleteParams::default()).await.unwrap();
    eventually(Duration::from_secs(30), "Webhook crm gone from the cluster", || async {
        hooks.get_opt("crm").await.unwrap().is_none().then_some(())
    })
    .await;
    assert_eq!(ids().await, vec![crm], "deletionPolicy Orphan leaves it in Sinch");
    let orphaned = events(&admin, ns)
        .await
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("Orphaned"));
    assert_eq!(
        orphaned.and_then(|e| e.note),
        Some("deletionPolicy Orphan: the webhook stays in Sinch".to_string())
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn observe_only_reports_drift_and_never_writes() {
    let ns = &unique("e2e-observe");
    let admin = setup(ns).await;
    let sim = start_sim().await;
    let us = sinch(&sim, Region::Us);
    let existing = us
        .create_app(
            &serde_json::from_value::<App>(json!({
                "display_name": "Legacy",
                "processing_mode": "DISPATCH",
                "channel_credentials": [{"channel": "SMS", "static_bearer": {"claimed_identity": "legacy", "token": "t"}}],
            }))
            .unwrap(),
        )
        .await
        .unwrap()
        .id
        .unwrap();
    sim.reset_stats();
    let controller = Controller::start(&sim, ns, ns, &["--resync", "2s"]);
    let yaml = r#"
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {name: legacy}
spec: {displayName: Legacy, processingMode: CONVERSATION, managementPolicy: ObserveOnly}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {name: missing}
spec: {displayName: Missing, managementPolicy: ObserveOnly}
"#;
    apply_yaml(&admin, yaml, Some(ns)).await;
    let apps = dynamic(&admin, ns, Kind::ConversationApp);
    let legacy = eventually(Duration::from_secs(30), "legacy Drifted", || async {
        let o = apps.get("legacy").await.ok()?;
        (condition(&o, "Synced")?.1 == "Drifted").then_some(o)
    })
    .await;
    assert_eq!(condition(&legacy, "Ready").unwrap().0, "True");
    assert_eq!(
        condition(&legacy, "Synced").unwrap().2,
        "Sinch differs from the spec in processing_mode; managementPolicy ObserveOnly: not written"
    );
    // Observed, not claimed: shown as observed, never recorded as the object's own.
    assert_eq!(legacy.data["status"]["observedId"], json!(existing));
    assert_eq!(legacy.data["status"].get("appId"), None);
    let missing = eventually(Duration::from_secs(30), "missing NotFound", || async {
        let o = apps.get("missing").await.ok()?;
        (condition(&o, "Ready")?.1 == "NotFound").then_some(o)
    })
    .await;
    assert_eq!(
        condition(&missing, "Ready").unwrap().2,
        "no such app exists in Sinch; managementPolicy ObserveOnly never creates one"
    );
    // Several polls later (two more of each object), and after deleting both: not one write.
    let reconciles = controller.metric("sinch_operator_reconciles_total").await;
    eventually(Duration::from_secs(30), "two more polls of each object", || async {
        (controller.metric("sinch_operator_reconciles_total").await >= reconciles + 4.0).then_some(())
    })
    .await;
    apps.delete("legacy", &DeleteParams::default()).await.unwrap();
    apps.delete("missing", &DeleteParams::default()).await.unwrap();
    eventually(Duration::from_secs(30), "both objects gone", || async {
        apps.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    let stats = sim.stats();
    assert_eq!(stats.writes, 0, "{stats:?}");
    assert!(stats.total >= 4, "{stats:?}");
    assert_eq!(
        us.get_app(&existing).await.unwrap().processing_mode.as_deref(),
        Some("DISPATCH")
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn a_second_replica_does_not_act_while_the_first_holds_the_lease() {
    let ns = &unique("e2e-lease");
    let admin = setup(ns).await;
    let sim = start_sim().await;
    let mut first = Controller::start(&sim, ns, ns, &[]);
    eventually(Duration::from_secs(30), "the first replica leads", || async {
        (first.metric("sinch_operator_leader").await == 1.0).then_some(())
    })
    .await;
    let second = Controller::start(&sim, ns, ns, &[]);
    eventually(
        Duration::from_secs(30),
        "the second replica serves /metrics",
        || async { second.metrics().await },
    )
    .await;
    let app = |name: &str| {
        SHOP.replace("name: shop}", &format!("name: {name}}}"))
            .replace("Shop", name)
    };
    apply_yaml(&admin, &app("one"), Some(ns)).await;
    all_ready(&admin, ns, 1).await;
    // While the first goes on (a reconcile asked for: the create's read-back happens within
    // the create's reconcile now when its channels settled), the second does nothing.
    let seen = first.metric("sinch_operator_reconciles_total").await;
    let requested = app("one").replace(
        "name: one}",
        "name: one, annotations: {conversation.sinch.com/reconcile-requested-at: \"2026-12-06T17:00:00Z\"}}",
    );
    assert_ne!(requested, app("one"));
    apply_yaml(&admin, &requested, Some(ns)).await;
    eventually(
        Duration::from_secs(30),
        "the first replica reconciles again",
        || async { (first.metric("sinch_operator_reconciles_total").await > seen).then_some(()) },
    )
    .await;
    assert_eq!(second.metric("sinch_operator_leader").await, 0.0);
    assert_eq!(second.metric("sinch_operator_reconciles_total").await, 0.0);
    assert_eq!(second.metric("sinch_operator_sinch_requests_total").await, 0.0);
    assert!(first.metric("sinch_operator_reconciles_total").await >= 1.0);

    // The first stops (and releases the Lease): the second takes over.
    first.terminate();
    eventually(Duration::from_secs(30), "the second replica leads", || async {
        (second.metric("sinch_operator_leader").await == 1.0).then_some(())
    })
    .await;
    apply_yaml(&admin, &app("two"), Some(ns)).await;
    all_ready(&admin, ns, 2).await;
    assert!(second.metric("sinch_operator_reconciles_total").await >= 1.0);
    assert_eq!(sinch(&sim, Region::Us).list_apps().await.unwrap().len(), 2);
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn a_webhook_waits_for_its_app_and_the_oldest_claim_on_a_target_wins() {
    let ns = &unique("e2e-claims");
    let admin = setup(ns).await;
    let sim = start_sim().await;
    let _controller = Controller::start(&sim, ns, ns, &[]);
    let hook = |name: &str| {
        format!(
            "apiVersion: conversation.sinch.com/v1alpha1\nkind: Webhook\nmetadata: {{name: {name}}}\nspec: {{appRef: {{name: shop}}, target: \"https://same.example.com/hook\", triggers: [MESSAGE_INBOUND]}}\n"
        )
    };
    // The app does not exist yet: the webhook waits, saying for what.
    apply_yaml(&admin, &hook("first"), Some(ns)).await;
    let hooks = dynamic(&admin, ns, Kind::Webhook);
    let waiting = eventually(Duration::from_secs(30), "first waits for its app", || async {
        let o = hooks.get("first").await.ok()?;
        condition(&o, "Synced").filter(|c| c.1 == "AppNotFound")
    })
    .await;
    assert_eq!(
        waiting,
        (
            "False".into(),
            "AppNotFound".into(),
            format!("waiting for ConversationApp {ns}/shop (spec.appRef): it does not exist")
        )
    );
    apply_yaml(&admin, SHOP, Some(ns)).await;
    all_ready(&admin, ns, 2).await;

    // A second object claiming the same (app, target) is refused; the first keeps it.
    tokio::time::sleep(Duration::from_millis(1100)).await; // creation times have 1 s resolution
    apply_yaml(&admin, &hook("second"), Some(ns)).await;
    let conflict = eventually(Duration::from_secs(30), "second in Conflict", || async {
        let o = hooks.get("second").await.ok()?;
        condition(&o, "Synced").filter(|c| c.1 == "Conflict")
    })
    .await;
    let app = sinch(&sim, Region::Us).list_apps().await.unwrap()[0]
        .id
        .clone()
        .unwrap();
    assert_eq!(
        conflict.2,
        format!(
            "Webhook {ns}/first already manages the webhook of app {app} with target https://same.example.com/hook; delete one of the two objects"
        )
    );
    assert_eq!(sinch(&sim, Region::Us).list_webhooks(&app).await.unwrap().len(), 1);
}

/// `kubectl apply -k manifests/` would be accepted: every resource of the kustomization, checked
/// by the API server with a server-side dry run.
#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn the_deploy_manifests_are_accepted_by_the_api_server() {
    let admin = setup(&unique("e2e-manifests")).await;
    let kustomization: Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("manifests/kustomization.yaml")).unwrap()).unwrap();
    let resources: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        resources,
        [
            "../crds",
            "namespace.yaml",
            "rbac.yaml",
            "deployment.yaml",
            "service.yaml",
            "disruption.yaml",
            "networkpolicy.yaml"
        ]
    );
    let mut kinds = Vec::new();
    for file in &resources[1..] {
        let mut yaml = std::fs::read_to_string(root().join("manifests").join(file)).unwrap();
        // The test server (1.20) serves PodDisruptionBudgets only as policy/v1beta1, whose
        // schema for these fields is the same; clusters since 1.21 serve policy/v1, which the
        // manifest uses (v1beta1 is gone since 1.25).
        if admin.apiserver_version().await.unwrap().minor == "20" {
            yaml = yaml.replace("apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n");
        }
        for (value, api) in documents(&admin, &yaml, None) {
            let (kind, name) = (value["kind"].as_str().unwrap().to_string(), &value["metadata"]["name"]);
            api.patch(
                name.as_str().unwrap(),
                &PatchParams::apply("e2e").dry_run(),
                &Patch::Apply(&value),
            )
            .await
            .unwrap_or_else(|e| panic!("{file}: {kind} {name} refused: {e}"));
            kinds.push(kind);
        }
    }
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRole",
            "RoleBinding",
            "Role",
            "RoleBinding",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "NetworkPolicy"
        ]
    );
    let crds: Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("crds/Kustomization")).unwrap()).unwrap();
    assert_eq!(crds["resources"], json!(["conversation.sinch.com.yaml"]));
}

/// `plan` and `apply` as a user runs them, with the kubeconfig of the admin user (off the
/// runtime's thread: the simulator answers on it).
async fn cli(sim: &Sim, args: &[&str]) -> std::process::Output {
    let connection = Connection {
        project: PROJECT,
        key_id: "e2e-key",
        key_secret: "canary-cli-key-6060",
    };
    let kubeconfig = cluster_dir().join("admin.kubeconfig");
    common::run(sim, &connection, args, &[("KUBECONFIG", kubeconfig.to_str().unwrap())]).await
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn plan_and_apply_read_secrets_from_the_cluster_when_asked() {
    let ns = &unique("e2e-cli");
    let admin = setup(ns).await;
    let canary = "canary-cluster-token-31337";
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: shop-sms, labels: {{conversation.sinch.com/operator-secret: \"true\"}}}}\nstringData: {{token: {canary}}}\n"
    );
    apply_yaml(&admin, &secret, Some(ns)).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = SHOP.split("---").nth(1).unwrap().replace(
        "metadata: {name: shop}",
        &format!("metadata: {{name: shop, namespace: {ns}}}"),
    );
    std::fs::write(dir.path().join("app.yaml"), manifest).unwrap();
    let input = dir.path().to_str().unwrap();
    let sim = start_sim().await;

    // Without the flag the Secret is not in the input: nothing can be created.
    let out = cli(&sim, &["plan", "-f", input]).await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains(&format!(
            "cannot create the app: spec.channelCredentials[0].staticBearer.tokenRef: Secret {ns}/shop-sms is not in the input"
        )),
        "{stdout}"
    );

    // With it, the plan is made with the cluster's value and never shows it.
    let saved = dir.path().join("plan.json");
    let args = [
        "plan",
        "-f",
        input,
        "--secrets-from-cluster",
        "--detailed-exitcode",
        "--out",
        saved.to_str().unwrap(),
    ];
    let out = cli(&sim, &args).await;
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(shown.contains("+ ConversationApp"), "{shown}");
    let saved_text = std::fs::read_to_string(&saved).unwrap();
    assert!(!shown.contains(canary) && !saved_text.contains(canary));
    assert!(saved_text.contains("\"secrets_from_cluster\": true"), "{saved_text}");

    // The saved plan reads the cluster again to fill its placeholders.
    assert_eq!(sim.stats().writes, 0);
    let out = cli(&sim, &["apply", saved.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let post = sim
        .journal()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/apps"))
        .unwrap();
    assert_eq!(
        post.body.unwrap()["channel_credentials"][0]["static_bearer"]["token"],
        canary
    );

    // A Secret not labelled for the operator is never read into a request.
    let unlabelled =
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: shop-sms}}\nstringData: {{token: {canary}}}\n");
    Api::<Secret>::namespaced(admin.clone(), ns)
        .delete("shop-sms", &Default::default())
        .await
        .unwrap();
    apply_yaml(&admin, &unlabelled, Some(ns)).await;
    let writes = sim.stats().writes;
    let out = cli(&sim, &["plan", "-f", input, "--secrets-from-cluster"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: --secrets-from-cluster: Secret {ns}/shop-sms is not labelled conversation.sinch.com/operator-secret=true: sinch-operator uses only Secrets labelled for it (kubectl -n {ns} label secret shop-sms conversation.sinch.com/operator-secret=true); nothing was sent\n"
        )
    );
    assert_eq!(sim.stats().writes, writes);
}

/// `plan --from-cluster`: the objects in the cluster planned against Sinch as the controller
/// would plan them now, read-only: through the operator's key only where it serves, refused
/// where another namespace's object holds the claim; a paused object's changes say that the
/// controller sends nothing, and webhooks follow the creates of their apps.
#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn plan_from_cluster_shows_what_the_controller_would_do_and_writes_nothing() {
    let ns = &unique("e2e-from-cluster");
    let admin = setup(ns).await;
    apply_yaml(&admin, &examples(), Some(ns)).await;
    let apps: Api<ConversationApp> = Api::namespaced(admin.clone(), ns);
    let paused = json!({"metadata": {"annotations": {"conversation.sinch.com/paused": "true"}}});
    apps.patch("support-eu", &PatchParams::default(), &Patch::Merge(&paused))
        .await
        .unwrap();
    let sim = start_sim().await;
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", "--from-cluster", "--namespace", ns, "--detailed-exitcode"];
        args.extend(extra);
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        let sim = &sim;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = cli(sim, &args).await;
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            (
                out.status.code(),
                stdout,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let (code, stdout, stderr) = plan(&["--operator-key-namespaces", ns]).await;
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "+ ConversationApp {ns}/support-us will be created in project {PROJECT}, region us"
        )),
        "{stdout}"
    );
    let block = |name: &str| {
        stdout
            .split("\n\n")
            .find(|block| block.contains(name))
            .unwrap_or_else(|| panic!("{name}: {stdout}"))
            .to_string()
    };
    let eu = block(&format!("+ ConversationApp {ns}/support-eu"));
    assert!(
        eu.contains("# the controller sends nothing for it: paused (conversation.sinch.com/paused)"),
        "{eu}"
    );
    let hook = block(&format!("+ Webhook {ns}/support-us-orders"));
    assert!(
        hook.contains(&format!(
            "# sent once ConversationApp {ns}/support-us is Ready: the controller waits for it"
        )),
        "{hook}"
    );
    assert!(
        stdout.ends_with("Plan: 10 to create, 0 to update, 0 to delete, 0 unchanged.\n"),
        "{stdout}"
    );
    // The examples' Secret values came from the cluster and are never shown.
    assert!(!stdout.contains("canary"), "{stdout}");

    // Where the operator's key does not serve and no connection allows the namespace, the
    // controller refuses every object: so does the plan.
    let (code, stdout, _) = plan(&[]).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "ConversationApp {ns}/support-us: no SinchConnection allows namespace {ns}: the platform admin decides which namespace uses which project (NoConnection)"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("10 object(s) cannot be planned"), "{stdout}");

    // A connection allows the namespace: its key and project serve it, the settings only
    // where the connection lets the namespace manage them.
    let name = unique("conn-plan");
    let _connections = Connections(vec![name.clone()]);
    connect(&admin, &name, &[ns], &[]).await;
    let (code, stdout, _) = plan(&[]).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "ProjectSettings {ns}/project: SinchConnection {name} does not let namespace {ns} manage the settings of project {PROJECT} (spec.settingsNamespaces) (SettingsNotAllowed)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("Plan: 9 to create, 0 to update, 0 to delete, 0 unchanged.\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("canary"), "{stdout}");
    drop(_connections);

    // Another namespace's object claims the display name of support-us: the controller
    // would refuse it, and its webhooks wait; the other objects are planned.
    let scope = sinch_operator::engine::Scope {
        project: PROJECT.into(),
        region: Region::Us,
    };
    let key = "Customer Support (US)";
    let claim: sinch_operator::model::SinchClaim = serde_json::from_value(json!({
        "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "SinchClaim",
        "metadata": {"name": sinch_operator::controller::ledger::claim_name(&scope, Kind::ConversationApp, &format!("key:{key}"))},
        "spec": {"projectId": PROJECT, "region": "us", "kind": "ConversationApp", "key": key,
                 "owner": {"namespace": "e2e-someone-else", "name": "theirs", "uid": "uid-theirs"}}
    }))
    .unwrap();
    let claims: Api<sinch_operator::model::SinchClaim> = Api::all(admin.clone());
    claims.create(&PostParams::default(), &claim).await.unwrap();
    let (code, stdout, _) = plan(&["--operator-key-namespaces", ns]).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "ConversationApp {ns}/support-us: the app in project {PROJECT} (us) is managed by an object of another namespace; this object may not change it (OwnedElsewhere)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "Webhook {ns}/support-us-orders: waiting for ConversationApp {ns}/support-us to be Ready: it has not been reconciled yet (AppNotReady)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("Plan: 6 to create, 0 to update, 0 to delete, 0 unchanged.\n"),
        "{stdout}"
    );
    // Read-only: nothing was sent to Sinch, and the only claim is the one made here.
    assert_eq!(sim.stats().writes, 0);
    let held: Vec<String> = claims
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.spec.key)
        .collect();
    assert_eq!(held, [key]);

    // Flags that would write or prune are refused with --from-cluster.
    let out = cli(&sim, &["plan", "--from-cluster", "--out", "/tmp/x.json"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("the argument '--from-cluster' cannot be used with '--out <FILE>'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `run` whose Lease namespace does not exist says so and how to fix it, not the Kubernetes
/// client's `Status { .. }` dump.
#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn run_names_a_missing_lease_namespace_plainly() {
    let sim = start_sim().await;
    let kubeconfig = cluster_dir().join("admin.kubeconfig");
    let out = common::run(
        &sim,
        &OPERATOR,
        &[
            "run",
            "--lease-namespace",
            "e2e-no-such-namespace",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("SINCH_OPERATOR_LOG", "error"),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "error: cannot use the Lease e2e-no-such-namespace/sinch-operator: namespaces \"e2e-no-such-namespace\" not found (HTTP 404 NotFound): create the namespace, or name an existing one",
        "{stderr}"
    );
    assert!(
        !stderr.contains("Status {") && !stderr.contains("ErrorResponse"),
        "{stderr}"
    );
}

/// The controller killed (SIGKILL) in the middle of creating the examples: a new one takes the
/// Lease once it expires and finishes the job, and nothing exists twice in Sinch.
#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn a_controller_killed_mid_run_converges_after_restart_without_duplicates() {
    let ns = &unique("e2e-crash");
    let admin = setup(ns).await;
    let sim = start_sim().await;
    // The fifth write waits in the simulator: the controller is killed with it in flight.
    sim.hold_writes_after(4);
    let mut first = Controller::start(&sim, ns, ns, &["--workers", "1"]);
    apply_yaml(&admin, &examples(), Some(ns)).await;
    eventually(Duration::from_secs(60), "the fifth write", || async {
        (sim.stats().writes >= 5).then_some(())
    })
    .await;
    first.kill();
    let carried_out = sim.journal().iter().filter(|r| r.method != "GET").count();
    assert_eq!(
        carried_out, 4,
        "killed mid-run: {carried_out} of the 10 creates were carried out"
    );
    // Whether the held write is then carried out (its answer lost) or not, the next controller
    // must find what exists and create only the rest.
    sim.release_writes();
    let _second = Controller::start(&sim, ns, ns, &[]);
    all_ready(&admin, ns, 10).await;
    let (us, eu) = (sinch(&sim, Region::Us), sinch(&sim, Region::Eu));
    let (us_apps, eu_apps) = (us.list_apps().await.unwrap(), eu.list_apps().await.unwrap());
    assert_eq!((us_apps.len(), eu_apps.len()), (1, 1));
    assert_eq!(
        us.list_webhooks(us_apps[0].id.as_deref().unwrap()).await.unwrap().len(),
        3
    );
    assert_eq!(
        eu.list_webhooks(eu_apps[0].id.as_deref().unwrap()).await.unwrap().len(),
        2
    );
    assert_eq!(
        us.list_templates().await.unwrap().len() + eu.list_templates().await.unwrap().len(),
        2
    );
}

/// Run by `scripts/e2e` after the rest of the suite: every request the controller's user made
/// (from the API server's audit log) was allowed, and every verb the RBAC of `manifests/` grants
/// was used. A grant nothing used is more than needed; a refusal, less.
#[test]
#[ignore]
fn rbac_grants_exactly_what_the_suite_used() {
    let log = std::fs::read_to_string(cluster_dir().join("audit.log")).expect("the API server's audit log");
    // (API group, resource[/subresource], verb) -> requests.
    let mut used: std::collections::BTreeMap<(String, String, String), u32> = Default::default();
    let mut refused = Vec::new();
    for line in log.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        if event["user"]["username"] != "sinch-operator" {
            continue;
        }
        let object = &event["objectRef"];
        let resource = match object["subresource"].as_str() {
            Some(sub) => format!("{}/{sub}", object["resource"].as_str().unwrap_or_default()),
            None => object["resource"].as_str().unwrap_or_default().to_string(),
        };
        let key = (
            object["apiGroup"].as_str().unwrap_or_default().to_string(),
            resource,
            event["verb"].as_str().unwrap_or_default().to_string(),
        );
        // Refusals the suite provokes on purpose: a namespace that did not opt in to Secret
        // reads, the check that the operator cannot list Secrets, and the events of objects
        // whose namespace is being deleted (the API server takes no new object there).
        let in_namespace = |prefix: &str| object["namespace"].as_str().is_some_and(|n| n.starts_with(prefix));
        let expected = (key.1 == "secrets" && (key.2 == "list" || in_namespace("e2e-closed")))
            || (key.1 == "events" && in_namespace("e2e-nsdel"));
        if event["responseStatus"]["code"] == 403 && !expected {
            refused.push(format!("{key:?} {}", event["requestURI"]));
        }
        if expected {
            continue;
        }
        *used.entry(key).or_default() += 1;
    }
    assert!(!used.is_empty(), "no request of the controller in the audit log");
    assert!(refused.is_empty(), "refused by RBAC: {refused:#?}");

    let rbac = std::fs::read_to_string(root().join("manifests/rbac.yaml")).unwrap();
    let mut unused = Vec::new();
    let mut granted = 0;
    for doc in serde_yaml::Deserializer::from_str(&rbac) {
        let value: Value = serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap();
        for rule in value["rules"].as_array().into_iter().flatten() {
            let list = |k: &str| -> Vec<String> {
                rule[k]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        granted += 1;
                        let key = (group.clone(), resource.clone(), verb);
                        if !used.contains_key(&key) {
                            unused.push(key);
                        }
                    }
                }
            }
        }
    }
    eprintln!("RBAC: {granted} grants, all used; requests by grant: {used:?}");
    assert!(unused.is_empty(), "granted but never used by the suite: {unused:?}");
}

/// 20 apps with 5 webhooks each and 10 templates, in namespace `ns`.
fn fleet(ns: &str) -> String {
    let mut docs = Vec::new();
    for i in 0..20 {
        docs.push(format!(
            "apiVersion: conversation.sinch.com/v1alpha1\nkind: ConversationApp\nmetadata: {{name: app-{i}, namespace: {ns}}}\nspec: {{displayName: Fleet app {i}, processingMode: CONVERSATION}}\n"
        ));
        for w in 0..5 {
            docs.push(format!(
                "apiVersion: conversation.sinch.com/v1alpha1\nkind: Webhook\nmetadata: {{name: app-{i}-hook-{w}, namespace: {ns}}}\nspec: {{appRef: {{name: app-{i}}}, target: \"https://hooks.example.com/{i}/{w}\", triggers: [MESSAGE_INBOUND]}}\n"
            ));
        }
    }
    for t in 0..10 {
        docs.push(format!(
            "apiVersion: conversation.sinch.com/v1alpha1\nkind: Template\nmetadata: {{name: fleet-template-{t}, namespace: {ns}}}\nspec:\n  defaultTranslation: en-US\n  translations:\n    - {{languageCode: en-US, version: \"1\", textMessage: {{text: \"Hello {t}\"}}}}\n"
        ));
    }
    docs.join("---\n")
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn a_fleet_converges_once_and_each_poll_interval_reads_what_one_plan_reads() {
    const RESYNC: u64 = 8;
    let ns = &unique("e2e-fleet");
    let admin = setup(ns).await;
    let sim = start_sim().await;
    let controller = Controller::start(&sim, ns, ns, &["--resync", &format!("{RESYNC}s")]);
    let yaml = fleet(ns);
    apply_yaml(&admin, &yaml, Some(ns)).await;
    all_ready(&admin, ns, 130).await;

    // Nothing twice: 20 apps, 5 webhooks each, 10 templates.
    let project = sinch(&sim, Region::Us);
    let apps = project.list_apps().await.unwrap();
    assert_eq!(apps.len(), 20);
    for app in &apps {
        assert_eq!(
            project.list_webhooks(app.id.as_deref().unwrap()).await.unwrap().len(),
            5
        );
    }
    assert_eq!(project.list_templates().await.unwrap().len(), 10);

    // Converged: a few seconds without a write or a read-back.
    eventually(Duration::from_secs(60), "no more writes or read-backs", || async {
        sim.reset_stats();
        tokio::time::sleep(Duration::from_secs(6)).await;
        let stats = sim.stats();
        let read_backs = stats.count("GET /{region}/v1/projects/{project_id}/apps/{app_id}")
            + stats.count("GET /{region}/v1/projects/{project_id}/templates/{template_id}");
        (stats.writes == 0 && read_backs == 0).then_some(())
    })
    .await;

    // One `plan` of the same inventory finds nothing to change. It reads the apps, each app's
    // webhooks and the templates (tests/engine.rs `planning_a_project_with_a_apps_reads_a_plus_3_times`);
    // not counted here, where the controller's polls share the simulator's counters.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.yaml"), &yaml).unwrap();
    let out = cli(&sim, &["plan", "-f", dir.path().to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("No changes"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let plan_reads: u64 = 1 + 20 + 1;

    // Two poll intervals of the controller.
    sim.reset_stats();
    tokio::time::sleep(Duration::from_secs(2 * RESYNC)).await;
    let stats = sim.stats();
    let gets: u64 = stats
        .requests
        .iter()
        .filter(|(k, _)| k.starts_with("GET "))
        .map(|(_, v)| v)
        .sum();
    eprintln!("fleet: {gets} GETs in two {RESYNC} s intervals; one plan reads {plan_reads}");
    assert_eq!(stats.writes, 0, "{stats:?}");
    assert!(
        gets >= plan_reads && gets as f64 <= 2.0 * 1.1 * plan_reads as f64,
        "{gets} GETs in two intervals, one plan reads {plan_reads}: {stats:?}"
    );
    for (route, per_interval) in [
        ("GET /{region}/v1/projects/{project_id}/apps", 1),
        ("GET /{region}/v1/projects/{project_id}/apps/{app_id}/webhooks", 20),
        ("GET /{region}/v2/projects/{project_id}/templates", 1),
    ] {
        assert!(stats.count(route) <= 2 * per_interval, "{route}: {stats:?}");
    }
    assert!(
        controller.metric("sinch_operator_observation_age_seconds").await > 0.0,
        "{:?}",
        controller.metrics().await
    );
}

/// Binds `user` to all verbs on the four kinds in `ns`, and nothing else (not their status, not
/// the ledger, not the connections): a namespace user as a platform team would set one up.
async fn tenant(admin: &kube::Client, ns: &str, user: &str) -> kube::Client {
    let yaml = format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: sinch-e2e-tenant}}
rules:
  - apiGroups: ["conversation.sinch.com"]
    resources: ["conversationapps", "webhooks", "templates", "projectsettings"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {user}, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: sinch-e2e-tenant}}
subjects: [{{kind: User, name: {user}, apiGroup: rbac.authorization.k8s.io}}]
"#
    );
    apply_yaml(admin, &yaml, None).await;
    client(&format!("{user}.kubeconfig")).await
}

/// The claims of the ledger whose owner is in `ns`: (key, id).
async fn claims_of(admin: &kube::Client, ns: &str) -> Vec<(String, Option<String>)> {
    let api: Api<sinch_operator::model::SinchClaim> = Api::all(admin.clone());
    let mut out: Vec<_> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.spec.owner.namespace == ns)
        .map(|c| (c.spec.key, c.spec.id))
        .collect();
    out.sort();
    out
}

/// SinchConnections of one test, deleted when it ends (they are cluster-wide, and a cluster
/// with any connection refuses every namespace none allows: the other tests would fail).
struct Connections(Vec<String>);

impl Drop for Connections {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.0);
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let admin = client("admin.kubeconfig").await;
                let api: Api<sinch_operator::model::SinchConnection> = Api::all(admin);
                for name in names {
                    let _ = api.delete(&name, &DeleteParams::default()).await;
                }
            })
        })
        .join()
        .unwrap();
    }
}

const CONNECTION_KEY: (&str, &str) = ("e2e-connection-key", "canary-connection-secret-3131");

/// A SinchConnection `name` to the test project with [`CONNECTION_KEY`], allowing `namespaces`
/// and letting `settings` manage the project's settings.
async fn connect(admin: &kube::Client, name: &str, namespaces: &[&str], settings: &[&str]) {
    let list = |names: &[&str]| format!("[{}]", names.join(", "));
    apply_yaml(
        admin,
        &format!(
            r#"
apiVersion: v1
kind: Secret
metadata: {{name: e2e-connection, namespace: {OPERATOR_NS}}}
stringData: {{keyId: {}, keySecret: {}}}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: SinchConnection
metadata: {{name: {name}}}
spec: {{projectId: {PROJECT}, credentialsSecretRef: {{name: e2e-connection}}, namespaces: {{names: {}}}, settingsNamespaces: {}}}
"#,
            CONNECTION_KEY.0,
            CONNECTION_KEY.1,
            list(namespaces),
            list(settings)
        ),
        None,
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn tenants_reach_only_their_own_sinch_objects() {
    let (a, b) = (&unique("e2e-team-a"), &unique("e2e-team-b"));
    let c = &unique("e2e-team-c");
    let admin = setup(a).await;
    setup(b).await;
    setup(c).await;
    let (as_a, as_b) = (tenant(&admin, a, "tenant-a").await, tenant(&admin, b, "tenant-b").await);
    // Sinch takes only the connection's key (the operator's environment key is refused).
    let sim = start_sim_with(sim::Config {
        keys: vec![(CONNECTION_KEY.0.into(), CONNECTION_KEY.1.into())],
        ..sim::Config::default()
    })
    .await;
    let key = Credentials {
        key_id: CONNECTION_KEY.0.into(),
        key_secret: Sensitive(CONNECTION_KEY.1.into()),
    };
    let project = sim.project_as(PROJECT, Region::Us, key).unwrap();
    let seeded = project
        .create_app(&serde_json::from_value(json!({"display_name": "Seeded", "channel_credentials": []})).unwrap())
        .await
        .unwrap()
        .id
        .unwrap();
    // Both teams share one project, each through its own connection; only A may manage settings.
    let (conn_a, conn_b) = (unique("conn-a"), unique("conn-b"));
    let _connections = Connections(vec![conn_a.clone(), conn_b.clone()]);
    connect(&admin, &conn_a, &[a], &[a]).await;
    connect(&admin, &conn_b, &[b], &[]).await;
    let _controller = Controller::start(&sim, "", &unique("tenancy"), &[]);

    // Team A: an app, its webhook, a template.
    apply_yaml(
        &as_a,
        r#"
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {name: support}
spec: {displayName: Team A Support}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: Webhook
metadata: {name: inbound}
spec: {appRef: {name: support}, target: "https://a.example.com/in", triggers: [MESSAGE_INBOUND]}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: Template
metadata: {name: welcome}
spec:
  templateId: e2e-shared-welcome
  defaultTranslation: en-US
  translations: [{languageCode: en-US, version: "1", textMessage: {text: Welcome}}]
"#,
        Some(a),
    )
    .await;
    all_ready(&admin, a, 3).await;
    let a_app = project
        .list_apps()
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.display_name.as_deref() == Some("Team A Support"))
        .unwrap()
        .id
        .unwrap();
    let mut a_claims = claims_of(&admin, a).await;
    a_claims.retain(|(_, id)| id.is_some());
    assert_eq!(
        a_claims.len(),
        3,
        "one id claim per Sinch object, no key claim left: {a_claims:?}"
    );
    let writes_before = sim.stats().writes;

    // Team B tries everything the review listed.
    apply_yaml(
        &as_b,
        &format!(
            r#"
apiVersion: conversation.sinch.com/v1alpha1
kind: Webhook
metadata: {{name: spy}}
spec: {{appId: "{a_app}", target: "https://b.example.com/spy", triggers: [MESSAGE_INBOUND]}}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {{name: takeover, annotations: {{conversation.sinch.com/adopt: "{a_app}"}}}}
spec: {{displayName: Team A Support, processingMode: DISPATCH}}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {{name: seeded}}
spec: {{displayName: Seeded, processingMode: DISPATCH}}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: Template
metadata: {{name: welcome}}
spec:
  templateId: e2e-shared-welcome
  defaultTranslation: en-US
  translations: [{{languageCode: en-US, version: "1", textMessage: {{text: Hijacked}}}}]
---
apiVersion: conversation.sinch.com/v1alpha1
kind: ProjectSettings
metadata: {{name: settings}}
spec: {{contactSettings: {{unifiedContactIdEnabled: true}}}}
"#
        ),
        Some(b),
    )
    .await;
    let expected = [
        ("ConversationApp seeded", "AdoptionRequired"),
        ("ConversationApp takeover", "OwnedElsewhere"),
        ("Webhook spy", "AppNotOwned"),
        ("Template welcome", "OwnedElsewhere"),
        ("ProjectSettings settings", "SettingsNotAllowed"),
    ];
    let got = eventually(Duration::from_secs(60), "team B's objects refused", || async {
        let all = conditions(&admin, b).await;
        let reasons: Vec<(String, String, String)> = all
            .into_iter()
            .filter_map(|(name, _, synced)| synced.map(|s| (name, s.1, s.2)))
            .collect();
        (reasons.len() == expected.len()).then_some(reasons)
    })
    .await;
    for (name, reason) in expected {
        let found = got
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("{name}: {got:?}"));
        assert_eq!(found.1, reason, "{found:?}");
    }
    let takeover = got.iter().find(|(n, _, _)| n == "ConversationApp takeover").unwrap();
    assert_eq!(
        takeover.2,
        format!(
            "the app in project {PROJECT} (us) is managed by an object of another namespace; this object may not change it"
        )
    );
    assert_eq!(sim.stats().writes, writes_before, "Sinch received no write for team B");
    assert!(claims_of(&admin, b).await.is_empty());

    // Team B can neither write the ledger nor a status.
    let ledger: Api<sinch_operator::model::SinchClaim> = Api::all(as_b.clone());
    let forged: sinch_operator::model::SinchClaim = serde_json::from_value(json!({
        "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "SinchClaim", "metadata": {"name": "forged"},
        "spec": {"projectId": PROJECT, "region": "us", "kind": "ConversationApp", "key": "Seeded", "id": seeded,
                 "owner": {"namespace": b, "name": "seeded", "uid": "x"}}
    }))
    .unwrap();
    match ledger.create(&PostParams::default(), &forged).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "{e:?}"),
        other => panic!("a tenant wrote a claim: {other:?}"),
    }
    let apps_b: Api<ConversationApp> = Api::namespaced(as_b.clone(), b);
    let status = json!({"status": {"appId": seeded, "projectId": PROJECT, "region": "us"}});
    match apps_b
        .patch_status("seeded", &PatchParams::default(), &Patch::Merge(&status))
        .await
    {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "{e:?}"),
        other => panic!("a tenant wrote a status: {other:?}"),
    }

    // Team B deletes everything: nothing of team A's, nor the seeded app, goes.
    for kind in Kind::ALL {
        let api = dynamic(&as_b, b, kind);
        for o in api.list(&ListParams::default()).await.unwrap() {
            api.delete(&o.metadata.name.unwrap(), &DeleteParams::default())
                .await
                .unwrap();
        }
    }
    eventually(Duration::from_secs(60), "team B's objects gone", || async {
        conditions(&admin, b).await.is_empty().then_some(())
    })
    .await;
    assert_eq!(
        sim.stats().writes,
        writes_before,
        "team B's deletes deleted nothing in Sinch"
    );
    let apps = project.list_apps().await.unwrap();
    assert_eq!(apps.len(), 2, "{apps:?}");
    assert_eq!(project.list_webhooks(&a_app).await.unwrap().len(), 1);
    assert_eq!(project.list_templates().await.unwrap().len(), 1);
    all_ready(&admin, a, 3).await;

    // A namespace no connection allows reaches nothing, not even with the operator's own key.
    apply_yaml(
        &admin,
        "apiVersion: conversation.sinch.com/v1alpha1\nkind: ConversationApp\nmetadata: {name: c}\nspec: {displayName: C}\n",
        Some(c),
    )
    .await;
    let refused = eventually(Duration::from_secs(30), "team C refused", || async {
        conditions(&admin, c).await.pop().and_then(|(_, _, s)| s)
    })
    .await;
    assert_eq!(refused.1, "NoConnection", "{refused:?}");
    assert_eq!(sim.stats().writes, writes_before);
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn a_crash_between_claim_and_status_converges_without_duplicates() {
    let ns = &unique("e2e-claim-crash");
    let admin = setup(ns).await;
    let sim = start_sim().await;
    // The create is carried out, its answer lost: the controller knows only its claim.
    sim.inject(sim::Fault {
        status: 503,
        times: 1,
        retry_after: None,
        after_write: true,
        matching: Some(format!("POST /us/v1/projects/{PROJECT}/apps")),
        message: None,
    });
    let mut first = Controller::start(&sim, ns, ns, &[]);
    apply_yaml(
        &admin,
        "apiVersion: conversation.sinch.com/v1alpha1\nkind: ConversationApp\nmetadata: {name: once}\nspec: {displayName: Once}\n",
        Some(ns),
    )
    .await;
    let us = sinch(&sim, Region::Us);
    eventually(Duration::from_secs(30), "the app created, its answer lost", || async {
        (us.list_apps().await.unwrap().len() == 1).then_some(())
    })
    .await;
    first.kill();
    assert_eq!(
        claims_of(&admin, ns).await,
        [("Once".to_string(), None)],
        "only the key claim, written before the create"
    );
    let _second = Controller::start(&sim, ns, ns, &[]);
    all_ready(&admin, ns, 1).await;
    let apps = us.list_apps().await.unwrap();
    assert_eq!(apps.len(), 1, "not created twice: {apps:?}");
    assert_eq!(
        claims_of(&admin, ns).await,
        [("Once".to_string(), None), ("Once".to_string(), apps[0].id.clone())],
        "the id claimed beside the key claim"
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn a_namespace_that_did_not_opt_in_gets_a_condition_and_the_operator_lists_no_secrets() {
    let ns = &unique("e2e-closed");
    let admin = setup_closed(ns).await;
    let sim = start_sim().await;
    let _controller = Controller::start(&sim, ns, ns, &[]);
    apply_yaml(
        &admin,
        r#"
apiVersion: v1
kind: Secret
metadata: {name: sms}
stringData: {token: canary-closed-token-8080}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {name: closed}
spec:
  displayName: Closed
  channelCredentials: [{channel: SMS, staticBearer: {claimedIdentity: x, tokenRef: {name: sms, key: token}}}]
"#,
        Some(ns),
    )
    .await;
    let synced = eventually(Duration::from_secs(30), "the refusal reported", || async {
        conditions(&admin, ns).await.pop().and_then(|(_, _, s)| s)
    })
    .await;
    assert_eq!(synced.1, "SecretForbidden", "{synced:?}");
    assert_eq!(
        synced.2,
        format!(
            "the operator may not read Secret {ns}/sms: namespace {ns} has not let it read its Secrets (kubectl -n {ns} create rolebinding sinch-operator-secrets --clusterrole=sinch-operator-secret-reader --serviceaccount=sinch-operator-system:sinch-operator)"
        )
    );
    assert_eq!(sim.stats().writes, 0);
    // The operator's own identity cannot list Secrets, anywhere.
    let operator = client("controller.kubeconfig").await;
    for api in [
        Api::<Secret>::all(operator.clone()),
        Api::<Secret>::namespaced(operator, ns),
    ] {
        match api.list(&ListParams::default()).await {
            Err(kube::Error::Api(e)) => assert_eq!(e.code, 403),
            other => panic!("the operator listed Secrets: {:?}", other.map(|l| l.items.len())),
        }
    }
}

/// A ConversationApp named `name` with `annotations` (YAML flow mapping entries) and `spec`
/// fields beyond its display name (`name` too).
fn app_yaml(name: &str, annotations: &str, spec: &str) -> String {
    format!(
        "apiVersion: conversation.sinch.com/v1alpha1\nkind: ConversationApp\nmetadata: {{name: {name}, annotations: {{{annotations}}}}}\nspec: {{displayName: {name}{spec}}}\n"
    )
}

/// A tenant's poll interval of 10^19 s (it once overflowed an `Instant` and panicked the
/// reconcile) is capped at a day: the object becomes Ready and the process lives on; a new
/// controller takes the object over as it is, and still serves objects made afterwards.
#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn a_tenants_absurd_poll_interval_neither_crashes_the_controller_nor_survives_a_restart() {
    let started = Instant::now();
    let ns = &unique("e2e-absurd-poll");
    let admin = setup(ns).await;
    let sim = start_sim().await;
    let lease = &unique("absurd-poll");
    let mut first = Controller::start(&sim, ns, lease, &[]);
    let absurd = r#"conversation.sinch.com/poll-interval: "10000000000000000000s""#;
    apply_yaml(&admin, &app_yaml("absurd", absurd, ""), Some(ns)).await;
    all_ready(&admin, ns, 1).await;
    let ready = Instant::now();
    // The create's read-back (at most 5.5 s after it), whose poll is then due "in 10^19 s": the
    // requeue that panicked.
    eventually(Duration::from_secs(30), "the read-back of the create", || async {
        (first.metric("sinch_operator_reconciles_total").await >= 2.0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(7).saturating_sub(ready.elapsed())).await;
    assert!(first.running(), "the controller exited:\n{}", first.log());
    assert!(!first.log().contains("panicked"), "{}", first.log());

    // A restart: the new controller reconciles the object (it lists it with its annotation)
    // and lives on; the object stays Ready, and one made afterwards becomes Ready too.
    first.terminate();
    let mut second = Controller::start(&sim, ns, lease, &[]);
    eventually(
        Duration::from_secs(30),
        "the new controller reconciles the absurd object",
        || async { (second.metric("sinch_operator_reconciles_total").await >= 1.0).then_some(()) },
    )
    .await;
    apply_yaml(&admin, &app_yaml("after", "", ""), Some(ns)).await;
    all_ready(&admin, ns, 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(second.running(), "the new controller exited:\n{}", second.log());
    assert!(!second.log().contains("panicked"), "{}", second.log());
    let absurd = dynamic(&admin, ns, Kind::ConversationApp).get("absurd").await.unwrap();
    assert_eq!(condition(&absurd, "Ready").unwrap().0, "True", "{absurd:?}");
    let apps = sinch(&sim, Region::Us).list_apps().await.unwrap();
    assert_eq!(apps.len(), 2, "nothing created twice: {apps:?}");
    eprintln!("absurd poll interval: {:?}", started.elapsed());
}

/// Creates `object` in `ns` with a plain POST whose answer is not parsed: kube's types stop at
/// serde_json's recursion limit of 128, the API server does not.
async fn create_unparsed(kube: &kube::Client, ns: &str, plural: &str, object: &Value) {
    let request = http::Request::post(format!(
        "/apis/conversation.sinch.com/v1alpha1/namespaces/{ns}/{plural}"
    ))
    .header("content-type", "application/json")
    .body(object.to_string().into_bytes())
    .unwrap();
    kube.request_text(request)
        .await
        .unwrap_or_else(|e| panic!("creating {plural} in {ns}: {e}"));
}

/// A condition (status, reason, message) of a Template read without parsing its spec.
async fn unparsed_condition(
    kube: &kube::Client,
    ns: &str,
    name: &str,
    type_: &str,
) -> Option<(String, String, String)> {
    #[derive(Deserialize)]
    struct Unparsed {
        /// Skipped over as text, without recursion.
        #[serde(rename = "spec")]
        _spec: Box<serde_json::value::RawValue>,
        #[serde(default)]
        status: Value,
    }
    let request = http::Request::get(format!(
        "/apis/conversation.sinch.com/v1alpha1/namespaces/{ns}/templates/{name}"
    ))
    .body(Vec::new())
    .unwrap();
    let object: Unparsed = serde_json::from_str(&kube.request_text(request).await.unwrap()).unwrap();
    let c = object.status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?
        .clone();
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
        c["message"].as_str()?.to_string(),
    ))
}

/// A Template (JSON) with one en-US translation holding `message` as its `field`.
fn template_json(name: &str, id: &str, field: &str, message: Value) -> Value {
    json!({
        "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "Template", "metadata": {"name": name},
        "spec": {"templateId": id, "defaultTranslation": "en-US", "translations": [
            {"languageCode": "en-US", "version": "1", field: message}
        ]}
    })
}

/// A tenant's Template nested past serde_json's recursion limit (the API server takes it) once
/// failed the list of every Template, in every namespace, at each re-list. Now it alone gets
/// `InvalidSpec` ("cannot be read"), before and after a restart (whose re-list holds it), while
/// another namespace's Templates are created; one that parses but nests past validate's 32
/// levels is `InvalidSpec` too; nothing of either reaches Sinch.
#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn a_template_that_cannot_be_parsed_stops_no_other_template_across_a_restart() {
    let started = Instant::now();
    let (a, b) = (&unique("e2e-deep-a"), &unique("e2e-deep-b"));
    let admin = setup(a).await;
    setup(b).await;
    let sim = start_sim().await;
    // The controller watches every namespace (one namespace's list is the others' too): a
    // connection lets A and B reach Sinch, the other tests' namespaces are refused.
    let conn = unique("conn-deep");
    let _connections = Connections(vec![conn.clone()]);
    connect(&admin, &conn, &[a, b], &[]).await;
    let nested = |levels: usize| (0..levels).fold(json!("x"), |v, _| json!({"a": v}));
    let text = |t: &str| json!({"text": t});
    // In A, before the controller starts: its first list holds them.
    create_unparsed(
        &admin,
        a,
        "templates",
        &template_json("unreadable", "e2e-unreadable", "cardMessage", nested(140)),
    )
    .await;
    create_unparsed(
        &admin,
        a,
        "templates",
        &template_json("too-deep", "e2e-too-deep", "cardMessage", nested(40)),
    )
    .await;
    let lease = &unique("deep");
    let mut first = Controller::start(&sim, "", lease, &[]);
    create_unparsed(
        &admin,
        b,
        "templates",
        &template_json("fine", "e2e-fine", "textMessage", text("Hello")),
    )
    .await;
    all_ready(&admin, b, 1).await;

    let unreadable = || async {
        let ready = unparsed_condition(&admin, a, "unreadable", "Ready").await?;
        let synced = unparsed_condition(&admin, a, "unreadable", "Synced").await?;
        (synced.1 == "InvalidSpec").then_some((ready, synced))
    };
    let (ready, synced) = eventually(
        Duration::from_secs(30),
        "A's unreadable Template InvalidSpec",
        unreadable,
    )
    .await;
    assert_eq!((ready.0.as_str(), ready.1.as_str()), ("False", "InvalidSpec"));
    assert_eq!(synced.0, "False");
    assert!(synced.2.starts_with("the object cannot be read: "), "{synced:?}");
    assert!(synced.2.contains("recursion limit exceeded"), "{synced:?}");
    let templates_a = dynamic(&admin, a, Kind::Template);
    let too_deep = eventually(Duration::from_secs(30), "A's too deep Template InvalidSpec", || async {
        let o = templates_a.get("too-deep").await.ok()?;
        condition(&o, "Synced").filter(|c| c.1 == "InvalidSpec")
    })
    .await;
    assert_eq!(too_deep.0, "False");
    assert!(
        too_deep
            .2
            .contains("nests 40 levels deep; at most 32 levels are allowed"),
        "{too_deep:?}"
    );

    // A restart: the new controller lists every Template again, the unreadable one among them.
    first.terminate();
    let mut second = Controller::start(&sim, "", lease, &[]);
    create_unparsed(
        &admin,
        b,
        "templates",
        &template_json("after", "e2e-after", "textMessage", text("After")),
    )
    .await;
    all_ready(&admin, b, 2).await;
    assert!(second.running(), "{}", second.log());
    assert!(
        second.log().contains("an object cannot be read"),
        "the re-list met the unreadable Template: {}",
        second.log()
    );
    let (ready, synced) = unreadable().await.unwrap();
    assert_eq!((ready.1.as_str(), synced.0.as_str()), ("InvalidSpec", "False"));
    assert!(synced.2.contains("cannot be read"), "{synced:?}");
    let o = templates_a.get("too-deep").await.unwrap();
    assert_eq!(condition(&o, "Synced").unwrap().1, "InvalidSpec");

    // Sinch holds B's two Templates; nothing of A's was sent.
    let mut ids: Vec<String> = sinch(&sim, Region::Us)
        .list_templates()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|t| t.id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["e2e-after", "e2e-fine"]);
    for r in sim.journal() {
        let sent = format!("{} {:?} {:?}", r.path, r.query, r.body);
        assert!(
            !sent.contains("e2e-unreadable") && !sent.contains("e2e-too-deep"),
            "sent for A: {sent}"
        );
    }
    eprintln!("unparseable template: {:?}", started.elapsed());
}

/// Sinch accepts an update of processing_mode and keeps its own value (the simulator's
/// `--ignore-updates-of`). The update is sent once, read back, reported `NotConverging` naming
/// the field, and not sent again before the object's poll interval (40 s): over 30 s Sinch
/// receives the app's create and one update.
#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn an_update_sinch_does_not_keep_is_sent_at_most_once_per_poll_interval() {
    let started = Instant::now();
    let ns = &unique("e2e-unkept");
    let admin = setup(ns).await;
    let sim = start_sim_with(sim::Config {
        ignore_updates_of: vec!["processing_mode".into()],
        ..sim::Config::default()
    })
    .await;
    // The default --min-poll-interval (30 s) lets the annotation's 40 s stand.
    let _controller = Controller::start(&sim, ns, ns, &[]);
    let every = "conversation.sinch.com/poll-interval: 40s";
    apply_yaml(&admin, &app_yaml("stubborn", every, ""), Some(ns)).await;
    all_ready(&admin, ns, 1).await;
    // The create keeps Sinch's default, DISPATCH; the spec then asks for CONVERSATION.
    let changed = Instant::now();
    apply_yaml(
        &admin,
        &app_yaml("stubborn", every, ", processingMode: CONVERSATION"),
        Some(ns),
    )
    .await;
    let apps = dynamic(&admin, ns, Kind::ConversationApp);
    let not_converging = || async {
        let o = apps.get("stubborn").await.ok()?;
        condition(&o, "Synced").filter(|c| c.1 == "NotConverging")
    };
    let synced = eventually(Duration::from_secs(20), "stubborn NotConverging", not_converging).await;
    assert_eq!(
        (synced.0.as_str(), synced.2.as_str()),
        (
            "False",
            "Sinch did not keep the last update (sent again at the next poll): processing_mode: Sinch holds \"DISPATCH\", the spec says \"CONVERSATION\""
        )
    );

    // 30 s after the change, 10 s short of the interval: one update, nothing resent.
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(changed.elapsed())).await;
    let stats = sim.stats();
    assert_eq!(
        (
            stats.count("POST /{region}/v1/projects/{project_id}/apps"),
            stats.count("PATCH /{region}/v1/projects/{project_id}/apps/{app_id}"),
            stats.writes
        ),
        (1, 1, 2),
        "{stats:?}"
    );
    assert!(not_converging().await.is_some(), "still NotConverging");
    let warned = events(&admin, ns)
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("NotConverging"))
        .count();
    assert_eq!(warned, 1, "one event for the condition");
    let app = sinch(&sim, Region::Us).list_apps().await.unwrap().remove(0);
    assert_eq!(app.processing_mode.as_deref(), Some("DISPATCH"));
    eprintln!("update not kept: {:?}", started.elapsed());
}

/// Each credential of `secrets` found in `text`, and the word after each `Bearer ` or `Basic `
/// that is not `(sensitive)`.
fn credentials_in(text: &str, secrets: &[String]) -> Vec<String> {
    let mut found: Vec<String> = secrets.iter().filter(|s| text.contains(s.as_str())).cloned().collect();
    for scheme in ["Bearer ", "Basic "] {
        for (at, _) in text.match_indices(scheme) {
            let next = &text[at + scheme.len()..];
            if !next.starts_with(sinch_operator::sinch::SENSITIVE) {
                found.push(format!("{scheme}{}", next.chars().take(60).collect::<String>()));
            }
        }
    }
    found
}

/// A proxy before Sinch answers every request 502 quoting its headers, the bearer token first.
/// The objects fail with that answer, shown without the credential: no status, Event or line of
/// the controller's log, and no output of `plan`, holds a token the simulator issued, the key
/// secret (alone or as Basic auth sends it) or an input Secret's value.
#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn no_token_reaches_status_events_or_cli_output_when_an_upstream_quotes_headers() {
    let started = Instant::now();
    let ns = &unique("e2e-echo");
    let admin = setup(ns).await;
    // The keys the controller and `cli` use.
    let keys = [
        ("e2e-key", "canary-operator-key-5150"),
        ("e2e-key", "canary-cli-key-6060"),
    ];
    let sim = start_sim_with(sim::Config {
        echo_headers_rate: 1.0,
        keys: keys.iter().map(|(i, s)| (i.to_string(), s.to_string())).collect(),
        ..sim::Config::default()
    })
    .await;
    // Every line the product logs, so that its log is checked as well.
    let controller = Controller::start_logging(&sim, ns, ns, &[], "debug,kube=info");
    let template = r#"
---
apiVersion: conversation.sinch.com/v1alpha1
kind: Template
metadata: {name: echo}
spec:
  templateId: e2e-echo
  defaultTranslation: en-US
  translations: [{languageCode: en-US, version: "1", textMessage: {text: Echo}}]
"#;
    apply_yaml(&admin, &format!("{SHOP}{template}"), Some(ns)).await;
    let statuses = eventually(
        Duration::from_secs(60),
        "both objects failed with the proxy's 502, with their events",
        || async {
            let all = conditions(&admin, ns).await;
            let failed = all
                .iter()
                .filter(|(_, _, s)| s.as_ref().is_some_and(|s| s.0 == "False" && s.2.contains("HTTP 502")))
                .count();
            let warned = events(&admin, ns)
                .await
                .iter()
                .filter(|e| e.note.as_deref().is_some_and(|n| n.contains("HTTP 502")))
                .count();
            (all.len() == 2 && failed == 2 && warned >= 1).then_some(all)
        },
    )
    .await;
    // The proxy's page reached the status, its credential taken out.
    eprintln!("statuses: {statuses:?}");
    assert!(
        statuses
            .iter()
            .any(|(_, _, s)| s.as_ref().unwrap().2.contains("Authorization: (sensitive)")),
        "{statuses:?}"
    );

    // `plan` of the same input meets the same proxy.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.yaml"), format!("{SHOP}{template}")).unwrap();
    let out = cli(&sim, &["plan", "-f", dir.path().to_str().unwrap()]).await;
    let cli_output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{cli_output}");
    assert!(cli_output.contains("HTTP 502"), "{cli_output}");

    let mut secrets = sim.issued_tokens();
    assert!(
        secrets.len() >= 2,
        "the controller and plan each took a token: {secrets:?}"
    );
    for (id, secret) in keys {
        secrets.push(secret.to_string());
        secrets.push(base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")));
    }
    secrets.push("canary-sms-token-4242".to_string());
    let mut shown = serde_json::to_string(&events(&admin, ns).await).unwrap();
    for kind in Kind::ALL {
        for o in dynamic(&admin, ns, kind).list(&ListParams::default()).await.unwrap() {
            shown.push_str(&o.data["status"].to_string());
        }
    }
    let log = controller.log();
    for (what, text) in [
        ("status or event", shown.as_str()),
        ("the controller's log", log.as_str()),
        ("plan's output", cli_output.as_str()),
    ] {
        let found = credentials_in(text, &secrets);
        assert!(found.is_empty(), "{what} shows {found:?}:\n{text}");
    }
    eprintln!("headers echoed: {:?}", started.elapsed());
}

/// `conversation.sinch.com/reconcile-requested-at`: after a change made in Sinch, a new value
/// of the annotation reconciles the object at once with a fresh read (the poll interval is ten
/// minutes), and the status records the value handled.
#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn a_reconcile_request_sets_sinch_back_now_and_is_recorded() {
    let ns = &unique("e2e-request");
    let admin = setup(ns).await;
    let sim = start_sim().await;
    let _controller = Controller::start(&sim, ns, ns, &["--resync", "10m"]);
    let app = "apiVersion: conversation.sinch.com/v1alpha1\nkind: ConversationApp\nmetadata: {name: now}\nspec: {displayName: Now, processingMode: DISPATCH}\n";
    apply_yaml(&admin, app, Some(ns)).await;
    all_ready(&admin, ns, 1).await;
    let us = sinch(&sim, Region::Us);
    let id = us
        .list_apps()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.display_name.as_deref() == Some("Now"))
        .unwrap()
        .id
        .unwrap();
    let mut changed = us.get_app(&id).await.unwrap();
    changed.processing_mode = Some(serde_json::from_value(json!("CONVERSATION")).unwrap());
    us.update_app(&id, &changed, vec!["processing_mode".into()])
        .await
        .unwrap();
    // Past the read-back of the create: only the request can bring the change to light now.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let requested = app.replace(
        "metadata: {name: now}",
        "metadata: {name: now, annotations: {conversation.sinch.com/reconcile-requested-at: \"2026-12-06T17:00:00Z\"}}",
    );
    apply_yaml(&admin, &requested, Some(ns)).await;
    let apps = dynamic(&admin, ns, Kind::ConversationApp);
    eventually(Duration::from_secs(20), "the request handled", || async {
        let o = apps.get("now").await.ok()?;
        (o.data["status"]["lastHandledReconcileAt"] == "2026-12-06T17:00:00Z").then_some(())
    })
    .await;
    let stored = us.get_app(&id).await.unwrap();
    assert_eq!(
        serde_json::to_value(stored.processing_mode).unwrap(),
        json!("DISPATCH"),
        "set back"
    );
}

/// A namespace deleted (by mistake, or to move a team) keeps its apps in Sinch unless the
/// operator says otherwise (`--namespace-deletion-policy Delete`). The suite's API server runs
/// without a namespace controller, so the test deletes the objects as that controller would.
#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn a_deleted_namespace_keeps_its_apps_in_sinch_unless_the_operator_says_otherwise() {
    for (policy, kept) in [("Orphan", true), ("Delete", false)] {
        let ns = &unique("e2e-nsdel");
        let admin = setup(ns).await;
        let sim = start_sim().await;
        let controller = Controller::start(&sim, ns, ns, &["--namespace-deletion-policy", policy]);
        let app = "apiVersion: conversation.sinch.com/v1alpha1\nkind: ConversationApp\nmetadata: {name: keep}\nspec: {displayName: Keep, processingMode: DISPATCH}\n";
        apply_yaml(&admin, app, Some(ns)).await;
        all_ready(&admin, ns, 1).await;
        let us = sinch(&sim, Region::Us);
        assert_eq!(us.list_apps().await.unwrap().len(), 1);

        Api::<Namespace>::all(admin.clone())
            .delete(ns, &DeleteParams::default())
            .await
            .unwrap();
        // Let the controller's namespace watch see it, then delete as the namespace controller does.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let apps = dynamic(&admin, ns, Kind::ConversationApp);
        apps.delete("keep", &DeleteParams::default()).await.unwrap();
        eventually(Duration::from_secs(30), "the app object gone", || async {
            apps.get_opt("keep").await.unwrap().is_none().then_some(())
        })
        .await;
        assert_eq!(us.list_apps().await.unwrap().len(), usize::from(kept), "{policy}");
        let outcome = if kept { "kept" } else { "deleted" };
        let counted = controller
            .metric(&format!(
                "sinch_operator_deletions_total{{kind=\"ConversationApp\",outcome=\"{outcome}\"}}"
            ))
            .await;
        assert_eq!(counted, 1.0, "{policy}");
    }
}

/// The `sinch_operator_*` names that `text` mentions (each the longest run of name characters).
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("sinch_operator_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Every sample name a scrape can hold: the samples it has, and those its `# TYPE` lines
/// promise (a counter's `_total`, a histogram's `_bucket`, `_sum`, `_count`), since a family
/// with nothing counted yet has no sample.
fn exposed_names(scrape: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in scrape.lines() {
        if let Some(typed) = line.strip_prefix("# TYPE ") {
            let mut words = typed.split(' ');
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        } else if !line.starts_with('#') {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn the_alerts_and_the_dashboard_use_only_metrics_the_controller_exposes() {
    let ns = &unique("e2e-monitoring");
    let admin = setup(ns).await;
    let sim = start_sim().await;
    let controller = Controller::start(&sim, ns, ns, &[]);
    apply_yaml(&admin, SHOP, Some(ns)).await;
    all_ready(&admin, ns, 1).await;
    // The status written is what the gauge counts.
    let converged =
        "sinch_operator_objects{kind=\"ConversationApp\",ready=\"True\",synced=\"True\",reason=\"ReconcileSuccess\"} 1";
    // A webhook waiting for an app that does not exist: a reconcile error, so that its family
    // has a series (a family with none is not exposed).
    let waiting = r#"
apiVersion: conversation.sinch.com/v1alpha1
kind: Webhook
metadata: {name: waits}
spec: {appRef: {name: nowhere}, target: "https://waits.example.com/hook", triggers: [MESSAGE_INBOUND]}
"#;
    apply_yaml(&admin, waiting, Some(ns)).await;
    let failing = "sinch_operator_reconcile_errors_total{kind=\"Webhook\",reason=\"AppNotFound\"}";
    let scrape = eventually(
        Duration::from_secs(15),
        "the app converged, the webhook waiting",
        || async {
            let text = controller.metrics().await?;
            let counted = text.lines().any(|l| l == converged) && text.contains(failing);
            counted.then_some(text)
        },
    )
    .await;
    assert!(
        scrape.contains(
            "sinch_operator_objects{kind=\"Webhook\",ready=\"Unknown\",synced=\"False\",reason=\"AppNotFound\"} 1"
        ) || scrape.contains(
            "sinch_operator_objects{kind=\"Webhook\",ready=\"False\",synced=\"False\",reason=\"AppNotFound\"} 1"
        ),
        "{scrape}"
    );
    let exposed = exposed_names(&scrape);
    for file in ["manifests/monitoring/rules.yaml", "manifests/monitoring/dashboard.json"] {
        let used = metric_names(&std::fs::read_to_string(root().join(file)).unwrap());
        assert!(used.contains("sinch_operator_objects"), "{file} names {used:?}");
        let missing: Vec<_> = used.difference(&exposed).collect();
        assert!(
            missing.is_empty(),
            "{file} uses {missing:?}, which the controller does not expose:\n{scrape}"
        );
    }
}

/// Uninstalling deletes the CRDs, and with them every custom resource: nothing is deleted in
/// Sinch. The operator reads the kind's CRD before any Sinch delete; one being deleted lets the
/// finalizer go with the Sinch side kept (an `Orphaned` event says why).
#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn removing_the_crds_deletes_nothing_in_sinch() {
    let ns = &unique("e2e-uninstall");
    let admin = setup(ns).await;
    let sim = start_sim().await;
    // Every namespace: the Templates the suite's earlier tests left (their controllers gone)
    // hold the CRD's deletion until a controller lets their finalizers go, as an uninstall's
    // would for every namespace.
    let controller = Controller::start(&sim, "", &unique("uninstall"), &["--operator-key-namespaces", ns]);
    let template = "apiVersion: conversation.sinch.com/v1alpha1\nkind: Template\nmetadata: {name: kept}\nspec:\n  templateId: e2e-uninstall-kept\n  defaultTranslation: en-US\n  translations: [{languageCode: en-US, version: \"1\", textMessage: {text: Hello}}]\n";
    apply_yaml(&admin, template, Some(ns)).await;
    all_ready(&admin, ns, 1).await;
    let us = sinch(&sim, Region::Us);
    assert_eq!(us.list_templates().await.unwrap().len(), 1);

    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let name = "templates.conversation.sinch.com";
    crds.delete(name, &DeleteParams::default()).await.unwrap();
    // The API server deletes the Templates, waits for their finalizers, then the CRD goes.
    eventually(Duration::from_secs(120), "the Template CRD gone", || async {
        crds.get_opt(name).await.unwrap().is_none().then_some(())
    })
    .await;
    assert_eq!(us.list_templates().await.unwrap().len(), 1, "nothing deleted in Sinch");
    assert_eq!(
        sim.stats()
            .count("DELETE /{region}/v2/projects/{project_id}/templates/{template_id}"),
        0
    );
    let orphaned = events(&admin, ns)
        .await
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("Orphaned"));
    assert_eq!(
        orphaned.and_then(|e| e.note).as_deref(),
        Some(
            "CustomResourceDefinition templates.conversation.sinch.com is being deleted (an uninstall): the template stays in Sinch"
        )
    );
    // This Template and those the earlier tests left: each kept, none deleted.
    let kept = controller
        .metric("sinch_operator_deletions_total{kind=\"Template\",outcome=\"kept\"}")
        .await;
    let deleted = controller
        .metric("sinch_operator_deletions_total{kind=\"Template\",outcome=\"deleted\"}")
        .await;
    assert!(kept >= 1.0 && deleted == 0.0, "kept {kept}, deleted {deleted}");
    // The CRDs back for the tests that follow.
    setup_closed(&unique("e2e-reinstall")).await;
}

/// The release the upgrade test starts from: its CRDs, and the examples as its controller left
/// them in the API server and in its simulator, in `tests/fixtures/upgrade/<release>/` (made by
/// `scripts/upgrade-fixtures`, see the README there).
const EARLIER_RELEASE: &str = "e003ee6";
/// The namespace of the fixtures' objects (the examples').
const FIXTURE_NS: &str = "messaging";
/// Objects of the earlier release that this one refuses (`InvalidSpec`, nothing written): the
/// order-shipped example's WhatsApp `parameterMappings` ran from variable to parameter number
/// until the direction was settled (WhatsApp parameter key -> variable, docs/sinch-api.md).
const INVALID_AFTER_UPGRADE: &[(&str, &str)] = &[("Template", "order-shipped")];

fn fixture(file: &str) -> PathBuf {
    root().join("tests/fixtures/upgrade").join(EARLIER_RELEASE).join(file)
}

fn yaml_values(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn fixture_documents(file: &str) -> Vec<Value> {
    yaml_values(&std::fs::read_to_string(fixture(file)).unwrap())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates or replaces each CRD of `yaml` and waits until all are Established.
async fn replace_crds(admin: &kube::Client, yaml: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let mut names = Vec::new();
    for doc in yaml_values(yaml) {
        let crd: CustomResourceDefinition = serde_json::from_value(doc).unwrap();
        let name = crd.metadata.name.clone().unwrap();
        eventually(Duration::from_secs(30), &format!("CRD {name} replaced"), || async {
            let mut crd = crd.clone();
            let written = match crds.get_opt(&name).await.unwrap() {
                Some(live) => {
                    crd.metadata.resource_version = live.metadata.resource_version;
                    crds.replace(&name, &PostParams::default(), &crd).await
                }
                None => crds.create(&PostParams::default(), &crd).await,
            };
            match written {
                Ok(_) => Some(()),
                // The API server updated its status meanwhile: again.
                Err(kube::Error::Api(e)) if e.code == 409 => None,
                Err(e) => panic!("replacing the CRD {name}: {e}"),
            }
        })
        .await;
        names.push(name);
    }
    for name in names {
        established(&crds, &name).await;
    }
}

/// A namespace of the operator's own for one test (its Lease and fingerprint key): the Role of
/// manifests/rbac.yaml there, bound to the controller's user, and the opt-in to Secret reads.
async fn operator_namespace(admin: &kube::Client, ns: &str) {
    Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let rbac = std::fs::read_to_string(root().join("manifests/rbac.yaml")).unwrap();
    for (value, api) in documents(admin, &rbac, Some(ns)) {
        if value["kind"] == "Role" && value["metadata"]["name"] == "sinch-operator-leader" {
            api.create(&PostParams::default(), &serde_json::from_value(value).unwrap())
                .await
                .unwrap();
        }
    }
    let binding = format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: sinch-operator-leader-e2e, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: sinch-operator-leader}}
subjects: [{{kind: User, name: sinch-operator, apiGroup: rbac.authorization.k8s.io}}]
"#
    );
    apply_yaml(admin, &binding, None).await;
    allow_secrets(admin, ns).await;
}

/// What restoring the fixtures made: each object's uid in the fixtures -> its uid now, and the
/// claims as created (name, spec).
struct Restored {
    uids: std::collections::BTreeMap<String, String>,
    claims: std::collections::BTreeMap<String, Value>,
}

/// The earlier release's state, as an in-place upgrade finds it: its CRDs, its fingerprint key in
/// the operator's namespace, the Secrets, its objects with their finalizers and the status it
/// wrote (through the status subresource), and its claims. The API server gives each object a
/// new uid; what the release derived from the uid is derived again for the new one, by the
/// release's own rules, each checked against the fixtures first: the secret hashes (HMAC with
/// the uid keyed by the fingerprint key, as the salt) and the claims' owner uid. The namespace
/// is the test's, and so are the claims' owner namespace and owner label.
async fn restore_earlier_release(admin: kube::Client, ns: String, operator_ns: String) -> Restored {
    replace_crds(&admin, &std::fs::read_to_string(fixture("crds.yaml")).unwrap()).await;

    let [mut key_secret] = <[Value; 1]>::try_from(fixture_documents("fingerprint-key.yaml")).unwrap();
    key_secret["metadata"]["namespace"] = json!(operator_ns);
    let key_secret: Secret = serde_json::from_value(key_secret).unwrap();
    let key = key_secret.data.as_ref().unwrap()["key"].0.clone();
    Api::<Secret>::namespaced(admin.clone(), &operator_ns)
        .create(&PostParams::default(), &key_secret)
        .await
        .unwrap();
    let salt = |uid: &str| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
        hex(ring::hmac::sign(&key, uid.as_bytes()).as_ref())
    };

    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    let mut values = Vec::new();
    for mut secret in fixture_documents("secrets.yaml") {
        secret["metadata"]["namespace"] = json!(ns);
        let secret: Secret = serde_json::from_value(secret).unwrap();
        values.extend(secret.data.iter().flatten().map(|(_, v)| v.0.clone()));
        secrets.create(&PostParams::default(), &secret).await.unwrap();
    }

    let mut uids = std::collections::BTreeMap::new();
    for object in fixture_documents("objects.yaml") {
        let kind = Kind::from_name(object["kind"].as_str().unwrap()).unwrap();
        let meta = &object["metadata"];
        let name = meta["name"].as_str().unwrap();
        assert_eq!(meta["namespace"], FIXTURE_NS);
        let api = dynamic(&admin, &ns, kind);
        let mut metadata = json!({"name": name, "namespace": ns});
        for field in ["labels", "annotations", "finalizers"] {
            if let Some(v) = meta.get(field) {
                metadata[field] = v.clone();
            }
        }
        let created = api
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "apiVersion": object["apiVersion"], "kind": object["kind"],
                    "metadata": metadata, "spec": object["spec"],
                }))
                .unwrap(),
            )
            .await
            .unwrap_or_else(|e| panic!("restoring {kind} {name}: {e}"));
        // A new object is at generation 1, as the fixtures' were: their observedGeneration holds.
        assert_eq!(
            created.metadata.generation,
            meta["generation"].as_i64(),
            "{kind} {name}"
        );
        let (old_uid, uid) = (meta["uid"].as_str().unwrap(), created.metadata.uid.clone().unwrap());
        let mut status = object["status"].clone();
        if let Some(hashes) = status["secretHashes"].as_object_mut() {
            for (pointer, hash) in hashes.iter_mut() {
                let fingerprint = |uid: &str, v: &[u8]| sinch_operator::engine::plan::fingerprint(&salt(uid), v);
                let value = values
                    .iter()
                    .find(|v| fingerprint(old_uid, v) == *hash)
                    .unwrap_or_else(|| panic!("{kind} {name}: the hash of {pointer} is of no Secret value"));
                *hash = json!(fingerprint(&uid, value));
            }
        }
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
            .await
            .unwrap_or_else(|e| panic!("restoring the status of {kind} {name}: {e}"));
        uids.insert(old_uid.to_string(), uid);
    }

    let claims: Api<sinch_operator::model::SinchClaim> = Api::all(admin.clone());
    let mut restored = std::collections::BTreeMap::new();
    for mut claim in fixture_documents("claims.yaml") {
        // The owner label: the first 40 hex digits of sha256("Kind/namespace/name").
        let (kind, name) = (claim["spec"]["kind"].clone(), claim["spec"]["owner"]["name"].clone());
        let label = |ns: &str| {
            let text = format!("{}/{ns}/{}", kind.as_str().unwrap(), name.as_str().unwrap());
            json!(hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref())[..40])
        };
        let labels = &mut claim["metadata"]["labels"]["conversation.sinch.com/owner"];
        assert_eq!(*labels, label(FIXTURE_NS));
        *labels = label(&ns);
        let owner = &mut claim["spec"]["owner"];
        assert_eq!(owner["namespace"], FIXTURE_NS);
        owner["namespace"] = json!(ns);
        owner["uid"] = json!(uids[owner["uid"].as_str().unwrap()]);
        let made = claims
            .create(&PostParams::default(), &serde_json::from_value(claim.clone()).unwrap())
            .await
            .unwrap();
        restored.insert(made.metadata.name.unwrap(), claim["spec"].clone());
    }
    Restored { uids, claims: restored }
}

/// The ids of every app, webhook and template of `project` in Sinch.
async fn sinch_ids(sim: &Sim, project: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for region in [Region::Us, Region::Eu] {
        let sinch = sinch_in(sim, project, region);
        for app in sinch.list_apps().await.unwrap() {
            let id = app.id.unwrap();
            ids.extend(sinch.list_webhooks(&id).await.unwrap().into_iter().filter_map(|w| w.id));
            ids.push(id);
        }
        ids.extend(sinch.list_templates().await.unwrap().into_iter().filter_map(|t| t.id));
    }
    ids.sort();
    ids
}

/// An in-place upgrade from an earlier release: its CRDs, objects (status, finalizers), claims
/// and fingerprint key as it left them, and its simulator's state; then the current CRDs and
/// controller. Every object converges, reconciled by the new release, and Sinch receives no
/// write.
#[tokio::test]
#[ignore = "needs a Kubernetes API server: run scripts/e2e"]
async fn an_earlier_releases_crds_and_objects_upgrade_in_place_without_a_write_to_sinch() {
    let ns = unique("e2e-upgrade");
    let operator_ns = unique("e2e-upgrade-operator");
    // The fixtures' project: no other test's claims name it.
    let project = format!("p-upgrade-{EARLIER_RELEASE}");
    let admin = setup(&ns).await;
    operator_namespace(&admin, &operator_ns).await;
    // Restored under the release's CRDs; the current ones are back whatever happens to the
    // restore (the tests that follow need them), by the upgrade itself: `kubectl apply -f crds/`.
    let restored = tokio::spawn(restore_earlier_release(admin.clone(), ns.clone(), operator_ns.clone())).await;
    replace_crds(
        &admin,
        &std::fs::read_to_string(root().join("crds/conversation.sinch.com.yaml")).unwrap(),
    )
    .await;
    let restored = restored.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let objects = fixture_documents("objects.yaml");
    let count = objects.len();

    // The release's simulator state (a copy: the simulator rewrites its file on a change),
    // answering secrets masked, so that only the recorded hashes tell a secret unchanged.
    let state = cluster_dir().join(format!("{ns}-sim-state.json"));
    std::fs::copy(fixture("sim-state.json"), &state).unwrap();
    let sim = start_sim_with(sim::Config {
        state_file: Some(state),
        mask_secrets: true,
        ..sim::Config::default()
    })
    .await;
    let in_sinch = sinch_ids(&sim, &project).await;
    let mut recorded: Vec<String> = objects
        .iter()
        .filter_map(|o| {
            ["appId", "webhookId", "templateId"]
                .iter()
                .find_map(|f| o["status"][f].as_str())
        })
        .map(str::to_string)
        .collect();
    recorded.sort();
    assert_eq!(
        in_sinch, recorded,
        "the fixtures' statuses record what the simulator holds"
    );
    sim.reset_stats();

    let controller = Controller::start_in(
        &sim,
        &ns,
        &ns,
        &operator_ns,
        &project,
        &["--resync", "3s"],
        "info,kube=warn",
    );
    // The release read any Secret; this one reads only those labelled for it: until the
    // upgrade labels them, each object that uses one says so and nothing is written.
    let with_secrets = objects
        .iter()
        .filter(|o| o["status"]["secretHashes"].as_object().is_some_and(|h| !h.is_empty()))
        .count();
    eventually(
        Duration::from_secs(60),
        &format!("{with_secrets} objects SecretNotLabelled"),
        || async {
            let all = conditions(&admin, &ns).await;
            let waiting = all
                .iter()
                .filter(|(_, _, s)| s.as_ref().is_some_and(|s| s.1 == "SecretNotLabelled"))
                .count();
            (waiting == with_secrets).then_some(())
        },
    )
    .await;
    assert_eq!(sim.stats().writes, 0, "{:?}", sim.stats());
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    for secret in secrets.list(&ListParams::default()).await.unwrap() {
        let patch = json!({"metadata": {"labels": {"conversation.sinch.com/operator-secret": "true"}}});
        secrets
            .patch(
                &secret.metadata.name.unwrap(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
    }

    // Every object reconciled by this release (its gauge counts what each reconcile concluded):
    // Ready and Synced, but for those it refuses, which say why.
    let invalid = INVALID_AFTER_UPGRADE.len();
    let converged = format!(
        "{} objects reconciled to ReconcileSuccess and {invalid} to InvalidSpec by the new controller",
        count - invalid
    );
    eventually(Duration::from_secs(90), &converged, || async {
        let text = controller.metrics().await?;
        let gauge = |conditions: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with("sinch_operator_objects{") && l.contains(conditions))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
                .sum()
        };
        let synced = gauge("ready=\"True\",synced=\"True\",reason=\"ReconcileSuccess\"");
        let refused = gauge("synced=\"False\",reason=\"InvalidSpec\"");
        (synced == (count - invalid) as f64 && refused == invalid as f64).then_some(())
    })
    .await;
    for (object, ready, synced) in conditions(&admin, &ns).await {
        let (ready, synced) = (ready.unwrap(), synced.unwrap());
        if INVALID_AFTER_UPGRADE.iter().any(|(k, n)| object == format!("{k} {n}")) {
            assert_eq!(
                (synced.0.as_str(), synced.1.as_str()),
                ("False", "InvalidSpec"),
                "{object}"
            );
            assert!(synced.2.contains("parameterMappings"), "{object}: {}", synced.2);
        } else {
            assert_eq!(
                (ready.0.as_str(), synced.0.as_str()),
                ("True", "True"),
                "{object}: {synced:?}"
            );
        }
    }
    let stats = sim.stats();
    assert_eq!(stats.writes, 0, "the upgrade wrote to Sinch: {stats:?}");
    // And a window after it in which every object polls again.
    let reconciles = controller.metric("sinch_operator_reconciles_total").await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let stats = sim.stats();
    assert_eq!(stats.writes, 0, "the upgraded controller wrote to Sinch: {stats:?}");
    assert!(
        controller.metric("sinch_operator_reconciles_total").await >= reconciles + count as f64,
        "the window held a poll of each object"
    );

    // Nothing twice, nothing lost in Sinch; each object keeps its Sinch id, its finalizer, its
    // secret hashes (no secret was taken as rotated), and its claims.
    assert_eq!(sinch_ids(&sim, &project).await, in_sinch);
    for fixture in &objects {
        let kind = Kind::from_name(fixture["kind"].as_str().unwrap()).unwrap();
        let name = fixture["metadata"]["name"].as_str().unwrap();
        let now = dynamic(&admin, &ns, kind).get(name).await.unwrap();
        let status = &now.data["status"];
        assert_eq!(
            now.metadata.uid.as_ref(),
            Some(&restored.uids[fixture["metadata"]["uid"].as_str().unwrap()])
        );
        assert_eq!(
            json!(now.metadata.finalizers),
            fixture["metadata"]["finalizers"],
            "{kind} {name}"
        );
        for field in ["appId", "webhookId", "templateId", "projectId", "region"] {
            assert_eq!(status[field], fixture["status"][field], "{kind} {name}: {field}");
        }
        assert_eq!(
            status["observedGeneration"],
            json!(now.metadata.generation),
            "{kind} {name}"
        );
        let pointers = |s: &Value| {
            s["secretHashes"]
                .as_object()
                .map(|h| h.keys().cloned().collect::<Vec<_>>())
        };
        assert_eq!(pointers(status), pointers(&fixture["status"]), "{kind} {name}");
    }
    let claims: Api<sinch_operator::model::SinchClaim> = Api::all(admin.clone());
    let held: std::collections::BTreeMap<String, Value> = claims
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.spec.project_id == project)
        .map(|c| (c.metadata.name.clone().unwrap(), serde_json::to_value(&c.spec).unwrap()))
        .collect();
    assert_eq!(held, restored.claims, "the claims, held by the same objects");
}
