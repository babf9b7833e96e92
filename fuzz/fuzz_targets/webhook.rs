//! Webhook bodies and signatures (ferry-hooks, shared by `ferry serve` and `ferry controller`).
//! Input: byte 0 selects the header form, the rest is the body.
//! Invariants: a body signed with the secret authenticates, the same body with any other
//! signature or bearer token does not; parsed pushes always name a non-empty repository path.
#![no_main]

use ferry_hooks::{AuthFailure, Secret, authenticate, parse_git, parse_registry};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    if let Ok(events) = parse_registry(body) {
        for p in &events.pushed {
            assert!(!p.path.is_empty());
            assert!(p.host.as_deref() != Some(""));
        }
    }
    let _ = parse_git(body);

    let Some(secret) = Secret::from_file_contents(b"fuzz-webhook-secret\n") else {
        panic!("static secret");
    };
    let header = ["x-ferry-signature", "x-hub-signature-256"][usize::from(selector & 1)];
    let good = secret.signature_hex(body);
    let mut headers = HeaderMap::new();
    let signed = HeaderValue::from_str(&format!("sha256={good}")).expect("hex is a header value");
    headers.insert(header, signed);
    assert_eq!(authenticate(Some(&secret), &headers, body), Ok(()));
    // Any other signature or token is refused: here the body itself, as hex or as a token.
    let forged = format!("sha256={}", hex::encode(body));
    if forged != format!("sha256={good}") {
        headers.insert(header, HeaderValue::from_str(&forged).expect("hex"));
        assert_eq!(authenticate(Some(&secret), &headers, body), Err(AuthFailure::Invalid));
    }
    let mut bearer = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(&[b"Bearer ".as_slice(), body].concat()) {
        bearer.insert("authorization", v);
        let accepted = authenticate(Some(&secret), &bearer, body).is_ok();
        assert_eq!(accepted, body.trim_ascii() == b"fuzz-webhook-secret");
    }
    assert_eq!(authenticate(Some(&secret), &HeaderMap::new(), body), Err(AuthFailure::Missing));
});
