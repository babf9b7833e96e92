//! `ferry serve`: the daemon. Reconciles every object on its own interval, reacts to registry
//! and git webhooks, serves `/metrics`, `/healthz` and `/readyz`, and stops cleanly on SIGTERM.
//! See docs/daemon.md. The decisions stay in ferry-engine; this module only schedules them.

#[path = "serve/metrics.rs"]
mod metrics;
#[path = "serve/notify.rs"]
pub(crate) mod notify;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
// The scheduler lives in the engine; the dashboard and the notifier name it `super::scheduler`.
use ferry_engine::schedule::{self as scheduler, EngineSteps, Scheduler, Trigger};
use ferry_engine::{Engine, ObjectSource};
use ferry_store::{InstanceLock, Store, StoreError};
use tokio::sync::watch;

use crate::cli::{SourceArgs, parse_duration};
use crate::{CliError, Status};
use ferry_hooks::{self as hooks, AuthFailure, MAX_BODY_BYTES, Secret};
use metrics::{Metrics, PassMetrics};

/// Run continuously: reconcile on each object's interval and on webhooks.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Address for the webhooks, /metrics, /healthz and /readyz (port 0: any free port).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9797")]
    pub listen: SocketAddr,
    /// File holding the shared webhook secret (Bearer token or HMAC-SHA256 key).
    #[arg(long, value_name = "FILE", env = "FERRY_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Accept webhooks without authentication when no secret is configured.
    #[arg(long)]
    pub allow_unsigned_webhooks: bool,
    /// How often the objects are re-read from Git (or the directory), besides POST /hooks/git.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub source_interval: Duration,
    /// How long to wait after a webhook for more events of the same burst.
    #[arg(long, value_name = "DURATION", default_value = "50ms", value_parser = parse_duration)]
    pub debounce: Duration,
    /// With --kubeconfig: how often Git is compared with the cluster's workloads (as `ferry
    /// verify` does). Drift is logged and counted in ferry_drift.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub drift_interval: Duration,
    /// With --kubeconfig: report drift that lasts this long.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub drift_grace: Duration,
    /// With --kubeconfig: write a live image that is an earlier Git value of its environment (a
    /// `kubectl rollout undo`) back to Git, with a hold, as `ferry controller --adopt-rollouts`.
    #[arg(long, requires = "kubeconfig")]
    pub adopt_rollouts: bool,
    /// Window of the `ferry_dora_*` gauges on /metrics (as `ferry metrics dora --since`),
    /// recomputed from Git after each pass.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = ferry_engine::dora::parse_since)]
    pub dora_since: Duration,
    /// Receivers of change notifications (docs/notifications.md). Each change is sent once;
    /// delivered changes are remembered in `<state>.notified`.
    #[arg(long, value_name = "FILE")]
    pub notify_config: Option<PathBuf>,
    /// Serve the dashboard under /ui on the --listen address (docs/dashboard.md).
    #[arg(long)]
    pub ui: bool,
    /// Dashboard tokens, one NAME:TOKEN per line; NAME is recorded as --by of the actions.
    #[arg(long, value_name = "FILE", requires = "ui")]
    pub ui_token_file: Option<PathBuf>,
    /// Let anyone read the dashboard's views (actions still need a token).
    #[arg(long, requires = "ui")]
    pub ui_read_only_open: bool,
}

struct App {
    metrics: Arc<Metrics>,
    trigger: Arc<Trigger>,
    secret: Option<Secret>,
    /// Ready once the objects are loaded.
    objects: watch::Receiver<Option<Arc<ferry_api::ObjectSet>>>,
    engine: Arc<Engine>,
}

/// The files the flags name, read and checked before anything starts (bad input: exit 2).
struct Inputs {
    secret: Option<Secret>,
    ui_tokens: Option<ferry_dashboard::Tokens>,
    notify_config: Option<ferry_notify::NotifyConfig>,
}

fn inputs(args: &ServeArgs) -> Result<Inputs, CliError> {
    let secret = match &args.webhook_secret_file {
        Some(file) => Some(read_webhook_secret(file)?),
        None if args.allow_unsigned_webhooks => None,
        None => {
            return Err(CliError::bad_input(anyhow!(
                "webhooks need a shared secret: pass --webhook-secret-file FILE (or --allow-unsigned-webhooks to accept anyone's)"
            )));
        }
    };
    let ui_tokens = match (&args.ui_token_file, args.ui, args.ui_read_only_open) {
        (Some(f), _, _) => Some(ferry_dashboard::Tokens::load(f).map_err(CliError::bad_input)?),
        (None, true, false) => {
            return Err(CliError::bad_input(anyhow!(
                "--ui needs --ui-token-file FILE (or --ui-read-only-open for read-only views)"
            )));
        }
        (None, _, _) => None,
    };
    let notify_config = match &args.notify_config {
        Some(f) => Some(ferry_notify::NotifyConfig::load(f).map_err(CliError::bad_input)?),
        None => None,
    };
    Ok(Inputs {
        secret,
        ui_tokens,
        notify_config,
    })
}

/// The state store of this daemon, locked (one daemon per store) for as long as the lock lives.
fn open_store(state: &Path) -> Result<(InstanceLock, Store), CliError> {
    if let Some(dir) = state.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating {}", dir.display()))
            .map_err(CliError::failed)?;
    }
    let lock = InstanceLock::acquire(state).map_err(|e| match e {
        StoreError::Locked { path, lock } => CliError::failed(anyhow!(
            "another `ferry serve` is running on state {} (it holds {}); stop it or pass another --state",
            path.display(),
            lock.display()
        )),
        other => CliError::failed(other),
    })?;
    let store = Store::open(state).map_err(CliError::failed)?;
    Ok((lock, store))
}

/// Binds `--listen` and says where (a plain line, not a log record, so scripts find the port
/// when it was 0).
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), CliError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--listen {addr}"))
        .map_err(CliError::failed)?;
    let local = listener.local_addr().map_err(CliError::failed)?;
    eprintln!("ferry serve: listening on http://{local}");
    Ok((listener, local))
}

/// Webhooks, metrics and health.
fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/hooks/registry", post(registry_hook))
        .route("/hooks/git", post(git_hook))
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(app)
}

/// `--ui`: the dashboard's routes, fed by the scheduler.
fn dashboard(
    engine: Arc<Engine>,
    scheduler: &Scheduler<EngineSteps>,
    trigger: Arc<Trigger>,
    tokens: ferry_dashboard::Tokens,
    drift: Option<watch::Receiver<Arc<ferry_dashboard::DriftView>>>,
    args: &ServeArgs,
) -> Router {
    let driver = ferry_dashboard::Driver {
        engine,
        objects: scheduler.objects(),
        passes: scheduler.passes(),
        run_now: Arc::new(move || trigger.git()),
        drift,
    };
    let access = ferry_dashboard::Access {
        tokens,
        read_open: args.ui_read_only_open,
    };
    ferry_dashboard::router(driver, access)
}

/// `--notify-config`: the ledger of delivered changes, beside the state file (`ferry serve`
/// and `ferry controller`).
pub(crate) fn open_ledger(state: &Path) -> Result<ferry_notify::Ledger, CliError> {
    let ledger_path = PathBuf::from(format!("{}.notified", state.display()));
    ferry_notify::Ledger::open(&ledger_path)
        .with_context(|| format!("reading {}", ledger_path.display()))
        .map_err(CliError::failed)
}

/// The notifier (its HTTP client needs the TLS provider the engine installs: make the engine
/// first).
pub(crate) fn notifier(
    config: ferry_notify::NotifyConfig,
    ledger: ferry_notify::Ledger,
) -> Arc<ferry_notify::Notifier> {
    Arc::new(ferry_notify::Notifier::new(
        config,
        ledger,
        reqwest::Client::new(),
        ferry_notify::Retry::default(),
    ))
}

/// `--notify-config`: the notifier and the task that turns each pass's Git evidence into
/// notifications.
fn start_notifications(
    state: &Path,
    config: ferry_notify::NotifyConfig,
    engine: Arc<Engine>,
    scheduler: &Scheduler<EngineSteps>,
) -> Result<(Arc<ferry_notify::Notifier>, tokio::task::JoinHandle<()>), CliError> {
    let notifier = notifier(config, open_ledger(state)?);
    let task = tokio::spawn(notify::run(
        engine,
        notifier.clone(),
        scheduler.objects(),
        scheduler.passes(),
    ));
    Ok((notifier, task))
}

pub async fn serve(state: &Path, args: ServeArgs) -> Result<Status, CliError> {
    let Inputs {
        secret,
        ui_tokens,
        notify_config,
    } = inputs(&args)?;
    let source = &args.source;
    if source.objects_from_cluster() {
        return Err(CliError::bad_input(anyhow!(
            "ferry serve reads the Flux objects from --dir or --repo; --kubeconfig only adds drift detection against that cluster (to read the objects from the cluster, run `ferry controller`)"
        )));
    }
    let vars = source.vars()?;
    let config = source.engine_config();
    let object_source = source
        .object_source(true)?
        .unwrap_or_else(|| ObjectSource::dir("."));
    // Held until this function returns: one daemon per state store.
    let (_lock, store) = open_store(state)?;
    let engine = Arc::new(Engine::new(config, store));
    let metrics = Arc::new(Metrics::new());
    let scheduler = new_scheduler(&engine, &metrics, &object_source, &vars, &args);
    let trigger = scheduler.trigger();

    let (listener, local) = bind(args.listen).await?;

    let app = Arc::new(App {
        metrics: metrics.clone(),
        trigger: trigger.clone(),
        secret,
        objects: scheduler.objects(),
        engine: engine.clone(),
    });
    let mut router = routes(app);

    let (stop_tx, stop_rx) = watch::channel(false);
    let signals = tokio::spawn(wait_for_signal(stop_tx));
    let (objects, passes) = (scheduler.objects(), scheduler.passes());
    let dora = tokio::spawn(dora_gauges(
        engine.clone(),
        metrics.clone(),
        objects,
        passes,
        args.dora_since,
    ));
    let cluster = source.cluster_reader(None);
    // With a cluster, each drift check's verdicts, for the dashboard's cards.
    let (drift_view, drift_seen) = watch::channel(Arc::new(ferry_dashboard::DriftView::new()));
    if args.ui {
        let tokens = ui_tokens.unwrap_or_default();
        let drift = cluster.is_some().then_some(drift_seen);
        router = router.merge(dashboard(
            engine.clone(),
            &scheduler,
            trigger,
            tokens,
            drift,
            &args,
        ));
        eprintln!("ferry serve: dashboard on http://{local}/ui");
    }
    let (drift_notifier, notifications) = match notify_config {
        Some(config) => {
            let (notifier, task) = start_notifications(state, config, engine.clone(), &scheduler)?;
            (Some(notifier), Some(task))
        }
        None => (None, None),
    };
    let sched_task = tokio::spawn(scheduler.run(stop_rx.clone()));
    if let Some(options) = cluster {
        let drift = DriftLoop {
            notifier: drift_notifier,
            view: drift_view,
            engine,
            source: object_source,
            vars,
            interval: args.drift_interval,
            metrics,
        };
        drift.start(&options, &args, stop_rx.clone()).await?;
    }
    let mut server_stop = stop_rx.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        let _ = server_stop.wait_for(|stop| *stop).await;
    });
    let served = server.await;
    let side = std::iter::once(dora).chain(notifications).collect();
    shut_down(served, &stop_rx, signals, sched_task, side).await
}

/// The scheduler (`ferry_engine::schedule`) on the real engine, counted in `metrics`.
fn new_scheduler(
    engine: &Arc<Engine>,
    metrics: &Arc<Metrics>,
    source: &ObjectSource,
    vars: &ferry_api::Vars,
    args: &ServeArgs,
) -> Scheduler<EngineSteps> {
    let steps = EngineSteps {
        engine: engine.clone(),
        source: source.clone(),
        vars: vars.clone(),
        options: Default::default(),
    };
    let settings = scheduler::Settings {
        source_interval: args.source_interval,
        debounce: args.debounce,
        ..Default::default()
    };
    Scheduler::new(steps, settings).with_observer(Arc::new(PassMetrics {
        metrics: metrics.clone(),
        engine: engine.clone(),
    }))
}

/// The server only returns after a signal (or on an accept error): the scheduler stops too,
/// after the pass in flight, and the side tasks (DORA gauges, notifications) end.
async fn shut_down(
    served: std::io::Result<()>,
    stop: &watch::Receiver<bool>,
    signals: tokio::task::JoinHandle<()>,
    scheduler: tokio::task::JoinHandle<()>,
    side: Vec<tokio::task::JoinHandle<()>>,
) -> Result<Status, CliError> {
    if !*stop.borrow() {
        signals.abort();
    }
    let sched_result = scheduler.await;
    for task in side {
        task.abort();
    }
    served.context("HTTP server").map_err(CliError::failed)?;
    sched_result.map_err(|e| CliError::failed(anyhow!("scheduler task failed: {e}")))?;
    eprintln!("ferry serve: stopped");
    Ok(Status::Ok)
}

/// The shared webhook secret of `--webhook-secret-file` (surrounding whitespace trimmed).
pub(crate) fn read_webhook_secret(file: &Path) -> Result<Secret, CliError> {
    let bytes = std::fs::read(file)
        .with_context(|| format!("--webhook-secret-file {}", file.display()))
        .map_err(CliError::bad_input)?;
    Secret::from_file_contents(&bytes).ok_or_else(|| {
        CliError::bad_input(anyhow!(
            "--webhook-secret-file {}: the file is empty",
            file.display()
        ))
    })
}

/// Keeps the `ferry_dora_*` gauges current: recomputed from Git after each pass (passes that
/// finish during a computation coalesce into one more). Failures keep the last figures.
async fn dora_gauges(
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    mut objects: watch::Receiver<Option<Arc<ferry_api::ObjectSet>>>,
    mut passes: watch::Receiver<u64>,
    since: Duration,
) {
    while let Some(set) = scheduler::next_pass(&mut objects, &mut passes).await {
        let req = ferry_engine::dora::DoraRequest {
            since,
            end: ferry_engine::dora::unix_now(),
            ..Default::default()
        };
        match engine.dora(&set, &req).await {
            Ok(report) => metrics.dora.set(&report),
            Err(e) => tracing::warn!("DORA figures not updated: {e}"),
        }
    }
}

/// One `drift` notification per app, environment and live tag (adopted undos are notified
/// from their Git commit, like every other change).
pub(crate) fn drift_events(
    findings: &[ferry_controller::drift::Finding],
) -> Vec<ferry_notify::Event> {
    findings
        .iter()
        .filter(|f| f.condition.reason == "DriftDetected")
        .map(|f| ferry_notify::Event {
            kind: ferry_notify::EventKind::Drift,
            app: f.app.clone(),
            env: f.env.clone(),
            old: ferry_notify::Side {
                tag: f.git_tag.clone(),
                digest: None,
            },
            new: ferry_notify::Side {
                tag: f.live_tag.clone(),
                digest: None,
            },
            // The de-duplication key: the same drift is one notification, even across restarts.
            commit: format!("drift:{}", f.live_tag),
            author: "cluster".into(),
            reason: f.condition.message.clone(),
            time: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        })
        .collect()
}

/// The dashboard's drift lines from a drift check (an unknown state is left out: unknown).
pub(crate) fn drift_view(
    states: &[ferry_controller::drift::EnvDrift],
) -> ferry_dashboard::DriftView {
    use ferry_controller::verify::VerifyState;
    use ferry_dashboard::Drift;
    let git = |s: &ferry_controller::drift::EnvDrift| s.git_tag.clone().unwrap_or_default();
    states
        .iter()
        .filter_map(|s| {
            let d = match s.state {
                VerifyState::InSync => Drift::InSync,
                VerifyState::Pending => Drift::Pending { git_tag: git(s) },
                VerifyState::Drift => Drift::Drifted {
                    live_tag: s.live_tags.join(", "),
                    git_tag: git(s),
                },
                VerifyState::Missing => Drift::Missing,
                VerifyState::Unknown => return None,
            };
            Some(((s.app.clone(), s.env.clone()), d))
        })
        .collect()
}

async fn wait_for_signal(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("ferry serve: stopping (finishing the reconcile in flight)");
    let _ = stop.send(true);
}

/// Reads the body up to the limit; a larger one is refused before it is buffered whole.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, StatusCode> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE)
}

fn reject(app: &App, hook: &str, status: StatusCode, message: &str) -> Response {
    let result = match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        _ => "malformed",
    };
    app.metrics.webhook_request(hook, result);
    tracing::warn!(
        hook,
        status = status.as_u16(),
        "webhook rejected: {message}"
    );
    (status, format!("{message}\n")).into_response()
}

/// Body limit, then authentication, then parsing: nothing is triggered unless all pass.
async fn checked_body(
    app: &App,
    hook: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, Response> {
    let bytes = match read_body(headers, body).await {
        Ok(b) => b,
        Err(status) => {
            return Err(reject(
                app,
                hook,
                status,
                &format!("body larger than {MAX_BODY_BYTES} bytes"),
            ));
        }
    };
    match hooks::authenticate(app.secret.as_ref(), headers, &bytes) {
        Ok(()) => Ok(bytes),
        Err(AuthFailure::Missing) => Err(reject(
            app,
            hook,
            StatusCode::UNAUTHORIZED,
            "missing Authorization: Bearer or X-Ferry-Signature header",
        )),
        Err(AuthFailure::Invalid) => Err(reject(
            app,
            hook,
            StatusCode::UNAUTHORIZED,
            "bad token or signature",
        )),
    }
}

async fn registry_hook(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match checked_body(&app, "registry", &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let events = match hooks::parse_registry(&bytes) {
        Ok(e) => e,
        Err(msg) => return reject(&app, "registry", StatusCode::BAD_REQUEST, &msg),
    };
    app.metrics.webhook_request("registry", "accepted");
    app.metrics
        .webhook_events("registry", "triggered", events.pushed.len() as u64);
    app.metrics
        .webhook_events("registry", "ignored", events.ignored);
    let triggered = events.pushed.len();
    tracing::info!(triggered, ignored = events.ignored, "registry webhook");
    app.trigger.push(events.pushed);
    (
        StatusCode::ACCEPTED,
        format!(
            "{{\"triggered\":{triggered},\"ignored\":{}}}\n",
            events.ignored
        ),
    )
        .into_response()
}

async fn git_hook(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match checked_body(&app, "git", &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(msg) = hooks::parse_git(&bytes) {
        return reject(&app, "git", StatusCode::BAD_REQUEST, &msg);
    }
    app.metrics.webhook_request("git", "accepted");
    app.metrics.webhook_events("git", "triggered", 1);
    tracing::info!("git webhook: fetching");
    app.trigger.git();
    (StatusCode::ACCEPTED, "{\"triggered\":1}\n").into_response()
}

async fn metrics_handler(State(app): State<Arc<App>>) -> Response {
    let body = app.metrics.render(&app.engine.registry().stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.objects.borrow().is_some() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "objects not loaded yet\n").into_response()
    }
}

/// `ferry serve --kubeconfig`: Git compared with the cluster's workloads every `interval`, on
/// its own task so that a slow API server never holds up a reconcile.
struct DriftLoop {
    /// `--notify-config`: drift findings become `drift` notifications.
    notifier: Option<Arc<ferry_notify::Notifier>>,
    /// Each check's verdicts (the dashboard's drift lines).
    view: watch::Sender<Arc<ferry_dashboard::DriftView>>,
    engine: Arc<Engine>,
    source: ObjectSource,
    vars: ferry_api::Vars,
    interval: Duration,
    metrics: Arc<Metrics>,
}

impl DriftLoop {
    /// Connects to the cluster (an unreachable API server fails the start) and runs the loop on
    /// a task of its own until `stop`.
    async fn start(
        self,
        options: &ferry_controller::ControllerOptions,
        args: &ServeArgs,
        stop: watch::Receiver<bool>,
    ) -> Result<(), CliError> {
        let monitor = ferry_controller::drift::DriftMonitor::connect(
            options,
            args.drift_grace,
            args.adopt_rollouts,
        )
        .await
        .map_err(CliError::failed)?;
        tokio::spawn(self.run(monitor, stop));
        Ok(())
    }

    fn notify(&self, findings: &[ferry_controller::drift::Finding]) {
        if let Some(notifier) = &self.notifier {
            notifier.offer_live(&drift_events(findings));
        }
    }

    async fn run(
        self,
        mut monitor: ferry_controller::drift::DriftMonitor,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let config = self.engine.config().clone();
            let (source, vars) = (self.source.clone(), self.vars.clone());
            let loaded = tokio::task::spawn_blocking(move || {
                ferry_engine::load_objects(&config, &source, &vars)
            })
            .await;
            match loaded {
                Ok(Ok(objects)) => {
                    let checked = monitor.check(&self.engine, &objects).await;
                    self.metrics.drift.set(checked.drifting as i64);
                    self.view
                        .send_replace(Arc::new(drift_view(&checked.states)));
                    for f in &checked.findings {
                        tracing::warn!(
                            policy = %f.policy,
                            reason = %f.condition.reason,
                            "{}",
                            f.condition.message
                        );
                    }
                    self.notify(&checked.findings);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "drift check: cannot load the objects"),
                Err(e) => tracing::warn!(error = %e, "drift check: task failed"),
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}
