//! `ferry`: the command-line front end. Parses flags, wires the engine, prints results.
//! Business logic lives in the library crates (see docs/architecture.md).

mod cli;
mod cmd_controller;
mod cmd_init;
mod cmd_install;
mod cmd_meta;
mod cmd_promote;
mod cmd_rollback;
mod cmd_serve;
mod commands;

mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, LogFormat};

/// Exit status of a command (documented in `ferry --help` and docs/cli.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Success; for reconcile: nothing to do.
    Ok,
    /// An object or operation failed; the others were still processed.
    Failed,
    /// Bad input: nothing was written.
    BadInput,
    /// Reconcile changed something (pushed, or would push with --dry-run).
    Changed,
}

impl Status {
    fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::BadInput => 2,
            Status::Changed => 3,
        }
    }
}

/// An error that ends a command, with the exit status it maps to.
#[derive(Debug)]
pub struct CliError {
    pub status: Status,
    pub error: anyhow::Error,
}

impl CliError {
    pub fn bad_input(error: impl Into<anyhow::Error>) -> CliError {
        CliError {
            status: Status::BadInput,
            error: error.into(),
        }
    }
    pub fn failed(error: impl Into<anyhow::Error>) -> CliError {
        CliError {
            status: Status::Failed,
            error: error.into(),
        }
    }
}

impl From<ferry_engine::EngineError> for CliError {
    fn from(e: ferry_engine::EngineError) -> CliError {
        use ferry_engine::EngineError as E;
        match e {
            E::Load(_) | E::Invalid(_) | E::Source(_) | E::Secret(_) => CliError::bad_input(e),
            other => CliError::failed(other),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose, cli.global.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Status::Failed.code());
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(status) => ExitCode::from(status.code()),
        Err(e) => {
            eprintln!("error: {:#}", e.error);
            ExitCode::from(e.status.code())
        }
    }
}

async fn run(cli: Cli) -> Result<Status, CliError> {
    let state = state_path(cli.global.state.clone());
    match cli.command {
        Command::Scan(args) => commands::scan(&state, args).await,
        Command::Get(args) => commands::get(&state, args).await,
        Command::Reconcile(args) => commands::reconcile(&state, args).await,
        Command::Setters(cmd) => commands::setters(cmd),
        Command::Init(args) => cmd_init::init(args),
        Command::Render(args) => commands::render(args),
        Command::Publish(args) => cmd_promote::publish(&state, args).await,
        Command::Promote(args) => cmd_promote::promote(&state, args).await,
        Command::Approve(args) => cmd_promote::approve(&state, args).await,
        Command::Version(args) => cmd_promote::version(&state, args).await,
        Command::Rollback(args) => cmd_rollback::rollback(&state, args).await,
        Command::Hold(args) => cmd_rollback::hold(&state, args).await,
        Command::Unhold(args) => cmd_rollback::unhold(&state, args).await,
        Command::History(args) => cmd_rollback::history(&state, args).await,
        Command::Status(args) => cmd_rollback::status(&state, args).await,
        Command::Metrics(cli::MetricsCommand::Dora(args)) => cmd_rollback::dora(&state, args).await,
        Command::Serve(args) => cmd_serve::serve(&state, args).await,
        Command::Controller(args) => cmd_controller::controller(&state, args).await,
        Command::Verify(args) => cmd_rollback::verify(&state, args).await,
        Command::Install(args) => cmd_install::install(args),
        Command::Completions(args) => cmd_meta::completions(args),
        Command::Man => cmd_meta::man(),
        Command::Image(cmd) => cmd_meta::image(cmd).await,
    }
}

fn init_logging(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// `--state`, else `$XDG_STATE_HOME/ferry/state.db` (`~/.local/state/ferry/state.db`).
fn state_path(explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(|| {
        dirs::state_dir()
            .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))
            .unwrap_or_else(std::env::temp_dir)
            .join("ferry/state.db")
    })
}

/// `--cache-dir`, else `$XDG_CACHE_HOME/ferry/git`.
pub fn cache_path(explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(|| {
        dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("ferry/git")
    })
}
