//! Ferry's own Git evidence, read back: `Ferry-Change` trailers, `.ferry/holds.yaml`, release
//! records (`releases/<app>/<env>/<tag>.yaml` top-level fields).
//! Invariants: trailer values and holds files round-trip through their writers; a record
//! field written with the record quoting reads back as the same value.
#![no_main]

use ferry_engine::promote::{quote_record_value, top_level_fields};
use ferry_engine::rollback::HoldsFile;
use ferry_engine::trailers::ChangeTrailer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(t) = ChangeTrailer::parse(text) {
        assert_eq!(ChangeTrailer::parse(&t.to_value()), Some(t));
    }
    if let Ok(holds) = HoldsFile::parse(text, ".ferry/holds.yaml") {
        let rendered = holds.render();
        let back = HoldsFile::parse(&rendered, ".ferry/holds.yaml").expect("rendered holds parse");
        // Rendering sorts entries: compare what two writers would commit.
        assert_eq!(back.render(), rendered, "holds do not round-trip");
        assert_eq!(back.holds.len(), holds.holds.len());
        assert_eq!(back.denied.len(), holds.denied.len());
    }
    let _ = top_level_fields(text);
    let line = text.lines().next().unwrap_or_default();
    let record = format!("version: 1.2.3\nsourceSha: {}\n", quote_record_value(line));
    let fields = top_level_fields(&record);
    assert_eq!(fields.get("sourceSha").map(String::as_str), Some(line), "{record}");
});
