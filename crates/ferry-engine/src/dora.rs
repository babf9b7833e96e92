//! Delivery metrics (DORA) from Git evidence only: the `ferry history` timelines of an app's
//! stages, nothing else (no registry, no store, no cluster).
//!
//! Owns: which history rows count as deployments, failures and restorations, the build time of a
//! deployed tag (the earliest `{ts}` of the same build, `{sha7}`, across the app's stages), and
//! the figures. Must not: read Git itself (the timeline reader of `rollback` does that), print,
//! or parse command lines.
//!
//! Definitions (docs/metrics.md), over the changes of one environment whose commit time is in
//! the window `(end - since, end]`:
//! - a **deployment** is a change of the value by automation, promotion or a human edit (the
//!   first value of an environment, `old` empty, is its creation, not a deployment);
//! - a **failure** is a rollback (`Ferry-Kind: rollback`, or a `git revert`);
//! - **lead time** of a deployment: its commit time minus the build time of its tag;
//! - **deployment frequency**: deployments per day of the window;
//! - **change-failure rate**: rollbacks ÷ deployments;
//! - **time to restore** of a rollback: from the rollback to the next good change, the next
//!   deployment that was not itself rolled back by the change right after it. A rollback with no
//!   good change after it yet is counted as `unrestored`.

use std::collections::HashMap;

use ferry_api::ObjectSet;

use crate::Engine;
use crate::promote::{AppPipeline, DEFAULT_TAG_TEMPLATE, TagTemplate};
use crate::rollback::{ChangeKind, HistoryRow, RepoFallback, RollbackError};

const DAY: i64 = 86_400;

/// One change of an environment's value, as the metrics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Commit time, Unix seconds.
    pub time: i64,
    pub kind: ChangeKind,
    pub old_tag: String,
    pub new_tag: String,
    /// Build time of `new_tag` (Unix seconds), when its build could be traced.
    pub build_ts: Option<i64>,
}

impl Change {
    fn is_deployment(&self) -> bool {
        matches!(
            self.kind,
            ChangeKind::Automation | ChangeKind::Promotion | ChangeKind::Manual
        ) && !self.old_tag.is_empty()
            && !self.new_tag.is_empty()
    }
}

/// Count, median and mean of durations, in seconds (median of an even count: the lower middle
/// and upper middle averaged, rounded down).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Spread {
    pub samples: usize,
    pub median_seconds: Option<i64>,
    pub mean_seconds: Option<i64>,
}

impl Spread {
    fn of(mut values: Vec<i64>) -> Spread {
        values.sort_unstable();
        let n = values.len();
        if n == 0 {
            return Spread::default();
        }
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]).div_euclid(2)
        };
        let sum: i64 = values.iter().sum();
        Spread {
            samples: n,
            median_seconds: Some(median),
            mean_seconds: Some(sum.div_euclid(n as i64)),
        }
    }
}

/// The figures of one app in one environment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DoraFigures {
    pub app: String,
    pub env: String,
    pub deployments: usize,
    pub deployments_per_day: f64,
    pub rollbacks: usize,
    /// `rollbacks / deployments`; `None` without deployments.
    pub change_failure_rate: Option<f64>,
    pub lead_time: Spread,
    pub time_to_restore: Spread,
    /// Rollbacks in the window with no good change after them yet.
    pub unrestored: usize,
}

/// The report of `ferry metrics dora`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DoraReport {
    /// Window as RFC 3339 UTC: `(start, end]`.
    pub window_start: String,
    pub window_end: String,
    pub window_days: f64,
    pub apps: Vec<DoraFigures>,
}

/// The figures of `changes` (oldest first, the whole history: a rollback in the window may be
/// restored by a change after it) for the window `(start, end]`.
pub fn compute(app: &str, env: &str, changes: &[Change], start: i64, end: i64) -> DoraFigures {
    let in_window = |c: &Change| c.time > start && c.time <= end;
    let deployments: Vec<&Change> = changes
        .iter()
        .filter(|c| in_window(c) && c.is_deployment())
        .collect();
    let lead: Vec<i64> = deployments
        .iter()
        .filter_map(|c| c.build_ts.map(|b| (c.time - b).max(0)))
        .collect();
    let mut rollbacks = 0;
    let mut restore = Vec::new();
    let mut unrestored = 0;
    for (i, c) in changes.iter().enumerate() {
        if !in_window(c) || !c.kind.is_rollback() {
            continue;
        }
        rollbacks += 1;
        match next_good_change(&changes[i + 1..]) {
            Some(good) => restore.push(good.time - c.time),
            None => unrestored += 1,
        }
    }
    let days = (end - start) as f64 / DAY as f64;
    DoraFigures {
        app: app.to_string(),
        env: env.to_string(),
        deployments: deployments.len(),
        deployments_per_day: if days > 0.0 {
            deployments.len() as f64 / days
        } else {
            0.0
        },
        rollbacks,
        change_failure_rate: (!deployments.is_empty())
            .then(|| rollbacks as f64 / deployments.len() as f64),
        lead_time: Spread::of(lead),
        time_to_restore: Spread::of(restore),
        unrestored,
    }
}

/// The first deployment in `after` not rolled back by the change right after it.
fn next_good_change(after: &[Change]) -> Option<&Change> {
    after.iter().enumerate().find_map(|(i, c)| {
        let reverted = after.get(i + 1).is_some_and(|n| n.kind.is_rollback());
        (c.is_deployment() && !reverted).then_some(c)
    })
}

/// Build time per build (`{sha7}`): the earliest `{ts}` of any tag of that build in any stage's
/// timeline, each tag read through its own stage's template.
pub fn build_times<'a>(
    stages: impl IntoIterator<Item = (&'a str, &'a TagTemplate, &'a [HistoryRow])>,
) -> HashMap<String, i64> {
    let mut out: HashMap<String, i64> = HashMap::new();
    for (env, template, rows) in stages {
        for tag in rows.iter().flat_map(|r| [&r.old_tag, &r.new_tag]) {
            let Some(f) = template.parse_tag(env, tag) else {
                continue;
            };
            let Ok(ts) = i64::try_from(f.ts) else {
                continue;
            };
            if ts <= 0 {
                continue;
            }
            let e = out.entry(f.sha7).or_insert(ts);
            *e = (*e).min(ts);
        }
    }
    out
}

/// The changes of one stage's timeline, with each new tag's build time.
pub fn changes(
    env: &str,
    template: &TagTemplate,
    rows: &[HistoryRow],
    builds: &HashMap<String, i64>,
) -> Vec<Change> {
    rows.iter()
        .map(|r| Change {
            time: unix(&r.time),
            kind: r.kind,
            old_tag: r.old_tag.clone(),
            new_tag: r.new_tag.clone(),
            build_ts: template
                .parse_tag(env, &r.new_tag)
                .and_then(|f| builds.get(&f.sha7).copied()),
        })
        .collect()
}

fn unix(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or(0)
}

pub(crate) fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Now, Unix seconds (the end of the usual window).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}

/// `--since`: `N d` (days) and `N w` (weeks) besides Go durations (`12h`, `90m`).
pub fn parse_since(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("--since {text:?}: expected a duration such as 30d, 2w, 12h or 90m");
    let t = text.trim();
    for (suffix, unit) in [("d", DAY as u64), ("w", 7 * DAY as u64)] {
        if let Some(n) = t.strip_suffix(suffix) {
            let n: u64 = n.parse().map_err(|_| bad())?;
            return Ok(std::time::Duration::from_secs(n.saturating_mul(unit)));
        }
    }
    ferry_api::parse_go_duration(t).map_err(|_| bad())
}

/// What to measure: one app or all, in one environment (default: each app's last stage).
#[derive(Debug, Clone, Default)]
pub struct DoraRequest {
    pub app: Option<String>,
    pub env: Option<String>,
    pub since: std::time::Duration,
    /// End of the window, Unix seconds (normally now).
    pub end: i64,
    pub repo: Option<RepoFallback>,
}

impl Engine {
    /// DORA figures per app from the Git timelines of its stages.
    pub async fn dora(
        &self,
        objects: &ObjectSet,
        req: &DoraRequest,
    ) -> Result<DoraReport, RollbackError> {
        let layout = crate::rollback::layout(objects, req.app.as_deref());
        if let Some(a) = &req.app
            && layout.is_empty()
        {
            return Err(RollbackError::Invalid(format!(
                "no app {a}: no Pipeline or ImagePolicy named {a}"
            )));
        }
        let since = i64::try_from(req.since.as_secs()).unwrap_or(i64::MAX / 2);
        let start = req.end.saturating_sub(since);
        let mut apps = Vec::new();
        for (app, envs) in &layout {
            let Some(env) = req.env.clone().or_else(|| envs.last().cloned()) else {
                continue;
            };
            if !envs.contains(&env) {
                if req.app.is_some() {
                    return Err(RollbackError::Invalid(format!(
                        "app {app} has no environment {env} (environments: {})",
                        envs.join(", ")
                    )));
                }
                continue;
            }
            apps.push(self.dora_app(objects, req, app, envs, &env, start).await?);
        }
        Ok(DoraReport {
            window_start: rfc3339(start),
            window_end: rfc3339(req.end),
            window_days: (req.end - start) as f64 / DAY as f64,
            apps,
        })
    }

    async fn dora_app(
        &self,
        objects: &ObjectSet,
        req: &DoraRequest,
        app: &str,
        envs: &[String],
        env: &str,
        start: i64,
    ) -> Result<DoraFigures, RollbackError> {
        let default = TagTemplate::parse(DEFAULT_TAG_TEMPLATE).map_err(RollbackError::Invalid)?;
        let pipeline = AppPipeline::resolve(objects, app).ok();
        let template_of = |e: &str| {
            pipeline
                .as_ref()
                .and_then(|p| p.stages.iter().find(|s| s.name == e))
                .map(|s| s.template.clone())
                .unwrap_or_else(|| default.clone())
        };
        let mut timelines = Vec::new();
        for e in envs {
            let rows = self
                .history_from_git(objects, e, app, req.repo.as_ref())
                .await?;
            timelines.push((e.clone(), template_of(e), rows));
        }
        let builds = build_times(
            timelines
                .iter()
                .map(|(e, t, r)| (e.as_str(), t, r.as_slice())),
        );
        let (_, template, rows) = timelines
            .iter()
            .find(|(e, _, _)| e == env)
            .ok_or_else(|| RollbackError::Invalid(format!("app {app} has no environment {env}")))?;
        let changes = changes(env, template, rows, &builds);
        Ok(compute(app, env, &changes, start, req.end))
    }
}

/// A duration in seconds as its two largest units (`1d2h`, `5m3s`, `0s`), for reports.
pub fn human_duration(secs: i64) -> String {
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut rest = secs.max(0);
    let mut parts = Vec::new();
    for (name, size) in units {
        if rest >= size || (parts.is_empty() && size == 1) {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.concat()
}

#[cfg(test)]
mod tests;
