use super::*;

#[test]
fn default_install_is_deterministic_and_ordered() {
    let options = InstallOptions::default();
    let a = to_yaml(&manifests(&options).unwrap()).unwrap();
    let b = to_yaml(&manifests(&options).unwrap()).unwrap();
    assert_eq!(a, b);
    let kinds: Vec<String> = manifests(&options)
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Deployment"
        ]
    );
    assert!(a.starts_with("---\n"));
    assert!(!a.contains("part-of: flux"), "{a}");
}

#[test]
fn crds_only_prints_three_crds() {
    let options = InstallOptions {
        crds_only: true,
        ..Default::default()
    };
    assert_eq!(manifests(&options).unwrap().len(), 3);
}

#[test]
fn default_image_is_this_version() {
    assert_eq!(
        DEFAULT_IMAGE,
        format!("ghcr.io/ferry-dev/ferry:{}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_options_are_refused() {
    for ns in ["", "Flux", "-a", "a-", "a_b", &"a".repeat(64), "a.b"] {
        let o = InstallOptions {
            namespace: ns.to_string(),
            ..Default::default()
        };
        assert_eq!(manifests(&o), Err(InstallError::Namespace(ns.to_string())));
    }
    for image in ["", "a b", "-x", "img:"] {
        let o = InstallOptions {
            image: image.to_string(),
            ..Default::default()
        };
        assert!(
            matches!(manifests(&o), Err(InstallError::Image(_))),
            "{image}"
        );
    }
    let o = InstallOptions {
        replicas: 0,
        ..Default::default()
    };
    assert_eq!(manifests(&o), Err(InstallError::Replicas(0)));
    validate_namespace(&"a".repeat(63)).unwrap();
}

#[test]
fn deployment_runs_the_controller_non_root_with_the_options() {
    let o = InstallOptions {
        namespace: "ferry".into(),
        image: "example.org/ferry:dev".into(),
        replicas: 1,
        crds_only: false,
    };
    let objects = manifests(&o).unwrap();
    let d = objects.last().unwrap();
    assert_eq!(d["metadata"]["namespace"], "ferry");
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "example.org/ferry:dev");
    assert_eq!(c["args"][0], "controller");
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["env"][0]["name"], "POD_NAME");
    assert_eq!(pod["serviceAccountName"], NAME);
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"],
        NAME
    );
}
