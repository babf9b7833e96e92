//! Rollback that sticks: revert, holds and deny-lists in Git, history and status from Git evidence.
//!
//! Owns: finding the commit that brought an environment's current value (Ferry trailers, Flux
//! bot commits, human edits: all read from the marker values at each commit), reverting it (or
//! writing the previous value through the setters when the revert conflicts), the holds file
//! `.ferry/holds.yaml` ([`holds`]), how automation honours holds ([`apply_holds`]), `history`
//! and `status`.
//! Must not: print, parse command lines, or rewrite history (every change is a new commit pushed
//! without force; a rejected push is recomputed on the new tip).
//!
//! Design (docs/rollback.md): the holds file is read in two places.
//! 1. Before policies are evaluated ([`gather_holds`]), once per reconcile per write-back repo,
//!    so that the election skips denied tags and `get images` shows the hold.
//! 2. Inside the automation's update callback, from the very tip being committed on
//!    ([`apply_holds`]): a held policy is written at its held value, a denied tag is never
//!    written. This second read is the authority, so a hold pushed a second ago still wins.

pub mod holds;
pub(crate) mod markers;
mod ops;
mod status;
mod target;
mod timeline;

use std::collections::HashMap;

use ferry_api::ObjectSet;
use ferry_git::{CloneCache, LogQuery};
use ferry_setters::{ImageRef, PolicyValues};
use ferry_store::{HoldRecord, PolicyRecord};

pub use holds::{Denied, HOLDS_PATH, Hold, HoldsError, HoldsFile};
pub use markers::MarkerState;
/// Marker-value readers, for the fuzz targets and property tests.
#[doc(hidden)]
pub use markers::{parse_reference, values_in_bytes};
pub use ops::{
    Adopted, HoldCommit, HoldReport, HoldRequest, PromotionCommit, RepoFallback, RollbackMethod,
    RollbackReport, RollbackRequest, UnholdRequest,
};
pub use status::layout;
pub use status::{StatusApp, StatusCell, StatusReport};
pub use target::policy_of;
pub use timeline::{ChangeKind, HistoryRow, mark_first_seen_live};

use crate::Engine;

/// Errors of rollback, hold, unhold, history and status.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// Bad input (unknown ENV/APP, tag never run, …): nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The operation failed.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Git(#[from] ferry_git::GitError),
    #[error(transparent)]
    Setters(#[from] ferry_setters::SetterError),
    #[error(transparent)]
    Holds(#[from] HoldsError),
    #[error(transparent)]
    Store(#[from] ferry_store::StoreError),
    /// The blocking task doing the Git work panicked or was cancelled (an internal failure).
    #[error("a rollback task failed")]
    Task(#[from] tokio::task::JoinError),
}

impl RollbackError {
    /// True for bad input (exit status 2).
    pub fn is_invalid(&self) -> bool {
        matches!(self, RollbackError::Invalid(_))
    }
}

/// The trailer keys of rollback, hold and unhold commits (docs/rollback.md).
pub mod trailer {
    pub const REVERTS: &str = "Ferry-Reverts";
    pub const BY: &str = "Ferry-By";
    pub const REASON: &str = "Ferry-Reason";
    pub const HOLD: &str = "Ferry-Hold";
    pub const UNHOLD: &str = "Ferry-Unhold";
    pub const DENY: &str = "Ferry-Deny";
    pub const ALLOW: &str = "Ferry-Allow";
    pub const METHOD: &str = "Ferry-Method";
    /// On a rollback that adopts what the cluster runs: `rollout-undo` (the controller's
    /// `--adopt-rollouts`) or `live` (`ferry rollback --to-live`).
    pub const ADOPTED: &str = "Ferry-Adopted";
}

/// The values an automation may write given the holds at the tip it commits on: a held policy
/// gets its held value; a policy whose value is a denied tag is left out (not written).
/// `values` are keyed `namespace:name`.
pub fn apply_holds(values: &PolicyValues, holds: &HoldsFile) -> PolicyValues {
    let mut out = PolicyValues::new();
    for (key, value) in values {
        let id = key.replacen(':', "/", 1);
        if let Some(h) = holds.hold(&id) {
            out.insert(
                key.clone(),
                ImageRef {
                    name: if h.image.is_empty() {
                        value.name.clone()
                    } else {
                        h.image.clone()
                    },
                    tag: h.tag.clone(),
                    digest: h.digest.clone(),
                },
            );
        } else if !holds.is_denied(&id, &value.tag) {
            out.insert(key.clone(), value.clone());
        }
    }
    out
}

/// What the GitOps repositories say about one policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyHolds {
    pub hold: Option<HoldRecord>,
    pub denied: Vec<String>,
}

/// Holds of every policy, read from the write-back repositories of the automations; policies
/// whose repository could not be read are absent from `known` (callers keep what they had).
#[derive(Debug, Clone, Default)]
pub struct GatheredHolds {
    pub by_policy: HashMap<String, PolicyHolds>,
    /// Namespaces whose automation repositories were read successfully.
    pub known_namespaces: std::collections::HashSet<String>,
}

impl GatheredHolds {
    /// The holds for policy `ns/name`: from Git when its namespace was read, else the previous
    /// record's (a repo that cannot be reached keeps the last known holds).
    pub fn for_policy(&self, namespace: &str, name: &str, previous: &PolicyRecord) -> PolicyHolds {
        if self.known_namespaces.contains(namespace) {
            self.by_policy
                .get(&format!("{namespace}/{name}"))
                .cloned()
                .unwrap_or_default()
        } else {
            PolicyHolds {
                hold: previous.hold.clone(),
                denied: previous.denied_tags.clone(),
            }
        }
    }
}

/// The commit that recorded the current hold of `policy` (newest commit touching the holds file
/// with a `Ferry-Hold: policy=<policy> …` trailer).
pub(crate) fn hold_since(co: &ferry_git::Checkout, policy: &str) -> Option<String> {
    let log = co
        .log(&LogQuery {
            rev_range: None,
            paths: vec![HOLDS_PATH.to_string()],
            max: Some(200),
        })
        .ok()?;
    log.into_iter()
        .find(|c| {
            c.trailers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case(trailer::HOLD)
                    && v.split_whitespace()
                        .any(|f| f == format!("policy={policy}"))
            })
        })
        .map(|c| c.sha)
}

/// Reads `.ferry/holds.yaml` from the write-back branch of every automation (once per
/// repository and branch, and that fetch is the pass's: the automations start from it).
pub(crate) async fn gather_holds(
    engine: &Engine,
    objects: &ObjectSet,
    pass: &crate::writeback::Pass,
) -> GatheredHolds {
    let mut repos: HashMap<(String, String), (ferry_git::Remote, Vec<String>)> = HashMap::new();
    for auto in &objects.image_update_automations {
        let Ok(t) = crate::automation::target(engine, objects, auto) else {
            continue;
        };
        let entry = repos
            .entry((t.remote.url.clone(), t.checkout_branch.clone()))
            .or_insert_with(|| (t.remote.clone(), Vec::new()));
        entry.1.push(auto.namespace().to_string());
    }
    let mut out = GatheredHolds::default();
    for ((_, branch), (remote, namespaces)) in repos {
        let cache_root = engine.config().cache_dir.clone();
        let shown_url = remote.display_url();
        let pass = pass.clone();
        let read =
            tokio::task::spawn_blocking(move || -> Result<Vec<(String, PolicyHolds)>, String> {
                let cache = CloneCache::new(cache_root).map_err(|e| e.to_string())?;
                let co = pass
                    .checkout(&cache, &remote, &branch)
                    .map_err(|e| e.to_string())?;
                let file = HoldsFile::read(co.workdir()).map_err(|e| e.to_string())?;
                let mut policies: Vec<String> = file
                    .holds
                    .iter()
                    .map(|h| h.policy.clone())
                    .chain(file.denied.iter().map(|d| d.policy.clone()))
                    .collect();
                policies.sort();
                policies.dedup();
                Ok(policies
                    .into_iter()
                    .map(|p| {
                        let hold = file.hold(&p).map(|h| HoldRecord {
                            tag: h.tag.clone(),
                            since: hold_since(&co, &p),
                            by: h.by.clone(),
                            reason: h.reason.clone(),
                            at: h.at.clone(),
                        });
                        let denied = file.denied_tags(&p);
                        (p, PolicyHolds { hold, denied })
                    })
                    .collect())
            })
            .await;
        match read {
            Ok(Ok(list)) => {
                out.known_namespaces.extend(namespaces);
                out.by_policy.extend(list);
            }
            Ok(Err(e)) => {
                tracing::warn!(url = %shown_url, error = %e, "cannot read holds; keeping the last known holds");
            }
            Err(e) => {
                tracing::warn!(url = %shown_url, error = %e, "reading holds failed");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_pin_and_deny() {
        let mut values = PolicyValues::new();
        let v = |t: &str| ImageRef {
            name: "r/app".into(),
            tag: t.into(),
            digest: None,
        };
        values.insert("staging:app".into(), v("v3"));
        values.insert("staging:other".into(), v("bad"));
        values.insert("prod:app".into(), v("v9"));
        let mut f = HoldsFile::default();
        f.set_hold(Hold {
            policy: "staging/app".into(),
            tag: "v1".into(),
            ..Hold::default()
        });
        f.deny(Denied {
            policy: "staging/other".into(),
            tag: "bad".into(),
            ..Denied::default()
        });
        let out = apply_holds(&values, &f);
        assert_eq!(out["staging:app"], v("v1"));
        assert!(!out.contains_key("staging:other"));
        assert_eq!(out["prod:app"], v("v9"));
    }
}
