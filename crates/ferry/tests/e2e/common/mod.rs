//! Shared helpers for the `ferry` binary's end-to-end tests: temp workspaces, running the real
//! binary with a timeout, writing object trees and Secrets, the seed layout through `ferry init`,
//! and git helpers over the real servers of `ferry-testbed`.
//!
//! Every helper is generic: tests own their own state file, cache dir, repos and registry names.
#![allow(dead_code)]

pub mod cluster;
pub mod daemon;
pub mod receiver;
pub mod webdriver;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ferry_testbed::git::GitEnv;
use ferry_testbed::registry::RegistryEnv;

/// Bound on any single `ferry` run in a test.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// The ferry binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferry"))
}

/// The output of one process run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code; `None` when killed by a signal (or by the timeout).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub args: Vec<String>,
}

impl Run {
    /// stdout and stderr together, for greps.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "ferry {:?} exited {:?}, expected {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics when `secret` appears anywhere in the output.
    #[track_caller]
    pub fn assert_no_secret(&self, secret: &str) -> &Run {
        assert!(!secret.is_empty());
        assert!(
            !self.all().contains(secret),
            "credential leaked in the output of ferry {:?}:\n{}",
            self.args,
            self.all()
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of {:?} is not JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }
}

/// Waits for `child` at most `timeout`, killing it after; collects stdout/stderr on threads so a
/// full pipe never blocks the child.
pub fn wait_with_timeout(mut child: Child, timeout: Duration, args: Vec<String>) -> Run {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
        s
    });
    let deadline = Instant::now() + timeout;
    let status: Option<ExitStatus> = loop {
        match child.try_wait().unwrap() {
            Some(s) => break Some(s),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
    if status.is_none() {
        panic!(
            "ferry {args:?} timed out after {timeout:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
    }
    Run {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
        args,
    }
}

/// A `ferry` command with a clean environment: no user docker config, no user git config, no
/// inherited FERRY_* variables.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("FERRY_LOG")
        .env_remove("FERRY_STATE")
        .env_remove("FERRY_SECRETS_DIR")
        .env_remove("FERRY_CACHE_DIR")
        .env("DOCKER_CONFIG", "/nonexistent-ferry-test-docker-config")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `ferry ARGS` to completion (bounded by [`RUN_TIMEOUT`]).
pub fn ferry(args: &[&str]) -> Run {
    let start = Instant::now();
    let child = command(args).spawn().unwrap();
    let run = wait_with_timeout(
        child,
        RUN_TIMEOUT,
        args.iter().map(|s| s.to_string()).collect(),
    );
    // Shown by the test harness on failure (or with --nocapture): what ran, how it ended, how long.
    eprintln!(
        "ferry {args:?} -> {:?} in {:.2?}",
        run.code,
        start.elapsed()
    );
    run
}

/// A temporary workspace for one test: its own state file, clone cache, secrets dir and trees.
pub struct Workspace {
    pub tmp: tempfile::TempDir,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            tmp: tempfile::Builder::new()
                .prefix("ferry-e2e-")
                .tempdir()
                .unwrap(),
        }
    }
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }
    /// The state database of this workspace (not created until ferry creates it).
    pub fn state(&self) -> PathBuf {
        self.join("state.db")
    }
    pub fn state_str(&self) -> String {
        self.state().to_string_lossy().into_owned()
    }
    pub fn cache(&self) -> PathBuf {
        self.join("cache")
    }
    pub fn cache_str(&self) -> String {
        self.cache().to_string_lossy().into_owned()
    }
    pub fn secrets(&self) -> PathBuf {
        self.join("secrets")
    }
    pub fn secrets_str(&self) -> String {
        self.secrets().to_string_lossy().into_owned()
    }
    /// Writes `DIR/<ns>/<name>/<key>` files, as a mounted Kubernetes Secret.
    pub fn secret(&self, ns: &str, name: &str, keys: &[(&str, &[u8])]) {
        let dir = self.secrets().join(ns).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (k, v) in keys {
            std::fs::write(dir.join(k), v).unwrap();
        }
    }
    /// `ferry ARGS --state <this workspace's state>`.
    pub fn ferry(&self, args: &[&str]) -> Run {
        let state = self.state_str();
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--state", &state]);
        ferry(&full)
    }
    /// `ferry get images KIND -A -o json` parsed.
    pub fn get_json(&self, kind: &str) -> serde_json::Value {
        let r = self.ferry(&["get", "images", kind, "-A", "-o", "json"]);
        r.expect_code(0);
        r.json()
    }
    /// The JSON object of `ns/name` in `get images KIND -A -o json`.
    pub fn object(&self, kind: &str, ns: &str, name: &str) -> serde_json::Value {
        let all = self.get_json(kind);
        all.as_array()
            .unwrap()
            .iter()
            .find(|o| o["namespace"] == ns && o["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{kind} {ns}/{name} not in {all:#}"))
    }
    /// `latestRef` of a policy as `name:tag[@digest]`.
    pub fn latest(&self, ns: &str, name: &str) -> Option<String> {
        let o = self.object("policy", ns, name);
        let l = o.get("latestRef")?;
        let mut s = format!("{}:{}", l["name"].as_str()?, l["tag"].as_str()?);
        if let Some(d) = l.get("digest").and_then(|d| d.as_str()) {
            s.push('@');
            s.push_str(d);
        }
        Some(s)
    }
}

/// Writes `(relative path, content)` files under `root`, creating directories.
pub fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (rel, content) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

/// A `.dockerconfigjson` for one registry host.
pub fn dockerconfigjson(host: &str, user: &str, password: &str) -> Vec<u8> {
    use base64_like::encode;
    serde_json::json!({
        "auths": { host: { "username": user, "password": password, "auth": encode(&format!("{user}:{password}")) } }
    })
    .to_string()
    .into_bytes()
}

/// Minimal base64 (standard alphabet, padded) so tests need no extra crate.
mod base64_like {
    pub fn encode(s: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = s.as_bytes();
        let mut out = String::new();
        for chunk in b.chunks(3) {
            let n = (chunk[0] as u32) << 16
                | (*chunk.get(1).unwrap_or(&0) as u32) << 8
                | *chunk.get(2).unwrap_or(&0) as u32;
            out.push(T[(n >> 18) as usize & 63] as char);
            out.push(T[(n >> 12) as usize & 63] as char);
            out.push(if chunk.len() > 1 {
                T[(n >> 6) as usize & 63] as char
            } else {
                '='
            });
            out.push(if chunk.len() > 2 {
                T[n as usize & 63] as char
            } else {
                '='
            });
        }
        out
    }
}

/// An ImageRepository document.
pub fn image_repository(ns: &str, name: &str, image: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  image: {image}\n  interval: 1m0s\n{extra_spec}"
    )
}

/// An ImagePolicy document; `policy` is the YAML under `spec:` after imageRepositoryRef.
pub fn image_policy(ns: &str, name: &str, repo_ns: &str, repo: &str, policy: &str) -> String {
    format!(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  imageRepositoryRef:\n    name: {repo}\n    namespace: {repo_ns}\n{policy}"
    )
}

/// The seed's policy spec for environment `env` (`develop`, `staging`, `production`).
pub fn seed_policy_spec(env: &str) -> String {
    format!(
        "  filterTags:\n    pattern: '^{env}-v[0-9]+\\.[0-9]+\\.[0-9]+-[a-f0-9]+-(?P<ts>[0-9]+)$'\n    extract: '$ts'\n  policy:\n    numerical:\n      order: asc\n"
    )
}

/// A Namespace document with one label.
pub fn namespace(name: &str, key: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    {key}: {value}\n"
    )
}

/// Joins documents into one multi-document file.
pub fn docs(parts: &[String]) -> String {
    parts.join("---\n")
}

/// Unique names for registry repositories.
pub fn unique(prefix: &str) -> String {
    ferry_testbed::registry::unique_repo(prefix)
}

/// `ferry init DIR --app backend --app frontend --registry REG --git-url URL [extra]`; panics on
/// failure. Returns the files it wrote (relative).
pub fn init_seed(dir: &Path, registry: &str, git_url: &str, extra: &[&str]) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    let mut args = vec![
        "init",
        &d,
        "--app",
        "backend",
        "--app",
        "frontend",
        "--registry",
        registry,
        "--git-url",
        git_url,
    ];
    args.extend_from_slice(extra);
    let r = ferry(&args);
    r.expect_code(0);
    r.stdout.lines().map(String::from).collect()
}

/// Pushes a one-layer image with distinct content per tag; returns its digest.
pub fn push(reg: &RegistryEnv, repo: &str, tag: &str) -> String {
    reg.push_image_with(repo, tag, &format!("{repo} {tag}"))
}

/// The digest skopeo reports for `repo:tag`.
pub fn skopeo_digest(reg: &RegistryEnv, repo: &str, tag: &str) -> String {
    let out = reg.skopeo("inspect", &[&format!("docker://{}:{tag}", reg.image(repo))]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

// ---------- git ----------

/// Runs plain git (isolated from user config) in `dir`; panics on failure; returns trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A git command isolated from user/system config, with a human identity.
pub fn git_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "human")
        .env("GIT_AUTHOR_EMAIL", "human@example.invalid")
        .env("GIT_COMMITTER_NAME", "human")
        .env("GIT_COMMITTER_EMAIL", "human@example.invalid");
    cmd
}

/// Makes `dir` a repo with everything committed on `main` and pushes it to the bare `repo` of
/// the testbed (over file://).
pub fn push_tree(env: &GitEnv, repo: &str, dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "initial layout"]);
    git(dir, &["push", "-q", &env.file(repo), "HEAD:main"]);
}

/// A fresh clone of `repo`'s `main` (over file://) in a new temp dir.
pub fn clone(env: &GitEnv, repo: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(
        dir.path(),
        &["clone", "-q", "-b", "main", &env.file(repo), "."],
    );
    dir
}

/// The bytes of `path` at the tip of `main` in the bare repo.
pub fn remote_file(env: &GitEnv, repo: &str, path: &str) -> String {
    let gd = env.repo_path(repo);
    git(
        Path::new("/"),
        &[
            "--git-dir",
            gd.to_str().unwrap(),
            "show",
            &format!("main:{path}"),
        ],
    )
}

/// The tip of `main` in the bare repo.
pub fn remote_head(env: &GitEnv, repo: &str) -> String {
    let gd = env.repo_path(repo);
    git(
        Path::new("/"),
        &["--git-dir", gd.to_str().unwrap(), "rev-parse", "main"],
    )
}

/// `git log` of main in the bare repo with a format.
pub fn remote_log(env: &GitEnv, repo: &str, format: &str) -> String {
    let gd = env.repo_path(repo);
    git(
        Path::new("/"),
        &[
            "--git-dir",
            gd.to_str().unwrap(),
            "log",
            &format!("--format={format}"),
            "main",
        ],
    )
}

/// Polls `f` every 20 ms until it returns `Some`, at most `timeout`.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every regular file under `root` with its bytes (relative paths), skipping `.git`.
pub fn snapshot(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

/// The bytes of the state file, or `None` when it does not exist.
pub fn file_bytes(p: &Path) -> Option<Vec<u8>> {
    std::fs::read(p).ok()
}

// ---------- a seed-like GitOps repo for reconcile tests ----------

/// The tags a seed-like registry holds for each app: develop-*, staging-*, the placeholder
/// production tag `ferry init` writes (so production resolves and stays unchanged), a <sha> tag and
/// a cosign-style `.sig` tag.
pub const SEED_PUBLISH: &[&str] = &[
    "develop-v0.0.1-a1b2c3d-1738860000",
    "develop-v0.0.2-b2c3d4e-1738863000",
    "staging-v0.0.1-a1b2c3d-1738860123",
    "production-v0.0.0-0000000-0",
    "b2c3d4e",
    "sha256-b2c3d4e.sig",
];
pub const NEW_DEVELOP: &str = "develop-v0.0.2-b2c3d4e-1738863000";
pub const NEW_STAGING: &str = "staging-v0.0.1-a1b2c3d-1738860123";
pub const PLACEHOLDER_DEVELOP: &str = "develop-v0.0.0-0000000-0";
pub const PLACEHOLDER_STAGING: &str = "staging-v0.0.0-0000000-0";

/// A seed-like GitOps repo in a bare repo of the git testbed, scaffolded by `ferry init`.
pub struct Seed {
    pub ws: Workspace,
    /// Bare repo name (with `.git`).
    pub repo: String,
    /// `HOST:PORT/org`, the `image_registry` variable.
    pub image_registry: String,
    /// The files as `ferry init` wrote them (relative to the repo root).
    pub initial: std::collections::BTreeMap<String, Vec<u8>>,
    pub git: GitEnv,
}

impl Seed {
    /// Publishes [`SEED_PUBLISH`] for backend and frontend under a unique org, scaffolds the seed
    /// layout whose GitRepository points at `git_url(repo)` (with `git_secret` as its secretRef)
    /// and pushes it to a new bare repo over file://.
    pub fn new(
        reg: &RegistryEnv,
        git: &GitEnv,
        prefix: &str,
        git_url: impl Fn(&GitEnv, &str) -> String,
        git_secret: Option<&str>,
    ) -> Seed {
        let ws = Workspace::new();
        let org = unique(prefix);
        for app in ["backend", "frontend"] {
            for tag in SEED_PUBLISH {
                push(reg, &format!("{org}/{app}"), tag);
            }
        }
        let image_registry = format!("{}/{org}", reg.host);
        let repo = git.new_repo(prefix, false).unwrap();
        let url = git_url(git, &repo);
        let tree = ws.join("seed");
        let mut extra = vec![];
        if let Some(s) = git_secret {
            extra = vec!["--git-secret", s];
        }
        init_seed(&tree, &image_registry, &url, &extra);
        let initial = snapshot(&tree);
        push_tree(git, &repo, &tree);
        Seed {
            ws,
            repo,
            image_registry,
            initial,
            git: git.clone(),
        }
    }

    /// A seed whose GitRepository uses the http server with Basic auth from the Secret
    /// `flux-system/git-credentials` (Flux's GitRepository accepts http(s) and ssh URLs only),
    /// with that Secret in the workspace's secrets dir for Ferry's CLI.
    pub fn with_http_credentials(reg: &RegistryEnv, git: &GitEnv, prefix: &str) -> Seed {
        let seed = Seed::new(reg, git, prefix, |g, r| g.http(r), Some("git-credentials"));
        seed.ws.secret(
            "flux-system",
            "git-credentials",
            &[
                ("username", git.user.as_bytes()),
                ("password", git.password.as_bytes()),
            ],
        );
        seed
    }

    /// The registry organisation of this seed (`image_registry` without the host).
    pub fn org(&self) -> &str {
        self.image_registry
            .split_once('/')
            .map(|(_, o)| o)
            .unwrap_or_default()
    }

    /// The common flags of `ferry reconcile`/`scan` for this seed (objects read from the repo
    /// over file://).
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--repo".into(),
            self.git.file(&self.repo),
            "--ref".into(),
            "main".into(),
            "--path".into(),
            "flux".into(),
            "--var".into(),
            format!("image_registry={}", self.image_registry),
            "--secrets-dir".into(),
            self.ws.secrets_str(),
            "--cache-dir".into(),
            self.ws.cache_str(),
        ]
    }

    /// `ferry reconcile <flags> [extra]` with this seed's state.
    pub fn reconcile(&self, extra: &[&str]) -> Run {
        let flags = self.flags();
        let mut args: Vec<&str> = vec!["reconcile"];
        args.extend(flags.iter().map(String::as_str));
        args.extend_from_slice(extra);
        self.ws.ferry(&args)
    }

    /// A human commit on main editing one file (clone over file://, edit, commit, push).
    pub fn human_edit(&self, path: &str, edit: impl Fn(&str) -> String, message: &str) {
        let dir = clone(&self.git, &self.repo);
        let p = dir.path().join(path);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, edit(&text)).unwrap();
        git(dir.path(), &["commit", "-q", "-am", message]);
        git(dir.path(), &["push", "-q", "origin", "HEAD:main"]);
    }

    /// The initial bytes of a file with `from` replaced by `to` (what a byte-exact setter edit
    /// must produce).
    pub fn expected(&self, path: &str, from: &str, to: &str) -> String {
        let s = String::from_utf8(self.initial[path].clone()).unwrap();
        assert!(s.contains(from), "{path} lacks {from}");
        s.replace(from, to)
    }

    /// Asserts the remote holds the develop and staging updates for both apps, byte-exact, and
    /// production untouched.
    pub fn assert_develop_and_staging_updated(&self) {
        let ir = &self.image_registry;
        for (env, from, to) in [
            ("develop", PLACEHOLDER_DEVELOP, NEW_DEVELOP),
            ("staging", PLACEHOLDER_STAGING, NEW_STAGING),
        ] {
            let path = format!("flux/apps/backend/{env}/deployment.yaml");
            let got = remote_file(&self.git, &self.repo, &path);
            let want = self.expected(&path, from, to);
            assert_eq!(got.trim_end(), want.trim_end(), "{path}");
            assert!(got.contains(&format!(
                "image: {ir}/backend:{to} # {{\"$imagepolicy\": \"{env}:backend\"}}"
            )));
            let path = format!("flux/apps/frontend/overlays/{env}/kustomization.yaml");
            let got = remote_file(&self.git, &self.repo, &path);
            let want = self.expected(&path, from, to);
            assert_eq!(got.trim_end(), want.trim_end(), "{path}");
        }
        for path in [
            "flux/apps/backend/production/deployment.yaml",
            "flux/apps/frontend/overlays/production/kustomization.yaml",
        ] {
            let got = remote_file(&self.git, &self.repo, path);
            assert_eq!(
                got.trim_end(),
                String::from_utf8_lossy(&self.initial[path]).trim_end(),
                "{path}"
            );
        }
        // Machine-readable trailers on the commits.
        let trailers = remote_log(&self.git, &self.repo, "%(trailers)");
        let want = format!(
            "Ferry-Change: policy=develop/backend setter=develop:backend old={ir}/backend:{PLACEHOLDER_DEVELOP} new={ir}/backend:{NEW_DEVELOP}"
        );
        assert!(trailers.contains(&want), "missing {want:?} in\n{trailers}");
        let want = format!(
            "Ferry-Change: policy=staging/frontend setter=staging:frontend:tag old={PLACEHOLDER_STAGING} new={NEW_STAGING}"
        );
        assert!(trailers.contains(&want), "missing {want:?} in\n{trailers}");
        assert!(
            trailers.contains("Ferry-Automation: develop/backend"),
            "{trailers}"
        );
        assert!(trailers.contains("Ferry-Kind: automation"), "{trailers}");
    }
}
