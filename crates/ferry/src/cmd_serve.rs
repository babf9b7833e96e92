//! `ferry serve`: the daemon (intervals, registry and git webhooks, metrics, health).

use std::path::Path;

use anyhow::anyhow;

use crate::{CliError, Status};

/// Run continuously: reconcile on each object's interval and on webhooks.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub async fn serve(_state: &Path, _args: ServeArgs) -> Result<Status, CliError> {
    Err(CliError::failed(anyhow!("ferry serve is not implemented yet")))
}
