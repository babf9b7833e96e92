//! `ferry controller`: arguments, then `ferry_controller::run` (the logic lives in the library).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;

use crate::cli::parse_duration;
use crate::{CliError, Status};

#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// kubeconfig file. Default: $KUBECONFIG, ~/.kube/config, or the in-cluster ServiceAccount.
    #[arg(long, value_name = "PATH", env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Watch ImageRepositories, ImagePolicies and ImageUpdateAutomations in every namespace.
    /// With `--watch-all-namespaces=false`, only in `--namespace`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub watch_all_namespaces: bool,
    /// The namespace to watch when not watching all (Flux's RUNTIME_NAMESPACE).
    #[arg(
        long,
        value_name = "NS",
        env = "RUNTIME_NAMESPACE",
        default_value = "flux-system"
    )]
    pub namespace: String,
    /// Only objects whose labels match this selector (sharding, as Flux's
    /// `--watch-label-selector`, e.g. `sharding.fluxcd.io/key=shard1`).
    #[arg(long, value_name = "SELECTOR")]
    pub watch_label_selector: Option<String>,
    /// Directory for the clone cache of write-back repositories. Default: $XDG_CACHE_HOME/ferry/git.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Longest wait between passes when no event arrives.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub resync: Duration,
    /// Run one pass and exit (0: all Ready, 1: some object failed).
    #[arg(long)]
    pub once: bool,
    /// Reconcile only while holding the Lease `ferry-controller-leader` in `--namespace`, so
    /// that several replicas can run and one takes over within ~20 s when the leader dies.
    #[arg(long, conflicts_with = "once")]
    pub leader_elect: bool,
    /// Serve /healthz, /readyz and /metrics (Prometheus, with Flux's
    /// gotk_reconcile_duration_seconds) on this address (port 0: any free port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Also POST every Event as Flux's event JSON to this URL (Flux's notification-controller:
    /// http://notification-controller.flux-system.svc.cluster.local./), so existing Alerts work.
    #[arg(long, value_name = "URL")]
    pub events_addr: Option<String>,
    /// Report drift (live workloads differing from Git) that lasts this long, as a Warning Event
    /// `DriftDetected` on the ImagePolicy and the ferry_controller_drift metric. 0 disables the
    /// check (no reads of workloads).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub drift_grace: Duration,
    /// When a workload runs an earlier Git value of its environment (what `kubectl rollout
    /// undo` does), write it back to Git at once as `ferry rollback --to-live` would: a commit,
    /// a hold and the newer tag denied, so the undo sticks.
    #[arg(long)]
    pub adopt_rollouts: bool,
    /// Refuse references across namespaces (an ImagePolicy's imageRepositoryRef, an
    /// automation's sourceRef) whatever accessFrom says: such objects get Ready=False,
    /// AccessDenied (Flux's flag of the same name).
    #[arg(long)]
    pub no_cross_namespace_refs: bool,
    /// With --listen: accept registry and git webhooks (POST /hooks/registry, /hooks/git)
    /// authenticated by this shared secret (a bearer token, or an HMAC-SHA256 signature of the
    /// body in X-Ferry-Signature or X-Hub-Signature-256), as `ferry serve` does. A push to a
    /// repository an ImageRepository names starts a pass at once.
    #[arg(
        long,
        value_name = "FILE",
        env = "FERRY_WEBHOOK_SECRET_FILE",
        requires = "listen"
    )]
    pub webhook_secret_file: Option<PathBuf>,
    /// With --listen: accept webhooks from anyone who reaches the address.
    #[arg(long, requires = "listen", conflicts_with = "webhook_secret_file")]
    pub allow_unsigned_webhooks: bool,
    /// Registry requests in flight at once, per registry host (Flux: reconciles at once per
    /// kind; Ferry reconciles in one pass, and this bounds its registry traffic).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrent: u16,
    /// With --listen: serve the dashboard under /ui (docs/dashboard.md), on the objects this
    /// controller lists; its actions run the same engine functions as the CLI.
    #[arg(long, requires = "listen", conflicts_with = "once")]
    pub ui: bool,
    /// Dashboard tokens, one NAME:TOKEN per line; NAME is recorded as --by of the actions.
    #[arg(long, value_name = "FILE", requires = "ui")]
    pub ui_token_file: Option<PathBuf>,
    /// Let anyone read the dashboard's views (actions still need a token).
    #[arg(long, requires = "ui")]
    pub ui_read_only_open: bool,
    /// Receivers of change notifications (docs/notifications.md), as `ferry serve`'s: each
    /// change is sent once; delivered changes are remembered in `<state>.notified`.
    #[arg(long, value_name = "FILE", conflicts_with = "once")]
    pub notify_config: Option<PathBuf>,
}

/// The dashboard and notifications of a long-running controller, read before it starts.
struct Extras {
    ui: Option<ferry_dashboard::Access>,
    /// `--notify-config` and its ledger; the notifier is made once the engine exists.
    notify: Option<(ferry_notify::NotifyConfig, ferry_notify::Ledger)>,
    /// Drift is checked (`--drift-grace` not 0): the dashboard shows it.
    drift: bool,
}

impl ControllerArgs {
    /// The files of `--ui-token-file` and `--notify-config` (bad input: exit 2, nothing started).
    fn extras(&self, state: &Path) -> Result<Extras, CliError> {
        let ui = match (&self.ui_token_file, self.ui, self.ui_read_only_open) {
            (_, false, _) => None,
            (Some(f), true, open) => Some(ferry_dashboard::Access {
                tokens: ferry_dashboard::Tokens::load(f).map_err(CliError::bad_input)?,
                read_open: open,
            }),
            (None, true, true) => Some(ferry_dashboard::Access {
                tokens: Default::default(),
                read_open: true,
            }),
            (None, true, false) => {
                return Err(CliError::bad_input(anyhow!(
                    "--ui needs --ui-token-file FILE (or --ui-read-only-open for read-only views)"
                )));
            }
        };
        let notify = match &self.notify_config {
            Some(f) => {
                let config = ferry_notify::NotifyConfig::load(f).map_err(CliError::bad_input)?;
                Some((config, crate::cmd_serve::open_ledger(state)?))
            }
            None => None,
        };
        Ok(Extras {
            ui,
            notify,
            drift: !self.drift_grace.is_zero(),
        })
    }
}

impl Extras {
    /// Starts the notification tasks on the controller's feed; the dashboard's routes.
    fn attach(self, feed: ferry_controller::Feed) -> axum::Router {
        if let Some((config, ledger)) = self.notify {
            let notifier = crate::cmd_serve::notifier(config, ledger);
            tokio::spawn(crate::cmd_serve::notify::run(
                feed.engine.clone(),
                notifier.clone(),
                feed.objects.clone(),
                feed.passes.clone(),
            ));
            tokio::spawn(drift_notifications(notifier, feed.drift.clone()));
        }
        let Some(access) = self.ui else {
            return axum::Router::new();
        };
        let drift = self.drift.then(|| {
            let (tx, rx) = tokio::sync::watch::channel(Arc::new(ferry_dashboard::DriftView::new()));
            tokio::spawn(drift_lines(tx, feed.drift.clone()));
            rx
        });
        let wake = feed.clone();
        let driver = ferry_dashboard::Driver {
            engine: feed.engine,
            objects: feed.objects,
            passes: feed.passes,
            run_now: Arc::new(move || wake.wake()),
            drift,
        };
        ferry_dashboard::router(driver, access)
    }
}

type DriftFeed = tokio::sync::watch::Receiver<Arc<ferry_controller::drift::DriftPass>>;

/// Each drift check's findings as `drift` notifications (sent once each, as in `ferry serve`).
async fn drift_notifications(notifier: Arc<ferry_notify::Notifier>, mut drift: DriftFeed) {
    while drift.changed().await.is_ok() {
        let checked = drift.borrow_and_update().clone();
        notifier.offer_live(&crate::cmd_serve::drift_events(&checked.findings));
    }
}

/// Each drift check's verdicts, as the dashboard's drift lines.
async fn drift_lines(
    view: tokio::sync::watch::Sender<Arc<ferry_dashboard::DriftView>>,
    mut drift: DriftFeed,
) {
    while drift.changed().await.is_ok() {
        let checked = drift.borrow_and_update().clone();
        view.send_replace(Arc::new(crate::cmd_serve::drift_view(&checked.states)));
    }
}

impl ControllerArgs {
    fn options(
        &self,
        state: &std::path::Path,
    ) -> Result<ferry_controller::ControllerOptions, CliError> {
        let webhooks = match (&self.webhook_secret_file, self.allow_unsigned_webhooks) {
            (Some(file), _) => Some(ferry_controller::WebhookAuth::Secret(
                crate::cmd_serve::read_webhook_secret(file)?,
            )),
            (None, true) => Some(ferry_controller::WebhookAuth::Unsigned),
            (None, false) => None,
        };
        Ok(ferry_controller::ControllerOptions {
            webhooks,
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespace: (!self.watch_all_namespaces).then(|| self.namespace.clone()),
            label_selector: self.watch_label_selector.clone(),
            state: state.to_path_buf(),
            cache_dir: crate::cache_path(self.cache_dir.clone()),
            resync: self.resync,
            leader_election: self.leader_elect.then(|| self.namespace.clone()),
            listen: self.listen,
            events_addr: self.events_addr.clone(),
            drift_grace: (!self.drift_grace.is_zero()).then_some(self.drift_grace),
            adopt_rollouts: self.adopt_rollouts,
            no_cross_namespace_refs: self.no_cross_namespace_refs,
            concurrent: usize::from(self.concurrent),
            instance: instance_name(),
        })
    }
}

/// The Pod's name in a cluster (unique per replica); elsewhere host name and pid.
fn instance_name() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "ferry".to_string());
        format!("{host}_{}", std::process::id())
    })
}

pub async fn controller(state: &std::path::Path, args: ControllerArgs) -> Result<Status, CliError> {
    let once = args.once;
    let extras = args.extras(state)?;
    let options = args.options(state)?;
    if once {
        let report = ferry_controller::run_once(options)
            .await
            .map_err(CliError::failed)?;
        println!(
            "{} status writes, {} pushes, {} not ready",
            report.status_writes, report.pushes, report.failed
        );
        return Ok(if report.failed > 0 {
            Status::Failed
        } else {
            Status::Ok
        });
    }
    ferry_controller::run_with(options, shutdown_signal(), |feed| extras.attach(feed))
        .await
        .map_err(CliError::failed)?;
    Ok(Status::Ok)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            std::future::pending::<()>().await
        }
    }
}
