//! Promotion without rebuild: `publish` (server-side build tags), `promote` by digest with gates,
//! `approve`, release records and the app's next version. Format of everything written to Git
//! and the registry: docs/promotion.md and docs/pipeline.md.
//!
//! Owns: which bytes go under which tag (never re-serialised: the digest cannot change), the
//! gates, and the release commit. Must not: print (the CLI renders the reports) or edit setter
//! markers (the target environment's ImageUpdateAutomation does that on its next run).

mod config;
mod flow;
mod gitops;
mod records;
mod retag;

pub use config::{
    AppPipeline, Bump, DEFAULT_STAGES, DEFAULT_TAG_TEMPLATE, StageConfig, TagTemplate, Version,
    check_path_name,
};
pub use flow::{
    ApproveReport, ApproveRequest, GateResult, PromoteReport, PromoteRequest, PublishReport,
    PublishRequest, VersionReport, approve, promote, publish, version,
};
pub use gitops::GitFallback;
pub(crate) use records::yaml_quote;
pub use records::{
    Approval, ApprovalGate, RecordError, RecordGates, ReleaseRecord, SoakGate, SourceDeployedGate,
};
pub use retag::{TagOutcome, TagWrite};

/// Why a publish, promotion, approval or version query stopped.
#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    /// Bad input: flags, objects or Pipeline. Nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// A gate refused the promotion. Nothing was written.
    #[error("promotion refused: {0}")]
    Refused(String),
    /// An immutable tag already points at another digest. Nothing was written.
    #[error("{0}")]
    Immutable(String),
    #[error(transparent)]
    Registry(#[from] ferry_registry::RegistryError),
    #[error(transparent)]
    Git(#[from] ferry_git::GitError),
    /// A release record or approval in Git that cannot be read (the error names the file).
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Anything else (I/O, a push rejected on every attempt, a digest that did not verify).
    #[error("{0}")]
    Failed(String),
    /// The blocking task doing the Git work panicked or was cancelled (an internal failure).
    #[error("a promotion task failed")]
    Task(#[from] tokio::task::JoinError),
}

impl PromoteError {
    /// True when the input was wrong (exit status 2 in the CLI), including a malformed record
    /// or approval in Git; refusals are status 1.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            PromoteError::Invalid(_) | PromoteError::Record(RecordError::Parse { .. })
        )
    }
}
