//! Unit tests: API objects as the engine's loader reads them.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::DynamicObject;
use serde_json::json;

use crate::objects::{Listed, ObjectKey, load};
use ferry_core::Kind;

fn dynamic(value: serde_json::Value) -> DynamicObject {
    serde_json::from_value(value).expect("object")
}

#[test]
fn api_objects_and_namespaces_load_one_by_one() {
    let mut listed = Listed::default();
    let good = dynamic(json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
        "metadata": { "name": "backend", "namespace": "staging", "generation": 2 },
        "spec": { "imageRepositoryRef": { "name": "backend", "namespace": "flux-system" },
                  "policy": { "semver": { "range": ">=1.0.0" } } },
        "status": { "conditions": [] }
    }));
    let bad = dynamic(json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
        "metadata": { "name": "broken", "namespace": "staging" },
        "spec": { "policy": { "semver": { "range": ">=1.0.0" } } }
    }));
    for obj in [good, bad] {
        listed
            .objects
            .insert(crate::objects::key_of(Kind::ImagePolicy, &obj), obj);
    }
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": { "name": "staging", "labels": { "environment": "staging" } }
    }))
    .expect("namespace");
    listed.namespaces.push(ns);

    let loaded = load(&listed);
    assert_eq!(loaded.set.image_policies.len(), 1);
    assert_eq!(loaded.set.image_policies[0].name(), "backend");
    assert_eq!(loaded.set.namespaces.len(), 1);
    assert_eq!(
        loaded.set.namespaces[0]
            .metadata
            .labels
            .get("environment")
            .map(String::as_str),
        Some("staging")
    );
    let broken = ObjectKey {
        kind: Kind::ImagePolicy,
        namespace: "staging".into(),
        name: "broken".into(),
    };
    assert!(loaded.invalid.contains_key(&broken), "{:?}", loaded.invalid);
}
