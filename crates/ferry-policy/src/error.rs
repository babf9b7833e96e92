//! The error type of policy construction and evaluation, with Flux's message texts.

use thiserror::Error;

use crate::semver::ConstraintError;

/// Flux condition reason for a policy that can never succeed until its spec changes.
pub const REASON_INVALID_POLICY: &str = "InvalidPolicy";
/// Flux condition reason for a retried evaluation failure.
pub const REASON_FAILURE: &str = "Failure";
/// Flux condition reason when the tag store has nothing for the repository yet.
pub const REASON_DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
/// Flux condition reason for a failed ImageRepository scan.
pub const REASON_READ_OPERATION_FAILED: &str = "ReadOperationFailed";

/// Errors of building or applying an image policy. `Display` matches Flux's texts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// No `semver`, `alphabetical` or `numerical` choice is set.
    #[error("invalid policy: given ImagePolicyChoice object is invalid")]
    NoPolicyChoice,
    /// `policy.semver.range` is not a valid Masterminds constraint.
    #[error("invalid policy: semver parse error: {source}")]
    InvalidRange {
        /// The range as written in the spec.
        range: String,
        /// The grammar error.
        source: ConstraintError,
    },
    /// `order` (after upper-casing) is neither `ASC` nor `DESC`.
    #[error("invalid policy: invalid order argument provided: '{0}', must be one of: ASC, DESC")]
    InvalidOrder(String),
    /// `filterTags.pattern` does not compile as a Go RE2 expression.
    #[error("failed to filter tags: invalid regular expression pattern '{pattern}': {message}")]
    InvalidFilterPattern {
        /// The pattern as written in the spec.
        pattern: String,
        /// The compiler's explanation.
        message: String,
    },
    /// The policer received no candidates (no tag, or no tag matched `filterTags`).
    #[error("version list argument cannot be empty")]
    EmptyList,
    /// SemVer: no candidate parses and satisfies the range.
    #[error("unable to determine latest version from provided list")]
    NoMatch,
    /// Numerical: a candidate is not a Go float; the whole policy fails.
    #[error("failed to parse invalid numeric value '{0}'")]
    InvalidNumeric(String),
    /// The tag store holds no tags for the repository.
    #[error("no tags in database")]
    NoTagsInDatabase,
    /// An ImageRepository `exclusionList` entry does not compile.
    #[error("failed to compile regex {pattern}: {message}")]
    InvalidExclusion {
        /// The pattern as written in the spec.
        pattern: String,
        /// The compiler's explanation.
        message: String,
    },
}

impl PolicyError {
    /// The Flux condition reason this error maps to.
    pub fn reason(&self) -> &'static str {
        match self {
            PolicyError::NoPolicyChoice
            | PolicyError::InvalidRange { .. }
            | PolicyError::InvalidOrder(_)
            | PolicyError::InvalidFilterPattern { .. } => REASON_INVALID_POLICY,
            PolicyError::EmptyList | PolicyError::NoMatch | PolicyError::InvalidNumeric(_) => {
                REASON_FAILURE
            }
            PolicyError::NoTagsInDatabase => REASON_DEPENDENCY_NOT_READY,
            PolicyError::InvalidExclusion { .. } => REASON_READ_OPERATION_FAILED,
        }
    }

    /// True when retrying cannot help until the spec changes (Flux marks these Stalled).
    pub fn is_stalling(&self) -> bool {
        self.reason() == REASON_INVALID_POLICY
    }
}
