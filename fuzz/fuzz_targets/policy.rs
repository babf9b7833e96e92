//! The ImagePolicy pipeline: `filterTags` (RE2 pattern + `$ts` extract), the three policers,
//! Masterminds semver parsing/constraints, and Go float parsing.
//! Input: line 1 = pattern, line 2 = extract, line 3 = semver range, other lines = tags.
//! Invariants: semver comparison is a total order (reflexive, antisymmetric, transitive,
//! consistent with Display round trips); a chosen tag is one of the input tags; candidates
//! come from tags the pattern matches.
#![no_main]

use std::cmp::Ordering;

use ferry_policy::{Constraints, Policer, PolicyChoice, TagFilter, Version, parse_go_float};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let (Some(pattern), Some(extract), Some(range)) = (lines.next(), lines.next(), lines.next())
    else {
        return;
    };
    let tags: Vec<&str> = lines.take(64).collect();

    let versions: Vec<Version> = tags.iter().filter_map(|t| Version::parse(t).ok()).collect();
    for a in &versions {
        assert_eq!(a.cmp(a), Ordering::Equal);
        for b in &versions {
            assert_eq!(a.cmp(b), b.cmp(a).reverse(), "antisymmetry: {a} vs {b}");
            assert_eq!(a == b, a.cmp(b) == Ordering::Equal);
            for c in versions.iter().take(16) {
                if a <= b && b <= c {
                    assert!(a <= c, "transitivity: {a} <= {b} <= {c}");
                }
            }
        }
    }
    if let Ok(constraints) = Constraints::parse(range) {
        for v in &versions {
            let _ = constraints.check(v);
        }
    }
    for t in &tags {
        let _ = parse_go_float(t);
    }

    if pattern.len() > 256 {
        return; // the regex crate bounds compile size; keep executions fast
    }
    let Ok(filter) = TagFilter::new(Some(pattern), Some(extract)) else {
        return;
    };
    let candidates = filter.apply(&tags);
    for c in &candidates {
        assert!(tags.contains(&c.original));
    }
    let names: Vec<&str> = candidates.iter().map(|c| c.candidate.as_ref()).collect();
    for choice in [
        PolicyChoice::SemVer { range: range.to_string() },
        PolicyChoice::Alphabetical { order: "desc".into() },
        PolicyChoice::Numerical { order: "asc".into() },
    ] {
        let Ok(policer) = Policer::new(&choice) else {
            continue;
        };
        if let Ok(i) = policer.latest_index(&names) {
            assert!(i < names.len());
        }
    }
});
