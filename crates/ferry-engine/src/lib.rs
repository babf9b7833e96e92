//! ferry-engine: the reconcile loop of Ferry (scan → policy → automation → push).
//!
//! Owns: the decisions. Which repository to scan with which credentials, which tag each
//! ImagePolicy elects, which setters an ImageUpdateAutomation writes, what the commit says and how
//! a rejected push is retried, and what is recorded in the state store.
//! Must not: print to the terminal or parse command lines (that is the `ferry` binary), speak a
//! wire protocol itself (that is `ferry-registry` and `ferry-git`), or edit YAML bytes (that is
//! `ferry-setters`).

mod automation;
pub mod dora;
mod policy;
pub mod promote;
pub mod rollback;
mod scan;
pub mod schedule;
pub mod secrets;
mod source;
mod steps;
pub mod test_hooks;
pub mod trailers;
mod writeback;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

pub use automation::{AutomationOptions, PushReport, automations_for};
use ferry_api::ObjectSet;
pub use ferry_registry::ClientOptions as RegistryOptions;
use ferry_registry::RegistryClient;
use ferry_store::{Condition, Kind, Store};
pub use secrets::{SERVICE_ACCOUNTS, SecretsDir};
pub use source::{ObjectSource, SourceLoad, load_objects, load_source};
pub use steps::{Computed, Election, Selection, StepFailure};
pub use writeback::PassGuard;

/// Errors that stop a whole command (as opposed to one object's failure, which is an
/// [`ObjectOutcome`] with `ready == false`).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    // Transparent: `{0}` plus `#[from]` made anyhow print the message twice (`msg: msg`).
    #[error(transparent)]
    Load(#[from] ferry_api::LoadErrors),
    #[error(transparent)]
    Store(#[from] ferry_store::StoreError),
    #[error("{0}")]
    Secret(String),
    #[error("{0}")]
    Source(String),
    #[error(transparent)]
    Git(#[from] ferry_git::GitError),
    #[error(transparent)]
    Registry(#[from] ferry_registry::RegistryError),
    #[error("{0}")]
    Invalid(String),
    /// A task of the engine panicked or was cancelled: an internal failure, not bad input.
    #[error("an engine task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Runs blocking work (git processes, file I/O) on tokio's blocking pool, so the async workers
/// stay free; works on any runtime flavour (unlike `block_in_place`).
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, tokio::task::JoinError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await
}

/// Settings shared by every engine operation.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub secrets: SecretsDir,
    /// Root of the persistent clone cache.
    pub cache_dir: PathBuf,
    /// `--kustomize PATH` for rendering Flux Kustomizations (default: `kustomize`, else
    /// `kubectl kustomize`, from `PATH`).
    pub kustomize: Option<PathBuf>,
    /// Refuse references to another namespace (an ImagePolicy's ImageRepository, an
    /// automation's GitRepository) whatever `accessFrom` says, as Flux's
    /// `--no-cross-namespace-refs` does.
    pub no_cross_namespace_refs: bool,
    /// Registry client settings (retries, backoff, the Retry-After cap).
    pub registry: ferry_registry::ClientOptions,
}

/// One object's result in a run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectOutcome {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub ready: bool,
    pub suspended: bool,
    pub reason: String,
    pub message: String,
}

impl ObjectOutcome {
    pub fn failed(&self) -> bool {
        !self.ready && !self.suspended
    }
}

/// The result of `scan` or `reconcile`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    pub outcomes: Vec<ObjectOutcome>,
    pub pushes: Vec<PushReport>,
}

impl RunReport {
    pub fn failed(&self) -> bool {
        self.outcomes.iter().any(ObjectOutcome::failed)
    }
    pub fn changed(&self) -> bool {
        !self.pushes.is_empty()
    }
}

/// The engine: configuration, a shared registry client and the state store.
pub struct Engine {
    config: EngineConfig,
    registry: RegistryClient,
    store: Mutex<Store>,
    /// The open pass, if any: what it has fetched from the write-back repositories.
    pass: Mutex<Option<writeback::Pass>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish()
    }
}

impl Engine {
    pub fn new(config: EngineConfig, store: Store) -> Engine {
        Engine {
            registry: RegistryClient::new(config.registry.clone()),
            config,
            store: Mutex::new(store),
            pass: Mutex::new(None),
        }
    }

    /// Opens a pass (or joins the one already open) until the guard is dropped: within it each
    /// write-back repository and branch is fetched at most once, and every later read or push
    /// starts from that fetch plus the pass's own pushes (a push from a stale view is rejected
    /// by the remote and retried on a new fetch). `scan` and `reconcile` open one themselves; a
    /// command that runs several steps on one repository (promote, then the target's
    /// automation) holds one around them all. The daemon opens none between its passes.
    pub fn pass(&self) -> PassGuard<'_> {
        PassGuard::open(&self.pass)
    }

    /// The open pass, or a new one that shares nothing.
    pub(crate) fn current_pass(&self) -> writeback::Pass {
        self.pass
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn registry(&self) -> &RegistryClient {
        &self.registry
    }

    /// The store. A poisoned lock only means another task panicked mid-write; SQLite's
    /// transaction already rolled that write back, so the store is still consistent.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Scans every ImageRepository and evaluates every ImagePolicy, storing the results.
    pub async fn scan(&self, objects: &ObjectSet) -> Result<RunReport, EngineError> {
        let _pass = self.pass();
        let mut computed = steps::Computed::default();
        self.scan_in(objects, &self.current_pass(), Selection::All, &mut computed)
            .await
    }

    /// Scan, then elect: the tags go from the first step to the second in `computed`.
    async fn scan_in(
        &self,
        objects: &ObjectSet,
        pass: &writeback::Pass,
        selection: Selection<'_>,
        computed: &mut steps::Computed,
    ) -> Result<RunReport, EngineError> {
        let mut report = RunReport::default();
        report
            .outcomes
            .extend(scan::scan_all(self, objects, selection, computed).await?);
        let elected = policy::evaluate_all(self, objects, pass, selection, computed).await?;
        report.outcomes.extend(elected);
        Ok(report)
    }

    /// Evaluates every ImagePolicy from the tags already stored for its ImageRepository,
    /// without listing tags again (the daemon's per-policy timer for `digestReflectionPolicy:
    /// Always`, which re-resolves the digest of the elected tag). The set must hold each
    /// policy's ImageRepository (for the image name, ACL and credentials) and, for the holds,
    /// the automations that write it; without them the last known holds are kept.
    pub async fn evaluate_policies(
        &self,
        objects: &ObjectSet,
    ) -> Result<Vec<ObjectOutcome>, EngineError> {
        let mut computed = steps::Computed::default();
        let pass = writeback::Pass::default();
        policy::evaluate_all(self, objects, &pass, Selection::All, &mut computed).await
    }

    /// Forgets the stored records of objects that are no longer in the source. Call it with the
    /// full object set; `scan` and `reconcile` may run on a subset (as the daemon does) and
    /// leave records of other objects alone.
    pub fn prune(&self, objects: &ObjectSet) -> Result<usize, EngineError> {
        Ok(self.store().retain(&objects.keys())?)
    }

    /// `scan`, then every ImageUpdateAutomation: setters, commit, push.
    pub async fn reconcile(
        &self,
        objects: &ObjectSet,
        options: &AutomationOptions,
    ) -> Result<RunReport, EngineError> {
        self.reconcile_selected(objects, Selection::All, options)
            .await
    }

    /// `reconcile` on the `selection` of `objects` only (the controller's due objects): their
    /// steps run in order, scan → elect → automate, and what one step computes goes to the
    /// next in memory; unselected objects are only looked up.
    pub async fn reconcile_selected(
        &self,
        objects: &ObjectSet,
        selection: Selection<'_>,
        options: &AutomationOptions,
    ) -> Result<RunReport, EngineError> {
        // One pass: each write-back repository is fetched once (when its holds are read) and
        // every automation writing to it starts from that fetch.
        let _pass = self.pass();
        let pass = self.current_pass();
        let mut computed = steps::Computed::default();
        let mut report = self
            .scan_in(objects, &pass, selection, &mut computed)
            .await?;
        let (outcomes, pushes) =
            automation::run_all(self, objects, options, &pass, selection, &computed).await?;
        report.outcomes.extend(outcomes);
        report.pushes.extend(pushes);
        Ok(report)
    }
}

/// One object's observation from a reconcile, before it is stored.
pub(crate) struct Observation {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub suspended: bool,
    pub ready: bool,
    pub reason: String,
    pub message: String,
    pub scan: Option<ferry_store::ScanRecord>,
    pub policy: Option<ferry_store::PolicyRecord>,
    pub automation: Option<ferry_store::AutomationRecord>,
}

/// Stores an observation (unless `write` is false, as in a dry run) and returns its outcome.
/// A suspended object keeps its previous Ready condition, as Flux leaves status untouched.
pub(crate) fn record_observation(
    engine: &Engine,
    previous: Option<&ferry_store::ObjectRecord>,
    obs: Observation,
    write: bool,
) -> Result<ObjectOutcome, EngineError> {
    let ready = if obs.suspended {
        previous.and_then(|p| p.ready.clone())
    } else {
        let prev_ready = previous.and_then(|p| p.ready.as_ref());
        Some(ready_condition(
            prev_ready,
            obs.ready,
            &obs.reason,
            &obs.message,
        ))
    };
    if write {
        engine.store().put(&ferry_store::ObjectRecord {
            kind: obs.kind,
            namespace: obs.namespace.clone(),
            name: obs.name.clone(),
            ready,
            scan: obs.scan,
            policy: obs.policy,
            automation: obs.automation,
            suspended: obs.suspended,
            updated_at: now_rfc3339(),
        })?;
    }
    Ok(ObjectOutcome {
        kind: obs.kind,
        namespace: obs.namespace,
        name: obs.name,
        ready: obs.ready,
        suspended: obs.suspended,
        reason: obs.reason,
        message: obs.message,
    })
}

/// Current time as RFC 3339 (UTC, seconds).
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A Ready condition, keeping the transition time when the status did not change.
pub(crate) fn ready_condition(
    previous: Option<&Condition>,
    ready: bool,
    reason: &str,
    message: &str,
) -> Condition {
    let status = if ready { "True" } else { "False" };
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => now_rfc3339(),
    };
    Condition {
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        last_transition_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        kind: Kind,
        name: &str,
        scan: Option<ferry_store::ScanRecord>,
    ) -> ferry_store::ObjectRecord {
        ferry_store::ObjectRecord {
            kind,
            namespace: "apps".into(),
            name: name.into(),
            ready: None,
            scan,
            policy: None,
            automation: None,
            suspended: false,
            updated_at: now_rfc3339(),
        }
    }

    /// Policies are elected from the stored tags and the repository is not contacted: its
    /// address (port 1) would fail a scan, and its record stays as it was.
    #[tokio::test]
    async fn evaluate_policies_uses_stored_tags_without_scanning() {
        let yaml = "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: app\n  namespace: apps\nspec:\n  image: 127.0.0.1:1/org/app\n  interval: 1m0s\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: app\n  namespace: apps\nspec:\n  imageRepositoryRef:\n    name: app\n  policy:\n    semver:\n      range: '>=1.0.0'\n";
        let objects = ferry_api::load_str("objects.yaml", yaml, &ferry_api::Vars::new()).unwrap();
        let dir = std::env::temp_dir();
        let engine = Engine::new(
            EngineConfig {
                secrets: SecretsDir::new(None),
                cache_dir: dir.join("ferry-engine-test-cache"),
                kustomize: None,
                no_cross_namespace_refs: false,
                registry: Default::default(),
            },
            Store::in_memory().unwrap(),
        );
        let scan = ferry_store::ScanRecord {
            canonical_image_name: "127.0.0.1:1/org/app".into(),
            tags: vec!["1.2.0".into(), "1.0.0".into()],
            tag_count: 2,
            scan_time: now_rfc3339(),
            revision: String::new(),
            latest_tags: vec!["1.2.0".into(), "1.0.0".into()],
            observed_exclusion_list: vec![],
        };
        let stored = record(Kind::ImageRepository, "app", Some(scan));
        engine.store().put(&stored).unwrap();

        let outcomes = engine.evaluate_policies(&objects).await.unwrap();
        assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        assert_eq!(outcomes[0].kind, Kind::ImagePolicy);
        assert!(outcomes[0].ready, "{outcomes:?}");
        let policy = engine
            .store()
            .get(Kind::ImagePolicy, "apps", "app")
            .unwrap()
            .unwrap();
        let latest = policy.policy.unwrap().latest_ref.unwrap();
        assert_eq!(
            (latest.name.as_str(), latest.tag.as_str()),
            ("127.0.0.1:1/org/app", "1.2.0")
        );
        let repo = engine
            .store()
            .get(Kind::ImageRepository, "apps", "app")
            .unwrap()
            .unwrap();
        assert_eq!(repo, stored, "the repository was scanned");
    }
}
