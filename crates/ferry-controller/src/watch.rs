//! Watches that wake the controller: a new or deleted object, a spec change (generation), a
//! `reconcile.fluxcd.io/requestedAt` request, or a deletion. Status writes (the controller's own)
//! change none of these, so they never wake it. A broken watch is restarted by kube-runtime's
//! watcher with backoff, so an API server restart is survived and the relist catches up.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;

use crate::ControllerOptions;
use crate::kinds::KindApi;
use crate::objects::ObjectKey;
use crate::status::requested_at;
use ferry_core::Kind;

/// What of an object wakes the controller when it changes.
type Fingerprint = (Option<i64>, Option<String>, bool);

pub struct Triggers {
    rx: mpsc::Receiver<()>,
}

/// Events closer together than this make one pass.
const DEBOUNCE: Duration = Duration::from_millis(150);

impl Triggers {
    /// Starts the watches; they, and whoever else holds a sender of `channel` (the webhooks),
    /// wake [`Triggers::next`].
    pub fn start(
        client: kube::Client,
        options: &ControllerOptions,
        channel: (mpsc::Sender<()>, mpsc::Receiver<()>),
    ) -> Triggers {
        let (tx, rx) = channel;
        for kind in Kind::RECONCILED.into_iter().chain([Kind::GitRepository]) {
            let api = kind.api(&client, options);
            let mut config = watcher::Config::default();
            if let Some(selector) = options
                .label_selector
                .as_ref()
                .filter(|_| kind != Kind::GitRepository)
            {
                config = config.labels(selector);
            }
            tokio::spawn(watch_kind(kind, api, config, tx.clone()));
        }
        if options.drift_grace.is_some() {
            let api = match &options.namespace {
                Some(ns) => kube::Api::namespaced(client.clone(), ns),
                None => kube::Api::all(client.clone()),
            };
            tokio::spawn(watch_deployments(api, tx.clone()));
        }
        Triggers { rx }
    }

    /// Waits for a trigger or `limit`, then lets a burst of events settle.
    pub async fn next(&mut self, limit: Duration) {
        if tokio::time::timeout(limit, self.rx.recv()).await.is_err() {
            return;
        }
        tokio::time::sleep(DEBOUNCE).await;
        while self.rx.try_recv().is_ok() {}
    }
}

async fn watch_kind(
    kind: Kind,
    api: kube::Api<kube::api::DynamicObject>,
    config: watcher::Config,
    tx: mpsc::Sender<()>,
) {
    let mut seen: HashMap<ObjectKey, Fingerprint> = HashMap::new();
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    while let Some(event) = stream.next().await {
        let wake = match event {
            Ok(Event::Apply(obj)) | Ok(Event::InitApply(obj)) => {
                let key = crate::objects::key_of(kind, &obj);
                let print = (
                    obj.metadata.generation,
                    requested_at(&obj).map(String::from),
                    obj.metadata.deletion_timestamp.is_some(),
                );
                seen.insert(key, print.clone()) != Some(print)
            }
            Ok(Event::Delete(obj)) => seen.remove(&crate::objects::key_of(kind, &obj)).is_some(),
            Ok(Event::Init) | Ok(Event::InitDone) => false,
            Err(e) => {
                tracing::warn!(kind = kind.as_str(), error = %e, "watch interrupted; restarting");
                false
            }
        };
        // A full channel already holds a wake-up; dropping this one loses nothing.
        if wake && tx.try_send(()).is_err() && tx.is_closed() {
            return;
        }
    }
}

/// Deployments wake the controller when their pod template changes (generation): an apply, a
/// `kubectl set image`, a `kubectl rollout undo`, so drift is seen within seconds.
async fn watch_deployments(
    api: kube::Api<k8s_openapi::api::apps::v1::Deployment>,
    tx: mpsc::Sender<()>,
) {
    let mut seen: HashMap<(String, String), Option<i64>> = HashMap::new();
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = stream.next().await {
        let wake = match event {
            Ok(Event::Apply(d)) | Ok(Event::InitApply(d)) => {
                let key = (
                    d.metadata.namespace.clone().unwrap_or_default(),
                    d.metadata.name.clone().unwrap_or_default(),
                );
                seen.insert(key, d.metadata.generation) != Some(d.metadata.generation)
            }
            Ok(Event::Delete(_)) => true,
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = %e, "Deployment watch interrupted; restarting");
                false
            }
        };
        if wake && tx.try_send(()).is_err() && tx.is_closed() {
            return;
        }
    }
}
