//! Image names as Flux's ImageRepository `spec.image` understands them.
//!
//! Rules follow Flux's `ParseImageReference` on top of go-containerregistry's `name` package
//! (flux-spec §2.2, §2.3 step 3, §2.4): no URL scheme, no tag or digest, the first path segment
//! is a registry only when it contains `.` or `:` (so `localhost/x` is a Docker Hub repository),
//! Docker Hub is spelled `index.docker.io` and single-segment Hub repositories get `library/`.

use std::fmt;
use std::net::Ipv4Addr;

/// Docker Hub's registry as go-containerregistry names it in canonical names.
pub const DOCKER_HUB: &str = "index.docker.io";

const REPOSITORY_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-./";

/// Why an image string was rejected. `Display` is the exact Flux message where Flux has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("image '{image}' should not include URL scheme; remove '{scheme}://'")]
    UrlScheme { image: String, scheme: String },
    #[error("image '{image}' should not include a tag; remove ':{tag}'")]
    Tag { image: String, tag: String },
    #[error("could not parse reference: {image} ({reason})")]
    Invalid { image: String, reason: String },
}

/// A repository in a registry, without tag or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageName {
    registry: String,
    repository: String,
}

impl ImageName {
    /// Parses an ImageRepository `spec.image` value.
    pub fn parse(spec_image: &str) -> Result<ImageName, ReferenceError> {
        if let Some((scheme, _)) = spec_image.split_once("://") {
            return Err(ReferenceError::UrlScheme {
                image: spec_image.to_string(),
                scheme: scheme.to_string(),
            });
        }
        let invalid = |reason: String| ReferenceError::Invalid {
            image: spec_image.to_string(),
            reason,
        };
        // Like go-containerregistry: digest after '@', else a tag after the last ':' that is
        // not followed by a '/' (a ':' before a '/' is a registry port).
        let (base, had_digest) = match spec_image.split_once('@') {
            Some((base, digest)) => {
                check_digest(digest).map_err(invalid)?;
                (base, true)
            }
            None => (spec_image, false),
        };
        let base = if had_digest {
            base
        } else {
            match base.rsplit_once(':') {
                Some((before, tag)) if !tag.contains('/') => {
                    check_tag(tag).map_err(invalid)?;
                    before
                }
                _ => base,
            }
        };
        let name = Self::parse_repository(base).map_err(invalid)?;
        // Flux: anything after the registry part that still has a ':' is a tag (or digest).
        let rest = spec_image
            .strip_prefix(name.registry.as_str())
            .unwrap_or(spec_image);
        let mut parts = rest.split(':');
        parts.next();
        if let Some(tag) = parts.next() {
            return Err(ReferenceError::Tag {
                image: spec_image.to_string(),
                tag: tag.to_string(),
            });
        }
        Ok(name)
    }

    /// Parses `registry/repository` or a Docker Hub short name, with no tag allowed.
    fn parse_repository(base: &str) -> Result<ImageName, String> {
        let (registry, repository) = match base.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') => {
                check_registry(first)?;
                (first.to_string(), rest.to_string())
            }
            _ => (String::new(), base.to_string()),
        };
        check_repository(&repository)?;
        let registry = if registry.is_empty() || registry == "docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        Ok(ImageName {
            registry,
            repository,
        })
    }

    /// Builds a name from parts already known to be valid (for example from configuration).
    pub fn from_parts(registry: &str, repository: &str) -> Result<ImageName, ReferenceError> {
        Self::parse(&format!("{registry}/{repository}"))
    }

    /// `registry/repository`, e.g. `index.docker.io/library/alpine` (status.canonicalImageName).
    pub fn canonical(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Registry host (with port), e.g. `index.docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path inside the registry, e.g. `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Same registry, another repository (cross-repository mounts, promotion targets).
    pub fn with_repository(&self, repository: &str) -> Result<ImageName, ReferenceError> {
        Self::from_parts(&self.registry, repository)
    }

    /// `http` when `insecure`, or for local and private registries; `https` otherwise.
    ///
    /// The client still tries `https` first for an `http` registry, like go-containerregistry.
    pub fn scheme(&self, insecure: bool) -> &'static str {
        if insecure || is_local_registry(&self.registry) {
            "http"
        } else {
            "https"
        }
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// go-containerregistry's plain-HTTP rule: RFC1918 IPv4, `localhost:<port>`, `*.localhost`,
/// and anything containing `127.0.0.1` or `::1`.
fn is_local_registry(registry: &str) -> bool {
    if registry.contains("127.0.0.1") || registry.contains("::1") {
        return true;
    }
    if registry.starts_with("localhost:") {
        return true;
    }
    let host = host_without_port(registry);
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<Ipv4Addr>() {
        Ok(ip) => ip.is_private(),
        Err(_) => false,
    }
}

fn host_without_port(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => registry,
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    let ok = !registry.is_empty()
        && registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "registries must be valid RFC 3986 URI authorities: {registry}"
        ))
    }
}

fn check_repository(repository: &str) -> Result<(), String> {
    if repository.len() < 2 || repository.len() > 255 {
        return Err(format!(
            "repository must be between 2 and 255 characters in length: {repository}"
        ));
    }
    if let Some(bad) = repository.chars().find(|c| !REPOSITORY_CHARS.contains(*c)) {
        return Err(format!(
            "repository can only contain the characters `{REPOSITORY_CHARS}`: {repository} (found {bad:?})"
        ));
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!("tag is invalid: {tag}"))
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    match digest.split_once(':') {
        // OCI: the sha256 encoding is lowercase hex (`[a-f0-9]{64}`).
        Some(("sha256", hex))
            if hex.len() == 64 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(())
        }
        _ => Err(format!("digest is invalid: {digest}")),
    }
}

/// True for `sha256:<64 hex>`: a manifest reference that is a digest rather than a tag.
pub fn is_digest(reference: &str) -> bool {
    check_digest(reference).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `registry_wire` fuzz target: uppercase hex passed as a digest. OCI digests
    /// are lowercase; anything else is not one (and is never passed on in a URL as one).
    #[test]
    fn digests_are_lowercase_sha256() {
        let lower = format!("sha256:{}", "b".repeat(64));
        assert!(is_digest(&lower));
        assert!(!is_digest(&lower.replacen('b', "B", 1)));
        assert!(!is_digest(&format!("sha512:{}", "b".repeat(64))));
        assert!(!is_digest(&lower[..70]));
        let manifest = format!(
            r#"{{"config":{{"digest":"{}"}}}}"#,
            lower.replacen('b', "B", 1)
        );
        assert!(crate::manifest_references(manifest.as_bytes()).is_err());
    }

    #[test]
    fn canonical_names() {
        let cases = [
            ("alpine", "index.docker.io/library/alpine"),
            ("docker.io/alpine", "index.docker.io/library/alpine"),
            ("fluxcd/flux", "index.docker.io/fluxcd/flux"),
            ("localhost/xy", "index.docker.io/localhost/xy"),
            ("localhost:5000/xy", "localhost:5000/xy"),
            ("ghcr.io/org/app", "ghcr.io/org/app"),
            ("127.0.0.1:5000/demo/app", "127.0.0.1:5000/demo/app"),
        ];
        for (input, want) in cases {
            assert_eq!(
                ImageName::parse(input).unwrap().canonical(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_tags_digests_and_bad_names() {
        let digest = format!("ghcr.io/a/b@sha256:{}", "a".repeat(64));
        assert_eq!(
            ImageName::parse(&digest).unwrap_err().to_string(),
            format!(
                "image '{digest}' should not include a tag; remove ':{}'",
                "a".repeat(64)
            )
        );
        assert_eq!(
            ImageName::parse("alpine:3").unwrap_err().to_string(),
            "image 'alpine:3' should not include a tag; remove ':3'"
        );
        assert!(matches!(
            ImageName::parse("Upper/Case"),
            Err(ReferenceError::Invalid { .. })
        ));
        assert!(matches!(
            ImageName::parse("a"),
            Err(ReferenceError::Invalid { .. })
        ));
    }

    #[test]
    fn schemes() {
        let scheme = |s: &str, insecure| ImageName::parse(s).unwrap().scheme(insecure);
        assert_eq!(scheme("ghcr.io/a/b", false), "https");
        assert_eq!(scheme("ghcr.io/a/b", true), "http");
        assert_eq!(scheme("localhost:5000/ab", false), "http");
        assert_eq!(scheme("reg.localhost/ab", false), "http");
        assert_eq!(scheme("10.1.2.3:5000/ab", false), "http");
        assert_eq!(scheme("192.168.1.1/ab", false), "http");
        assert_eq!(scheme("172.32.0.1/ab", false), "https");
        assert_eq!(scheme("127.0.0.1:5000/ab", false), "http");
        assert_eq!(scheme("[::1]:5000/ab", false), "http");
    }
}
