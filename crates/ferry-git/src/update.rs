//! The reliability primitive: compute a change on the current remote tip, commit, push; when the
//! remote moved meanwhile, throw the commit away, fetch the new tip and compute again.
//!
//! Never rebases stale content and never forces, so a concurrent human commit is never lost.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rand::Rng;

use crate::auth::Remote;
use crate::error::GitError;
use crate::repo::{Checkout, CloneCache, CommitSpec, PushOutcome};

/// Bounded exponential backoff between attempts, with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the second attempt.
    pub initial: Duration,
    /// Upper bound of any delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The delay after failed attempt `n` (1-based): doubling, capped, with "equal jitter"
    /// (uniform in [d/2, d]) so competing writers spread out.
    pub fn delay(&self, n: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << n.saturating_sub(1).min(16));
        let d = exp.min(self.max);
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if ms < 2 {
            return d;
        }
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
    }
}

/// What to check out, where to push, and how hard to try.
#[derive(Debug, Clone)]
pub struct UpdatePlan {
    /// The branch to start from (Flux `git.checkout.ref.branch`).
    pub checkout_branch: String,
    /// The branch to push to (Flux `git.push.branch`); `None` = the checkout branch. When it
    /// exists remotely the change is computed on top of it; otherwise it is created from the
    /// checkout branch.
    pub push_branch: Option<String>,
    /// git push options (Flux `git.push.options`).
    pub push_options: BTreeMap<String, String>,
    /// An extra refspec pushed after the branch (Flux `git.push.refspec`); never forced.
    pub refspec: Option<String>,
    /// Attempts before giving up on rejections (at least 1).
    pub max_attempts: u32,
    /// Delay between attempts.
    pub backoff: Backoff,
    /// The checkout branch was fetched by this caller a moment ago: the first attempt computes
    /// on that local copy without fetching again (a stale view is caught by the push, which the
    /// remote rejects, and the next attempt fetches).
    pub fresh: bool,
    /// Called right before each push with the attempt number (1-based).
    pub before_push: Option<fn(u32)>,
    /// Compute and commit locally, report the diff, push nothing
    /// ([`UpdateOutcome::WouldPush`]); the next checkout throws the local commit away.
    pub dry_run: bool,
}

impl UpdatePlan {
    /// Push back to `branch`, 5 attempts, default backoff.
    pub fn new(branch: impl Into<String>) -> Self {
        UpdatePlan {
            checkout_branch: branch.into(),
            push_branch: None,
            push_options: BTreeMap::new(),
            refspec: None,
            max_attempts: 5,
            backoff: Backoff::default(),
            fresh: false,
            before_push: None,
            dry_run: false,
        }
    }
}

/// The result of [`update_and_push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// A commit was pushed.
    Pushed {
        /// The pushed commit.
        sha: String,
        /// The branch it was pushed to.
        branch: String,
        /// How many attempts it took (1 = no conflict).
        attempts: u32,
        /// The extra refspec, if one was pushed.
        refspec: Option<String>,
    },
    /// The callback found nothing to change on the current tip.
    NothingToDo {
        /// The tip the callback looked at.
        head: String,
    },
    /// A dry run: what would be pushed.
    WouldPush {
        /// The tip the change was computed on.
        head: String,
        /// Unified diff of the change.
        diff: String,
    },
}

/// The error returned by [`update_and_push`].
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    /// A git operation failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The callback failed.
    #[error("computing the change failed")]
    Apply(#[source] E),
    /// The push was rejected on every attempt, or in a way retrying cannot fix.
    #[error("push to '{branch}' rejected after {attempts} attempt(s): {reason}")]
    Rejected {
        /// The target branch.
        branch: String,
        /// Attempts made.
        attempts: u32,
        /// The last rejection.
        reason: String,
    },
    /// The branch push succeeded but the extra refspec push did not.
    #[error("pushed {sha} but the refspec '{refspec}' was rejected: {reason}")]
    RefspecRejected {
        /// The commit that was pushed to the branch.
        sha: String,
        /// The refspec.
        refspec: String,
        /// The rejection.
        reason: String,
    },
}

/// Fetches and resets to the remote tip, runs `f` on the work tree, commits what it changed and
/// pushes. When the push is rejected because the remote moved, fetches the new tip, resets, and
/// runs `f` again (its previous result is discarded, never rebased), up to `max_attempts`.
pub fn update_and_push<F, E>(
    cache: &CloneCache,
    remote: &Remote,
    plan: &UpdatePlan,
    mut f: F,
) -> Result<UpdateOutcome, UpdateError<E>>
where
    F: FnMut(&Path) -> Result<Option<CommitSpec>, E>,
{
    update_and_push_checkout(cache, remote, plan, |co: &mut Checkout| f(co.workdir()))
}

/// [`update_and_push`] for callers that need the [`Checkout`] itself (history, `git revert`):
/// the one compute–commit–push loop of Ferry.
pub fn update_and_push_checkout<F, E>(
    cache: &CloneCache,
    remote: &Remote,
    plan: &UpdatePlan,
    mut f: F,
) -> Result<UpdateOutcome, UpdateError<E>>
where
    F: FnMut(&mut Checkout) -> Result<Option<CommitSpec>, E>,
{
    let target = plan
        .push_branch
        .clone()
        .unwrap_or_else(|| plan.checkout_branch.clone());
    let max = plan.max_attempts.max(1);
    let mut co = if plan.fresh {
        cache.checkout_local(remote, &plan.checkout_branch)?
    } else {
        cache.checkout(remote, &plan.checkout_branch)?
    };
    let mut last_reason = String::new();
    for attempt in 1..=max {
        if attempt > 1 {
            std::thread::sleep(plan.backoff.delay(attempt - 1));
            co.fetch_and_reset(&plan.checkout_branch)?;
        }
        if target != plan.checkout_branch {
            // Compute on top of the push branch when it exists (Flux semantics), else start it
            // from the checkout branch.
            let start = match co.fetch_branch(&target)? {
                Some(_) => format!("refs/remotes/origin/{target}"),
                None => format!("refs/remotes/origin/{}", plan.checkout_branch),
            };
            co.reset_to(&target, &start)?;
        }
        let head = co.head()?;
        let Some(spec) = f(&mut co).map_err(UpdateError::Apply)? else {
            return Ok(UpdateOutcome::NothingToDo { head });
        };
        let Some(sha) = co.commit_all(&spec)? else {
            return Ok(UpdateOutcome::NothingToDo { head });
        };
        if plan.dry_run {
            let diff = co.diff(&head, &sha, None)?;
            return Ok(UpdateOutcome::WouldPush { head, diff });
        }
        if let Some(hook) = plan.before_push {
            hook(attempt);
        }
        match co.push(&target, &plan.push_options)? {
            PushOutcome::Pushed { .. } => {
                if let Some(rs) = &plan.refspec
                    && let PushOutcome::Rejected { reason, .. } =
                        co.push_refspec(rs, &plan.push_options)?
                {
                    return Err(UpdateError::RefspecRejected {
                        sha,
                        refspec: rs.clone(),
                        reason,
                    });
                }
                return Ok(UpdateOutcome::Pushed {
                    sha,
                    branch: target,
                    attempts: attempt,
                    refspec: plan.refspec.clone(),
                });
            }
            PushOutcome::Rejected { reason, retryable } => {
                if !retryable {
                    return Err(UpdateError::Rejected {
                        branch: target,
                        attempts: attempt,
                        reason,
                    });
                }
                tracing::info!(url = %co.display_url(), branch = %target, attempt, reason = %reason, "remote moved; recomputing on the new tip");
                last_reason = reason;
            }
        }
    }
    Err(UpdateError::Rejected {
        branch: target,
        attempts: max,
        reason: last_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        for n in 1..40 {
            let d = b.delay(n);
            assert!(d <= Duration::from_millis(1000), "{n}: {d:?}");
        }
        let d1 = b.delay(1);
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
    }
}
