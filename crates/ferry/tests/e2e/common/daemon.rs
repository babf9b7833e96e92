//! `ferry serve` under test: a registry sending push notifications, the daemon process, a raw
//! HTTP client, the seed pushed to the real git server (shared by serve.rs and dashboard.rs).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;
use ferry_testbed::git::{GitEnv, git_servers};

pub const BOUND: Duration = Duration::from_secs(30);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A registry started by `testbed/registry-notify.sh`, stopped on drop.
pub struct NotifyRegistry {
    pub name: String,
    pub url: String,
    pub host: String,
}

impl NotifyRegistry {
    pub fn start(notify_port: u16, secret_file: &Path) -> Option<NotifyRegistry> {
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

    pub fn push(&self, repo: &str, tag: &str) {
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
pub fn http(
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
pub fn metric(port: u16, name: &str, filters: &[&str]) -> f64 {
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
pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
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
pub struct Daemon {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(args: &[String], port: u16, log: PathBuf) -> Daemon {
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

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
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
    pub fn wait(&mut self) -> Option<i32> {
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
    pub fn wait_log(&self, from: usize, needle: &str) -> usize {
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

pub struct Setup {
    pub ws: Workspace,
    pub git: GitEnv,
    pub repo: String,
    pub reg: NotifyRegistry,
    pub port: u16,
    pub secret: String,
    pub args: Vec<String>,
}

/// Seed layout from `ferry init` pushed to a fresh repo of the real git server; the automations
/// push over HTTP with Basic auth; the daemon reads the objects from the same repo.
pub fn setup(prefix: &str) -> Option<Setup> {
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
pub type BadRequest<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16);

pub const DEVELOP: &str = "flux/apps/backend/develop/deployment.yaml";

impl Setup {
    pub fn daemon(&self, log: &str) -> Daemon {
        Daemon::start(&self.args, self.port, self.ws.join(log))
    }
    pub fn develop_file(&self) -> String {
        remote_file(&self.git, &self.repo, DEVELOP)
    }
    pub fn wait_develop(&self, tag: &str) {
        let found = poll(BOUND, || self.develop_file().contains(tag).then_some(()));
        assert!(
            found.is_some(),
            "{tag} never reached {DEVELOP}:\n{}",
            self.develop_file()
        );
    }
    pub fn commits_with(&self, tag: &str) -> usize {
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

/// The digest the registry serves for `repo:tag` (curl HEAD, independent of Ferry).
pub fn registry_digest(host: &str, repo: &str, tag: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-sfI",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
            &format!("http://{host}/v2/{repo}/manifests/{tag}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("docker-content-digest:")
                .map(|d| d.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no digest for {repo}:{tag}"))
}
