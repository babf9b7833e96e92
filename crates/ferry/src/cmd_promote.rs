//! `ferry publish`, `ferry promote`, `ferry approve`, `ferry version` (promotion without rebuild).

use std::path::Path;

use anyhow::anyhow;

use crate::{CliError, Status};

/// Add the environment tags to an image already in the registry (server-side, no rebuild).
#[derive(Debug, clap::Args)]
pub struct PublishArgs {}

/// Promote an app's tested image to the next environment by digest.
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {}

/// Record a manual approval in Git.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {}

/// Print an app's current and next version.
#[derive(Debug, clap::Args)]
pub struct VersionArgs {}

pub async fn publish(_state: &Path, _args: PublishArgs) -> Result<Status, CliError> {
    Err(CliError::failed(anyhow!("ferry publish is not implemented yet")))
}

pub async fn promote(_state: &Path, _args: PromoteArgs) -> Result<Status, CliError> {
    Err(CliError::failed(anyhow!("ferry promote is not implemented yet")))
}

pub async fn approve(_state: &Path, _args: ApproveArgs) -> Result<Status, CliError> {
    Err(CliError::failed(anyhow!("ferry approve is not implemented yet")))
}

pub async fn version(_state: &Path, _args: VersionArgs) -> Result<Status, CliError> {
    Err(CliError::failed(anyhow!("ferry version is not implemented yet")))
}
