//! Load errors: each names the file, the line and (when known) the object.

use std::fmt;

use crate::meta::{ObjectRef, Source};

/// What went wrong (without the location, which [`LoadError`] carries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadErrorKind {
    /// A file or directory could not be read.
    #[error("cannot read: {0}")]
    Io(String),
    /// A file holding a Flux/Ferry object is not UTF-8.
    #[error("file is not valid UTF-8")]
    NotUtf8,
    /// YAML syntax error in a document holding a supported kind.
    #[error("YAML syntax error: {0}")]
    Syntax(String),
    /// `${name}` without a value and without a default.
    #[error("unresolved variable ${{{name}}}")]
    UnresolvedVariable {
        /// Variable name.
        name: String,
    },
    /// A `${...}` expression Ferry cannot evaluate.
    #[error("bad substitution {expr}: {reason}")]
    BadSubstitution {
        /// The expression as written (truncated).
        expr: String,
        /// Why.
        reason: String,
    },
    /// A field is missing, has the wrong type or an invalid value.
    #[error("{0}")]
    Invalid(String),
    /// The same kind/namespace/name is defined twice.
    #[error("duplicate object; first defined at {first}")]
    Duplicate {
        /// Where the first definition is.
        first: Source,
    },
    /// A supported kind with an apiVersion Ferry does not accept.
    #[error("apiVersion {found} is not supported for {kind}; use {expected}")]
    UnsupportedVersion {
        /// Kind.
        kind: String,
        /// apiVersion as written.
        found: String,
        /// The accepted apiVersion.
        expected: String,
    },
    /// A `--var` argument or vars file line is invalid.
    #[error("{0}")]
    Vars(String),
}

/// One problem found while loading.
///
/// Displays as `file:line: Kind ns/name: message` (the object part is omitted when unknown,
/// the line when 0). Unresolved variables read
/// `file:line: unresolved variable ${x} in Kind ns/name; pass --var x=VALUE or --vars-file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// Path relative to the loaded root (or as given, for vars files), `/`-separated.
    pub file: String,
    /// 1-based line; 0 when not applicable.
    pub line: usize,
    /// The object concerned, when known.
    pub object: Option<ObjectRef>,
    /// The problem.
    pub kind: LoadErrorKind,
}

impl LoadError {
    /// Builds an error.
    pub fn new(
        file: impl Into<String>,
        line: usize,
        object: Option<ObjectRef>,
        kind: LoadErrorKind,
    ) -> Self {
        LoadError {
            file: file.into(),
            line,
            object,
            kind,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: ", self.file, self.line)?;
        } else {
            write!(f, "{}: ", self.file)?;
        }
        match (&self.kind, &self.object) {
            (LoadErrorKind::UnresolvedVariable { name }, object) => {
                write!(f, "unresolved variable ${{{name}}}")?;
                if let Some(o) = object {
                    write!(f, " in {o}")?;
                }
                write!(f, "; pass --var {name}=VALUE or --vars-file")
            }
            (kind, Some(o)) => write!(f, "{o}: {kind}"),
            (kind, None) => write!(f, "{kind}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// All problems found by one load, in file order. Displays one error per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl LoadErrors {
    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates the errors.
    pub fn iter(&self) -> std::slice::Iter<'_, LoadError> {
        self.0.iter()
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

impl IntoIterator for LoadErrors {
    type Item = LoadError;
    type IntoIter = std::vec::IntoIter<LoadError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a LoadErrors {
    type Item = &'a LoadError;
    type IntoIter = std::slice::Iter<'a, LoadError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<LoadError> for LoadErrors {
    fn from(e: LoadError) -> Self {
        LoadErrors(vec![e])
    }
}
