//! The daemon's scheduler: one task that decides when to reload the objects and which objects a
//! reconcile pass covers. Passes never overlap, so the store and the clone cache see one writer.
//!
//! Each ImageRepository and ImageUpdateAutomation has its own timer (`spec.interval` with ±5%
//! jitter, or exponential backoff 750 ms..15 min after a failure, as Flux's work queue does), and
//! so has each ImagePolicy with `digestReflectionPolicy: Always` (its `spec.interval`, default
//! 10 min): the digest of a re-pushed mutable tag is re-resolved without a rescan.
//! Webhooks add to a pending set; the scheduler waits a short debounce window, drains the set and
//! runs one pass, so a burst of events for one repository becomes one pass, and events that
//! arrive during a pass become at most one more.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferry_api::{DigestReflectionPolicy, ImagePolicy, ObjectSet, Vars};
use ferry_engine::{AutomationOptions, Engine, EngineError, ObjectSource, RunReport};
use ferry_policy::DigestReflection;
use ferry_store::Kind;
use tokio::sync::{Notify, watch};

use super::metrics::{KindLabel, Metrics, TriggerLabel};
use ferry_hooks::PushedRepo;

/// `(namespace, name)`.
pub type Key = (String, String);

const BACKOFF_MIN: Duration = Duration::from_millis(750);
const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);
/// Objects due within this window of each other run in one pass.
const COALESCE: Duration = Duration::from_millis(250);

/// Flux's work-queue backoff: 750 ms doubling per consecutive failure, at most 15 min.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    BACKOFF_MIN.saturating_mul(1u32 << exp).min(BACKOFF_MAX)
}

/// `interval` ± 5%, so objects with the same interval spread out instead of firing together.
fn jittered(interval: Duration) -> Duration {
    let interval = interval.max(Duration::from_secs(1));
    let factor = 0.95 + rand::random::<f64>() * 0.10;
    interval.mul_f64(factor)
}

/// What webhooks asked for since the last pass.
#[derive(Debug, Default)]
pub struct Pending {
    pub pushed: BTreeSet<PushedRepo>,
    pub git: bool,
}

/// The hand-off between the HTTP handlers and the scheduler.
#[derive(Debug, Default)]
pub struct Trigger {
    pending: std::sync::Mutex<Pending>,
    notify: Notify,
}

impl Trigger {
    pub fn push(&self, repos: Vec<PushedRepo>) {
        if repos.is_empty() {
            return;
        }
        self.lock().pushed.extend(repos);
        self.notify.notify_one();
    }

    pub fn git(&self) {
        self.lock().git = true;
        self.notify.notify_one();
    }

    fn take(&self) -> Pending {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Clone, Copy)]
struct Timer {
    next: Instant,
    failures: u32,
}

impl Timer {
    fn now() -> Timer {
        Timer {
            next: Instant::now(),
            failures: 0,
        }
    }

    fn settle(&mut self, ok: bool, interval: Duration) {
        if ok {
            self.failures = 0;
            self.next = Instant::now() + jittered(interval);
        } else {
            self.failures = self.failures.saturating_add(1);
            self.next = Instant::now() + backoff(self.failures);
        }
    }
}

/// Everything the scheduler needs; built by `cmd_serve`.
pub struct Scheduler {
    pub engine: Arc<Engine>,
    pub source: ObjectSource,
    pub vars: Vars,
    pub metrics: Arc<Metrics>,
    pub trigger: Arc<Trigger>,
    pub ready: Arc<AtomicBool>,
    pub source_interval: Duration,
    pub debounce: Duration,
    pub options: AutomationOptions,
    /// The objects in use, for readers outside the scheduler (DORA gauges, dashboard).
    published: watch::Sender<Option<Arc<ObjectSet>>>,
    /// Counts finished passes, so readers can refresh after each one.
    passes_done: watch::Sender<u64>,
    objects: Option<Arc<ObjectSet>>,
    repos: BTreeMap<Key, Timer>,
    automations: BTreeMap<Key, Timer>,
    /// ImagePolicies with `digestReflectionPolicy: Always` only.
    policies: BTreeMap<Key, Timer>,
    source_timer: Timer,
}

/// The three engine calls of a pass; each is timed under its own `kind` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// List tags of the due repositories (`Engine::scan` on a set without policies).
    Scan,
    /// Elect the policies from the stored tags (`Engine::evaluate_policies`).
    Policies,
    /// Setters, commit and push (`Engine::reconcile`).
    Automations,
}

impl Phase {
    fn kind(self) -> &'static str {
        match self {
            Phase::Scan => "ImageRepository",
            Phase::Policies => "ImagePolicy",
            Phase::Automations => "ImageUpdateAutomation",
        }
    }
}

/// The period of a policy's own timer: only `Always` re-resolves on a schedule (Flux
/// `GetInterval`, 10 min when `spec.interval` is unset; the engine then reports
/// `IntervalNotConfigured`, which backs off like any failure).
/// Waits for the next pass (or a reload of the objects) and returns the objects it ran on;
/// `None` once the scheduler has stopped. Passes that end while the caller works coalesce.
pub async fn next_pass(
    objects: &mut watch::Receiver<Option<Arc<ObjectSet>>>,
    passes: &mut watch::Receiver<u64>,
) -> Option<Arc<ObjectSet>> {
    loop {
        tokio::select! {
            r = passes.changed() => r.ok()?,
            r = objects.changed() => r.ok()?,
        }
        let set = objects.borrow_and_update().clone();
        passes.borrow_and_update();
        if let Some(set) = set {
            return Some(set);
        }
    }
}

pub fn policy_interval(p: &ImagePolicy) -> Option<Duration> {
    let reflection = match p.spec.digest_reflection_policy {
        DigestReflectionPolicy::Always => DigestReflection::Always,
        DigestReflectionPolicy::IfNotPresent => DigestReflection::IfNotPresent,
        DigestReflectionPolicy::Never => DigestReflection::Never,
    };
    reflection.requeue_after(p.spec.interval.map(|d| d.0))
}

impl Scheduler {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Arc<Engine>,
        source: ObjectSource,
        vars: Vars,
        metrics: Arc<Metrics>,
        trigger: Arc<Trigger>,
        ready: Arc<AtomicBool>,
        source_interval: Duration,
        debounce: Duration,
    ) -> Scheduler {
        Scheduler {
            engine,
            source,
            vars,
            metrics,
            trigger,
            ready,
            source_interval,
            debounce,
            options: AutomationOptions::default(),
            published: watch::channel(None).0,
            passes_done: watch::channel(0).0,
            objects: None,
            repos: BTreeMap::new(),
            automations: BTreeMap::new(),
            policies: BTreeMap::new(),
            source_timer: Timer::now(),
        }
    }

    /// The objects in use (`None` until the first load succeeds).
    pub fn objects(&self) -> watch::Receiver<Option<Arc<ObjectSet>>> {
        self.published.subscribe()
    }

    /// The number of passes finished so far; changes after each pass.
    pub fn passes(&self) -> watch::Receiver<u64> {
        self.passes_done.subscribe()
    }

    fn next_wake(&self) -> Instant {
        self.repos
            .values()
            .chain(self.automations.values())
            .chain(self.policies.values())
            .map(|t| t.next)
            .chain(std::iter::once(self.source_timer.next))
            .min()
            .unwrap_or_else(|| Instant::now() + self.source_interval)
    }

    /// Runs until `shutdown` turns true; a pass in flight is always finished first.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut trigger_name = "startup";
        loop {
            if *shutdown.borrow() {
                break;
            }
            let pending = self.trigger.take();
            let triggered = !pending.pushed.is_empty() || pending.git;
            let now = Instant::now();
            if pending.git || self.source_timer.next <= now || self.objects.is_none() {
                self.reload().await;
            }
            if let Some(objects) = self.objects.clone() {
                let (repos, policies, autos) = self.due(&objects, &pending.pushed, pending.git);
                if !repos.is_empty() || !policies.is_empty() || !autos.is_empty() {
                    let trig = if pending.git {
                        "git"
                    } else if !pending.pushed.is_empty() {
                        "registry"
                    } else {
                        trigger_name
                    };
                    self.pass(&objects, &repos, &policies, &autos, trig).await;
                    self.passes_done.send_modify(|n| *n += 1);
                }
            }
            trigger_name = "interval";
            if triggered {
                // Events that arrived during the pass: go round again at once.
                continue;
            }
            let wake = tokio::time::Instant::from_std(self.next_wake());
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = self.trigger.notify.notified() => {
                    // Let the rest of a burst (blob and manifest events of one push) arrive.
                    tokio::select! {
                        _ = tokio::time::sleep(self.debounce) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("scheduler stopped");
    }

    /// Re-reads the objects. On failure the last good set stays in use.
    async fn reload(&mut self) {
        let engine = self.engine.clone();
        let source = self.source.clone();
        let vars = self.vars.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            ferry_engine::load_objects(engine.config(), &source, &vars)
        })
        .await
        .unwrap_or_else(|e| Err(ferry_engine::EngineError::Task(e)));
        match loaded {
            Ok(objects) => {
                Metrics::result(&self.metrics.source_loads, "success");
                self.source_timer.settle(true, self.source_interval);
                for (kind, n) in [
                    ("ImageRepository", objects.image_repositories.len()),
                    ("ImagePolicy", objects.image_policies.len()),
                    (
                        "ImageUpdateAutomation",
                        objects.image_update_automations.len(),
                    ),
                ] {
                    self.metrics
                        .objects
                        .get_or_create(&KindLabel { kind: kind.into() })
                        .set(n as i64);
                }
                let changed = self.objects.as_deref() != Some(&objects);
                if changed {
                    tracing::info!(objects = objects.len(), "objects loaded; reconciling all");
                    if let Err(e) = self.engine.prune(&objects) {
                        tracing::error!("pruning removed objects from the state store failed: {e}");
                    }
                    // New or changed objects: everything is due now.
                    self.repos = due_now(objects.image_repositories.iter());
                    self.automations = due_now(objects.image_update_automations.iter());
                    self.policies = due_now(
                        objects
                            .image_policies
                            .iter()
                            .filter(|p| policy_interval(p).is_some()),
                    );
                    let objects = Arc::new(objects);
                    self.published.send_replace(Some(objects.clone()));
                    self.objects = Some(objects);
                }
                self.ready.store(true, Ordering::Release);
            }
            Err(e) => {
                Metrics::result(&self.metrics.source_loads, "failure");
                self.source_timer.settle(false, self.source_interval);
                tracing::error!("loading objects failed (keeping the last good set): {e}");
            }
        }
    }

    /// The repositories, timed policies and automations a pass must cover now.
    fn due(
        &self,
        objects: &ObjectSet,
        pushed: &BTreeSet<PushedRepo>,
        git: bool,
    ) -> (BTreeSet<Key>, BTreeSet<Key>, BTreeSet<Key>) {
        let horizon = Instant::now() + COALESCE;
        let mut repos: BTreeSet<Key> = self
            .repos
            .iter()
            .filter(|(_, t)| t.next <= horizon)
            .map(|(k, _)| k.clone())
            .collect();
        let policies: BTreeSet<Key> = self
            .policies
            .iter()
            .filter(|(_, t)| t.next <= horizon)
            .map(|(k, _)| k.clone())
            .collect();
        let mut autos: BTreeSet<Key> = self
            .automations
            .iter()
            .filter(|(_, t)| t.next <= horizon)
            .map(|(k, _)| k.clone())
            .collect();
        if git {
            autos.extend(self.automations.keys().cloned());
        }
        repos.extend(ferry_hooks::match_pushed(objects, pushed));
        (repos, policies, autos)
    }

    /// One pass, in three engine calls: (1) list the tags of the due repositories; (2) evaluate
    /// the policies of those repositories plus the timed policies that are due (digest
    /// reflection `Always`), from the stored tags; (3) run the automations that are due or that
    /// write a policy whose `latestRef` (digest included) just changed. Timers and metrics are
    /// updated from the outcomes.
    async fn pass(
        &mut self,
        full: &ObjectSet,
        repos: &BTreeSet<Key>,
        policies: &BTreeSet<Key>,
        autos: &BTreeSet<Key>,
        trigger: &str,
    ) {
        self.metrics
            .passes
            .get_or_create(&TriggerLabel {
                trigger: trigger.into(),
            })
            .inc();
        let mut to_evaluate = policies.clone();
        if !repos.is_empty() {
            let set = scan_subset(full, repos);
            // A scan call that failed as a whole stored no tags: its policies have nothing new.
            if let Some(report) = self.call(&set, Phase::Scan).await {
                self.record(&set, &report);
                to_evaluate.extend(
                    full.image_policies
                        .iter()
                        .filter(|p| repos.contains(&policy_repo(p)))
                        .map(|p| key(p.namespace(), p.name())),
                );
            }
        }
        let mut changed: BTreeSet<Key> = BTreeSet::new();
        if !to_evaluate.is_empty() {
            let set = policy_subset(full, &to_evaluate);
            let before = policy_refs(&self.engine, &set);
            if let Some(report) = self.call(&set, Phase::Policies).await {
                let after = policy_refs(&self.engine, &set);
                for (k, v) in &after {
                    if before.get(k) != Some(v) && v.is_some() {
                        self.metrics.policy_changes.inc();
                        changed.insert(k.clone());
                    }
                }
                self.record(&set, &report);
            }
        }
        let set = automation_subset(full, autos, &changed);
        if !set.image_update_automations.is_empty()
            && let Some(report) = self.call(&set, Phase::Automations).await
        {
            self.record(&set, &report);
        }
    }

    /// One engine call over `set` (records of objects outside it are left alone). `None` when
    /// the whole call failed (every object in it backs off).
    async fn call(&mut self, set: &ObjectSet, phase: Phase) -> Option<RunReport> {
        let kind = phase.kind();
        tracing::info!(
            kind,
            repositories = set.image_repositories.len(),
            policies = set.image_policies.len(),
            automations = set.image_update_automations.len(),
            "reconcile"
        );
        let started = Instant::now();
        let result: Result<RunReport, EngineError> = match phase {
            Phase::Scan => self.engine.scan(set).await,
            Phase::Policies => self
                .engine
                .evaluate_policies(set)
                .await
                .map(|outcomes| RunReport {
                    outcomes,
                    pushes: Vec::new(),
                }),
            Phase::Automations => self.engine.reconcile(set, &self.options).await,
        };
        let elapsed = started.elapsed();
        self.metrics
            .reconcile_duration
            .get_or_create(&KindLabel { kind: kind.into() })
            .observe(elapsed.as_secs_f64());
        match result {
            Ok(report) => {
                tracing::info!(
                    kind,
                    pushes = report.pushes.len(),
                    failed = report.failed(),
                    ms = elapsed.as_millis() as u64,
                    "reconcile done"
                );
                Some(report)
            }
            Err(e) => {
                tracing::error!("reconcile failed: {e}");
                for r in &set.image_repositories {
                    if let Some(t) = self.repos.get_mut(&key(r.namespace(), r.name())) {
                        t.settle(false, r.spec.interval.0);
                    }
                }
                for p in &set.image_policies {
                    if let (Some(t), Some(interval)) = (
                        self.policies.get_mut(&key(p.namespace(), p.name())),
                        policy_interval(p),
                    ) {
                        t.settle(false, interval);
                    }
                }
                for a in &set.image_update_automations {
                    if let Some(t) = self.automations.get_mut(&key(a.namespace(), a.name())) {
                        t.settle(false, a.spec.interval.0);
                    }
                }
                None
            }
        }
    }

    fn record(&mut self, subset: &ObjectSet, report: &RunReport) {
        let outcome = |kind: Kind, ns: &str, name: &str| {
            report
                .outcomes
                .iter()
                .find(|o| o.kind == kind && o.namespace == ns && o.name == name)
        };
        for r in &subset.image_repositories {
            let k = key(r.namespace(), r.name());
            let ok =
                outcome(Kind::ImageRepository, r.namespace(), r.name()).is_none_or(|o| !o.failed());
            if !r.spec.suspend {
                Metrics::result(&self.metrics.scans, if ok { "success" } else { "failure" });
            }
            if let Some(t) = self.repos.get_mut(&k) {
                t.settle(ok, r.spec.interval.0);
            }
        }
        // A policy evaluated in any phase restarts its own interval.
        for p in &subset.image_policies {
            let ok =
                outcome(Kind::ImagePolicy, p.namespace(), p.name()).is_none_or(|o| !o.failed());
            if let (Some(t), Some(interval)) = (
                self.policies.get_mut(&key(p.namespace(), p.name())),
                policy_interval(p),
            ) {
                t.settle(ok, interval);
            }
        }
        // Tags seen: read back from the store (the outcome only carries a message).
        {
            let store = self.engine.store();
            for r in &subset.image_repositories {
                if let Ok(Some(rec)) = store.get(Kind::ImageRepository, r.namespace(), r.name())
                    && let Some(scan) = rec.scan
                    && outcome(Kind::ImageRepository, r.namespace(), r.name())
                        .is_some_and(|o| o.ready)
                {
                    self.metrics.tags_seen.inc_by(scan.tag_count as u64);
                }
            }
        }
        for a in &subset.image_update_automations {
            let k = key(a.namespace(), a.name());
            let ok = outcome(Kind::ImageUpdateAutomation, a.namespace(), a.name())
                .is_none_or(|o| !o.failed());
            let id = format!("{}/{}", a.namespace(), a.name());
            let pushed = report.pushes.iter().any(|p| p.automation == id);
            if !a.spec.suspend {
                let result = match (ok, pushed) {
                    (false, _) => "failed",
                    (true, true) => "pushed",
                    (true, false) => "unchanged",
                };
                Metrics::result(&self.metrics.automation_runs, result);
            }
            if let Some(t) = self.automations.get_mut(&k) {
                t.settle(ok, a.spec.interval.0);
            }
        }
        for push in &report.pushes {
            if push.commit.is_some() {
                self.metrics.git_pushes.inc();
                tracing::info!(automation = %push.automation, commit = push.commit.as_deref().unwrap_or(""), branch = %push.branch, "pushed");
            }
            if push.attempts > 1 {
                self.metrics
                    .git_push_conflicts
                    .inc_by(u64::from(push.attempts - 1));
            }
        }
        for o in report.outcomes.iter().filter(|o| o.failed()) {
            tracing::warn!(kind = o.kind.as_str(), object = %format!("{}/{}", o.namespace, o.name), reason = %o.reason, "{}", o.message);
        }
    }
}

fn key(ns: &str, name: &str) -> Key {
    (ns.to_string(), name.to_string())
}

fn policy_repo(p: &ferry_api::ImagePolicy) -> Key {
    key(
        p.spec.image_repository_ref.namespace_or(p.namespace()),
        &p.spec.image_repository_ref.name,
    )
}

/// Lookup-only objects every subset carries.
fn base(full: &ObjectSet) -> ObjectSet {
    ObjectSet {
        git_repositories: full.git_repositories.clone(),
        namespaces: full.namespaces.clone(),
        pipelines: full.pipelines.clone(),
        ..ObjectSet::default()
    }
}

/// The scan phase: the given repositories only (no policies, so `Engine::scan` only lists tags).
pub fn scan_subset(full: &ObjectSet, repos: &BTreeSet<Key>) -> ObjectSet {
    let mut set = base(full);
    set.image_repositories = full
        .image_repositories
        .iter()
        .filter(|r| repos.contains(&key(r.namespace(), r.name())))
        .cloned()
        .collect();
    set
}

/// The policy phase: the given policies and the repositories they reference (for the image
/// name, the ACL and the credentials of a digest lookup; their tags are read from the store).
/// No automations: reading holds would fetch Git on every evaluation, so the engine keeps the
/// last known holds (the automation phase refreshes them).
pub fn policy_subset(full: &ObjectSet, policies: &BTreeSet<Key>) -> ObjectSet {
    let mut set = base(full);
    set.image_policies = full
        .image_policies
        .iter()
        .filter(|p| policies.contains(&key(p.namespace(), p.name())))
        .cloned()
        .collect();
    with_policy_repositories(set, full)
}

/// The automation phase:
/// - each due automation with every policy in its namespace (it re-applies all of them);
/// - each automation whose `policySelector` selects a changed policy of its namespace, with
///   the changed policies only (the others' markers already hold their values);
/// - the repositories of those policies (the engine needs their stored tags), and the lookups.
pub fn automation_subset(
    full: &ObjectSet,
    due: &BTreeSet<Key>,
    changed: &BTreeSet<Key>,
) -> ObjectSet {
    let mut set = base(full);
    let due_ns: BTreeSet<&str> = full
        .image_update_automations
        .iter()
        .filter(|a| due.contains(&key(a.namespace(), a.name())))
        .map(|a| a.namespace())
        .collect();
    let changed_policies: Vec<&ferry_api::ImagePolicy> = full
        .image_policies
        .iter()
        .filter(|p| changed.contains(&key(p.namespace(), p.name())))
        .collect();
    set.image_update_automations = full
        .image_update_automations
        .iter()
        .filter(|a| {
            due.contains(&key(a.namespace(), a.name()))
                || changed_policies.iter().any(|p| a.selects(p))
        })
        .cloned()
        .collect();
    set.image_policies = full
        .image_policies
        .iter()
        .filter(|p| {
            due_ns.contains(p.namespace()) || changed.contains(&key(p.namespace(), p.name()))
        })
        .cloned()
        .collect();
    with_policy_repositories(set, full)
}

/// Adds to `set` the ImageRepositories its policies reference (the engine reads their tags).
fn with_policy_repositories(mut set: ObjectSet, full: &ObjectSet) -> ObjectSet {
    let repo_keys: BTreeSet<Key> = set.image_policies.iter().map(policy_repo).collect();
    set.image_repositories = full
        .image_repositories
        .iter()
        .filter(|r| repo_keys.contains(&key(r.namespace(), r.name())))
        .cloned()
        .collect();
    set
}

fn policy_refs(engine: &Engine, set: &ObjectSet) -> BTreeMap<Key, Option<String>> {
    let store = engine.store();
    set.image_policies
        .iter()
        .map(|p| {
            let latest = store
                .get(Kind::ImagePolicy, p.namespace(), p.name())
                .ok()
                .flatten()
                .and_then(|r| r.policy)
                .and_then(|p| p.latest_ref)
                .map(|l| format!("{}:{}@{}", l.name, l.tag, l.digest.unwrap_or_default()));
            (key(p.namespace(), p.name()), latest)
        })
        .collect()
}

/// A timer that fires now for each object.
fn due_now<'a, S: ferry_api::Spec + 'a>(
    objects: impl Iterator<Item = &'a ferry_api::Object<S>>,
) -> BTreeMap<Key, Timer> {
    objects
        .map(|o| (key(o.namespace(), o.name()), Timer::now()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBJECTS: &str = "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: app, namespace: flux-system}
spec: {image: 127.0.0.1:1/org/app, interval: 1h}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: other, namespace: flux-system}
spec: {image: 127.0.0.1:1/org/other, interval: 1h}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: always, namespace: apps}
spec:
  imageRepositoryRef: {name: app, namespace: flux-system}
  digestReflectionPolicy: Always
  interval: 2s
  policy: {semver: {range: '>=1.0.0'}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: always-default, namespace: apps}
spec:
  imageRepositoryRef: {name: app, namespace: flux-system}
  digestReflectionPolicy: Always
  policy: {semver: {range: '>=1.0.0'}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: once, namespace: apps}
spec:
  imageRepositoryRef: {name: other, namespace: flux-system}
  digestReflectionPolicy: IfNotPresent
  interval: 2s
  policy: {semver: {range: '>=1.0.0'}}
";

    fn objects() -> ObjectSet {
        ferry_api::load_str("objects.yaml", OBJECTS, &Vars::new()).unwrap()
    }

    #[test]
    fn only_always_policies_have_a_timer() {
        let set = objects();
        let intervals: Vec<(&str, Option<Duration>)> = set
            .image_policies
            .iter()
            .map(|p| (p.name(), policy_interval(p)))
            .collect();
        assert_eq!(
            intervals,
            vec![
                ("always", Some(Duration::from_secs(2))),
                ("always-default", Some(Duration::from_secs(600))),
                ("once", None),
            ]
        );
    }

    #[test]
    fn policy_subset_carries_the_policy_and_its_repository_only() {
        let set = objects();
        let want: BTreeSet<Key> = [key("apps", "always")].into();
        let sub = policy_subset(&set, &want);
        let names = |s: &ObjectSet| {
            (
                s.image_repositories
                    .iter()
                    .map(|r| r.name().to_string())
                    .collect::<Vec<_>>(),
                s.image_policies
                    .iter()
                    .map(|p| p.name().to_string())
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(names(&sub), (vec!["app".into()], vec!["always".into()]));
        assert!(sub.image_update_automations.is_empty());
        // The scan phase carries no policies: `Engine::scan` then only lists tags.
        let scan = scan_subset(&set, &[key("flux-system", "other")].into());
        assert_eq!(names(&scan), (vec!["other".into()], vec![]));
    }

    #[test]
    fn backoff_doubles_from_750ms_to_15m() {
        assert_eq!(backoff(1), Duration::from_millis(750));
        assert_eq!(backoff(2), Duration::from_millis(1500));
        assert_eq!(backoff(5), Duration::from_millis(12000));
        assert_eq!(backoff(100), Duration::from_secs(900));
    }

    #[test]
    fn jitter_stays_within_five_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(60));
            assert!(
                d >= Duration::from_secs(57) && d <= Duration::from_secs(63),
                "{d:?}"
            );
        }
    }
}
