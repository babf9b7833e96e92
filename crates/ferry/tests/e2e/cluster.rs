//! The seed's layout on a real control plane: Flux's own CRDs accept every object `ferry init`
//! writes (after Flux's `${var}` substitution), and the real `flux get images all -A` shows them.

use crate::common;

use ferry_testbed::cluster::PrivateCluster;

#[test]
fn flux_crds_accept_the_seed_layout_and_flux_get_shows_it() {
    let Some(cluster) = PrivateCluster::start(&format!("seed-{}", std::process::id())) else {
        return;
    };
    let c = &cluster.env;
    c.install_flux_image_crds();
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = "127.0.0.1:5000/org";
    common::ferry(&[
        "init",
        &dir.path().to_string_lossy(),
        "--app",
        "backend",
        "--app",
        "frontend",
        "--git-url",
        "http://127.0.0.1:3000/org/fleet.git",
    ])
    .expect_code(0);
    common::cluster::apply_seed(c, &dir.path().join("flux"), registry);

    let out = c.flux_output(&["get", "images", "all", "-A"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "flux get images all -A: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "imagerepository/backend",
        "imagerepository/frontend",
        "imagepolicy/backend",
        "imagepolicy/frontend",
        "imageupdateautomation/backend",
        "imageupdateautomation/frontend",
    ] {
        assert!(stdout.contains(expected), "{expected} missing:\n{stdout}");
    }
    for ns in ["develop", "staging", "production", "flux-system"] {
        assert!(stdout.contains(ns), "namespace {ns} missing:\n{stdout}");
    }
    // Network isolation: one NetworkPolicy per environment, ingress from the same namespace only.
    for ns in ["develop", "staging", "production"] {
        let from = c.kubectl(&[
            "-n",
            ns,
            "get",
            "networkpolicy",
            "same-namespace-only",
            "-o",
            "jsonpath={.spec.policyTypes[0]} {.spec.ingress[0].from[0].podSelector}",
        ]);
        assert_eq!(from, "Ingress {}", "{ns}");
    }

    // The seed's own check of what the cluster runs reads the applied Deployment.
    let image = c.kubectl(&[
        "-n",
        "staging",
        "get",
        "deploy",
        "backend",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert!(image.starts_with(&format!("{registry}/backend")), "{image}");
}

fn verify_rows(run: &common::Run) -> Vec<(String, String, String)> {
    run.json()
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("app"), s("env"), s("state"))
        })
        .collect()
}

fn state_of(rows: &[(String, String, String)], app: &str, env: &str) -> String {
    rows.iter()
        .find(|(a, e, _)| a == app && e == env)
        .map(|(_, _, s)| s.clone())
        .unwrap_or_else(|| panic!("no row {app}/{env} in {rows:?}"))
}

/// `ferry verify` after the seed is reconciled and applied: in sync; then a hand-set image is
/// drift, a Git change not applied yet is pending, a deleted workload is missing.
#[test]
fn verify_compares_git_cluster_and_registry() {
    use ferry_testbed::git::git_servers;
    use ferry_testbed::registry::{Auth, registry};
    let (Some(reg), Some(git)) = (registry(Auth::None, false), git_servers()) else {
        return;
    };
    let Some(cluster) = PrivateCluster::start(&format!("verify-{}", std::process::id())) else {
        return;
    };
    let c = &cluster.env;
    c.install_flux_image_crds();
    let seed = common::Seed::with_http_credentials(&reg, &git, "verify");
    seed.reconcile(&[]).expect_code(3);
    let applied = common::clone(&git, &seed.repo);
    common::cluster::apply_seed(c, &applied.path().join("flux"), &seed.image_registry);

    let kubeconfig = c.kubeconfig.to_string_lossy().into_owned();
    let verify = |extra: &[&str]| {
        let flags = seed.flags();
        let mut args: Vec<&str> = vec!["verify", "--kubeconfig", &kubeconfig, "-o", "json"];
        args.extend(flags.iter().map(String::as_str));
        args.extend_from_slice(extra);
        seed.ws.ferry(&args)
    };
    let run = verify(&[]);
    run.expect_code(0);
    let rows = verify_rows(&run);
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(rows.iter().all(|(_, _, s)| s == "in-sync"), "{rows:?}");
    let table = seed.ws.ferry(
        &{
            let mut a = vec![
                "verify".to_string(),
                "--kubeconfig".into(),
                kubeconfig.clone(),
            ];
            a.extend(seed.flags());
            a
        }
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    table.expect_code(0);
    assert!(table.stdout.contains("in-sync"), "{}", table.stdout);

    // A hand-set image on staging: the cluster ran Git's image, now runs another.
    let other = format!("{}/backend:{}", seed.image_registry, common::NEW_DEVELOP);
    c.kubectl(&[
        "-n",
        "staging",
        "set",
        "image",
        "deploy/backend",
        &format!("*={other}"),
    ]);
    // Missing: production frontend's workload is gone.
    c.kubectl(&["-n", "production", "delete", "deploy", "frontend"]);
    let run = verify(&[]);
    run.expect_code(1);
    let rows = verify_rows(&run);
    assert_eq!(state_of(&rows, "backend", "staging"), "drift", "{rows:?}");
    assert_eq!(
        state_of(&rows, "frontend", "production"),
        "missing",
        "{rows:?}"
    );
    assert_eq!(state_of(&rows, "backend", "develop"), "in-sync", "{rows:?}");

    // Pending: Git moves develop on, the cluster has not applied it yet.
    common::push(
        &reg,
        &format!("{}/frontend", seed.org()),
        "develop-v0.0.3-c3d4e5f-1738870000",
    );
    seed.reconcile(&[]).expect_code(3);
    let run = verify(&["--env", "develop"]);
    run.expect_code(1);
    let rows = verify_rows(&run);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        state_of(&rows, "frontend", "develop"),
        "pending",
        "{rows:?}"
    );
    assert_eq!(state_of(&rows, "backend", "develop"), "in-sync", "{rows:?}");
    read_only_credential_is_enough_to_read(&seed, &git, &kubeconfig);
}

/// `verify`, `status` and `history` with a Git credential that may only fetch (the http server's
/// read-only user); a write with it is refused, says so, and changes nothing.
fn read_only_credential_is_enough_to_read(
    seed: &common::Seed,
    git: &ferry_testbed::git::GitEnv,
    kubeconfig: &str,
) {
    seed.ws.secret(
        "flux-system",
        "git-credentials",
        &[
            ("username", git.reader_user.as_bytes()),
            ("password", git.reader_password.as_bytes()),
        ],
    );
    let flags = seed.flags();
    let with = |head: &[&str]| {
        let mut args: Vec<&str> = head.to_vec();
        args.extend(["--kubeconfig", kubeconfig]);
        args.extend(flags.iter().map(String::as_str));
        let run = seed.ws.ferry(&args);
        run.assert_no_secret(&git.reader_password);
        run
    };
    let run = with(&["verify", "--env", "staging", "-o", "json"]);
    run.expect_code(1);
    assert_eq!(state_of(&verify_rows(&run), "backend", "staging"), "drift");
    let status = with(&["status", "backend"]);
    status.expect_code(0);
    assert!(status.stdout.contains("[drift: runs"), "{}", status.stdout);
    assert!(status.stdout.contains("[live]"), "{}", status.stdout);
    let history = with(&["history", "develop", "backend"]);
    history.expect_code(0);
    // `verify` saw develop's tag live: the history says when.
    assert!(
        history.stdout.contains("FIRST SEEN LIVE"),
        "{}",
        history.stdout
    );
    let before = common::remote_head(git, &seed.repo);
    let hold = with(&["hold", "production", "backend", "--by", "ro"]);
    hold.expect_code(1);
    assert!(
        hold.stderr.to_lowercase().contains("auth"),
        "the refusal names authentication: {}",
        hold.stderr
    );
    assert_eq!(
        common::remote_head(git, &seed.repo),
        before,
        "nothing pushed"
    );
}

/// A seed reconciled twice and applied (staging ran NEW_STAGING, then [`NEWER`]), then
/// `kubectl rollout undo` on staging: the cluster runs NEW_STAGING, Git says NEWER.
struct Undone {
    cluster: PrivateCluster,
    seed: common::Seed,
    git: ferry_testbed::git::GitEnv,
    _reg: ferry_testbed::registry::RegistryEnv,
}

const NEWER: &str = "staging-v0.0.2-b2c3d4e-1738870000";
const STAGING_FILE: &str = "flux/apps/backend/staging/deployment.yaml";

fn undone(name: &str) -> Option<Undone> {
    use ferry_testbed::git::git_servers;
    use ferry_testbed::registry::{Auth, registry};
    let (Some(reg), Some(git)) = (registry(Auth::None, false), git_servers()) else {
        return None;
    };
    let cluster = PrivateCluster::start(&format!("{name}-{}", std::process::id()))?;
    let c = &cluster.env;
    c.install_flux_image_crds();
    let seed = common::Seed::with_http_credentials(&reg, &git, "undo");
    seed.reconcile(&[]).expect_code(3);
    let apply = || {
        let tree = common::clone(&git, &seed.repo);
        common::cluster::apply_seed(c, &tree.path().join("flux"), &seed.image_registry);
    };
    apply();
    let newer = NEWER;
    common::push(&reg, &format!("{}/backend", seed.org()), newer);
    seed.reconcile(&[]).expect_code(3);
    apply();
    let image = || {
        c.kubectl(&[
            "-n",
            "staging",
            "get",
            "deploy",
            "backend",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
    };
    assert!(image().ends_with(newer), "{}", image());
    let rs_count = || {
        c.kubectl(&["-n", "staging", "get", "rs", "-o", "name"])
            .lines()
            .filter(|l| l.contains("backend"))
            .count()
    };
    common::poll(std::time::Duration::from_secs(60), || {
        (rs_count() >= 2).then_some(())
    })
    .expect("two ReplicaSets for staging backend");

    c.kubectl(&["-n", "staging", "rollout", "undo", "deploy/backend"]);
    common::poll(std::time::Duration::from_secs(60), || {
        image().ends_with(common::NEW_STAGING).then_some(())
    })
    .expect("rollout undo restores the previous image");
    Some(Undone {
        cluster,
        seed,
        git,
        _reg: reg,
    })
}

/// The seed's emergency rollback: `kubectl rollout undo` is drift until `ferry rollback
/// --to-live` writes the live tag to Git with a hold; automation then keeps it.
#[test]
fn rollout_undo_becomes_a_git_rollback_that_sticks() {
    let Some(Undone {
        cluster, seed, git, ..
    }) = undone("undo")
    else {
        return;
    };
    let c = &cluster.env;
    let newer = NEWER;

    let kubeconfig = c.kubeconfig.to_string_lossy().into_owned();
    let flags = seed.flags();
    let with = |head: &[&str]| {
        let mut args: Vec<&str> = head.to_vec();
        args.extend(flags.iter().map(String::as_str));
        seed.ws.ferry(&args)
    };
    let verify = [
        "verify",
        "backend",
        "--env",
        "staging",
        "--kubeconfig",
        &kubeconfig,
        "-o",
        "json",
    ];
    let run = with(&verify);
    run.expect_code(1);
    assert_eq!(state_of(&verify_rows(&run), "backend", "staging"), "drift");

    // The promotion gate reads the cluster: staging does not run what Git says.
    let promote = [
        "promote",
        "backend",
        "--to",
        "production",
        "--kubeconfig",
        &kubeconfig,
        "--yes",
        "--by",
        "ci",
    ];
    let refused = with(&promote);
    refused.expect_code(1);
    assert!(
        refused
            .stderr
            .contains("the cluster does not run backend's staging image"),
        "{}",
        refused.stderr
    );

    with(&[
        "rollback",
        "staging",
        "backend",
        "--to-live",
        "--kubeconfig",
        &kubeconfig,
        "--by",
        "oncall",
    ])
    .expect_code(0);
    let file = common::remote_file(
        &git,
        &seed.repo,
        "flux/apps/backend/staging/deployment.yaml",
    );
    assert!(
        file.contains(common::NEW_STAGING) && !file.contains(newer),
        "{file}"
    );
    let holds = common::remote_file(&git, &seed.repo, ".ferry/holds.yaml");
    assert!(
        holds.contains("staging") && holds.contains("backend"),
        "{holds}"
    );

    // The hold sticks: automation leaves staging where the cluster is.
    for _ in 0..3 {
        seed.reconcile(&[]).expect_code(0);
    }
    let file = common::remote_file(
        &git,
        &seed.repo,
        "flux/apps/backend/staging/deployment.yaml",
    );
    assert!(!file.contains(newer), "{file}");
    let run = with(&verify);
    run.expect_code(0);
    assert_eq!(
        state_of(&verify_rows(&run), "backend", "staging"),
        "in-sync"
    );

    // In sync: the promotion passes the cluster gate and starts production's automation in the
    // cluster (the controller would run it), not locally.
    // Without --tag the source is the newest tag staging may run: the rolled-back one is denied.
    let promoted = with(&promote);
    promoted.expect_code(0);
    assert!(
        promoted.stdout.contains(common::NEW_STAGING),
        "{}",
        promoted.stdout
    );
    let requested = c.kubectl(&[
        "-n",
        "production",
        "get",
        "imageupdateautomation",
        "backend",
        "-o",
        "jsonpath={.metadata.annotations.reconcile\\.fluxcd\\.io/requestedAt}",
    ]);
    assert!(
        !requested.trim().is_empty(),
        "requestedAt set on production/backend"
    );
    // The target's ImageRepository is rescanned too, so the promoted tag is elected at once.
    assert!(
        promoted
            .stderr
            .contains("requested a reconcile of ImageRepository "),
        "{}",
        promoted.stderr
    );
}

/// `ferry serve --kubeconfig --adopt-rollouts`: the daemon sees the undo on its drift check and
/// writes it to Git with a hold, as the controller does; `ferry_drift` is on /metrics.
#[test]
fn serve_with_a_cluster_adopts_a_rollout_undo() {
    let Some(Undone {
        cluster, seed, git, ..
    }) = undone("serve-undo")
    else {
        return;
    };
    let (mut child, log) = serve_with_cluster(&cluster, &seed, &["--adopt-rollouts"]);
    let followed = common::poll(std::time::Duration::from_secs(60), || {
        let file = common::remote_file(&git, &seed.repo, STAGING_FILE);
        (file.contains(common::NEW_STAGING) && !file.contains(NEWER)).then_some(())
    });
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        followed.is_some(),
        "Git did not follow the undo; log:\n{text}"
    );
    let holds = common::remote_file(&git, &seed.repo, ".ferry/holds.yaml");
    assert!(holds.contains("staging/backend"), "{holds}");
    let trailers = common::remote_log(&git, &seed.repo, "%(trailers:key=Ferry-Adopted)");
    assert!(trailers.contains("rollout-undo"), "{trailers}");
}

/// `ferry serve` on the seed with the cluster for drift (checked every second, reported after
/// one), plus `extra` flags; its log file.
fn serve_with_cluster(
    cluster: &PrivateCluster,
    seed: &common::Seed,
    extra: &[&str],
) -> (std::process::Child, std::path::PathBuf) {
    let listen = format!("127.0.0.1:{}", common::daemon::free_port());
    let state = seed.ws.state_str();
    let kubeconfig = cluster.env.kubeconfig.to_string_lossy().into_owned();
    let flags = seed.flags();
    let mut argv = vec![
        "serve",
        "--state",
        &state,
        "--listen",
        &listen,
        "--allow-unsigned-webhooks",
        "--kubeconfig",
        &kubeconfig,
        "--drift-interval",
        "1s",
        "--drift-grace",
        "1s",
    ];
    argv.extend_from_slice(extra);
    argv.extend(flags.iter().map(String::as_str));
    let log = seed.ws.join("serve.log");
    let child = common::command(&argv)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("ferry serve");
    (child, log)
}

/// `ferry serve --kubeconfig --notify-config` without `--adopt-rollouts`: the undo is drift,
/// and a local receiver gets exactly one `drift` message with Git's tag → the live tag.
#[test]
fn serve_notifies_drift_once() {
    let Some(Undone {
        cluster, seed, git, ..
    }) = undone("serve-drift")
    else {
        return;
    };
    let receiver = crate::common::receiver::Receiver::start();
    let config = seed.ws.join("notify.yaml");
    std::fs::write(
        &config,
        format!(
            "receivers:\n  - name: ops\n    provider: webhook\n    url: {}\n    events: [drift]\n",
            receiver.url
        ),
    )
    .expect("notify config");
    let config = config.to_string_lossy().into_owned();
    let (mut child, log) = serve_with_cluster(
        &cluster,
        &seed,
        &["--notify-config", &config, "--ui", "--ui-read-only-open"],
    );
    let drift = |bodies: &[serde_json::Value]| {
        bodies
            .iter()
            .filter(|b| b["kind"] == "drift")
            .cloned()
            .collect::<Vec<_>>()
    };
    let got = common::poll(std::time::Duration::from_secs(60), || {
        let d = drift(&receiver.bodies());
        (!d.is_empty()).then_some(d)
    });
    // More drift checks run (1 s apart); the same drift is not sent again.
    let later = common::poll(std::time::Duration::from_secs(20), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("DriftDetected")
            .count()
            .ge(&1)
            .then_some(())
    });
    // The dashboard's staging card draws the same drift: live tag vs Git's.
    let card = dashboard_drift(
        &log,
        &format!("drifted: live {} vs Git {NEWER}", common::NEW_STAGING),
    );
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let got = got.unwrap_or_else(|| panic!("no drift message; log:\n{text}"));
    assert!(
        card.is_some(),
        "no drift line on the dashboard; log:\n{text}"
    );
    assert!(later.is_some(), "{text}");
    assert_eq!(
        drift(&receiver.bodies()).len(),
        1,
        "{:?}",
        receiver.bodies()
    );
    let m = &got[0];
    assert_eq!(m["app"], "backend", "{m}");
    assert_eq!(m["env"], "staging", "{m}");
    assert_eq!(m["old"]["tag"], NEWER, "{m}");
    assert_eq!(m["new"]["tag"], common::NEW_STAGING, "{m}");
    // Git is unchanged: without --adopt-rollouts drift is reported, never written.
    let file = common::remote_file(&git, &seed.repo, STAGING_FILE);
    assert!(file.contains(NEWER), "{file}");
}

/// Polls the dashboard (its address from the daemon's log) until the staging card's drift line
/// starts with `want`.
fn dashboard_drift(log: &std::path::Path, want: &str) -> Option<()> {
    common::poll(std::time::Duration::from_secs(30), || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let port: u16 = text
            .split("dashboard on http://127.0.0.1:")
            .nth(1)?
            .split('/')
            .next()?
            .parse()
            .ok()?;
        let (_, page) = common::daemon::http(port, "GET", "/ui", &[], b"");
        let line = page.split("id=\"drift-backend-staging\">").nth(1)?;
        line.starts_with(want).then_some(())
    })
}

/// An API server that does not answer: `ferry verify` says which and exits 1, nothing else.
#[test]
fn verify_against_an_unreachable_api_server_fails_clearly() {
    use ferry_testbed::git::git_servers;
    use ferry_testbed::registry::{Auth, registry};
    let (Some(reg), Some(git)) = (registry(Auth::None, false), git_servers()) else {
        return;
    };
    let seed = common::Seed::new(&reg, &git, "verify-down", |g, r| g.file(r), None);
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let kubeconfig = seed.ws.join("down.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: down\n  cluster: {{server: \"https://127.0.0.1:{port}\", insecure-skip-tls-verify: true}}\nusers:\n- name: u\n  user: {{token: not-a-real-token}}\ncontexts:\n- name: down\n  context: {{cluster: down, user: u}}\ncurrent-context: down\n"
        ),
    )
    .expect("kubeconfig");
    let flags = seed.flags();
    let path = kubeconfig.to_string_lossy().into_owned();
    let mut args = vec!["verify", "--kubeconfig", &path];
    args.extend(flags.iter().map(String::as_str));
    let run = seed.ws.ferry(&args);
    run.expect_code(1).assert_no_secret("not-a-real-token");
    eprintln!(
        "verify against a down API server: {}",
        run.stderr.trim().replace('\n', " | ")
    );
    assert!(
        run.stderr.contains(&format!(
            "cannot read the workloads from the Kubernetes API server https://127.0.0.1:{port}/"
        )),
        "the error names the unreachable server: {}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "no half table: {}", run.stdout);
}
