//! `image.toolkit.fluxcd.io/v1`: ImageRepository, ImagePolicy, ImageUpdateAutomation.
//!
//! Field names, defaults and enums follow the v1 CRDs (see `flux-spec.md` §2.1, §3.1, §4.1).
//! Unknown fields are ignored so newer Flux manifests still load.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::GoDuration;
use crate::git::GitRepositoryRef;
use crate::meta::{LocalObjectReference, NamespacedObjectReference};
use crate::object::{Object, Spec};
use crate::selector::LabelSelector;

/// API version of the image automation kinds.
pub const IMAGE_API_VERSION: &str = "image.toolkit.fluxcd.io/v1";

/// The exclusion list used when `spec.exclusionList` is absent or empty.
pub const DEFAULT_EXCLUSION_LIST: &[&str] = &["^.*\\.sig$"];

/// An `ImageRepository`.
pub type ImageRepository = Object<ImageRepositorySpec>;
/// An `ImagePolicy`.
pub type ImagePolicy = Object<ImagePolicySpec>;
/// An `ImageUpdateAutomation`.
pub type ImageUpdateAutomation = Object<ImageUpdateAutomationSpec>;

/// Registry provider for automatic login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageProvider {
    /// Secret/ServiceAccount based credentials.
    #[default]
    Generic,
    /// Amazon ECR.
    Aws,
    /// Azure ACR.
    Azure,
    /// Google Artifact/Container Registry.
    Gcp,
}

/// `ImageRepository.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRepositorySpec {
    /// Image repository without tag, e.g. `ghcr.io/org/app` (required).
    #[serde(default)]
    pub image: String,
    /// Scan period (required).
    #[serde(default)]
    pub interval: GoDuration,
    /// Scan timeout; defaults to `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    /// docker-registry Secret with credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// ServiceAccount whose pull secrets are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Secret with TLS client cert/key and/or CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// Secret with proxy `address`, `username`, `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// Plain-HTTP registry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Tag exclusion regexes. `None` (absent) and `Some(vec![])` both mean the default list;
    /// a non-empty list **replaces** the default. See [`ImageRepositorySpec::exclusion_list`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusion_list: Option<Vec<String>>,
    /// Which namespaces' ImagePolicies may use this repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_from: Option<AccessFrom>,
    /// Automatic registry login provider; `None` means `generic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ImageProvider>,
    /// Skip reconciliation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
}

impl ImageRepositorySpec {
    /// The effective exclusion list (Flux `GetExclusionList`): the user's list when non-empty,
    /// else [`DEFAULT_EXCLUSION_LIST`].
    pub fn exclusion_list(&self) -> Vec<String> {
        match &self.exclusion_list {
            Some(list) if !list.is_empty() => list.clone(),
            _ => DEFAULT_EXCLUSION_LIST
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    /// The effective timeout (Flux `GetTimeout`): `timeout`, else `interval`, at least 1s.
    pub fn effective_timeout(&self) -> Duration {
        let t = self.timeout.unwrap_or(self.interval).0;
        t.max(Duration::from_secs(1))
    }

    /// The effective provider (`generic` when unset).
    pub fn provider(&self) -> ImageProvider {
        self.provider.unwrap_or_default()
    }
}

/// `accessFrom`: ACL for cross-namespace ImagePolicies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessFrom {
    /// Namespaces matching any selector are allowed.
    #[serde(default)]
    pub namespace_selectors: Vec<NamespaceSelector>,
}

/// One `accessFrom.namespaceSelectors[]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Labels the policy's namespace must carry (empty/absent matches all namespaces).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

/// Sort order for alphabetical and numerical policies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending: the latest is the greatest.
    #[default]
    Asc,
    /// Descending: the latest is the smallest.
    Desc,
}

/// When to resolve and record the digest of the selected tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DigestReflectionPolicy {
    /// Re-resolve every `interval`.
    Always,
    /// Resolve once per tag.
    IfNotPresent,
    /// Never resolve.
    #[default]
    Never,
}

/// `ImagePolicy.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicySpec {
    /// The ImageRepository (name required; namespace defaults to the policy's).
    #[serde(default)]
    pub image_repository_ref: NamespacedObjectReference,
    /// The policy choice (required object).
    #[serde(default)]
    pub policy: ImagePolicyChoice,
    /// Tag filter applied before the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_tags: Option<TagFilter>,
    /// Digest reflection; `Never` when absent.
    #[serde(default)]
    pub digest_reflection_policy: DigestReflectionPolicy,
    /// Digest refresh period (only meaningful with `Always`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,
    /// Skip reconciliation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
}

/// `spec.policy`: a union with no one-of validation. Kept as three options; the engine picks
/// the first set one in Flux's order (semver, alphabetical, numerical) and reports none set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicyChoice {
    /// `semver.range`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<SemVerPolicy>,
    /// `alphabetical.order`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alphabetical: Option<AlphabeticalPolicy>,
    /// `numerical.order`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerical: Option<NumericalPolicy>,
}

/// `policy.semver`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SemVerPolicy {
    /// Masterminds v3 constraint (required).
    #[serde(default)]
    pub range: String,
}

/// `policy.alphabetical`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlphabeticalPolicy {
    /// Order, `asc` by default.
    #[serde(default)]
    pub order: SortOrder,
}

/// `policy.numerical`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumericalPolicy {
    /// Order, `asc` by default.
    #[serde(default)]
    pub order: SortOrder,
}

/// `filterTags`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagFilter {
    /// Regex a tag must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Replacement template (e.g. `$ts`) producing the value the policy compares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<String>,
}

/// `ImageUpdateAutomation.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpdateAutomationSpec {
    /// The Git source (name required; kind `GitRepository`).
    #[serde(default)]
    pub source_ref: CrossNamespaceSourceReference,
    /// Checkout/commit/push settings (absent ⇒ the engine reports `InvalidSourceConfiguration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSpec>,
    /// Period (required).
    #[serde(default)]
    pub interval: GoDuration,
    /// Which ImagePolicies to consider; `None` means all in the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_selector: Option<LabelSelector>,
    /// Update strategy; the CRD defaults an absent field to `{strategy: Setters}`, and so does
    /// Ferry when loading.
    #[serde(default = "default_update", skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateStrategy>,
    /// Skip reconciliation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
}

impl Default for ImageUpdateAutomationSpec {
    fn default() -> Self {
        ImageUpdateAutomationSpec {
            source_ref: CrossNamespaceSourceReference::default(),
            git: None,
            interval: GoDuration::default(),
            policy_selector: None,
            update: default_update(),
            suspend: false,
        }
    }
}

fn default_update() -> Option<UpdateStrategy> {
    Some(UpdateStrategy::default())
}

fn default_source_kind() -> String {
    "GitRepository".to_string()
}

/// `sourceRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceSourceReference {
    /// Optional API version of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind; only `GitRepository` (the default) is accepted.
    #[serde(default = "default_source_kind")]
    pub kind: String,
    /// Name (required).
    #[serde(default)]
    pub name: String,
    /// Namespace; `None` means the automation's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl Default for CrossNamespaceSourceReference {
    fn default() -> Self {
        CrossNamespaceSourceReference {
            api_version: None,
            kind: default_source_kind(),
            name: String::new(),
            namespace: None,
        }
    }
}

impl CrossNamespaceSourceReference {
    /// The referent's namespace, defaulting to `own_namespace`.
    pub fn namespace_or<'a>(&'a self, own_namespace: &'a str) -> &'a str {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => own_namespace,
        }
    }
}

/// `git`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitSpec {
    /// Overrides the GitRepository's ref for the checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<GitCheckoutSpec>,
    /// Commit settings (author email required).
    #[serde(default)]
    pub commit: CommitSpec,
    /// Push settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSpec>,
}

/// `git.checkout`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCheckoutSpec {
    /// The ref to check out (required when `checkout` is set).
    #[serde(default, rename = "ref")]
    pub reference: GitRepositoryRef,
}

/// `git.commit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitSpec {
    /// Author and committer.
    #[serde(default)]
    pub author: CommitUser,
    /// Signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<SigningKey>,
    /// Go text/template for the message; Flux's default text when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template: Option<String>,
    /// `.Values` for the template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub message_template_values: BTreeMap<String, String>,
}

/// `git.commit.author`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitUser {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email (required).
    #[serde(default)]
    pub email: String,
}

/// Signature format for commit signing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningKeyType {
    /// OpenPGP (`git.asc` + optional `passphrase`).
    #[default]
    Gpg,
    /// SSH (`identity` + optional `password`).
    Ssh,
}

/// `git.commit.signingKey`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    /// Secret holding the key.
    #[serde(default)]
    pub secret_ref: LocalObjectReference,
    /// Key type; `gpg` when `None`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub key_type: Option<SigningKeyType>,
}

/// `git.push`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSpec {
    /// Push target branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Extra refspec pushed after the branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refspec: Option<String>,
    /// `git push -o` options.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// The update strategy name (the CRD allows only `Setters`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UpdateStrategyName {
    /// Rewrite fields marked with `{"$imagepolicy": ...}` comments.
    #[default]
    Setters,
}

/// `update`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateStrategy {
    /// Strategy (`Setters`).
    #[serde(default)]
    pub strategy: UpdateStrategyName,
    /// Directory, relative to the repository root, to update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Spec for ImageRepositorySpec {
    const KIND: &'static str = "ImageRepository";
    const API_VERSION: &'static str = IMAGE_API_VERSION;
}

impl Spec for ImagePolicySpec {
    const KIND: &'static str = "ImagePolicy";
    const API_VERSION: &'static str = IMAGE_API_VERSION;
}

impl Object<ImagePolicySpec> {
    /// The ImageRepository this policy reads: `imageRepositoryRef`, its namespace defaulting to
    /// the policy's.
    pub fn repository_key(&self) -> ferry_core::ObjectKey {
        let r = &self.spec.image_repository_ref;
        ferry_core::ObjectKey::new(
            ferry_core::Kind::ImageRepository,
            r.namespace_or(self.namespace()),
            &r.name,
        )
    }
}

impl Object<ImageUpdateAutomationSpec> {
    /// Whether this automation writes `policy`'s setters: same namespace, and `policySelector`
    /// (none = every policy) matches the policy's labels — as Flux lists them.
    pub fn selects(&self, policy: &ImagePolicy) -> bool {
        policy.namespace() == self.namespace()
            && self
                .spec
                .policy_selector
                .as_ref()
                .is_none_or(|s| s.matches(&policy.metadata.labels))
    }
}

impl Spec for ImageUpdateAutomationSpec {
    const KIND: &'static str = "ImageUpdateAutomation";
    const API_VERSION: &'static str = IMAGE_API_VERSION;
}
