//! The generic object envelope (`metadata` + `spec` + where it was read from).

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::meta::{ObjectMeta, ObjectRef, Source};

/// Implemented by every spec type: ties it to its `apiVersion` and `kind`.
pub trait Spec: Default + Clone {
    /// Kubernetes kind, e.g. `ImagePolicy`.
    const KIND: &'static str;
    /// The `apiVersion` Ferry accepts for this kind.
    const API_VERSION: &'static str;
}

/// A loaded object: `metadata`, typed `spec`, and its [`Source`] location.
///
/// Serializes with `apiVersion` and `kind` first (the source location is not serialized).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de> + Default"))]
pub struct Object<S> {
    /// Object metadata (namespace already defaulted).
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Typed spec.
    #[serde(default)]
    pub spec: S,
    /// File and line the object was read from.
    #[serde(skip)]
    pub source: Source,
}

impl<S: Spec> Object<S> {
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// `metadata.namespace` (defaulted to `default` on load).
    pub fn namespace(&self) -> &str {
        &self.metadata.namespace
    }

    /// `Kind ns/name` identity.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(S::KIND, &self.metadata.namespace, &self.metadata.name)
    }
}

impl<S: Spec + Serialize> Serialize for Object<S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut st = serializer.serialize_struct("Object", 4)?;
        st.serialize_field("apiVersion", S::API_VERSION)?;
        st.serialize_field("kind", S::KIND)?;
        st.serialize_field("metadata", &self.metadata)?;
        st.serialize_field("spec", &self.spec)?;
        st.end()
    }
}
