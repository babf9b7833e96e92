//! Setter edit: `update_bytes` on arbitrary YAML with arbitrary new values.
//! Input: line 1 = new tag, line 2 = new image name, the rest = the YAML file.
//! Invariants (crates/ferry-setters/tests/integration/oracle, shared with the property test): only the
//! replaced scalars differ (same YAML event structure, the changed scalars hold exactly the
//! new values, the bytes before the first and after the last changed scalar are untouched);
//! parsing the output finds the new values (a second pass changes nothing).
#![no_main]

#[path = "../../crates/ferry-setters/tests/integration/oracle/mod.rs"]
mod oracle;

use ferry_setters::ImageRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let (Some(tag), Some(name), Some(yaml)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let (Ok(tag), Ok(name)) = (std::str::from_utf8(tag), std::str::from_utf8(name)) else {
        return;
    };
    let image = ImageRef {
        name: name.to_string(),
        tag: tag.to_string(),
        digest: Some(format!("sha256:{}", "a".repeat(64))),
    };
    oracle::check_edit(yaml, &image);
});
