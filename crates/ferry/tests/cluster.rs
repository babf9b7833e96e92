//! The seed's layout on a real control plane: Flux's own CRDs accept every object `ferry init`
//! writes (after Flux's `${var}` substitution), and the real `flux get images all -A` shows them.

mod common;

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
