//! Prometheus metrics of `ferry serve` (text exposition format at `/metrics`).
//!
//! Names and labels are documented in docs/daemon.md; keep both in step.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ferry_registry::RequestStats;
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

fn duration_histogram() -> Histogram {
    // 5 ms .. ~82 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
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
        let passes = Family::<TriggerLabel, Counter>::default();
        registry.register(
            "passes",
            "Reconcile passes, by what started them (interval, registry, git, startup)",
            passes.clone(),
        );
        let scans = Family::<ResultLabel, Counter>::default();
        registry.register("scans", "ImageRepository scans, by result", scans.clone());
        let tags_seen = Counter::default();
        registry.register(
            "scan_tags_seen",
            "Tags seen by successful scans (after exclusions)",
            tags_seen.clone(),
        );
        let policy_changes = Counter::default();
        registry.register(
            "policy_changes",
            "ImagePolicy latestRef changes",
            policy_changes.clone(),
        );
        let automation_runs = Family::<ResultLabel, Counter>::default();
        registry.register(
            "automation_runs",
            "ImageUpdateAutomation runs, by result (pushed, unchanged, failed)",
            automation_runs.clone(),
        );
        let git_pushes = Counter::default();
        registry.register(
            "git_pushes",
            "Commits pushed by automations",
            git_pushes.clone(),
        );
        let git_push_conflicts = Counter::default();
        registry.register(
            "git_push_conflicts",
            "Rejected pushes that were recomputed on the new tip and retried",
            git_push_conflicts.clone(),
        );
        let source_loads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "source_loads",
            "Loads of the Flux objects from Git or the directory",
            source_loads.clone(),
        );
        let webhook_requests = Family::<HookLabel, Counter>::default();
        registry.register(
            "webhook_requests",
            "Webhook requests, by hook (registry, git) and result (accepted, unauthorized, malformed, too_large)",
            webhook_requests.clone(),
        );
        let drift = Gauge::default();
        registry.register(
            "drift",
            "App x environments whose live workloads run another image than Git says (with --kubeconfig)",
            drift.clone(),
        );
        let webhook_events = Family::<HookLabel, Counter>::default();
        registry.register(
            "webhook_events",
            "Events in accepted webhook requests, by hook and result (triggered, ignored)",
            webhook_events.clone(),
        );
        let registry_requests = Family::<StatusLabel, Counter>::default();
        registry.register(
            "registry_requests",
            "HTTP requests to OCI registries, by status code (transport_error: no response)",
            registry_requests.clone(),
        );
        let objects = Family::<KindLabel, Gauge>::default();
        registry.register(
            "objects",
            "Objects loaded from the source, by kind",
            objects.clone(),
        );
        Metrics {
            registry,
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
