//! What a running controller shares with its driver after each pass, so that a dashboard and
//! notifications (in the `ferry` binary) see what the controller sees without reading the
//! cluster themselves: the engine it reconciles with, the objects it listed, the pass count, the
//! last drift check, and a way to wake a pass.

use std::sync::Arc;

use ferry_api::ObjectSet;
use ferry_engine::Engine;
use tokio::sync::{mpsc, watch};

use crate::drift::DriftPass;

/// The driver's side: receivers, and the engine to run actions with.
#[derive(Clone)]
pub struct Feed {
    pub engine: Arc<Engine>,
    /// The objects of the last pass (`None` before the first).
    pub objects: watch::Receiver<Option<Arc<ObjectSet>>>,
    /// Finished passes.
    pub passes: watch::Receiver<u64>,
    /// The last drift check (empty without `--drift-grace`).
    pub drift: watch::Receiver<Arc<DriftPass>>,
    wake: mpsc::Sender<()>,
    requests: crate::due::Requests,
}

impl Feed {
    /// Runs a pass over every object as soon as the one in flight ends (Git changed behind the
    /// controller's back, as after a push to the GitOps repository).
    pub fn wake(&self) {
        self.requests.all();
        // A full channel already holds a wake-up.
        let _ = self.wake.try_send(());
    }
}

/// The controller's side.
pub(crate) struct Publisher {
    objects: watch::Sender<Option<Arc<ObjectSet>>>,
    passes: watch::Sender<u64>,
    drift: watch::Sender<Arc<DriftPass>>,
}

impl Publisher {
    pub(crate) fn new(
        engine: Arc<Engine>,
        wake: mpsc::Sender<()>,
        requests: crate::due::Requests,
    ) -> (Publisher, Feed) {
        let (objects, objects_rx) = watch::channel(None);
        let (passes, passes_rx) = watch::channel(0);
        let (drift, drift_rx) = watch::channel(Arc::new(DriftPass::default()));
        let feed = Feed {
            engine,
            objects: objects_rx,
            passes: passes_rx,
            drift: drift_rx,
            wake,
            requests,
        };
        (
            Publisher {
                objects,
                passes,
                drift,
            },
            feed,
        )
    }

    pub(crate) fn objects(&self, set: &ObjectSet) {
        self.objects.send_replace(Some(Arc::new(set.clone())));
    }

    pub(crate) fn drift(&self, checked: DriftPass) {
        self.drift.send_replace(Arc::new(checked));
    }

    pub(crate) fn pass_done(&self) {
        self.passes.send_modify(|n| *n += 1);
    }
}
