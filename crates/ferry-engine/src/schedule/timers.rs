//! The pure decision: given `now` and the outcome of the last runs, which objects are due and
//! when the loop must wake. No clock of its own (every call takes `now`) and no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ferry_api::{DigestReflectionPolicy, ImagePolicy, ObjectSet};
use ferry_policy::DigestReflection;
use ferry_store::Kind;
use tokio::time::Instant;

use super::{ObjectKey, PushedRepo, key};

const BACKOFF_MIN: Duration = Duration::from_millis(750);
const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);
/// Objects due within this window of each other run in one pass.
pub const COALESCE: Duration = Duration::from_millis(250);

/// Flux's work-queue backoff: 750 ms doubling per consecutive failure, at most 15 min.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    BACKOFF_MIN.saturating_mul(1u32 << exp).min(BACKOFF_MAX)
}

/// `interval` ± `jitter` (a fraction), so objects with the same interval spread out instead of
/// firing together. At least one second, as a zero interval would spin.
pub(super) fn jittered(interval: Duration, jitter: f64) -> Duration {
    let interval = interval.max(Duration::from_secs(1));
    if jitter <= 0.0 {
        return interval;
    }
    let factor = 1.0 - jitter + rand::random::<f64>() * 2.0 * jitter;
    interval.mul_f64(factor)
}

/// The period of a policy's own timer: only `Always` re-resolves on a schedule (Flux
/// `GetInterval`, 10 min when `spec.interval` is unset; the engine then reports
/// `IntervalNotConfigured`, which backs off like any failure).
pub fn policy_interval(p: &ImagePolicy) -> Option<Duration> {
    let reflection = match p.spec.digest_reflection_policy {
        DigestReflectionPolicy::Always => DigestReflection::Always,
        DigestReflectionPolicy::IfNotPresent => DigestReflection::IfNotPresent,
        DigestReflectionPolicy::Never => DigestReflection::Never,
    };
    reflection.requeue_after(p.spec.interval.map(|d| d.0))
}

/// When one object runs next, and how many times in a row it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    pub next: Instant,
    pub failures: u32,
}

impl Timer {
    pub fn due_at(now: Instant) -> Timer {
        Timer {
            next: now,
            failures: 0,
        }
    }

    /// After a run that ended at `now`: the (jittered) interval after a success, the backoff
    /// after a failure.
    pub fn settle(&mut self, now: Instant, ok: bool, interval: Duration, jitter: f64) {
        if ok {
            self.failures = 0;
            self.next = now + jittered(interval, jitter);
        } else {
            self.failures = self.failures.saturating_add(1);
            self.next = now + backoff(self.failures);
        }
    }
}

/// What one pass covers (the primary objects of each step; [`super::automation_subset`] adds
/// the automations that a changed policy brings in).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Due {
    pub repos: BTreeSet<ObjectKey>,
    /// Timed policies (`digestReflectionPolicy: Always`) whose interval is up.
    pub policies: BTreeSet<ObjectKey>,
    pub automations: BTreeSet<ObjectKey>,
}

impl Due {
    pub fn is_empty(&self) -> bool {
        self.repos.is_empty() && self.policies.is_empty() && self.automations.is_empty()
    }
}

/// One timer per object that runs on its own, and one for re-reading the objects.
#[derive(Debug, Clone)]
pub struct Timers {
    jitter: f64,
    source_interval: Duration,
    source: Timer,
    repos: BTreeMap<ObjectKey, Timer>,
    /// ImagePolicies with `digestReflectionPolicy: Always` only.
    policies: BTreeMap<ObjectKey, Timer>,
    automations: BTreeMap<ObjectKey, Timer>,
}

impl Timers {
    /// No objects yet; the objects are due to be read at `now`.
    pub fn new(now: Instant, source_interval: Duration, jitter: f64) -> Timers {
        Timers {
            jitter,
            source_interval,
            source: Timer::due_at(now),
            repos: BTreeMap::new(),
            policies: BTreeMap::new(),
            automations: BTreeMap::new(),
        }
    }

    /// New or changed objects: every object is due at `now`.
    pub fn reset(&mut self, objects: &ObjectSet, now: Instant) {
        let due = |kind, ns: &str, name: &str| (key(kind, ns, name), Timer::due_at(now));
        self.repos = (objects.image_repositories.iter())
            .map(|o| due(Kind::ImageRepository, o.namespace(), o.name()))
            .collect();
        self.policies = (objects.image_policies.iter())
            .filter(|p| policy_interval(p).is_some())
            .map(|o| due(Kind::ImagePolicy, o.namespace(), o.name()))
            .collect();
        self.automations = (objects.image_update_automations.iter())
            .map(|o| due(Kind::ImageUpdateAutomation, o.namespace(), o.name()))
            .collect();
    }

    /// Whether the objects must be re-read.
    pub fn source_due(&self, now: Instant) -> bool {
        self.source.next <= now
    }

    /// After reading the objects (or failing to).
    pub fn settle_source(&mut self, now: Instant, ok: bool) {
        self.source
            .settle(now, ok, self.source_interval, self.jitter);
    }

    /// The timer of one object, if it has one.
    pub fn timer(&self, kind: Kind, key: &ObjectKey) -> Option<Timer> {
        match kind {
            Kind::ImageRepository => self.repos.get(key),
            Kind::ImagePolicy => self.policies.get(key),
            Kind::ImageUpdateAutomation => self.automations.get(key),
            Kind::GitRepository => None,
        }
        .copied()
    }

    /// What a pass starting at `now` covers: the objects due by `now` + [`COALESCE`], the
    /// repositories a registry push names, and every automation after a Git change.
    pub fn due(
        &self,
        now: Instant,
        objects: &ObjectSet,
        pushed: &BTreeSet<PushedRepo>,
        git: bool,
    ) -> Due {
        let horizon = now + COALESCE;
        let ripe = |timers: &BTreeMap<ObjectKey, Timer>| -> BTreeSet<ObjectKey> {
            (timers.iter())
                .filter(|(_, t)| t.next <= horizon)
                .map(|(k, _)| k.clone())
                .collect()
        };
        let mut repos = ripe(&self.repos);
        repos.extend(
            ferry_hooks::match_pushed(objects, pushed)
                .into_iter()
                .map(|(ns, name)| key(Kind::ImageRepository, &ns, &name)),
        );
        let automations = if git {
            self.automations.keys().cloned().collect()
        } else {
            ripe(&self.automations)
        };
        Due {
            repos,
            policies: ripe(&self.policies),
            automations,
        }
    }

    /// When the loop must wake next if nothing triggers it.
    pub fn next_wake(&self) -> Instant {
        (self.repos.values())
            .chain(self.policies.values())
            .chain(self.automations.values())
            .map(|t| t.next)
            .fold(self.source.next, Instant::min)
    }

    /// After a step over `set` ended at `now`: each object the step ran (`ok` says `Some`) that
    /// has a timer restarts its interval, or backs off when it failed. A policy evaluated in any
    /// step restarts its own interval.
    pub fn settle(
        &mut self,
        set: &ObjectSet,
        now: Instant,
        ok: impl Fn(Kind, &str, &str) -> Option<bool>,
    ) {
        let jitter = self.jitter;
        let intervals = (set.image_repositories.iter())
            .map(|r| {
                (
                    Kind::ImageRepository,
                    r.namespace(),
                    r.name(),
                    Some(r.spec.interval.0),
                )
            })
            .chain(set.image_policies.iter().map(|p| {
                (
                    Kind::ImagePolicy,
                    p.namespace(),
                    p.name(),
                    policy_interval(p),
                )
            }))
            .chain(set.image_update_automations.iter().map(|a| {
                let interval = Some(a.spec.interval.0);
                (
                    Kind::ImageUpdateAutomation,
                    a.namespace(),
                    a.name(),
                    interval,
                )
            }));
        for (kind, ns, name, interval) in intervals {
            let timers = match kind {
                Kind::ImageRepository => &mut self.repos,
                Kind::ImagePolicy => &mut self.policies,
                Kind::ImageUpdateAutomation => &mut self.automations,
                Kind::GitRepository => continue,
            };
            if let (Some(t), Some(interval), Some(ok)) = (
                timers.get_mut(&key(kind, ns, name)),
                interval,
                ok(kind, ns, name),
            ) {
                t.settle(now, ok, interval, jitter);
            }
        }
    }
}
