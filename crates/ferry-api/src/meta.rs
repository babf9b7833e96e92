//! Object metadata, references and source locations shared by all kinds.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The namespace given to namespaced objects that do not set `metadata.namespace`.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Where an object was read from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    /// Path relative to the loaded root, with `/` separators.
    pub file: String,
    /// 1-based line where the object's YAML document starts.
    pub line: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The subset of Kubernetes `ObjectMeta` Ferry reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// `metadata.name` (required).
    #[serde(default)]
    pub name: String,
    /// `metadata.namespace`; set to [`DEFAULT_NAMESPACE`] on load when absent (empty for the
    /// cluster-scoped `Namespace` kind).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// `metadata.labels`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `{name}`: an object in the referring object's namespace (e.g. a Secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalObjectReference {
    /// Name of the referent.
    #[serde(default)]
    pub name: String,
}

/// `{name, namespace?}`: namespace defaults to the referring object's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespacedObjectReference {
    /// Name of the referent.
    #[serde(default)]
    pub name: String,
    /// Namespace of the referent; `None` means the referring object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl NamespacedObjectReference {
    /// The referent's namespace, defaulting to `own_namespace`.
    pub fn namespace_or<'a>(&'a self, own_namespace: &'a str) -> &'a str {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => own_namespace,
        }
    }
}

/// Identity of a loaded object, for messages: `Kind ns/name` (or `Kind name` when cluster-scoped).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// Kubernetes kind, e.g. `ImagePolicy`.
    pub kind: String,
    /// Namespace; empty for cluster-scoped kinds.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// Builds a reference.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        ObjectRef {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.name.is_empty() {
            "<unnamed>"
        } else {
            &self.name
        };
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, name)
        }
    }
}
