//! Which objects a controller pass runs the engine's steps on, so a pass costs what changed and
//! not the whole cluster: each ImageRepository and ImageUpdateAutomation on its own
//! `spec.interval` (an ImagePolicy only with `digestReflectionPolicy: Always`), at once when it is
//! new, its spec (`generation`) or `reconcile.fluxcd.io/requestedAt` changes, or a webhook names
//! it, and sooner after a failure (Flux's work-queue backoff). What depends on a due object runs
//! with it: the policies of a scanned repository, the automations that select an elected policy.
//!
//! Must not: talk to the API or run the engine (`pass.rs` does both); times come in as `now`, so
//! the decisions are tested without a clock.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_api::ObjectSet;
use ferry_core::{Kind, ObjectKey};
use ferry_engine::ObjectOutcome;
// One backoff and one policy period for both timed drivers (the daemon's and this one).
use ferry_engine::schedule::{backoff, policy_interval};
use kube::api::DynamicObject;

use crate::objects::Listed;
use crate::status::requested_at;

/// The floor of an interval, so a typo (`1ms`) does not spin.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// The wait when nothing is scheduled.
pub const FALLBACK_INTERVAL: Duration = Duration::from_secs(60);

/// What webhooks asked for since the last pass (watch events need no list: a pass compares
/// every object's fingerprint).
#[derive(Debug, Default, Clone)]
pub struct Requested {
    /// Everything, at once (a push to the GitOps repository).
    pub all: bool,
    /// These objects, at once (the ImageRepositories a registry push names).
    pub keys: BTreeSet<ObjectKey>,
}

/// Shared by the webhook handlers (which add to it) and the controller loop (which takes it).
#[derive(Debug, Default, Clone)]
pub struct Requests(Arc<Mutex<Requested>>);

impl Requests {
    pub fn add(&self, keys: impl IntoIterator<Item = ObjectKey>) {
        self.lock().keys.extend(keys);
    }

    pub fn all(&self) {
        self.lock().all = true;
    }

    pub fn take(&self) -> Requested {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Requested> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What of an object makes it due at once when it changes.
type Fingerprint = (Option<i64>, Option<String>);

fn fingerprint(obj: &DynamicObject) -> Fingerprint {
    (obj.metadata.generation, requested_at(obj).map(String::from))
}

#[derive(Debug, Clone)]
struct Run {
    at: Instant,
    print: Fingerprint,
    failures: u32,
}

/// The last run of each object, and the GitRepositories' fingerprints as last seen.
#[derive(Debug, Default)]
pub struct Schedule {
    runs: HashMap<ObjectKey, Run>,
    sources: HashMap<ObjectKey, Fingerprint>,
}

impl Schedule {
    /// The objects this pass runs, dependents included.
    pub fn due(
        &self,
        now: Instant,
        listed: &Listed,
        set: &ObjectSet,
        requested: &Requested,
    ) -> BTreeSet<ObjectKey> {
        let intervals = intervals(set);
        let mut due: BTreeSet<ObjectKey> = set
            .keys()
            .into_iter()
            .filter(|key| {
                requested.all
                    || requested.keys.contains(key)
                    || listed
                        .objects
                        .get(key)
                        .is_some_and(|obj| self.is_due(now, key, obj, &intervals))
            })
            .collect();
        self.add_automations_of_changed_sources(listed, set, &mut due);
        add_dependents(set, &mut due);
        due
    }

    /// A GitRepository that is new or changed (its URL, branch, secret) makes the automations
    /// writing through it due.
    fn add_automations_of_changed_sources(
        &self,
        listed: &Listed,
        set: &ObjectSet,
        due: &mut BTreeSet<ObjectKey>,
    ) {
        let changed: BTreeSet<&ObjectKey> = listed
            .objects
            .iter()
            .filter(|(key, obj)| {
                key.kind == Kind::GitRepository && self.sources.get(*key) != Some(&fingerprint(obj))
            })
            .map(|(key, _)| key)
            .collect();
        if changed.is_empty() {
            return;
        }
        for automation in set.automations() {
            let source = &automation.spec.source_ref;
            let source = ObjectKey::new(
                Kind::GitRepository,
                source.namespace_or(automation.namespace()),
                &source.name,
            );
            if changed.contains(&source) {
                due.insert(ObjectKey::new(
                    Kind::ImageUpdateAutomation,
                    automation.namespace(),
                    automation.name(),
                ));
            }
        }
    }

    fn is_due(
        &self,
        now: Instant,
        key: &ObjectKey,
        obj: &DynamicObject,
        intervals: &Intervals,
    ) -> bool {
        let Some(run) = self.runs.get(key) else {
            return true;
        };
        if run.print != fingerprint(obj) {
            return true;
        }
        period(run, intervals.get(key)).is_some_and(|p| now >= run.at + p)
    }

    /// Notes the runs of this pass: when, on which spec, and whether they failed.
    pub fn record(
        &mut self,
        now: Instant,
        due: &BTreeSet<ObjectKey>,
        listed: &Listed,
        outcomes: &[ObjectOutcome],
    ) {
        for outcome in outcomes {
            let key = ObjectKey::new(outcome.kind, &outcome.namespace, &outcome.name);
            if !due.contains(&key) {
                continue;
            }
            let Some(obj) = listed.objects.get(&key) else {
                continue;
            };
            let failures = match self.runs.get(&key) {
                Some(run) if outcome.failed() => run.failures.saturating_add(1),
                None if outcome.failed() => 1,
                _ => 0,
            };
            let print = fingerprint(obj);
            self.runs.insert(
                key,
                Run {
                    at: now,
                    print,
                    failures,
                },
            );
        }
        // Objects gone from the cluster are forgotten.
        self.runs.retain(|key, _| listed.objects.contains_key(key));
        self.sources = listed
            .objects
            .iter()
            .filter(|(key, _)| key.kind == Kind::GitRepository)
            .map(|(key, obj)| (key.clone(), fingerprint(obj)))
            .collect();
    }

    /// How long until the next object is due (at least zero, at most `FALLBACK_INTERVAL` when
    /// nothing is scheduled).
    pub fn next_due(&self, now: Instant, set: &ObjectSet) -> Duration {
        let intervals = intervals(set);
        self.runs
            .iter()
            .filter_map(|(key, run)| {
                let period = period(run, intervals.get(key))?;
                Some((run.at + period).saturating_duration_since(now))
            })
            .min()
            .unwrap_or(FALLBACK_INTERVAL)
    }

    /// Objects whose last run failed, and all objects run so far (the Ready gauge).
    pub fn failing(&self) -> (usize, usize) {
        let failing = self.runs.values().filter(|r| r.failures > 0).count();
        (failing, self.runs.len())
    }
}

/// The wait after `run`: Flux's work-queue backoff after a failure (never longer than the
/// interval), else the object's own interval (`None`: it
/// runs only when something else makes it due).
fn period(run: &Run, interval: Option<&Duration>) -> Option<Duration> {
    let interval = *interval?;
    Some(match run.failures {
        0 => interval,
        n => backoff(n).min(interval),
    })
}

/// Each object's own interval (at least `MIN_INTERVAL`), built once per decision so that a
/// pass over thousands of objects does not search the set for each of them.
type Intervals = HashMap<ObjectKey, Duration>;

fn intervals(set: &ObjectSet) -> Intervals {
    let key = |kind, ns: &str, name: &str| ObjectKey::new(kind, ns, name);
    let repos = set.image_repositories.iter().map(|r| {
        let k = key(Kind::ImageRepository, r.namespace(), r.name());
        (k, Some(r.spec.interval.0))
    });
    let policies = set.image_policies.iter().map(|p| {
        let k = key(Kind::ImagePolicy, p.namespace(), p.name());
        (k, policy_interval(p))
    });
    let automations = set.automations().iter().map(|a| {
        let k = key(Kind::ImageUpdateAutomation, a.namespace(), a.name());
        (k, Some(a.spec.interval.0))
    });
    repos
        .chain(policies)
        .chain(automations)
        .filter_map(|(k, interval)| Some((k, interval?.max(MIN_INTERVAL))))
        .collect()
}

/// Adds the policies of due repositories, then the automations of due policies.
fn add_dependents(set: &ObjectSet, due: &mut BTreeSet<ObjectKey>) {
    for policy in &set.image_policies {
        if due.contains(&policy.repository_key()) {
            due.insert(ObjectKey::new(
                Kind::ImagePolicy,
                policy.namespace(),
                policy.name(),
            ));
        }
    }
    // Usually a handful of due policies: each automation is checked against those only.
    let due_policies: Vec<_> = (set.image_policies.iter())
        .filter(|p| due.contains(&ObjectKey::new(Kind::ImagePolicy, p.namespace(), p.name())))
        .collect();
    for automation in set.automations() {
        if due_policies.iter().any(|p| automation.selects(p)) {
            due.insert(ObjectKey::new(
                Kind::ImageUpdateAutomation,
                automation.namespace(),
                automation.name(),
            ));
        }
    }
}

#[cfg(test)]
mod tests;
