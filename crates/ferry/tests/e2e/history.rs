//! `ferry history` row by row on a scripted repository with a merge, human edits of the same
//! lines, an automation commit, a Flux-style bot commit and a rollback.

use crate::common;

use std::path::Path;

use crate::common::{Workspace, clone, git, git_cmd, init_seed, remote_head};
use ferry_testbed::git::git_servers;

const DEPLOY: &str = "flux/apps/backend/staging/deployment.yaml";
const REG: &str = "127.0.0.1:5000/org";

fn set_tag(root: &Path, tag: &str) {
    let p = root.join(DEPLOY);
    let text = std::fs::read_to_string(&p).unwrap();
    let out: String = text
        .lines()
        .map(|l| {
            if l.contains("$imagepolicy") {
                format!("        image: {REG}/backend:{tag} # {{\"$imagepolicy\": \"staging:backend\"}}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(p, out).unwrap();
}

fn commit(dir: &Path, msg: &str, author: (&str, &str)) -> String {
    let out = git_cmd(dir, &["commit", "-qa", "-m", msg])
        .env("GIT_AUTHOR_NAME", author.0)
        .env("GIT_AUTHOR_EMAIL", author.1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(dir, &["rev-parse", "HEAD"])
}

#[test]
fn history_rows_on_a_repo_with_merges_and_human_edits() {
    let Some(env) = git_servers() else { return };
    let ws = Workspace::new();
    let repo = env.new_repo("history", false).unwrap();
    let url = env.file(&repo);
    let seed = ws.join("seed");
    init_seed(&seed, REG, &url, &[]);
    common::push_tree(&env, &repo, &seed);
    let scaffold = remote_head(&env, &repo);

    let d = clone(&env, &repo);
    let d = d.path();
    // 1. Ferry automation commit.
    set_tag(d, "staging-v1");
    let c_auto = commit(
        d,
        "staging: update backend image\n\nFerry-Kind: automation\nFerry-Automation: staging/backend\n",
        ("ferry", "ferry@localhost"),
    );
    // 2. Side branch: a person edits the marked line by hand.
    git(d, &["checkout", "-q", "-b", "hotfix"]);
    set_tag(d, "staging-v2-hotfix");
    let c_side = commit(d, "hotfix image", ("erin", "erin@example.invalid"));
    // 3. Main: a person edits another line of the same file (no value change).
    git(d, &["checkout", "-q", "main"]);
    let p = d.join(DEPLOY);
    let t = std::fs::read_to_string(&p)
        .unwrap()
        .replace("replicas: 1", "replicas: 2");
    std::fs::write(&p, t).unwrap();
    commit(d, "scale to 2", ("frank", "frank@example.invalid"));
    // 4. Merge the side branch (no fast-forward).
    git(
        d,
        &["merge", "-q", "--no-ff", "-m", "Merge hotfix", "hotfix"],
    );
    let c_merge = git(d, &["rev-parse", "HEAD"]);
    // 5. A Flux bot commit (no trailers, the automation's author).
    set_tag(d, "staging-v3");
    let c_flux = commit(
        d,
        "Update from image update automation",
        ("fluxcdbot", "ferry@localhost"),
    );
    // 6. A person edits the marked line on main by hand.
    set_tag(d, "staging-v4");
    let c_hand = commit(d, "hand edit", ("gina", "gina@example.invalid"));
    // 7. A rollback commit.
    set_tag(d, "staging-v3");
    let c_rb = commit(
        d,
        "Roll back staging/backend to staging-v3\n\nFerry-Kind: rollback\nFerry-Reason: v4 crashes\n",
        ("ferry", "ferry@localhost"),
    );
    git(d, &["push", "-q", "origin", "main"]);

    let state = ws.state_str();
    let cache = ws.cache_str();
    let args = [
        "history",
        "staging",
        "backend",
        "-o",
        "json",
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
    let r = common::ferry(&args);
    r.expect_code(0);
    let rows = r.json();
    let rows = rows.as_array().unwrap();
    let got: Vec<(String, String, String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["old_tag"].as_str().unwrap().to_string(),
                r["new_tag"].as_str().unwrap().to_string(),
                r["commit"].as_str().unwrap().to_string(),
                r["kind"].as_str().unwrap().to_string(),
                r["author"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    let want = [
        (
            s(""),
            s("staging-v0.0.0-0000000-0"),
            scaffold.clone(),
            s("manual edit"),
            s("human <human@example.invalid>"),
            s("initial layout"),
        ),
        (
            s("staging-v0.0.0-0000000-0"),
            s("staging-v1"),
            c_auto,
            s("automation"),
            s("ferry <ferry@localhost>"),
            s("staging: update backend image"),
        ),
        (
            s("staging-v1"),
            s("staging-v2-hotfix"),
            c_merge.clone(),
            s("manual edit"),
            s("erin <erin@example.invalid>"),
            s("hotfix image"),
        ),
        (
            s("staging-v2-hotfix"),
            s("staging-v3"),
            c_flux,
            s("automation"),
            s("fluxcdbot <ferry@localhost>"),
            s("Update from image update automation"),
        ),
        (
            s("staging-v3"),
            s("staging-v4"),
            c_hand,
            s("manual edit"),
            s("gina <gina@example.invalid>"),
            s("hand edit"),
        ),
        (
            s("staging-v4"),
            s("staging-v3"),
            c_rb,
            s("rollback"),
            s("ferry <ferry@localhost>"),
            s("v4 crashes"),
        ),
    ];
    assert_eq!(got.len(), want.len(), "{rows:#?}");
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        assert_eq!(g, w, "row {i}");
    }
    assert_eq!(rows[2]["merged_from"], c_side.as_str());
    assert!(
        rows.iter()
            .all(|r| r["time"].as_str().unwrap().ends_with('Z'))
    );

    // The table has one line per change plus the header.
    let table_args: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| *a != "-o" && *a != "json")
        .collect();
    let t = common::ferry(&table_args);
    t.expect_code(0);
    assert_eq!(t.stdout.lines().count(), 7, "{}", t.stdout);
    assert!(
        t.stdout.contains("staging-v1 → staging-v2-hotfix"),
        "{}",
        t.stdout
    );
    assert!(t.stdout.contains("(merge of "), "{}", t.stdout);
}
