//! One typed identity for the Flux objects Ferry reconciles.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of object Ferry reads. The first three are the ones it reconciles and records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    ImageRepository,
    ImagePolicy,
    ImageUpdateAutomation,
    GitRepository,
}

impl Kind {
    /// The kinds Ferry reconciles (and keeps status for).
    pub const RECONCILED: [Kind; 3] = [
        Kind::ImageRepository,
        Kind::ImagePolicy,
        Kind::ImageUpdateAutomation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ImageRepository => "ImageRepository",
            Kind::ImagePolicy => "ImagePolicy",
            Kind::ImageUpdateAutomation => "ImageUpdateAutomation",
            Kind::GitRepository => "GitRepository",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::GitRepository]
            .into_iter()
            .chain(Kind::RECONCILED)
            .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An object's identity: kind, namespace and name. Displayed `Kind namespace/name`, as Ferry's
/// messages name objects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> ObjectKey {
        ObjectKey {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `namespace/name`, as Flux's messages and `kubectl` name an object of a known kind.
    pub fn path(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_display_sort_and_parse_kinds() {
        let a = ObjectKey::new(Kind::ImagePolicy, "apps", "web");
        assert_eq!(a.to_string(), "ImagePolicy apps/web");
        assert_eq!(a.path(), "apps/web");
        let b = ObjectKey::new(Kind::ImageRepository, "apps", "web");
        assert!(b < a, "repositories sort before policies");
        for kind in Kind::RECONCILED.into_iter().chain([Kind::GitRepository]) {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("Deployment"), None);
    }
}
