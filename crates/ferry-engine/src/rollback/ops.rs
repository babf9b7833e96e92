//! `rollback`, `hold`, `unhold` and `history`.

use std::path::{Path, PathBuf};

use ferry_api::ObjectSet;
use ferry_git::{
    Checkout, CloneCache, CommitSpec, RevertOutcome, UpdateError, UpdateOutcome, UpdatePlan,
};
use ferry_setters::{PolicyValues, WriteMode};

use super::holds::{Denied, Hold, HoldsFile};
use super::markers::{MarkerState, values_in_bytes};
use super::target::{AppTarget, marker_files, resolve};
use super::timeline::{self, HistoryRow, Timeline};
use super::{RollbackError, trailer};
use crate::trailers::{CHANGE, ChangeTrailer, KIND};
use crate::{Engine, now_rfc3339};

/// Where the GitOps repository is when no automation names it (`--repo`, `--ref`, `--path`).
#[derive(Debug, Clone)]
pub struct RepoFallback {
    pub url: String,
    pub branch: String,
    pub path: Option<PathBuf>,
    /// Credentials (`--repo-secret`); never printed.
    pub auth: ferry_git::GitAuth,
}

/// `ferry rollback ENV APP`.
#[derive(Debug, Clone, Default)]
pub struct RollbackRequest {
    pub env: String,
    pub app: String,
    /// Roll back to this tag (one ENV ran before, unless `force`).
    pub to: Option<String>,
    /// Go back this many earlier versions (default 1).
    pub steps: Option<u32>,
    pub reason: String,
    pub by: String,
    pub dry_run: bool,
    pub force: bool,
    pub repo: Option<RepoFallback>,
    /// Push attempts before giving up on a branch that keeps moving.
    pub max_attempts: u32,
    /// The target is what the cluster runs: recorded as `Ferry-Adopted` (see
    /// [`super::trailer::ADOPTED`]).
    pub adopted: Option<Adopted>,
}

/// Why a rollback's target came from the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    /// `ferry rollback --to-live`.
    Live,
    /// `ferry controller --adopt-rollouts` after a `kubectl rollout undo`.
    RolloutUndo,
}

impl Adopted {
    pub fn as_str(self) -> &'static str {
        match self {
            Adopted::Live => "live",
            Adopted::RolloutUndo => "rollout-undo",
        }
    }
}

/// How the previous value was restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RollbackMethod {
    /// `git revert` of the commit that brought the current value.
    Revert,
    /// The previous value written through the setters (the revert conflicted, the commit did
    /// more than change this policy's markers, or the target is not the previous value).
    Setters,
}

/// What a rollback did (or, in a dry run, would do).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RollbackReport {
    /// `namespace/name` of the ImagePolicy.
    pub policy: String,
    pub branch: String,
    /// The pushed commit; `None` in a dry run.
    pub commit: Option<String>,
    /// The commit that brought the value being rolled back.
    pub reverts: String,
    pub method: RollbackMethod,
    /// Why the setters were used instead of `git revert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method_reason: Option<String>,
    pub from: MarkerState,
    pub to: MarkerState,
    pub denied_tag: String,
    pub changes: Vec<ChangeTrailer>,
    pub attempts: u32,
    /// Unified diff of the commit (dry run only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// `ferry hold ENV APP`.
#[derive(Debug, Clone, Default)]
pub struct HoldRequest {
    pub env: String,
    pub app: String,
    pub reason: String,
    pub by: String,
    pub repo: Option<RepoFallback>,
}

/// `ferry unhold ENV APP`.
#[derive(Debug, Clone, Default)]
pub struct UnholdRequest {
    pub env: String,
    pub app: String,
    pub reason: String,
    pub by: String,
    /// Also lift the denial of these tags.
    pub allow: Vec<String>,
    /// Also lift every denial of the policy.
    pub allow_all: bool,
    pub repo: Option<RepoFallback>,
}

/// What hold/unhold did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HoldReport {
    pub policy: String,
    pub branch: String,
    /// `None` when nothing had to change.
    pub commit: Option<String>,
    /// The held tag (hold) or the tag that was held (unhold).
    pub tag: String,
    /// Tags whose denial was lifted (unhold).
    pub allowed: Vec<String>,
    pub message: String,
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cache(engine: &Engine) -> Result<CloneCache, RollbackError> {
    Ok(CloneCache::new(engine.config().cache_dir.clone())?)
}

/// The outcome of one computation on a tip.
enum Step<T> {
    /// Commit this (the work tree holds the change) and push.
    Commit(CommitSpec, T),
    /// Nothing to change.
    Nothing(T),
}

/// Pushed (or planned) result of [`push_loop`].
struct Pushed<T> {
    value: T,
    commit: Option<String>,
    attempts: u32,
    diff: Option<String>,
}

/// Compute on the tip, commit, push without force; when the remote moved, fetch the new tip and
/// compute again from scratch: `ferry_git::update_and_push_checkout`, the one push loop, with the
/// [`Checkout`] in hand because a rollback needs `git log` and `git revert`.
fn push_loop<T>(
    cache: &CloneCache,
    target: &AppTarget,
    max_attempts: u32,
    dry_run: bool,
    mut f: impl FnMut(&mut Checkout) -> Result<Step<T>, RollbackError>,
) -> Result<Pushed<T>, RollbackError> {
    let plan = UpdatePlan {
        max_attempts: max_attempts.max(1),
        before_push: Some(crate::test_hooks::before_push),
        dry_run,
        ..UpdatePlan::new(target.branch.clone())
    };
    let mut value = None;
    let outcome = ferry_git::update_and_push_checkout(cache, &target.remote, &plan, |co| {
        let (spec, v) = match f(co)? {
            Step::Commit(spec, v) => (Some(spec), v),
            Step::Nothing(v) => (None, v),
        };
        value = Some(v);
        Ok::<_, RollbackError>(spec)
    });
    let outcome = outcome.map_err(|e| match e {
        UpdateError::Apply(e) => e,
        UpdateError::Git(g) => RollbackError::Git(g),
        UpdateError::Rejected {
            branch,
            attempts,
            reason,
        } => RollbackError::Failed(format!(
            "push to branch {branch} rejected after {attempts} attempt(s): {reason}"
        )),
        other => RollbackError::Failed(other.to_string()),
    })?;
    let value = value.ok_or_else(|| RollbackError::Failed("nothing was computed".into()))?;
    let (commit, attempts, diff) = match outcome {
        UpdateOutcome::Pushed { sha, attempts, .. } => (Some(sha), attempts, None),
        UpdateOutcome::NothingToDo { .. } => (None, 1, None),
        UpdateOutcome::WouldPush { diff, .. } => (None, 0, Some(diff)),
    };
    Ok(Pushed {
        value,
        commit,
        attempts,
        diff,
    })
}

/// True when `sha` changed nothing but this policy's marker values (so `git revert` of it
/// undoes exactly this policy's change and nothing a person wrote).
fn only_marker_change(
    co: &mut Checkout,
    sha: &str,
    files: &[String],
    key: &str,
    new: &MarkerState,
    fallback_name: &str,
) -> Result<Result<(), String>, RollbackError> {
    let parent = format!("{sha}^1");
    if co.resolve(&parent)?.is_none() {
        return Ok(Err("the commit has no parent".into()));
    }
    let changed = co.changed_files(&parent, sha)?;
    if let Some(other) = changed.iter().find(|c| !files.contains(c)) {
        return Ok(Err(format!("the commit also changed {other}")));
    }
    let mut values = PolicyValues::new();
    values.insert(key.to_string(), new.image_ref(fallback_name));
    for file in &changed {
        let before = co.show_file(&parent, file)?;
        let after = co.show_file(sha, file)?;
        let (Some(before), Some(after)) = (before, after) else {
            return Ok(Err(format!("the commit added or removed {file}")));
        };
        let rewritten = ferry_setters::update_bytes(&before, &values)
            .map(|u| u.output)
            .unwrap_or_default();
        if rewritten != after {
            return Ok(Err(format!(
                "the commit changed more than the marked values in {file}"
            )));
        }
    }
    Ok(Ok(()))
}

/// `(file, [(field, value)])`: a policy's marker values per file, in document order.
type FileValues = Vec<(String, Vec<(ferry_setters::SetterField, String)>)>;

/// Per-setter changes between two scans of the same files.
fn setter_changes(
    workdir: &Path,
    files: &[String],
    key: &str,
    before: &FileValues,
) -> Result<Vec<ChangeTrailer>, RollbackError> {
    let mut out = Vec::new();
    for (file, old_values) in before {
        if !files.contains(file) {
            continue;
        }
        let bytes = std::fs::read(workdir.join(file)).map_err(|e| {
            RollbackError::Failed(format!("cannot read {file} after the rollback: {e}"))
        })?;
        let new_values = values_in_bytes(&bytes, key);
        for ((field, old), (_, new)) in old_values.iter().zip(new_values.iter()) {
            if old != new {
                out.push(ChangeTrailer {
                    policy: key.replacen(':', "/", 1),
                    setter: format!("{key}{}", field.suffix()),
                    old: old.clone(),
                    new: new.clone(),
                });
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn read_values(workdir: &Path, files: &[String], key: &str) -> Result<FileValues, RollbackError> {
    files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(workdir.join(f))
                .map_err(|e| RollbackError::Failed(format!("cannot read {f}: {e}")))?;
            Ok((f.clone(), values_in_bytes(&bytes, key)))
        })
        .collect()
}

fn state_of(values: &FileValues) -> MarkerState {
    MarkerState::from_values(
        values
            .iter()
            .flat_map(|(_, v)| v.iter().map(|(f, s)| (*f, s.as_str()))),
    )
}

/// Chooses the state to roll back to and the row that brought the current value.
fn choose_target(
    req: &RollbackRequest,
    tl: &Timeline,
    holds: &HoldsFile,
    id: &str,
) -> Result<(MarkerState, HistoryRow), RollbackError> {
    let current = &tl.current;
    let Some(last) = tl.rows.last().cloned() else {
        return Err(RollbackError::Invalid(format!(
            "{id}: no change of its setter markers in the history of the branch"
        )));
    };
    let current_tag = current.tag_str().to_string();
    if let Some(tag) = &req.to {
        if *tag == current_tag {
            // A rerun after a push whose answer was lost says what it finds, not "do it again".
            let held = holds
                .hold(id)
                .filter(|h| h.tag == *tag)
                .map(|h| format!(", held since {} by {}: nothing to do", h.at, h.by))
                .unwrap_or_default();
            return Err(RollbackError::Invalid(format!(
                "{id} already runs {tag}{held}"
            )));
        }
        for r in tl.rows.iter().rev() {
            for st in [&r.new, &r.old] {
                if st.tag.as_deref() == Some(tag.as_str()) {
                    return Ok((st.clone(), last));
                }
            }
        }
        if req.force {
            return Ok((
                MarkerState {
                    name: current.name.clone(),
                    tag: Some(tag.clone()),
                    digest: None,
                },
                last,
            ));
        }
        return Err(RollbackError::Invalid(format!(
            "{tag} never ran in {id} (tags it ran: {}); pass --force to roll back to it anyway",
            tl.tags_run().join(", ")
        )));
    }
    let steps = req.steps.unwrap_or(1).max(1) as usize;
    // Earlier versions, newest first: each tag once, never the current one or a denied one
    // (rolling back twice goes further back, not forward to the tag just rolled back).
    let mut seen = std::collections::HashSet::new();
    seen.insert(current_tag.clone());
    let mut earlier: Vec<MarkerState> = Vec::new();
    for r in tl.rows.iter().rev() {
        let st = &r.old;
        let Some(tag) = st.tag.as_deref() else {
            continue;
        };
        if holds.is_denied(id, tag) || !seen.insert(tag.to_string()) {
            continue;
        }
        earlier.push(st.clone());
    }
    match earlier.get(steps - 1) {
        Some(st) => Ok((st.clone(), last)),
        None => Err(RollbackError::Invalid(format!(
            "{id}: cannot go back {steps} version(s): it ran {} earlier version(s) that are not denied",
            earlier.len()
        ))),
    }
}

impl Engine {
    /// Rolls ENV/APP back, records the hold and the denied tag in `.ferry/holds.yaml` in the
    /// same commit, and pushes (recomputing on a new tip when the push is rejected).
    pub async fn rollback(
        &self,
        objects: &ObjectSet,
        req: &RollbackRequest,
    ) -> Result<RollbackReport, RollbackError> {
        let target = resolve(self, objects, &req.env, &req.app, req.repo.as_ref())?;
        let cache = cache(self)?;
        let req = req.clone();
        crate::blocking(move || rollback_blocking(&cache, &target, &req)).await?
    }

    /// Holds ENV/APP at the value its markers hold now.
    pub async fn hold(
        &self,
        objects: &ObjectSet,
        req: &HoldRequest,
    ) -> Result<HoldReport, RollbackError> {
        let target = resolve(self, objects, &req.env, &req.app, req.repo.as_ref())?;
        let cache = cache(self)?;
        let req = req.clone();
        crate::blocking(move || hold_blocking(&cache, &target, &req)).await?
    }

    /// Lifts the hold of ENV/APP (and, if asked, denials).
    pub async fn unhold(
        &self,
        objects: &ObjectSet,
        req: &UnholdRequest,
    ) -> Result<HoldReport, RollbackError> {
        let target = resolve(self, objects, &req.env, &req.app, req.repo.as_ref())?;
        let cache = cache(self)?;
        let req = req.clone();
        crate::blocking(move || unhold_blocking(&cache, &target, &req)).await?
    }

    /// A web link to `sha` in ENV/APP's write-back repository, when its host has a known web
    /// form (see [`ferry_git::commit_web_url`]).
    pub fn commit_link(
        &self,
        objects: &ObjectSet,
        env: &str,
        app: &str,
        sha: &str,
    ) -> Option<String> {
        let target = resolve(self, objects, env, app, None).ok()?;
        ferry_git::commit_web_url(&target.remote.url, sha)
    }

    /// The timeline of ENV/APP from Git, oldest first.
    pub async fn history(
        &self,
        objects: &ObjectSet,
        env: &str,
        app: &str,
        repo: Option<&RepoFallback>,
    ) -> Result<Vec<HistoryRow>, RollbackError> {
        let target = resolve(self, objects, env, app, repo)?;
        let mut rows = self.git_history(&target).await?;
        // Digests Git does not pin come from the registry (one HEAD per distinct tag), when the
        // tag still exists there.
        let mut known: std::collections::BTreeMap<String, Option<String>> = Default::default();
        for row in rows
            .iter_mut()
            .filter(|r| r.digest.is_none() && !r.new_tag.is_empty())
        {
            if !known.contains_key(&row.new_tag) {
                let d = self.registry_digest(objects, &target, &row.new_tag).await;
                known.insert(row.new_tag.clone(), d);
            }
            row.digest = known.get(&row.new_tag).cloned().flatten();
        }
        Ok(rows)
    }

    /// The timeline of ENV/APP from Git alone (no registry lookups), oldest first: what
    /// `history` shows before digests are filled in, and what delivery metrics count.
    pub async fn history_from_git(
        &self,
        objects: &ObjectSet,
        env: &str,
        app: &str,
        repo: Option<&RepoFallback>,
    ) -> Result<Vec<HistoryRow>, RollbackError> {
        let target = resolve(self, objects, env, app, repo)?;
        self.git_history(&target).await
    }

    /// The hold and unhold commits of ENV/APP, oldest first, from the log of the holds file.
    pub async fn hold_log(
        &self,
        objects: &ObjectSet,
        env: &str,
        app: &str,
        repo: Option<&RepoFallback>,
    ) -> Result<Vec<HoldCommit>, RollbackError> {
        let target = resolve(self, objects, env, app, repo)?;
        let id = target.id();
        let log = self.path_log(target, super::HOLDS_PATH.to_string()).await?;
        Ok(log.iter().filter_map(|c| hold_commit(c, &id)).collect())
    }

    /// The promotion commits into ENV of APP, oldest first, from the log of its release records
    /// (`releases/<app>/<env>/`, docs/promotion.md).
    pub async fn promotion_log(
        &self,
        objects: &ObjectSet,
        env: &str,
        app: &str,
    ) -> Result<Vec<PromotionCommit>, RollbackError> {
        let target = resolve(self, objects, env, app, None)?;
        let log = self
            .path_log(target, format!("releases/{app}/{env}"))
            .await?;
        Ok(log
            .iter()
            .filter_map(|c| promotion_commit(c, app, env))
            .collect())
    }

    /// Commits touching `path` on the target's branch, oldest first (at most 500).
    async fn path_log(
        &self,
        target: AppTarget,
        path: String,
    ) -> Result<Vec<ferry_git::CommitInfo>, RollbackError> {
        let cache = cache(self)?;
        crate::blocking(move || {
            let mut co = cache.checkout(&target.remote, &target.branch)?;
            co.ensure_history(ferry_git::History::Full)?;
            let mut log = co.log(&ferry_git::LogQuery {
                rev_range: None,
                paths: vec![path],
                max: Some(500),
            })?;
            log.reverse();
            Ok(log)
        })
        .await?
    }

    /// The digest of ENV/APP's `tag` in its registry repository, when the registry answers.
    pub async fn tag_digest(
        &self,
        objects: &ObjectSet,
        env: &str,
        app: &str,
        tag: &str,
    ) -> Option<String> {
        let target = resolve(self, objects, env, app, None).ok()?;
        self.registry_digest(objects, &target, tag).await
    }

    async fn git_history(&self, target: &AppTarget) -> Result<Vec<HistoryRow>, RollbackError> {
        let cache = cache(self)?;
        let t = target.clone();
        crate::blocking(move || {
            let target = t;
            let mut co = cache.checkout(&target.remote, &target.branch)?;
            let (files, _) = marker_files(co.workdir(), &target.scan_root, &target.key())?;
            if files.is_empty() {
                return Err(RollbackError::Invalid(format!(
                    "no setter markers of ImagePolicy {} under {} in {} branch {}",
                    target.id(),
                    display_root(&target.scan_root),
                    co.display_url(),
                    target.branch
                )));
            }
            Ok::<_, RollbackError>(
                timeline::build(&mut co, &files, &target.key(), &target.bot_emails)?.rows,
            )
        })
        .await?
    }
}

fn display_root(p: &Path) -> String {
    if p.as_os_str().is_empty() {
        ".".into()
    } else {
        p.display().to_string()
    }
}

/// One attempt of a rollback on a fresh checkout: the goal, a revert or the setters, the hold
/// and denial, and the commit to push.
fn rollback_step(
    co: &mut Checkout,
    target: &AppTarget,
    req: &RollbackRequest,
    by: &str,
    reason: &str,
) -> Result<Step<RollbackReport>, RollbackError> {
    let key = target.key();
    let id = target.id();
    let (files, _) = marker_files(co.workdir(), &target.scan_root, &key)?;
    if files.is_empty() {
        return Err(RollbackError::Invalid(format!(
            "no setter markers of ImagePolicy {id} under {} in {} branch {}",
            display_root(&target.scan_root),
            co.display_url(),
            target.branch
        )));
    }
    let mut holds = HoldsFile::read(co.workdir())?;
    let tl = timeline::build(co, &files, &key, &target.bot_emails)?;
    let (goal, last) = choose_target(req, &tl, &holds, &id)?;
    let current = tl.current.clone();
    let fallback_name = current
        .name
        .clone()
        .unwrap_or_else(|| target.image_name.clone());
    let before = read_values(co.workdir(), &files, &key)?;

    let single_step = req.to.is_none() && req.steps.unwrap_or(1) <= 1;
    let (method, method_reason) =
        revert_if_exact(co, single_step, &last, &goal, &files, &key, &fallback_name)?;
    // The setters make the goal exact in every case (after a clean revert they change
    // nothing unless later commits touched the same values).
    let mut values = PolicyValues::new();
    values.insert(key.clone(), goal.image_ref(&fallback_name));
    for f in &files {
        ferry_setters::apply_tree_in(
            co.workdir(),
            &co.workdir().join(f),
            &values,
            WriteMode::Write,
        )?;
    }
    let after = state_of(&read_values(co.workdir(), &files, &key)?);
    if after.tag != goal.tag {
        return Err(RollbackError::Failed(format!(
            "{id}: after the rollback the markers hold {:?}, expected {:?}",
            after.reference(),
            goal.reference()
        )));
    }
    let changes = setter_changes(co.workdir(), &files, &key, &before)?;
    let bad = current.tag_str().to_string();
    let hold = Hold {
        policy: id.clone(),
        image: goal.name.clone().unwrap_or_else(|| fallback_name.clone()),
        tag: goal.tag_str().to_string(),
        digest: goal.digest.clone(),
        reverts: Some(last.commit.clone()),
        by: by.to_string(),
        reason: reason.to_string(),
        at: now_rfc3339(),
    };
    hold_and_deny(&mut holds, hold, &bad);
    holds.write(co.workdir())?;
    let report = RollbackReport {
        policy: id.clone(),
        branch: target.branch.clone(),
        commit: None,
        reverts: last.commit.clone(),
        method,
        method_reason,
        from: current,
        to: goal,
        denied_tag: bad,
        changes,
        attempts: 0,
        diff: None,
    };
    let who = Who {
        by,
        reason,
        adopted: req.adopted,
    };
    let (message, trailers) = rollback_commit_text(&report, &last.reason, &who);
    let spec = CommitSpec {
        message,
        trailers,
        author: target.author.clone(),
        signing: target.signing.clone(),
    };
    Ok(Step::Commit(spec, report))
}

fn rollback_blocking(
    cache: &CloneCache,
    target: &AppTarget,
    req: &RollbackRequest,
) -> Result<RollbackReport, RollbackError> {
    let by = if req.by.is_empty() {
        "unknown".to_string()
    } else {
        req.by.clone()
    };
    let reason = one_line(&req.reason);
    let attempts = if req.max_attempts == 0 {
        8
    } else {
        req.max_attempts
    };
    let pushed = push_loop(cache, target, attempts, req.dry_run, |co| {
        rollback_step(co, target, req, &by, &reason)
    })?;
    let mut report = pushed.value;
    report.commit = pushed.commit;
    report.attempts = pushed.attempts;
    report.diff = pushed.diff;
    if report.commit.is_none() && !req.dry_run {
        return Err(RollbackError::Failed(format!(
            "{}: the rollback changed nothing",
            report.policy
        )));
    }
    Ok(report)
}

/// Reverts the commit that brought the current value when that restores exactly the goal and
/// touches only this policy's values; otherwise says why the setters write it instead.
fn revert_if_exact(
    co: &mut Checkout,
    single_step: bool,
    last: &HistoryRow,
    goal: &MarkerState,
    files: &[String],
    key: &str,
    fallback_name: &str,
) -> Result<(RollbackMethod, Option<String>), RollbackError> {
    if last.merged_from.is_some() {
        return Ok((
            RollbackMethod::Setters,
            Some("the value came in through a merge".into()),
        ));
    }
    if !single_step || last.old != *goal {
        return Ok((
            RollbackMethod::Setters,
            Some("the target is not the value just before the current one".into()),
        ));
    }
    if let Err(why) = only_marker_change(co, &last.commit, files, key, &last.new, fallback_name)? {
        return Ok((RollbackMethod::Setters, Some(why)));
    }
    Ok(match co.revert(&last.commit)? {
        RevertOutcome::Clean { .. } => (RollbackMethod::Revert, None),
        RevertOutcome::Conflict { paths, .. } => (
            RollbackMethod::Setters,
            Some(format!(
                "git revert conflicts with later commits in {}",
                paths.join(", ")
            )),
        ),
    })
}

/// Holds the policy at the goal and denies the tag it leaves (unless that is the goal too).
fn hold_and_deny(holds: &mut HoldsFile, hold: Hold, bad: &str) {
    if !bad.is_empty() && bad != hold.tag {
        holds.deny(Denied {
            policy: hold.policy.clone(),
            tag: bad.to_string(),
            by: hold.by.clone(),
            reason: hold.reason.clone(),
            at: hold.at.clone(),
        });
    }
    holds.set_hold(hold);
}

/// Who rolled back, why, and whether the target came from the cluster.
struct Who<'a> {
    by: &'a str,
    reason: &'a str,
    adopted: Option<Adopted>,
}

/// The message and trailers of a rollback commit (docs/rollback.md).
fn rollback_commit_text(
    report: &RollbackReport,
    last_reason: &str,
    who: &Who<'_>,
) -> (String, Vec<(String, String)>) {
    let (id, goal, bad) = (&report.policy, &report.to, &report.denied_tag);
    let mut message = format!(
        "Roll back {id} to {}\n\n{} -> {}\nReverts {} ({last_reason}).\n",
        goal.tag_str(),
        report.from.reference(),
        goal.reference(),
        report.reverts,
    );
    if !who.reason.is_empty() {
        message.push_str(&format!("Reason: {}\n", who.reason));
    }
    if let Some(why) = &report.method_reason {
        message.push_str(&format!("Written through the setters: {why}.\n"));
    }
    let mut trailers = vec![
        (KIND.to_string(), "rollback".to_string()),
        (trailer::REVERTS.to_string(), report.reverts.clone()),
    ];
    trailers.extend(
        report
            .changes
            .iter()
            .map(|c| (CHANGE.to_string(), c.to_value())),
    );
    trailers.push((
        trailer::HOLD.to_string(),
        format!("policy={id} tag={}", goal.tag_str()),
    ));
    if !bad.is_empty() && bad != goal.tag_str() {
        trailers.push((trailer::DENY.to_string(), format!("policy={id} tag={bad}")));
    }
    let method = match report.method {
        RollbackMethod::Revert => "revert",
        RollbackMethod::Setters => "setters",
    };
    trailers.push((trailer::METHOD.to_string(), method.into()));
    trailers.push((trailer::BY.to_string(), one_line(who.by)));
    if !who.reason.is_empty() {
        trailers.push((trailer::REASON.to_string(), who.reason.to_string()));
    }
    if let Some(adopted) = who.adopted {
        trailers.push((trailer::ADOPTED.to_string(), adopted.as_str().to_string()));
    }
    (message, trailers)
}

fn hold_blocking(
    cache: &CloneCache,
    target: &AppTarget,
    req: &HoldRequest,
) -> Result<HoldReport, RollbackError> {
    let key = target.key();
    let id = target.id();
    let by = if req.by.is_empty() {
        "unknown".to_string()
    } else {
        one_line(&req.by)
    };
    let reason = one_line(&req.reason);
    let pushed = push_loop(cache, target, 8, false, |co| {
        let (files, state) = marker_files(co.workdir(), &target.scan_root, &key)?;
        if files.is_empty() || state.tag.is_none() {
            return Err(RollbackError::Invalid(format!(
                "no setter markers with a tag for ImagePolicy {id} under {} in branch {}",
                display_root(&target.scan_root),
                target.branch
            )));
        }
        let mut holds = HoldsFile::read(co.workdir())?;
        let tag = state.tag_str().to_string();
        if holds.hold(&id).is_some_and(|h| h.tag == tag) {
            return Ok(Step::Nothing(format!("{id} is already held at {tag}")));
        }
        holds.set_hold(Hold {
            policy: id.clone(),
            image: state
                .name
                .clone()
                .unwrap_or_else(|| target.image_name.clone()),
            tag: tag.clone(),
            digest: state.digest.clone(),
            reverts: None,
            by: by.clone(),
            reason: reason.clone(),
            at: now_rfc3339(),
        });
        holds.write(co.workdir())?;
        let mut trailers = vec![
            (KIND.to_string(), "hold".to_string()),
            (trailer::HOLD.to_string(), format!("policy={id} tag={tag}")),
            (trailer::BY.to_string(), by.clone()),
        ];
        if !reason.is_empty() {
            trailers.push((trailer::REASON.to_string(), reason.clone()));
        }
        let mut message = format!("Hold {id} at {tag}\n");
        if !reason.is_empty() {
            message.push_str(&format!("\nReason: {reason}\n"));
        }
        Ok(Step::Commit(
            CommitSpec {
                message,
                trailers,
                author: target.author.clone(),
                signing: target.signing.clone(),
            },
            format!("held {id} at {tag}"),
        ))
    })?;
    let tag = pushed
        .value
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    Ok(HoldReport {
        policy: id,
        branch: target.branch.clone(),
        commit: pushed.commit,
        tag,
        allowed: Vec::new(),
        message: pushed.value,
    })
}

fn unhold_blocking(
    cache: &CloneCache,
    target: &AppTarget,
    req: &UnholdRequest,
) -> Result<HoldReport, RollbackError> {
    let id = target.id();
    let by = if req.by.is_empty() {
        "unknown".to_string()
    } else {
        one_line(&req.by)
    };
    let reason = one_line(&req.reason);
    let pushed = push_loop(cache, target, 8, false, |co| {
        let mut holds = HoldsFile::read(co.workdir())?;
        let held = holds.hold(&id).map(|h| h.tag.clone());
        let removed = holds.remove_hold(&id);
        let mut allowed = Vec::new();
        let denied = holds.denied_tags(&id);
        for tag in denied {
            if req.allow_all || req.allow.contains(&tag) {
                holds.undeny(&id, Some(&tag));
                allowed.push(tag);
            }
        }
        if !removed && allowed.is_empty() {
            return Ok(Step::Nothing((
                String::new(),
                allowed,
                format!("{id} is not held"),
            )));
        }
        holds.write(co.workdir())?;
        let mut trailers = vec![(KIND.to_string(), "unhold".to_string())];
        if let Some(t) = &held {
            trailers.push((trailer::UNHOLD.to_string(), format!("policy={id} tag={t}")));
        }
        for t in &allowed {
            trailers.push((trailer::ALLOW.to_string(), format!("policy={id} tag={t}")));
        }
        trailers.push((trailer::BY.to_string(), by.clone()));
        if !reason.is_empty() {
            trailers.push((trailer::REASON.to_string(), reason.clone()));
        }
        let mut message = match &held {
            Some(t) => format!("Lift the hold of {id} (was held at {t})\n"),
            None => format!("Lift denied tags of {id}\n"),
        };
        if !allowed.is_empty() {
            message.push_str(&format!("\nNo longer denied: {}\n", allowed.join(", ")));
        }
        if !reason.is_empty() {
            message.push_str(&format!("\nReason: {reason}\n"));
        }
        let text = match &held {
            Some(t) => format!("lifted the hold of {id} at {t}"),
            None => format!("lifted denials of {id}"),
        };
        Ok(Step::Commit(
            CommitSpec {
                message,
                trailers,
                author: target.author.clone(),
                signing: target.signing.clone(),
            },
            (held.unwrap_or_default(), allowed, text),
        ))
    })?;
    let (tag, allowed, message) = pushed.value;
    Ok(HoldReport {
        policy: id,
        branch: target.branch.clone(),
        commit: pushed.commit,
        tag,
        allowed,
        message,
    })
}

/// One hold or unhold commit of a policy (docs/rollback.md trailers).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HoldCommit {
    pub commit: String,
    /// Committer time, RFC 3339 UTC.
    pub time: String,
    /// `Name <email>`.
    pub author: String,
    pub unhold: bool,
    /// The tag held (or that was held).
    pub tag: String,
    pub by: String,
    pub reason: String,
}

fn hold_commit(c: &ferry_git::CommitInfo, policy: &str) -> Option<HoldCommit> {
    let get = |key: &'static str| {
        c.trailers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    };
    let kind = get(KIND).next()?.trim();
    let (unhold, key) = match kind {
        "hold" => (false, trailer::HOLD),
        "unhold" => (true, trailer::UNHOLD),
        _ => return None,
    };
    let wanted = format!("policy={policy}");
    let value = get(key).find(|v| v.split_whitespace().any(|f| f == wanted))?;
    let tag = value
        .split_whitespace()
        .find_map(|f| f.strip_prefix("tag="))
        .unwrap_or_default();
    Some(HoldCommit {
        commit: c.sha.clone(),
        time: crate::dora::rfc3339(c.committer_time),
        author: format!("{} <{}>", c.author_name, c.author_email),
        unhold,
        tag: tag.to_string(),
        by: get(trailer::BY).next().unwrap_or_default().to_string(),
        reason: get(trailer::REASON).next().unwrap_or_default().to_string(),
    })
}

/// One promotion (release record) commit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PromotionCommit {
    pub commit: String,
    /// Committer time, RFC 3339 UTC.
    pub time: String,
    pub from_env: String,
    pub source_tag: String,
    /// The immutable tag written.
    pub target_tag: String,
    pub digest: String,
    pub by: String,
    pub subject: String,
}

fn promotion_commit(c: &ferry_git::CommitInfo, app: &str, env: &str) -> Option<PromotionCommit> {
    let get = |key: &str| {
        c.trailers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    if get(KIND) != "promotion" || get("Ferry-App") != app || get("Ferry-Env") != env {
        return None;
    }
    Some(PromotionCommit {
        commit: c.sha.clone(),
        time: crate::dora::rfc3339(c.committer_time),
        from_env: get("Ferry-From-Env"),
        source_tag: get("Ferry-Source-Tag"),
        // The first Ferry-Target-Tag is the immutable one (the alias follows).
        target_tag: get("Ferry-Target-Tag"),
        digest: get("Ferry-Digest"),
        by: get("Ferry-Promoted-By"),
        subject: c.subject.clone(),
    })
}
