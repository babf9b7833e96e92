//! `ferry version` (without APP), `ferry completions`, `ferry man` and `ferry image push`:
//! argument handling and printing only; the image upload is `ferry_registry::layout`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::anyhow;
use clap::CommandFactory;
use ferry_registry::{ImageName, RegistryClient, RepoAccess, TlsMaterial};

use crate::cli::{Cli, OutputFormat};
use crate::{CliError, Status};

/// Ferry's own build, as `ferry version -o json` prints it.
#[derive(Debug, serde::Serialize)]
pub struct BuildInfo {
    pub version: &'static str,
    pub git_revision: &'static str,
    pub build_date: &'static str,
    pub rustc: &'static str,
}

pub const BUILD: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    git_revision: env!("FERRY_GIT_REVISION"),
    build_date: env!("FERRY_BUILD_DATE"),
    rustc: env!("FERRY_RUSTC_VERSION"),
};

pub fn own_version(output: OutputFormat) -> Result<Status, CliError> {
    if output == OutputFormat::Table {
        println!("ferry {}", BUILD.version);
        println!("git revision: {}", BUILD.git_revision);
        println!("build date:   {}", BUILD.build_date);
        println!("rustc:        {}", BUILD.rustc);
        return Ok(Status::Ok);
    }
    crate::cmd_promote::print_json(&BUILD, output)?;
    Ok(Status::Ok)
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script of `shell` to stdout.
pub fn completions(args: CompletionsArgs) -> Result<Status, CliError> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "ferry", &mut out);
    out.flush().map_err(CliError::failed)?;
    Ok(Status::Ok)
}

/// Prints the roff man page (ferry(1)) to stdout.
pub fn man() -> Result<Status, CliError> {
    let page = clap_mangen::Man::new(Cli::command());
    let mut buf = Vec::new();
    page.render(&mut buf).map_err(CliError::failed)?;
    std::io::stdout()
        .lock()
        .write_all(&buf)
        .map_err(CliError::failed)?;
    Ok(Status::Ok)
}

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Upload an OCI image layout (index.json, blobs/sha256/…) to a registry, as built by
    /// scripts/image.sh. Credentials come from $DOCKER_CONFIG/config.json, like `ferry publish`.
    Push(ImagePushArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImagePushArgs {
    /// The OCI image layout directory.
    #[arg(value_name = "LAYOUT_DIR")]
    pub layout: PathBuf,
    /// Destination REGISTRY/REPO:TAG.
    #[arg(value_name = "REGISTRY/REPO:TAG")]
    pub reference: String,
    /// Allow plain HTTP.
    #[arg(long)]
    pub insecure: bool,
    /// Extra CA certificate (PEM) for the registry.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

pub async fn image(cmd: ImageCommand) -> Result<Status, CliError> {
    let ImageCommand::Push(args) = cmd;
    let (repo, tag) = split_tag(&args.reference).ok_or_else(|| {
        CliError::bad_input(anyhow!(
            "{:?} is not REGISTRY/REPO:TAG (a tag is required)",
            args.reference
        ))
    })?;
    let image = ImageName::parse(repo).map_err(CliError::bad_input)?;
    let layout = ferry_registry::layout::Layout::open(&args.layout).map_err(CliError::bad_input)?;
    let mut access = RepoAccess::new(image.clone());
    access.insecure = args.insecure;
    access.timeout = std::time::Duration::from_secs(300);
    access.credentials = ferry_registry::load_local_docker_config()
        .ok()
        .and_then(|c| c.credentials_for(image.registry()).cloned());
    if let Some(ca) = &args.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| CliError::bad_input(anyhow!("cannot read {}: {e}", ca.display())))?;
        access.tls = TlsMaterial::with_ca(pem);
    }
    let client = RegistryClient::default();
    let report = ferry_registry::layout::push(&client, &access, &layout, tag)
        .await
        .map_err(CliError::failed)?;
    for blob in &report.blobs {
        let how = if blob.uploaded { "uploaded" } else { "present" };
        eprintln!("{} {how} ({} bytes)", blob.digest, blob.size);
    }
    println!("{}:{tag}@{}", image, report.digest);
    Ok(Status::Ok)
}

/// `REGISTRY/REPO:TAG` → (`REGISTRY/REPO`, `TAG`); `None` without a tag or with a digest.
fn split_tag(reference: &str) -> Option<(&str, &str)> {
    let parts = ferry_core::split_reference(reference);
    let tag = parts.tag?;
    (!parts.name.is_empty() && !reference.contains('@')).then_some((parts.name, tag))
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn split() {
        assert_eq!(
            split_tag("127.0.0.1:5000/org/ferry:v1"),
            Some(("127.0.0.1:5000/org/ferry", "v1"))
        );
        assert_eq!(split_tag("127.0.0.1:5000/org/ferry"), None);
        assert_eq!(split_tag("ferry:1"), Some(("ferry", "1")));
        assert_eq!(split_tag("r/x@sha256:00"), None);
    }
}
