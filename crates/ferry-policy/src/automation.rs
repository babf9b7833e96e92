//! ImageUpdateAutomation decisions that need no I/O: `observedPolicies` change detection,
//! policy selection, and checkout/push branch resolution (Flux IAC).

use std::collections::BTreeMap;
use std::time::Duration;

use thiserror::Error;

use crate::acl::labels_match;
use crate::reflect::ImageRef;

/// `status.observedPolicies`: policy name → its `latestRef`.
pub type ObservedPolicies = BTreeMap<String, ImageRef>;

/// True when a full sync is needed: different size, a key missing, or a value differing.
pub fn observed_policies_changed(previous: &ObservedPolicies, current: &ObservedPolicies) -> bool {
    previous != current
}

/// What `getPolicies` needs to know about an ImagePolicy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyListing<'a> {
    /// Policy name.
    pub name: &'a str,
    /// Policy namespace.
    pub namespace: &'a str,
    /// Policy labels.
    pub labels: &'a BTreeMap<String, String>,
    /// `status.latestRef` (policies without one are ignored).
    pub latest_ref: Option<&'a ImageRef>,
}

/// Policies an automation in `namespace` considers: same namespace, matching the selector's
/// `matchLabels` (`None` = all), with a `latestRef`. Ready state and suspension are NOT
/// checked, as in Flux.
pub fn select_policies(
    namespace: &str,
    selector: Option<&BTreeMap<String, String>>,
    policies: &[PolicyListing<'_>],
) -> ObservedPolicies {
    policies
        .iter()
        .filter(|p| p.namespace == namespace)
        .filter(|p| selector.is_none_or(|s| labels_match(s, p.labels)))
        .filter_map(|p| p.latest_ref.map(|r| (p.name.to_owned(), r.clone())))
        .collect()
}

/// A git reference (`spec.git.checkout.ref` or `GitRepository.spec.ref`); empty = unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitRef {
    /// Branch name.
    pub branch: String,
    /// Tag name.
    pub tag: String,
    /// Semver range over tags.
    pub semver: String,
    /// Full reference name (`refs/...`).
    pub name: String,
    /// Commit SHA.
    pub commit: String,
}

/// The automation's `spec.git` parts that matter here.
#[derive(Debug, Clone, Copy, Default)]
pub struct GitSpecView<'a> {
    /// `spec.git.checkout.ref` (present iff `checkout` is set).
    pub checkout_ref: Option<&'a GitRef>,
    /// `spec.git.push.branch` (empty = unset).
    pub push_branch: &'a str,
}

/// The referenced GitRepository's relevant spec.
#[derive(Debug, Clone, Default)]
pub struct GitRepositoryView {
    /// `spec.url`.
    pub url: String,
    /// `spec.ref`.
    pub reference: Option<GitRef>,
    /// `spec.timeout`.
    pub timeout: Option<Duration>,
}

/// Outcome of looking the GitRepository up (done by the caller).
#[derive(Debug, Clone, Copy)]
pub enum GitRepoLookup<'a> {
    /// Found.
    Found(&'a GitRepositoryView),
    /// Does not exist.
    NotFound {
        /// Namespace looked in.
        namespace: &'a str,
        /// Name looked for.
        name: &'a str,
    },
    /// Any other lookup failure.
    Failed(&'a str),
}

/// Resolved git settings of an automation run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitConfig {
    /// What to clone; `None` = the default branch `master`.
    pub checkout_ref: Option<GitRef>,
    /// Branch to push to.
    pub push_branch: String,
    /// Whether the push branch differs from the checkout branch (push branch workflow).
    pub switch_branch: bool,
    /// Clone/push timeout.
    pub timeout: Duration,
}

/// The branch cloned when no checkout ref exists (go-git default).
pub const DEFAULT_BRANCH: &str = "master";
/// Timeout when the GitRepository sets none.
pub const DEFAULT_GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the git configuration cannot be resolved. `Display` matches Flux where known.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GitConfigError {
    /// The GitRepository does not exist.
    #[error(
        "referenced git repository does not exist: GitRepository '{namespace}/{name}' not found"
    )]
    NotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The lookup failed otherwise.
    #[error("failed to get git repository: {0}")]
    Lookup(String),
    /// The GitRepository URL does not parse (credentials in it are redacted).
    #[error("invalid git repository URL '{url}': {reason}")]
    InvalidUrl {
        /// Redacted URL.
        url: String,
        /// Parse problem.
        reason: String,
    },
    /// Neither `push.branch` nor a checkout branch exists.
    #[error(
        "push spec not provided, and cannot be inferred from .spec.git.checkout.ref or GitRepository .spec.ref"
    )]
    NoPushBranch,
}

/// Flux `buildGitConfig` + `configurePush`: checkout ref = `spec.git.checkout.ref`, else the
/// GitRepository's `spec.ref`, else none (`master`); push branch = `push.branch`, else the
/// checkout branch; `switch_branch` when the push branch differs from the checkout branch
/// (or from `master` without a checkout ref); timeout = GitRepository's or 1m.
pub fn resolve_git_config(
    git: &GitSpecView<'_>,
    repo: GitRepoLookup<'_>,
) -> Result<GitConfig, GitConfigError> {
    let repo = match repo {
        GitRepoLookup::Found(r) => r,
        GitRepoLookup::NotFound { namespace, name } => {
            return Err(GitConfigError::NotFound {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            });
        }
        GitRepoLookup::Failed(e) => return Err(GitConfigError::Lookup(e.to_owned())),
    };
    validate_git_url(&repo.url).map_err(|reason| GitConfigError::InvalidUrl {
        url: redact_url(&repo.url),
        reason: reason.to_owned(),
    })?;
    let checkout_ref = git.checkout_ref.cloned().or_else(|| repo.reference.clone());
    let (push_branch, switch_branch) = if !git.push_branch.is_empty() {
        let from = checkout_ref
            .as_ref()
            .map_or(DEFAULT_BRANCH, |r| r.branch.as_str());
        (git.push_branch.to_owned(), git.push_branch != from)
    } else if let Some(r) = checkout_ref.as_ref().filter(|r| !r.branch.is_empty()) {
        (r.branch.clone(), false)
    } else {
        return Err(GitConfigError::NoPushBranch);
    };
    Ok(GitConfig {
        checkout_ref,
        push_branch,
        switch_branch,
        timeout: repo.timeout.unwrap_or(DEFAULT_GIT_TIMEOUT),
    })
}

/// The subset of Go `url.Parse` failures a GitRepository URL can hit.
fn validate_git_url(url: &str) -> Result<(), &'static str> {
    if url.bytes().any(|c| c < 0x20 || c == 0x7f) {
        return Err("net/url: invalid control character in URL");
    }
    let scheme_end = url
        .bytes()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')));
    match scheme_end {
        Some(0) if url.starts_with(':') => Err("missing protocol scheme"),
        Some(i) if url.as_bytes()[i] == b':' && url.as_bytes()[0].is_ascii_alphabetic() => Ok(()),
        _ => {
            // No scheme: a colon before the first slash is an error in Go.
            let first = url.split('/').next().unwrap_or_default();
            if first.contains(':') {
                Err("first path segment in URL cannot contain colon")
            } else {
                Ok(())
            }
        }
    }
}

/// Replaces a userinfo password with `***` for messages.
fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let auth_end = rest.find('/').unwrap_or(rest.len());
    match rest[..auth_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{}://{}:***@{}", &url[..scheme_end], user, &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(validate_git_url("https://example.com/org/repo").is_ok());
        assert!(validate_git_url("ssh://git@example.com/org/repo").is_ok());
        assert_eq!(
            validate_git_url("://example.com"),
            Err("missing protocol scheme")
        );
        assert!(validate_git_url("git@example.com:org/repo").is_err());
        assert_eq!(redact_url("https://u:secret@h/x"), "https://u:***@h/x");
    }
}
