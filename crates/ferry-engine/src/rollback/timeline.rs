//! The timeline of one policy's value, computed from Git alone: the marker values at each commit
//! of the branch's first-parent chain, compared with the commit before.
//!
//! The first-parent chain is what the environment actually ran (Flux applies the branch tip).
//! A merge that changed the value is one row, attributed to the side-branch commit that made the
//! change (`merged_from`) when there is one. Human edits of the marker lines are rows like any
//! other: the value is read from the files, never trusted from commit messages.

use std::collections::{HashMap, HashSet};

use ferry_git::{Checkout, CommitInfo, History, LogQuery};

use super::RollbackError;
use super::markers::{MarkerState, values_in_bytes};

/// What kind of change a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ChangeKind {
    #[serde(rename = "automation")]
    Automation,
    #[serde(rename = "promotion")]
    Promotion,
    #[serde(rename = "rollback")]
    Rollback,
    #[serde(rename = "hold")]
    Hold,
    #[serde(rename = "manual edit")]
    Manual,
    /// A rollback that `ferry controller --adopt-rollouts` wrote after a `kubectl rollout undo`.
    #[serde(rename = "rollout-undo adopted")]
    RolloutUndoAdopted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Automation => "automation",
            ChangeKind::Promotion => "promotion",
            ChangeKind::Rollback => "rollback",
            ChangeKind::Hold => "hold",
            ChangeKind::Manual => "manual edit",
            ChangeKind::RolloutUndoAdopted => "rollout-undo adopted",
        }
    }

    /// A rollback of any origin (what change-failure figures count).
    pub fn is_rollback(self) -> bool {
        matches!(self, ChangeKind::Rollback | ChangeKind::RolloutUndoAdopted)
    }
}

/// One change of the value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryRow {
    /// Committer time of `commit`, RFC 3339 UTC.
    pub time: String,
    pub old_tag: String,
    pub new_tag: String,
    /// The new digest, when the markers or the commit's trailers pin one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The commit on the branch that changed the value (a merge commit for merged changes).
    pub commit: String,
    /// For a merge: the side-branch commit that made the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<String>,
    /// `Name <email>` of the author of the change.
    pub author: String,
    pub kind: ChangeKind,
    /// `Ferry-Reason` trailer, else the commit subject.
    pub reason: String,
    pub old: MarkerState,
    pub new: MarkerState,
    /// When `ferry verify` or the controller first saw `new_tag` running in the cluster (RFC 3339
    /// UTC); filled by [`mark_first_seen_live`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen_live: Option<String>,
}

/// Attributes each sighting (tag → first time seen live) to the newest row that brought that tag
/// no later than the sighting: the change that was then running.
pub fn mark_first_seen_live(
    rows: &mut [HistoryRow],
    seen: &std::collections::BTreeMap<String, String>,
) {
    let parse = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
    };
    for (tag, at) in seen {
        let Some(at_time) = parse(at) else { continue };
        let row = rows
            .iter_mut()
            .rev()
            .find(|r| &r.new_tag == tag && parse(&r.time).is_some_and(|t| t <= at_time));
        if let Some(row) = row {
            row.first_seen_live = Some(at.clone());
        }
    }
}

/// The timeline plus what the tip holds.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Oldest first.
    pub rows: Vec<HistoryRow>,
    pub current: MarkerState,
}

impl Timeline {
    /// Every tag the environment ran, newest first, each once.
    pub fn tags_run(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for r in self.rows.iter().rev() {
            for t in [&r.new_tag, &r.old_tag] {
                if !t.is_empty() && seen.insert(t.clone()) {
                    out.push(t.clone());
                }
            }
        }
        out
    }
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn trailer<'a>(info: &'a CommitInfo, key: &str) -> Option<&'a str> {
    info.trailers
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// Kind and reason of a commit: Ferry's trailers first; without them, a commit by the
/// automation's configured author (or with Flux's default message) is a Flux bot commit.
pub fn classify(info: &CommitInfo, bot_emails: &[String]) -> (ChangeKind, String) {
    let reason = trailer(info, "Ferry-Reason")
        .map(str::to_string)
        .unwrap_or_else(|| info.subject.clone());
    if let Some(kind) = trailer(info, "Ferry-Kind") {
        let k = match kind.trim() {
            "automation" => ChangeKind::Automation,
            "promotion" | "promote" => ChangeKind::Promotion,
            "rollback" if trailer(info, super::trailer::ADOPTED).is_some() => {
                ChangeKind::RolloutUndoAdopted
            }
            "rollback" => ChangeKind::Rollback,
            "hold" | "unhold" => ChangeKind::Hold,
            _ => ChangeKind::Manual,
        };
        return (k, reason);
    }
    if info.subject.starts_with("Revert \"") || info.body.contains("This reverts commit ") {
        return (ChangeKind::Rollback, reason);
    }
    let bot = bot_emails
        .iter()
        .any(|e| !e.is_empty() && e.eq_ignore_ascii_case(&info.author_email));
    if bot || info.subject == "Update from image update automation" {
        return (ChangeKind::Automation, reason);
    }
    (ChangeKind::Manual, reason)
}

/// Reads marker values of one policy at commits, caching per commit.
struct Reader<'a> {
    co: &'a mut Checkout,
    files: &'a [String],
    policy: &'a str,
    cache: HashMap<String, MarkerState>,
}

impl Reader<'_> {
    /// For a merge that brought `state`: the oldest of the newest run of side-branch commits
    /// that already hold it (the commit that made the change).
    fn merge_origin(
        &mut self,
        info: &CommitInfo,
        state: &MarkerState,
    ) -> Result<Option<String>, RollbackError> {
        if info.parents.len() < 2 {
            return Ok(None);
        }
        let side = self.co.log(&LogQuery {
            rev_range: Some(format!("{}..{}", info.parents[0], info.parents[1])),
            paths: self.files.to_vec(),
            max: Some(500),
        })?;
        let mut found = None;
        for c in &side {
            if self.state_at(&c.sha)? != *state {
                break;
            }
            found = Some(c.sha.clone());
        }
        Ok(found)
    }

    fn state_at(&mut self, sha: &str) -> Result<MarkerState, RollbackError> {
        if let Some(s) = self.cache.get(sha) {
            return Ok(s.clone());
        }
        let mut values = Vec::new();
        for file in self.files {
            if let Some(bytes) = self.co.show_file(sha, file)? {
                values.extend(values_in_bytes(&bytes, self.policy));
            }
        }
        let state = MarkerState::from_values(values.iter().map(|(f, v)| (*f, v.as_str())));
        self.cache.insert(sha.to_string(), state.clone());
        Ok(state)
    }
}

/// The first-parent chain from the root to `tip`, oldest first: what the branch ran.
fn first_parent_chain(all: &HashMap<String, CommitInfo>, tip: &str) -> Vec<String> {
    let mut chain = Vec::new();
    let mut cur = Some(tip.to_string());
    while let Some(sha) = cur.take() {
        let Some(info) = all.get(&sha) else { break };
        chain.push(sha);
        cur = info.parents.first().cloned();
    }
    chain.reverse();
    chain
}

/// The commits of `chain` whose value must be read: those that touched the files, every merge
/// and the commit before it (git's path-limited log simplifies merges away), the root and the
/// tip. Commits in between changed none of the files, so their value is the last one read.
fn to_evaluate(
    chain: &[String],
    all: &HashMap<String, CommitInfo>,
    touched: &HashSet<String>,
) -> HashSet<String> {
    let mut evaluate = HashSet::new();
    for (i, sha) in chain.iter().enumerate() {
        let is_merge = all.get(sha).is_some_and(|c| c.parents.len() > 1);
        let before_merge = chain
            .get(i + 1)
            .and_then(|n| all.get(n))
            .is_some_and(|c| c.parents.len() > 1);
        if i == 0 || i + 1 == chain.len() || is_merge || before_merge || touched.contains(sha) {
            evaluate.insert(sha.clone());
        }
    }
    evaluate
}

/// Builds the timeline of `policy` (`ns:name`) over `files` (paths from the repository root)
/// at the checkout's HEAD. Deepens a shallow clone to full history.
pub fn build(
    co: &mut Checkout,
    files: &[String],
    policy: &str,
    bot_emails: &[String],
) -> Result<Timeline, RollbackError> {
    co.ensure_history(History::Full)?;
    let tip = co.head()?;
    let all: HashMap<String, CommitInfo> = co
        .log(&LogQuery {
            rev_range: Some(tip.clone()),
            ..LogQuery::default()
        })?
        .into_iter()
        .map(|c| (c.sha.clone(), c))
        .collect();
    let chain = first_parent_chain(&all, &tip);
    let touched: HashSet<String> = if files.is_empty() {
        HashSet::new()
    } else {
        co.log(&LogQuery {
            rev_range: Some(tip.clone()),
            paths: files.to_vec(),
            max: None,
        })?
        .into_iter()
        .map(|c| c.sha)
        .collect()
    };
    let evaluate = to_evaluate(&chain, &all, &touched);
    let mut reader = Reader {
        co,
        files,
        policy,
        cache: HashMap::new(),
    };
    let mut rows = Vec::new();
    let mut prev = MarkerState::default();
    for sha in &chain {
        if !evaluate.contains(sha) {
            continue;
        }
        let state = reader.state_at(sha)?;
        if state == prev {
            continue;
        }
        let Some(info) = all.get(sha) else { continue };
        let mut origin = info;
        let mut merged_from = None;
        if let Some(f) = reader.merge_origin(info, &state)?
            && let Some(c) = all.get(&f)
        {
            origin = c;
            merged_from = Some(f);
        }
        let (kind, reason) = classify(origin, bot_emails);
        rows.push(HistoryRow {
            time: rfc3339(info.committer_time),
            old_tag: prev.tag_str().to_string(),
            new_tag: state.tag_str().to_string(),
            // Pinned by the markers, else recorded by a promotion's trailer.
            digest: state.digest.clone().or_else(|| {
                origin
                    .trailers
                    .iter()
                    .find(|(k, _)| k == "Ferry-Digest")
                    .map(|(_, v)| v.clone())
            }),
            commit: sha.clone(),
            merged_from,
            author: format!("{} <{}>", origin.author_name, origin.author_email),
            kind,
            reason,
            old: prev.clone(),
            new: state.clone(),
            first_seen_live: None,
        });
        prev = state;
    }
    let current = match chain.last() {
        Some(t) => reader.state_at(t)?,
        None => MarkerState::default(),
    };
    Ok(Timeline { rows, current })
}
