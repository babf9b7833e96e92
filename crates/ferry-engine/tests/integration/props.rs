//! Property tests of Ferry's own Git evidence readers (also fuzzed in fuzz/, target
//! `records`): `Ferry-Change` trailers, `.ferry/holds.yaml` and release-record fields read
//! back what their writers wrote.

use ferry_engine::promote::{Approval, ReleaseRecord};
use ferry_engine::rollback::{Denied, Hold, HoldsFile};
use ferry_engine::trailers::ChangeTrailer;
use proptest::prelude::*;

/// Image references and tags as they appear in markers (no whitespace).
const REF: &str = "[A-Za-z0-9_.:/@-]{0,40}";

fn hold() -> impl Strategy<Value = Hold> {
    (
        "[a-z0-9-]{1,10}/[a-z0-9-]{1,10}",
        REF,
        REF,
        proptest::option::of(REF),
        proptest::option::of("[0-9a-f]{40}"),
        "\\PC{0,20}",
        "\\PC{0,40}",
    )
        .prop_map(|(policy, image, tag, digest, reverts, by, reason)| Hold {
            policy,
            image,
            tag,
            digest,
            reverts,
            by,
            reason,
            at: "2026-01-01T00:00:00Z".into(),
        })
}

fn denied() -> impl Strategy<Value = Denied> {
    (
        "[a-z0-9-]{1,10}/[a-z0-9-]{1,10}",
        REF,
        "\\PC{0,20}",
        "\\PC{0,40}",
    )
        .prop_map(|(policy, tag, by, reason)| Denied {
            policy,
            tag,
            by,
            reason,
            at: "2026-01-01T00:00:00Z".into(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn change_trailers_round_trip(policy in REF, setter in REF, old in "(?s).{0,20}", new in REF) {
        let t = ChangeTrailer { policy, setter, old, new };
        let value = t.to_value();
        prop_assert!(!value.contains('\n'));
        prop_assert_eq!(value.split(' ').count(), 4);
        prop_assert_eq!(ChangeTrailer::parse(&value), Some(t));
    }

    #[test]
    fn holds_files_round_trip(
        holds in proptest::collection::vec(hold(), 0..4),
        denied in proptest::collection::vec(denied(), 0..4),
    ) {
        let file = HoldsFile { holds, denied };
        let text = file.render();
        let back = HoldsFile::parse(&text, ".ferry/holds.yaml").unwrap();
        prop_assert_eq!(back.render(), text);
        for h in &file.holds {
            prop_assert!(back.holds.contains(h));
        }
        for d in &file.denied {
            prop_assert!(back.denied.contains(d));
        }
    }

    #[test]
    fn records_and_approvals_round_trip(value in "\\PC{0,60}", tag in "\\PC{0,30}") {
        let record = ReleaseRecord {
            version: "1.2.3".into(),
            source_sha: value.clone(),
            target_tags: vec![tag.clone(), value.clone()],
            ..ReleaseRecord::default()
        };
        let back = ReleaseRecord::parse(&record.render(), "r.yaml").unwrap();
        prop_assert_eq!(back, record);
        let approval = Approval { approved_by: value, tag, ..Approval::default() };
        let back = Approval::parse(&approval.render(), "a.yaml").unwrap();
        prop_assert_eq!(back, approval);
    }
}
