//! The persistent clone cache and the locked working copy ([`Checkout`]) it hands out.
//!
//! Layout under the cache root:
//! ```text
//! <root>/.tmp/                 credential and signing dirs (cred-<pid>-*, sign-<pid>-*)
//! <root>/<sha256(url)[..24]>/
//!     lock                     flock'ed by the holder of a Checkout
//!     busy                     exists while a Checkout is held; found at acquire = holder died
//!     ready                    written after the first successful fetch; absent = half-made clone
//!     history                  "full" or a depth: how much history fetches keep
//!     repo/                    the working clone (non-bare)
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::auth::{Remote, Session};
use crate::cmd::Git;
use crate::error::{FailureKind, GitError, redact};
use crate::signing::{Signer, SigningKey};

/// Name and email used as both author and committer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Display name.
    pub name: String,
    /// Email (required by Flux's `git.commit.author.email`).
    pub email: String,
}

/// Everything needed to make one commit.
#[derive(Debug, Clone)]
pub struct CommitSpec {
    /// The message (the trailers are appended to it).
    pub message: String,
    /// `Key: value` trailers, appended in order as git formats trailers.
    pub trailers: Vec<(String, String)>,
    /// Author and committer.
    pub author: Signature,
    /// Optional signing key.
    pub signing: Option<SigningKey>,
}

/// The result of a push of one ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The remote ref now points at `sha`.
    Pushed {
        /// The pushed commit.
        sha: String,
    },
    /// The remote refused the update. Nothing was overwritten (pushes are never forced).
    Rejected {
        /// git's summary, e.g. `[rejected] (fetch first)` or `[remote rejected] (hook declined)`.
        reason: String,
        /// True when the remote moved under us (non-fast-forward, lost ref-lock race):
        /// recomputing on the new tip and pushing again may succeed.
        retryable: bool,
    },
}

/// What [`Checkout::log`] lists.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// A revision or range (`HEAD`, `a..b`); `None` = `HEAD`.
    pub rev_range: Option<String>,
    /// Limit to commits touching these paths (git's history simplification applies).
    pub paths: Vec<String>,
    /// At most this many commits.
    pub max: Option<usize>,
}

/// One commit as listed by [`Checkout::log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// Full SHA.
    pub sha: String,
    /// Parent SHAs (empty for a root or a shallow boundary).
    pub parents: Vec<String>,
    /// Author name.
    pub author_name: String,
    /// Author email.
    pub author_email: String,
    /// Author time, Unix seconds.
    pub author_time: i64,
    /// Committer time, Unix seconds.
    pub committer_time: i64,
    /// First line of the message.
    pub subject: String,
    /// The rest of the message (trailers included).
    pub body: String,
    /// Parsed trailers, in order.
    pub trailers: Vec<(String, String)>,
}

/// The result of [`Checkout::revert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevertOutcome {
    /// The inverse change is staged in the work tree; commit it with [`Checkout::commit_all`].
    Clean {
        /// The commit that was reverted.
        reverted: String,
        /// git's default message (`Revert "<subject>"` ... `This reverts commit <sha>.`).
        message: String,
        /// False when the revert changes nothing (already reverted).
        has_changes: bool,
    },
    /// The revert conflicts with later changes; it was aborted and the tree is clean.
    Conflict {
        /// The commit that could not be reverted.
        reverted: String,
        /// Conflicting paths.
        paths: Vec<String>,
    },
}

/// How much history the cache entry should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// At least this many commits from each fetched tip.
    Depth(u32),
    /// Everything.
    Full,
}

/// A persistent cache of clones, one per remote URL (without userinfo).
///
/// Safe to share between threads and processes: each entry is guarded by an exclusive `flock`.
#[derive(Debug, Clone)]
pub struct CloneCache {
    root: PathBuf,
}

impl CloneCache {
    /// Opens (creating it if needed) a cache rooted at `root`, and removes credential files left
    /// by killed processes.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, GitError> {
        let root = root.into();
        fs::create_dir_all(root.join(".tmp")).map_err(|e| GitError::io("create", &root, e))?;
        crate::auth::sweep_stale(&root.join(".tmp"));
        Ok(CloneCache { root })
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn scratch(&self) -> PathBuf {
        self.root.join(".tmp")
    }

    /// The entry directory used for `remote`.
    pub fn entry_dir(&self, remote: &Remote) -> Result<PathBuf, GitError> {
        let (url, _) = remote.clean_url()?;
        let digest = Sha256::digest(url.as_bytes());
        Ok(self.root.join(&hex::encode(digest)[..24]))
    }

    /// The commit `branch` points at on the remote, or `None` if it does not exist.
    pub fn ls_remote(&self, remote: &Remote, branch: &str) -> Result<Option<String>, GitError> {
        check_branch(branch)?;
        let session = Session::new(remote, &self.scratch())?;
        let scratch = self.scratch();
        let out = Git::new(Some(&scratch))
            .remote(&session)
            .args(["ls-remote", "--heads", "--"])
            .arg(session.url.clone())
            .arg(format!("refs/heads/{branch}"))
            .run()?;
        Ok(out
            .stdout_str()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .find(|(_, r)| *r == format!("refs/heads/{branch}"))
            .map(|(sha, _)| sha.to_string()))
    }

    /// Locks the entry for `remote`, repairs it if a previous holder died, fetches `branch`, and
    /// hard-resets the work tree to the remote tip (`clean -ffdx` included).
    ///
    /// Blocks while another thread or process holds the same entry.
    pub fn checkout(&self, remote: &Remote, branch: &str) -> Result<Checkout, GitError> {
        self.open(remote, branch, true)
    }

    /// Like [`checkout`](Self::checkout), but without contacting the remote when the entry
    /// already holds `refs/remotes/origin/<branch>`: the work tree is reset to what the last
    /// fetch (or this cache's own last push) saw. For callers that fetched this branch a moment
    /// ago and only need a clean tree again; a push from a stale view is rejected by the remote,
    /// never forced. Fetches when the entry has no such ref.
    pub fn checkout_local(&self, remote: &Remote, branch: &str) -> Result<Checkout, GitError> {
        self.open(remote, branch, false)
    }

    fn open(&self, remote: &Remote, branch: &str, fetch: bool) -> Result<Checkout, GitError> {
        check_branch(branch)?;
        let entry = self.entry_dir(remote)?;
        fs::create_dir_all(&entry).map_err(|e| GitError::io("create", &entry, e))?;
        let lock_path = entry.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| GitError::io("open", &lock_path, e))?;
        lock.lock()
            .map_err(|e| GitError::io("lock", &lock_path, e))?;
        let session = Session::new(remote, &self.scratch())?;
        let mut co = Checkout {
            _lock: lock,
            repo: entry.join("repo"),
            entry,
            session,
            scratch: self.scratch(),
            branch: branch.to_string(),
        };
        let crashed = co.entry.join("busy").exists();
        touch(&co.entry.join("busy"))?;
        co.prepare(crashed)?;
        let tracking = format!("refs/remotes/origin/{branch}");
        if !fetch && !crashed && co.entry.join("ready").exists() && co.resolve(&tracking)?.is_some()
        {
            co.reset_to(branch, &tracking)?;
            return Ok(co);
        }
        match co.fetch_and_reset(branch) {
            Ok(_) => {}
            Err(e) if co.suspect_corruption(&e) => {
                tracing::warn!(url = %co.session.display, error = %e, "clone cache entry looks corrupt; re-cloning");
                co.wipe()?;
                co.prepare(false)?;
                co.fetch_and_reset(branch)?;
            }
            Err(e) => return Err(e),
        }
        touch(&co.entry.join("ready"))?;
        // Pack loose objects now and then, while we hold the lock (auto-gc is off). `gc --auto`
        // is cheap but still a process, so it runs only once loose objects have spread over
        // many fan-out directories (a readdir, no process).
        if loose_fanout_dirs(&co.repo) > 64 {
            let _ = co
                .git()
                .args(["gc", "--auto", "--quiet"])
                .config("gc.auto", "6700")
                .config("gc.autoDetach", "false")
                .output();
        }
        Ok(co)
    }
}

impl crate::GitBackend for CloneCache {
    fn ls_remote(&self, remote: &Remote, branch: &str) -> Result<Option<String>, GitError> {
        CloneCache::ls_remote(self, remote, branch)
    }

    fn checkout(&self, remote: &Remote, branch: &str) -> Result<Checkout, GitError> {
        CloneCache::checkout(self, remote, branch)
    }

    fn update_and_push(
        &self,
        remote: &Remote,
        plan: &crate::UpdatePlan,
        f: &mut dyn FnMut(&Path) -> Result<Option<CommitSpec>, crate::BoxError>,
    ) -> Result<crate::UpdateOutcome, crate::UpdateError<crate::BoxError>> {
        crate::update::update_and_push(self, remote, plan, f)
    }
}

/// A locked, clean working copy of one cache entry. Dropping it releases the lock.
pub struct Checkout {
    _lock: File,
    entry: PathBuf,
    repo: PathBuf,
    session: Session,
    scratch: PathBuf,
    branch: String,
}

impl std::fmt::Debug for Checkout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkout")
            .field("url", &self.session.display)
            .field("workdir", &self.repo)
            .field("branch", &self.branch)
            .finish()
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.entry.join("busy"));
    }
}

fn touch(p: &Path) -> Result<(), GitError> {
    fs::write(p, b"").map_err(|e| GitError::io("write", p, e))
}

/// Rejects branch names git would read as options or that are not valid ref names.
pub(crate) fn check_branch(b: &str) -> Result<(), GitError> {
    let bad = b.is_empty()
        || b.starts_with('-')
        || b.starts_with('/')
        || b.ends_with('/')
        || b.ends_with(".lock")
        || b.ends_with('.')
        || b.contains("..")
        || b.contains("@{")
        || b.contains("//")
        || b == "@"
        || b.chars().any(|c| c.is_control() || " ~^:?*[\\".contains(c));
    if bad {
        Err(GitError::invalid(
            "branch",
            format!("'{b}' is not a valid branch name"),
        ))
    } else {
        Ok(())
    }
}

fn check_rev(r: &str) -> Result<(), GitError> {
    if r.is_empty() || r.starts_with('-') || r.chars().any(|c| c.is_control()) {
        Err(GitError::invalid("revision", format!("'{r}'")))
    } else {
        Ok(())
    }
}

impl Checkout {
    /// The work tree.
    pub fn workdir(&self) -> &Path {
        &self.repo
    }

    /// The local branch currently checked out.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The remote URL, redacted.
    pub fn display_url(&self) -> &str {
        &self.session.display
    }

    fn git(&self) -> Git<'_> {
        Git::new(Some(&self.repo))
    }

    fn net(&self) -> Git<'_> {
        Git::new(Some(&self.repo)).remote(&self.session)
    }

    fn is_shallow(&self) -> bool {
        self.repo.join(".git/shallow").exists()
    }

    fn history(&self) -> History {
        match fs::read_to_string(self.entry.join("history")) {
            Ok(s) if s.trim() == "full" => History::Full,
            Ok(s) => s
                .trim()
                .parse()
                .map(History::Depth)
                .unwrap_or(History::Depth(1)),
            Err(_) => History::Depth(1),
        }
    }

    /// Makes the repo usable: init when missing or half-made, drop stale locks and sequencer
    /// state (we hold the flock, so no live git is inside), and check connectivity after a crash.
    fn prepare(&mut self, crashed: bool) -> Result<(), GitError> {
        let ready = self.entry.join("ready").exists() && self.repo.join(".git/HEAD").exists();
        if !ready {
            self.wipe()?;
            fs::create_dir_all(&self.repo).map_err(|e| GitError::io("create", &self.repo, e))?;
            self.git().args(["init", "--quiet", "."]).run()?;
            return Ok(());
        }
        remove_stale_locks(&self.repo.join(".git"));
        for p in ["sequencer", "rebase-merge", "rebase-apply"] {
            let _ = fs::remove_dir_all(self.repo.join(".git").join(p));
        }
        for p in [
            "REVERT_HEAD",
            "CHERRY_PICK_HEAD",
            "MERGE_HEAD",
            "MERGE_MSG",
            "AUTO_MERGE",
        ] {
            let _ = fs::remove_file(self.repo.join(".git").join(p));
        }
        if crashed {
            tracing::info!(url = %self.session.display, "previous holder of the clone cache entry died; checking it");
            let fsck = self
                .git()
                .args([
                    "fsck",
                    "--connectivity-only",
                    "--no-dangling",
                    "--no-progress",
                ])
                .output()?;
            // An index torn by a kill is rebuilt from HEAD by the hard reset; a broken object
            // store is not repairable cheaply, so start over.
            if !fsck.ok() {
                tracing::warn!(url = %self.session.display, stderr = %fsck.stderr.trim(), "fsck failed; re-cloning");
                self.wipe()?;
                return self.prepare(false);
            }
            let _ = fs::remove_file(self.repo.join(".git/index"));
        }
        Ok(())
    }

    /// Throws the clone away. It is first renamed aside (atomic, even while a git helper of a
    /// killed holder, such as `index-pack`, still writes into it), then deleted best-effort;
    /// leftovers are swept on later wipes.
    fn wipe(&mut self) -> Result<(), GitError> {
        let _ = fs::remove_file(self.entry.join("ready"));
        let trash = self.entry.join(format!(
            "trash-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        match fs::rename(&self.repo, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(GitError::io("move aside", &self.repo, e)),
        }
        if let Ok(entries) = fs::read_dir(&self.entry) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with("trash-") {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(())
    }

    fn suspect_corruption(&self, e: &GitError) -> bool {
        match e {
            GitError::Command { kind, stderr, .. } => {
                *kind == FailureKind::Other
                    && [
                        "corrupt",
                        "bad object",
                        "missing",
                        "not a git repository",
                        "index file",
                        "unable to read",
                        "did not send all necessary objects",
                        "broken",
                        "invalid",
                        "fatal: packed object",
                        "loose object",
                        "unable to",
                    ]
                    .iter()
                    .any(|n| stderr.to_ascii_lowercase().contains(n))
            }
            _ => false,
        }
    }

    fn depth_args(&self) -> Vec<String> {
        let fresh = !self.entry.join("ready").exists();
        if !fresh && !self.is_shallow() {
            // Already complete: a plain fetch only adds what is new.
            return vec![];
        }
        match self.history() {
            History::Full if fresh => vec![],
            History::Full => vec!["--unshallow".into()],
            History::Depth(d) => vec![format!("--depth={}", d.max(1))],
        }
    }

    /// Fetches `branch` into `refs/remotes/origin/<branch>`; `None` if the remote lacks it.
    pub fn fetch_branch(&mut self, branch: &str) -> Result<Option<String>, GitError> {
        check_branch(branch)?;
        let args = self.depth_args();
        let out = self
            .net()
            .args(["fetch", "--no-tags", "--quiet", "--no-write-fetch-head"])
            .args(args)
            .arg("--")
            .arg(self.session.url.clone())
            .arg(format!("+refs/heads/{branch}:refs/remotes/origin/{branch}"))
            .output()?;
        if !out.ok() {
            let lower = out.stderr.to_ascii_lowercase();
            if lower.contains("couldn't find remote ref") || lower.contains("no such ref") {
                let _ = self
                    .git()
                    .args(["update-ref", "-d"])
                    .arg(format!("refs/remotes/origin/{branch}"))
                    .output();
                return Ok(None);
            }
            return Err(Git::failure("fetch", &self.session.display, &out));
        }
        self.resolve(&format!("refs/remotes/origin/{branch}"))
    }

    /// Resolves a revision to a commit SHA in the local clone.
    pub fn resolve(&self, rev: &str) -> Result<Option<String>, GitError> {
        check_rev(rev)?;
        let out = self
            .git()
            .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{rev}^{{commit}}"))
            .output()?;
        Ok(if out.ok() {
            Some(out.stdout_trim())
        } else {
            None
        })
    }

    /// Fetches `branch`, points the local `branch` at the remote tip and makes the work tree
    /// identical to it (`checkout -f -B`, `clean -ffdx`). Returns the tip.
    pub fn fetch_and_reset(&mut self, branch: &str) -> Result<String, GitError> {
        let Some(tip) = self.fetch_branch(branch)? else {
            return Err(GitError::BranchNotFound {
                url: self.session.display.clone(),
                branch: branch.to_string(),
            });
        };
        self.reset_to(branch, &format!("refs/remotes/origin/{branch}"))?;
        Ok(tip)
    }

    /// Checks out local branch `local` at `start` and cleans the tree.
    pub(crate) fn reset_to(&mut self, local: &str, start: &str) -> Result<(), GitError> {
        check_branch(local)?;
        check_rev(start)?;
        self.git()
            .args([
                "checkout",
                "--quiet",
                "--force",
                "--no-recurse-submodules",
                "-B",
            ])
            .arg(local)
            .arg(start)
            .arg("--")
            .run()?;
        // `checkout --force -B` already resets index and tracked files to `start`; only
        // untracked leftovers remain to be removed.
        self.git().args(["clean", "-ffdxq"]).run()?;
        self.branch = local.to_string();
        Ok(())
    }

    /// Makes sure the clone holds at least this much history (deepening or unshallowing), and
    /// keeps that setting for later fetches of this entry.
    pub fn ensure_history(&mut self, history: History) -> Result<(), GitError> {
        let current = self.history();
        let wanted = match (current, history) {
            (History::Full, _) | (_, History::Full) => History::Full,
            (History::Depth(a), History::Depth(b)) => History::Depth(a.max(b)),
        };
        let text = match wanted {
            History::Full => "full".to_string(),
            History::Depth(d) => d.to_string(),
        };
        fs::write(self.entry.join("history"), text)
            .map_err(|e| GitError::io("write", self.entry.join("history"), e))?;
        if !self.is_shallow() {
            return Ok(());
        }
        let depth_arg = match wanted {
            History::Full => "--unshallow".to_string(),
            History::Depth(d) => format!("--depth={d}"),
        };
        let branch = self.branch.clone();
        // Deepen the branch we are on; its remote-tracking ref may have moved, which is fine:
        // the work tree stays where it is.
        let upstream = if self
            .resolve(&format!("refs/remotes/origin/{branch}"))?
            .is_some()
        {
            branch
        } else {
            return Ok(());
        };
        self.net()
            .args(["fetch", "--no-tags", "--quiet", "--no-write-fetch-head"])
            .arg(depth_arg)
            .arg("--")
            .arg(self.session.url.clone())
            .arg(format!(
                "+refs/heads/{upstream}:refs/remotes/origin/{upstream}"
            ))
            .run()?;
        Ok(())
    }

    /// The commit checked out.
    pub fn head(&self) -> Result<String, GitError> {
        Ok(self
            .git()
            .args(["rev-parse", "--verify", "HEAD"])
            .run()?
            .stdout_trim())
    }

    /// Stages every change (additions, edits, deletions) and commits it with `spec`; author and
    /// committer are both `spec.author`. Returns `None` when nothing changed.
    pub fn commit_all(&mut self, spec: &CommitSpec) -> Result<Option<String>, GitError> {
        let a = &spec.author;
        for (what, v) in [("author name", &a.name), ("author email", &a.email)] {
            if v.chars().any(|c| c == '<' || c == '>' || c == '\n') {
                return Err(GitError::invalid(
                    "signature",
                    format!("{what} contains '<', '>' or a newline"),
                ));
            }
        }
        if a.email.trim().is_empty() {
            return Err(GitError::invalid("signature", "author email is required"));
        }
        self.git().args(["add", "--all", "--", "."]).run()?;
        let staged = self
            .git()
            .args(["diff", "--cached", "--quiet", "--exit-code"])
            .output()?;
        match staged.code {
            0 => return Ok(None),
            1 => {}
            _ => return Err(Git::failure("diff", "", &staged)),
        }
        let message = format_message(self, &spec.message, &spec.trailers)?;
        let signer = match &spec.signing {
            Some(k) => Some(Signer::new(k, &self.scratch)?),
            None => None,
        };
        let mut g = self
            .git()
            .args([
                "commit",
                "--quiet",
                "--no-verify",
                "--cleanup=verbatim",
                "--allow-empty-message",
                "-F",
                "-",
            ])
            .env("GIT_AUTHOR_NAME", a.name.clone())
            .env("GIT_AUTHOR_EMAIL", a.email.clone())
            .env("GIT_COMMITTER_NAME", a.name.clone())
            .env("GIT_COMMITTER_EMAIL", a.email.clone())
            .stdin(message.into_bytes());
        let mut secrets = Vec::new();
        if let Some(s) = &signer {
            g = g.arg("-S");
            for (k, v) in &s.config {
                g = g.config(k.clone(), v.clone());
            }
            for (k, v) in &s.env {
                g = g.env(k.clone(), v.clone());
            }
            secrets = s.secrets.clone();
        }
        let out = g.output()?;
        if !out.ok() {
            if let Some(k) = &spec.signing {
                return Err(GitError::Signing {
                    format: match k {
                        SigningKey::Gpg { .. } => "gpg",
                        SigningKey::Ssh { .. } => "ssh",
                    },
                    message: redact(out.stderr.trim(), &secrets),
                });
            }
            return Err(Git::failure("commit", "", &out));
        }
        drop(signer);
        Ok(Some(self.head()?))
    }

    /// Pushes `HEAD` to `refs/heads/<push_branch>` (never forced) with git push options.
    pub fn push(
        &mut self,
        push_branch: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<PushOutcome, GitError> {
        check_branch(push_branch)?;
        let head = self.head()?;
        let out = self.push_spec(&format!("HEAD:refs/heads/{push_branch}"), options, &head)?;
        if let PushOutcome::Pushed { sha } = &out {
            // The remote branch is now our commit: later local checkouts start from it.
            self.git()
                .args([
                    "update-ref",
                    &format!("refs/remotes/origin/{push_branch}"),
                    sha,
                ])
                .run()?;
        }
        Ok(out)
    }

    /// Pushes an extra refspec (Flux `git.push.refspec`), never forced: a leading `+` is refused.
    pub fn push_refspec(
        &mut self,
        refspec: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<PushOutcome, GitError> {
        if refspec.starts_with('+') {
            return Err(GitError::invalid(
                "refspec",
                format!("'{refspec}' asks for a forced push, which Ferry never does"),
            ));
        }
        if refspec.is_empty()
            || refspec.starts_with('-')
            || refspec.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(GitError::invalid("refspec", format!("'{refspec}'")));
        }
        let head = self.head()?;
        self.push_spec(refspec, options, &head)
    }

    fn push_spec(
        &mut self,
        refspec: &str,
        options: &BTreeMap<String, String>,
        head: &str,
    ) -> Result<PushOutcome, GitError> {
        let mut g = self.net().args(["push", "--porcelain", "--no-verify"]);
        for (k, v) in options {
            if k.is_empty() || k.contains('\n') || v.contains('\n') {
                return Err(GitError::invalid("push option", format!("'{k}'")));
            }
            g = g.arg(if v.is_empty() {
                format!("--push-option={k}")
            } else {
                format!("--push-option={k}={v}")
            });
        }
        let out = g
            .arg("--")
            .arg(self.session.url.clone())
            .arg(refspec)
            .output()?;
        let stdout = redact(&out.stdout_str(), &self.session.secrets);
        // Porcelain lines: <flag>\t<from>:<to>\t<summary>; '!' = rejected.
        let mut rejected = None;
        let mut seen = false;
        for line in stdout.lines() {
            let mut parts = line.splitn(3, '\t');
            let (Some(flag), Some(_refs), Some(summary)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            seen = true;
            if flag == "!" {
                rejected = Some(summary.trim().to_string());
            }
        }
        if let Some(reason) = rejected {
            let l = reason.to_ascii_lowercase();
            let retryable = [
                "fetch first",
                "non-fast-forward",
                "stale info",
                "cannot lock ref",
                "failed to update ref",
                "incorrect old value",
                "already exists",
                "is at ",
            ]
            .iter()
            .any(|n| l.contains(n));
            tracing::info!(url = %self.session.display, refspec, reason = %reason, retryable, "push rejected");
            return Ok(PushOutcome::Rejected { reason, retryable });
        }
        if !out.ok() || !seen {
            return Err(Git::failure("push", &self.session.display, &out));
        }
        tracing::info!(url = %self.session.display, refspec, sha = head, "pushed");
        Ok(PushOutcome::Pushed {
            sha: head.to_string(),
        })
    }

    /// Lists commits, newest first.
    pub fn log(&self, q: &LogQuery) -> Result<Vec<CommitInfo>, GitError> {
        let rev = q.rev_range.clone().unwrap_or_else(|| "HEAD".into());
        check_rev(&rev)?;
        let mut g = self
            .git()
            .args(["log", "-z", "--no-color", "--no-show-signature"])
            .arg("--format=%H%x00%P%x00%an%x00%ae%x00%at%x00%ct%x00%s%x00%b%x00%(trailers:only,unfold)");
        if let Some(m) = q.max {
            g = g.arg(format!("--max-count={m}"));
        }
        g = g.arg("--end-of-options").arg(rev).arg("--");
        for p in &q.paths {
            g = g.arg(p.clone());
        }
        let out = g.run()?;
        parse_log(&out.stdout)
    }

    /// Stages the inverse of commit `sha` (merge commits against their first parent) without
    /// committing. On a conflict it aborts, leaves the tree clean and reports the paths.
    /// Deepens a shallow clone when the commit's parent is missing.
    pub fn revert(&mut self, sha: &str) -> Result<RevertOutcome, GitError> {
        let Some(full) = self.resolve_deepening(sha)? else {
            return Err(GitError::UnknownRevision {
                rev: sha.into(),
                url: self.session.display.clone(),
            });
        };
        if self.resolve(&format!("{full}^1"))?.is_none() && self.is_shallow() {
            self.ensure_history(History::Full)?;
        }
        let parents = self
            .git()
            .args(["rev-list", "--parents", "-n1", "--end-of-options"])
            .arg(&full)
            .run()?;
        let nparents = parents
            .stdout_trim()
            .split_whitespace()
            .count()
            .saturating_sub(1);
        let subject = self
            .git()
            .args(["log", "-1", "--format=%s", "--end-of-options"])
            .arg(&full)
            .run()?
            .stdout_trim();
        let mut g = self.git().args(["revert", "--no-commit", "--no-edit"]);
        if nparents > 1 {
            g = g.args(["-m", "1"]);
        }
        let out = g.arg("--end-of-options").arg(&full).output()?;
        if out.ok() {
            let staged = self
                .git()
                .args(["diff", "--cached", "--quiet", "--exit-code"])
                .output()?;
            // Drop the sequencer state: the caller commits with its own message/trailers.
            let _ = fs::remove_file(self.repo.join(".git/REVERT_HEAD"));
            let _ = fs::remove_dir_all(self.repo.join(".git/sequencer"));
            let _ = fs::remove_file(self.repo.join(".git/MERGE_MSG"));
            return Ok(RevertOutcome::Clean {
                message: format!("Revert \"{subject}\"\n\nThis reverts commit {full}.\n"),
                reverted: full,
                has_changes: staged.code == 1,
            });
        }
        let conflicts = self
            .git()
            .args(["diff", "--name-only", "-z", "--diff-filter=U"])
            .output()?;
        let paths: Vec<String> = split_z(&conflicts.stdout);
        let _ = self.git().args(["revert", "--abort"]).output();
        let _ = fs::remove_file(self.repo.join(".git/REVERT_HEAD"));
        let _ = fs::remove_dir_all(self.repo.join(".git/sequencer"));
        self.git()
            .args(["reset", "--quiet", "--hard", "HEAD"])
            .run()?;
        self.git().args(["clean", "-ffdxq"]).run()?;
        if paths.is_empty() {
            return Err(Git::failure("revert", "", &out));
        }
        Ok(RevertOutcome::Conflict {
            reverted: full,
            paths,
        })
    }

    fn resolve_deepening(&mut self, rev: &str) -> Result<Option<String>, GitError> {
        if let Some(s) = self.resolve(rev)? {
            return Ok(Some(s));
        }
        if self.is_shallow() {
            self.ensure_history(History::Full)?;
            return self.resolve(rev);
        }
        Ok(None)
    }

    /// The content of `path` at `rev`, or `None` if the path does not exist there.
    pub fn show_file(&mut self, rev: &str, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let Some(commit) = self.resolve_deepening(rev)? else {
            return Err(GitError::UnknownRevision {
                rev: rev.into(),
                url: self.session.display.clone(),
            });
        };
        let path = path.trim_start_matches("./");
        let obj = format!("{commit}:{path}");
        let t = self
            .git()
            .args(["cat-file", "-t", "--end-of-options"])
            .arg(&obj)
            .output()?;
        if !t.ok() || t.stdout_trim() != "blob" {
            return Ok(None);
        }
        let out = self
            .git()
            .args(["cat-file", "blob", "--end-of-options"])
            .arg(&obj)
            .run()?;
        Ok(Some(out.stdout))
    }

    /// Paths that differ between two revisions.
    pub fn changed_files(&mut self, a: &str, b: &str) -> Result<Vec<String>, GitError> {
        let a = self.resolve_required(a)?;
        let b = self.resolve_required(b)?;
        let out = self
            .git()
            .args([
                "diff",
                "--name-only",
                "-z",
                "--no-renames",
                "--no-ext-diff",
                "--end-of-options",
            ])
            .arg(a)
            .arg(b)
            .arg("--")
            .run()?;
        Ok(split_z(&out.stdout))
    }

    /// Unified diff between two revisions, optionally limited to one path.
    pub fn diff(&mut self, a: &str, b: &str, path: Option<&str>) -> Result<String, GitError> {
        let a = self.resolve_required(a)?;
        let b = self.resolve_required(b)?;
        let mut g = self
            .git()
            .args([
                "diff",
                "--no-color",
                "--no-ext-diff",
                "--no-renames",
                "--end-of-options",
            ])
            .arg(a)
            .arg(b)
            .arg("--");
        if let Some(p) = path {
            g = g.arg(p);
        }
        Ok(g.run()?.stdout_str())
    }

    fn resolve_required(&mut self, rev: &str) -> Result<String, GitError> {
        self.resolve_deepening(rev)?
            .ok_or_else(|| GitError::UnknownRevision {
                rev: rev.into(),
                url: self.session.display.clone(),
            })
    }
}

fn split_z(b: &[u8]) -> Vec<String> {
    b.split(|c| *c == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Appends trailers the way git does (`git interpret-trailers`), validating keys and values.
/// How many `.git/objects/xx` fan-out directories exist (a cheap proxy for loose objects).
fn loose_fanout_dirs(repo: &Path) -> usize {
    fs::read_dir(repo.join(".git/objects"))
        .map(|dir| {
            dir.flatten()
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.len() == 2 && name.chars().all(|c| c.is_ascii_hexdigit())
                })
                .count()
        })
        .unwrap_or(0)
}

fn format_message(
    co: &Checkout,
    message: &str,
    trailers: &[(String, String)],
) -> Result<String, GitError> {
    let mut msg = message.to_string();
    if trailers.is_empty() {
        return Ok(msg);
    }
    if !msg.ends_with('\n') {
        msg.push('\n');
    }
    let mut g = co.git().args([
        "interpret-trailers",
        "--if-exists",
        "add",
        "--if-missing",
        "add",
        "--no-divider",
    ]);
    for (k, v) in trailers {
        let key_ok = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !key_ok || v.contains('\n') {
            return Err(GitError::invalid(
                "trailer",
                format!("'{k}' must be letters, digits or '-', and values one line"),
            ));
        }
        g = g.arg("--trailer").arg(format!("{k}: {v}"));
    }
    let out = g.stdin(msg.into_bytes()).run()?;
    Ok(out.stdout_str())
}

fn parse_log(stdout: &[u8]) -> Result<Vec<CommitInfo>, GitError> {
    const FIELDS: usize = 9;
    let text = String::from_utf8_lossy(stdout);
    let mut parts: Vec<&str> = text.split('\0').collect();
    if parts.len() % FIELDS == 1 && parts.last().is_some_and(|s| s.trim().is_empty()) {
        parts.pop();
    }
    if parts.len() == 1 && parts[0].trim().is_empty() {
        return Ok(Vec::new());
    }
    if !parts.len().is_multiple_of(FIELDS) {
        return Err(GitError::Parse {
            subcommand: "log".into(),
            message: format!("{} fields is not a multiple of {FIELDS}", parts.len()),
        });
    }
    let mut out = Vec::new();
    for c in parts.chunks(FIELDS) {
        let num = |s: &str| s.trim().parse::<i64>().unwrap_or(0);
        let trailers = c[8]
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        out.push(CommitInfo {
            sha: c[0].trim().to_string(),
            parents: c[1].split_whitespace().map(str::to_string).collect(),
            author_name: c[2].to_string(),
            author_email: c[3].to_string(),
            author_time: num(c[4]),
            committer_time: num(c[5]),
            subject: c[6].to_string(),
            body: c[7].trim_end().to_string(),
            trailers,
        });
    }
    Ok(out)
}

/// Deletes `*.lock` files under the git dir: left by a killed git, they block every later
/// command. Called only while holding the entry's flock (so no live git owns them).
fn remove_stale_locks(git_dir: &Path) {
    fn walk(dir: &Path, depth: usize) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                // objects/ holds no lock files git would wait on; skip its many directories.
                if depth < 6 && p.file_name().is_some_and(|n| n != "objects") {
                    walk(&p, depth + 1);
                }
            } else if p.extension().is_some_and(|x| x == "lock") {
                tracing::info!(path = %p.display(), "removing stale git lock");
                let _ = fs::remove_file(&p);
            }
        }
    }
    walk(git_dir, 0);
}
