//! The daemon's scheduler, on tokio time: when each object is due, which objects a pass covers,
//! and how triggers (registry pushes, Git changes, "run a pass now") wake it.
//!
//! Owns:
//! - the timers ([`Timers`]): each ImageRepository and ImageUpdateAutomation, and each
//!   ImagePolicy with `digestReflectionPolicy: Always`, runs every `spec.interval` ± 5% jitter,
//!   or after a failure with Flux's work-queue backoff ([`backoff`], 750 ms doubling to 15 min);
//!   the objects are re-read every source interval;
//! - the subsets each step of a pass runs on ([`scan_subset`], [`policy_subset`],
//!   [`automation_subset`]);
//! - the loop ([`Scheduler`]): one pass at a time (the store and the clone cache see one
//!   writer), triggers debounced and coalesced, a pass in flight finished before it stops.
//!
//! The decision is pure: [`Timers`] takes `now` and the outcomes and says what is due and when to
//! wake. The loop sleeps with `tokio::time`, so tests drive it with paused time, and calls the
//! engine through [`Steps`] ([`EngineSteps`] is the real one; tests use in-memory fakes).
//!
//! Must not: print, read command-line arguments, serve HTTP or parse webhook bodies (the driver
//! does, and hands the scheduler a [`Trigger`]), or keep metrics itself (it reports to an
//! [`Observer`]).

mod run;
mod subsets;
#[cfg(test)]
mod tests;
mod timers;

use std::collections::BTreeSet;
use std::sync::Arc;

use ferry_api::ObjectSet;
pub use ferry_hooks::PushedRepo;
use tokio::sync::{Notify, watch};

pub use run::{
    Cause, EngineSteps, Observer, Scheduler, Settings, Step, StepDone, Steps, outcome, outcome_ok,
};
pub use subsets::{automation_subset, policy_subset, scan_subset};
pub use timers::{COALESCE, Due, Timer, Timers, backoff, policy_interval};

use ferry_core::Kind;
pub use ferry_core::ObjectKey;

fn key(kind: Kind, ns: &str, name: &str) -> ObjectKey {
    ObjectKey::new(kind, ns, name)
}

/// What the triggers asked for since the last pass.
#[derive(Debug, Default)]
pub struct Pending {
    /// Images pushed to a registry: their ImageRepositories are scanned.
    pub pushed: BTreeSet<PushedRepo>,
    /// Git changed (or a pass was asked for): reload the objects and run every automation.
    pub git: bool,
}

/// The hand-off between the drivers' handlers (webhooks, dashboard actions) and the scheduler.
/// Cheap to call from any task; the scheduler wakes, waits the debounce window, and drains
/// everything asked so far into one pass.
#[derive(Debug, Default)]
pub struct Trigger {
    pending: std::sync::Mutex<Pending>,
    notify: Notify,
}

impl Trigger {
    /// A registry push: scan the ImageRepositories these images belong to.
    pub fn push(&self, repos: Vec<PushedRepo>) {
        if repos.is_empty() {
            return;
        }
        self.lock().pushed.extend(repos);
        self.notify.notify_one();
    }

    /// Git changed: reload the objects and run every automation.
    pub fn git(&self) {
        self.lock().git = true;
        self.notify.notify_one();
    }

    /// "Run a pass now" (after a dashboard action, say): the same as a Git change, so the
    /// objects are re-read and every automation runs.
    pub fn now(&self) {
        self.git();
    }

    fn take(&self) -> Pending {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic while holding this lock leaves a plain set behind: still usable.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

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
