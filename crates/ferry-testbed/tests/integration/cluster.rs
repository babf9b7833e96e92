//! The control plane of the test bed, checked against the real servers: kube-rs against the API
//! (custom resources with a status subresource, watches, namespaces), the controller-manager
//! (ReplicaSet revisions, `kubectl rollout undo`), RBAC with a ServiceAccount token, and the bad
//! cases of `testbed/cluster.sh`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_testbed::cluster::{ClusterEnv, cluster, cluster_sh, unique_namespace};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

/// Polls `check` every 100 ms until it returns `Some`, for at most `limit`.
async fn poll<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn namespace(client: &kube::Client, name: &str, labels: &[(&str, &str)]) -> Namespace {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels }
    }))
    .expect("namespace json");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace")
}

fn image_repository_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("image.toolkit.fluxcd.io", "v1", "ImageRepository");
    ApiResource::from_gvk_with_plural(&gvk, "imagerepositories")
}

#[test]
fn server_reports_the_pinned_version() {
    let Some(c) = cluster() else { return };
    let out = c.kubectl(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("kubectl version json");
    assert_eq!(v["serverVersion"]["gitVersion"], c.k8s_version.as_str());
    assert_eq!(v["clientVersion"]["gitVersion"], c.k8s_version.as_str());
    assert!(c.ready_ms > 0, "start-to-ready time recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resource_create_get_list_watch_and_status_patch() {
    let Some(c) = cluster() else { return };
    c.install_flux_image_crds();
    let client = c.client().await;
    let ns = unique_namespace("crd");
    namespace(&client, &ns, &[]).await;
    let ar = image_repository_resource();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);

    // Watch first, so the events of what follows are seen.
    let watch_api = api.clone();
    let watched = tokio::spawn(async move {
        watcher(watch_api, watcher::Config::default())
            .applied_objects()
            .try_filter(|o| {
                let scanned = o.data.pointer("/status/lastScanResult/tagCount").is_some();
                futures::future::ready(scanned)
            })
            .boxed()
            .try_next()
            .await
    });

    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageRepository",
        "metadata": { "name": "backend", "namespace": ns },
        "spec": { "image": "127.0.0.1:5000/org/backend", "interval": "5m" }
    }))
    .expect("object json");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create ImageRepository");
    let got = api.get("backend").await.expect("get");
    assert_eq!(got.data["spec"]["image"], "127.0.0.1:5000/org/backend");
    // The CRD's defaults apply (provider: generic).
    assert_eq!(got.data["spec"]["provider"], "generic");
    let list = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);

    let status = json!({ "status": {
        "observedGeneration": 1,
        "lastScanResult": { "tagCount": 3, "scanTime": "2026-12-05T00:00:00Z", "revision": "sha256:abc" },
        "conditions": [{ "type": "Ready", "status": "True", "reason": "Succeeded",
            "message": "successful scan: found 3 tags", "lastTransitionTime": "2026-12-05T00:00:00Z",
            "observedGeneration": 1 }]
    }});
    api.patch_status("backend", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("patch status");
    let got = api.get_status("backend").await.expect("get status");
    assert_eq!(got.data["status"]["lastScanResult"]["tagCount"], 3);
    assert_eq!(got.data["status"]["conditions"][0]["reason"], "Succeeded");
    // The status subresource ignores spec changes, and the spec endpoint ignores status.
    let generation = got.metadata.generation;
    api.patch(
        "backend",
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": { "lastScanResult": { "tagCount": 99 } } })),
    )
    .await
    .expect("patch spec endpoint");
    let got = api.get("backend").await.expect("get");
    assert_eq!(got.data["status"]["lastScanResult"]["tagCount"], 3);
    assert_eq!(got.metadata.generation, generation);

    let seen = tokio::time::timeout(Duration::from_secs(30), watched)
        .await
        .expect("watch event within 30 s")
        .expect("watch task")
        .expect("watch stream");
    let seen = seen.expect("watch stream ended");
    assert_eq!(seen.metadata.name.as_deref(), Some("backend"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_with_labels() {
    let Some(c) = cluster() else { return };
    let client = c.client().await;
    let label = unique_namespace("env");
    for env in ["develop", "staging", "production"] {
        let name = format!("{label}-{env}");
        namespace(
            &client,
            &name,
            &[("ferry.dev/env", env), ("ferry.dev/run", &label)],
        )
        .await;
    }
    let api = Api::<Namespace>::all(client);
    let selector = format!("ferry.dev/run={label}");
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("list namespaces");
    let mut envs: Vec<String> = list
        .items
        .iter()
        .filter_map(|n| n.metadata.labels.as_ref()?.get("ferry.dev/env").cloned())
        .collect();
    envs.sort();
    assert_eq!(envs, ["develop", "production", "staging"]);
}

fn deployment(name: &str, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": name, "image": image }] }
            }
        }
    }))
    .expect("deployment json")
}

async fn revisions(api: &Api<ReplicaSet>) -> Vec<(String, String)> {
    let list = api.list(&ListParams::default()).await.expect("list rs");
    let mut out: Vec<(String, String)> = list
        .items
        .iter()
        .filter_map(|rs| {
            let rev = rs
                .metadata
                .annotations
                .as_ref()?
                .get("deployment.kubernetes.io/revision")?
                .clone();
            let image = rs
                .spec
                .template
                .as_ref()?
                .spec
                .as_ref()?
                .containers
                .first()?
                .image
                .clone()?;
            Some((rev, image))
        })
        .collect();
    out.sort();
    out
}

fn live_image(d: &Deployment) -> Option<String> {
    d.spec
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_revisions_and_rollout_undo() {
    let Some(c) = cluster() else { return };
    let client = c.client().await;
    let ns = unique_namespace("staging");
    namespace(&client, &ns, &[]).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let (v1, v2) = (
        "127.0.0.1:5000/org/backend:v1",
        "127.0.0.1:5000/org/backend:v2",
    );

    deployments
        .create(&PostParams::default(), &deployment("backend", v1))
        .await
        .expect("create deployment");
    let rs = &replicasets;
    poll(
        "ReplicaSet revision 1",
        Duration::from_secs(60),
        || async move {
            let r = revisions(rs).await;
            (r == [("1".to_string(), v1.to_string())]).then_some(())
        },
    )
    .await;

    let patch = json!({ "spec": { "template": { "spec": { "containers": [
        { "name": "backend", "image": v2 } ] } } } });
    deployments
        .patch(
            "backend",
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .expect("update image");
    poll(
        "ReplicaSet revision 2",
        Duration::from_secs(60),
        || async move {
            let r = revisions(rs).await;
            r.contains(&("2".to_string(), v2.to_string())).then_some(())
        },
    )
    .await;

    // The seed's emergency rollback.
    c.kubectl(&["-n", &ns, "rollout", "undo", "deploy/backend"]);
    let d = &deployments;
    poll(
        "rollout undo restores v1",
        Duration::from_secs(60),
        || async move {
            let dep = d.get("backend").await.ok()?;
            (live_image(&dep).as_deref() == Some(v1)).then_some(())
        },
    )
    .await;
    // The undo re-used revision 1's ReplicaSet as revision 3, as kubectl does against a real cluster.
    poll("revision 3 is v1", Duration::from_secs(60), || async move {
        let r = revisions(rs).await;
        r.contains(&("3".to_string(), v1.to_string())).then_some(())
    })
    .await;
    let jsonpath = "jsonpath={.spec.template.spec.containers[0].image}";
    assert_eq!(
        c.kubectl(&["-n", &ns, "get", "deploy", "backend", "-o", jsonpath]),
        v1
    );
}

fn token_kubeconfig(c: &ClusterEnv, token: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let ca = c
        .vars
        .get("TESTBED_CLUSTER_CA")
        .expect("TESTBED_CLUSTER_CA");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {}\n    certificate-authority: {ca}\nusers:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: t\n  context: {{cluster: t, user: sa}}\ncurrent-context: t\n",
        c.url
    );
    let path = dir.join("sa.kubeconfig");
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

#[test]
fn least_privilege_with_a_service_account_token() {
    let Some(c) = cluster() else { return };
    c.install_flux_image_crds();
    let ns = unique_namespace("rbac");
    c.kubectl(&["create", "namespace", &ns]);
    c.kubectl(&["-n", &ns, "create", "serviceaccount", "ferry"]);
    c.kubectl(&[
        "-n",
        &ns,
        "create",
        "role",
        "images",
        "--verb=get,list,watch",
        "--resource=imagepolicies.image.toolkit.fluxcd.io",
    ]);
    let sa = format!("{ns}:ferry");
    c.kubectl(&[
        "-n",
        &ns,
        "create",
        "rolebinding",
        "images",
        "--role=images",
        &format!("--serviceaccount={sa}"),
    ]);
    let who = format!("--as=system:serviceaccount:{sa}");
    let can = |args: &[&str]| -> String {
        let mut all = vec!["auth", "can-i", "-n", ns.as_str()];
        all.extend_from_slice(args);
        let out = c.kubectl_output(&all);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        can(&["list", "imagepolicies.image.toolkit.fluxcd.io", &who]),
        "yes"
    );
    assert_eq!(can(&["get", "secrets", &who]), "no");
    assert_eq!(
        can(&["patch", "imagepolicies.image.toolkit.fluxcd.io", &who]),
        "no"
    );

    // The same answers for a real token of that ServiceAccount (TokenRequest API), not impersonation.
    let token = c.kubectl(&["-n", &ns, "create", "token", "ferry", "--duration=10m"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = token_kubeconfig(&c, token.trim(), dir.path());
    let as_token = |verb: &str, resource: &str| -> String {
        let out = std::process::Command::new(&c.kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["auth", "can-i", "-n", &ns, verb, resource])
            .output()
            .expect("kubectl");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        as_token("list", "imagepolicies.image.toolkit.fluxcd.io"),
        "yes"
    );
    assert_eq!(as_token("get", "secrets"), "no");
    let whoami = std::process::Command::new(&c.kubectl)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .output()
        .expect("kubectl");
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        format!("system:serviceaccount:{sa}")
    );
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn start_on_a_taken_port_fails_with_a_clear_message() {
    // The binaries must exist (the shared control plane starts from them) for the port check to run.
    if cluster().is_none() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    let out = cluster_sh(&["start", "--name", "port-taken-test", "--port", &port]);
    assert!(!out.status.success(), "start on a taken port must fail");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("port {port} on 127.0.0.1 is taken")),
        "{err}"
    );
}

#[test]
fn a_stale_pid_file_is_refused_until_stopped() {
    if cluster().is_none() {
        return;
    }
    let dir = ferry_testbed::registry::testbed_dir();
    std::fs::create_dir_all(&dir).expect("testbed dir");
    let name = format!("stale-{}", std::process::id());
    let envfile = dir.join(format!("{name}.env"));
    // Whatever runs under this pid (almost surely nothing), it is not an etcd of ours.
    let dead = "4194303";
    std::fs::write(
        &envfile,
        format!(
            "export TESTBED_ETCD_PID='{dead}'\nexport TESTBED_APISERVER_PID='{dead}'\nexport TESTBED_KCM_PID='{dead}'\nexport TESTBED_CLUSTER_PORT='1'\n"
        ),
    )
    .expect("write env");
    let status = cluster_sh(&["status", "--name", &name]);
    assert!(!status.status.success());
    assert!(
        stderr(&status).contains("stale pid file"),
        "{}",
        stderr(&status)
    );
    let start = cluster_sh(&["start", "--name", &name]);
    assert!(!start.status.success());
    assert!(
        stderr(&start).contains("stale pid file"),
        "{}",
        stderr(&start)
    );
    let stop = cluster_sh(&["stop", "--name", &name]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    assert!(!envfile.exists(), "stop removes the pid file");
}

#[test]
fn build_without_go_names_the_missing_toolchain() {
    let out = std::process::Command::new("bash")
        .arg(ferry_testbed::registry::script("cluster.sh"))
        .args(["build", "crds"])
        .env("TESTBED_GO", "/nonexistent/go")
        .output()
        .expect("bash");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Go is not installed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn build_names_a_module_the_proxy_does_not_serve() {
    let cache = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new("bash")
        .arg(ferry_testbed::registry::script("cluster.sh"))
        .args(["build", "crds"])
        .env("FERRY_TESTBED_CACHE", cache.path())
        .env("TESTBED_SOURCE_CONTROLLER_VERSION", "v1.9.99")
        .output()
        .expect("bash");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("does not serve: github.com/fluxcd/source-controller@v1.9.99"),
        "{err}"
    );
}
