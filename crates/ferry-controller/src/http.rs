//! `--listen`: `/healthz`, `/readyz` (after the first pass, or while waiting for the leader
//! Lease as a standby) and `/metrics` in the Prometheus text format.
//!
//! `gotk_reconcile_duration_seconds{kind,name,namespace}` has Flux's name and labels so existing
//! dashboards work; Ferry reconciles every object in one pass, so each object's observation is
//! the duration of the pass that reconciled it (docs/controller.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ControllerError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabel {
    pub ready: String,
}

fn histogram() -> Histogram {
    // 5 ms .. ~82 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// The controller's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub reconcile_duration: Family<ObjectLabels, Histogram, fn() -> Histogram>,
    pub passes: Counter,
    pub pushes: Counter,
    pub status_writes: Counter,
    pub objects: Family<ReadyLabel, Gauge>,
    pub drift: Gauge,
    pub ready: AtomicBool,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let reconcile_duration =
            Family::<ObjectLabels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        registry.register(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a reconciliation (Flux's name; per object)",
            reconcile_duration.clone(),
        );
        let passes = Counter::default();
        registry.register("ferry_controller_passes", "Passes run", passes.clone());
        let pushes = Counter::default();
        registry.register("ferry_controller_pushes", "Commits pushed", pushes.clone());
        let status_writes = Counter::default();
        registry.register(
            "ferry_controller_status_writes",
            "Status subresource writes",
            status_writes.clone(),
        );
        let objects = Family::<ReadyLabel, Gauge>::default();
        registry.register(
            "ferry_controller_objects",
            "Served objects by Ready (suspended objects count as ready)",
            objects.clone(),
        );
        let drift = Gauge::default();
        registry.register(
            "ferry_controller_drift",
            "App x environments whose live image differs from Git (after --drift-grace or not)",
            drift.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            drift,
            reconcile_duration,
            passes,
            pushes,
            status_writes,
            objects,
            ready: AtomicBool::new(false),
        }
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

async fn metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

async fn readyz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    if m.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "first pass not done")
    }
}

/// Binds `addr` and serves until the process ends; returns the bound address (port 0 = any).
pub async fn serve(addr: SocketAddr, m: Arc<Metrics>) -> Result<SocketAddr, ControllerError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ControllerError::Io(format!("--listen {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ControllerError::Io(format!("--listen {addr}: {e}")))?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(m);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the --listen server stopped");
        }
    });
    Ok(bound)
}
