//! `ferry serve` end to end: a real docker-registry sending push notifications to the daemon, a
//! real git HTTP server (Basic auth) receiving the commits, webhook rejections, SIGTERM in the
//! middle of a reconcile, kill -9 and restart, the single-instance lock.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::daemon::*;
use crate::common::*;
use ferry_testbed::git::git_servers;
use ferry_testbed::registry::{Auth, registry};

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

#[test]
fn dora_gauges_on_metrics_are_computed_from_git() {
    let Some(s) = setup("serve-dora") else { return };
    // One promotion to production, built an hour before it was committed 10 minutes ago.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (built, at) = (now - 4_200, now - 600);
    let d = clone(&s.git, &s.repo);
    let p = d
        .path()
        .join("flux/apps/backend/production/deployment.yaml");
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "production-v0.0.0-0000000-0",
        &format!("production-v1.0.0-abcdef1-{built}"),
    );
    std::fs::write(&p, text).unwrap();
    let date = format!("@{at} +0000");
    let out = git_cmd(
        d.path(),
        &["commit", "-qam", "Release\n\nFerry-Kind: promotion\n"],
    )
    .env("GIT_COMMITTER_DATE", &date)
    .output()
    .unwrap();
    assert!(out.status.success());
    git(d.path(), &["push", "-q", "origin", "main"]);

    let daemon = s.daemon("dora.log");
    let backend = ["app=\"backend\"", "env=\"production\""];
    let found = poll(BOUND, || {
        (metric(s.port, "ferry_dora_deployments", &backend) == 1.0).then_some(())
    });
    assert!(
        found.is_some(),
        "no DORA gauges; log:\n{}",
        daemon.log_text()
    );
    assert_eq!(
        metric(s.port, "ferry_dora_lead_time_median_seconds", &backend),
        3_600.0
    );
    assert_eq!(metric(s.port, "ferry_dora_rollbacks", &backend), 0.0);
    assert_eq!(
        metric(s.port, "ferry_dora_change_failure_ratio", &backend),
        0.0
    );
    // frontend has no deployment yet: a count of 0 and no ratio.
    let frontend = ["app=\"frontend\"", "env=\"production\""];
    assert_eq!(metric(s.port, "ferry_dora_deployments", &frontend), 0.0);
    let (_, text) = http(s.port, "GET", "/metrics", &[], b"");
    assert!(
        !text.contains("ferry_dora_change_failure_ratio{app=\"frontend\""),
        "{text}"
    );
}

type Gate = std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>;
/// (request head, body) of each request received.
type Requests = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A local HTTP receiver on 127.0.0.1 answering every POST with `status`; keeps the requests.
/// A gated receiver holds its first request unanswered until `release`.
struct Receiver {
    port: u16,
    got: Requests,
    gate: Gate,
}

impl Receiver {
    fn start(status: u16, gated: bool) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got: Requests = Default::default();
        let gate: Gate = std::sync::Arc::new((std::sync::Mutex::new(!gated), Default::default()));
        let (sink, g) = (got.clone(), gate.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut c) = conn else { return };
                if let Some(req) = read_request(&mut c) {
                    sink.lock().unwrap().push(req);
                }
                let (open, cv) = &*g;
                let mut o = open.lock().unwrap();
                while !*o {
                    o = cv.wait(o).unwrap();
                }
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = c.write_all(reply.as_bytes());
            }
        });
        Receiver { port, got, gate }
    }

    fn release(&self) {
        *self.gate.0.lock().unwrap() = true;
        self.gate.1.notify_all();
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn requests(&self) -> Vec<(String, Vec<u8>)> {
        self.got.lock().unwrap().clone()
    }

    fn json(&self) -> Vec<serde_json::Value> {
        self.requests()
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }

    fn wait_count(&self, n: usize) {
        let ok = poll(Duration::from_secs(60), || {
            (self.requests().len() >= n).then_some(())
        });
        assert!(
            ok.is_some(),
            "{} requests, wanted {n}",
            self.requests().len()
        );
    }
}

/// (head, body) of one HTTP/1.1 request with Content-Length.
fn read_request(c: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = c.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            let n = c.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        return Some((head, buf[end + 4..end + 4 + len].to_vec()));
    }
}

#[test]
fn notifications_one_per_change_signed_and_bounded_retries_without_blocking() {
    let Some(mut s) = setup("serve-notify") else {
        return;
    };
    let ok = Receiver::start(200, false);
    let failing = Receiver::start(500, true);
    let slack = Receiver::start(200, false);
    let key = s.ws.join("notify-key");
    std::fs::write(&key, "hmac-key\n").unwrap();
    let config = s.ws.join("notify.yaml");
    std::fs::write(
        &config,
        format!(
            "receivers:\n  - name: ok\n    url: {}\n    secretFile: {}\n  - name: failing\n    url: {}\n    apps: [backend]\n  - name: chat\n    provider: slack\n    url: {}\n    envs: [production]\n",
            ok.url(),
            key.display(),
            failing.url(),
            slack.url()
        ),
    )
    .unwrap();
    s.args
        .extend(["--notify-config".into(), config.display().to_string()]);
    let daemon = s.daemon("notify.log");

    // The seed's own values are the baseline: nothing is sent for them.
    let tag1 = "develop-v1.0.0-a1b2c3d-1738860000";
    s.reg.push("org/backend", tag1);
    s.wait_develop(tag1);
    ok.wait_count(1);
    // The failing receiver holds the first delivery unanswered: the next change still lands.
    failing.wait_count(1);
    let tag2 = "develop-v1.0.1-b2c3d4e-1738870000";
    s.reg.push("org/backend", tag2);
    s.wait_develop(tag2);
    ok.wait_count(2);
    assert_eq!(failing.requests().len(), 1);
    // Released, it answers 500: each change gets its 5 attempts, no more.
    failing.release();
    failing.wait_count(10);

    let msgs = ok.json();
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    let d1 = registry_digest(&s.reg.host, "org/backend", tag1);
    let d2 = registry_digest(&s.reg.host, "org/backend", tag2);
    let m = &msgs[0];
    assert_eq!(m["kind"], "automation");
    assert_eq!(
        (m["app"].as_str(), m["env"].as_str()),
        (Some("backend"), Some("develop"))
    );
    assert_eq!(m["old"]["tag"], "develop-v0.0.0-0000000-0");
    assert_eq!(m["new"]["tag"], tag1);
    assert_eq!(m["new"]["digest"], d1.as_str());
    assert_eq!(m["commit"].as_str().unwrap().len(), 40);
    let m = &msgs[1];
    assert_eq!(
        (m["old"]["tag"].as_str(), m["new"]["tag"].as_str()),
        (Some(tag1), Some(tag2))
    );
    assert_eq!(m["old"]["digest"], d1.as_str());
    assert_eq!(m["new"]["digest"], d2.as_str());
    // Signed with the receiver's key (checked with openssl).
    for (head, body) in ok.requests() {
        let sig = format!("x-ferry-signature: sha256={}", hmac_hex("hmac-key", &body));
        assert!(head.to_ascii_lowercase().contains(&sig), "{head}");
    }
    // Each change was retried exactly 5 times at the failing receiver, the same body each time.
    let bodies: Vec<Vec<u8>> = failing.requests().into_iter().map(|(_, b)| b).collect();
    for b in [&msgs[0], &msgs[1]] {
        let n = bodies
            .iter()
            .filter(|x| serde_json::from_slice::<serde_json::Value>(x).unwrap() == *b)
            .count();
        assert_eq!(n, 5, "{b}");
    }
    // The Slack receiver only wants production.
    assert!(slack.requests().is_empty());
    // Every delivery has ended in the ledger (2 delivered, 2 failed): nothing is pending.
    wait_ledger(&s, "\"state\":\"delivered\"", 2);
    wait_ledger(&s, "\"state\":\"failed\"", 2);

    // A restart sends nothing again: the new daemon's first look at Git finds only known changes.
    drop(daemon);
    let d = s.daemon("notify2.log");
    d.wait_log(0, "notifications checked");
    assert!(d.log_text().contains("new=0"), "{}", d.log_text());
    assert_eq!(ok.requests().len(), 2);
    assert_eq!(failing.requests().len(), 10);
}

/// Polls `<state>.notified` until `n` lines contain `needle`.
fn wait_ledger(s: &Setup, needle: &str, n: usize) {
    let path = format!("{}.notified", s.ws.state_str());
    let count = || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    };
    let found = poll(BOUND, || (count() >= n).then_some(()));
    assert!(
        found.is_some(),
        "{} of {n} {needle} lines in {path}",
        count()
    );
}

/// The value of header `name` (lower case) in a request head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

#[test]
fn a_delivery_cut_short_by_a_stop_is_sent_once_more_after_restart_with_the_same_id() {
    let Some(mut s) = setup("serve-notify-resume") else {
        return;
    };
    // Accepts the connection, reads the request and never answers.
    let silent = Receiver::start(200, true);
    let config = s.ws.join("notify.yaml");
    let write_config = |url: String| {
        std::fs::write(
            &config,
            format!("receivers:\n  - name: ops\n    url: {url}\n"),
        )
        .unwrap()
    };
    write_config(silent.url());
    s.args
        .extend(["--notify-config".into(), config.display().to_string()]);
    let daemon = s.daemon("resume1.log");
    let tag1 = "develop-v1.0.0-a1b2c3d-1738860000";
    s.reg.push("org/backend", tag1);
    s.wait_develop(tag1);
    silent.wait_count(1);
    let (head, body) = silent.requests()[0].clone();
    let id = header(&head, "x-ferry-event-id").expect("an event id header");
    let first: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(first["id"], id.as_str());
    assert_eq!(first["new"]["tag"], tag1);
    // Recorded as pending before it was sent; the kill cuts the delivery short.
    wait_ledger(&s, "\"state\":\"pending\"", 1);
    drop(daemon);

    // Restarted with a receiver that answers (same name, new URL): sent once more, same id.
    let good = Receiver::start(200, false);
    write_config(good.url());
    let d = s.daemon("resume2.log");
    good.wait_count(1);
    wait_ledger(&s, "\"state\":\"delivered\"", 1);
    d.wait_log(0, "notifications checked");
    let got = good.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(header(&got[0].0, "x-ferry-event-id"), Some(id));
    let again: serde_json::Value = serde_json::from_slice(&got[0].1).unwrap();
    assert_eq!(again, first);
    assert!(d.log_text().contains("new=0"), "{}", d.log_text());

    // Delivered now: a third start sends nothing.
    drop(d);
    let d = s.daemon("resume3.log");
    d.wait_log(0, "notifications checked");
    assert!(d.log_text().contains("new=0"), "{}", d.log_text());
    assert_eq!(good.requests().len(), 1);
    assert_eq!(silent.requests().len(), 1);
}

#[test]
fn a_bad_notify_config_is_refused_naming_the_file() {
    let Some(s) = setup("serve-badnotify") else {
        return;
    };
    let file = s.ws.join("notify.yaml");
    std::fs::write(
        &file,
        "receivers:\n  - name: a\n    url: ftp://127.0.0.1/x\n",
    )
    .unwrap();
    let mut argv = s.args.clone();
    argv.extend(["--notify-config".into(), file.display().to_string()]);
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let r = ferry(&args);
    r.expect_code(2);
    assert!(
        r.stderr.contains("notify.yaml") && r.stderr.contains("url must be http"),
        "{}",
        r.stderr
    );
}
