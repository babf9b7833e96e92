//! Registry wire formats: `tags/list` pages, `Link` and `WWW-Authenticate` headers,
//! manifest/index JSON, image references.
//! Invariants: a `Link` is only followed to the registry it came from; a challenge's scheme and
//! keys come back lowercase; every digest a manifest refers to is a sha256 digest; a parsed
//! image reference's canonical form parses to itself.
#![no_main]

use ferry_registry::{ImageName, ManifestRefs, manifest_references, next_link, parse_challenge, parse_tag_page};
use libfuzzer_sys::fuzz_target;
use reqwest::header::{HeaderMap, HeaderValue, LINK};

fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(tags) = parse_tag_page(data) {
        assert!(tags.len() <= data.len());
    }
    match manifest_references(data) {
        Ok(ManifestRefs::Index(d)) | Ok(ManifestRefs::Blobs(d)) => {
            assert!(d.iter().all(|d| is_digest(d)), "{d:?}");
        }
        Err(e) => assert!(!e.is_empty()),
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((scheme, params)) = parse_challenge(text) {
        assert_eq!(scheme, scheme.to_ascii_lowercase());
        assert!(params.keys().all(|k| *k == k.to_ascii_lowercase()));
    }
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let base = url::Url::parse("http://127.0.0.1:5000/v2/org/app/tags/list?n=1000")
            .expect("static URL");
        let mut headers = HeaderMap::new();
        headers.insert(LINK, value);
        if let Ok(Some(next)) = next_link(&headers, &base) {
            assert_eq!(next.origin(), base.origin(), "Link left the registry: {next}");
        }
    }
    if let Ok(name) = ImageName::parse(text) {
        let again = ImageName::parse(&name.canonical()).expect("canonical form parses");
        assert_eq!(again.canonical(), name.canonical());
    }
});
