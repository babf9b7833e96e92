//! `ferry install`: arguments, then the manifests of `ferry_install` printed to stdout.

use clap::Args;

use crate::{CliError, Status};

#[derive(Debug, Args)]
#[command(
    long_about = "Print the Kubernetes manifests that install Ferry in place of Flux's image \
controllers, for `ferry install | kubectl apply -f -`:\n\
\n\
  - the CRDs of ImageRepository, ImagePolicy and ImageUpdateAutomation \
(image.toolkit.fluxcd.io/v1), compatible with Flux's (see docs/flux-compatibility.md);\n\
  - the ServiceAccount `ferry-controller` in --namespace and a least-privilege ClusterRole \
and ClusterRoleBinding (get Secrets by name only: no list or watch);\n\
  - the Deployment `ferry-controller`: non-root, read-only root filesystem, running \
`ferry controller`.\n\
\n\
The namespace must exist (flux-system does where Flux is installed). Stop Flux's \
image-reflector-controller and image-automation-controller first: two controllers must not \
serve the same objects. Output is deterministic; nothing is sent to a cluster.",
    after_help = "EXAMPLES:\n  ferry install | kubectl apply --server-side -f -\n  ferry install --crds-only | kubectl apply -f -\n  ferry install --namespace ferry-system --image registry.example.com/ferry:0.1.0"
)]
pub struct InstallArgs {
    /// Namespace of the controller's ServiceAccount and Deployment (must exist).
    #[arg(long, short = 'n', value_name = "NS", default_value = "flux-system", value_parser = parse_namespace)]
    pub namespace: String,
    /// Controller image.
    #[arg(long, value_name = "REF", default_value = ferry_install::DEFAULT_IMAGE, value_parser = parse_image)]
    pub image: String,
    /// Deployment replicas. Without leader election every replica reconciles: keep 1.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_replicas)]
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
    if options.replicas > 1 && !options.crds_only {
        eprintln!(
            "warning: --replicas {}: `ferry controller` has no leader election yet, so every replica reconciles every object",
            options.replicas
        );
    }
    print!("{yaml}");
    Ok(Status::Ok)
}
