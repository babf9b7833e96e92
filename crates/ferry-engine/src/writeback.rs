//! What one pass (a `scan` or `reconcile` call, or one promotion) has fetched from the write-back
//! repositories. Each repository and branch is fetched at most once per pass; every later reader
//! or writer in the pass starts from that fetch plus the pass's own pushes. A push from a view
//! that has gone stale meanwhile is rejected by the remote (never forced), and the push loop then
//! fetches the new tip and computes again.
//!
//! A repository that timed out once in a pass is not tried again in that pass: with many
//! automations on one silent server, each would otherwise wait its whole timeout in turn (1,000
//! automations x 60 s). They fail at once naming the first timeout; the next pass tries again.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ferry_git::{Checkout, CloneCache, GitError, Remote};

/// The (cache entry, branch) pairs fetched in this pass. Cheap to clone; clones share the set.
/// Outside a pass (see [`crate::Engine::pass`]) every checkout gets a new, empty one, so it
/// fetches.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pass {
    fetched: Arc<Mutex<HashSet<(PathBuf, String)>>>,
    /// Cache entry → the timeout it hit in this pass.
    timed_out: Arc<Mutex<HashMap<PathBuf, String>>>,
}

impl Pass {
    fn key(cache: &CloneCache, remote: &Remote, branch: &str) -> Option<(PathBuf, String)> {
        cache
            .entry_dir(remote)
            .ok()
            .map(|dir| (dir, branch.to_string()))
    }

    /// True when `branch` of `remote` was already fetched in this pass.
    pub(crate) fn is_fresh(&self, cache: &CloneCache, remote: &Remote, branch: &str) -> bool {
        let Some(key) = Self::key(cache, remote, branch) else {
            return false;
        };
        self.fetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key)
    }

    /// Records that `branch` of `remote` was fetched (or pushed) in this pass.
    pub(crate) fn mark(&self, cache: &CloneCache, remote: &Remote, branch: &str) {
        if let Some(key) = Self::key(cache, remote, branch) {
            self.fetched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key);
        }
    }

    /// A clean checkout of `branch`: fetched the first time in this pass, from the local copy
    /// after that.
    pub(crate) fn checkout(
        &self,
        cache: &CloneCache,
        remote: &Remote,
        branch: &str,
    ) -> Result<Checkout, GitError> {
        let co = if self.is_fresh(cache, remote, branch) {
            cache.checkout_local(remote, branch)?
        } else {
            cache.checkout(remote, branch).inspect_err(|e| {
                self.note_timeout(cache, remote, e);
            })?
        };
        self.mark(cache, remote, branch);
        Ok(co)
    }

    /// Remembers `error` when it is a timeout of `remote`.
    pub(crate) fn note_timeout(&self, cache: &CloneCache, remote: &Remote, error: &GitError) {
        if let (GitError::Timeout { .. }, Ok(dir)) = (error, cache.entry_dir(remote)) {
            self.timed_out
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(dir, error.to_string());
        }
    }

    /// The timeout `remote` already hit in this pass, if any.
    pub(crate) fn timed_out(&self, cache: &CloneCache, remote: &Remote) -> Option<String> {
        let dir = cache.entry_dir(remote).ok()?;
        self.timed_out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&dir)
            .cloned()
    }
}

/// Keeps the engine's pass open; the pass ends when the outermost guard is dropped.
#[must_use = "the pass ends when the guard is dropped"]
pub struct PassGuard<'a> {
    slot: &'a Mutex<Option<Pass>>,
    outermost: bool,
}

impl<'a> PassGuard<'a> {
    pub(crate) fn open(slot: &'a Mutex<Option<Pass>>) -> PassGuard<'a> {
        let mut current = slot.lock().unwrap_or_else(|p| p.into_inner());
        let outermost = current.is_none();
        if outermost {
            *current = Some(Pass::default());
        }
        PassGuard { slot, outermost }
    }
}

impl Drop for PassGuard<'_> {
    fn drop(&mut self) {
        if self.outermost {
            *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}
