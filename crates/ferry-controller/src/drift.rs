//! Drift in controller mode: after each pass, Git's images (the markers, read by the engine) are
//! compared with the live workloads ([`crate::verify`]). Live differing from Git for longer than
//! `--drift-grace` gives one Warning Event `DriftDetected` on the ImagePolicy (per live image) and
//! the `ferry_controller_drift` metric. With `--adopt-rollouts`, a live image that is an earlier
//! Git value of that environment (what `kubectl rollout undo` produces) is written back to Git at
//! once, as `ferry rollback --to-live` does: a commit with a hold and the newer tag denied.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ferry_api::ObjectSet;
use ferry_engine::Engine;
use ferry_engine::rollback::RollbackRequest;
use ferry_store::Condition;

use crate::verify::{self, VerifyRow, VerifyState};

/// Drift settings and what has been seen so far.
#[derive(Debug, Default)]
pub struct DriftWatch {
    pub grace: Duration,
    pub adopt: bool,
    first_seen: HashMap<(String, String), (String, Instant)>,
    reported: HashSet<(String, String, String)>,
}

/// Drift detection for a driver other than the controller (`ferry serve --kubeconfig`): a
/// client of the cluster and the watch's memory between checks.
pub struct DriftMonitor {
    client: kube::Client,
    watch: DriftWatch,
}

impl DriftMonitor {
    pub async fn connect(
        options: &crate::ControllerOptions,
        grace: Duration,
        adopt: bool,
    ) -> Result<DriftMonitor, crate::ControllerError> {
        Ok(DriftMonitor {
            client: crate::client(options).await?,
            watch: DriftWatch::new(grace, adopt),
        })
    }

    /// One check of `objects` (Git read through `engine`) against the cluster's workloads.
    pub async fn check(&mut self, engine: &Engine, objects: &ObjectSet) -> DriftPass {
        self.watch.check(engine, &self.client, objects).await
    }
}

/// What one drift check found.
#[derive(Debug, Default)]
pub struct DriftPass {
    /// Events to record.
    pub findings: Vec<Finding>,
    /// App × environments whose live image differs from Git (the drift gauge).
    pub drifting: usize,
    /// Per ImagePolicy (`namespace/name`), the tags its live workloads run.
    pub live: Vec<(String, Vec<String>)>,
    /// Each app × environment as this check saw it (before any adoption), for a dashboard.
    pub states: Vec<EnvDrift>,
}

/// One app × environment's drift state: Git's tag and the tags its live workloads run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvDrift {
    pub app: String,
    pub env: String,
    pub state: VerifyState,
    pub git_tag: Option<String>,
    pub live_tags: Vec<String>,
}

/// Something worth an Event on an ImagePolicy (`namespace/name`).
#[derive(Debug, Clone)]
pub struct Finding {
    pub policy: String,
    pub app: String,
    pub env: String,
    /// The tag Git's markers hold.
    pub git_tag: String,
    /// The tag the live workloads run.
    pub live_tag: String,
    pub condition: Condition,
}

fn live_tag(row: &VerifyRow) -> Option<String> {
    let mut tags = row.live_tags();
    (tags.len() == 1).then(|| tags.remove(0))
}

fn finding(row: &VerifyRow, reason: &str, message: String, ok: bool) -> Finding {
    Finding {
        policy: row.policy.clone(),
        app: row.app.clone(),
        env: row.env.clone(),
        git_tag: row.git_tag.clone().unwrap_or_default(),
        live_tag: live_tag(row).unwrap_or_default(),
        condition: Condition {
            status: if ok { "True" } else { "False" }.to_string(),
            reason: reason.to_string(),
            message,
            last_transition_time: String::new(),
        },
    }
}

impl DriftWatch {
    pub fn new(grace: Duration, adopt: bool) -> DriftWatch {
        DriftWatch {
            grace,
            adopt,
            ..DriftWatch::default()
        }
    }

    /// Compares Git and the cluster; adopts rollout undos; says what to record.
    pub async fn check(
        &mut self,
        engine: &Engine,
        client: &kube::Client,
        objects: &ObjectSet,
    ) -> DriftPass {
        let report = match engine.status(objects, None).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "drift check: cannot read Git");
                return DriftPass::default();
            }
        };
        let desired = verify::desired(objects, &report, None);
        let rows = match verify::verify(client, &desired).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "drift check: cannot read the workloads");
                return DriftPass::default();
            }
        };
        let live = rows
            .iter()
            .map(|r| (r.policy.clone(), r.live_tags()))
            .collect();
        let states = rows
            .iter()
            .map(|r| EnvDrift {
                app: r.app.clone(),
                env: r.env.clone(),
                state: r.state,
                git_tag: r.git_tag.clone(),
                live_tags: r.live_tags(),
            })
            .collect();
        let (findings, drifting) = self.judge(engine, objects, rows).await;
        DriftPass {
            findings,
            drifting,
            live,
            states,
        }
    }

    /// Drift past the grace period and adopted rollout undos, as Events; and the drift count.
    async fn judge(
        &mut self,
        engine: &Engine,
        objects: &ObjectSet,
        rows: Vec<VerifyRow>,
    ) -> (Vec<Finding>, usize) {
        let mut findings = Vec::new();
        let mut drifting = 0;
        for row in rows {
            let key = (row.app.clone(), row.env.clone());
            if row.state != VerifyState::Drift {
                self.first_seen.remove(&key);
                continue;
            }
            let live = live_tag(&row).unwrap_or_default();
            let adopted = match self.adopt && !live.is_empty() {
                true => adopt(engine, objects, &row, &live).await,
                false => None,
            };
            if let Some(f) = adopted {
                findings.push(f);
                self.first_seen.remove(&key);
                continue;
            }
            drifting += 1;
            let since = self
                .first_seen
                .entry(key)
                .or_insert_with(|| (live.clone(), Instant::now()));
            if since.0 != live {
                *since = (live.clone(), Instant::now());
            }
            let mark = (row.app.clone(), row.env.clone(), live.clone());
            if since.1.elapsed() >= self.grace && self.reported.insert(mark) {
                let git = row.git_tag.clone().unwrap_or_default();
                let message = format!(
                    "{} in {} runs {live}, Git wants {git}",
                    row.app, row.namespace
                );
                findings.push(finding(&row, "DriftDetected", message, false));
            }
        }
        (findings, drifting)
    }
}

/// Writes the live tag to Git when it is an earlier Git value of the environment (the engine's
/// rollback refuses a tag the environment never ran, and then this is plain drift).
async fn adopt(
    engine: &Engine,
    objects: &ObjectSet,
    row: &VerifyRow,
    live: &str,
) -> Option<Finding> {
    let workloads: Vec<String> = row.live.iter().map(|l| l.workload.clone()).collect();
    let req = RollbackRequest {
        env: row.env.clone(),
        app: row.app.clone(),
        to: Some(live.to_string()),
        steps: None,
        reason: format!("rollout undo adopted: {} runs {live}", workloads.join(", ")),
        by: "ferry-controller".to_string(),
        dry_run: false,
        force: false,
        repo: None,
        max_attempts: 8,
        adopted: Some(ferry_engine::rollback::Adopted::RolloutUndo),
    };
    match engine.rollback(objects, &req).await {
        Ok(report) => {
            let commit = report.commit.unwrap_or_default();
            let message = format!(
                "rollout undo adopted: Git now holds {live} for {} in {} (commit {}), held",
                row.app,
                row.env,
                &commit[..commit.len().min(7)]
            );
            tracing::info!(app = %row.app, env = %row.env, tag = live, "rollout undo adopted");
            Some(finding(row, "RolloutUndoAdopted", message, true))
        }
        Err(e) => {
            tracing::info!(app = %row.app, env = %row.env, error = %e, "live image not adopted");
            None
        }
    }
}
