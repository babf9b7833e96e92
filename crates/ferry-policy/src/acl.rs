//! Cross-namespace access from an ImagePolicy to an ImageRepository (`spec.accessFrom`,
//! fluxcd/pkg `runtime/acl`).

use std::collections::BTreeMap;

use thiserror::Error;

/// Flux condition reason for a denied reference.
pub const REASON_ACCESS_DENIED: &str = "AccessDenied";

/// `spec.accessFrom` of an ImageRepository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessFrom {
    /// `namespaceSelectors[].matchLabels`; selectors are ORed, labels within one are ANDed,
    /// and an empty map matches every namespace.
    pub namespace_selectors: Vec<BTreeMap<String, String>>,
}

/// Why the policy may not read the repository. `Display` matches Flux.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AclError {
    /// The controller runs with `--no-cross-namespace-refs`.
    #[error(
        "cannot access 'ImageRepository/{namespace}/{name}', cross-namespace references have been blocked"
    )]
    CrossNamespaceBlocked {
        /// Repository namespace.
        namespace: String,
        /// Repository name.
        name: String,
    },
    /// The repository has no `accessFrom`.
    #[error("'{namespace}/{name}' can't be accessed due to missing ACL labels on 'accessFrom'")]
    MissingAccessFrom {
        /// Repository namespace.
        namespace: String,
        /// Repository name.
        name: String,
    },
    /// No selector matches the policy namespace's labels.
    #[error(
        "'{namespace}/{name}' can't be accessed due to ACL labels mismatch on namespace '{policy_namespace}'"
    )]
    LabelsMismatch {
        /// Repository namespace.
        namespace: String,
        /// Repository name.
        name: String,
        /// The policy's namespace.
        policy_namespace: String,
    },
}

impl AclError {
    /// Always `AccessDenied`.
    pub fn reason(&self) -> &'static str {
        REASON_ACCESS_DENIED
    }
}

/// Decides whether a policy in `policy_ns` (whose namespace carries `policy_ns_labels`) may
/// use the repository `repo_ns/repo_name`. Same namespace is always allowed.
pub fn check_access(
    policy_ns: &str,
    repo_ns: &str,
    repo_name: &str,
    access_from: Option<&AccessFrom>,
    policy_ns_labels: &BTreeMap<String, String>,
    no_cross_namespace_refs: bool,
) -> Result<(), AclError> {
    if repo_ns.is_empty() || repo_ns == policy_ns {
        return Ok(());
    }
    let (namespace, name) = (repo_ns.to_owned(), repo_name.to_owned());
    if no_cross_namespace_refs {
        return Err(AclError::CrossNamespaceBlocked { namespace, name });
    }
    let Some(acl) = access_from else {
        return Err(AclError::MissingAccessFrom { namespace, name });
    };
    if acl
        .namespace_selectors
        .iter()
        .any(|sel| labels_match(sel, policy_ns_labels))
    {
        return Ok(());
    }
    Err(AclError::LabelsMismatch {
        namespace,
        name,
        policy_namespace: policy_ns.to_owned(),
    })
}

/// `matchLabels` semantics: every selector entry present with the same value.
pub fn labels_match(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
