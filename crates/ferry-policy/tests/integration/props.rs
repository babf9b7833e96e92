//! Property tests (also fuzzed in fuzz/, target `policy`): semver comparison is a total order,
//! `filterTags` with a `$ts` extract finds the timestamp, and the policers elect from the
//! candidates they are given.

use std::cmp::Ordering;

use ferry_policy::{Constraints, Policer, PolicyChoice, TagFilter, Version};
use proptest::prelude::*;

/// Versions in Masterminds syntax, including prereleases, build metadata and a `v` prefix.
fn version() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        0u64..4,
        0u64..4,
        0u64..4,
        proptest::option::of(proptest::collection::vec(
            prop_oneof!["(0|[1-9][0-9]{0,2})", "[A-Za-z-][0-9A-Za-z-]{0,3}"],
            1..4,
        )),
        proptest::option::of("[0-9A-Za-z-]{1,4}"),
    )
        .prop_map(|(v, major, minor, patch, pre, meta)| {
            let mut s = format!("{}{major}.{minor}.{patch}", if v { "v" } else { "" });
            if let Some(pre) = pre {
                s.push('-');
                s.push_str(&pre.join("."));
            }
            if let Some(meta) = meta {
                s.push('+');
                s.push_str(&meta);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn semver_is_a_total_order(tags in proptest::collection::vec(version(), 1..12)) {
        let vs: Vec<Version> = tags.iter().map(|t| Version::parse(t).unwrap()).collect();
        for a in &vs {
            prop_assert_eq!(a.cmp(a), Ordering::Equal);
            for b in &vs {
                prop_assert_eq!(a.cmp(b), b.cmp(a).reverse(), "antisymmetry {} {}", a, b);
                prop_assert_eq!(a == b, a.cmp(b) == Ordering::Equal);
                for c in &vs {
                    if a <= b && b <= c {
                        prop_assert!(a <= c, "transitivity {} {} {}", a, b, c);
                    }
                }
            }
        }
        // Sorting twice from different starting orders gives the same order of versions.
        let mut x = vs.clone();
        let mut y: Vec<Version> = vs.iter().rev().cloned().collect();
        x.sort();
        y.sort();
        for (a, b) in x.iter().zip(&y) {
            prop_assert_eq!(a.cmp(b), Ordering::Equal);
        }
    }

    #[test]
    fn semver_policy_elects_the_maximum_in_range(tags in proptest::collection::vec(version(), 1..12)) {
        let policer = Policer::new(&PolicyChoice::SemVer { range: ">=0.0.0-0".into() }).unwrap();
        let i = policer.latest_index(&tags).unwrap();
        let best = Version::parse(&tags[i]).unwrap();
        for t in &tags {
            prop_assert!(Version::parse(t).unwrap() <= best, "{} > {}", t, tags[i]);
        }
        prop_assert!(Constraints::parse(">=0.0.0-0").unwrap().check(&best));
    }

    #[test]
    fn ts_extract_finds_the_timestamp(
        runs in proptest::collection::btree_map("[a-f0-9]{7}", 0u64..10_000_000_000, 1..10),
        noise in proptest::collection::vec("[a-z]{1,8}-[0-9]{1,3}", 0..4),
    ) {
        let mut tags: Vec<String> = runs.iter().map(|(sha, ts)| format!("main-{sha}-{ts}")).collect();
        tags.extend(noise);
        tags.sort_by(|a, b| b.cmp(a)); // store order: descending bytes
        let filter = TagFilter::new(Some("^main-[a-f0-9]+-(?P<ts>[0-9]+)$"), Some("$ts")).unwrap();
        let candidates = filter.apply(&tags);
        for c in &candidates {
            let suffix = format!("-{}", c.candidate);
            prop_assert!(c.original.ends_with(&suffix));
        }
        let names: Vec<&str> = candidates.iter().map(|c| c.candidate.as_ref()).collect();
        let policer = Policer::new(&PolicyChoice::Numerical { order: "asc".into() }).unwrap();
        let latest = policer.latest(&names).unwrap();
        prop_assert_eq!(latest.parse::<u64>().unwrap(), *runs.values().max().unwrap());
    }
}
