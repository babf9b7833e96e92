//! Flux's own ImageRepository `spec.image` cases (shared conformance corpus).

use ferry_registry::ImageName;
use serde_json::Value;

#[test]
fn irc_parse_image_reference() {
    let Some(dir) = ferry_testbed::conformance_dir() else {
        return;
    };
    let path = dir.join("flux-policy/irc-parse-image-reference.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    let (mut passed, mut failed) = (0, 0);
    for case in cases {
        let image = case["image"].as_str().unwrap();
        let insecure = case["insecure"].as_bool().unwrap_or(false);
        let got = ImageName::parse(image);
        let ok = match (&got, case.get("error").and_then(Value::as_str)) {
            (Err(e), Some(want)) => e.to_string() == want,
            (Ok(name), None) => {
                let canonical_ok = case
                    .get("canonical")
                    .and_then(Value::as_str)
                    .is_none_or(|want| name.canonical() == want);
                let scheme_ok = case
                    .get("scheme")
                    .and_then(Value::as_str)
                    .is_none_or(|want| name.scheme(insecure) == want);
                canonical_ok && scheme_ok
            }
            _ => false,
        };
        if ok {
            passed += 1;
        } else {
            failed += 1;
            eprintln!("FAIL {image:?} (insecure={insecure}): got {got:?}, want {case}");
        }
    }
    println!("irc-parse-image-reference: {passed} passed, {failed} failed");
    assert_eq!(failed, 0);
    assert!(passed > 0);
}
