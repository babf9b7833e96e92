//! One pass of the controller: read the objects and Secrets from the API, run the engine's
//! scan → policy → automation steps on them, and write back status, finalizers and Events.

use std::time::Duration;

use ferry_engine::{AutomationOptions, Engine, EngineConfig, SecretsDir};
use ferry_store::{Condition, Store};
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::http::{Metrics, ObjectLabels, ReadyLabel};
use crate::kinds::{FINALIZER, FluxKind};
use crate::objects::{self, Listed, Loaded, ObjectKey};
use crate::secrets::SecretFolder;
use crate::status::{self, Observed};
use crate::{ControllerError, ControllerOptions};

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// Objects whose status was written.
    pub status_writes: usize,
    /// Commits pushed.
    pub pushes: usize,
    /// Objects not Ready (suspended ones excluded).
    pub failed: usize,
    /// When the next pass is due by the shortest interval.
    pub next_due: Duration,
}

pub struct Controller {
    client: kube::Client,
    options: ControllerOptions,
    engine: std::sync::Arc<Engine>,
    secrets: SecretFolder,
    metrics: Option<std::sync::Arc<Metrics>>,
    http: reqwest::Client,
    /// Event deliveries still under way (awaited only by `--once`, before exiting).
    deliveries: Vec<tokio::task::JoinHandle<()>>,
    drift: Option<crate::drift::DriftWatch>,
    known: Option<crate::http::KnownRepositories>,
    publisher: Option<crate::feed::Publisher>,
}

/// Flux's default when an interval cannot be read, and the floor that keeps a typo from spinning.
const FALLBACK_INTERVAL: Duration = Duration::from_secs(60);
const MIN_INTERVAL: Duration = Duration::from_secs(5);

impl Controller {
    pub fn new(
        client: kube::Client,
        options: ControllerOptions,
    ) -> Result<Controller, ControllerError> {
        let secrets = SecretFolder::new()?;
        if let Some(dir) = options.state.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ControllerError::Io(format!("{}: {e}", dir.display())))?;
        }
        let store = Store::open(&options.state)?;
        let drift = options
            .drift_grace
            .map(|grace| crate::drift::DriftWatch::new(grace, options.adopt_rollouts));
        let config = EngineConfig {
            secrets: SecretsDir::mirrored_from_api(secrets.root().to_path_buf()),
            cache_dir: options.cache_dir.clone(),
            // Objects come from the API, already rendered by whoever applied them.
            kustomize: None,
            no_cross_namespace_refs: options.no_cross_namespace_refs,
            registry: ferry_engine::RegistryOptions {
                max_concurrency_per_registry: options.concurrent.max(1),
                ..ferry_engine::RegistryOptions::default()
            },
        };
        Ok(Controller {
            client,
            options,
            engine: std::sync::Arc::new(Engine::new(config, store)),
            secrets,
            metrics: None,
            http: reqwest::Client::new(),
            deliveries: Vec::new(),
            drift,
            known: None,
            publisher: None,
        })
    }

    /// Starts sharing each pass's objects, drift and count (see [`crate::feed`]).
    pub(crate) fn feed(&mut self, wake: tokio::sync::mpsc::Sender<()>) -> crate::feed::Feed {
        let (publisher, feed) = crate::feed::Publisher::new(self.engine.clone(), wake);
        self.publisher = Some(publisher);
        feed
    }

    pub fn set_metrics(&mut self, metrics: std::sync::Arc<Metrics>) {
        self.metrics = Some(metrics);
    }

    /// Where each pass publishes its ImageRepositories, for the registry webhook to match.
    pub fn set_known_repositories(&mut self, known: crate::http::KnownRepositories) {
        self.known = Some(known);
    }

    fn observe(
        &self,
        listed: &Listed,
        report: &PassReport,
        outcomes: &[ferry_engine::ObjectOutcome],
        took: Duration,
    ) {
        let Some(m) = &self.metrics else {
            return;
        };
        m.passes.inc();
        m.pushes.inc_by(report.pushes as u64);
        m.status_writes.inc_by(report.status_writes as u64);
        for key in listed
            .objects
            .keys()
            .filter(|k| k.kind != FluxKind::GitRepository)
        {
            let labels = ObjectLabels {
                kind: key.kind.kind().to_string(),
                name: key.name.clone(),
                namespace: key.namespace.clone(),
            };
            m.reconcile_duration
                .get_or_create(&labels)
                .observe(took.as_secs_f64());
        }
        let failed = outcomes.iter().filter(|o| o.failed()).count() as i64;
        let total = outcomes.len() as i64;
        m.objects
            .get_or_create(&ReadyLabel {
                ready: "false".into(),
            })
            .set(failed);
        m.objects
            .get_or_create(&ReadyLabel {
                ready: "true".into(),
            })
            .set(total - failed);
    }

    /// Waits (at most `limit`) for the Event deliveries still under way.
    pub async fn flush_events(&mut self, limit: Duration) {
        let all = futures::future::join_all(self.deliveries.drain(..));
        let _ = tokio::time::timeout(limit, all).await;
    }

    pub async fn pass(&mut self) -> Result<PassReport, ControllerError> {
        let started = std::time::Instant::now();
        self.deliveries.retain(|d| !d.is_finished());
        let listed = Listed::fetch(&self.client, &self.options).await?;
        self.finalizers(&listed).await?;
        self.secrets.refresh(&self.client, &listed).await?;
        let loaded = objects::load(&listed);
        if let Some(known) = &self.known {
            known.publish(&loaded.set);
        }
        if let Some(p) = &self.publisher {
            p.objects(&loaded.set);
        }
        let mut report = PassReport {
            next_due: next_due(&listed),
            ..PassReport::default()
        };
        let outcomes = match self
            .engine
            .reconcile(&loaded.set, &AutomationOptions::default())
            .await
        {
            Ok(run) => {
                report.pushes = run.pushes.len();
                report.failed = run.outcomes.iter().filter(|o| o.failed()).count();
                run.outcomes
            }
            // A whole-pass failure (the state file, a task) is logged and retried; objects keep
            // their last status rather than a guess.
            Err(e) => {
                tracing::error!(error = %e, "pass failed; retrying");
                report.next_due = report.next_due.min(Duration::from_secs(10));
                return Ok(report);
            }
        };
        self.engine.prune(&loaded.set)?;
        report.status_writes = self.write_statuses(&listed, &loaded).await;
        self.check_drift(&listed, &loaded).await;
        self.observe(&listed, &report, &outcomes, started.elapsed());
        if let Some(p) = &self.publisher {
            p.pass_done();
        }
        tracing::info!(
            objects = listed.objects.len(),
            invalid = loaded.invalid.len(),
            pushes = report.pushes,
            not_ready = report.failed,
            status_writes = report.status_writes,
            "pass done"
        );
        Ok(report)
    }

    /// Drift and adopted rollout undos: Events on the ImagePolicies, and the drift gauge.
    async fn check_drift(&mut self, listed: &Listed, loaded: &Loaded) {
        let Some(mut watch) = self.drift.take() else {
            return;
        };
        let checked = watch.check(&self.engine, &self.client, &loaded.set).await;
        self.drift = Some(watch);
        if let Some(m) = &self.metrics {
            m.drift.set(checked.drifting as i64);
        }
        self.record_sightings(listed, &checked.live).await;
        for f in &checked.findings {
            if let Some((key, obj)) = listed.policy(&f.policy) {
                self.record_event(&key, obj, &f.condition).await;
            }
        }
        if let Some(p) = &self.publisher {
            p.drift(checked);
        }
    }

    /// First sightings of live tags, on the ImagePolicies (for `ferry history`).
    async fn record_sightings(&self, listed: &Listed, live: &[(String, Vec<String>)]) {
        let now = now_rfc3339();
        for (policy, tags) in live {
            let Some((key, obj)) = listed.policy(policy) else {
                continue;
            };
            if let Err(e) = crate::sightings::record(&self.client, obj, tags, &now).await {
                tracing::warn!(object = %key, error = %e, "cannot record live sightings");
            }
        }
    }

    /// A Kubernetes Event on the object, and the same event to `--events-addr` (in the
    /// background: a slow receiver never holds up a pass).
    async fn record_event(
        &mut self,
        key: &ObjectKey,
        obj: &kube::api::DynamicObject,
        condition: &Condition,
    ) {
        let instance = &self.options.instance;
        if let Err(e) = status::event(&self.client, key, obj, condition, instance).await {
            tracing::warn!(object = %key, error = %e, "cannot record an Event");
        }
        if let Some(addr) = &self.options.events_addr {
            let body = crate::notify::payload(key, obj, condition, instance);
            let delivery = crate::notify::send(self.http.clone(), addr.clone(), body);
            self.deliveries.push(delivery);
        }
    }

    /// Adds the finalizer to live objects; removes it from deleted ones (after forgetting them).
    async fn finalizers(&self, listed: &Listed) -> Result<(), ControllerError> {
        for (key, obj) in &listed.objects {
            if key.kind == FluxKind::GitRepository {
                continue;
            }
            let mut list = obj.metadata.finalizers.clone().unwrap_or_default();
            let has = list.iter().any(|f| f == FINALIZER);
            let deleting = obj.metadata.deletion_timestamp.is_some();
            if deleting == has {
                if deleting {
                    list.retain(|f| f != FINALIZER);
                } else {
                    list.push(FINALIZER.to_string());
                }
                let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
                    self.client.clone(),
                    &key.namespace,
                    &key.kind.resource(),
                );
                let patch = json!({ "metadata": { "finalizers": list } });
                if let Err(e) = api
                    .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    tracing::warn!(object = %key, error = %e, "cannot update the finalizer");
                }
            }
        }
        Ok(())
    }

    /// Writes each served object's status when it changed; returns how many were written.
    async fn write_statuses(&mut self, listed: &Listed, loaded: &Loaded) -> usize {
        let mut written = 0;
        for (key, obj) in &listed.objects {
            let Some(store_kind) = key.kind.store_kind() else {
                continue;
            };
            if obj.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let record = match loaded.invalid.get(key) {
                Some(_) => None,
                None => match self
                    .engine
                    .store()
                    .get(store_kind, &key.namespace, &key.name)
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(object = %key, error = %e, "cannot read the stored record");
                        None
                    }
                },
            };
            // Flux leaves a suspended object's status as it is.
            if record.as_ref().is_some_and(|r| r.suspended) || suspended(obj) {
                continue;
            }
            let ready = match (
                loaded.invalid.get(key),
                record.as_ref().and_then(|r| r.ready.clone()),
            ) {
                (Some(message), _) => invalid_condition(key.kind, message, obj),
                (None, Some(ready)) => ready,
                (None, None) => continue,
            };
            if self.write_one(key, obj, record.as_ref(), ready).await {
                written += 1;
            }
        }
        written
    }

    async fn write_one(
        &mut self,
        key: &ObjectKey,
        obj: &kube::api::DynamicObject,
        record: Option<&ferry_store::ObjectRecord>,
        ready: Condition,
    ) -> bool {
        let observed = Observed {
            generation: obj.metadata.generation,
            requested_at: status::requested_at(obj),
            ready,
        };
        let desired = status::desired(key.kind, &observed, record);
        if status::up_to_date(obj.data.get("status"), &desired) {
            return false;
        }
        let api =
            kube::Api::namespaced_with(self.client.clone(), &key.namespace, &key.kind.resource());
        if let Err(e) = status::patch(&api, &key.name, desired).await {
            tracing::warn!(object = %key, error = %e, "cannot write status");
            return false;
        }
        let now = (
            observed.ready.status.clone(),
            observed.ready.message.clone(),
        );
        if status::live_ready(obj).as_ref() == Some(&now) {
            return true;
        }
        self.record_event(key, obj, &observed.ready).await;
        true
    }
}

fn suspended(obj: &kube::api::DynamicObject) -> bool {
    obj.data.pointer("/spec/suspend").and_then(|v| v.as_bool()) == Some(true)
}

/// An object the engine could not read: Ready=False with the reason Flux gives a bad spec.
fn invalid_condition(kind: FluxKind, message: &str, obj: &kube::api::DynamicObject) -> Condition {
    let reason = match kind {
        FluxKind::ImagePolicy => "InvalidPolicy",
        FluxKind::ImageRepository => "ImageURLInvalid",
        _ => "InvalidSourceConfiguration",
    };
    let previous = obj
        .data
        .pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .and_then(|l| {
            l.iter()
                .find(|c| c["type"] == "Ready" && c["status"] == "False" && c["message"] == message)
        })
        .and_then(|c| c["lastTransitionTime"].as_str().map(String::from));
    Condition {
        status: "False".to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        last_transition_time: previous.unwrap_or_else(now_rfc3339),
    }
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The shortest `spec.interval` among the served objects.
fn next_due(listed: &Listed) -> Duration {
    listed
        .objects
        .iter()
        .filter(|(k, _)| k.kind != FluxKind::GitRepository)
        .filter_map(|(_, o)| o.data.pointer("/spec/interval")?.as_str().map(String::from))
        .map(|s| ferry_api::parse_flux_duration(&s).unwrap_or(FALLBACK_INTERVAL))
        .min()
        .unwrap_or(FALLBACK_INTERVAL)
        .max(MIN_INTERVAL)
}
