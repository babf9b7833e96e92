//! `--listen`: `/healthz`, `/readyz` (after the first pass, or while waiting for the leader
//! Lease as a standby) and `/metrics` in the Prometheus text format; with webhooks configured,
//! `/hooks/registry` (a push to a repository an ImageRepository names wakes a pass at once) and
//! `/hooks/git` (a push to the GitOps repository wakes a pass).
//!
//! `gotk_reconcile_duration_seconds{kind,name,namespace}` has Flux's name and labels so existing
//! dashboards work; Ferry reconciles every object in one pass, so each object's observation is
//! the duration of the pass that reconciled it (docs/controller.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ferry_api::ObjectSet;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;

use crate::{ControllerError, WebhookAuth};

/// The ImageRepositories of the last pass (only they are kept), for matching pushes.
#[derive(Clone, Default)]
pub struct KnownRepositories(Arc<Mutex<ObjectSet>>);

impl KnownRepositories {
    pub fn publish(&self, set: &ObjectSet) {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        known.image_repositories = set.image_repositories.clone();
    }

    fn matching(
        &self,
        pushed: &std::collections::BTreeSet<ferry_hooks::PushedRepo>,
    ) -> Vec<ferry_core::ObjectKey> {
        let known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        ferry_hooks::match_pushed(&known, pushed)
            .into_iter()
            .map(|(ns, name)| {
                ferry_core::ObjectKey::new(ferry_core::Kind::ImageRepository, ns, name)
            })
            .collect()
    }
}

/// What the webhook routes need.
#[derive(Clone)]
pub struct Hooks {
    pub auth: WebhookAuth,
    pub wake: mpsc::Sender<()>,
    /// What the hooks ask the next pass to run.
    pub requests: crate::due::Requests,
    pub repositories: KnownRepositories,
}

impl Hooks {
    /// 401 unless the request carries the secret (or unsigned requests are allowed).
    fn check(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), (StatusCode, &'static str)> {
        let secret = match &self.auth {
            WebhookAuth::Secret(s) => Some(s),
            WebhookAuth::Unsigned => None,
        };
        ferry_hooks::authenticate(secret, headers, body).map_err(|failure| {
            let why = match failure {
                ferry_hooks::AuthFailure::Missing => "missing credentials\n",
                ferry_hooks::AuthFailure::Invalid => "invalid credentials\n",
            };
            (StatusCode::UNAUTHORIZED, why)
        })
    }

    fn wake(&self) {
        // A full channel already holds a wake-up.
        let _ = self.wake.try_send(());
    }
}

async fn registry_hook(State(s): State<Arc<Served>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(hooks) = &s.hooks else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Err(refused) = hooks.check(&headers, &body) {
        return refused.into_response();
    }
    let events = match ferry_hooks::parse_registry(&body) {
        Ok(e) => e,
        Err(msg) => return (StatusCode::BAD_REQUEST, format!("{msg}\n")).into_response(),
    };
    let pushed: std::collections::BTreeSet<_> = events.pushed.into_iter().collect();
    let repositories = hooks.repositories.matching(&pushed);
    let matched = repositories.len();
    if matched > 0 {
        hooks.requests.add(repositories);
        hooks.wake();
    }
    tracing::info!(matched, ignored = events.ignored, "registry webhook");
    let body = format!(
        "{{\"triggered\":{matched},\"ignored\":{}}}\n",
        events.ignored
    );
    (StatusCode::ACCEPTED, body).into_response()
}

async fn git_hook(State(s): State<Arc<Served>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(hooks) = &s.hooks else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Err(refused) = hooks.check(&headers, &body) {
        return refused.into_response();
    }
    if let Err(msg) = ferry_hooks::parse_git(&body) {
        return (StatusCode::BAD_REQUEST, format!("{msg}\n")).into_response();
    }
    hooks.requests.all();
    hooks.wake();
    tracing::info!("git webhook");
    (StatusCode::ACCEPTED, "{\"triggered\":1}\n").into_response()
}

/// The state of every route.
struct Served {
    metrics: Arc<Metrics>,
    hooks: Option<Hooks>,
}

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

async fn metrics(State(s): State<Arc<Served>>) -> impl IntoResponse {
    let m = &s.metrics;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

async fn readyz(State(s): State<Arc<Served>>) -> impl IntoResponse {
    if s.metrics.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "first pass not done")
    }
}

/// Binds `addr` and serves until the process ends, with the driver's `extra` routes (the
/// dashboard); returns the bound address (port 0 = any).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    hooks: Option<Hooks>,
    extra: Router,
) -> Result<SocketAddr, ControllerError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ControllerError::Io(format!("--listen {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ControllerError::Io(format!("--listen {addr}: {e}")))?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(self::metrics))
        .route("/hooks/registry", post(registry_hook))
        .route("/hooks/git", post(git_hook))
        .layer(DefaultBodyLimit::max(ferry_hooks::MAX_BODY_BYTES))
        .with_state(Arc::new(Served { metrics, hooks }))
        .merge(extra);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the --listen server stopped");
        }
    });
    Ok(bound)
}
