//! The Flux kinds the controller serves and reads, and the start-up checks that turn a missing
//! CRD or a missing right into an error that says what to do.

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;

use crate::{ControllerError, ControllerOptions};

/// Added before the first reconcile, removed on delete (as Flux's controllers do).
pub const FINALIZER: &str = "finalizers.fluxcd.io";
/// The annotation `flux reconcile` sets; its value is echoed in `status.lastHandledReconcileAt`.
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

pub const IMAGE_GROUP: &str = "image.toolkit.fluxcd.io";

/// One served or read kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FluxKind {
    ImageRepository,
    ImagePolicy,
    ImageUpdateAutomation,
    GitRepository,
}

impl FluxKind {
    /// The kinds whose status the controller writes.
    pub const SERVED: [FluxKind; 3] = [
        FluxKind::ImageRepository,
        FluxKind::ImagePolicy,
        FluxKind::ImageUpdateAutomation,
    ];

    pub fn group(self) -> &'static str {
        match self {
            FluxKind::GitRepository => "source.toolkit.fluxcd.io",
            _ => IMAGE_GROUP,
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            FluxKind::ImageRepository => "ImageRepository",
            FluxKind::ImagePolicy => "ImagePolicy",
            FluxKind::ImageUpdateAutomation => "ImageUpdateAutomation",
            FluxKind::GitRepository => "GitRepository",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            FluxKind::ImageRepository => "imagerepositories",
            FluxKind::ImagePolicy => "imagepolicies",
            FluxKind::ImageUpdateAutomation => "imageupdateautomations",
            FluxKind::GitRepository => "gitrepositories",
        }
    }

    pub fn resource(self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group(), "v1", self.kind());
        ApiResource::from_gvk_with_plural(&gvk, self.plural())
    }

    pub fn store_kind(self) -> Option<ferry_store::Kind> {
        match self {
            FluxKind::ImageRepository => Some(ferry_store::Kind::ImageRepository),
            FluxKind::ImagePolicy => Some(ferry_store::Kind::ImagePolicy),
            FluxKind::ImageUpdateAutomation => Some(ferry_store::Kind::ImageUpdateAutomation),
            FluxKind::GitRepository => None,
        }
    }

    /// An Api over the watched namespaces.
    pub fn api(self, client: &kube::Client, options: &ControllerOptions) -> Api<DynamicObject> {
        match &options.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.resource()),
            None => Api::all_with(client.clone(), &self.resource()),
        }
    }

    pub fn list_params(options: &ControllerOptions) -> ListParams {
        match &options.label_selector {
            Some(selector) => ListParams::default().labels(selector),
            None => ListParams::default(),
        }
    }
}

/// Lists each kind once: a 404 means the CRD is missing, a 403 means RBAC denies the list.
pub async fn preflight(
    client: &kube::Client,
    options: &ControllerOptions,
) -> Result<(), ControllerError> {
    let kinds = [
        FluxKind::ImageRepository,
        FluxKind::ImagePolicy,
        FluxKind::ImageUpdateAutomation,
        FluxKind::GitRepository,
    ];
    preflight_kinds(client, options, &kinds).await
}

pub async fn preflight_kinds(
    client: &kube::Client,
    options: &ControllerOptions,
    kinds: &[FluxKind],
) -> Result<(), ControllerError> {
    let scope = match &options.namespace {
        Some(ns) => format!("namespace {ns}"),
        None => "all namespaces".to_string(),
    };
    for &kind in kinds {
        let api = kind.api(client, options);
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(ControllerError::MissingCrd {
                    group: kind.group(),
                    version: "v1",
                    plural: kind.plural(),
                });
            }
            Err(kube::Error::Api(status)) if status.code == 403 => {
                return Err(ControllerError::Forbidden {
                    verb: "list",
                    resource: format!("{}.{}", kind.plural(), kind.group()),
                    scope,
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
