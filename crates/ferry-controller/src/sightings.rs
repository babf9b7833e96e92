//! When each tag of an ImagePolicy was first seen running in the cluster. The controller keeps
//! it on the ImagePolicy itself, in the annotation [`LIVE_SEEN`] (JSON: tag → RFC 3339 time),
//! because the cluster is its only durable place; `ferry history --kubeconfig` reads it back.

use std::collections::BTreeMap;

use kube::api::{Api, DynamicObject, Patch, PatchParams};

use crate::kinds::KindApi;
use crate::{ControllerError, ControllerOptions};
use ferry_core::Kind;

/// The annotation holding the sightings.
pub const LIVE_SEEN: &str = "ferry.dev/live-seen";
/// Sightings kept per policy (the newest): an annotation must stay small.
const KEEP: usize = 50;

/// The sightings on a live ImagePolicy; a malformed annotation reads as none.
pub fn read(obj: &DynamicObject) -> BTreeMap<String, String> {
    obj.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LIVE_SEEN))
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// `known` plus the `tags` it does not have yet, seen `at`, trimmed to the newest [`KEEP`];
/// `None` when nothing is new.
pub fn merge(
    mut known: BTreeMap<String, String>,
    tags: &[String],
    at: &str,
) -> Option<BTreeMap<String, String>> {
    let mut added = false;
    for tag in tags {
        if !tag.is_empty() && !known.contains_key(tag) {
            known.insert(tag.clone(), at.to_string());
            added = true;
        }
    }
    if !added {
        return None;
    }
    if known.len() > KEEP {
        let mut by_time: Vec<(String, String)> = known
            .iter()
            .map(|(t, at)| (at.clone(), t.clone()))
            .collect();
        by_time.sort();
        for (_, tag) in by_time.iter().take(known.len() - KEEP) {
            known.remove(tag);
        }
    }
    Some(known)
}

/// Adds the sightings of `tags` to the ImagePolicy `obj` (one merge patch, only when new).
pub async fn record(
    client: &kube::Client,
    obj: &DynamicObject,
    tags: &[String],
    at: &str,
) -> Result<(), kube::Error> {
    let Some(merged) = merge(read(obj), tags, at) else {
        return Ok(());
    };
    let (Some(namespace), Some(name)) = (&obj.metadata.namespace, &obj.metadata.name) else {
        return Ok(());
    };
    let value = serde_json::to_string(&merged).unwrap_or_default();
    let patch = serde_json::json!({ "metadata": { "annotations": { LIVE_SEEN: value } } });
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &Kind::ImagePolicy.resource());
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The sightings of one ImagePolicy in the cluster of `options` (for `ferry history`).
pub async fn policy_live_seen(
    options: &ControllerOptions,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, String>, ControllerError> {
    let client = crate::client(options).await?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, namespace, &Kind::ImagePolicy.resource());
    Ok(api
        .get_opt(name)
        .await?
        .map(|o| read(&o))
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_first_sightings_and_trims_the_oldest() {
        let known = BTreeMap::from([("v1".to_string(), "2026-01-01T00:00:00Z".to_string())]);
        assert_eq!(
            merge(known.clone(), &["v1".into()], "2026-02-01T00:00:00Z"),
            None
        );
        let merged = merge(known, &["v1".into(), "v2".into()], "2026-02-01T00:00:00Z").unwrap();
        assert_eq!(merged["v1"], "2026-01-01T00:00:00Z");
        assert_eq!(merged["v2"], "2026-02-01T00:00:00Z");
        let many: BTreeMap<String, String> = (0..KEEP)
            .map(|i| {
                (
                    format!("t{i:03}"),
                    format!("2026-01-01T00:00:{:02}Z", i % 60),
                )
            })
            .collect();
        let merged = merge(many, &["new".into()], "2026-03-01T00:00:00Z").unwrap();
        assert_eq!(merged.len(), KEEP);
        assert!(merged.contains_key("new"));
        assert!(!merged.contains_key("t000"));
    }
}
