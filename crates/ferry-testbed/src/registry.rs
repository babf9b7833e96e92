//! Real `docker-registry` instances (no auth, Basic, token; HTTP or TLS) for tests.
//!
//! Each variant is started once per test process through `testbed/registry.sh` (under `flock`,
//! since test binaries run in parallel) and reused; the script itself reuses a server that is
//! already running with the same options. Servers stay up after the tests for the next run; stop
//! them with `bash testbed/registry.sh stop --name NAME`. State lives under `$TESTBED_DIR`
//! (default `/tmp/ferry-testbed`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use crate::{in_ci, workspace_root};

/// Registry authentication mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Auth {
    None,
    /// htpasswd Basic auth.
    Basic,
    /// Docker token auth through `testbed/token_issuer.py`.
    Token,
}

impl Auth {
    fn flag(self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Basic => "basic",
            Auth::Token => "token",
        }
    }
}

/// A running registry, as described by its env file.
#[derive(Clone)]
pub struct RegistryEnv {
    pub name: String,
    pub auth: Auth,
    pub tls: bool,
    /// `http://127.0.0.1:PORT` or `https://...`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub host: String,
    pub port: u16,
    /// CA certificate (PEM) with `--tls`.
    pub ca: Option<PathBuf>,
    /// Directory with `ca.crt` for skopeo `--cert-dir`.
    pub cert_dir: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Pull-only user (token auth), same password.
    pub readonly_user: Option<String>,
    /// JSON lines, one per token request (token auth).
    pub token_requests: Option<PathBuf>,
    pub log: PathBuf,
    pub skopeo_flags: Vec<String>,
    pub skopeo_copy_flags: Vec<String>,
    /// Raw KEY=VALUE pairs of the env file.
    pub vars: HashMap<String, String>,
}

impl std::fmt::Debug for RegistryEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryEnv")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// Path of a test-bed script.
pub fn script(name: &str) -> PathBuf {
    workspace_root().join("testbed").join(name)
}

/// `$TESTBED_DIR` or `/tmp/ferry-testbed`.
pub fn testbed_dir() -> PathBuf {
    std::env::var_os("TESTBED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/ferry-testbed"))
}

/// Parses `export KEY='VALUE'` lines.
pub fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim().strip_prefix("export ")?;
            let (k, v) = line.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

impl RegistryEnv {
    fn from_vars(vars: HashMap<String, String>, auth: Auth, tls: bool) -> Result<Self, String> {
        let get = |k: &str| vars.get(k).cloned().filter(|v| !v.is_empty());
        let need = |k: &str| get(k).ok_or_else(|| format!("env file lacks {k}"));
        let split = |k: &str| -> Vec<String> {
            get(k)
                .map(|v| v.split_whitespace().map(String::from).collect())
                .unwrap_or_default()
        };
        Ok(RegistryEnv {
            name: need("TESTBED_REGISTRY_NAME")?,
            auth,
            tls,
            url: need("TESTBED_REGISTRY_URL")?,
            host: need("TESTBED_REGISTRY_HOST")?,
            port: need("TESTBED_REGISTRY_PORT")?
                .parse()
                .map_err(|e| format!("bad TESTBED_REGISTRY_PORT: {e}"))?,
            ca: get("TESTBED_REGISTRY_CA").map(PathBuf::from),
            cert_dir: get("TESTBED_REGISTRY_CERT_DIR").map(PathBuf::from),
            user: get("TESTBED_REGISTRY_USER"),
            password: get("TESTBED_REGISTRY_PASSWORD"),
            readonly_user: get("TESTBED_REGISTRY_READONLY_USER"),
            token_requests: get("TESTBED_REGISTRY_TOKEN_REQUESTS").map(PathBuf::from),
            log: PathBuf::from(need("TESTBED_REGISTRY_LOG")?),
            skopeo_flags: split("TESTBED_REGISTRY_SKOPEO_FLAGS"),
            skopeo_copy_flags: split("TESTBED_REGISTRY_SKOPEO_COPY_FLAGS"),
            vars,
        })
    }

    /// The CA PEM bytes (TLS variants).
    pub fn ca_pem(&self) -> Option<Vec<u8>> {
        self.ca.as_ref().and_then(|p| std::fs::read(p).ok())
    }

    /// `127.0.0.1:PORT/repo`, an ImageRepository `spec.image`.
    pub fn image(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host)
    }

    fn ocipush(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("python3");
        cmd.arg(script("ocipush.py")).args(args);
        cmd.env_remove("TESTBED_REGISTRY_USER")
            .env_remove("TESTBED_REGISTRY_PASSWORD")
            .env_remove("TESTBED_REGISTRY_CA");
        if let (Some(u), Some(p)) = (&self.user, &self.password) {
            cmd.args(["--user", u, "--password", p]);
        }
        if let Some(ca) = &self.ca {
            cmd.arg("--cacert").arg(ca);
        }
        let out = run(&mut cmd);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Pushes a one-layer OCI image; returns its manifest digest.
    pub fn push_image(&self, repo: &str, tag: &str) -> String {
        self.ocipush(&["image", &self.url, repo, tag])
    }

    /// Pushes an image whose layer holds `content` (distinct digests per content).
    pub fn push_image_with(&self, repo: &str, tag: &str, content: &str) -> String {
        self.ocipush(&["image", &self.url, repo, tag, "--content", content])
    }

    /// Pushes a two-platform OCI index (children tagged `TAG-linux-amd64`, `TAG-linux-arm64`).
    pub fn push_index(&self, repo: &str, tag: &str) -> String {
        self.ocipush(&["index", &self.url, repo, tag])
    }

    /// Adds `count` tags `{prefix}0..` pointing at `src_tag`'s manifest.
    pub fn push_tags(&self, repo: &str, src_tag: &str, count: usize, prefix: &str) -> String {
        let count = count.to_string();
        self.ocipush(&[
            "tags", &self.url, repo, src_tag, &count, "--prefix", prefix, "--jobs", "4",
        ])
    }

    /// Runs `skopeo SUBCOMMAND [registry flags] ARGS...` and returns stdout (panics on failure).
    pub fn skopeo(&self, subcommand: &str, args: &[&str]) -> String {
        let mut cmd = Command::new("skopeo");
        cmd.arg(subcommand);
        if subcommand == "copy" {
            cmd.args(&self.skopeo_copy_flags);
        } else {
            cmd.args(&self.skopeo_flags);
        }
        cmd.args(args);
        let out = run(&mut cmd);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Token requests logged by the issuer so far (one JSON document per line).
    pub fn token_requests(&self) -> Vec<String> {
        self.token_requests
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| t.lines().map(String::from).collect())
            .unwrap_or_default()
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn start(name: &str, auth: Auth, tls: bool) -> Result<RegistryEnv, String> {
    let dir = testbed_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let lock = dir.join(format!("{name}.start-lock"));
    let mut cmd = Command::new("flock");
    // -o: the servers the script leaves running must not inherit (and so hold) the lock.
    cmd.args(["-o", "-w", "120"])
        .arg(&lock)
        .arg("bash")
        .arg(script("registry.sh"))
        .args(["start", "--auth", auth.flag(), "--name", name])
        .env("TESTBED_DIR", &dir);
    if tls {
        cmd.arg("--tls");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "registry.sh start failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let env_path: &Path = &dir.join(format!("{name}.env"));
    let text = std::fs::read_to_string(env_path)
        .map_err(|e| format!("cannot read {}: {e}", env_path.display()))?;
    RegistryEnv::from_vars(parse_env_file(&text), auth, tls)
}

type Started = HashMap<(Auth, bool), Result<RegistryEnv, String>>;

/// A registry of the given kind, started once per process. Outside CI a failure to start prints
/// `SKIP: ...` and returns `None`; with `CI=true` it panics.
pub fn registry(auth: Auth, tls: bool) -> Option<RegistryEnv> {
    static STARTED: OnceLock<Mutex<Started>> = OnceLock::new();
    let map = STARTED.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    let name = format!("ferry-{}-{}", auth.flag(), if tls { "tls" } else { "http" });
    let result = map
        .entry((auth, tls))
        .or_insert_with(|| start(&name, auth, tls))
        .clone();
    match result {
        Ok(env) => Some(env),
        Err(msg) if in_ci() => panic!("registry {name} did not start under CI: {msg}"),
        Err(msg) => {
            eprintln!("SKIP: registry {name} unavailable: {msg}");
            None
        }
    }
}

/// A repository name unique to this process and call (tests share registries).
pub fn unique_repo(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}/p{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
