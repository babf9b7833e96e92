//! DORA figures on a scripted production history whose answers were computed by hand.

use super::*;
use crate::rollback::MarkerState;

const H: i64 = 3_600;
const S: i64 = 1_700_000_000; // window start
const END: i64 = S + 30 * DAY;

fn change(time: i64, kind: ChangeKind, old: &str, new: &str, build: Option<i64>) -> Change {
    Change {
        time,
        kind,
        old_tag: old.into(),
        new_tag: new.into(),
        build_ts: build,
    }
}

/// P0 created before the window; P1 promoted before it; then, in the window: P2 (built 3 h
/// earlier), P3 (5 h) rolled back 1 h later, P4 (automation, 1 h) rolled back 30 min later,
/// P5 (a hand edit, no traceable build), P6 (2 days) rolled back and not restored yet.
fn scripted() -> Vec<Change> {
    use ChangeKind::*;
    vec![
        change(S - 5 * DAY, Manual, "", "P0", None),
        change(S - DAY, Promotion, "P0", "P1", Some(S - 2 * DAY)),
        change(S + DAY, Promotion, "P1", "P2", Some(S + DAY - 3 * H)),
        change(
            S + 2 * DAY,
            Promotion,
            "P2",
            "P3",
            Some(S + 2 * DAY - 5 * H),
        ),
        change(S + 2 * DAY + H, Rollback, "P3", "P2", None),
        change(S + 3 * DAY, Automation, "P2", "P4", Some(S + 3 * DAY - H)),
        change(S + 3 * DAY + H / 2, Rollback, "P4", "P2", None),
        change(S + 4 * DAY, Manual, "P2", "P5", None),
        change(S + 10 * DAY, Promotion, "P5", "P6", Some(S + 8 * DAY)),
        change(S + 10 * DAY + 2 * H, Rollback, "P6", "P5", None),
    ]
}

#[test]
fn figures_of_the_scripted_history() {
    let f = compute("backend", "production", &scripted(), S, END);
    // Deployments in the window: P2, P3, P4, P5, P6.
    assert_eq!(f.deployments, 5);
    assert_eq!(f.deployments_per_day, 5.0 / 30.0);
    assert_eq!(f.rollbacks, 3);
    assert_eq!(f.change_failure_rate, Some(0.6));
    // Lead times 3 h, 5 h, 1 h, 2 d: median (3 h + 5 h) / 2, mean 205200 s / 4.
    assert_eq!(
        f.lead_time,
        Spread {
            samples: 4,
            median_seconds: Some(4 * H),
            mean_seconds: Some(51_300),
        }
    );
    // Both early rollbacks are restored by P5 (P4 was itself rolled back):
    // 2 d - 1 h = 169200 s and 1 d - 30 min = 84600 s.
    assert_eq!(
        f.time_to_restore,
        Spread {
            samples: 2,
            median_seconds: Some(126_900),
            mean_seconds: Some(126_900),
        }
    );
    assert_eq!(f.unrestored, 1);
}

#[test]
fn the_window_is_open_at_its_start_and_closed_at_its_end() {
    use ChangeKind::*;
    let changes = vec![
        change(S, Promotion, "A", "B", Some(S - H)),
        change(END, Promotion, "B", "C", Some(END - 2 * H)),
        change(END + 1, Rollback, "C", "B", None),
    ];
    let f = compute("a", "production", &changes, S, END);
    assert_eq!(f.deployments, 1);
    assert_eq!(f.rollbacks, 0);
    assert_eq!(f.lead_time.median_seconds, Some(2 * H));
    assert_eq!(f.change_failure_rate, Some(0.0));
}

#[test]
fn no_changes_no_rates() {
    let f = compute("a", "production", &[], S, END);
    assert_eq!(f.deployments, 0);
    assert_eq!(f.deployments_per_day, 0.0);
    assert_eq!(f.change_failure_rate, None);
    assert_eq!(f.lead_time, Spread::default());
    assert_eq!(f.time_to_restore, Spread::default());
}

fn row(time: &str, kind: ChangeKind, old: &str, new: &str) -> HistoryRow {
    HistoryRow {
        time: time.into(),
        old_tag: old.into(),
        new_tag: new.into(),
        digest: None,
        commit: "c".into(),
        merged_from: None,
        author: "a <a@example.invalid>".into(),
        kind,
        reason: String::new(),
        old: MarkerState::default(),
        new: MarkerState::default(),
        first_seen_live: None,
    }
}

#[test]
fn build_time_is_the_earliest_ts_of_the_build_across_stages() {
    let t = TagTemplate::parse(DEFAULT_TAG_TEMPLATE).unwrap();
    let develop = vec![row(
        "1970-01-01T00:01:40Z",
        ChangeKind::Automation,
        "develop-v0.0.0-0000000-0",
        "develop-v1.0.0-abc1234-100",
    )];
    let staging = vec![row(
        "1970-01-01T00:05:00Z",
        ChangeKind::Automation,
        "staging-v0.0.0-0000000-0",
        "staging-v1.0.0-abc1234-200",
    )];
    let production = vec![row(
        "1970-01-01T00:10:00Z",
        ChangeKind::Promotion,
        "production-v0.0.0-0000000-0",
        "production-v1.0.0-abc1234-300",
    )];
    let builds = build_times([
        ("develop", &t, develop.as_slice()),
        ("staging", &t, staging.as_slice()),
        ("production", &t, production.as_slice()),
    ]);
    // ts 0 (the scaffold's placeholder) is no build time.
    assert_eq!(builds.get("0000000"), None);
    assert_eq!(builds.get("abc1234"), Some(&100));
    let c = changes("production", &t, &production, &builds);
    assert_eq!(c[0].time, 600);
    assert_eq!(c[0].build_ts, Some(100));
    assert_eq!(
        compute("a", "production", &c, 0, 700)
            .lead_time
            .median_seconds,
        Some(500)
    );
}

#[test]
fn since_accepts_days_weeks_and_go_durations() {
    assert_eq!(parse_since("30d").unwrap().as_secs(), 30 * 86_400);
    assert_eq!(parse_since("2w").unwrap().as_secs(), 14 * 86_400);
    assert_eq!(parse_since("12h").unwrap().as_secs(), 12 * 3_600);
    let e = parse_since("soon").unwrap_err();
    assert!(e.contains("--since \"soon\""), "{e}");
}
