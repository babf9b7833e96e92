//! The loop: sleeps until the next timer or a trigger, reloads the objects when due, and runs one
//! pass (scan → policies → automations) over the due objects through [`Steps`].

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferry_api::{ObjectSet, Vars};
use ferry_store::Kind;
use tokio::sync::watch;
use tokio::time::Instant;

use super::subsets::{automation_subset, changed_refs, policies_of, policy_subset, scan_subset};
use super::{Due, ObjectKey, Pending, Timers, Trigger, key};
use crate::{AutomationOptions, Engine, EngineError, ObjectOutcome, ObjectSource, RunReport};

/// The engine calls a pass makes. [`EngineSteps`] is the real one; tests pass in-memory fakes.
pub trait Steps: Send + Sync + 'static {
    /// Reads the objects from their source (a Git branch or a directory).
    fn load(&self) -> impl Future<Output = Result<ObjectSet, EngineError>> + Send;
    /// Drops the records of objects that left the source.
    fn prune(&self, objects: &ObjectSet) -> Result<usize, EngineError>;
    /// Lists the tags of `set`'s repositories (`set` has no policies).
    fn scan(&self, set: &ObjectSet) -> impl Future<Output = Result<RunReport, EngineError>> + Send;
    /// Elects `set`'s policies from the stored tags.
    fn evaluate(
        &self,
        set: &ObjectSet,
    ) -> impl Future<Output = Result<RunReport, EngineError>> + Send;
    /// Runs `set`'s automations: setters, commit and push.
    fn automate(
        &self,
        set: &ObjectSet,
    ) -> impl Future<Output = Result<RunReport, EngineError>> + Send;
    /// Each policy's stored `latestRef` (`name:tag@digest`), to see which ones a step changed.
    fn latest_refs(&self, set: &ObjectSet) -> BTreeMap<ObjectKey, Option<String>>;
}

/// The steps on a real [`Engine`].
pub struct EngineSteps {
    pub engine: Arc<Engine>,
    pub source: ObjectSource,
    pub vars: Vars,
    pub options: AutomationOptions,
}

impl Steps for EngineSteps {
    async fn load(&self) -> Result<ObjectSet, EngineError> {
        let engine = self.engine.clone();
        let source = self.source.clone();
        let vars = self.vars.clone();
        crate::blocking(move || crate::load_objects(engine.config(), &source, &vars))
            .await
            .unwrap_or_else(|e| Err(EngineError::Task(e)))
    }

    fn prune(&self, objects: &ObjectSet) -> Result<usize, EngineError> {
        self.engine.prune(objects)
    }

    async fn scan(&self, set: &ObjectSet) -> Result<RunReport, EngineError> {
        self.engine.scan(set).await
    }

    async fn evaluate(&self, set: &ObjectSet) -> Result<RunReport, EngineError> {
        let outcomes = self.engine.evaluate_policies(set).await?;
        Ok(RunReport {
            outcomes,
            pushes: Vec::new(),
        })
    }

    async fn automate(&self, set: &ObjectSet) -> Result<RunReport, EngineError> {
        self.engine.reconcile(set, &self.options).await
    }

    fn latest_refs(&self, set: &ObjectSet) -> BTreeMap<ObjectKey, Option<String>> {
        let store = self.engine.store();
        (set.image_policies.iter())
            .map(|p| {
                let latest = (store.get(Kind::ImagePolicy, p.namespace(), p.name()).ok())
                    .flatten()
                    .and_then(|r| r.policy)
                    .and_then(|p| p.latest_ref)
                    .map(|l| format!("{}:{}@{}", l.name, l.tag, l.digest.unwrap_or_default()));
                (key(Kind::ImagePolicy, p.namespace(), p.name()), latest)
            })
            .collect()
    }
}

/// The three steps of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// List tags of the due repositories.
    Scan,
    /// Elect the policies from the stored tags.
    Policies,
    /// Setters, commit and push.
    Automations,
}

impl Step {
    /// The kind of object the step is about (the `kind` label of its metrics).
    pub fn kind(self) -> &'static str {
        match self {
            Step::Scan => "ImageRepository",
            Step::Policies => "ImagePolicy",
            Step::Automations => "ImageUpdateAutomation",
        }
    }

    /// Whether the step runs objects of `kind` (and so reports on them). Evaluating policies
    /// lists no tags: the repositories it carries are lookups. `Engine::reconcile` scans and
    /// evaluates again before it writes.
    pub fn runs(self, kind: Kind) -> bool {
        match self {
            Step::Scan => kind == Kind::ImageRepository,
            Step::Policies => kind == Kind::ImagePolicy,
            Step::Automations => true,
        }
    }
}

/// Why a pass ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The first pass after the objects were read.
    Startup,
    /// Timers only.
    Interval,
    /// A registry push.
    Registry,
    /// A Git change (or a pass asked for).
    Git,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Startup => "startup",
            Cause::Interval => "interval",
            Cause::Registry => "registry",
            Cause::Git => "git",
        }
    }
}

/// One finished step, for an [`Observer`].
#[derive(Debug)]
pub struct StepDone<'a> {
    pub step: Step,
    pub set: &'a ObjectSet,
    pub elapsed: Duration,
    pub result: Result<&'a RunReport, &'a EngineError>,
}

/// What the scheduler reports as it goes (the daemon turns it into metrics). Every method is
/// called on the scheduler's task between steps: keep it quick.
pub trait Observer: Send + Sync {
    /// The objects were read (or not: the last good set stays in use).
    fn loaded(&self, _result: Result<&ObjectSet, &EngineError>) {}
    /// A pass starts.
    fn pass(&self, _cause: Cause) {}
    /// A step ended.
    fn step(&self, _done: &StepDone<'_>) {}
    /// A policy's `latestRef` changed in a pass.
    fn policy_changed(&self, _policy: &ObjectKey) {}
}

impl Observer for () {}

/// The scheduler's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How often the objects are re-read.
    pub source_interval: Duration,
    /// How long to wait after a trigger for the rest of its burst.
    pub debounce: Duration,
    /// The jitter of every interval, as a fraction (0.05: ± 5%).
    pub jitter: f64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            source_interval: Duration::from_secs(60),
            debounce: Duration::from_millis(50),
            jitter: 0.05,
        }
    }
}

/// The daemon's loop: one task, one pass at a time.
pub struct Scheduler<S> {
    steps: S,
    observer: Arc<dyn Observer>,
    trigger: Arc<Trigger>,
    debounce: Duration,
    /// The objects in use, for readers outside the scheduler (DORA gauges, dashboard).
    published: watch::Sender<Option<Arc<ObjectSet>>>,
    /// Counts finished passes, so readers can refresh after each one.
    passes_done: watch::Sender<u64>,
    objects: Option<Arc<ObjectSet>>,
    timers: Timers,
}

impl<S: Steps> Scheduler<S> {
    pub fn new(steps: S, settings: Settings) -> Scheduler<S> {
        Scheduler {
            steps,
            observer: Arc::new(()),
            trigger: Arc::default(),
            debounce: settings.debounce,
            published: watch::channel(None).0,
            passes_done: watch::channel(0).0,
            objects: None,
            timers: Timers::new(Instant::now(), settings.source_interval, settings.jitter),
        }
    }

    /// Reports to `observer` (metrics) as the passes go.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Scheduler<S> {
        self.observer = observer;
        self
    }

    /// The handle that asks for a pass (webhooks, dashboard actions).
    pub fn trigger(&self) -> Arc<Trigger> {
        self.trigger.clone()
    }

    /// The objects in use (`None` until the first load succeeds).
    pub fn objects(&self) -> watch::Receiver<Option<Arc<ObjectSet>>> {
        self.published.subscribe()
    }

    /// The number of passes finished so far; changes after each pass.
    pub fn passes(&self) -> watch::Receiver<u64> {
        self.passes_done.subscribe()
    }

    /// Runs until `shutdown` turns true; a pass in flight is always finished first.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut cause = Cause::Startup;
        while !*shutdown.borrow() {
            let pending = self.trigger.take();
            let triggered = !pending.pushed.is_empty() || pending.git;
            if pending.git || self.timers.source_due(Instant::now()) || self.objects.is_none() {
                self.reload().await;
            }
            if let Some(objects) = self.objects.clone() {
                let now = Instant::now();
                let due = self.timers.due(now, &objects, &pending.pushed, pending.git);
                if !due.is_empty() {
                    self.pass(&objects, &due, cause_of(&pending, cause)).await;
                    self.passes_done.send_modify(|n| *n += 1);
                }
            }
            cause = Cause::Interval;
            if triggered {
                // Events that arrived during the pass: go round again at once.
                continue;
            }
            self.wait(&mut shutdown).await;
        }
        tracing::info!("scheduler stopped");
    }

    /// Sleeps until the next timer, a trigger (plus the debounce window) or shutdown.
    async fn wait(&self, shutdown: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = tokio::time::sleep_until(self.timers.next_wake()) => {}
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

    /// Re-reads the objects. On failure the last good set stays in use.
    async fn reload(&mut self) {
        let loaded = self.steps.load().await;
        self.observer.loaded(loaded.as_ref());
        let now = Instant::now();
        match loaded {
            Ok(objects) => {
                self.timers.settle_source(now, true);
                if self.objects.as_deref() != Some(&objects) {
                    tracing::info!(objects = objects.len(), "objects loaded; reconciling all");
                    if let Err(e) = self.steps.prune(&objects) {
                        tracing::error!("pruning removed objects from the state store failed: {e}");
                    }
                    // New or changed objects: everything is due now.
                    self.timers.reset(&objects, now);
                    let objects = Arc::new(objects);
                    self.published.send_replace(Some(objects.clone()));
                    self.objects = Some(objects);
                }
            }
            Err(e) => {
                self.timers.settle_source(now, false);
                tracing::error!("loading objects failed (keeping the last good set): {e}");
            }
        }
    }

    /// One pass, in three steps: (1) list the tags of the due repositories; (2) evaluate the
    /// policies of those repositories plus the timed policies that are due (digest reflection
    /// `Always`), from the stored tags; (3) run the automations that are due or that write a
    /// policy whose `latestRef` (digest included) just changed. Timers follow the outcomes.
    async fn pass(&mut self, full: &ObjectSet, due: &Due, cause: Cause) {
        self.observer.pass(cause);
        let mut to_evaluate = due.policies.clone();
        if !due.repos.is_empty() {
            let set = scan_subset(full, &due.repos);
            // A scan step that failed as a whole stored no tags: its policies have nothing new.
            if self.call(&set, Step::Scan).await {
                to_evaluate.extend(policies_of(full, &due.repos));
            }
        }
        let mut changed = BTreeSet::new();
        if !to_evaluate.is_empty() {
            let set = policy_subset(full, &to_evaluate);
            let before = self.steps.latest_refs(&set);
            if self.call(&set, Step::Policies).await {
                changed = changed_refs(&before, &self.steps.latest_refs(&set));
                changed.iter().for_each(|k| self.observer.policy_changed(k));
            }
        }
        let set = automation_subset(full, &due.automations, &changed);
        if !set.image_update_automations.is_empty() {
            self.call(&set, Step::Automations).await;
        }
    }

    /// One step over `set`; the timers of the objects it runs follow the outcomes. False when
    /// the whole step failed (every object it runs backs off).
    async fn call(&mut self, set: &ObjectSet, step: Step) -> bool {
        let kind = step.kind();
        tracing::info!(
            kind,
            repositories = set.image_repositories.len(),
            policies = set.image_policies.len(),
            automations = set.image_update_automations.len(),
            "reconcile"
        );
        let started = Instant::now();
        let result = match step {
            Step::Scan => self.steps.scan(set).await,
            Step::Policies => self.steps.evaluate(set).await,
            Step::Automations => self.steps.automate(set).await,
        };
        let elapsed = started.elapsed();
        self.observer.step(&StepDone {
            step,
            set,
            elapsed,
            result: result.as_ref(),
        });
        let now = Instant::now();
        match result {
            Ok(report) => {
                log_report(kind, &report, elapsed);
                self.timers.settle(set, now, |kind, ns, name| {
                    step.runs(kind).then(|| outcome_ok(&report, kind, ns, name))
                });
                true
            }
            Err(e) => {
                tracing::error!("reconcile failed: {e}");
                self.timers
                    .settle(set, now, |kind, _, _| step.runs(kind).then_some(false));
                false
            }
        }
    }
}

/// The cause a pass is labelled with: a trigger if one came, else the loop's own.
fn cause_of(pending: &Pending, timers: Cause) -> Cause {
    if pending.git {
        Cause::Git
    } else if !pending.pushed.is_empty() {
        Cause::Registry
    } else {
        timers
    }
}

/// One object's outcome in a step's report.
pub fn outcome<'a>(
    report: &'a RunReport,
    kind: Kind,
    ns: &str,
    name: &str,
) -> Option<&'a ObjectOutcome> {
    (report.outcomes.iter()).find(|o| o.kind == kind && o.namespace == ns && o.name == name)
}

/// Whether an object of a step went well (no outcome: nothing failed).
pub fn outcome_ok(report: &RunReport, kind: Kind, ns: &str, name: &str) -> bool {
    outcome(report, kind, ns, name).is_none_or(|o| !o.failed())
}

fn log_report(kind: &str, report: &RunReport, elapsed: Duration) {
    tracing::info!(
        kind,
        pushes = report.pushes.len(),
        failed = report.failed(),
        ms = elapsed.as_millis() as u64,
        "reconcile done"
    );
    for push in &report.pushes {
        if let Some(commit) = &push.commit {
            tracing::info!(automation = %push.automation, commit = %commit, branch = %push.branch, "pushed");
        }
    }
    for o in report.outcomes.iter().filter(|o| o.failed()) {
        tracing::warn!(kind = o.kind.as_str(), object = %format!("{}/{}", o.namespace, o.name), reason = %o.reason, "{}", o.message);
    }
}
