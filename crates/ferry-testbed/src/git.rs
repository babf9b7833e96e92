//! Real git servers (file://, lighttpd + git-http-backend over http and https, sshd, git daemon)
//! started once per test process with `testbed/gitserver.sh start all --auth basic --tls`.
//!
//! The servers are shared by every test process (the script reuses running servers and
//! serializes concurrent calls with a lock) and are left running; `gitserver.sh stop` ends them.
//! Each test makes its own bare repo with [`GitEnv::new_repo`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

/// Where a test finds the git servers. Built from `$TESTBED_DIR/git.env`.
#[derive(Debug, Clone)]
pub struct GitEnv {
    /// Directory of bare repos served by every transport.
    pub root: PathBuf,
    /// `file://<root>`.
    pub file_url: String,
    /// `http://127.0.0.1:P/git` (Basic auth required).
    pub http_url: String,
    /// `https://127.0.0.1:P/git` (Basic auth required; certificate from [`GitEnv::ca`]).
    pub https_url: String,
    /// The private CA that signed the https server's certificate.
    pub ca: PathBuf,
    /// Basic-auth user.
    pub user: String,
    /// Basic-auth password.
    pub password: String,
    /// A read-only Basic-auth user of the http server: fetches work, pushes get 401.
    pub reader_user: String,
    /// Its password.
    pub reader_password: String,
    /// `ssh://<user>@127.0.0.1:P<root>`.
    pub ssh_url: String,
    /// Client private key (ed25519, no passphrase) accepted by sshd.
    pub ssh_key: PathBuf,
    /// known_hosts line for the sshd.
    pub known_hosts: PathBuf,
    /// `git://127.0.0.1:P` (push enabled).
    pub daemon_url: String,
    /// The git daemon's log (`--verbose`: one `Request upload-pack for '/REPO'` line per fetch
    /// or clone, `Request receive-pack` per push).
    pub daemon_log: PathBuf,
    /// The testbed state directory.
    pub testbed_dir: PathBuf,
    script: PathBuf,
}

/// The testbed state directory: `$TESTBED_DIR`, default `/tmp/ferry-testbed`.
pub fn testbed_dir() -> PathBuf {
    std::env::var_os("TESTBED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/ferry-testbed"))
}

/// Starts (or reuses) the git servers once per process.
///
/// Returns `None` after printing `SKIP: ...` when they cannot be started outside CI; panics
/// under `CI=true`, so a broken testbed never passes as green.
pub fn git_servers() -> Option<GitEnv> {
    static ENV: OnceLock<Result<GitEnv, String>> = OnceLock::new();
    match ENV.get_or_init(|| start().map_err(|e| format!("{e:#}"))) {
        Ok(env) => Some(env.clone()),
        Err(msg) => {
            let msg = format!("git testbed unavailable: {msg}");
            if crate::in_ci() {
                panic!("{msg}");
            }
            eprintln!("SKIP: {msg}");
            None
        }
    }
}

fn start() -> Result<GitEnv> {
    let script = crate::workspace_root().join("testbed/gitserver.sh");
    if !script.is_file() {
        bail!("{} not found", script.display());
    }
    let dir = testbed_dir();
    let out = Command::new("bash")
        .arg(&script)
        .args(["start", "all", "--auth", "basic", "--tls"])
        .env("TESTBED_DIR", &dir)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} start failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let env_path = dir.join("git.env");
    let text = std::fs::read_to_string(&env_path)
        .with_context(|| format!("reading {}", env_path.display()))?;
    let vars = parse_env(&text);
    let get = |k: &str| -> Result<String> {
        vars.get(k)
            .filter(|v| !v.is_empty())
            .cloned()
            .with_context(|| format!("{k} missing from {}", env_path.display()))
    };
    Ok(GitEnv {
        root: get("TESTBED_GIT_ROOT")?.into(),
        file_url: get("TESTBED_GIT_FILE_URL")?,
        http_url: get("TESTBED_GIT_HTTP_URL")?,
        https_url: get("TESTBED_GIT_HTTPS_URL")?,
        ca: get("TESTBED_GIT_HTTP_CA")?.into(),
        user: get("TESTBED_GIT_HTTP_USER")?,
        password: get("TESTBED_GIT_HTTP_PASSWORD")?,
        reader_user: get("TESTBED_GIT_HTTP_READER_USER")?,
        reader_password: get("TESTBED_GIT_HTTP_READER_PASSWORD")?,
        ssh_url: get("TESTBED_GIT_SSH_URL")?,
        ssh_key: get("TESTBED_GIT_SSH_KEY")?.into(),
        known_hosts: get("TESTBED_GIT_SSH_KNOWN_HOSTS")?.into(),
        daemon_url: get("TESTBED_GIT_DAEMON_URL")?,
        daemon_log: get("TESTBED_GIT_DAEMON_LOG")?.into(),
        testbed_dir: dir,
        script,
    })
}

/// Parses `export KEY='value'` lines.
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect()
}

impl GitEnv {
    /// Creates a fresh bare repo with a unique name starting with `prefix` (seeded with one
    /// commit on `main` when `seed`), and returns its name including `.git`.
    pub fn new_repo(&self, prefix: &str, seed: bool) -> Result<String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut cmd = Command::new("bash");
        cmd.arg(&self.script)
            .args(["repo", &name])
            .env("TESTBED_DIR", &self.testbed_dir);
        if seed {
            cmd.arg("--seed");
        }
        let out = cmd.output().context("running gitserver.sh repo")?;
        if !out.status.success() {
            bail!(
                "gitserver.sh repo {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(format!("{name}.git"))
    }

    /// Path of a bare repo on disk.
    pub fn repo_path(&self, repo: &str) -> PathBuf {
        self.root.join(repo)
    }

    /// `file://` URL of a repo.
    pub fn file(&self, repo: &str) -> String {
        format!("{}/{repo}", self.file_url)
    }

    /// Plain-HTTP URL of a repo (needs Basic auth).
    pub fn http(&self, repo: &str) -> String {
        format!("{}/{repo}", self.http_url)
    }

    /// HTTPS URL of a repo (needs Basic auth and [`GitEnv::ca`]).
    pub fn https(&self, repo: &str) -> String {
        format!("{}/{repo}", self.https_url)
    }

    /// SSH URL of a repo.
    pub fn ssh(&self, repo: &str) -> String {
        format!("{}/{repo}", self.ssh_url)
    }

    /// git:// URL of a repo.
    pub fn daemon(&self, repo: &str) -> String {
        format!("{}/{repo}", self.daemon_url)
    }

    /// How many fetches and clones of `repo` the git daemon has served so far (from its
    /// `--verbose` log).
    pub fn daemon_fetches(&self, repo: &str) -> usize {
        let needle = format!("Request upload-pack for '/{repo}'");
        std::fs::read_to_string(&self.daemon_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// Runs plain `git` with the arguments in `dir` (test helper; isolated from user config).
    pub fn git(&self, dir: &Path, args: &[&str]) -> Result<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "human")
            .env("GIT_AUTHOR_EMAIL", "human@example.invalid")
            .env("GIT_COMMITTER_NAME", "human")
            .env("GIT_COMMITTER_EMAIL", "human@example.invalid")
            .output()
            .with_context(|| format!("git {args:?}"))?;
        if !out.status.success() {
            bail!(
                "git {args:?} in {} failed: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}
