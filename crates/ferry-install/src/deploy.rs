//! The controller's Deployment: one non-root, read-only container running `ferry controller`,
//! with its tag cache and clone cache on an emptyDir (the cluster is the source of truth; an
//! empty disk is rebuilt from the API and the registries).

use serde_json::{Value, json};

use crate::{InstallOptions, NAME, labels};

/// `--listen` port in the Pod: /healthz, /readyz (probes) and /metrics.
pub const HTTP_PORT: u16 = 9440;

/// Where the state file and the clone cache live (an emptyDir).
pub const DATA_DIR: &str = "/data";

pub fn deployment(options: &InstallOptions) -> Value {
    let selector = json!({ "app.kubernetes.io/name": NAME });
    let mut pod_labels = labels("controller");
    pod_labels["app.kubernetes.io/name"] = json!(NAME);
    let field = |path: &str| json!({ "valueFrom": { "fieldRef": { "fieldPath": path } } });
    let mut pod_name = field("metadata.name");
    pod_name["name"] = json!("POD_NAME");
    let mut runtime_ns = field("metadata.namespace");
    runtime_ns["name"] = json!("RUNTIME_NAMESPACE");
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": NAME,
            "namespace": options.namespace,
            "labels": pod_labels,
        },
        "spec": {
            "replicas": options.replicas,
            // Replicas hold a Lease (--leader-elect): a rolling update never runs two leaders.
            "strategy": { "type": "RollingUpdate" },
            "selector": { "matchLabels": selector },
            "template": {
                "metadata": { "labels": pod_labels },
                "spec": {
                    "serviceAccountName": NAME,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "fsGroup": 65532,
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    "containers": [{
                        "name": "controller",
                        "image": options.image,
                        "imagePullPolicy": "IfNotPresent",
                        "args": [
                            "controller",
                            format!("--state={DATA_DIR}/state.db"),
                            format!("--cache-dir={DATA_DIR}/git"),
                            "--log-format=json",
                            "--leader-elect",
                            format!("--listen=0.0.0.0:{HTTP_PORT}"),
                        ],
                        "ports": [{ "name": "http", "containerPort": HTTP_PORT, "protocol": "TCP" }],
                        "livenessProbe": { "httpGet": { "path": "/healthz", "port": "http" } },
                        "readinessProbe": { "httpGet": { "path": "/readyz", "port": "http" } },
                        "env": [
                            pod_name,
                            runtime_ns,
                            { "name": "HOME", "value": "/tmp" },
                            { "name": "TMPDIR", "value": "/tmp" },
                        ],
                        "resources": {
                            "requests": { "cpu": "100m", "memory": "64Mi" },
                            "limits": { "cpu": "1", "memory": "1Gi" },
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "runAsNonRoot": true,
                            "capabilities": { "drop": ["ALL"] },
                            "seccompProfile": { "type": "RuntimeDefault" },
                        },
                        "volumeMounts": [
                            { "name": "data", "mountPath": DATA_DIR },
                            { "name": "tmp", "mountPath": "/tmp" },
                        ],
                    }],
                    "volumes": [
                        { "name": "data", "emptyDir": {} },
                        { "name": "tmp", "emptyDir": {} },
                    ],
                },
            },
        },
    })
}
