//! ferry-install: the Kubernetes manifests that install Ferry in a cluster, printed by
//! `ferry install`: the CRDs of the three image kinds, the controller's ServiceAccount and
//! least-privilege RBAC, and its Deployment.
//!
//! Owns: what is installed, as data (`serde_json` values in a fixed order, printed as one
//! deterministic multi-document YAML stream), and the validation of the install options.
//! Must not: talk to a cluster (the user pipes the output to `kubectl apply`), run or configure the
//! controller itself (that is `ferry-controller`), or copy Flux's YAML: the CRDs are written here
//! from the facts of Flux's v1 API, and a test compares them with Flux's own on a real API server.

mod crds;
mod deploy;
mod rbac;

use serde_json::{Value, json};

pub use crds::{GROUP, crds};
pub use rbac::{RULES, Rule};

/// The image `ferry install` deploys unless `--image` says otherwise: Ferry's release image, tagged
/// with the version of this build (the `ferry` binary and this crate share the workspace version).
/// This is the one place to change the registry or naming scheme of the published image.
pub const DEFAULT_IMAGE: &str = concat!("ghcr.io/ferry-dev/ferry:", env!("CARGO_PKG_VERSION"));

/// The name of the ServiceAccount, ClusterRole and Deployment.
pub const NAME: &str = "ferry-controller";

/// What to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOptions {
    /// Namespace of the ServiceAccount and the Deployment (it must exist).
    pub namespace: String,
    /// Container image of the controller.
    pub image: String,
    /// Deployment replicas (at least 1).
    pub replicas: u32,
    /// Print the CRDs only.
    pub crds_only: bool,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            namespace: "flux-system".to_string(),
            image: DEFAULT_IMAGE.to_string(),
            replicas: 2,
            crds_only: false,
        }
    }
}

/// Options that cannot produce a valid install.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InstallError {
    #[error(
        "invalid namespace {0:?}: a namespace is a DNS label (RFC 1123): at most 63 characters, lower-case letters, digits and '-', starting and ending with a letter or digit"
    )]
    Namespace(String),
    #[error("invalid image {0:?}: give an image reference such as ghcr.io/org/ferry:1.2.3")]
    Image(String),
    #[error("invalid replicas {0}: at least 1")]
    Replicas(u32),
}

/// A namespace name the API server accepts (a DNS-1123 label).
pub fn validate_namespace(name: &str) -> Result<(), InstallError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-';
    if ok {
        Ok(())
    } else {
        Err(InstallError::Namespace(name.to_string()))
    }
}

/// An image reference without spaces or control characters, not starting with '-' or ':'.
pub fn validate_image(image: &str) -> Result<(), InstallError> {
    let ok = !image.is_empty()
        && !image.starts_with(['-', ':', '@', '/'])
        && !image.ends_with([':', '@', '/'])
        && image
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\'));
    if ok {
        Ok(())
    } else {
        Err(InstallError::Image(image.to_string()))
    }
}

impl InstallOptions {
    pub fn validate(&self) -> Result<(), InstallError> {
        validate_namespace(&self.namespace)?;
        validate_image(&self.image)?;
        if self.replicas == 0 {
            return Err(InstallError::Replicas(self.replicas));
        }
        Ok(())
    }
}

/// Labels on everything Ferry installs. Deliberately not `app.kubernetes.io/part-of: flux`:
/// `flux check` would take Ferry for one of Flux's controllers.
fn labels(component: &str) -> Value {
    json!({
        "app.kubernetes.io/part-of": "ferry",
        "app.kubernetes.io/component": component,
    })
}

/// The objects to apply, in order: CRDs, then (unless `crds_only`) ServiceAccount, RBAC and
/// Deployment.
pub fn manifests(options: &InstallOptions) -> Result<Vec<Value>, InstallError> {
    options.validate()?;
    let mut out = crds();
    if !options.crds_only {
        out.push(rbac::service_account(&options.namespace));
        out.extend(rbac::objects(&options.namespace));
        out.push(deploy::deployment(options));
    }
    Ok(out)
}

/// One YAML stream, each object introduced by `---`.
pub fn to_yaml(objects: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(object).map_err(|e| e.to_string())?);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
