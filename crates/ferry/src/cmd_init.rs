//! `ferry init`: the flags, and the printing around `ferry_init` (which renders and writes).

use std::path::PathBuf;

use anyhow::anyhow;
use ferry_init::{InitError, InitOptions, PLACEHOLDER_GIT_URL};

use crate::{CliError, Status};

/// Scaffold a Flux image-automation GitOps layout (develop → staging → production).
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory to scaffold into (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Application (image) name, a DNS-1123 label. Repeatable. The first app gets one
    /// directory per environment (flux/apps/APP/ENV); the others get a kustomize base plus
    /// overlays (flux/apps/APP/base, flux/apps/APP/overlays/ENV).
    #[arg(long = "app", value_name = "NAME", required = true)]
    pub apps: Vec<String>,
    /// Image registry and organisation, HOST[:PORT][/PATH] without scheme or tag. Images are
    /// REGISTRY/APP. Written literally into the deployments and as the `image_registry`
    /// post-build variable of the Flux sync Kustomization.
    #[arg(long, value_name = "HOST/ORG", default_value = "127.0.0.1:5000/org")]
    pub registry: String,
    /// Name of a kubernetes.io/dockerconfigjson Secret in flux-system for registry access
    /// (sets ImageRepository spec.secretRef). Default: anonymous access.
    #[arg(long, value_name = "NAME")]
    pub registry_secret: Option<String>,
    /// URL of the Git repository Flux syncs from and pushes image updates to. Must not embed
    /// a password. Default: a placeholder to edit (git.example.invalid).
    #[arg(long, value_name = "URL")]
    pub git_url: Option<String>,
    /// Name of a Secret in flux-system with Git credentials (sets GitRepository
    /// spec.secretRef). Default: none.
    #[arg(long, value_name = "NAME")]
    pub git_secret: Option<String>,
    /// Branch Flux syncs from, checks out and pushes image updates to.
    #[arg(long, value_name = "BRANCH", default_value = "main")]
    pub branch: String,
    /// Commit author name of the image update commits.
    #[arg(long, value_name = "NAME", default_value = "ferry")]
    pub author_name: String,
    /// Commit author email of the image update commits.
    #[arg(long, value_name = "EMAIL", default_value = "ferry@localhost")]
    pub author_email: String,
    /// Overwrite files that already exist (files init does not generate are never touched).
    #[arg(long)]
    pub force: bool,
    /// Do not write the NetworkPolicy that admits ingress to each environment namespace only
    /// from that namespace (enforcement needs a CNI that implements NetworkPolicy).
    #[arg(long)]
    pub no_network_policies: bool,
}

impl InitArgs {
    fn options(self) -> InitOptions {
        InitOptions {
            dir: self.dir,
            apps: self.apps,
            registry: self.registry,
            registry_secret: self.registry_secret,
            git_url: self.git_url,
            git_secret: self.git_secret,
            branch: self.branch,
            author_name: self.author_name,
            author_email: self.author_email,
            force: self.force,
            no_network_policies: self.no_network_policies,
        }
    }
}

/// Writes the scaffold and prints the paths written; a note on stderr without `--git-url`.
pub fn init(args: InitArgs) -> Result<Status, CliError> {
    let options = args.options();
    let written = ferry_init::run(&options).map_err(|e| match e {
        InitError::Io { .. } => CliError::failed(anyhow!(e)),
        other => CliError::bad_input(anyhow!(other)),
    })?;
    for path in written {
        println!("{}", path.display());
    }
    if options.git_url.is_none() {
        eprintln!(
            "note: --git-url was not given; edit spec.url ({PLACEHOLDER_GIT_URL}) in \
             flux/bootstrap/infrastructure/image-automation/git-repository.yaml"
        );
    }
    Ok(Status::Ok)
}
