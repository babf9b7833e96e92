//! Micro benchmark: 100,000 seed-style tags through `filterTags` + numerical selection.
//!
//! Run with `cargo run -p ferry-policy --release --example bench_policy`.

use std::time::Instant;

use ferry_policy::{Policer, PolicyChoice, TagFilter, scan, select_latest};

const PATTERN: &str = r"^staging-v[0-9]+\.[0-9]+\.[0-9]+-[a-f0-9]+-(?P<ts>[0-9]+)$";

fn main() {
    // Deterministic mix of environments, bare SHAs and signature tags (xorshift, no deps).
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut tags: Vec<String> = (0..100_000u64)
        .map(|i| {
            let r = next();
            let sha = format!("{:07x}", r & 0xfff_ffff);
            let ts = 1_700_000_000 + i * 7 + (r >> 40) % 5;
            let (maj, min, pat) = (r % 3, (r >> 8) % 20, (r >> 16) % 50);
            match i % 5 {
                0 => format!("develop-v{maj}.{min}.{pat}-{sha}-{ts}"),
                1 => format!("staging-v{maj}.{min}.{pat}-{sha}-{ts}"),
                2 => format!("production-v{maj}.{min}.{pat}-{sha}-{ts}"),
                3 => format!("{sha}{:09x}", r >> 28),
                _ => format!("staging-v{maj}.{min}.{pat}-{sha}-{ts}.sig"),
            }
        })
        .collect();
    scan::sort_desc(&mut tags);

    let policer = match Policer::new(&PolicyChoice::Numerical {
        order: "asc".into(),
    }) {
        Ok(p) => p,
        Err(e) => return eprintln!("policer: {e}"),
    };
    let filter = match TagFilter::new(Some(PATTERN), Some("$ts")) {
        Ok(f) => f,
        Err(e) => return eprintln!("filter: {e}"),
    };

    // The first run includes regex cache warm-up; report it and the best of five.
    let mut latest = String::new();
    let mut best = f64::MAX;
    let mut first = 0.0;
    for run in 0..5 {
        let start = Instant::now();
        latest = match select_latest(&tags, &filter, &policer) {
            Ok(t) => t,
            Err(e) => return eprintln!("select: {e}"),
        };
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        if run == 0 {
            first = ms;
        }
        best = best.min(ms);
    }
    let start = Instant::now();
    let kept = filter.apply(&tags).len();
    let filter_ms = start.elapsed().as_secs_f64() * 1000.0;
    println!("tags: {}, candidates: {kept}, latest: {latest}", tags.len());
    println!("filter alone: {filter_ms:.2} ms");
    println!("filter + numerical selection: first run {first:.2} ms, best of 5 {best:.2} ms");
}
