//! Ferry's own Git evidence, read back: `Ferry-Change` trailers, `.ferry/holds.yaml`, release
//! records (`releases/<app>/<env>/<tag>.yaml`) and approvals.
//! Invariants: trailer values, holds files, records and approvals round-trip through their
//! writers; no input makes a reader panic.
#![no_main]

use ferry_engine::promote::{Approval, ReleaseRecord};
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
    if let Ok(record) = ReleaseRecord::parse(text, "r.yaml") {
        let back = ReleaseRecord::parse(&record.render(), "r.yaml").expect("rendered record parses");
        assert_eq!(back, record, "record does not round-trip");
    }
    if let Ok(approval) = Approval::parse(text, "a.yaml") {
        let back = Approval::parse(&approval.render(), "a.yaml").expect("rendered approval parses");
        assert_eq!(back, approval, "approval does not round-trip");
    }
});
