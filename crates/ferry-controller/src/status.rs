//! Flux's status fields and conditions, computed from what the engine recorded for an object,
//! and written through the status subresource only when they change; Events on Ready
//! transitions.

use ferry_store::{Condition, ObjectRecord};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::kinds::{KindApi, REQUESTED_AT};
use crate::objects::ObjectKey;
use ferry_core::Kind;

/// Reasons of configuration errors that retrying will not fix: Ready=False plus Stalled=True.
const STALLING: &[&str] = &[
    "InvalidPolicy",
    "ImageURLInvalid",
    "InvalidUpdateStrategy",
    "InvalidPolicySelector",
    "InvalidSourceConfiguration",
    "RemovedTemplateField",
    "AccessDenied",
];

/// The Ready condition an object should carry, plus its generation and handled request.
pub struct Observed<'a> {
    pub generation: Option<i64>,
    pub requested_at: Option<&'a str>,
    pub ready: Condition,
}

fn condition(kind: &str, c: &Condition, generation: Option<i64>) -> Value {
    json!({
        "type": kind,
        "status": c.status,
        "reason": c.reason,
        "message": c.message,
        "lastTransitionTime": c.last_transition_time,
        "observedGeneration": generation,
    })
}

fn conditions(obs: &Observed) -> Value {
    let mut list = vec![condition("Ready", &obs.ready, obs.generation)];
    if !obs.ready.is_ready() && STALLING.contains(&obs.ready.reason.as_str()) {
        list.push(condition("Stalled", &obs.ready, obs.generation));
    }
    Value::Array(list)
}

fn image_ref(r: &ferry_store::ImageRef) -> Value {
    let mut v = json!({ "name": r.name, "tag": r.tag });
    if let Some(d) = &r.digest {
        v["digest"] = json!(d);
    }
    v
}

/// The whole status of one object; fields the record lacks are `null`, so a merge patch removes
/// them.
pub fn desired(kind: Kind, obs: &Observed, record: Option<&ObjectRecord>) -> Value {
    let mut status = json!({
        "observedGeneration": obs.generation,
        "lastHandledReconcileAt": obs.requested_at,
        "conditions": conditions(obs),
    });
    match kind {
        Kind::ImageRepository => {
            let scan = record.and_then(|r| r.scan.as_ref());
            status["canonicalImageName"] = json!(scan.map(|s| &s.canonical_image_name));
            status["observedExclusionList"] = json!(scan.map(|s| &s.observed_exclusion_list));
            status["lastScanResult"] = json!(scan.map(|s| json!({
                "revision": s.revision,
                "tagCount": s.tag_count,
                "scanTime": s.scan_time,
                "latestTags": s.latest_tags,
            })));
        }
        Kind::ImagePolicy => {
            let policy = record.and_then(|r| r.policy.as_ref());
            status["latestRef"] = json!(policy.and_then(|p| p.latest_ref.as_ref()).map(image_ref));
            status["observedPreviousRef"] = json!(
                policy
                    .and_then(|p| p.observed_previous_ref.as_ref())
                    .map(image_ref)
            );
        }
        Kind::ImageUpdateAutomation => {
            let a = record.and_then(|r| r.automation.as_ref());
            status["lastAutomationRunTime"] =
                json!(a.and_then(|a| a.last_automation_run_time.as_ref()));
            status["lastPushCommit"] = json!(a.and_then(|a| a.last_push_commit.as_ref()));
            status["lastPushTime"] = json!(a.and_then(|a| a.last_push_time.as_ref()));
            status["observedSourceRevision"] =
                json!(a.and_then(|a| a.observed_source_revision.as_ref()));
            status["observedPolicies"] = json!(a.map(|a| {
                a.observed_policies
                    .iter()
                    .map(|(k, v)| (k.clone(), image_ref(v)))
                    .collect::<serde_json::Map<_, _>>()
            }));
        }
        Kind::GitRepository => {}
    }
    status
}

/// True when the live status already holds every field of `desired` (nulls meaning absent).
pub fn up_to_date(live: Option<&Value>, desired: &Value) -> bool {
    let Some(Value::Object(want)) = Some(desired) else {
        return false;
    };
    want.iter().all(|(k, v)| {
        let have = live.and_then(|l| l.get(k)).unwrap_or(&Value::Null);
        match (k.as_str(), have) {
            // Compacted at list time (see [`compact`]): compare fingerprints.
            (OBSERVED_POLICIES, Value::String(print)) => *print == fingerprint(v),
            _ => have == v,
        }
    })
}

const OBSERVED_POLICIES: &str = "observedPolicies";

/// A digest of a JSON value that does not depend on key order.
fn fingerprint(v: &Value) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    canonical(v, &mut hasher);
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

fn canonical(v: &Value, out: &mut sha2::Sha256) {
    use sha2::Digest;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.update(b"{");
            for k in keys {
                out.update(serde_json::to_string(k).unwrap_or_default().as_bytes());
                out.update(b":");
                canonical(&map[k], out);
                out.update(b",");
            }
            out.update(b"}");
        }
        Value::Array(items) => {
            out.update(b"[");
            for item in items {
                canonical(item, out);
                out.update(b",");
            }
            out.update(b"]");
        }
        scalar => out.update(scalar.to_string().as_bytes()),
    }
}

/// Replaces a listed automation's `status.observedPolicies` (one entry per selected policy,
/// large at scale) by its fingerprint: a pass only compares it with what it would write.
pub fn compact(obj: &mut DynamicObject) {
    if let Some(observed) = obj
        .data
        .get_mut("status")
        .and_then(|s| s.get_mut(OBSERVED_POLICIES))
        .filter(|v| v.is_object())
    {
        *observed = Value::String(fingerprint(observed));
    }
    obj.metadata.managed_fields = None;
}

pub async fn patch(api: &Api<DynamicObject>, name: &str, status: Value) -> Result<(), kube::Error> {
    let body = json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .map(|_| ())
}

/// The `requestedAt` annotation, echoed as `lastHandledReconcileAt` once handled.
pub fn requested_at(obj: &DynamicObject) -> Option<&str> {
    obj.metadata
        .annotations
        .as_ref()?
        .get(REQUESTED_AT)
        .map(String::as_str)
}

/// The live Ready condition's status and message, to detect transitions.
pub fn live_ready(obj: &DynamicObject) -> Option<(String, String)> {
    let list = obj.data.pointer("/status/conditions")?.as_array()?;
    let ready = list.iter().find(|c| c["type"] == "Ready")?;
    Some((
        ready["status"].as_str()?.to_string(),
        ready["message"].as_str().unwrap_or_default().to_string(),
    ))
}

/// A Kubernetes Event on the object (Normal when Ready, Warning otherwise).
pub async fn event(
    client: &kube::Client,
    key: &ObjectKey,
    obj: &DynamicObject,
    ready: &Condition,
    instance: &str,
) -> Result<(), kube::Error> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.", key.name)),
            namespace: Some(key.namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(format!("{}/v1", key.kind.group())),
            kind: Some(key.kind.as_str().to_string()),
            name: Some(key.name.clone()),
            namespace: Some(key.namespace.clone()),
            uid: obj.metadata.uid.clone(),
            resource_version: obj.metadata.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(ready.reason.clone()),
        message: Some(ready.message.clone()),
        type_: Some(
            if ready.is_ready() {
                "Normal"
            } else {
                "Warning"
            }
            .to_string(),
        ),
        source: Some(EventSource {
            component: Some("ferry-controller".to_string()),
            ..Default::default()
        }),
        reporting_component: Some("ferry-controller".to_string()),
        reporting_instance: Some(instance.to_string()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Default::default()
    };
    Api::<Event>::namespaced(client.clone(), &key.namespace)
        .create(&PostParams::default(), &event)
        .await
        .map(|_| ())
}

fn image_ref_from(v: &Value) -> Option<ferry_store::ImageRef> {
    Some(ferry_store::ImageRef {
        name: v.get("name")?.as_str()?.to_string(),
        tag: v.get("tag")?.as_str()?.to_string(),
        digest: v.get("digest").and_then(Value::as_str).map(String::from),
    })
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)?.as_str().map(String::from)
}

fn strings(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The inverse of [`desired`]: what a live object's status says, as the store's record, so that
/// `ferry get images --kubeconfig` prints the cluster with the same code as the local state.
pub fn record_from_live(kind: Kind, obj: &DynamicObject) -> Option<ObjectRecord> {
    if !Kind::RECONCILED.contains(&kind) {
        return None;
    }
    let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
    let ready = status
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|c| c["type"] == "Ready"))
        .map(|c| Condition {
            status: text(c, "/status").unwrap_or_else(|| "Unknown".into()),
            reason: text(c, "/reason").unwrap_or_default(),
            message: text(c, "/message").unwrap_or_default(),
            last_transition_time: text(c, "/lastTransitionTime").unwrap_or_default(),
        });
    let scan = status
        .get("lastScanResult")
        .map(|r| ferry_store::ScanRecord {
            canonical_image_name: text(&status, "/canonicalImageName").unwrap_or_default(),
            tags: Vec::new(),
            tag_count: r.get("tagCount").and_then(Value::as_u64).unwrap_or(0) as usize,
            scan_time: text(r, "/scanTime").unwrap_or_default(),
            revision: text(r, "/revision").unwrap_or_default(),
            latest_tags: strings(r, "/latestTags"),
            observed_exclusion_list: strings(&status, "/observedExclusionList"),
        });
    let policy = (kind == Kind::ImagePolicy).then(|| ferry_store::PolicyRecord {
        latest_ref: status.get("latestRef").and_then(image_ref_from),
        observed_previous_ref: status.get("observedPreviousRef").and_then(image_ref_from),
        ..Default::default()
    });
    let automation = (kind == Kind::ImageUpdateAutomation).then(|| ferry_store::AutomationRecord {
        last_automation_run_time: text(&status, "/lastAutomationRunTime"),
        last_push_commit: text(&status, "/lastPushCommit"),
        last_push_time: text(&status, "/lastPushTime"),
        observed_source_revision: text(&status, "/observedSourceRevision"),
        observed_policies: status
            .get("observedPolicies")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), image_ref_from(v)?)))
                    .collect()
            })
            .unwrap_or_default(),
    });
    Some(ObjectRecord {
        kind,
        namespace: obj.metadata.namespace.clone().unwrap_or_default(),
        name: obj.metadata.name.clone().unwrap_or_default(),
        ready,
        scan,
        policy,
        automation,
        suspended: obj.data.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true),
        updated_at: String::new(),
    })
}

#[cfg(test)]
mod compact_tests {
    use super::*;

    #[test]
    fn a_compacted_status_is_up_to_date_exactly_when_the_map_is_equal() {
        let policies = json!({"b": {"name": "r/b", "tag": "2"}, "a": {"name": "r/a", "tag": "1"}});
        let mut obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageUpdateAutomation",
            "metadata": {"name": "x", "namespace": "n"},
            "status": {"observedPolicies": policies, "lastPushCommit": "c"},
        }))
        .unwrap();
        compact(&mut obj);
        let live = obj.data.get("status");
        assert!(live.unwrap()["observedPolicies"].is_string());
        let reordered = json!({"a": {"tag": "1", "name": "r/a"}, "b": {"name": "r/b", "tag": "2"}});
        let want = json!({"observedPolicies": reordered, "lastPushCommit": "c"});
        assert!(up_to_date(live, &want));
        let changed = json!({"observedPolicies": {"a": {"name": "r/a", "tag": "9"}}});
        assert!(!up_to_date(live, &changed));
    }
}
