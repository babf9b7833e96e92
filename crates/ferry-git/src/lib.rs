//! ferry-git: Ferry's Git layer, the `git` CLI (run synchronously with `std::process`) behind
//! the [`GitBackend`] trait, as Argo CD does.
//!
//! Owns: a persistent, crash-safe [`CloneCache`] (one flock'ed clone per remote URL, fetched
//! rather than re-cloned, shallow until history is asked for), the [`Checkout`] operations the
//! engine needs (commit with trailers and signing, push that is never forced, log, revert,
//! show/diff), credential handling for http(s)/ssh/git/file remotes, and [`update_and_push`]:
//! compute a change on the current tip, push, and on a non-fast-forward rejection recompute on
//! the new tip.
//!
//! Must not: touch anything outside its cache root and temp dirs, read the user's git or ssh
//! config, put a credential in argv, `.git/config`, logs or errors, or force-push.
//!
//! ```no_run
//! use ferry_git::{CloneCache, CommitSpec, GitAuth, Remote, Signature, UpdatePlan, update_and_push};
//! let cache = CloneCache::new("/var/cache/ferry/git")?;
//! let remote = Remote::new("https://git.example/app.git", GitAuth::basic("bot", "token"));
//! let outcome = update_and_push(&cache, &remote, &UpdatePlan::new("main"), |dir| {
//!     std::fs::write(dir.join("version"), "1.2.3\n")?;
//!     Ok::<_, std::io::Error>(Some(CommitSpec {
//!         message: "bump".into(),
//!         trailers: vec![],
//!         author: Signature { name: "ferry".into(), email: "ferry@example.invalid".into() },
//!         signing: None,
//!     }))
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod auth;
mod cmd;
mod error;
mod repo;
mod signing;
mod update;
mod web;

use std::path::Path;

pub use auth::{GitAuth, Remote};
pub use error::{FailureKind, GitError, redact, redact_url_userinfo};
pub use repo::{
    Checkout, CloneCache, CommitInfo, CommitSpec, History, LogQuery, PushOutcome, RevertOutcome,
    Signature,
};
pub use signing::SigningKey;
pub use update::{
    Backoff, UpdateError, UpdateOutcome, UpdatePlan, update_and_push, update_and_push_checkout,
};
pub use web::commit_web_url;

/// A boxed callback error, for the object-safe [`GitBackend::update_and_push`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The seam between the engine and git. [`CloneCache`] is the git-CLI implementation.
pub trait GitBackend: Send + Sync {
    /// The commit `branch` points at on the remote (`None` if it does not exist), without
    /// fetching: lets the engine skip a run when nothing changed.
    fn ls_remote(&self, remote: &Remote, branch: &str) -> Result<Option<String>, GitError>;

    /// A locked, clean work tree at the remote tip of `branch`.
    fn checkout(&self, remote: &Remote, branch: &str) -> Result<Checkout, GitError>;

    /// See [`update_and_push`].
    fn update_and_push(
        &self,
        remote: &Remote,
        plan: &UpdatePlan,
        f: &mut dyn FnMut(&Path) -> Result<Option<CommitSpec>, BoxError>,
    ) -> Result<UpdateOutcome, UpdateError<BoxError>>;
}
