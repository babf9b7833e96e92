//! The error type of every git operation, and the redaction applied to everything it carries.

use std::path::PathBuf;
use std::time::Duration;

/// What a failed git command most likely means, read from its stderr.
///
/// Lets the engine decide between "retry later", "fix the credentials" and "fix the spec".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// Authentication or authorization failed (bad password, unknown key, 401/403).
    Auth,
    /// The server's identity could not be verified (TLS CA, SSH known_hosts).
    HostVerification,
    /// Connection refused/reset, DNS, timeouts, 5xx: worth retrying.
    Transient,
    /// The repository or ref does not exist on the remote.
    NotFound,
    /// Anything else.
    Other,
}

/// The error returned by every operation in this crate.
///
/// Every string in it has been through [`redact`]: URLs carry no userinfo, and known secrets
/// are replaced by `***`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// `git <subcommand>` ran and exited non-zero.
    #[error(
        "git {subcommand} failed (exit {code}){}: {stderr}{}",
        url_suffix(url),
        auth_hint(*kind, subcommand)
    )]
    Command {
        /// The git subcommand (`fetch`, `push`, ...).
        subcommand: String,
        /// Exit code; -1 when killed by a signal.
        code: i32,
        /// The remote URL involved, redacted; empty for local commands.
        url: String,
        /// Trimmed, redacted stderr.
        stderr: String,
        /// Classification of the failure.
        kind: FailureKind,
    },
    /// `git <subcommand>` exceeded the remote's timeout and was killed.
    #[error("git {subcommand} timed out after {after:?}{}", url_suffix(url))]
    Timeout {
        /// The git subcommand.
        subcommand: String,
        /// The remote URL involved, redacted.
        url: String,
        /// The limit that was exceeded.
        after: Duration,
    },
    /// The git binary (or gpg/ssh-keygen) could not be started.
    #[error("could not run {program}: {source}")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file or directory of the clone cache could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`create`, `lock`, `write`, ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The branch does not exist on the remote.
    #[error("branch '{branch}' not found on {url}")]
    BranchNotFound {
        /// The redacted remote URL.
        url: String,
        /// The missing branch.
        branch: String,
    },
    /// A revision could not be resolved in the local clone.
    #[error("unknown revision '{rev}' in the clone of {url}")]
    UnknownRevision {
        /// The revision asked for.
        rev: String,
        /// The redacted remote URL.
        url: String,
    },
    /// Caller input that git would misinterpret (bad branch name, trailer key, refspec).
    #[error("invalid {what}: {message}")]
    InvalidInput {
        /// Which input (`branch`, `trailer`, `refspec`, `url`, ...).
        what: &'static str,
        /// Why it is rejected.
        message: String,
    },
    /// A signing key could not be imported or used.
    #[error("commit signing ({format}) failed: {message}")]
    Signing {
        /// `gpg` or `ssh`.
        format: &'static str,
        /// Redacted details.
        message: String,
    },
    /// Output of a git command was not in the expected format.
    #[error("unexpected output from git {subcommand}: {message}")]
    Parse {
        /// The git subcommand.
        subcommand: String,
        /// What was wrong.
        message: String,
    },
}

fn url_suffix(url: &str) -> String {
    if url.is_empty() {
        String::new()
    } else {
        format!(" for {url}")
    }
}

impl GitError {
    /// The failure classification (for `Command`), `Transient` for timeouts, else `Other`.
    pub fn kind(&self) -> FailureKind {
        match self {
            GitError::Command { kind, .. } => *kind,
            GitError::Timeout { .. } => FailureKind::Transient,
            GitError::BranchNotFound { .. } => FailureKind::NotFound,
            _ => FailureKind::Other,
        }
    }

    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind() == FailureKind::Transient
    }

    /// True when the credentials (or host verification material) are the problem.
    pub fn is_auth(&self) -> bool {
        matches!(
            self.kind(),
            FailureKind::Auth | FailureKind::HostVerification
        )
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        GitError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: &'static str, message: impl Into<String>) -> Self {
        GitError::InvalidInput {
            what,
            message: message.into(),
        }
    }
}

/// Reads a failed command's stderr and classifies it.
/// What to check when the server refused the credentials; a push names write access, since a
/// read-only credential fetches fine and fails only there.
fn auth_hint(kind: FailureKind, subcommand: &str) -> &'static str {
    match (kind, subcommand) {
        (FailureKind::Auth, "push") => {
            " (authentication refused for the push: the credential may be read-only; it needs write access to this repository)"
        }
        (FailureKind::Auth, _) => {
            " (authentication refused: check the credentials in the Secret the GitRepository names)"
        }
        _ => "",
    }
}

pub(crate) fn classify(stderr: &str) -> FailureKind {
    let s = stderr.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| s.contains(n));
    if any(&[
        "host key verification failed",
        "server certificate verification failed",
        "ssl certificate problem",
        "certificate verify failed",
        "remote host identification has changed",
    ]) {
        FailureKind::HostVerification
    } else if any(&[
        "authentication failed",
        "permission denied",
        "could not read username",
        "could not read password",
        "the requested url returned error: 401",
        "the requested url returned error: 403",
        "invalid username or password",
        "access denied",
    ]) {
        FailureKind::Auth
    } else if any(&[
        "repository not found",
        "does not appear to be a git repository",
        "the requested url returned error: 404",
        "couldn't find remote ref",
        "no such repository",
    ]) {
        FailureKind::NotFound
    } else if any(&[
        "could not resolve host",
        "connection refused",
        "connection reset",
        "connection timed out",
        "operation timed out",
        "timed out",
        "the remote end hung up unexpectedly",
        "early eof",
        "the requested url returned error: 5",
        "connection closed by",
        "failed to connect",
        "unable to connect",
        "temporary failure",
    ]) {
        FailureKind::Transient
    } else {
        FailureKind::Other
    }
}

/// Removes credentials from text: the userinfo of every `scheme://user:pass@host` URL becomes
/// `***`, and each non-empty string in `secrets` is replaced by `***`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = redact_url_userinfo(text);
    for s in secrets {
        // Very short "secrets" would shred unrelated text; credentials are never this short.
        if s.len() >= 3 {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// `https://user:pw@host/x` → `https://***@host/x`, for every URL in the text.
pub fn redact_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace, quote or end of text.
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"' || c == '>')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_everywhere() {
        let t = "fatal: unable to access 'https://bob:s3cret@h:8443/r.git/': 401 and http://x@y/z";
        let r = redact_url_userinfo(t);
        assert_eq!(
            r,
            "fatal: unable to access 'https://***@h:8443/r.git/': 401 and http://***@y/z"
        );
        assert_eq!(redact_url_userinfo("no urls here"), "no urls here");
        assert_eq!(redact_url_userinfo("file:///tmp/a@b"), "file:///tmp/a@b");
    }

    #[test]
    fn redacts_secrets() {
        let r = redact("token=abcdef and abcdef", &["abcdef".into(), "".into()]);
        assert_eq!(r, "token=*** and ***");
    }

    #[test]
    fn classifies() {
        assert_eq!(
            classify("fatal: Authentication failed for 'http://h/x'"),
            FailureKind::Auth
        );
        assert_eq!(
            classify("Host key verification failed."),
            FailureKind::HostVerification
        );
        assert_eq!(
            classify("fatal: unable to access: Failed to connect to 127.0.0.1 port 1"),
            FailureKind::Transient
        );
        assert_eq!(
            classify("fatal: couldn't find remote ref refs/heads/nope"),
            FailureKind::NotFound
        );
    }
}
