//! The controller's ServiceAccount and least-privilege RBAC: exactly the calls `ferry controller`
//! makes (crates/ferry-controller), nothing for features it does not have yet.
//!
//! - The three image kinds: get, list, watch; patch (the finalizer is added and removed with a
//!   merge patch); patch on `*/status` (statuses are written through the status subresource).
//! - GitRepositories: get, list, watch (read, never written).
//! - Secrets: get only, in every namespace. The controller reads the Secrets the objects name
//!   (`secretRef`, `certSecretRef`, `proxySecretRef`, `signingKey`), by name, in the objects'
//!   namespaces, which can be any. Flux's controllers can read every Secret cluster-wide; Ferry
//!   cannot list or watch them, so it can only read a Secret whose name it already knows.
//! - Namespaces: list (the labels `accessFrom` selects on).
//! - Events: create (core `v1` Events, one per Ready transition).
//! - Deployments, ReplicaSets, StatefulSets, DaemonSets: list, watch; CronJobs: list (drift
//!   detection reads what the workloads run; never written).
//! - Leases: get, create, update, and only in the install namespace (a Role, not the
//!   ClusterRole): the `ferry-controller-leader` Lease of `--leader-elect`.
//!
//! Not granted, because the controller does not do it yet: ServiceAccounts
//! (`serviceAccountName` image pull secrets are not read from the API), `events.k8s.io`.

use serde_json::{Value, json};

use crate::{NAME, labels};

/// One RBAC rule: API group, resources, verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub group: &'static str,
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
}

/// The controller's ClusterRole, rule by rule.
pub const RULES: &[Rule] = &[
    Rule {
        group: crate::GROUP,
        resources: &[
            "imagerepositories",
            "imagepolicies",
            "imageupdateautomations",
        ],
        verbs: &["get", "list", "watch", "patch"],
    },
    Rule {
        group: crate::GROUP,
        resources: &[
            "imagerepositories/status",
            "imagepolicies/status",
            "imageupdateautomations/status",
        ],
        verbs: &["get", "patch"],
    },
    Rule {
        group: "source.toolkit.fluxcd.io",
        resources: &["gitrepositories"],
        verbs: &["get", "list", "watch"],
    },
    Rule {
        group: "",
        resources: &["secrets"],
        verbs: &["get"],
    },
    // `serviceAccountName` on an ImageRepository: its imagePullSecrets, read by name.
    Rule {
        group: "",
        resources: &["serviceaccounts"],
        verbs: &["get"],
    },
    Rule {
        group: "",
        resources: &["namespaces"],
        verbs: &["list"],
    },
    Rule {
        group: "",
        resources: &["events"],
        verbs: &["create"],
    },
    // Drift detection (`ferry controller --drift-grace`, `--adopt-rollouts`): what the workloads
    // run, and which images their ReplicaSets ran. Read only.
    Rule {
        group: "apps",
        resources: &["deployments", "replicasets", "statefulsets", "daemonsets"],
        verbs: &["list", "watch"],
    },
    Rule {
        group: "batch",
        resources: &["cronjobs"],
        verbs: &["list"],
    },
];

pub fn service_account(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": { "name": NAME, "namespace": namespace, "labels": labels("controller") },
    })
}

/// The ClusterRole (shared by every install) and its binding (one per namespace installed in, so
/// two installs do not overwrite each other's subject).
pub fn objects(namespace: &str) -> Vec<Value> {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| json!({ "apiGroups": [r.group], "resources": r.resources, "verbs": r.verbs }))
        .collect();
    vec![
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": { "name": NAME, "labels": labels("controller") },
            "rules": rules,
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": { "name": format!("{NAME}-{namespace}"), "labels": labels("controller") },
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": NAME,
            },
            "subjects": [{ "kind": "ServiceAccount", "name": NAME, "namespace": namespace }],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": { "name": LEADER_ROLE, "namespace": namespace, "labels": labels("controller") },
            "rules": [{
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get", "create", "update"],
            }],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": { "name": LEADER_ROLE, "namespace": namespace, "labels": labels("controller") },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEADER_ROLE },
            "subjects": [{ "kind": "ServiceAccount", "name": NAME, "namespace": namespace }],
        }),
    ]
}

/// The Role (and RoleBinding) for the leader-election Lease in the install namespace.
pub const LEADER_ROLE: &str = "ferry-controller-leader-election";
