//! The seed's layout on a real control plane: Flux's own CRDs accept every object `ferry init`
//! writes (after Flux's `${var}` substitution), and the real `flux get images all -A` shows them.

mod common;

use std::path::Path;
use std::process::Command;

use ferry_testbed::cluster::{ClusterEnv, PrivateCluster};

/// Every folder of the scaffold that holds a kustomization.yaml, except the Flux bootstrap
/// (its Kustomization kind belongs to kustomize-controller, which the test bed does not install).
fn kustomize_dirs(root: &Path) -> Vec<std::path::PathBuf> {
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

/// `kubectl kustomize DIR` with the seed's one substitution, as kustomize-controller's postBuild does.
fn render(c: &ClusterEnv, dir: &Path, registry: &str) -> String {
    let yaml = c.kubectl(&["kustomize", &dir.to_string_lossy()]);
    yaml.replace("${image_registry}", registry)
}

fn apply(c: &ClusterEnv, yaml: &str, what: &str) {
    let mut child = Command::new(&c.kubectl)
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["apply", "--server-side", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl apply");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write manifest");
    let out = child.wait_with_output().expect("kubectl apply");
    assert!(
        out.status.success(),
        "Flux's CRDs refused {what}:\n{}\n{yaml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn flux_crds_accept_the_seed_layout_and_flux_get_shows_it() {
    let Some(cluster) = PrivateCluster::start(&format!("seed-{}", std::process::id())) else {
        return;
    };
    let c = &cluster.env;
    c.install_flux_image_crds();
    // `flux bootstrap` creates flux-system; the scaffold's objects live in it.
    c.kubectl(&["create", "namespace", "flux-system"]);
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

    let dirs = kustomize_dirs(&dir.path().join("flux"));
    assert!(dirs.len() >= 7, "scaffold folders: {dirs:?}");
    // Namespaces first (the infrastructure folder holds them), then every environment.
    let (infra, apps): (Vec<_>, Vec<_>) = dirs
        .iter()
        .partition(|d| d.to_string_lossy().contains("infrastructure"));
    for d in infra.iter().chain(apps.iter()) {
        let yaml = render(c, d, registry);
        assert!(
            !yaml.contains("${"),
            "unsubstituted variable in {}",
            d.display()
        );
        apply(c, &yaml, &d.display().to_string());
    }

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
