//! Prometheus metrics of `ferry serve` (text exposition format at `/metrics`).
//!
//! Names and labels are documented in docs/daemon.md; keep both in step.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use ferry_api::ObjectSet;
use ferry_engine::schedule::{Cause, ObjectKey, Observer, StepDone, outcome, outcome_ok};
use ferry_engine::{Engine, EngineError, RunReport};
use ferry_registry::RequestStats;
use ferry_store::Kind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabel {
    pub hook: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerLabel {
    pub trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppEnvLabel {
    pub app: String,
    pub env: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The DORA gauges (`ferry_dora_*`), by app and environment, from `ferry metrics dora`'s report.
#[derive(Default)]
pub struct DoraGauges {
    pub deployments: Family<AppEnvLabel, FloatGauge>,
    pub deployments_per_day: Family<AppEnvLabel, FloatGauge>,
    pub rollbacks: Family<AppEnvLabel, FloatGauge>,
    pub change_failure_ratio: Family<AppEnvLabel, FloatGauge>,
    pub lead_time: Family<AppEnvLabel, FloatGauge>,
    pub time_to_restore: Family<AppEnvLabel, FloatGauge>,
}

impl DoraGauges {
    fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("dora");
        for (name, help, family) in [
            (
                "deployments",
                "Deployments in the DORA window (Git evidence)",
                &self.deployments,
            ),
            (
                "deployments_per_day",
                "Deployments per day of the DORA window",
                &self.deployments_per_day,
            ),
            ("rollbacks", "Rollbacks in the DORA window", &self.rollbacks),
            (
                "change_failure_ratio",
                "Rollbacks divided by deployments (absent without deployments)",
                &self.change_failure_ratio,
            ),
            (
                "lead_time_median_seconds",
                "Median time from the build's tag ts to the environment's commit",
                &self.lead_time,
            ),
            (
                "time_to_restore_median_seconds",
                "Median time from a rollback to the next good change",
                &self.time_to_restore,
            ),
        ] {
            sub.register(name, help, family.clone());
        }
    }

    /// Replaces every gauge with the report's figures.
    pub fn set(&self, report: &ferry_engine::dora::DoraReport) {
        for f in [
            &self.deployments,
            &self.deployments_per_day,
            &self.rollbacks,
            &self.change_failure_ratio,
            &self.lead_time,
            &self.time_to_restore,
        ] {
            f.clear();
        }
        for a in &report.apps {
            let l = AppEnvLabel {
                app: a.app.clone(),
                env: a.env.clone(),
            };
            let set = |f: &Family<AppEnvLabel, FloatGauge>, v: Option<f64>| {
                if let Some(v) = v {
                    f.get_or_create(&l).set(v);
                }
            };
            set(&self.deployments, Some(a.deployments as f64));
            set(&self.deployments_per_day, Some(a.deployments_per_day));
            set(&self.rollbacks, Some(a.rollbacks as f64));
            set(&self.change_failure_ratio, a.change_failure_rate);
            set(
                &self.lead_time,
                a.lead_time.median_seconds.map(|s| s as f64),
            );
            set(
                &self.time_to_restore,
                a.time_to_restore.median_seconds.map(|s| s as f64),
            );
        }
    }
}

fn duration_histogram() -> Histogram {
    // 5 ms .. ~82 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// A new metric, registered under `name` (after the registry's `ferry_` prefix).
fn registered<M>(registry: &mut Registry, name: &str, help: &str) -> M
where
    M: prometheus_client::registry::Metric + Clone + Default,
{
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    pub reconcile_duration: Family<KindLabel, Histogram, fn() -> Histogram>,
    pub passes: Family<TriggerLabel, Counter>,
    pub scans: Family<ResultLabel, Counter>,
    pub tags_seen: Counter,
    pub policy_changes: Counter,
    pub automation_runs: Family<ResultLabel, Counter>,
    pub git_pushes: Counter,
    pub git_push_conflicts: Counter,
    pub source_loads: Family<ResultLabel, Counter>,
    pub webhook_requests: Family<HookLabel, Counter>,
    pub webhook_events: Family<HookLabel, Counter>,
    pub registry_requests: Family<StatusLabel, Counter>,
    pub objects: Family<KindLabel, Gauge>,
    /// App × environments whose live workloads differ from Git (with --kubeconfig).
    pub drift: Gauge,
    pub dora: DoraGauges,
    /// Registry client stats already exported, so each scrape adds only the difference.
    exported: Mutex<BTreeMap<String, u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ferry");
        let reconcile_duration =
            Family::<KindLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram as fn() -> Histogram,
            );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile pass, by the kind that made the pass (ImageRepository: scan and policies; ImageUpdateAutomation: scan, policies, setters, commit and push)",
            reconcile_duration.clone(),
        );
        let passes: Family<TriggerLabel, Counter> = registered(
            &mut registry,
            "passes",
            "Reconcile passes, by what started them (interval, registry, git, startup)",
        );
        let scans: Family<ResultLabel, Counter> =
            registered(&mut registry, "scans", "ImageRepository scans, by result");
        let tags_seen: Counter = registered(
            &mut registry,
            "scan_tags_seen",
            "Tags seen by successful scans (after exclusions)",
        );
        let policy_changes: Counter = registered(
            &mut registry,
            "policy_changes",
            "ImagePolicy latestRef changes",
        );
        let automation_runs: Family<ResultLabel, Counter> = registered(
            &mut registry,
            "automation_runs",
            "ImageUpdateAutomation runs, by result (pushed, unchanged, failed)",
        );
        let git_pushes: Counter =
            registered(&mut registry, "git_pushes", "Commits pushed by automations");
        let git_push_conflicts: Counter = registered(
            &mut registry,
            "git_push_conflicts",
            "Rejected pushes that were recomputed on the new tip and retried",
        );
        let source_loads: Family<ResultLabel, Counter> = registered(
            &mut registry,
            "source_loads",
            "Loads of the Flux objects from Git or the directory",
        );
        let webhook_requests: Family<HookLabel, Counter> = registered(
            &mut registry,
            "webhook_requests",
            "Webhook requests, by hook (registry, git) and result (accepted, unauthorized, malformed, too_large)",
        );
        let drift: Gauge = registered(
            &mut registry,
            "drift",
            "App x environments whose live workloads run another image than Git says (with --kubeconfig)",
        );
        let webhook_events: Family<HookLabel, Counter> = registered(
            &mut registry,
            "webhook_events",
            "Events in accepted webhook requests, by hook and result (triggered, ignored)",
        );
        let registry_requests: Family<StatusLabel, Counter> = registered(
            &mut registry,
            "registry_requests",
            "HTTP requests to OCI registries, by status code (transport_error: no response)",
        );
        let objects: Family<KindLabel, Gauge> = registered(
            &mut registry,
            "objects",
            "Objects loaded from the source, by kind",
        );
        let dora = DoraGauges::default();
        dora.register(&mut registry);
        Metrics {
            registry,
            dora,
            reconcile_duration,
            passes,
            scans,
            tags_seen,
            policy_changes,
            automation_runs,
            git_pushes,
            git_push_conflicts,
            source_loads,
            webhook_requests,
            webhook_events,
            registry_requests,
            objects,
            drift,
            exported: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn webhook_request(&self, hook: &str, result: &str) {
        self.webhook_requests
            .get_or_create(&HookLabel {
                hook: hook.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    pub fn webhook_events(&self, hook: &str, result: &str, n: u64) {
        if n > 0 {
            self.webhook_events
                .get_or_create(&HookLabel {
                    hook: hook.to_string(),
                    result: result.to_string(),
                })
                .inc_by(n);
        }
    }

    pub fn result(family: &Family<ResultLabel, Counter>, result: &str) {
        family
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
    }

    /// Brings the registry request counters up to the client's totals.
    fn sync_registry(&self, stats: &RequestStats) {
        let mut exported = self.exported.lock().unwrap_or_else(|p| p.into_inner());
        let mut current: Vec<(String, u64)> = stats
            .by_status
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect();
        current.push(("transport_error".to_string(), stats.transport_errors));
        for (status, total) in current {
            let seen = exported.entry(status.clone()).or_default();
            if total > *seen {
                self.registry_requests
                    .get_or_create(&StatusLabel { status })
                    .inc_by(total - *seen);
                *seen = total;
            }
        }
    }

    /// The text exposition, with the registry client's counters brought up to date.
    pub fn render(&self, stats: &RequestStats) -> String {
        self.sync_registry(stats);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The scheduler's reports, counted: passes, step durations and results, pushes, loads.
pub struct PassMetrics {
    pub metrics: Arc<Metrics>,
    /// For the tag counts of successful scans (the outcome only carries a message).
    pub engine: Arc<Engine>,
}

impl Observer for PassMetrics {
    fn loaded(&self, result: Result<&ObjectSet, &EngineError>) {
        let m = &self.metrics;
        let Ok(objects) = result else {
            Metrics::result(&m.source_loads, "failure");
            return;
        };
        Metrics::result(&m.source_loads, "success");
        for (kind, n) in [
            ("ImageRepository", objects.image_repositories.len()),
            ("ImagePolicy", objects.image_policies.len()),
            (
                "ImageUpdateAutomation",
                objects.image_update_automations.len(),
            ),
        ] {
            let kind = KindLabel { kind: kind.into() };
            m.objects.get_or_create(&kind).set(n as i64);
        }
    }

    fn pass(&self, cause: Cause) {
        let trigger = cause.as_str().to_string();
        self.metrics
            .passes
            .get_or_create(&TriggerLabel { trigger })
            .inc();
    }

    fn policy_changed(&self, _policy: &ObjectKey) {
        self.metrics.policy_changes.inc();
    }

    fn step(&self, done: &StepDone<'_>) {
        let kind = KindLabel {
            kind: done.step.kind().into(),
        };
        (self.metrics.reconcile_duration.get_or_create(&kind)).observe(done.elapsed.as_secs_f64());
        if let Ok(report) = done.result {
            if done.step.runs(Kind::ImageRepository) {
                self.scans(done.set, report);
            }
            if done.step.runs(Kind::ImageUpdateAutomation) {
                self.automations(done.set, report);
            }
        }
    }
}

impl PassMetrics {
    fn scans(&self, set: &ObjectSet, report: &RunReport) {
        let m = &self.metrics;
        let store = self.engine.store();
        for r in set.image_repositories.iter().filter(|r| !r.spec.suspend) {
            let (ns, name) = (r.namespace(), r.name());
            let ok = outcome_ok(report, Kind::ImageRepository, ns, name);
            Metrics::result(&m.scans, if ok { "success" } else { "failure" });
            if outcome(report, Kind::ImageRepository, ns, name).is_some_and(|o| o.ready)
                && let Ok(Some(rec)) = store.get(Kind::ImageRepository, ns, name)
                && let Some(scan) = rec.scan
            {
                m.tags_seen.inc_by(scan.tag_count as u64);
            }
        }
    }

    fn automations(&self, set: &ObjectSet, report: &RunReport) {
        let m = &self.metrics;
        for a in set
            .image_update_automations
            .iter()
            .filter(|a| !a.spec.suspend)
        {
            let ok = outcome_ok(report, Kind::ImageUpdateAutomation, a.namespace(), a.name());
            let id = format!("{}/{}", a.namespace(), a.name());
            let result = match (ok, report.pushes.iter().any(|p| p.automation == id)) {
                (false, _) => "failed",
                (true, true) => "pushed",
                (true, false) => "unchanged",
            };
            Metrics::result(&m.automation_runs, result);
        }
        for push in &report.pushes {
            if push.commit.is_some() {
                m.git_pushes.inc();
            }
            if push.attempts > 1 {
                m.git_push_conflicts.inc_by(u64::from(push.attempts - 1));
            }
        }
    }
}
