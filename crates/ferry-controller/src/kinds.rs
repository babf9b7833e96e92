//! The Flux kinds the controller serves and reads, and the start-up checks that turn a missing
//! CRD or a missing right into an error that says what to do.

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;

use ferry_core::Kind;

use crate::{ControllerError, ControllerOptions};

/// Added before the first reconcile, removed on delete (as Flux's controllers do).
pub const FINALIZER: &str = "finalizers.fluxcd.io";
/// The annotation `flux reconcile` sets; its value is echoed in `status.lastHandledReconcileAt`.
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

pub const IMAGE_GROUP: &str = "image.toolkit.fluxcd.io";

/// Where each kind lives in the API (the kinds themselves are `ferry_core::Kind`).
pub trait KindApi: Copy {
    fn group(self) -> &'static str;
    fn plural(self) -> &'static str;
    fn resource(self) -> ApiResource;
    /// An Api over the watched namespaces.
    fn api(self, client: &kube::Client, options: &ControllerOptions) -> Api<DynamicObject>;
}

impl KindApi for Kind {
    fn group(self) -> &'static str {
        match self {
            Kind::GitRepository => "source.toolkit.fluxcd.io",
            _ => IMAGE_GROUP,
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::ImageRepository => "imagerepositories",
            Kind::ImagePolicy => "imagepolicies",
            Kind::ImageUpdateAutomation => "imageupdateautomations",
            Kind::GitRepository => "gitrepositories",
        }
    }

    fn resource(self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group(), "v1", self.as_str());
        ApiResource::from_gvk_with_plural(&gvk, self.plural())
    }

    fn api(self, client: &kube::Client, options: &ControllerOptions) -> Api<DynamicObject> {
        match &options.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.resource()),
            None => Api::all_with(client.clone(), &self.resource()),
        }
    }
}

/// The list parameters of the watched objects (`--label-selector`).
pub fn list_params(options: &ControllerOptions) -> ListParams {
    match &options.label_selector {
        Some(selector) => ListParams::default().labels(selector),
        None => ListParams::default(),
    }
}

/// Lists each kind once: a 404 means the CRD is missing, a 403 means RBAC denies the list.
pub async fn preflight(
    client: &kube::Client,
    options: &ControllerOptions,
) -> Result<(), ControllerError> {
    let kinds = [
        Kind::ImageRepository,
        Kind::ImagePolicy,
        Kind::ImageUpdateAutomation,
        Kind::GitRepository,
    ];
    preflight_kinds(client, options, &kinds).await
}

pub async fn preflight_kinds(
    client: &kube::Client,
    options: &ControllerOptions,
    kinds: &[Kind],
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
