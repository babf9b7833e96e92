//! Ferry's own `ferry.dev/v1alpha1` Pipeline and the core `v1` Namespace.

use serde::{Deserialize, Serialize};

use crate::duration::GoDuration;
use crate::meta::{NamespacedObjectReference, ObjectMeta, ObjectRef, Source};
use crate::object::{Object, Spec};

/// API version of Ferry's kinds.
pub const FERRY_API_VERSION: &str = "ferry.dev/v1alpha1";

/// A Ferry `Pipeline`: the ordered promotion stages of one image.
pub type Pipeline = Object<PipelineSpec>;

/// `Pipeline.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    /// The ImageRepository whose image is promoted (name required).
    #[serde(default)]
    pub image_repository_ref: NamespacedObjectReference,
    /// Stages in promotion order (at least one).
    #[serde(default)]
    pub stages: Vec<Stage>,
}

/// One promotion stage (environment).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    /// Stage name, unique within the pipeline (required).
    #[serde(default)]
    pub name: String,
    /// Namespace of the stage's ImagePolicy (required).
    #[serde(default)]
    pub namespace: String,
    /// Name of the stage's ImagePolicy (required).
    #[serde(default)]
    pub policy: String,
    /// Template for the tag written when promoting into this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_template: Option<String>,
    /// Moving alias tag (e.g. `production`) retagged on promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Conditions for promoting into this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<Gates>,
}

/// Promotion gates of a stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gates {
    /// Minimum time the candidate must have spent in the previous stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<GoDuration>,
    /// Whether an explicit approval is required.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approval: bool,
}

impl Spec for PipelineSpec {
    const KIND: &'static str = "Pipeline";
    const API_VERSION: &'static str = FERRY_API_VERSION;
}

/// A core `v1` Namespace (only its labels matter to Ferry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// Metadata; `namespace` is empty (cluster-scoped). `labels` include the
    /// `kubernetes.io/metadata.name` label the API server adds to every namespace.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Where it was read from.
    #[serde(skip)]
    pub source: Source,
}

impl Namespace {
    /// Kind name.
    pub const KIND: &'static str = "Namespace";

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// `Namespace name` identity.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(Self::KIND, "", &self.metadata.name)
    }
}
