//! Marker parsing: `# {"$imagepolicy": ...}` comments and setter values, and the rollback
//! reader of `name:tag@digest` marker values.
//! Invariants: a parsed marker's setter parses to the same marker, and the canonical comment
//! written for it parses back to it; a reference's parts never contain the separators they
//! were split on.
#![no_main]

use ferry_setters::{parse_marker_comment, parse_setter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for candidate in [text, &format!("# {{\"$imagepolicy\": {}}}", serde_json::json!(text))] {
        if let Some(m) = parse_marker_comment(candidate) {
            assert_eq!(parse_setter(&m.setter).as_ref(), Some(&m));
            assert!(m.setter.starts_with(&m.policy));
            let comment = format!("# {}", serde_json::json!({ "$imagepolicy": m.setter }));
            assert_eq!(parse_marker_comment(&comment).as_ref(), Some(&m));
        }
    }
    if let Some(m) = parse_setter(text) {
        assert_eq!(m.setter, text);
        assert_eq!(m.policy.matches(':').count(), 1);
    }
    let state = ferry_engine::rollback::parse_reference(text);
    if let Some(tag) = &state.tag {
        assert!(!tag.contains(['/', '@', ':']), "tag {tag:?}");
    }
    if let Some(digest) = &state.digest {
        assert!(!digest.is_empty());
    }
});
