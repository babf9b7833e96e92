//! ferry-hooks: webhook authentication, payload parsing, and which ImageRepositories a push
//! names, for every driver that listens (`ferry serve`, `ferry controller --listen`).
//!
//! Owns: the shared-secret check (constant time), the registry and git payload formats, the
//! body-size limit, and matching pushed repositories to ImageRepositories.
//! Must not: do I/O, hold state or decide when a pass runs (the drivers do).
//!
//! Two ways to authenticate, either is enough:
//! - `Authorization: Bearer <secret>`: what distribution sends from the `headers:` of a
//!   notification endpoint;
//! - `X-Ferry-Signature: sha256=<hex>` (or GitHub's `X-Hub-Signature-256`): HMAC-SHA256 of the
//!   raw body with the secret as key.
//!
//! Two registry payloads: distribution's notification envelope (`{"events": [...]}`), and
//! Ferry's generic `{"repository": "HOST/PATH", "tag": "...", "digest": "..."}`.

use std::collections::BTreeSet;

use ferry_api::ObjectSet;
use ferry_registry::ImageName;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Largest accepted webhook body; larger ones get 413 and trigger nothing.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The shared webhook secret. Never printed.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// Reads a secret file; surrounding whitespace (a trailing newline) is not part of it.
    pub fn from_file_contents(bytes: &[u8]) -> Option<Secret> {
        let text = String::from_utf8_lossy(bytes);
        let trimmed = text.trim();
        (!trimmed.is_empty()).then(|| Secret(trimmed.as_bytes().to_vec()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| {
            // HMAC takes keys of any length; this branch is unreachable.
            <Hmac<Sha256> as Mac>::new_from_slice(b"").unwrap_or_else(|_| unreachable!())
        })
    }

    /// The `sha256=` signature a sender computes (the tests and fuzz/'s `webhook` target sign
    /// with it; the daemon only verifies).
    #[allow(dead_code)]
    pub fn signature_hex(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    /// True when `hex_sig` is the HMAC-SHA256 of `body`; compared in constant time by the
    /// `hmac` crate (`verify_slice`), so response timing reveals nothing about the expected MAC.
    fn verify_signature(&self, body: &[u8], hex_sig: &str) -> bool {
        let Ok(sig) = hex::decode(hex_sig) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    }

    /// True when `presented` is the secret, compared in constant time (`subtle`).
    pub fn matches(&self, presented: &[u8]) -> bool {
        ct_eq(presented, &self.0)
    }
}

/// Constant-time equality (`subtle`), so a timing side channel does not reveal a secret; a
/// length difference returns at once (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Invalid,
}

/// Checks the request against the secret; `None` secret (`--allow-unsigned-webhooks`) accepts
/// everything.
pub fn authenticate(
    secret: Option<&Secret>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), AuthFailure> {
    let Some(secret) = secret else { return Ok(()) };
    let signature = ["x-ferry-signature", "x-hub-signature-256"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok());
    if let Some(sig) = signature {
        let hex_sig = sig.trim().strip_prefix("sha256=").unwrap_or("");
        return if secret.verify_signature(body, hex_sig) {
            Ok(())
        } else {
            Err(AuthFailure::Invalid)
        };
    }
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "));
    match bearer {
        Some(token) if secret.matches(token.trim().as_bytes()) => Ok(()),
        Some(_) => Err(AuthFailure::Invalid),
        None => Err(AuthFailure::Missing),
    }
}

/// A repository that was pushed to: registry host (when known) and repository path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PushedRepo {
    pub host: Option<String>,
    pub path: String,
}

/// What a registry webhook body asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RegistryEvents {
    pub pushed: Vec<PushedRepo>,
    /// Events that trigger nothing (pulls, deletes, blob uploads).
    pub ignored: u64,
}

/// Manifest media types: a push of one of these (or any push with a tag) is a new image.
fn is_manifest(media_type: &str) -> bool {
    media_type.contains("manifest") || media_type.contains("image.index")
}

/// Parses a registry webhook body. Errors are one line, for a 400 response.
pub fn parse_registry(body: &[u8]) -> Result<RegistryEvents, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let obj = value.as_object().ok_or("body must be a JSON object")?;
    let mut out = RegistryEvents::default();
    if let Some(events) = obj.get("events") {
        let events = events.as_array().ok_or("\"events\" must be an array")?;
        for (i, event) in events.iter().enumerate() {
            let event = event
                .as_object()
                .ok_or_else(|| format!("events[{i}] must be an object"))?;
            let action = event
                .get("action")
                .and_then(|a| a.as_str())
                .ok_or_else(|| format!("events[{i}].action must be a string"))?;
            let target = event
                .get("target")
                .and_then(|t| t.as_object())
                .ok_or_else(|| format!("events[{i}].target must be an object"))?;
            let repository = target
                .get("repository")
                .and_then(|r| r.as_str())
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    format!("events[{i}].target.repository must be a non-empty string")
                })?;
            let tag = target.get("tag").and_then(|t| t.as_str()).unwrap_or("");
            let media_type = target
                .get("mediaType")
                .and_then(|t| t.as_str())
                .unwrap_or("");
            if action != "push" || (tag.is_empty() && !is_manifest(media_type)) {
                out.ignored += 1;
                continue;
            }
            let host = event
                .get("request")
                .and_then(|r| r.get("host"))
                .and_then(|h| h.as_str())
                .filter(|h| !h.is_empty())
                .map(str::to_string);
            let name = match &host {
                Some(h) => ImageName::from_parts(h, repository),
                None => ImageName::parse(repository),
            }
            .map_err(|e| format!("events[{i}].target.repository {repository:?}: {e}"))?;
            out.pushed.push(PushedRepo {
                host: host.map(|_| name.registry().to_string()),
                path: name.repository().to_string(),
            });
        }
        return Ok(out);
    }
    if let Some(repository) = obj.get("repository") {
        let repository = repository
            .as_str()
            .filter(|r| !r.is_empty())
            .ok_or("\"repository\" must be a non-empty string")?;
        for key in ["tag", "digest"] {
            if obj.get(key).is_some_and(|v| !v.is_string()) {
                return Err(format!("\"{key}\" must be a string"));
            }
        }
        let name =
            ImageName::parse(repository).map_err(|e| format!("repository {repository:?}: {e}"))?;
        out.pushed.push(PushedRepo {
            host: Some(name.registry().to_string()),
            path: name.repository().to_string(),
        });
        return Ok(out);
    }
    Err("expected a distribution notification envelope ({\"events\": [...]}) or {\"repository\": \"HOST/PATH\"}".into())
}

/// `(namespace, name)` of an ImageRepository.
pub type RepoKey = (String, String);

/// The ImageRepositories a set of pushes refers to. A push names a host and a path; the host a
/// client used may differ from `spec.image` (localhost vs 127.0.0.1, a mirror name), so when no
/// object matches host and path, the path alone decides. A spurious scan costs one tag list; a
/// push that names no ImageRepository's path matches nothing, so nothing is contacted.
pub fn match_pushed(objects: &ObjectSet, pushed: &BTreeSet<PushedRepo>) -> BTreeSet<RepoKey> {
    let names: Vec<(RepoKey, Option<ImageName>)> = objects
        .image_repositories
        .iter()
        .map(|r| {
            (
                (r.namespace().to_string(), r.name().to_string()),
                ImageName::parse(&r.spec.image).ok(),
            )
        })
        .collect();
    let mut out = BTreeSet::new();
    for p in pushed {
        let by_path: Vec<&(RepoKey, Option<ImageName>)> = names
            .iter()
            .filter(|(_, n)| n.as_ref().is_some_and(|n| n.repository() == p.path))
            .collect();
        let exact: Vec<&&(RepoKey, Option<ImageName>)> = by_path
            .iter()
            .filter(|(_, n)| {
                p.host
                    .as_deref()
                    .is_some_and(|h| n.as_ref().is_some_and(|n| n.registry() == h))
            })
            .collect();
        if exact.is_empty() {
            out.extend(by_path.iter().map(|(k, _)| k.clone()));
        } else {
            out.extend(exact.iter().map(|(k, _)| k.clone()));
        }
    }
    out
}

/// A git webhook body: empty, or any JSON (GitHub, Gitea, GitLab push payloads all are).
pub fn parse_git(body: &[u8]) -> Result<(), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|_| ())
        .map_err(|e| format!("body is not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn hmac_matches_a_known_vector() {
        // RFC 4231 test case 2.
        let s = Secret(b"Jefe".to_vec());
        assert_eq!(
            s.signature_hex(b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn authentication_accepts_bearer_or_signature_only() {
        let s = Secret::from_file_contents(b"s3cret\n").unwrap();
        let body = br#"{"repository":"r/a"}"#;
        let sig = format!("sha256={}", s.signature_hex(body));
        assert_eq!(
            authenticate(Some(&s), &headers(&[("x-ferry-signature", &sig)]), body),
            Ok(())
        );
        assert_eq!(
            authenticate(Some(&s), &headers(&[("x-hub-signature-256", &sig)]), body),
            Ok(())
        );
        assert_eq!(
            authenticate(Some(&s), &headers(&[("x-ferry-signature", &sig)]), b"other"),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            authenticate(
                Some(&s),
                &headers(&[("x-ferry-signature", "sha256=00")]),
                body
            ),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            authenticate(
                Some(&s),
                &headers(&[("authorization", "Bearer s3cret")]),
                body
            ),
            Ok(())
        );
        assert_eq!(
            authenticate(
                Some(&s),
                &headers(&[("authorization", "Bearer nope")]),
                body
            ),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            authenticate(Some(&s), &headers(&[]), body),
            Err(AuthFailure::Missing)
        );
        assert_eq!(authenticate(None, &headers(&[]), body), Ok(()));
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn constant_time_checks_accept_exactly_the_secret() {
        // Signatures go through hmac's verify_slice and tokens through subtle's ct_eq; these
        // pin what they accept: the exact MAC (either hex case), the exact token.
        let s = Secret::from_file_contents(b"s3cret\n").unwrap();
        let body = b"payload";
        let good = s.signature_hex(body);
        assert!(s.verify_signature(body, &good));
        assert!(s.verify_signature(body, &good.to_ascii_uppercase()));
        assert!(!s.verify_signature(body, &good[..62]), "truncated MAC");
        assert!(!s.verify_signature(body, ""), "empty MAC");
        assert!(!s.verify_signature(body, "zz"), "not hex");
        let mut flipped = hex::decode(&good).unwrap();
        flipped[31] ^= 1;
        assert!(
            !s.verify_signature(body, &hex::encode(flipped)),
            "one bit off"
        );
        assert!(s.matches(b"s3cret"));
        for wrong in [&b"s3cre"[..], b"s3cret!", b"s3creT", b"", b"S3CRET"] {
            assert!(!s.matches(wrong), "{wrong:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Also fuzzed in fuzz/ (target `webhook`).
        #[test]
        fn only_the_right_mac_or_token_is_accepted(
            secret in "[!-~]{1,40}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            flip in 0usize..64,
            suffix in "[!-~]{1,4}",
        ) {
            let s = Secret::from_file_contents(secret.as_bytes()).unwrap();
            let good = s.signature_hex(&body);
            let sig = format!("sha256={good}");
            proptest::prop_assert_eq!(
                authenticate(Some(&s), &headers(&[("x-ferry-signature", &sig)]), &body),
                Ok(())
            );
            let mut bad = good.into_bytes();
            bad[flip] = if bad[flip] == b'0' { b'1' } else { b'0' };
            let bad = format!("sha256={}", String::from_utf8(bad).unwrap());
            proptest::prop_assert_eq!(
                authenticate(Some(&s), &headers(&[("x-hub-signature-256", &bad)]), &body),
                Err(AuthFailure::Invalid)
            );
            let token = format!("Bearer {secret}");
            proptest::prop_assert_eq!(
                authenticate(Some(&s), &headers(&[("authorization", &token)]), &body),
                Ok(())
            );
            let longer = format!("Bearer {secret}{suffix}");
            proptest::prop_assert_eq!(
                authenticate(Some(&s), &headers(&[("authorization", &longer)]), &body),
                Err(AuthFailure::Invalid)
            );
        }
    }

    #[test]
    fn distribution_envelopes_are_parsed() {
        let body = br#"{"events":[
          {"action":"push","target":{"mediaType":"application/octet-stream","repository":"org/app","digest":"sha256:00"},"request":{"host":"127.0.0.1:5000"}},
          {"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"org/app","tag":"v1"},"request":{"host":"127.0.0.1:5000"}},
          {"action":"pull","target":{"repository":"org/app","tag":"v1"}}
        ]}"#;
        let ev = parse_registry(body).unwrap();
        assert_eq!(ev.ignored, 2);
        assert_eq!(
            ev.pushed,
            vec![PushedRepo {
                host: Some("127.0.0.1:5000".into()),
                path: "org/app".into()
            }]
        );
        let generic =
            parse_registry(br#"{"repository":"127.0.0.1:5000/org/app","tag":"v2"}"#).unwrap();
        assert_eq!(generic.pushed[0].path, "org/app");
        for bad in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"events":{}}"#,
            br#"{"events":[{"action":"push"}]}"#,
            br#"{"events":[{"action":"push","target":{"repository":""}}]}"#,
            br#"{"repository":42}"#,
            br#"{"repository":"UPPER/Case"}"#,
            br#"{"repository":"r/a","tag":1}"#,
        ] {
            assert!(
                parse_registry(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_git(b"").is_ok());
        assert!(parse_git(br#"{"ref":"refs/heads/main"}"#).is_ok());
        assert!(parse_git(b"{oops").is_err());
    }
}
