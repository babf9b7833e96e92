//! The seed's layout applied to a real control plane, as kustomize-controller would: each
//! kustomization rendered with the server's `kubectl kustomize`, `${image_registry}` substituted
//! (the seed's one postBuild variable), then applied server-side.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ferry_testbed::cluster::ClusterEnv;

/// Every folder of the scaffold under `root` that holds a kustomization.yaml, except the Flux
/// bootstrap (kustomize-controller's own kind, not installed here) and bases (included by overlays).
pub fn kustomize_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "kustomization.yaml")
                && !dir.ends_with("flux-system")
                && !dir.ends_with("base")
            {
                out.push(dir.clone());
            }
        }
    }
    out.sort();
    out
}

/// `kubectl kustomize DIR` with `${image_registry}` substituted.
pub fn render(c: &ClusterEnv, dir: &Path, image_registry: &str) -> String {
    let yaml = c.kubectl(&["kustomize", &dir.to_string_lossy()]);
    yaml.replace("${image_registry}", image_registry)
}

/// `kubectl apply --server-side -f -`; panics with the server's answer on refusal.
pub fn apply(c: &ClusterEnv, yaml: &str, what: &str) {
    let mut child = Command::new(&c.kubectl)
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["apply", "--server-side", "--force-conflicts", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl apply");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write manifest");
    let out = child.wait_with_output().expect("kubectl apply");
    assert!(
        out.status.success(),
        "the API server refused {what}:\n{}\n{yaml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Applies the scaffold under `flux_root` (infrastructure first: it holds the namespaces), after
/// creating flux-system as `flux bootstrap` would.
pub fn apply_seed(c: &ClusterEnv, flux_root: &Path, image_registry: &str) {
    ensure_namespace(c, "flux-system");
    let dirs = kustomize_dirs(flux_root);
    assert!(dirs.len() >= 7, "scaffold folders: {dirs:?}");
    let (infra, apps): (Vec<_>, Vec<_>) = dirs
        .iter()
        .partition(|d| d.to_string_lossy().contains("infrastructure"));
    for d in infra.iter().chain(apps.iter()) {
        let yaml = render(c, d, image_registry);
        assert!(
            !yaml.contains("${"),
            "unsubstituted variable in {}",
            d.display()
        );
        apply(c, &yaml, &d.display().to_string());
    }
}

/// Creates a namespace unless it exists.
pub fn ensure_namespace(c: &ClusterEnv, name: &str) {
    apply(
        c,
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"),
        name,
    );
}
