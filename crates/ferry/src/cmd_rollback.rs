//! `ferry rollback`, `ferry hold`, `ferry unhold`, `ferry history`, `ferry status`.

use std::path::Path;

use anyhow::anyhow;

use crate::{CliError, Status};

/// Roll an environment back to the version before the current one, and hold it there.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {}

/// Hold an environment's app at its current version (automation will not move it).
#[derive(Debug, clap::Args)]
pub struct HoldArgs {}

/// Lift a hold.
#[derive(Debug, clap::Args)]
pub struct UnholdArgs {}

/// The timeline of an app in an environment, from Git.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {}

/// Apps × environments: what runs where, holds, what is promotable.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

pub async fn rollback(_state: &Path, _args: RollbackArgs) -> Result<Status, CliError> {
    Err(CliError::failed(anyhow!("ferry rollback is not implemented yet")))
}

pub async fn hold(_state: &Path, _args: HoldArgs) -> Result<Status, CliError> {
    Err(CliError::failed(anyhow!("ferry hold is not implemented yet")))
}

pub async fn unhold(_state: &Path, _args: UnholdArgs) -> Result<Status, CliError> {
    Err(CliError::failed(anyhow!("ferry unhold is not implemented yet")))
}

pub async fn history(_state: &Path, _args: HistoryArgs) -> Result<Status, CliError> {
    Err(CliError::failed(anyhow!("ferry history is not implemented yet")))
}

pub async fn status(_state: &Path, _args: StatusArgs) -> Result<Status, CliError> {
    Err(CliError::failed(anyhow!("ferry status is not implemented yet")))
}
