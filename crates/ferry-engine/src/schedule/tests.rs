//! The scheduler on paused tokio time, with in-memory steps (no registry, no Git): every call the
//! loop makes is recorded with the virtual time it was made at.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_api::{ObjectSet, Vars};
use ferry_store::Kind;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::*;
use crate::{EngineError, ObjectOutcome, RunReport};

const OBJECTS: &str = "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: app, namespace: flux-system}
spec: {image: 127.0.0.1:1/org/app, interval: 1m}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: other, namespace: flux-system}
spec: {image: 127.0.0.1:1/org/other, interval: 5m}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: always, namespace: apps}
spec:
  imageRepositoryRef: {name: app, namespace: flux-system}
  digestReflectionPolicy: Always
  interval: 30s
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
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {name: auto, namespace: apps}
spec:
  interval: 10m
  sourceRef: {name: repo}
  git:
    commit:
      author: {email: bot@example.com}
";

const THIRD: &str = "
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: third, namespace: flux-system}
spec: {image: 127.0.0.1:1/org/third, interval: 1h}
";

fn objects(text: &str) -> ObjectSet {
    ferry_api::load_str("objects.yaml", text, &Vars::new()).unwrap()
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// One call of the loop: `load`, `pass:<cause>`, or a step with the names of its primary objects.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    at: Duration,
    what: String,
    names: Vec<String>,
}

/// The outside world as the fake steps see it; tests change it between calls.
#[derive(Default)]
struct World {
    objects: Mutex<ObjectSet>,
    /// Objects (by name) whose outcome fails during a window of virtual time (set ahead, so the
    /// test never races the loop).
    failing: Mutex<BTreeMap<String, std::ops::Range<Duration>>>,
    /// Calls (`load`, `scan`, `policies`, `automations`) that fail as a whole.
    broken: Mutex<BTreeSet<&'static str>>,
    /// Policy name → the `latestRef` its next evaluation elects.
    elect: Mutex<BTreeMap<String, String>>,
    refs: Mutex<BTreeMap<ObjectKey, Option<String>>>,
    /// When set, a scan waits for a permit (a pass held in flight).
    gate: Mutex<Option<Arc<Semaphore>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap()
}

struct Fake {
    world: Arc<World>,
    start: Instant,
    calls: mpsc::UnboundedSender<Call>,
}

impl Fake {
    fn record(&self, what: &str, names: Vec<String>) {
        let at = self.start.elapsed();
        let _ = self.calls.send(Call {
            at,
            what: what.to_string(),
            names,
        });
    }

    /// Records the call with the names of its primary objects; every object of `set` named in
    /// `failing` fails (as `Engine::reconcile` reports on the repositories it rescans).
    fn report(
        &self,
        what: &'static str,
        primary: Vec<(String, String)>,
        set: &ObjectSet,
    ) -> Result<RunReport, EngineError> {
        self.record(what, primary.into_iter().map(|(_, n)| n).collect());
        let at = self.start.elapsed();
        if lock(&self.world.broken).contains(what) {
            return Err(EngineError::Invalid(format!("{what} broken")));
        }
        let failing = lock(&self.world.failing);
        let all = (names(&set.image_repositories).into_iter())
            .map(|k| (Kind::ImageRepository, k))
            .chain(
                names(&set.image_policies)
                    .into_iter()
                    .map(|k| (Kind::ImagePolicy, k)),
            )
            .chain(
                (names(&set.image_update_automations).into_iter())
                    .map(|k| (Kind::ImageUpdateAutomation, k)),
            );
        let outcomes = all
            .filter(|(_, (_, n))| failing.get(n).is_some_and(|w| w.contains(&at)))
            .map(|(kind, (namespace, name))| ObjectOutcome {
                kind,
                namespace,
                name,
                ready: false,
                suspended: false,
                reason: "Failed".into(),
                message: "fake failure".into(),
            })
            .collect();
        Ok(RunReport {
            outcomes,
            pushes: Vec::new(),
        })
    }
}

fn keys_of<S: ferry_api::Spec>(objects: &[ferry_api::Object<S>]) -> Vec<ObjectKey> {
    let kind = Kind::parse(S::KIND).unwrap();
    (objects.iter())
        .map(|o| key(kind, o.namespace(), o.name()))
        .collect()
}

fn names<S: ferry_api::Spec>(objects: &[ferry_api::Object<S>]) -> Vec<(String, String)> {
    (objects.iter())
        .map(|o| (o.namespace().to_string(), o.name().to_string()))
        .collect()
}

impl Steps for Fake {
    async fn load(&self) -> Result<ObjectSet, EngineError> {
        self.record("load", Vec::new());
        if lock(&self.world.broken).contains("load") {
            return Err(EngineError::Source("unreachable".into()));
        }
        Ok(lock(&self.world.objects).clone())
    }

    fn prune(&self, _objects: &ObjectSet) -> Result<usize, EngineError> {
        Ok(0)
    }

    async fn scan(&self, set: &ObjectSet) -> Result<RunReport, EngineError> {
        let report = self.report("scan", names(&set.image_repositories), set);
        let gate = lock(&self.world.gate).clone();
        if let Some(gate) = gate {
            let _permit = gate.acquire().await;
        }
        report
    }

    async fn evaluate(&self, set: &ObjectSet) -> Result<RunReport, EngineError> {
        let report = self.report("policies", names(&set.image_policies), set);
        let elect = lock(&self.world.elect).clone();
        let mut refs = lock(&self.world.refs);
        for p in &set.image_policies {
            if let Some(r) = elect.get(p.name()) {
                refs.insert(
                    key(Kind::ImagePolicy, p.namespace(), p.name()),
                    Some(r.clone()),
                );
            }
        }
        report
    }

    async fn automate(&self, set: &ObjectSet) -> Result<RunReport, EngineError> {
        self.report("automations", names(&set.image_update_automations), set)
    }

    fn latest_refs(&self, set: &ObjectSet) -> BTreeMap<ObjectKey, Option<String>> {
        let refs = lock(&self.world.refs);
        (set.image_policies.iter())
            .map(|p| {
                let k = key(Kind::ImagePolicy, p.namespace(), p.name());
                let v = refs.get(&k).cloned().flatten();
                (k, v)
            })
            .collect()
    }
}

/// Marks each pass in the call log.
struct PassMarker {
    start: Instant,
    calls: mpsc::UnboundedSender<Call>,
}

impl Observer for PassMarker {
    fn pass(&self, cause: Cause) {
        let _ = self.calls.send(Call {
            at: self.start.elapsed(),
            what: format!("pass:{}", cause.as_str()),
            names: Vec::new(),
        });
    }
}

/// A scheduler running on its own task over `world`, with no jitter, a 1 h source interval and
/// a 50 ms debounce.
struct Harness {
    world: Arc<World>,
    calls: mpsc::UnboundedReceiver<Call>,
    trigger: Arc<Trigger>,
    objects: watch::Receiver<Option<Arc<ObjectSet>>>,
    passes: watch::Receiver<u64>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Harness {
    fn start(text: &str, source_interval: Duration) -> Harness {
        let world = Arc::new(World::default());
        *lock(&world.objects) = objects(text);
        let start = Instant::now();
        let (tx, calls) = mpsc::unbounded_channel();
        let fake = Fake {
            world: world.clone(),
            start,
            calls: tx.clone(),
        };
        let settings = Settings {
            source_interval,
            debounce: Duration::from_millis(50),
            jitter: 0.0,
        };
        let scheduler =
            Scheduler::new(fake, settings).with_observer(Arc::new(PassMarker { start, calls: tx }));
        let (stop, stop_rx) = watch::channel(false);
        Harness {
            world,
            calls,
            trigger: scheduler.trigger(),
            objects: scheduler.objects(),
            passes: scheduler.passes(),
            stop,
            task: tokio::spawn(scheduler.run(stop_rx)),
        }
    }

    async fn next(&mut self) -> Call {
        self.calls.recv().await.expect("the scheduler stopped")
    }

    /// The next `n` calls.
    async fn take(&mut self, n: usize) -> Vec<Call> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }

    /// Every call made up to `until` (virtual time since the start), and the first one after.
    async fn until(&mut self, until: Duration) -> (Vec<Call>, Call) {
        let mut out = Vec::new();
        loop {
            let call = self.next().await;
            if call.at > until {
                return (out, call);
            }
            out.push(call);
        }
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        self.task.await.unwrap();
    }
}

fn call(at: f64, what: &str, names: &[&str]) -> Call {
    Call {
        at: secs(at),
        what: what.to_string(),
        names: names.iter().map(|n| n.to_string()).collect(),
    }
}

/// The startup pass: everything is due at once.
fn startup() -> Vec<Call> {
    vec![
        call(0.0, "load", &[]),
        call(0.0, "pass:startup", &[]),
        call(0.0, "scan", &["app", "other"]),
        call(0.0, "policies", &["always", "always-default", "once"]),
        call(0.0, "automations", &["auto"]),
    ]
}

/// The times (in seconds) at which `what` ran on `name`.
fn runs(calls: &[Call], what: &str, name: &str) -> Vec<f64> {
    (calls.iter())
        .filter(|c| c.what == what && c.names.iter().any(|n| n == name))
        .map(|c| c.at.as_secs_f64())
        .collect()
}

fn pushed(path: &str) -> PushedRepo {
    PushedRepo {
        host: None,
        path: path.to_string(),
    }
}

#[tokio::test(start_paused = true)]
async fn each_object_runs_on_its_own_interval() {
    let mut h = Harness::start(OBJECTS, Duration::from_secs(3600));
    assert_eq!(h.take(5).await, startup());
    let (calls, after) = h.until(secs(600.0)).await;
    let every = |step: f64, to: f64| -> Vec<f64> {
        (0..=(to / step) as u32)
            .map(|i| f64::from(i) * step)
            .collect()
    };
    // Repositories: `spec.interval` (1m, 5m).
    assert_eq!(runs(&calls, "scan", "app")[..], every(60.0, 600.0)[1..]);
    assert_eq!(runs(&calls, "scan", "other"), vec![300.0, 600.0]);
    // The `Always` policy on its own 30 s, besides each scan of its repository.
    assert_eq!(
        runs(&calls, "policies", "always")[..],
        every(30.0, 600.0)[1..]
    );
    // `Always` without an interval (10 min) never comes due: each scan of `app` restarts it.
    assert_eq!(
        runs(&calls, "policies", "always-default")[..],
        every(60.0, 600.0)[1..]
    );
    // `IfNotPresent` has no timer: only evaluated after its repository's scan.
    assert_eq!(runs(&calls, "policies", "once"), vec![300.0, 600.0]);
    // The automation: `spec.interval` 10m.
    assert_eq!(runs(&calls, "automations", "auto"), vec![600.0]);
    // No call outside a pass, and every pass due at one instant is one pass.
    let passes = calls.iter().filter(|c| c.what == "pass:interval").count();
    assert_eq!(passes, 20, "{calls:#?}");
    assert_eq!(after, call(630.0, "pass:interval", &[]));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_pass_covers_exactly_the_due_objects() {
    let mut h = Harness::start(OBJECTS, Duration::from_secs(3600));
    h.take(5).await;
    // 30 s: only the timed policy, evaluated from the stored tags (no scan, no automation).
    assert_eq!(
        h.take(2).await,
        vec![
            call(30.0, "pass:interval", &[]),
            call(30.0, "policies", &["always"]),
        ]
    );
    // 60 s: `app` with every policy of it; nothing of `other`.
    assert_eq!(
        h.take(3).await,
        vec![
            call(60.0, "pass:interval", &[]),
            call(60.0, "scan", &["app"]),
            call(60.0, "policies", &["always", "always-default"]),
        ]
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_registry_push_wakes_the_loop_early_and_a_new_ref_runs_the_automation() {
    let mut h = Harness::start(OBJECTS, Duration::from_secs(3600));
    h.take(5).await;
    lock(&h.world.elect).insert("once".into(), "other:1.1.0@sha256:b".into());
    tokio::time::advance(secs(10.0)).await;
    h.trigger.push(vec![pushed("org/other")]);
    // After the debounce window, not at the next timer (30 s): the pushed repository, its
    // policy, and (its `latestRef` changed) the automation that selects it, in the same pass.
    assert_eq!(
        h.take(4).await,
        vec![
            call(10.05, "pass:registry", &[]),
            call(10.05, "scan", &["other"]),
            call(10.05, "policies", &["once"]),
            call(10.05, "automations", &["auto"]),
        ]
    );
    // The loop goes back to its timers.
    assert_eq!(h.next().await, call(30.0, "pass:interval", &[]));
    assert_eq!(*h.passes.borrow(), 3);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_triggers_is_one_pass() {
    let mut h = Harness::start(OBJECTS, Duration::from_secs(3600));
    h.take(5).await;
    tokio::time::advance(secs(5.0)).await;
    // A push is several notifications (blobs, then the manifest), within the debounce window.
    h.trigger.push(vec![pushed("org/app")]);
    h.trigger.push(vec![pushed("org/app"), pushed("org/other")]);
    // Let the loop see the first event (its debounce window starts then), 20 ms later another.
    tokio::task::yield_now().await;
    tokio::time::advance(secs(0.02)).await;
    h.trigger.push(vec![pushed("org/app")]);
    h.trigger.push(Vec::new());
    assert_eq!(
        h.take(3).await,
        vec![
            call(5.05, "pass:registry", &[]),
            call(5.05, "scan", &["app", "other"]),
            call(5.05, "policies", &["always", "always-default", "once"]),
        ]
    );
    // No second pass for the same burst: the next call is the policy timer, restarted at 5.05.
    assert_eq!(h.next().await, call(35.05, "pass:interval", &[]));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn triggers_during_a_pass_make_one_more_pass() {
    let mut h = Harness::start(OBJECTS, Duration::from_secs(3600));
    h.take(5).await;
    let gate = Arc::new(Semaphore::new(0));
    *lock(&h.world.gate) = Some(gate.clone());
    tokio::time::advance(secs(5.0)).await;
    h.trigger.push(vec![pushed("org/app")]);
    assert_eq!(
        h.take(2).await,
        vec![
            call(5.05, "pass:registry", &[]),
            call(5.05, "scan", &["app"])
        ]
    );
    // The scan is in flight: three more events arrive, then it finishes.
    h.trigger.push(vec![pushed("org/other")]);
    h.trigger.push(vec![pushed("org/other")]);
    h.trigger.git();
    *lock(&h.world.gate) = None;
    gate.add_permits(1);
    assert_eq!(
        h.take(7).await,
        vec![
            call(5.05, "policies", &["always", "always-default"]),
            // At once, without a debounce: everything that came during the pass.
            call(5.05, "load", &[]),
            call(5.05, "pass:git", &[]),
            call(5.05, "scan", &["other"]),
            call(5.05, "policies", &["once"]),
            call(5.05, "automations", &["auto"]),
            call(35.05, "pass:interval", &[]),
        ]
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_git_trigger_reloads_and_runs_every_automation() {
    let mut h = Harness::start(OBJECTS, Duration::from_secs(3600));
    h.take(5).await;
    tokio::time::advance(secs(3.0)).await;
    h.trigger.now();
    assert_eq!(
        h.take(3).await,
        vec![
            call(3.05, "load", &[]),
            call(3.05, "pass:git", &[]),
            call(3.05, "automations", &["auto"]),
        ]
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_from_750ms_doubling_and_a_success_restores_the_interval() {
    let mut h = Harness::start(OBJECTS, Duration::from_secs(3600));
    // `other` fails from 300 s to 320 s.
    lock(&h.world.failing).insert("other".into(), secs(300.0)..secs(320.0));
    h.take(5).await;
    let (calls, _) = h.until(secs(312.0)).await;
    assert_eq!(
        runs(&calls, "scan", "other"),
        vec![300.0, 300.75, 302.25, 305.25, 311.25]
    );
    // The scan step as a whole went through (one repository failed in it), so the policy of
    // that repository is still evaluated from the stored tags each time.
    assert_eq!(runs(&calls, "policies", "once").len(), 5);
    let (calls, _) = h.until(secs(330.0)).await;
    assert_eq!(runs(&calls, "scan", "other"), vec![323.25]);
    // Back on its 5 min interval, restarted by the automation at 600 s (which rescans it).
    let (calls, _) = h.until(secs(910.0)).await;
    assert_eq!(runs(&calls, "scan", "other"), vec![900.0]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_step_that_fails_as_a_whole_backs_off_each_object_it_runs() {
    let mut h = Harness::start(OBJECTS, Duration::from_secs(3600));
    lock(&h.world.broken).insert("automations");
    assert_eq!(h.take(5).await, startup());
    let (calls, _) = h.until(secs(3.0)).await;
    assert_eq!(runs(&calls, "automations", "auto"), vec![0.75, 2.25]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_scan_evaluates_no_policy_of_its_repositories() {
    let mut h = Harness::start(OBJECTS, Duration::from_secs(3600));
    lock(&h.world.broken).insert("scan");
    assert_eq!(
        h.take(5).await,
        vec![
            call(0.0, "load", &[]),
            call(0.0, "pass:startup", &[]),
            call(0.0, "scan", &["app", "other"]),
            // The timed policies only: the scan stored no tags for `once`.
            call(0.0, "policies", &["always", "always-default"]),
            call(0.0, "automations", &["auto"]),
        ]
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_objects_are_reread_on_the_source_interval_and_a_change_makes_everything_due() {
    let mut h = Harness::start(OBJECTS, Duration::from_secs(60));
    h.take(5).await;
    h.take(2).await; // 30 s: the policy timer
    // 60 s, objects unchanged: only what is due.
    assert_eq!(
        h.take(4).await,
        vec![
            call(60.0, "load", &[]),
            call(60.0, "pass:interval", &[]),
            call(60.0, "scan", &["app"]),
            call(60.0, "policies", &["always", "always-default"]),
        ]
    );
    // A failing load keeps the last good objects and retries with backoff.
    lock(&h.world.broken).insert("load");
    assert_eq!(
        h.take(7).await,
        vec![
            call(90.0, "pass:interval", &[]),
            call(90.0, "policies", &["always"]),
            call(120.0, "load", &[]),
            call(120.0, "pass:interval", &[]),
            call(120.0, "scan", &["app"]),
            call(120.0, "policies", &["always", "always-default"]),
            call(120.75, "load", &[]),
        ]
    );
    // The source comes back with a new repository: every object is due at once.
    lock(&h.world.broken).clear();
    *lock(&h.world.objects) = objects(&format!("{OBJECTS}{THIRD}"));
    let (calls, _) = h.until(secs(122.25)).await;
    assert_eq!(
        calls,
        vec![
            call(122.25, "load", &[]),
            call(122.25, "pass:interval", &[]),
            call(122.25, "scan", &["app", "other", "third"]),
            call(122.25, "policies", &["always", "always-default", "once"]),
            call(122.25, "automations", &["auto"]),
        ]
    );
    assert_eq!(
        h.objects
            .borrow()
            .as_ref()
            .unwrap()
            .image_repositories
            .len(),
        3
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_finishes_the_pass_in_flight() {
    let mut h = Harness::start(OBJECTS, Duration::from_secs(3600));
    h.take(5).await;
    let gate = Arc::new(Semaphore::new(0));
    *lock(&h.world.gate) = Some(gate.clone());
    h.trigger.push(vec![pushed("org/app")]);
    h.take(2).await; // the pass and its scan, held
    h.stop.send_replace(true);
    gate.add_permits(1);
    assert_eq!(
        h.next().await,
        call(0.05, "policies", &["always", "always-default"])
    );
    h.task.await.unwrap();
    assert!(h.calls.recv().await.is_none(), "no call after the stop");
}

#[tokio::test(start_paused = true)]
async fn next_pass_follows_the_passes_and_ends_with_the_scheduler() {
    let mut h = Harness::start(OBJECTS, Duration::from_secs(3600));
    let (mut objects, mut passes) = (h.objects.clone(), h.passes.clone());
    let set = next_pass(&mut objects, &mut passes).await.unwrap();
    assert_eq!(set.image_repositories.len(), 2);
    h.take(5).await;
    h.stop.send_replace(true);
    h.task.await.unwrap();
    // The scheduler is gone: readers end instead of waiting forever.
    while next_pass(&mut objects, &mut passes).await.is_some() {}
}

#[tokio::test(start_paused = true)]
async fn timers_decide_from_now_alone() {
    let set = objects(OBJECTS);
    let t0 = Instant::now();
    let mut timers = Timers::new(t0, Duration::from_secs(60), 0.0);
    assert!(timers.source_due(t0));
    timers.settle_source(t0, true);
    timers.reset(&set, t0);
    let all = timers.due(t0, &set, &BTreeSet::new(), false);
    assert_eq!(all.repos.len(), 2);
    assert_eq!(
        all.policies,
        [
            key(Kind::ImagePolicy, "apps", "always"),
            key(Kind::ImagePolicy, "apps", "always-default")
        ]
        .into()
    );
    timers.settle(&set, t0, |kind, _, name| {
        Some(!(kind == Kind::ImageRepository && name == "other"))
    });
    assert_eq!(timers.next_wake(), t0 + secs(0.75));
    assert_eq!(
        timers.timer(
            Kind::ImageRepository,
            &key(Kind::ImageRepository, "flux-system", "other")
        ),
        Some(Timer {
            next: t0 + secs(0.75),
            failures: 1
        })
    );
    // Due within the coalescing window counts as due now.
    let at = t0 + secs(0.6);
    let due = timers.due(at, &set, &BTreeSet::new(), false);
    assert_eq!(
        due.repos,
        [key(Kind::ImageRepository, "flux-system", "other")].into()
    );
    assert!(due.policies.is_empty() && due.automations.is_empty());
    // A push names its repository; a Git change makes every automation due.
    let push: BTreeSet<PushedRepo> = [pushed("org/app")].into();
    let due = timers.due(t0 + secs(0.1), &set, &push, true);
    assert_eq!(
        due.repos,
        [key(Kind::ImageRepository, "flux-system", "app")].into()
    );
    assert_eq!(
        due.automations,
        [key(Kind::ImageUpdateAutomation, "apps", "auto")].into()
    );
    // The source timer wakes the loop when nothing else is due sooner.
    timers.settle(&set, t0, |_, _, _| Some(true));
    assert_eq!(timers.next_wake(), t0 + secs(30.0));
    assert!(!timers.source_due(t0 + secs(59.0)) && timers.source_due(t0 + secs(60.0)));
}

#[test]
fn only_always_policies_have_a_timer() {
    let set = objects(OBJECTS);
    let intervals: Vec<(&str, Option<Duration>)> = (set.image_policies.iter())
        .map(|p| (p.name(), policy_interval(p)))
        .collect();
    assert_eq!(
        intervals,
        vec![
            ("always", Some(Duration::from_secs(30))),
            ("always-default", Some(Duration::from_secs(600))),
            ("once", None),
        ]
    );
}

#[test]
fn policy_subset_carries_the_policy_and_its_repository_only() {
    let set = objects(OBJECTS);
    let sub = policy_subset(&set, &[key(Kind::ImagePolicy, "apps", "always")].into());
    let names = |s: &ObjectSet| (keys_of(&s.image_repositories), keys_of(&s.image_policies));
    assert_eq!(
        names(&sub),
        (
            vec![key(Kind::ImageRepository, "flux-system", "app")],
            vec![key(Kind::ImagePolicy, "apps", "always")]
        )
    );
    assert!(sub.image_update_automations.is_empty());
    // The scan step carries no policies: `Engine::scan` then only lists tags.
    let scan = scan_subset(
        &set,
        &[key(Kind::ImageRepository, "flux-system", "other")].into(),
    );
    assert_eq!(
        names(&scan),
        (
            vec![key(Kind::ImageRepository, "flux-system", "other")],
            vec![]
        )
    );
}

#[test]
fn an_automation_brought_in_by_a_changed_policy_carries_only_that_policy() {
    let set = objects(OBJECTS);
    let sub = automation_subset(
        &set,
        &BTreeSet::new(),
        &[key(Kind::ImagePolicy, "apps", "once")].into(),
    );
    assert_eq!(
        keys_of(&sub.image_update_automations),
        vec![key(Kind::ImageUpdateAutomation, "apps", "auto")]
    );
    assert_eq!(
        keys_of(&sub.image_policies),
        vec![key(Kind::ImagePolicy, "apps", "once")]
    );
    assert_eq!(
        keys_of(&sub.image_repositories),
        vec![key(Kind::ImageRepository, "flux-system", "other")]
    );
    // A due automation re-applies every policy of its namespace.
    let sub = automation_subset(
        &set,
        &[key(Kind::ImageUpdateAutomation, "apps", "auto")].into(),
        &BTreeSet::new(),
    );
    assert_eq!(sub.image_policies.len(), 3);
    assert_eq!(sub.image_repositories.len(), 2);
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
        let d = timers::jittered(Duration::from_secs(60), 0.05);
        assert!(
            d >= Duration::from_secs(57) && d <= Duration::from_secs(63),
            "{d:?}"
        );
    }
    assert_eq!(
        timers::jittered(Duration::from_millis(10), 0.0),
        Duration::from_secs(1)
    );
}
