//! A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) for tests,
//! started through `testbed/cluster.sh` from binaries that `cluster.sh build` made from pinned Go
//! modules. There is no kubelet or scheduler: Deployments get ReplicaSets, Pods stay Pending.
//!
//! [`cluster`] starts one shared control plane per test process (under `flock`, since test
//! binaries run in parallel); it stays up for the next process and `scripts/test.sh` stops it.
//! Tests share it but nothing else: each takes fresh namespaces from [`unique_namespace`].
//! [`PrivateCluster`] starts one of a test's own and stops it when dropped (for tests that stop or
//! restart the API server).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use crate::in_ci;
use crate::registry::{parse_env_file, script, testbed_dir};

/// The shared control plane's name (`$TESTBED_DIR/ferry-cluster.env`).
pub const SHARED_NAME: &str = "ferry-cluster";

/// A running control plane, as described by its env file.
#[derive(Clone, Debug)]
pub struct ClusterEnv {
    pub name: String,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    pub port: u16,
    /// Admin kubeconfig (client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
    /// A kubectl of the server's version.
    pub kubectl: PathBuf,
    /// The real flux CLI.
    pub flux: PathBuf,
    /// `v1.37.2`.
    pub k8s_version: String,
    /// Flux's ImageRepository, ImagePolicy and ImageUpdateAutomation CRD YAML.
    pub flux_crds: PathBuf,
    /// Folder with the component logs.
    pub logs: PathBuf,
    /// Time from start to `/readyz` = ok, in milliseconds.
    pub ready_ms: u64,
    /// Raw KEY=VALUE pairs of the env file.
    pub vars: HashMap<String, String>,
}

impl ClusterEnv {
    fn from_vars(vars: HashMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("env file lacks {k}"))
        };
        let num = |k: &str| -> Result<u64, String> {
            get(k)?.parse().map_err(|e| format!("bad {k}: {e}"))
        };
        Ok(ClusterEnv {
            name: get("TESTBED_CLUSTER_NAME")?,
            url: get("TESTBED_CLUSTER_URL")?,
            port: u16::try_from(num("TESTBED_CLUSTER_PORT")?).map_err(|e| e.to_string())?,
            kubeconfig: get("TESTBED_KUBECONFIG")?.into(),
            kubectl: get("TESTBED_KUBECTL")?.into(),
            flux: get("TESTBED_FLUX")?.into(),
            k8s_version: get("TESTBED_K8S_VERSION")?,
            flux_crds: get("TESTBED_FLUX_CRDS")?.into(),
            logs: get("TESTBED_CLUSTER_LOGS")?.into(),
            ready_ms: num("TESTBED_CLUSTER_READY_MS")?,
            vars,
        })
    }

    /// `kubectl --kubeconfig ADMIN ARGS...`, not checked.
    pub fn kubectl_output(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
    }

    /// `kubectl ARGS...` that must succeed; returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        checked(self.kubectl_output(args), "kubectl", args)
    }

    /// `flux --kubeconfig ADMIN ARGS...`, not checked.
    pub fn flux_output(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.flux);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
    }

    /// Applies Flux's image CRDs and waits until the API serves them.
    pub fn install_flux_image_crds(&self) {
        let dir = self.flux_crds.to_string_lossy().into_owned();
        self.kubectl(&["apply", "--server-side", "-f", &dir]);
        self.kubectl(&[
            "wait",
            "--for",
            "condition=established",
            "--timeout=60s",
            "-f",
            &dir,
        ]);
    }

    /// A kube-rs client with the admin credential.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.kubeconfig.display()));
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .unwrap_or_else(|e| panic!("bad kubeconfig {}: {e}", self.kubeconfig.display()));
        kube::Client::try_from(config).unwrap_or_else(|e| panic!("kube client: {e}"))
    }
}

fn checked(out: Output, program: &str, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cluster.sh ARGS...` with `$TESTBED_DIR` set (the script's own output is returned as is).
pub fn cluster_sh(args: &[&str]) -> Output {
    let dir = testbed_dir();
    let mut cmd = Command::new("bash");
    cmd.arg(script("cluster.sh"))
        .args(args)
        .env("TESTBED_DIR", &dir);
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn start(name: &str) -> Result<ClusterEnv, String> {
    let dir = testbed_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let lock = dir.join(format!("{name}.start-lock"));
    let mut cmd = Command::new("flock");
    // -o: the servers the script leaves running must not inherit (and so hold) the lock.
    cmd.args(["-o", "-w", "300"])
        .arg(&lock)
        .arg("bash")
        .arg(script("cluster.sh"))
        .args(["start", "--name", name])
        .env("TESTBED_DIR", &dir);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cluster.sh start failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    read_env(&dir.join(format!("{name}.env")))
}

fn read_env(path: &Path) -> Result<ClusterEnv, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    ClusterEnv::from_vars(parse_env_file(&text))
}

/// The shared control plane, started once per process. Outside CI a failure to start prints
/// `SKIP: ...` and returns `None`; with `CI=true` it panics.
pub fn cluster() -> Option<ClusterEnv> {
    static STARTED: OnceLock<Mutex<Option<Result<ClusterEnv, String>>>> = OnceLock::new();
    let slot = STARTED.get_or_init(|| Mutex::new(None));
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    let result = slot.get_or_insert_with(|| start(SHARED_NAME)).clone();
    unavailable_is_skip(SHARED_NAME, result)
}

fn unavailable_is_skip(name: &str, result: Result<ClusterEnv, String>) -> Option<ClusterEnv> {
    match result {
        Ok(env) => Some(env),
        Err(msg) if in_ci() => panic!("control plane {name} did not start under CI: {msg}"),
        Err(msg) => {
            eprintln!("SKIP: control plane {name} unavailable: {msg}");
            None
        }
    }
}

/// A control plane of one test's own, stopped (by pid, through `cluster.sh stop`) when dropped.
pub struct PrivateCluster {
    pub env: ClusterEnv,
}

impl PrivateCluster {
    /// Starts a control plane named `name` (unique per test). `None` means skip (outside CI).
    pub fn start(name: &str) -> Option<PrivateCluster> {
        unavailable_is_skip(name, start(name)).map(|env| PrivateCluster { env })
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let out = cluster_sh(&["stop", "--name", &self.env.name]);
        if !out.status.success() {
            eprintln!(
                "cluster.sh stop --name {} failed: {}",
                self.env.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A namespace name unique to this process and call (RFC 1123 label).
pub fn unique_namespace(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

impl ClusterEnv {
    /// Stops kube-apiserver and starts it again on the same port (etcd keeps the data).
    pub fn restart_apiserver(&self) {
        let out = cluster_sh(&["restart-apiserver", "--name", &self.name]);
        assert!(
            out.status.success(),
            "cluster.sh restart-apiserver failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
