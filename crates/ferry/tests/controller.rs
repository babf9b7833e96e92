//! `ferry controller` against a real control plane, the real registry and a real git repo: the
//! seed's layout applied with kubectl, Ferry in place of Flux's image controllers, and the real
//! `flux` CLI reading, reconciling, suspending and resuming Ferry's work.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{NEW_DEVELOP, NEW_STAGING, Seed, Workspace, poll, push, remote_file};
use ferry_testbed::cluster::{ClusterEnv, PrivateCluster};
use ferry_testbed::git::git_servers;
use ferry_testbed::registry::{Auth, registry};

/// A running `ferry controller`, killed when dropped; its log is kept for failure messages.
struct Controller {
    child: Child,
    log: std::path::PathBuf,
}

impl Controller {
    fn start(c: &ClusterEnv, ws: &Workspace) -> Controller {
        let log = ws.join("controller.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(common::bin())
            .args(["--state", &ws.state_str(), "controller", "--kubeconfig"])
            .arg(&c.kubeconfig)
            .args(["--cache-dir", &ws.cache_str(), "--resync", "30s"])
            .env_remove("KUBECONFIG")
            .env("FERRY_LOG", "warn,ferry_controller=debug,ferry_engine=info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn ferry controller");
        Controller { child, log }
    }

    fn log(&self) -> String {
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

fn wait_for(
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

const STAGING_FILE: &str = "flux/apps/backend/staging/deployment.yaml";

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
    let seed = Seed::new(&reg, &git, "ctl", |g, r| g.http(r), Some("git-credentials"));

    // Before the CRDs exist, the controller says what to do.
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
    let ctl = Controller::start(c, &seed.ws);

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

    suspend_and_resume(c, &reg, &seed, &ctl);
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
    let org = seed
        .image_registry
        .split_once('/')
        .map(|(_, o)| o)
        .unwrap_or_default();
    push(reg, &format!("{org}/backend"), newer);
    let (ok, text) = flux(
        c,
        &[
            "reconcile",
            "image",
            "repository",
            "backend",
            "-n",
            "flux-system",
            "--timeout",
            "90s",
        ],
    );
    assert!(ok, "{text}");
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
