//! `ferry serve` end to end: a real docker-registry sending push notifications to the daemon, a
//! real git HTTP server (Basic auth) receiving the commits, webhook rejections, SIGTERM in the
//! middle of a reconcile, kill -9 and restart, the single-instance lock.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ferry_testbed::git::{GitEnv, git_servers};
use ferry_testbed::registry::{Auth, registry};

const BOUND: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A registry started by `testbed/registry-notify.sh`, stopped on drop.
struct NotifyRegistry {
    name: String,
    url: String,
    host: String,
}

impl NotifyRegistry {
    fn start(notify_port: u16, secret_file: &Path) -> Option<NotifyRegistry> {
        if Command::new("docker-registry")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(!ferry_testbed::in_ci(), "docker-registry is not installed");
            eprintln!("SKIP: docker-registry is not installed");
            return None;
        }
        let name = format!("notify-{}-{}", std::process::id(), free_port());
        let out = Command::new("bash")
            .arg(ferry_testbed::workspace_root().join("testbed/registry-notify.sh"))
            .args(["start", "--name", &name, "--notify"])
            .arg(format!("http://127.0.0.1:{notify_port}/hooks/registry"))
            .arg("--secret-file")
            .arg(secret_file)
            .env("TESTBED_DIR", ferry_testbed::registry::testbed_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "registry-notify.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(
            ferry_testbed::registry::testbed_dir().join(format!("{name}.env")),
        )
        .unwrap();
        let vars = ferry_testbed::registry::parse_env_file(&env);
        Some(NotifyRegistry {
            name,
            url: vars["TESTBED_REGISTRY_URL"].clone(),
            host: vars["TESTBED_REGISTRY_HOST"].clone(),
        })
    }

    fn push(&self, repo: &str, tag: &str) {
        let out = Command::new("python3")
            .arg(ferry_testbed::workspace_root().join("testbed/ocipush.py"))
            .args([
                "image",
                &self.url,
                repo,
                tag,
                "--content",
                &format!("{repo} {tag}"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ocipush: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for NotifyRegistry {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(ferry_testbed::workspace_root().join("testbed/registry-notify.sh"))
            .args(["stop", "--name", &self.name])
            .env("TESTBED_DIR", ferry_testbed::registry::testbed_dir())
            .output();
    }
}

/// One HTTP/1.1 request to the daemon; returns (status, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body: a failed write is fine.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The sum of a metric's samples whose line contains every `filters` substring.
fn metric(port: u16, name: &str, filters: &[&str]) -> f64 {
    let (status, text) = http(port, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| filters.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// HMAC-SHA256 hex, computed with openssl so the test does not share the daemon's code.
fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret, "-r"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A running `ferry serve`, killed on drop.
struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    fn start(args: &[String], port: u16, log: PathBuf) -> Daemon {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = command(&argv)
            .env("FERRY_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        let d = Daemon {
            child: Some(child),
            log,
        };
        let ok = poll(BOUND, || {
            TcpStream::connect(("127.0.0.1", port))
                .ok()
                .and_then(|_| (http(port, "GET", "/readyz", &[], b"").0 == 200).then_some(()))
        });
        assert!(ok.is_some(), "daemon not ready; log:\n{}", d.log_text());
        d
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits (bounded) for the exit; returns the exit code (None: killed by a signal).
    fn wait(&mut self) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("daemon did not exit; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls the log until a line after byte `from` contains `needle`; returns the log length.
    fn wait_log(&self, from: usize, needle: &str) -> usize {
        poll(BOUND, || {
            let text = self.log_text();
            text.get(from..)
                .and_then(|t| t.find(needle))
                .map(|i| from + i + needle.len())
        })
        .unwrap_or_else(|| panic!("no {needle:?} in the log:\n{}", self.log_text()))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Setup {
    ws: Workspace,
    git: GitEnv,
    repo: String,
    reg: NotifyRegistry,
    port: u16,
    secret: String,
    args: Vec<String>,
}

/// Seed layout from `ferry init` pushed to a fresh repo of the real git server; the automations
/// push over HTTP with Basic auth; the daemon reads the objects from the same repo.
fn setup(prefix: &str) -> Option<Setup> {
    let git = git_servers()?;
    let ws = Workspace::new();
    let port = free_port();
    let secret = format!("whsec-{}", free_port());
    let secret_file = ws.join("webhook-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let reg = NotifyRegistry::start(port, &secret_file)?;
    let repo = git.new_repo(prefix, false).unwrap();
    let tree = ws.join("gitops");
    init_seed(
        &tree,
        &format!("{}/org", reg.host),
        &git.http(&repo),
        &["--git-secret", "git-auth"],
    );
    ws.secret(
        "flux-system",
        "git-auth",
        &[
            ("username", git.user.as_bytes()),
            ("password", git.password.as_bytes()),
        ],
    );
    push_tree(&git, &repo, &tree);
    // Both repositories exist, so no scan fails and no backoff pass runs beside the ones a test
    // waits for.
    reg.push("org/frontend", "develop-v0.0.1-a1b2c3d-1738800000");
    let registry_var = format!("image_registry={}/org", reg.host);
    let args: Vec<String> = [
        "serve",
        "--repo",
        &git.file(&repo),
        "--path",
        "flux",
        "--var",
        &registry_var,
        "--secrets-dir",
        &ws.secrets_str(),
        "--state",
        &ws.state_str(),
        "--cache-dir",
        &ws.cache_str(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--webhook-secret-file",
        secret_file.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Some(Setup {
        ws,
        git,
        repo,
        reg,
        port,
        secret,
        args,
    })
}

/// (what, headers, body, expected status).
type BadRequest<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16);

const DEVELOP: &str = "flux/apps/backend/develop/deployment.yaml";

impl Setup {
    fn daemon(&self, log: &str) -> Daemon {
        Daemon::start(&self.args, self.port, self.ws.join(log))
    }
    fn develop_file(&self) -> String {
        remote_file(&self.git, &self.repo, DEVELOP)
    }
    fn wait_develop(&self, tag: &str) {
        let found = poll(BOUND, || self.develop_file().contains(tag).then_some(()));
        assert!(
            found.is_some(),
            "{tag} never reached {DEVELOP}:\n{}",
            self.develop_file()
        );
    }
    fn commits_with(&self, tag: &str) -> usize {
        remote_log(
            &self.git,
            &self.repo,
            "%H %(trailers:key=Ferry-Change,valueonly,separator=%x2C)",
        )
        .lines()
        .filter(|l| l.contains(tag))
        .count()
    }
}

#[test]
fn registry_push_reaches_git_and_bad_webhooks_trigger_nothing() {
    let Some(s) = setup("serve-push") else { return };
    // Webhooks need a secret unless explicitly allowed.
    let no_secret: Vec<String> = s.args.iter().take(s.args.len() - 2).cloned().collect();
    let argv: Vec<&str> = no_secret.iter().map(String::as_str).collect();
    let r = ferry(&argv);
    r.expect_code(2);
    assert!(r.stderr.contains("--webhook-secret-file"), "{}", r.stderr);

    let mut d = s.daemon("serve.log");
    assert_eq!(http(s.port, "GET", "/healthz", &[], b"").0, 200);

    // A push, announced by the registry's own notification, becomes a commit.
    let tag = "develop-v1.0.0-a1b2c3d-1738860000";
    let t0 = Instant::now();
    s.reg.push("org/backend", tag);
    s.wait_develop(tag);
    eprintln!("push to commit: {:?}", t0.elapsed());
    assert_eq!(s.commits_with(tag), 1);
    assert!(
        metric(
            s.port,
            "ferry_webhook_requests_total",
            &["hook=\"registry\"", "result=\"accepted\""]
        ) >= 1.0
    );
    // The push lands before the pass records it: poll the counters, bounded.
    assert!(
        poll(BOUND, || (metric(s.port, "ferry_git_pushes_total", &[])
            >= 1.0)
            .then_some(()))
        .is_some()
    );
    assert!(metric(s.port, "ferry_scans_total", &["result=\"success\""]) >= 1.0);
    assert!(metric(s.port, "ferry_policy_changes_total", &[]) >= 1.0);
    assert!(metric(s.port, "ferry_registry_requests_total", &["status=\"200\""]) >= 1.0);
    // Each phase of a pass is timed under its own kind.
    for kind in ["ImageRepository", "ImagePolicy", "ImageUpdateAutomation"] {
        let label = format!("kind=\"{kind}\"");
        assert!(
            metric(s.port, "ferry_reconcile_duration_seconds_count", &[&label]) >= 1.0,
            "no {kind} in the reconcile-duration histogram"
        );
    }

    // Bad requests: 4xx, and no pass is started by them.
    let passes = |p| metric(p, "ferry_passes_total", &["trigger=\"registry\""]);
    let before = passes(s.port);
    let body = br#"{"repository":"127.0.0.1:1/org/backend"}"#;
    let good_sig = format!("sha256={}", hmac_hex(&s.secret, body));
    let bad_sig = format!("sha256={}", hmac_hex("not-the-secret", body));
    let bearer = format!("Bearer {}", s.secret);
    let cases: Vec<BadRequest> = vec![
        ("no auth", vec![], body.to_vec(), 401),
        (
            "bad signature",
            vec![("X-Ferry-Signature", &bad_sig)],
            body.to_vec(),
            401,
        ),
        (
            "signature of another body",
            vec![("X-Ferry-Signature", &good_sig)],
            br#"{"repository":"127.0.0.1:1/org/other"}"#.to_vec(),
            401,
        ),
        (
            "bad bearer",
            vec![("Authorization", "Bearer wrong")],
            body.to_vec(),
            401,
        ),
        (
            "not json",
            vec![("Authorization", &bearer)],
            b"{not json".to_vec(),
            400,
        ),
        (
            "wrong shape",
            vec![("Authorization", &bearer)],
            br#"{"events":"push"}"#.to_vec(),
            400,
        ),
        (
            "event without repository",
            vec![("Authorization", &bearer)],
            br#"{"events":[{"action":"push","target":{}}]}"#.to_vec(),
            400,
        ),
        (
            "too large",
            vec![("Authorization", &bearer)],
            vec![b' '; 2 * 1024 * 1024],
            413,
        ),
    ];
    for (what, headers, body, want) in &cases {
        let (status, text) = http(s.port, "POST", "/hooks/registry", headers, body);
        assert_eq!(status, *want, "{what}: {text}");
        assert!(!text.contains(&s.secret));
    }
    assert_eq!(
        metric(
            s.port,
            "ferry_webhook_requests_total",
            &["result=\"unauthorized\""]
        ),
        4.0
    );
    assert_eq!(
        metric(
            s.port,
            "ferry_webhook_requests_total",
            &["result=\"malformed\""]
        ),
        3.0
    );
    assert_eq!(
        metric(
            s.port,
            "ferry_webhook_requests_total",
            &["result=\"too_large\""]
        ),
        1.0
    );
    let (status, _) = http(
        s.port,
        "POST",
        "/hooks/git",
        &[("Authorization", "Bearer wrong")],
        b"{}",
    );
    assert_eq!(status, 401);
    // Give a wrongly triggered pass the time to show up, bounded, then check none did.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        assert_eq!(passes(s.port), before, "a rejected webhook started a pass");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !d.log_text().contains(&s.secret),
        "the secret leaked into the log"
    );

    // The generic payload, signed with HMAC, triggers a pass.
    let generic = format!(r#"{{"repository":"{}/org/backend","tag":"x"}}"#, s.reg.host);
    let sig = format!("sha256={}", hmac_hex(&s.secret, generic.as_bytes()));
    let (status, text) = http(
        s.port,
        "POST",
        "/hooks/registry",
        &[("X-Ferry-Signature", &sig)],
        generic.as_bytes(),
    );
    assert_eq!(status, 202, "{text}");
    assert!(poll(BOUND, || (passes(s.port) > before).then_some(())).is_some());

    // Attacker path: a notification naming a host no ImageRepository names makes Ferry contact
    // nothing. A real listener stands at that host and counts connections.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_host = format!("127.0.0.1:{}", trap.local_addr().unwrap().port());
    let connections = || {
        let mut n = 0;
        while trap.accept().is_ok() {
            n += 1;
        }
        n
    };
    let signed = |body: &str| {
        let sig = format!("sha256={}", hmac_hex(&s.secret, body.as_bytes()));
        http(
            s.port,
            "POST",
            "/hooks/registry",
            &[("X-Ferry-Signature", &sig)],
            body.as_bytes(),
        )
    };
    let before = passes(s.port);
    let unknown = format!(
        r#"{{"events":[{{"action":"push","target":{{"repository":"org/elsewhere","tag":"v1"}},"request":{{"host":"{trap_host}"}}}}]}}"#
    );
    assert_eq!(signed(&unknown).0, 202);
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        assert_eq!(
            passes(s.port),
            before,
            "an unknown repository started a pass"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A known path under a foreign host scans the ImageRepository at its own spec.image only.
    let scans = |p| metric(p, "ferry_scans_total", &[]);
    let scans_before = scans(s.port);
    let foreign = format!(r#"{{"repository":"{trap_host}/org/backend","tag":"v1"}}"#);
    assert_eq!(signed(&foreign).0, 202);
    // The scan it triggers has finished once the scan counter moves.
    assert!(poll(BOUND, || (scans(s.port) > scans_before).then_some(())).is_some());
    assert_eq!(
        connections(),
        0,
        "Ferry connected to the host a webhook named"
    );

    // One daemon per state store.
    let argv: Vec<String> = s
        .args
        .iter()
        .map(|a| {
            if *a == format!("127.0.0.1:{}", s.port) {
                "127.0.0.1:0".to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let second = ferry(&argv);
    second.expect_code(1);
    assert!(
        second.stderr.contains("another `ferry serve`"),
        "{}",
        second.stderr
    );

    // SIGTERM: clean exit.
    d.signal("-TERM");
    assert_eq!(d.wait(), Some(0), "log:\n{}", d.log_text());
    assert!(d.log_text().contains("ferry serve: stopped"));
}

#[test]
fn sigterm_finishes_the_push_and_a_killed_daemon_resumes() {
    let Some(s) = setup("serve-restart") else {
        return;
    };
    let mut d = s.daemon("serve1.log");
    let v1 = "develop-v1.0.0-a1b2c3d-1738860000";
    s.reg.push("org/backend", v1);
    s.wait_develop(v1);

    // SIGTERM while the pass for a new push is running: the push still lands before the exit.
    let from = d.log_text().len();
    let v2 = "develop-v1.0.1-b2c3d4e-1738861000";
    s.reg.push("org/backend", v2);
    let at = d.wait_log(from, "registry webhook triggered=1");
    d.wait_log(at, "reconcile kind=");
    d.signal("-TERM");
    assert_eq!(d.wait(), Some(0), "log:\n{}", d.log_text());
    assert!(
        s.develop_file().contains(v2),
        "SIGTERM lost the in-flight push:\n{}",
        d.log_text()
    );
    assert_eq!(s.commits_with(v2), 1);

    // kill -9 in the middle of the automation; the next start completes the work, once.
    let v3 = "develop-v1.0.2-c3d4e5f-1738862000";
    s.reg.push("org/backend", v3);
    let mut d = s.daemon("serve2.log");
    d.wait_log(0, "reconcile kind=\"ImageUpdateAutomation\"");
    d.signal("-KILL");
    assert_eq!(d.wait(), None);
    let d = s.daemon("serve3.log");
    s.wait_develop(v3);
    assert_eq!(s.commits_with(v3), 1, "log:\n{}", d.log_text());
    // The clone cache is usable: a further push still goes through.
    let v4 = "develop-v1.0.3-d4e5f6a-1738863000";
    s.reg.push("org/backend", v4);
    s.wait_develop(v4);
}

#[test]
fn git_webhook_picks_up_a_changed_object_without_restart() {
    let Some(s) = setup("serve-gitchange") else {
        return;
    };
    let d = s.daemon("serve.log");
    let tag = "develop-v2.0.0-a1b2c3d-1738860000";
    s.reg.push("org/backend", tag);
    s.wait_develop(tag);
    // Suspend the develop automation in Git, then ask for a fetch.
    let work = clone(&s.git, &s.repo);
    let auto = work
        .path()
        .join("flux/apps/backend/develop/image-automation.yaml");
    let text = std::fs::read_to_string(&auto).unwrap();
    let suspended = text.replacen("spec:\n", "spec:\n  suspend: true\n", 1);
    assert_ne!(text, suspended);
    std::fs::write(&auto, suspended).unwrap();
    git(
        work.path(),
        &["commit", "-qam", "suspend develop automation"],
    );
    git(work.path(), &["push", "-q", "origin", "HEAD:main"]);
    let body = br#"{"ref":"refs/heads/main"}"#;
    let sig = format!("sha256={}", hmac_hex(&s.secret, body));
    let before = metric(s.port, "ferry_source_loads_total", &["result=\"success\""]);
    let (status, _) = http(
        s.port,
        "POST",
        "/hooks/git",
        &[("X-Hub-Signature-256", &sig)],
        body,
    );
    assert_eq!(status, 202);
    assert!(
        poll(BOUND, || (metric(
            s.port,
            "ferry_source_loads_total",
            &["result=\"success\""]
        ) > before)
            .then_some(()))
        .is_some()
    );
    // The reload is applied before the next push is handled: the suspended automation writes
    // nothing, while staging (not suspended) still follows its own tags.
    let dev = "develop-v2.0.1-b2c3d4e-1738861000";
    let stg = "staging-v2.0.1-b2c3d4e-1738861000";
    s.reg.push("org/backend", dev);
    s.reg.push("org/backend", stg);
    let staging = "flux/apps/backend/staging/deployment.yaml";
    let ok = poll(BOUND, || {
        remote_file(&s.git, &s.repo, staging)
            .contains(stg)
            .then_some(())
    });
    assert!(ok.is_some(), "log:\n{}", d.log_text());
    assert!(
        !s.develop_file().contains(dev),
        "a suspended automation pushed"
    );
}

/// `digestReflectionPolicy: Always` with `interval: 1s`: a tag re-pushed with new content (same
/// name, new digest) reaches Git through the policy's own timer. The registry sends no
/// notification, no webhook is called, and repositories and automations run hourly, so only
/// the policy timer can notice.
#[test]
fn always_policy_timer_writes_the_digest_of_a_repushed_tag_without_webhooks() {
    let Some(git) = git_servers() else { return };
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let ws = Workspace::new();
    let org = unique("serve-digest");
    let backend = format!("{org}/backend");
    let tag = "develop-v1.0.0-a1b2c3d-1738860000";
    let first = reg.push_image_with(&backend, tag, "first build");
    reg.push_image_with(
        &format!("{org}/frontend"),
        "develop-v0.0.1-a1b2c3d-1738800000",
        "frontend",
    );
    let repo = git.new_repo("serve-digest", false).unwrap();
    let tree = ws.join("gitops");
    init_seed(
        &tree,
        &format!("{}/{org}", reg.host),
        &git.http(&repo),
        &["--git-secret", "git-auth"],
    );
    ws.secret(
        "flux-system",
        "git-auth",
        &[
            ("username", git.user.as_bytes()),
            ("password", git.password.as_bytes()),
        ],
    );
    let edit = |rel: &str, f: &dyn Fn(&str) -> String| {
        let p = tree.join(rel);
        let text = std::fs::read_to_string(&p).unwrap();
        let new = f(&text);
        assert_ne!(text, new, "{rel} unchanged");
        std::fs::write(&p, new).unwrap();
    };
    let hourly = |t: &str| t.replace("interval: 1m0s", "interval: 1h0m0s");
    for app in ["backend", "frontend"] {
        edit(
            &format!("flux/bootstrap/infrastructure/image-automation/{app}-image-repo.yaml"),
            &hourly,
        );
    }
    for env in ["develop", "staging", "production"] {
        edit(
            &format!("flux/apps/backend/{env}/image-automation.yaml"),
            &hourly,
        );
        edit(
            &format!("flux/apps/frontend/overlays/{env}/image-automation.yaml"),
            &hourly,
        );
    }
    edit("flux/apps/backend/develop/image-policy.yaml", &|t| {
        t.replacen(
            "spec:\n",
            "spec:\n  digestReflectionPolicy: Always\n  interval: 1s\n",
            1,
        )
    });
    push_tree(&git, &repo, &tree);

    let port = free_port();
    let registry_var = format!("image_registry={}/{org}", reg.host);
    let args: Vec<String> = [
        "serve",
        "--repo",
        &git.file(&repo),
        "--path",
        "flux",
        "--var",
        &registry_var,
        "--secrets-dir",
        &ws.secrets_str(),
        "--state",
        &ws.state_str(),
        "--cache-dir",
        &ws.cache_str(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--allow-unsigned-webhooks",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let d = Daemon::start(&args, port, ws.join("serve.log"));
    let develop = || remote_file(&git, &repo, DEVELOP);
    let wait_for = |want: &str| {
        let found = poll(BOUND, || develop().contains(want).then_some(()));
        assert!(
            found.is_some(),
            "{want} never reached {DEVELOP}:\n{}\nlog:\n{}",
            develop(),
            d.log_text()
        );
    };
    // Startup: the full `name:tag@digest` setter gets the first digest.
    wait_for(&format!("{}/{backend}:{tag}@{first}", reg.host));

    // Same tag, new content: only the digest changes.
    let second = reg.push_image_with(&backend, tag, "second build");
    assert_ne!(first, second);
    let t0 = Instant::now();
    wait_for(&format!("{}/{backend}:{tag}@{second}", reg.host));
    eprintln!("re-push to commit via the policy timer: {:?}", t0.elapsed());
    assert!(!develop().contains(&first));

    // Nothing but timers did it.
    assert_eq!(metric(port, "ferry_webhook_requests_total", &[]), 0.0);
    assert_eq!(
        metric(port, "ferry_passes_total", &["trigger=\"registry\""]),
        0.0
    );
    assert_eq!(
        metric(port, "ferry_passes_total", &["trigger=\"git\""]),
        0.0
    );
    // The push lands before the pass records it: poll, bounded.
    assert!(
        poll(BOUND, || (metric(port, "ferry_git_pushes_total", &[])
            >= 2.0)
            .then_some(()))
        .is_some(),
        "log:\n{}",
        d.log_text()
    );
    for kind in ["ImageRepository", "ImagePolicy", "ImageUpdateAutomation"] {
        let label = format!("kind=\"{kind}\"");
        assert!(
            metric(port, "ferry_reconcile_duration_seconds_count", &[&label]) >= 1.0,
            "no {kind} in the reconcile-duration histogram"
        );
    }
    // The timer evaluated the policy on its own, more than once (startup, then every second).
    assert!(
        metric(
            port,
            "ferry_reconcile_duration_seconds_count",
            &["kind=\"ImagePolicy\""]
        ) >= 2.0
    );
}
