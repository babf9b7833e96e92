//! `--events-addr`: the Events of Ready transitions, also POSTed as JSON in the shape Flux's
//! controllers send to notification-controller (`involvedObject`, `severity`, `timestamp`,
//! `message`, `reason`, `metadata`, `reportingController`, `reportingInstance`), so existing
//! Alerts and Providers keep working. Delivery never blocks a pass: each POST runs in its own task
//! with a timeout and a few retries (`ferry_notify::deliver`); a 429 means "duplicate" and is
//! not an error.

use std::time::Duration;

use ferry_store::Condition;
use kube::api::DynamicObject;
use serde_json::{Map, Value, json};

use crate::kinds::KindApi;
use crate::objects::ObjectKey;

/// Annotations with this prefix become event metadata (prefix removed), as in Flux.
const METADATA_PREFIX: &str = "event.toolkit.fluxcd.io/";

pub fn payload(key: &ObjectKey, obj: &DynamicObject, ready: &Condition, instance: &str) -> Value {
    let metadata: Map<String, Value> = obj
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.strip_prefix(METADATA_PREFIX)?.to_string(), json!(v))))
        .collect();
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "involvedObject": {
            "kind": key.kind.as_str(),
            "namespace": key.namespace,
            "name": key.name,
            "uid": obj.metadata.uid,
            "apiVersion": format!("{}/v1", key.kind.group()),
            "resourceVersion": obj.metadata.resource_version,
        },
        "severity": if ready.is_ready() { "info" } else { "error" },
        "timestamp": now,
        "message": ready.message,
        "reason": ready.reason,
        "metadata": metadata,
        "reportingController": "ferry-controller",
        "reportingInstance": instance,
    })
}

/// POSTs `body` to `addr` in the background (3 attempts, 500 ms then 1 s apart; a 429 means
/// "duplicate" to notification-controller and counts as delivered).
pub fn send(client: reqwest::Client, addr: String, body: Value) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let out = ferry_notify::Outgoing {
            url: addr,
            body: serde_json::to_vec(&body).unwrap_or_default(),
            headers: Vec::new(),
        };
        let retry = ferry_notify::Retry {
            attempts: 3,
            first: Duration::from_millis(500),
            max: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
        };
        let accepted = |s: u16| (200..300).contains(&s) || s == 429;
        if !ferry_notify::deliver(&client, &out, retry, accepted)
            .await
            .1
        {
            tracing::warn!("--events-addr: the event was not delivered");
        }
    })
}
