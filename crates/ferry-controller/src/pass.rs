//! One pass of the controller: read the objects and Secrets from the API, run the engine's
//! scan → policy → automation steps on them, and write back status, finalizers and Events.

use std::time::Duration;

use ferry_engine::{AutomationOptions, Engine, EngineConfig, SecretsDir, Selection};
use ferry_store::{Condition, Store};
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::due::{Requested, Schedule};
use crate::http::{Metrics, ObjectLabels, ReadyLabel};
use crate::kinds::{FINALIZER, KindApi};
use crate::objects::{self, Listed, Loaded, ObjectKey};
use crate::secrets::SecretFolder;
use crate::status::{self, Observed};
use crate::{ControllerError, ControllerOptions};
use ferry_core::Kind;

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
    /// When each object last ran: which objects the next pass runs.
    schedule: Schedule,
    publisher: Option<crate::feed::Publisher>,
}

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
            schedule: Schedule::default(),
            publisher: None,
        })
    }

    /// Starts sharing each pass's objects, drift and count (see [`crate::feed`]).
    pub(crate) fn feed(
        &mut self,
        wake: tokio::sync::mpsc::Sender<()>,
        requests: crate::due::Requests,
    ) -> crate::feed::Feed {
        let (publisher, feed) = crate::feed::Publisher::new(self.engine.clone(), wake, requests);
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

    /// The pass's metrics: a duration sample for each object that ran, and the Ready gauge over
    /// every object's last run.
    fn observe(
        &self,
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
        for outcome in outcomes {
            let labels = ObjectLabels {
                kind: outcome.kind.as_str().to_string(),
                name: outcome.name.clone(),
                namespace: outcome.namespace.clone(),
            };
            m.reconcile_duration
                .get_or_create(&labels)
                .observe(took.as_secs_f64());
        }
        let (failed, total) = self.schedule.failing();
        let (failed, total) = (failed as i64, total as i64);
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

    /// Lists the objects, runs the engine's steps on the due ones (see [`crate::due`]) and
    /// writes back what changed.
    pub async fn pass(&mut self, requested: Requested) -> Result<PassReport, ControllerError> {
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
        let due = self.schedule.due(started, &listed, &loaded.set, &requested);
        let mut report = PassReport::default();
        let run = self
            .engine
            .reconcile_selected(
                &loaded.set,
                Selection::Only(&due),
                &AutomationOptions::default(),
            )
            .await;
        let outcomes = match run {
            Ok(run) => {
                report.pushes = run.pushes.len();
                run.outcomes
            }
            // A whole-pass failure (the state file, a task) is logged and retried; objects keep
            // their last status rather than a guess.
            Err(e) => {
                tracing::error!(error = %e, "pass failed; retrying");
                report.next_due = Duration::from_secs(10);
                return Ok(report);
            }
        };
        self.schedule.record(started, &due, &listed, &outcomes);
        report.failed = self.schedule.failing().0;
        report.next_due = self
            .schedule
            .next_due(std::time::Instant::now(), &loaded.set);
        self.engine.prune(&loaded.set)?;
        report.status_writes = self.write_statuses(&listed, &loaded).await;
        self.check_drift(&listed, &loaded).await;
        self.observe(&report, &outcomes, started.elapsed());
        if let Some(p) = &self.publisher {
            p.pass_done();
        }
        tracing::info!(
            objects = listed.objects.len(),
            ran = due.len(),
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
            if key.kind == Kind::GitRepository {
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
            if !Kind::RECONCILED.contains(&key.kind) {
                continue;
            }
            if obj.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let record = match loaded.invalid.get(key) {
                Some(_) => None,
                None => match self.engine.store().get(key.kind, &key.namespace, &key.name) {
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
fn invalid_condition(kind: Kind, message: &str, obj: &kube::api::DynamicObject) -> Condition {
    let reason = match kind {
        Kind::ImagePolicy => "InvalidPolicy",
        Kind::ImageRepository => "ImageURLInvalid",
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
