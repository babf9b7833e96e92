//! The per-object steps every driver calls: scan one ImageRepository, elect one ImagePolicy from
//! a scan (`Engine::elect_policy`, beside the election's rules in `policy.rs`), run one
//! ImageUpdateAutomation from the elections it selects.
//!
//! Each step takes its inputs and returns its outcome; it stores nothing and reads nothing back
//! from the store. The drivers decide when to call them and where outcomes live: `scan` and
//! `reconcile` (the CLI and the daemon) record them in the state store, and hand them on to the
//! next step in memory through [`Computed`]; the controller writes them to resource status.
//!
//! Must not: decide schedules, print, or write the store (that is the driver's choice).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use ferry_api::{ImageRepository, ImageUpdateAutomation, ObjectSet};
use ferry_setters::ImageRef;
use ferry_store::{Kind, ObjectKey, PolicyRecord, ScanRecord};

use crate::{AutomationOptions, Engine, EngineError, PushReport};

/// Why one object's step failed: a Flux condition reason and a one-line message. This is the
/// object's status (Ready=False), never an error of the whole command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub reason: &'static str,
    pub message: String,
}

/// An ImagePolicy's election: its new status (`latestRef`, `observedPreviousRef`) and the Ready
/// message Flux writes for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    pub status: PolicyRecord,
    pub message: String,
}

/// The objects of a set whose steps a pass runs. The others are still looked up (an
/// ImagePolicy's ImageRepository, an automation's policies) and their last outcomes read from
/// the store: a pass on one requested ImageRepository does not scan the rest.
#[derive(Debug, Clone, Copy, Default)]
pub enum Selection<'a> {
    #[default]
    All,
    Only(&'a BTreeSet<ObjectKey>),
}

impl Selection<'_> {
    pub fn covers(&self, kind: Kind, namespace: &str, name: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Only(keys) => keys.contains(&ObjectKey::new(kind, namespace, name)),
        }
    }
}

/// What earlier steps computed, handed to the next in memory: the tags each ImageRepository
/// holds after its scan, and each ImagePolicy's `latestRef` after its election. The automation
/// step writes the elections and leaves a tag in Git alone when it is newer than these scans.
/// An object not filled in (a pass over a subset) falls back to the store, the record of
/// earlier passes.
#[derive(Debug, Default)]
pub struct Computed {
    tags: HashMap<ObjectKey, Vec<String>>,
    latest: HashMap<ObjectKey, ImageRef>,
}

impl Computed {
    /// The tags of ImageRepository `namespace/name` (a scan's `tags`).
    pub fn set_tags(&mut self, namespace: &str, name: &str, tags: Vec<String>) {
        let key = ObjectKey::new(Kind::ImageRepository, namespace, name);
        self.tags.insert(key, tags);
    }

    /// The `latestRef` of ImagePolicy `namespace/name` (an election's).
    pub fn set_latest(&mut self, namespace: &str, name: &str, latest: ImageRef) {
        let key = ObjectKey::new(Kind::ImagePolicy, namespace, name);
        self.latest.insert(key, latest);
    }

    /// The tags of ImageRepository `namespace/name`: this pass's scan (borrowed: the
    /// automation asks once per marker), else the stored one.
    pub(crate) fn tags(
        &self,
        engine: &Engine,
        namespace: &str,
        name: &str,
    ) -> Result<Cow<'_, [String]>, EngineError> {
        let key = ObjectKey::new(Kind::ImageRepository, namespace, name);
        if let Some(tags) = self.tags.get(&key) {
            return Ok(Cow::Borrowed(tags));
        }
        let stored = engine.store().get(Kind::ImageRepository, namespace, name)?;
        let tags = stored.and_then(|r| r.scan).map(|s| s.tags);
        Ok(Cow::Owned(tags.unwrap_or_default()))
    }

    /// The `latestRef` of ImagePolicy `namespace/name`: this pass's election, else the stored one.
    pub(crate) fn latest(
        &self,
        engine: &Engine,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ImageRef>, EngineError> {
        let key = ObjectKey::new(Kind::ImagePolicy, namespace, name);
        if let Some(latest) = self.latest.get(&key) {
            return Ok(Some(latest.clone()));
        }
        let stored = engine.store().get(Kind::ImagePolicy, namespace, name)?;
        Ok(stored.and_then(|r| r.policy).and_then(|p| p.latest_ref))
    }
}

impl Engine {
    /// Step 1: lists the tags of one ImageRepository, drops its exclusions and sorts them
    /// newest first. Talks to the registry only.
    pub async fn scan_repository(&self, repo: &ImageRepository) -> Result<ScanRecord, StepFailure> {
        let prepared = crate::scan::prepare(self, repo)?;
        crate::scan::scan_prepared(self.registry(), &prepared).await
    }

    /// Step 3: runs one ImageUpdateAutomation from the elections of the policies it selects
    /// (and the scans they came from, for the "newer in Git" guard): setters, commit, push,
    /// recomputed on a moved tip. `Ok(None)` when Git is already up to date.
    pub async fn run_automation(
        &self,
        objects: &ObjectSet,
        automation: &ImageUpdateAutomation,
        elections: &Computed,
        options: &AutomationOptions,
    ) -> Result<Option<PushReport>, StepFailure> {
        let values = crate::automation::policy_values(self, objects, automation, elections)
            .map_err(|e| StepFailure {
                reason: "Failure",
                message: e.to_string(),
            })?;
        let pass = self.current_pass();
        crate::automation::run_one(
            self, objects, automation, &values, options, &pass, elections,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EngineConfig, SecretsDir};
    use ferry_store::Store;

    const OBJECTS: &str = "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: app\n  namespace: apps\nspec:\n  image: 127.0.0.1:1/org/app\n  interval: 1m0s\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: app\n  namespace: apps\nspec:\n  imageRepositoryRef:\n    name: app\n  policy:\n    semver:\n      range: '>=1.0.0'\n";

    fn engine() -> Engine {
        Engine::new(
            EngineConfig {
                secrets: SecretsDir::new(None),
                cache_dir: std::env::temp_dir().join("ferry-engine-steps-test"),
                kustomize: None,
                no_cross_namespace_refs: false,
                registry: Default::default(),
            },
            Store::in_memory().unwrap(),
        )
    }

    fn objects() -> ObjectSet {
        ferry_api::load_str("objects.yaml", OBJECTS, &ferry_api::Vars::new()).unwrap()
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    /// The election works from the tags it is given: the store is empty, nothing was scanned,
    /// and the registry (port 1) is never asked.
    #[tokio::test]
    async fn election_uses_the_tags_it_is_given() {
        let (engine, objects) = (engine(), objects());
        let policy = &objects.image_policies[0];
        let previous = PolicyRecord::default();
        let election = engine
            .elect_policy(
                &objects,
                policy,
                &tags(&["1.2.0", "1.10.0", "0.9.0"]),
                &previous,
                &[],
            )
            .await
            .unwrap();
        let latest = election.status.latest_ref.unwrap();
        assert_eq!(latest.tag, "1.10.0");
        assert_eq!(latest.name, "127.0.0.1:1/org/app");
        assert!(election.message.contains("1.10.0"), "{}", election.message);
        assert!(
            engine
                .store()
                .get(Kind::ImagePolicy, "apps", "app")
                .unwrap()
                .is_none()
        );
    }

    /// Denied tags are skipped; the previous latestRef becomes observedPreviousRef.
    #[tokio::test]
    async fn election_skips_denied_tags_and_keeps_the_previous_ref() {
        let (engine, objects) = (engine(), objects());
        let policy = &objects.image_policies[0];
        let first = engine
            .elect_policy(
                &objects,
                policy,
                &tags(&["1.0.0"]),
                &PolicyRecord::default(),
                &[],
            )
            .await
            .unwrap();
        let second = engine
            .elect_policy(
                &objects,
                policy,
                &tags(&["1.0.0", "1.1.0", "2.0.0"]),
                &first.status,
                &tags(&["2.0.0"]),
            )
            .await
            .unwrap();
        assert_eq!(second.status.latest_ref.unwrap().tag, "1.1.0");
        assert_eq!(second.status.observed_previous_ref.unwrap().tag, "1.0.0");
    }

    /// No tags: the policy waits for its repository (Flux's DependencyNotReady).
    #[tokio::test]
    async fn election_without_tags_is_dependency_not_ready() {
        let (engine, objects) = (engine(), objects());
        let failure = engine
            .elect_policy(
                &objects,
                &objects.image_policies[0],
                &[],
                &PolicyRecord::default(),
                &[],
            )
            .await
            .unwrap_err();
        assert_eq!(failure.reason, "DependencyNotReady");
        assert!(failure.message.contains("apps/app"), "{}", failure.message);
    }

    /// The pass memory wins over the store, and the store answers for what the pass did not
    /// cover.
    #[test]
    fn computed_prefers_this_pass_and_falls_back_to_the_store() {
        let engine = engine();
        let stored = ferry_store::ObjectRecord {
            kind: Kind::ImageRepository,
            namespace: "apps".into(),
            name: "old".into(),
            ready: None,
            scan: Some(ScanRecord {
                canonical_image_name: "127.0.0.1:1/org/old".into(),
                tags: tags(&["0.1.0"]),
                tag_count: 1,
                scan_time: String::new(),
                revision: String::new(),
                latest_tags: tags(&["0.1.0"]),
                observed_exclusion_list: vec![],
            }),
            policy: None,
            automation: None,
            suspended: false,
            updated_at: String::new(),
        };
        engine.store().put(&stored).unwrap();
        let mut computed = Computed::default();
        computed.set_tags("apps", "app", tags(&["1.0.0"]));
        assert_eq!(
            computed.tags(&engine, "apps", "app").unwrap(),
            tags(&["1.0.0"])
        );
        assert_eq!(
            computed.tags(&engine, "apps", "old").unwrap(),
            tags(&["0.1.0"])
        );
        assert!(computed.tags(&engine, "apps", "none").unwrap().is_empty());
        assert!(computed.latest(&engine, "apps", "app").unwrap().is_none());
    }
}
