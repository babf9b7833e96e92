//! `ferry metrics dora` against a real Git server: a scripted history (develop builds,
//! production promotions, a rollback) with commit times set by hand, figures computed by hand.

use crate::common;
use std::path::Path;

use crate::common::{Workspace, clone, git, git_cmd, init_seed};
use ferry_testbed::git::git_servers;

const REG: &str = "127.0.0.1:5000/org";
const DAY: i64 = 86_400;

fn set_tag(root: &Path, env: &str, tag: &str) {
    let p = root.join(format!("flux/apps/backend/{env}/deployment.yaml"));
    let text = std::fs::read_to_string(&p).unwrap();
    let out: String = text
        .lines()
        .map(|l| {
            if l.contains("$imagepolicy") {
                format!(
                    "        image: {REG}/backend:{tag} # {{\"$imagepolicy\": \"{env}:backend\"}}\n"
                )
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(p, out).unwrap();
}

/// Sets ENV's tag and commits at Unix time `at` with the given trailers.
fn change(dir: &Path, env: &str, tag: &str, at: i64, kind: &str) {
    set_tag(dir, env, tag);
    let msg = format!("{env}: {tag}\n\nFerry-Kind: {kind}\n");
    let date = format!("@{at} +0000");
    let out = git_cmd(dir, &["commit", "-qa", "-m", &msg])
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dora_figures_from_a_real_repository_match_the_hand_computed_ones() {
    let Some(env) = git_servers() else { return };
    let ws = Workspace::new();
    let repo = env.new_repo("dora", false).unwrap();
    let url = env.file(&repo);
    let seed = ws.join("seed");
    init_seed(&seed, REG, &url, &[]);
    common::push_tree(&env, &repo, &seed);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let b = now - 10 * DAY;
    let d = clone(&env, &repo);
    let d = d.path();
    // Build aaaaaaa at b; production 2 h later (lead 7200 s).
    change(
        d,
        "develop",
        &format!("develop-v1.0.0-aaaaaaa-{b}"),
        b + 60,
        "automation",
    );
    let p1 = format!("production-v1.0.0-aaaaaaa-{}", b + 3_600);
    change(d, "production", &p1, b + 7_200, "promotion");
    // Build bbbbbbb a day later; production 3 h after the build (lead 10800 s) ...
    let b2 = b + DAY;
    change(
        d,
        "develop",
        &format!("develop-v1.0.1-bbbbbbb-{b2}"),
        b2 + 60,
        "automation",
    );
    let p2 = format!("production-v1.0.1-bbbbbbb-{}", b2 + 3_600);
    change(d, "production", &p2, b2 + 10_800, "promotion");
    // ... rolled back an hour later; restored by ccccccc (its own tag's ts is its build).
    change(d, "production", &p1, b2 + 14_400, "rollback");
    let b3 = b + 2 * DAY;
    let p3 = format!("production-v1.0.2-ccccccc-{}", b3 - 1_800);
    change(d, "production", &p3, b3, "promotion");
    git(d, &["push", "-q", "origin", "main"]);

    let (state, cache) = (ws.state_str(), ws.cache_str());
    let source = [
        "--repo",
        &url,
        "--path",
        "flux",
        "--var",
        "image_registry=127.0.0.1:5000/org",
        "--cache-dir",
        &cache,
        "--state",
        &state,
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["metrics", "dora"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&source);
        common::ferry(&args)
    };
    let r = run(&["backend", "--since", "30d", "-o", "json"]);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["window_days"], 30.0, "{j:#}");
    let apps = j["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 1, "{j:#}");
    let f = &apps[0];
    assert_eq!(f["app"], "backend");
    assert_eq!(f["env"], "production");
    assert_eq!(f["deployments"], 3, "{f:#}");
    assert_eq!(f["deployments_per_day"], 0.1);
    assert_eq!(f["rollbacks"], 1);
    assert_eq!(f["change_failure_rate"], 1.0 / 3.0);
    assert_eq!(f["lead_time"]["samples"], 3);
    assert_eq!(f["lead_time"]["median_seconds"], 7_200);
    assert_eq!(f["lead_time"]["mean_seconds"], 6_600);
    assert_eq!(f["time_to_restore"]["samples"], 1);
    assert_eq!(f["time_to_restore"]["median_seconds"], DAY - 14_400);
    assert_eq!(f["unrestored"], 0);

    // A window of one day ending now holds none of it.
    let r = run(&["backend", "--since", "1d", "-o", "json"]);
    r.expect_code(0);
    assert_eq!(r.json()["apps"][0]["deployments"], 0);

    // The table: one row per app.
    let r = run(&["--since", "30d"]);
    r.expect_code(0);
    let line = r.stdout.lines().find(|l| l.starts_with("backend")).unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols[..5],
        ["backend", "production", "3", "0.10", "2h"],
        "{}",
        r.stdout
    );

    // Bad input: exit 2, named.
    let r = run(&["backend", "--since", "soon"]);
    r.expect_code(2);
    assert!(r.stderr.contains("--since \"soon\""), "{}", r.stderr);
    let r = run(&["nosuch"]);
    r.expect_code(2);
    assert!(r.stderr.contains("no app nosuch"), "{}", r.stderr);
    let r = run(&["backend", "--env", "qa"]);
    r.expect_code(2);
    assert!(r.stderr.contains("no environment qa"), "{}", r.stderr);
}
