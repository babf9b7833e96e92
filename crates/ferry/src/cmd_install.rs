//! `ferry install`: arguments, then the manifests of `ferry_install` printed to stdout.

use clap::Args;

use crate::{CliError, Status};

/// `ferry install --help`.
pub const LONG_ABOUT: &str =
    "Print the Kubernetes manifests that install Ferry in place of Flux's image \
controllers, for `ferry install | kubectl apply -f -`:

  - the CRDs of ImageRepository, ImagePolicy and ImageUpdateAutomation \
(image.toolkit.fluxcd.io/v1), compatible with Flux's (see docs/flux-compatibility.md);
  - the ServiceAccount `ferry-controller` in --namespace and a least-privilege ClusterRole and \
ClusterRoleBinding (Secrets: get by name only, no list or watch);
  - the Deployment `ferry-controller`: non-root, read-only root filesystem, running \
`ferry controller`.

The namespace must exist (flux-system does where Flux is installed); it is not created. Scale \
Flux's image-reflector-controller and image-automation-controller to 0 first: two controllers \
must not serve the same objects. The output is deterministic; nothing is sent to a cluster.";

/// Examples under `ferry install --help`.
pub const EXAMPLES: &str = "EXAMPLES:
  ferry install | kubectl apply -f -
  ferry install --crds-only | kubectl apply -f -
  ferry install --namespace ferry-system --image registry.example.com/ferry:0.1.0";

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Namespace of the controller's ServiceAccount and Deployment (must exist).
    #[arg(long, short = 'n', value_name = "NS", default_value = "flux-system", value_parser = parse_namespace)]
    pub namespace: String,
    /// Controller image. Default: Ferry's release image at the version of this binary.
    #[arg(long, value_name = "REF", default_value = ferry_install::DEFAULT_IMAGE, value_parser = parse_image)]
    pub image: String,
    /// Deployment replicas. They elect a leader on a Lease: one reconciles, the others take over
    /// within ~20 s when it dies.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = parse_replicas)]
    pub replicas: u32,
    /// Print only the three CRDs (for clusters where something else runs the controller).
    #[arg(long)]
    pub crds_only: bool,
}

fn parse_namespace(s: &str) -> Result<String, String> {
    ferry_install::validate_namespace(s)
        .map(|()| s.to_string())
        .map_err(|e| e.to_string())
}

fn parse_replicas(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("at least 1 replica".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err("a whole number, at least 1".to_string()),
    }
}

fn parse_image(s: &str) -> Result<String, String> {
    ferry_install::validate_image(s)
        .map(|()| s.to_string())
        .map_err(|e| e.to_string())
}

pub fn install(args: InstallArgs) -> Result<Status, CliError> {
    let options = ferry_install::InstallOptions {
        namespace: args.namespace,
        image: args.image,
        replicas: args.replicas,
        crds_only: args.crds_only,
    };
    let objects = ferry_install::manifests(&options).map_err(CliError::bad_input)?;
    let yaml =
        ferry_install::to_yaml(&objects).map_err(|e| CliError::failed(anyhow::anyhow!(e)))?;
    print!("{yaml}");
    Ok(Status::Ok)
}
