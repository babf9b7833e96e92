//! ferry-controller: Ferry as a drop-in for Flux's image-reflector-controller and
//! image-automation-controller on a Kubernetes API server.
//!
//! Owns: the cluster side of a run. Which objects exist (watched and listed from the API, not
//! read from files), which Secrets they reference (read from the API into a private, per-pass
//! folder laid out like a Secret volume), when a pass runs (watch events, `requestedAt`, intervals),
//! and what is written back: Flux's status fields and conditions, the finalizer, and Events.
//! Must not: decide tags, write YAML or speak to registries and Git itself (that is
//! `ferry-engine`, which it drives exactly as the CLI and the daemon do), or print to a terminal
//! (that is the `ferry` binary).
//!
//! The local state file is a cache of tags only: the cluster is the source of truth, and a
//! controller with an empty disk rebuilds its view from the API and the registries.

pub mod drift;
mod due;
mod feed;
mod http;
mod kinds;
mod leader;
mod notify;
mod objects;
mod pass;
mod secrets;
pub mod sightings;
mod status;
pub mod verify;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

pub use feed::Feed;
use ferry_core::Kind;
use kinds::KindApi;
pub use kinds::{FINALIZER, REQUESTED_AT};
pub use pass::PassReport;

/// What `ferry controller` was asked to do.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// kubeconfig file; `None` uses `$KUBECONFIG`, `~/.kube/config` or the in-cluster config.
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context.
    pub context: Option<String>,
    /// Watch one namespace only (`--watch-all-namespaces=false` with `--namespace`).
    pub namespace: Option<String>,
    /// Only objects whose labels match (`--watch-label-selector`, Flux's sharding).
    pub label_selector: Option<String>,
    /// The tag cache (SQLite); it can be deleted at any time.
    pub state: PathBuf,
    /// The clone cache of the write-back repositories.
    pub cache_dir: PathBuf,
    /// The longest wait between two passes when nothing happens (objects' intervals are shorter
    /// or equal; this bounds a missed event).
    pub resync: Duration,
    /// Name of this instance in Events (`reportingInstance`) and in the leader Lease; unique
    /// per replica.
    pub instance: String,
    /// Hold a Lease in this namespace before reconciling (`--leader-elect`).
    pub leader_election: Option<String>,
    /// `/healthz`, `/readyz` and `/metrics` on this address.
    pub listen: Option<std::net::SocketAddr>,
    /// Also POST each Event as Flux's event JSON here (notification-controller's address).
    pub events_addr: Option<String>,
    /// Compare Git with the live workloads after each pass; report drift that lasts this long
    /// (`None`: no drift detection).
    pub drift_grace: Option<Duration>,
    /// Write a live image that is an earlier Git value (a `kubectl rollout undo`) back to Git.
    pub adopt_rollouts: bool,
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
    /// Registry requests in flight per registry host (`--concurrent`).
    pub concurrent: usize,
    /// `/hooks/registry` and `/hooks/git` on `--listen`, and how they are authenticated
    /// (`None`: no webhook routes).
    pub webhooks: Option<WebhookAuth>,
}

/// How webhook requests are authenticated.
#[derive(Debug, Clone)]
pub enum WebhookAuth {
    /// `--webhook-secret-file`: a bearer token or an HMAC-SHA256 signature of the body.
    Secret(ferry_hooks::Secret),
    /// `--allow-unsigned-webhooks`: anyone who reaches the address.
    Unsigned,
}

impl ControllerOptions {
    /// Options for reading the cluster only (no state, no cache, no leader election).
    pub fn reader(kubeconfig: PathBuf, context: Option<String>, namespace: Option<String>) -> Self {
        ControllerOptions {
            kubeconfig: Some(kubeconfig),
            context,
            namespace,
            label_selector: None,
            state: PathBuf::new(),
            cache_dir: PathBuf::new(),
            resync: Duration::from_secs(600),
            instance: String::new(),
            leader_election: None,
            listen: None,
            events_addr: None,
            drift_grace: None,
            adopt_rollouts: false,
            no_cross_namespace_refs: false,
            concurrent: 8,
            webhooks: None,
        }
    }
}

/// Errors that stop the controller (one object's failure is its status, never this).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("cannot build a Kubernetes client: {0}")]
    Config(String),
    #[error(
        "the {plural}.{group} CRD ({version}) is not installed: run `ferry install --crds-only | kubectl apply -f -` (or install Flux's image CRDs)"
    )]
    MissingCrd {
        group: &'static str,
        version: &'static str,
        plural: &'static str,
    },
    #[error(
        "RBAC denied: cannot {verb} {resource} ({scope}): grant it to the controller's ServiceAccount (see `ferry install`)"
    )]
    Forbidden {
        verb: &'static str,
        resource: String,
        scope: String,
    },
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Store(#[from] ferry_store::StoreError),
    #[error(transparent)]
    Engine(#[from] ferry_engine::EngineError),
    #[error("{0}")]
    Io(String),
    #[error("leadership lost (the Lease was not renewed in time or was taken over); stopping")]
    LeadershipLost,
}

/// Builds a client from the options (kubeconfig file and context, else the usual inference).
pub async fn client(options: &ControllerOptions) -> Result<kube::Client, ControllerError> {
    client_and_server(options).await.map(|(client, _)| client)
}

/// A client, and the API server's URL for messages.
pub async fn client_and_server(
    options: &ControllerOptions,
) -> Result<(kube::Client, String), ControllerError> {
    let kube_options = kube::config::KubeConfigOptions {
        context: options.context.clone(),
        ..Default::default()
    };
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| ControllerError::Config(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                .await
                .map_err(|e| ControllerError::Config(format!("{}: {e}", path.display())))?
        }
        None if options.context.is_some() => kube::Config::from_kubeconfig(&kube_options)
            .await
            .map_err(|e| ControllerError::Config(e.to_string()))?,
        None => kube::Config::infer()
            .await
            .map_err(|e| ControllerError::Config(e.to_string()))?,
    };
    let server = config.cluster_url.to_string();
    let client =
        kube::Client::try_from(config).map_err(|e| ControllerError::Config(e.to_string()))?;
    Ok((client, server))
}

/// Runs until `shutdown` resolves: checks the CRDs and rights, then reconciles on every watch
/// event that matters, on `requestedAt`, and on the objects' intervals.
pub async fn run(
    options: ControllerOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ControllerError> {
    run_with(options, shutdown, |_| axum::Router::new()).await
}

/// [`run`], with more routes on `--listen`: `routes` gets the controller's [`Feed`] (its
/// engine, each pass's objects and drift, a wake-up) before the first pass.
pub async fn run_with(
    options: ControllerOptions,
    shutdown: impl std::future::Future<Output = ()>,
    routes: impl FnOnce(Feed) -> axum::Router,
) -> Result<(), ControllerError> {
    let client = client(&options).await?;
    kinds::preflight(&client, &options).await?;
    let metrics = std::sync::Arc::new(http::Metrics::new());
    let (wake, woken) = tokio::sync::mpsc::channel(64);
    let requests = due::Requests::default();
    let repositories = http::KnownRepositories::default();
    let mut controller = pass::Controller::new(client.clone(), options.clone())?;
    controller.set_metrics(metrics.clone());
    controller.set_known_repositories(repositories.clone());
    let extra = routes(controller.feed(wake.clone(), requests.clone()));
    if let Some(addr) = options.listen {
        let hooks = options.webhooks.clone().map(|auth| http::Hooks {
            auth,
            wake: wake.clone(),
            requests: requests.clone(),
            repositories,
        });
        let bound = http::serve(addr, metrics.clone(), hooks, extra).await?;
        tracing::info!(%bound, "serving /healthz, /readyz and /metrics");
    }
    tokio::pin!(shutdown);
    let leader = options.leader_election.as_ref().map(|ns| {
        let config = leader::LeaseConfig::new(ns.clone(), options.instance.clone());
        leader::Leader::new(client.clone(), config)
    });
    if let Some(leader) = &leader {
        // A standby is healthy and ready: it is doing its job by waiting.
        metrics
            .ready
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(identity = %options.instance, "waiting for the leader Lease");
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            acquired = leader.acquire() => acquired?,
        }
    }
    let lost = async {
        match &leader {
            Some(leader) => leader.hold().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(lost);
    let mut triggers = watch::Triggers::start(client, &options, (wake, woken));
    loop {
        let report = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = &mut lost => return Err(ControllerError::LeadershipLost),
            report = controller.pass(requests.take()) => report?,
        };
        metrics
            .ready
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let wait = report.next_due.min(options.resync);
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = &mut lost => return Err(ControllerError::LeadershipLost),
            _ = triggers.next(wait) => {}
        }
    }
}

/// The three image kinds' live status, as the store's records (for `ferry get images
/// --kubeconfig`); `namespace` limits the listing.
pub async fn live_records(
    options: &ControllerOptions,
) -> Result<Vec<ferry_store::ObjectRecord>, ControllerError> {
    let client = client(options).await?;
    kinds::preflight_kinds(&client, options, &Kind::RECONCILED).await?;
    let mut out = Vec::new();
    for kind in Kind::RECONCILED {
        let list = kind
            .api(&client, options)
            .list(&kinds::list_params(options))
            .await?;
        out.extend(
            list.iter()
                .filter_map(|o| status::record_from_live(kind, o)),
        );
    }
    Ok(out)
}

/// Asks whoever reconciles an image object in the cluster (Ferry's controller or Flux's) to run
/// it now, as `flux reconcile` does: the `reconcile.fluxcd.io/requestedAt` annotation. Returns
/// the value written.
pub async fn request_reconcile(
    options: &ControllerOptions,
    key: &ferry_core::ObjectKey,
) -> Result<String, ControllerError> {
    let (namespace, name) = (key.namespace.as_str(), key.name.as_str());
    let client = client(options).await?;
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| ControllerError::Io(e.to_string()))?;
    let resource = key.kind.resource();
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client, namespace, &resource);
    let patch = serde_json::json!({ "metadata": { "annotations": { REQUESTED_AT: now } } });
    api.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await?;
    Ok(now)
}

/// The Flux objects of a cluster, as the CLI reads them with `--kubeconfig` (no `--dir` or
/// `--repo`): the same listing and per-object loading as a controller pass, and the Secrets they
/// reference mirrored into a private folder that lives as long as this value.
pub struct ClusterObjects {
    pub objects: ferry_api::ObjectSet,
    /// Objects that could not be read, `Kind namespace/name` → why.
    pub invalid: Vec<(String, String)>,
    secrets: secrets::SecretFolder,
}

impl ClusterObjects {
    /// The Secret-volume-like folder holding the referenced Secrets.
    pub fn secrets_root(&self) -> &std::path::Path {
        self.secrets.root()
    }
}

/// Lists and loads the cluster's Flux objects (see [`ClusterObjects`]).
pub async fn cluster_objects(
    options: &ControllerOptions,
) -> Result<ClusterObjects, ControllerError> {
    let client = client(options).await?;
    kinds::preflight_kinds(&client, options, &Kind::RECONCILED).await?;
    let listed = objects::Listed::fetch(&client, options).await?;
    let secrets = secrets::SecretFolder::new()?;
    secrets.refresh(&client, &listed).await?;
    let loaded = objects::load(&listed);
    Ok(ClusterObjects {
        objects: loaded.set,
        invalid: loaded
            .invalid
            .into_iter()
            .map(|(k, why)| (k.to_string(), why))
            .collect(),
        secrets,
    })
}

/// One pass, for tests and `--once`: everything the controller would do on a trigger.
pub async fn run_once(options: ControllerOptions) -> Result<PassReport, ControllerError> {
    let client = client(&options).await?;
    kinds::preflight(&client, &options).await?;
    let mut controller = pass::Controller::new(client, options)?;
    let report = controller.pass(due::Requested::default()).await;
    controller
        .flush_events(std::time::Duration::from_secs(30))
        .await;
    report
}

#[cfg(test)]
mod tests;
