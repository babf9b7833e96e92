//! `ferry controller` against a real control plane, the real registry and a real git repo: the
//! seed's layout applied with kubectl, Ferry in place of Flux's image controllers, and the real
//! `flux` CLI reading, reconciling, suspending and resuming Ferry's work.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::receiver::Receiver;
use crate::common::{NEW_DEVELOP, NEW_STAGING, Seed, Workspace, poll, push, remote_file};
use ferry_testbed::cluster::{ClusterEnv, PrivateCluster};
use ferry_testbed::git::git_servers;
use ferry_testbed::registry::{Auth, registry};

/// A running `ferry controller`, killed when dropped; its log is kept for failure messages.
pub(crate) struct Controller {
    child: Child,
    log: std::path::PathBuf,
}

impl Controller {
    pub(crate) fn start(c: &ClusterEnv, ws: &Workspace, extra: &[&str]) -> Controller {
        Controller::start_env(c, ws, extra, &[])
    }

    fn start_env(
        c: &ClusterEnv,
        ws: &Workspace,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Controller {
        let log = ws.join(&format!("controller-{}.log", extra.len()));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(common::bin())
            .args(["--state", &ws.state_str(), "controller", "--kubeconfig"])
            .arg(&c.kubeconfig)
            .args(["--cache-dir", &ws.cache_str(), "--resync", "30s"])
            .args(extra)
            .envs(env.iter().copied())
            .env_remove("KUBECONFIG")
            .env("FERRY_LOG", "warn,ferry_controller=debug,ferry_engine=info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn ferry controller");
        Controller { child, log }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn jsonpath(c: &ClusterEnv, ns: &str, resource: &str, path: &str) -> String {
    let out = c.kubectl_output(&["-n", ns, "get", resource, "-o", &format!("jsonpath={path}")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn flux(c: &ClusterEnv, args: &[&str]) -> (bool, String) {
    let out = c.flux_output(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub(crate) fn wait_for(
    c: &ClusterEnv,
    what: &str,
    limit: Duration,
    controller: &Controller,
    f: impl FnMut() -> Option<()>,
) {
    if poll(limit, f).is_none() {
        let (_, objects) = flux(c, &["get", "images", "all", "-A"]);
        panic!(
            "timed out after {limit:?}: {what}\nflux get images all -A:\n{objects}\ncontroller log:\n{}",
            controller.log()
        );
    }
}

/// Every served object has Ready=True at its current generation.
fn all_ready(c: &ClusterEnv) -> bool {
    let path = r#"{range .items[*]}{.metadata.generation}={.status.observedGeneration}:{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#;
    [
        "imagerepositories",
        "imagepolicies",
        "imageupdateautomations",
    ]
    .iter()
    .all(|kind| {
        let out = c.kubectl_output(&["get", kind, "-A", "-o", &format!("jsonpath={path}")]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success()
            && text.lines().count() == if *kind == "imagerepositories" { 2 } else { 6 }
            && text.lines().all(|l| {
                let (gens, ready) = l.split_once(':').unwrap_or_default();
                let (g, o) = gens.split_once('=').unwrap_or_default();
                g == o && ready == "True"
            })
    })
}

/// Flux's CRDs, the git credentials Secret, and the seed's objects, as a Flux user has them.
pub(crate) fn apply_seed_with_credentials(
    c: &ClusterEnv,
    seed: &Seed,
    git: &ferry_testbed::git::GitEnv,
) {
    c.install_flux_image_crds();
    common::cluster::ensure_namespace(c, "flux-system");
    c.kubectl(&[
        "-n",
        "flux-system",
        "create",
        "secret",
        "generic",
        "git-credentials",
        &format!("--from-literal=username={}", git.user),
        &format!("--from-literal=password={}", git.password),
    ]);
    common::cluster::apply_seed(c, &seed.ws.join("seed/flux"), &seed.image_registry);
}

pub(crate) const STAGING_FILE: &str = "flux/apps/backend/staging/deployment.yaml";

#[test]
fn controller_drives_the_seed_and_the_flux_cli_sees_it() {
    let (Some(reg), Some(git)) = (registry(Auth::None, false), git_servers()) else {
        return;
    };
    let Some(cluster) = PrivateCluster::start(&format!("ctl-{}", std::process::id())) else {
        return;
    };
    let c = &cluster.env;
    // Flux's GitRepository accepts http(s) and ssh URLs only: the http server, with Basic auth
    // from a Secret the controller reads from the API.
    let seed = Seed::with_http_credentials(&reg, &git, "ctl");
    let run = seed.ws.ferry(&[
        "controller",
        "--kubeconfig",
        &c.kubeconfig.to_string_lossy(),
        "--once",
    ]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("ferry install --crds-only"),
        "{}",
        run.stderr
    );
    apply_seed_with_credentials(c, &seed, &git);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let hook_secret = "hook-s3cret-never-printed";
    let secret_file = file(&seed.ws, "webhook.secret", hook_secret.as_bytes());
    let ctl = Controller::start(
        c,
        &seed.ws,
        &["--listen", &listen, "--webhook-secret-file", &secret_file],
    );

    // Every object Ready, with the seed's expected tags; Git written byte-exact.
    wait_for(
        c,
        "staging backend pushed",
        Duration::from_secs(90),
        &ctl,
        || {
            remote_file(&git, &seed.repo, STAGING_FILE)
                .contains(NEW_STAGING)
                .then_some(())
        },
    );
    wait_for(c, "all Ready", Duration::from_secs(60), &ctl, || {
        all_ready(c).then_some(())
    });
    let (_, all) = flux(c, &["get", "images", "all", "-A"]);
    assert!(
        all.contains(NEW_DEVELOP) && all.contains(NEW_STAGING),
        "{all}"
    );
    seed.assert_develop_and_staging_updated();
    assert_eq!(
        jsonpath(
            c,
            "staging",
            "imagepolicy/backend",
            "{.status.latestRef.tag}"
        ),
        NEW_STAGING
    );
    assert!(
        !jsonpath(
            c,
            "staging",
            "imageupdateautomation/backend",
            "{.status.lastPushCommit}"
        )
        .is_empty()
    );
    assert_eq!(
        jsonpath(
            c,
            "flux-system",
            "imagerepository/backend",
            "{.metadata.finalizers[0]}"
        ),
        "finalizers.fluxcd.io"
    );

    // Ferry's own CLI reads the same status from the cluster.
    let kubeconfig = c.kubeconfig.to_string_lossy().into_owned();
    let get = seed.ws.ferry(&[
        "get",
        "images",
        "policy",
        "-A",
        "--kubeconfig",
        &kubeconfig,
        "-o",
        "json",
    ]);
    get.expect_code(0);
    let tags: Vec<String> = get
        .json()
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| {
                    o.pointer("/status/latestRef/tag")
                        .or_else(|| o.pointer("/latestRef/tag"))
                        .and_then(|t| t.as_str())
                        .map(String::from)
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        tags.iter().any(|t| t == NEW_STAGING) && tags.iter().any(|t| t == NEW_DEVELOP),
        "{}",
        get.stdout
    );
    let table = seed
        .ws
        .ferry(&["get", "images", "all", "-A", "--kubeconfig", &kubeconfig]);
    table.expect_code(0);
    assert!(table.stdout.contains(NEW_STAGING), "{}", table.stdout);

    // Health, readiness and Flux's reconcile-duration metric on --listen.
    let get = |path: &str| {
        let out = Command::new("curl")
            .args(["-fsS", "--max-time", "5", &format!("http://{listen}{path}")])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(get("/healthz"), "ok");
    assert_eq!(get("/readyz"), "ok");
    let metrics = get("/metrics");
    assert!(
        metrics.contains(
            r#"gotk_reconcile_duration_seconds_count{kind="ImagePolicy",name="backend",namespace="staging"}"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferry_controller_pushes_total"),
        "{metrics}"
    );

    // The flux CLI's reconcile waits for lastHandledReconcileAt and Ready at the new generation.
    for args in [
        [
            "reconcile",
            "image",
            "repository",
            "backend",
            "-n",
            "flux-system",
        ],
        ["reconcile", "image", "update", "backend", "-n", "staging"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--timeout", "90s"]);
        let (ok, text) = flux(c, &args);
        assert!(ok, "flux {args:?}:\n{text}\ncontroller log:\n{}", ctl.log());
    }

    registry_webhook_starts_a_pass(&reg, &seed, &ctl, &listen, hook_secret);
    suspend_and_resume(c, &reg, &seed, &ctl);
    survives_an_api_server_restart(c, &reg, &seed, &ctl);

    // The Git password of the write-back Secret appears in no status, Event or log line.
    let everything = c.kubectl(&[
        "get",
        "imagerepositories,imagepolicies,imageupdateautomations,gitrepositories,events",
        "-A",
        "-o",
        "yaml",
    ]);
    assert!(
        !everything.contains(&git.password),
        "the Git password leaked into status or events"
    );
    assert!(
        !ctl.log().contains(&git.password),
        "the Git password leaked into the controller log"
    );
}

/// `POST /hooks/registry` with the secret: a push of a repository an ImageRepository names
/// starts a pass at once (the seed's interval is 1m); without the secret: 401; a repository no
/// ImageRepository names triggers nothing.
fn registry_webhook_starts_a_pass(
    reg: &ferry_testbed::registry::RegistryEnv,
    seed: &Seed,
    ctl: &Controller,
    listen: &str,
    secret: &str,
) {
    let post = |auth: Option<&str>, body: &str| {
        let mut args = vec![
            "-sS".to_string(),
            "--max-time".into(),
            "5".into(),
            "-o".into(),
            "/dev/stderr".into(),
            "-w".into(),
            "%{http_code}".into(),
            "-X".into(),
            "POST".into(),
            "--data-binary".into(),
            body.to_string(),
        ];
        if let Some(token) = auth {
            args.extend(["-H".into(), format!("Authorization: Bearer {token}")]);
        }
        args.push(format!("http://{listen}/hooks/registry"));
        let out = Command::new("curl").args(&args).output().expect("curl");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let tag = "develop-v0.0.3-c3d4e5f-1738880000";
    push(reg, &format!("{}/backend", seed.org()), tag);
    let envelope = |repo: &str| {
        format!(
            r#"{{"events":[{{"action":"push","target":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"{repo}","tag":"{tag}"}},"request":{{"host":"{}"}}}}]}}"#,
            reg.host
        )
    };
    let body = envelope(&format!("{}/backend", seed.org()));
    assert_eq!(post(None, &body).0, "401");
    assert_eq!(post(Some("wrong"), &body).0, "401");
    let (code, answer) = post(Some(secret), &envelope("nobody/else"));
    assert_eq!(code, "202");
    assert!(answer.contains("\"triggered\":0"), "{answer}");
    let started = std::time::Instant::now();
    let (code, answer) = post(Some(secret), &body);
    assert_eq!(code, "202", "{answer}");
    assert!(answer.contains("\"triggered\":1"), "{answer}");
    let develop = "flux/apps/backend/develop/deployment.yaml";
    let pushed = poll(Duration::from_secs(30), || {
        remote_file(&seed.git, &seed.repo, develop)
            .contains(tag)
            .then_some(())
    });
    assert!(
        pushed.is_some(),
        "the webhook did not lead to a commit; controller log:\n{}",
        ctl.log()
    );
    eprintln!(
        "registry webhook to commit (controller): {:?}",
        started.elapsed()
    );
    assert!(!ctl.log().contains(secret), "the webhook secret leaked");
}

/// kube-apiserver restarts under the controller; the next change is still handled.
fn survives_an_api_server_restart(
    c: &ClusterEnv,
    reg: &ferry_testbed::registry::RegistryEnv,
    seed: &Seed,
    ctl: &Controller,
) {
    c.restart_apiserver();
    let newer = "develop-v0.0.9-d4e5f6a-1738890000";
    publish_and_scan(c, reg, seed, newer);
    wait_for(
        c,
        "the develop tag after the restart reaches Git",
        Duration::from_secs(60),
        ctl,
        || {
            remote_file(
                &seed.git,
                &seed.repo,
                "flux/apps/backend/develop/deployment.yaml",
            )
            .contains(newer)
            .then_some(())
        },
    );
}

/// `flux suspend image update` holds a new staging tag out of Git; `flux resume` lets it in.
fn suspend_and_resume(
    c: &ClusterEnv,
    reg: &ferry_testbed::registry::RegistryEnv,
    seed: &Seed,
    ctl: &Controller,
) {
    let (ok, text) = flux(
        c,
        &["suspend", "image", "update", "backend", "-n", "staging"],
    );
    assert!(ok, "{text}");
    let newer = "staging-v0.0.2-b2c3d4e-1738870000";
    publish_and_scan(c, reg, seed, newer);
    wait_for(
        c,
        "staging policy sees the new tag",
        Duration::from_secs(60),
        ctl,
        || {
            (jsonpath(
                c,
                "staging",
                "imagepolicy/backend",
                "{.status.latestRef.tag}",
            ) == newer)
                .then_some(())
        },
    );
    // The pass that elected it also ran the automations: the suspended one wrote nothing.
    let file = remote_file(&seed.git, &seed.repo, STAGING_FILE);
    assert!(
        file.contains(NEW_STAGING) && !file.contains(newer),
        "{file}"
    );

    let (ok, text) = flux(
        c,
        &[
            "resume",
            "image",
            "update",
            "backend",
            "-n",
            "staging",
            "--timeout",
            "90s",
        ],
    );
    assert!(ok, "flux resume:\n{text}\ncontroller log:\n{}", ctl.log());
    wait_for(
        c,
        "resumed automation pushes the new tag",
        Duration::from_secs(60),
        ctl,
        || {
            remote_file(&seed.git, &seed.repo, STAGING_FILE)
                .contains(newer)
                .then_some(())
        },
    );
}

/// A dockerconfigjson Secret `pull` from the file `docker`, and the Secret `registry-ca` with the
/// registry's CA (`ca.crt`) from the file `ca_file`, in `ns`.
fn registry_secrets(c: &ClusterEnv, ns: &str, pull: &str, docker: &str, ca_file: &str) {
    c.kubectl(&[
        "-n",
        ns,
        "create",
        "secret",
        "generic",
        pull,
        "--type=kubernetes.io/dockerconfigjson",
        &format!("--from-file=.dockerconfigjson={docker}"),
    ]);
    c.kubectl(&[
        "-n",
        ns,
        "create",
        "secret",
        "generic",
        "registry-ca",
        &format!("--from-file=ca.crt={ca_file}"),
    ]);
}

/// Writes a file and returns its path as a string.
pub(crate) fn file(ws: &Workspace, name: &str, content: &[u8]) -> String {
    let path = ws.join(name);
    std::fs::write(&path, content).expect("write");
    path.to_string_lossy().into_owned()
}

fn condition(c: &ClusterEnv, ns: &str, resource: &str, kind: &str, field: &str) -> String {
    jsonpath(
        c,
        ns,
        resource,
        &format!("{{.status.conditions[?(@.type==\"{kind}\")].{field}}}"),
    )
}

/// Bad input is each object's status, never a crash; credentials appear nowhere; a missing
/// right stops the controller with the verb and resource.
#[test]
fn controller_bad_input_is_status_and_never_leaks() {
    let (Some(reg), Some(basic)) = (registry(Auth::None, false), registry(Auth::Basic, true))
    else {
        return;
    };
    let Some(cluster) = PrivateCluster::start(&format!("ctlbad-{}", std::process::id())) else {
        return;
    };
    let c = &cluster.env;
    c.install_flux_image_crds();
    let ws = Workspace::new();
    let repo = common::unique("bad");
    push(&reg, &format!("{repo}/app"), "1.0.0");
    let wrong = "wr0ng-PASSWORD-never-printed";
    let ca = std::fs::read_to_string(basic.ca.as_ref().expect("basic registry CA")).expect("CA");
    let dockerconfig = String::from_utf8(common::dockerconfigjson(
        &basic.host,
        basic.user.as_deref().unwrap_or_default(),
        wrong,
    ))
    .expect("utf8");
    let objects = format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: apps, labels: {{team: a}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: other}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: app, namespace: apps}}
spec:
  image: {host}/{repo}/app
  interval: 1m
  accessFrom: {{namespaceSelectors: [{{matchLabels: {{team: a}}}}]}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: private, namespace: apps}}
spec: {{image: {host}/{repo}/private, interval: 1m, secretRef: {{name: missing-creds}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: basic, namespace: apps}}
spec:
  image: {basic_host}/{repo}/app
  interval: 1m
  secretRef: {{name: wrong-creds}}
  certSecretRef: {{name: registry-ca}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: good, namespace: apps}}
spec: {{imageRepositoryRef: {{name: app}}, policy: {{semver: {{range: ">=1.0.0"}}}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: badregex, namespace: apps}}
spec:
  imageRepositoryRef: {{name: app}}
  filterTags: {{pattern: "(["}}
  policy: {{semver: {{range: ">=1.0.0"}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: denied, namespace: other}}
spec: {{imageRepositoryRef: {{name: app, namespace: apps}}, policy: {{semver: {{range: ">=1.0.0"}}}}}}
"#,
        host = reg.host,
        basic_host = basic.host,
    );
    common::cluster::apply(c, &objects, "bad-input objects");
    let docker = file(&ws, "dockerconfig.json", dockerconfig.as_bytes());
    let ca_file = file(&ws, "ca.crt", ca.as_bytes());
    registry_secrets(c, "apps", "wrong-creds", &docker, &ca_file);

    let kubeconfig = c.kubeconfig.to_string_lossy().into_owned();
    let receiver = Receiver::start();
    let run = ws.ferry(&[
        "-vv",
        "controller",
        "--kubeconfig",
        &kubeconfig,
        "--once",
        "--events-addr",
        &receiver.url,
    ]);
    run.expect_code(1).assert_no_secret(wrong);

    // Flux's event JSON reached the receiver, one per Ready transition.
    let events = receiver.bodies();
    let denied_event = events
        .iter()
        .find(|e| {
            e["involvedObject"]["name"] == "denied" && e["involvedObject"]["kind"] == "ImagePolicy"
        })
        .unwrap_or_else(|| panic!("no event for the denied policy in {events:?}"));
    assert_eq!(denied_event["severity"], "error");
    assert_eq!(denied_event["reason"], "AccessDenied");
    assert_eq!(denied_event["involvedObject"]["namespace"], "other");
    assert_eq!(
        denied_event["involvedObject"]["apiVersion"],
        "image.toolkit.fluxcd.io/v1"
    );
    let good = events
        .iter()
        .find(|e| e["involvedObject"]["name"] == "good")
        .expect("event for the good policy");
    assert_eq!(good["severity"], "info");
    assert!(
        !serde_json::to_string(&events)
            .unwrap_or_default()
            .contains(wrong)
    );

    assert_eq!(
        jsonpath(c, "apps", "imagepolicy/good", "{.status.latestRef.tag}"),
        "1.0.0"
    );
    assert_eq!(
        condition(c, "apps", "imagepolicy/badregex", "Stalled", "reason"),
        "InvalidPolicy"
    );
    assert_eq!(
        condition(c, "apps", "imagepolicy/badregex", "Ready", "status"),
        "False"
    );
    assert_eq!(
        condition(c, "other", "imagepolicy/denied", "Ready", "reason"),
        "AccessDenied"
    );
    let missing = condition(c, "apps", "imagerepository/private", "Ready", "message");
    assert!(
        missing.contains("Secret apps/missing-creds not found"),
        "{missing}"
    );
    assert!(
        !missing.contains("/tmp"),
        "the private Secrets folder leaks into: {missing}"
    );
    let denied = condition(c, "apps", "imagerepository/basic", "Ready", "status");
    assert_eq!(denied, "False");

    // No credential in any status, Event or log line.
    let everything = c.kubectl(&[
        "get",
        "imagerepositories,imagepolicies,events",
        "-A",
        "-o",
        "yaml",
    ]);
    assert!(
        !everything.contains(wrong),
        "a credential leaked into status or events"
    );
    let warnings = c.kubectl(&[
        "get",
        "events",
        "-n",
        "apps",
        "--field-selector",
        "type=Warning",
        "-o",
        "name",
    ]);
    assert!(
        !warnings.trim().is_empty(),
        "Ready=False transitions record Warning Events"
    );

    // A ServiceAccount without rights: the controller names the verb and the resource.
    c.kubectl(&["-n", "other", "create", "serviceaccount", "nobody"]);
    let token = c.kubectl(&["-n", "other", "create", "token", "nobody"]);
    let ca_path = c.vars.get("TESTBED_CLUSTER_CA").expect("CA path");
    let sa_config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster: {{server: \"{}\", certificate-authority: \"{ca_path}\"}}\nusers:\n- name: u\n  user: {{token: \"{}\"}}\ncontexts:\n- name: t\n  context: {{cluster: t, user: u}}\ncurrent-context: t\n",
        c.url,
        token.trim()
    );
    let sa_kubeconfig = file(&ws, "nobody.kubeconfig", sa_config.as_bytes());
    let run = ws.ferry(&["controller", "--kubeconfig", &sa_kubeconfig, "--once"]);
    run.expect_code(1).assert_no_secret(token.trim());
    assert!(
        run.stderr
            .contains("RBAC denied: cannot list imagerepositories.image.toolkit.fluxcd.io"),
        "{}",
        run.stderr
    );
}

/// `serviceAccountName` pull secrets (read through the API: the ServiceAccount, then its
/// imagePullSecrets) and `--no-cross-namespace-refs`, which blocks what accessFrom admits.
#[test]
fn controller_uses_service_account_pull_secrets_and_can_block_cross_namespace_refs() {
    let (Some(reg), Some(basic)) = (registry(Auth::None, false), registry(Auth::Basic, true))
    else {
        return;
    };
    let Some(cluster) = PrivateCluster::start(&format!("ctlsa-{}", std::process::id())) else {
        return;
    };
    let c = &cluster.env;
    c.install_flux_image_crds();
    let ws = Workspace::new();
    let repo = common::unique("sa");
    push(&basic, &format!("{repo}/app"), "1.2.0");
    push(&reg, &format!("{repo}/open"), "2.0.0");
    let password = basic.password.clone().unwrap_or_default();
    let objects = format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: apps, labels: {{team: a}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: other, labels: {{team: a}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: viasa, namespace: apps}}
spec: {{image: {basic_host}/{repo}/app, interval: 1m, serviceAccountName: puller, certSecretRef: {{name: registry-ca}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: ghost, namespace: apps}}
spec: {{image: {basic_host}/{repo}/app, interval: 1m, serviceAccountName: ghost, certSecretRef: {{name: registry-ca}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: open, namespace: apps}}
spec:
  image: {host}/{repo}/open
  interval: 1m
  accessFrom: {{namespaceSelectors: [{{matchLabels: {{team: a}}}}]}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: viasa, namespace: apps}}
spec: {{imageRepositoryRef: {{name: viasa}}, policy: {{semver: {{range: ">=1.0.0"}}}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: cross, namespace: other}}
spec: {{imageRepositoryRef: {{name: open, namespace: apps}}, policy: {{semver: {{range: ">=1.0.0"}}}}}}
"#,
        host = reg.host,
        basic_host = basic.host,
    );
    common::cluster::apply(c, &objects, "service account objects");
    let auth = common::dockerconfigjson(
        &basic.host,
        basic.user.as_deref().unwrap_or_default(),
        &password,
    );
    let docker = file(&ws, "pull.json", &auth);
    let ca = std::fs::read(basic.ca.as_ref().expect("basic registry CA")).expect("CA");
    let ca_file = file(&ws, "ca.crt", &ca);
    registry_secrets(c, "apps", "pull", &docker, &ca_file);
    c.kubectl(&["-n", "apps", "create", "serviceaccount", "puller"]);
    c.kubectl(&[
        "-n",
        "apps",
        "patch",
        "serviceaccount",
        "puller",
        "-p",
        r#"{"imagePullSecrets":[{"name":"pull"}]}"#,
    ]);
    let kubeconfig = c.kubeconfig.to_string_lossy().into_owned();
    let run = ws.ferry(&[
        "controller",
        "--kubeconfig",
        &kubeconfig,
        "--once",
        "--no-cross-namespace-refs",
        "--concurrent",
        "2",
    ]);
    run.expect_code(1).assert_no_secret(&password);
    assert_eq!(
        jsonpath(c, "apps", "imagepolicy/viasa", "{.status.latestRef.tag}"),
        "1.2.0"
    );
    let ghost = condition(c, "apps", "imagerepository/ghost", "Ready", "message");
    assert!(
        ghost.contains("ServiceAccount apps/ghost not found"),
        "{ghost}"
    );
    assert_eq!(
        condition(c, "other", "imagepolicy/cross", "Ready", "reason"),
        "AccessDenied"
    );
    let blocked = condition(c, "other", "imagepolicy/cross", "Ready", "message");
    assert!(
        blocked.contains("cross-namespace references have been blocked"),
        "{blocked}"
    );
    // Without the flag, accessFrom admits the same reference.
    ws.ferry(&["controller", "--kubeconfig", &kubeconfig, "--once"])
        .expect_code(1);
    assert_eq!(
        jsonpath(c, "other", "imagepolicy/cross", "{.status.latestRef.tag}"),
        "2.0.0"
    );
    let everything = c.kubectl(&[
        "get",
        "imagerepositories,imagepolicies,events",
        "-A",
        "-o",
        "yaml",
    ]);
    assert!(!everything.contains(&password), "a credential leaked");
}

fn lease_holder(c: &ClusterEnv) -> String {
    jsonpath(
        c,
        "flux-system",
        "lease/ferry-controller-leader",
        "{.spec.holderIdentity}",
    )
}

/// Commits whose trailers record `policy` moving to `tag`.
fn commits_to(seed: &Seed, policy: &str, tag: &str) -> usize {
    let trailers = common::remote_log(
        &seed.git,
        &seed.repo,
        "%H %(trailers:key=Ferry-Change,valueonly,separator=%x20)",
    );
    trailers
        .lines()
        .filter(|l| {
            l.contains(&format!("policy={policy} "))
                && l.split_whitespace()
                    .any(|w| w.starts_with("new=") && w.ends_with(&format!(":{tag}")))
        })
        .count()
}

/// Two replicas with `--leader-elect`: kill -9 of the leader during a scan hands over within
/// 30 s, and every pushed tag gets exactly one commit, never moving an environment backwards.
#[test]
fn leader_failover_keeps_one_commit_per_tag() {
    let (Some(reg), Some(git)) = (registry(Auth::None, false), git_servers()) else {
        return;
    };
    let Some(cluster) = PrivateCluster::start(&format!("ctlha-{}", std::process::id())) else {
        return;
    };
    let c = &cluster.env;
    let seed = Seed::with_http_credentials(&reg, &git, "ctlha");
    apply_seed_with_credentials(c, &seed, &git);
    let second = Workspace::new();
    let elect = ["--leader-elect", "--namespace", "flux-system"];
    let mut replicas = vec![
        Controller::start(c, &seed.ws, &elect),
        Controller::start(c, &second, &elect),
    ];
    wait_for(
        c,
        "staging pushed by the leader",
        Duration::from_secs(90),
        &replicas[0],
        || {
            remote_file(&git, &seed.repo, STAGING_FILE)
                .contains(NEW_STAGING)
                .then_some(())
        },
    );
    let holder = lease_holder(c);
    let leader = replicas
        .iter()
        .position(|r| holder.ends_with(&format!("_{}", r.child.id())))
        .unwrap_or_else(|| panic!("no replica holds the Lease ({holder:?})"));

    // A newer tag, a scan requested, and the leader killed while it runs.
    let newer = "staging-v0.0.3-c3d4e5f-1738880000";
    push(&reg, &format!("{}/backend", seed.org()), newer);
    c.kubectl(&[
        "-n",
        "flux-system",
        "annotate",
        "--overwrite",
        "imagerepository/backend",
        "reconcile.fluxcd.io/requestedAt=failover",
    ]);
    // Killed right after the request: the leader is woken by it, the survivor must finish it.
    let killed_at = std::time::Instant::now();
    replicas[leader].child.kill().expect("kill -9 the leader");
    let _ = replicas[leader].child.wait();
    let survivor = &replicas[1 - leader];
    wait_for(
        c,
        "the other replica takes the Lease",
        Duration::from_secs(30),
        survivor,
        || {
            let holder = lease_holder(c);
            holder
                .ends_with(&format!("_{}", survivor.child.id()))
                .then_some(())
        },
    );
    let takeover = killed_at.elapsed();
    assert!(
        takeover < Duration::from_secs(30),
        "takeover took {takeover:?}"
    );
    eprintln!("leader takeover after kill -9: {takeover:?}");
    wait_for(
        c,
        "the new leader pushes the newer tag",
        Duration::from_secs(60),
        survivor,
        || {
            remote_file(&git, &seed.repo, STAGING_FILE)
                .contains(newer)
                .then_some(())
        },
    );
    replicas.clear();

    // Exactly one commit per tag, in order: the environment never moved backwards.
    assert_eq!(commits_to(&seed, "staging/backend", NEW_STAGING), 1);
    assert_eq!(commits_to(&seed, "staging/backend", newer), 1);
    let values = common::remote_log(
        &seed.git,
        &seed.repo,
        "%(trailers:key=Ferry-Change,valueonly,separator=%x20)",
    );
    let order: Vec<&str> = values
        .lines()
        .filter(|l| l.contains("policy=staging/backend "))
        .collect();
    assert_eq!(order.len(), 2, "{values}");
    assert!(
        order[0].contains(newer) && order[1].contains(NEW_STAGING),
        "newest first: {order:?}"
    );
}

/// kill -9 of the controller right before its first push (after the commit was made in its
/// clone); a restarted controller with the same disk completes the work exactly once.
#[test]
fn kill_during_push_then_restart_completes_once() {
    let (Some(reg), Some(git)) = (registry(Auth::None, false), git_servers()) else {
        return;
    };
    let Some(cluster) = PrivateCluster::start(&format!("ctlkill-{}", std::process::id())) else {
        return;
    };
    let c = &cluster.env;
    let seed = Seed::with_http_credentials(&reg, &git, "ctlkill");
    apply_seed_with_credentials(c, &seed, &git);
    let before = remote_file(&git, &seed.repo, STAGING_FILE);

    // The before-push hook (test builds only) kills the controller: `$PPID` is ferry itself.
    let mut doomed = Controller::start_env(
        c,
        &seed.ws,
        &[],
        &[("FERRY_TEST_BEFORE_PUSH", "kill -9 $PPID")],
    );
    let died = poll(Duration::from_secs(90), || {
        doomed.child.try_wait().ok().flatten()
    });
    let status =
        died.unwrap_or_else(|| panic!("the controller never reached a push:\n{}", doomed.log()));
    assert!(!status.success(), "killed by SIGKILL: {status:?}");
    assert_eq!(
        remote_file(&git, &seed.repo, STAGING_FILE),
        before,
        "nothing was pushed"
    );

    let ctl = Controller::start(c, &seed.ws, &[]);
    wait_for(
        c,
        "the restarted controller pushes",
        Duration::from_secs(90),
        &ctl,
        || {
            remote_file(&git, &seed.repo, STAGING_FILE)
                .contains(NEW_STAGING)
                .then_some(())
        },
    );
    wait_for(c, "all Ready", Duration::from_secs(60), &ctl, || {
        all_ready(c).then_some(())
    });
    for (policy, tag) in [
        ("staging/backend", NEW_STAGING),
        ("develop/backend", NEW_DEVELOP),
    ] {
        assert_eq!(commits_to(&seed, policy, tag), 1, "{policy} -> {tag}");
    }
    seed.assert_develop_and_staging_updated();
}

/// Publishes a backend tag and has the controller scan it (`flux reconcile image repository`).
fn publish_and_scan(
    c: &ClusterEnv,
    reg: &ferry_testbed::registry::RegistryEnv,
    seed: &Seed,
    tag: &str,
) {
    push(reg, &format!("{}/backend", seed.org()), tag);
    let args = [
        "reconcile",
        "image",
        "repository",
        "backend",
        "-n",
        "flux-system",
        "--timeout",
        "90s",
    ];
    let (ok, text) = flux(c, &args);
    assert!(ok, "flux reconcile image repository:\n{text}");
}

/// Applies the Git tip to the cluster, as kustomize-controller would.
fn apply_tip(c: &ClusterEnv, seed: &Seed) {
    let tree = common::clone(&seed.git, &seed.repo);
    common::cluster::apply_seed(c, &tree.path().join("flux"), &seed.image_registry);
}

fn staging_image(c: &ClusterEnv) -> String {
    jsonpath(
        c,
        "staging",
        "deploy/backend",
        "{.spec.template.spec.containers[0].image}",
    )
}

fn events_with_reason(c: &ClusterEnv, reason: &str) -> String {
    c.kubectl(&[
        "-n", "staging", "get", "events", "--field-selector", &format!("reason={reason}"),
        "-o", "jsonpath={range .items[*]}{.involvedObject.kind}/{.involvedObject.name}: {.message}{\"\\n\"}{end}",
    ])
}

/// The seed's steps 3–9: the controller writes Git, the test applies it, staging is undone with
/// `kubectl rollout undo`. With `--adopt-rollouts` Git follows within 30 s, held; without it the
/// undo is drift (a DriftDetected Event, `ferry verify` exit 1).
fn rollout_undo(adopt: bool) {
    let (Some(reg), Some(git)) = (registry(Auth::None, false), git_servers()) else {
        return;
    };
    let name = format!("undo{}-{}", u8::from(adopt), std::process::id());
    let Some(cluster) = PrivateCluster::start(&name) else {
        return;
    };
    let c = &cluster.env;
    let seed = Seed::with_http_credentials(&reg, &git, "undo");
    apply_seed_with_credentials(c, &seed, &git);
    let mut flags = vec!["--drift-grace", "1s"];
    if adopt {
        flags.push("--adopt-rollouts");
    }
    let ctl = Controller::start(c, &seed.ws, &flags);
    wait_for(c, "staging pushed", Duration::from_secs(90), &ctl, || {
        remote_file(&git, &seed.repo, STAGING_FILE)
            .contains(NEW_STAGING)
            .then_some(())
    });
    apply_tip(c, &seed);
    let newer = "staging-v0.0.2-b2c3d4e-1738870000";
    publish_and_scan(c, &reg, &seed, newer);
    wait_for(
        c,
        "newer staging pushed",
        Duration::from_secs(60),
        &ctl,
        || {
            remote_file(&git, &seed.repo, STAGING_FILE)
                .contains(newer)
                .then_some(())
        },
    );
    apply_tip(c, &seed);
    assert!(staging_image(c).ends_with(newer), "{}", staging_image(c));

    // The emergency rollback in the cluster.
    c.kubectl(&["-n", "staging", "rollout", "undo", "deploy/backend"]);
    let kubeconfig = c.kubeconfig.to_string_lossy().into_owned();
    if adopt {
        let started = std::time::Instant::now();
        wait_for(
            c,
            "Git follows the undo",
            Duration::from_secs(30),
            &ctl,
            || {
                let file = remote_file(&git, &seed.repo, STAGING_FILE);
                (file.contains(NEW_STAGING) && !file.contains(newer)).then_some(())
            },
        );
        eprintln!(
            "rollout undo adopted into Git after {:?}",
            started.elapsed()
        );
        let holds = remote_file(&git, &seed.repo, ".ferry/holds.yaml");
        assert!(
            holds.contains("staging") && holds.contains("backend"),
            "{holds}"
        );
        assert!(events_with_reason(c, "RolloutUndoAdopted").contains("ImagePolicy/backend"));
        // Three more reconciles and re-applies keep the undo in place.
        for _ in 0..3 {
            let (ok, text) = flux(
                c,
                &[
                    "reconcile",
                    "image",
                    "update",
                    "backend",
                    "-n",
                    "staging",
                    "--timeout",
                    "90s",
                ],
            );
            assert!(ok, "{text}");
            apply_tip(c, &seed);
        }
        assert!(
            staging_image(c).ends_with(NEW_STAGING),
            "{}",
            staging_image(c)
        );
        let flags = seed.flags();
        let mut args = vec!["verify", "--kubeconfig", &kubeconfig];
        args.extend(flags.iter().map(String::as_str));
        seed.ws.ferry(&args).expect_code(0);
        the_cli_reads_the_cluster(c, &seed, &git, newer);
    } else {
        wait_for(c, "DriftDetected", Duration::from_secs(60), &ctl, || {
            events_with_reason(c, "DriftDetected")
                .contains("ImagePolicy/backend")
                .then_some(())
        });
        let file = remote_file(&git, &seed.repo, STAGING_FILE);
        assert!(
            file.contains(newer),
            "without --adopt-rollouts Git is unchanged: {file}"
        );
        let flags = seed.flags();
        let mut args = vec![
            "verify",
            "backend",
            "--env",
            "staging",
            "--kubeconfig",
            &kubeconfig,
        ];
        args.extend(flags.iter().map(String::as_str));
        let run = seed.ws.ferry(&args);
        run.expect_code(1);
        assert!(run.stdout.contains("drift"), "{}", run.stdout);
        // `ferry status` with the cluster as the only source says the same.
        let cache = seed.ws.cache_str();
        let status = seed.ws.ferry(&[
            "status",
            "backend",
            "--kubeconfig",
            &kubeconfig,
            "--cache-dir",
            &cache,
        ]);
        status.expect_code(0);
        assert!(
            status
                .stdout
                .contains(&format!("[drift: runs {NEW_STAGING}]")),
            "{}",
            status.stdout
        );
    }
}

/// After an adopted undo: status, history, hold, unhold and approve with the cluster as the
/// only source of objects (no --dir or --repo; Secrets read from the API).
fn the_cli_reads_the_cluster(
    c: &ClusterEnv,
    seed: &Seed,
    git: &ferry_testbed::git::GitEnv,
    newer: &str,
) {
    let kubeconfig = c.kubeconfig.to_string_lossy().into_owned();
    let cache = seed.ws.cache_str();
    let ferry = |head: &[&str]| {
        let mut args = head.to_vec();
        args.extend(["--kubeconfig", &kubeconfig, "--cache-dir", &cache]);
        seed.ws.ferry(&args)
    };
    let history = ferry(&["history", "staging", "backend", "-o", "json"]);
    history.expect_code(0);
    let rows = history.json();
    let rows = rows.as_array().expect("history rows");
    let adopted = rows
        .iter()
        .find(|r| r["kind"] == "rollout-undo adopted")
        .unwrap_or_else(|| panic!("an adopted row: {rows:?}"));
    assert_eq!(adopted["new_tag"], NEW_STAGING);
    assert_eq!(adopted["old_tag"], newer);
    // The controller saw `newer` live before the undo: its change has a first sighting.
    let brought_newer = rows
        .iter()
        .find(|r| r["new_tag"] == newer)
        .expect("the automation row of the newer tag");
    assert!(
        brought_newer["first_seen_live"].is_string(),
        "first seen live: {brought_newer}"
    );
    let table = ferry(&["history", "staging", "backend"]);
    assert!(table.stdout.contains("FIRST SEEN LIVE"), "{}", table.stdout);

    let status = ferry(&["status", "backend", "-o", "json"]);
    status.expect_code(0);
    let live = status.json()["live"].clone();
    let staging = live
        .as_array()
        .and_then(|l| l.iter().find(|r| r["env"] == "staging"))
        .unwrap_or_else(|| panic!("staging live row: {live}"))
        .clone();
    assert_eq!(staging["state"], "in-sync", "{staging}");

    ferry(&[
        "hold",
        "production",
        "backend",
        "--reason",
        "freeze",
        "--by",
        "ops",
    ])
    .expect_code(0);
    let holds = remote_file(git, &seed.repo, ".ferry/holds.yaml");
    assert!(holds.contains("production/backend"), "{holds}");
    ferry(&["unhold", "production", "backend", "--by", "ops"]).expect_code(0);
    let holds = remote_file(git, &seed.repo, ".ferry/holds.yaml");
    assert!(!holds.contains("policy: production/backend"), "{holds}");
    ferry(&[
        "approve",
        "backend",
        "--env",
        "production",
        "--tag",
        NEW_STAGING,
        "--by",
        "lead",
    ])
    .expect_code(0);
}

#[test]
fn adopt_rollouts_turns_an_undo_into_a_git_rollback() {
    rollout_undo(true);
}

#[test]
fn without_adopt_rollouts_an_undo_is_drift() {
    rollout_undo(false);
}
