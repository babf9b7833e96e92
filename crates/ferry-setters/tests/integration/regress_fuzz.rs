//! Inputs the `setter_edit` fuzz target found (fuzz/), kept as regression tests of the setter
//! invariant (`tests/oracle`).

use crate::oracle;

use ferry_setters::{ImageRef, PolicyValues, SetterError, WriteMode, apply_tree, update_bytes};

fn image(tag: &str, name: &str) -> ImageRef {
    ImageRef {
        name: name.into(),
        tag: tag.into(),
        digest: Some(format!("sha256:{}", "a".repeat(64))),
    }
}

/// The YAML parser takes `x:<TAB><control character>1` but not `x:<TAB>value`: the edit would
/// have produced a file that no longer reads. It is refused, the file left as it was.
#[test]
fn an_edit_that_would_not_read_back_is_refused() {
    let yaml = b"x:\t\x171 # {\"$imagepolicy\": \"ns:app:tag\"}\r\n";
    let img = image("ye?gepolicypp:tag\"} &", "-`-\r");
    let mut values = PolicyValues::new();
    values.insert("ns:app".into(), img.clone());
    let err = update_bytes(yaml, &values).unwrap_err();
    assert!(matches!(err, SetterError::Parse { line: 1, .. }), "{err}");
    assert!(err.to_string().contains("would not read back"), "{err}");
    assert!(oracle::check_edit(yaml, &img).is_none());

    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("deploy.yaml"), yaml).unwrap();
    let up = apply_tree(tmp.path(), &values, WriteMode::Write).unwrap();
    assert!(up.files.is_empty());
    assert_eq!(up.warnings.len(), 1);
    assert_eq!(std::fs::read(tmp.path().join("deploy.yaml")).unwrap(), yaml);
}
