//! Image references as manifests hold them (`registry/repo:tag@sha256:…`) and as
//! `ImagePolicy.status.latestRef` records them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An image at a tag, with the digest when it is known: an ImagePolicy's `latestRef`, the value
/// a setter writes, an `observedPolicies` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ImageRef {
    /// The ImageRepository's `spec.image`, verbatim (not canonicalised).
    pub name: String,
    pub tag: String,
    /// `sha256:…` when digest reflection is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl ImageRef {
    /// A reference without digest.
    pub fn new(name: impl Into<String>, tag: impl Into<String>) -> ImageRef {
        ImageRef {
            name: name.into(),
            tag: tag.into(),
            digest: None,
        }
    }

    /// The same reference with `digest`; an empty one means "not reflected" (no digest).
    pub fn with_digest(mut self, digest: impl Into<String>) -> ImageRef {
        self.digest = Some(digest.into()).filter(|d| !d.is_empty());
        self
    }

    /// The digest, or `""` when there is none.
    pub fn digest_or_empty(&self) -> &str {
        self.digest.as_deref().unwrap_or("")
    }

    /// Parses `name:tag[@digest]`: a tag is required, a digest is optional.
    pub fn parse(reference: &str) -> Result<ImageRef, ReferenceError> {
        let parts = split_reference(reference);
        let tag = parts.tag.filter(|t| !t.is_empty());
        match (parts.name, tag) {
            ("", _) => Err(ReferenceError::NoName(reference.to_string())),
            (_, None) => Err(ReferenceError::NoTag(reference.to_string())),
            (name, Some(tag)) => {
                Ok(ImageRef::new(name, tag).with_digest(parts.digest.unwrap_or_default()))
            }
        }
    }
}

impl fmt::Display for ImageRef {
    /// `name:tag[@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)?;
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Why a reference string is not `name:tag[@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    NoName(String),
    NoTag(String),
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReferenceError::NoName(r) => write!(f, "image {r:?} has no name (expected NAME:TAG)"),
            ReferenceError::NoTag(r) => write!(f, "image {r:?} has no tag (expected NAME:TAG)"),
        }
    }
}

impl std::error::Error for ReferenceError {}

/// The parts of a reference string, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference<'a> {
    pub name: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// Splits `name[:tag][@digest]`. The digest follows the first `@`; the tag follows the last `:`
/// after the last `/`, so a registry port (`127.0.0.1:5000/app`) stays in the name. Empty
/// parts are `None`. It does not validate: `ferry-registry`'s `ImageName` does, for names.
pub fn split_reference(reference: &str) -> Reference<'_> {
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest).filter(|d| !d.is_empty())),
        None => (reference, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    };
    Reference {
        name,
        tag: tag.filter(|t| !t.is_empty()),
        digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn splits_ports_tags_and_digests() {
        let r = split_reference("127.0.0.1:5000/org/app:v1.2.3");
        assert_eq!(
            (r.name, r.tag, r.digest),
            ("127.0.0.1:5000/org/app", Some("v1.2.3"), None)
        );
        let r = split_reference("127.0.0.1:5000/org/app");
        assert_eq!((r.name, r.tag), ("127.0.0.1:5000/org/app", None));
        let with_digest = format!("app:1@{DIGEST}");
        let r = split_reference(&with_digest);
        assert_eq!((r.name, r.tag, r.digest), ("app", Some("1"), Some(DIGEST)));
        let only_digest = format!("r.io/app@{DIGEST}");
        let r = split_reference(&only_digest);
        assert_eq!((r.name, r.tag, r.digest), ("r.io/app", None, Some(DIGEST)));
        let r = split_reference("app:@");
        assert_eq!((r.name, r.tag, r.digest), ("app", None, None));
    }

    #[test]
    fn parse_needs_a_name_and_a_tag_and_round_trips() {
        let text = format!("127.0.0.1:5000/app:v1@{DIGEST}");
        let r = ImageRef::parse(&text).unwrap();
        assert_eq!(r.to_string(), text);
        assert_eq!(
            ImageRef::parse("127.0.0.1:5000/app:v1").unwrap().digest,
            None
        );
        assert!(matches!(
            ImageRef::parse("127.0.0.1:5000/app"),
            Err(ReferenceError::NoTag(_))
        ));
        assert!(matches!(
            ImageRef::parse(":v1"),
            Err(ReferenceError::NoName(_))
        ));
    }

    #[test]
    fn an_empty_digest_is_none_and_is_not_serialized() {
        let r = ImageRef::new("app", "1").with_digest("");
        assert_eq!(r.digest, None);
        assert_eq!(r.digest_or_empty(), "");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"name":"app","tag":"1"}"#);
        let back: ImageRef = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
