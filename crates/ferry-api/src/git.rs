//! `source.toolkit.fluxcd.io/v1` GitRepository (only the fields Ferry uses).

use serde::{Deserialize, Serialize};

use crate::duration::GoDuration;
use crate::meta::LocalObjectReference;
use crate::object::{Object, Spec};

/// API version of GitRepository.
pub const SOURCE_API_VERSION: &str = "source.toolkit.fluxcd.io/v1";

/// A `GitRepository`.
pub type GitRepository = Object<GitRepositorySpec>;

/// Git provider for authentication.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GitProvider {
    /// Secret based credentials.
    #[default]
    Generic,
    /// Azure DevOps workload identity.
    Azure,
    /// GitHub App.
    Github,
}

/// `GitRepository.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositorySpec {
    /// Repository URL (required).
    #[serde(default)]
    pub url: String,
    /// Ref to check out.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<GitRepositoryRef>,
    /// Secret with credentials (`username`/`password`, `identity`/`known_hosts`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Reconcile period (required).
    #[serde(default)]
    pub interval: GoDuration,
    /// Git operation timeout (Flux default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    /// Authentication provider; `generic` when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<GitProvider>,
    /// Secret with proxy settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// `.sourceignore`-style patterns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,
}

impl GitRepositorySpec {
    /// Effective timeout: `timeout`, else Flux's default of 60 seconds.
    pub fn effective_timeout(&self) -> std::time::Duration {
        self.timeout
            .map_or(std::time::Duration::from_secs(60), |t| t.0)
    }
}

/// A Git reference (`GitRepository.spec.ref`, `ImageUpdateAutomation.spec.git.checkout.ref`).
/// Precedence when several are set: commit > name > tag > semver > branch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRepositoryRef {
    /// Branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// SemVer range over tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// Full reference name, e.g. `refs/heads/main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Commit SHA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl GitRepositoryRef {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.branch.is_none()
            && self.tag.is_none()
            && self.semver.is_none()
            && self.name.is_none()
            && self.commit.is_none()
    }
}

impl Spec for GitRepositorySpec {
    const KIND: &'static str = "GitRepository";
    const API_VERSION: &'static str = SOURCE_API_VERSION;
}
