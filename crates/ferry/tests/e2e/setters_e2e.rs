//! `ferry setters apply` end to end (issue 3 §1, offline CI mode): each change is printed as
//! file, object, setter, old → new; `--dry-run` prints a unified diff and writes nothing; a file
//! that fails to parse is skipped with a warning naming file and line while the others are
//! updated; bad `--set` values are bad input (exit 2, nothing written).

use crate::common::*;

const REG: &str = "127.0.0.1:5000/org";

fn seed_tree(ws: &Workspace) -> std::path::PathBuf {
    let dir = ws.join("gitops");
    init_seed(&dir, REG, "file:///nonexistent.git", &[]);
    dir
}

#[test]
fn apply_prints_each_change_and_edits_only_the_scalar() {
    let ws = Workspace::new();
    let dir = seed_tree(&ws);
    let before = snapshot(&dir);
    let d = dir.to_str().unwrap();
    let new_backend = format!("{REG}/backend:develop-v1.2.3-abcdef0-1738869999");
    let new_frontend = format!("{REG}/frontend:staging-v1.2.0-1234567-1738860000");
    let r = ferry(&[
        "setters",
        "apply",
        "--dir",
        d,
        "--set",
        &format!("develop:backend={new_backend}"),
        "--set",
        &format!("staging:frontend={new_frontend}"),
    ]);
    r.expect_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    // file: object: setter: old -> new
    let backend_line = format!(
        "flux/apps/backend/develop/deployment.yaml: Deployment develop/backend: develop:backend: {REG}/backend:develop-v0.0.0-0000000-0 -> {new_backend}"
    );
    assert!(
        lines.contains(&backend_line.as_str()),
        "missing {backend_line:?} in\n{}",
        r.stdout
    );
    let tag_line = "flux/apps/frontend/overlays/staging/kustomization.yaml: Kustomization : staging:frontend:tag: staging-v0.0.0-0000000-0 -> staging-v1.2.0-1234567-1738860000";
    assert!(
        lines.iter().any(|l| l.starts_with("flux/apps/frontend/overlays/staging/kustomization.yaml:")
            && l.ends_with("staging:frontend:tag: staging-v0.0.0-0000000-0 -> staging-v1.2.0-1234567-1738860000")),
        "missing a line like {tag_line:?} in\n{}",
        r.stdout
    );
    assert_eq!(
        lines.len(),
        2,
        "only the changed setters are printed (the :name is unchanged):\n{}",
        r.stdout
    );

    let after = snapshot(&dir);
    let changed: Vec<&String> = after.keys().filter(|k| after[*k] != before[*k]).collect();
    assert_eq!(
        changed,
        [
            "flux/apps/backend/develop/deployment.yaml",
            "flux/apps/frontend/overlays/staging/kustomization.yaml"
        ]
    );
    let dep =
        String::from_utf8(after["flux/apps/backend/develop/deployment.yaml"].clone()).unwrap();
    let want = String::from_utf8(before["flux/apps/backend/develop/deployment.yaml"].clone())
        .unwrap()
        .replace(
            &format!("{REG}/backend:develop-v0.0.0-0000000-0"),
            &new_backend,
        );
    assert_eq!(dep, want, "bytes other than the scalar changed");

    // JSON output of the same kind of run (nothing left to change now).
    let j = ferry(&[
        "setters",
        "apply",
        "--dir",
        d,
        "--set",
        &format!("develop:backend={new_backend}"),
        "-o",
        "json",
    ]);
    j.expect_code(0);
    assert_eq!(j.json(), serde_json::json!([]));
}

#[test]
fn dry_run_prints_a_unified_diff_and_writes_nothing() {
    let ws = Workspace::new();
    let dir = seed_tree(&ws);
    let before = snapshot(&dir);
    let d = dir.to_str().unwrap();
    let r = ferry(&[
        "setters",
        "apply",
        "--dir",
        d,
        "--dry-run",
        "--set",
        &format!("production:backend={REG}/backend:production-v2.0.0-fedcba9-1738999999"),
    ]);
    r.expect_code(0);
    assert!(snapshot(&dir) == before, "dry run wrote files");
    let out = &r.stdout;
    assert!(out.contains("--- "), "{out}");
    assert!(out.contains("+++ "), "{out}");
    assert!(out.contains("@@ "), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with('-')
            && !l.starts_with("---")
            && l.contains("backend:production-v0.0.0-0000000-0")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with('+')
            && !l.starts_with("+++")
            && l.contains("backend:production-v2.0.0-fedcba9-1738999999")),
        "{out}"
    );
    assert!(
        out.contains("+++ b/flux/apps/backend/production/deployment.yaml"),
        "{out}"
    );
    // The diff is what the real run writes: it applies with `git apply` inside --dir.
    let patch = ws.join("dry.patch");
    let diff: String = out
        .lines()
        .skip_while(|l| !l.starts_with("--- "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&patch, diff).unwrap();
    git(&dir, &["init", "-q"]);
    git(&dir, &["apply", "--check", patch.to_str().unwrap()]);
}

#[test]
fn a_broken_file_is_skipped_with_a_warning_and_the_others_are_updated() {
    let ws = Workspace::new();
    let dir = ws.join("tree");
    write_tree(
        &dir,
        &[
            (
                "good.yaml",
                "# keep me\r\nimage: reg/app:1.0.0 # {\"$imagepolicy\": \"ns:app\"}\r\n\r\nother: x\r\n",
            ),
            (
                "broken.yaml",
                "a: [unclosed\nimage: reg/app:1.0.0 # {\"$imagepolicy\": \"ns:app\"}\n",
            ),
            ("unmarked.yaml", "image: reg/app:1.0.0\n"),
        ],
    );
    let r = ferry(&[
        "setters",
        "apply",
        "--dir",
        dir.to_str().unwrap(),
        "--set",
        "ns:app=reg/app:2.0.0",
    ]);
    r.expect_code(0);
    assert!(r.stderr.contains("warning: broken.yaml:"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join("good.yaml")).unwrap(),
        "# keep me\r\nimage: reg/app:2.0.0 # {\"$imagepolicy\": \"ns:app\"}\r\n\r\nother: x\r\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("broken.yaml")).unwrap(),
        "a: [unclosed\nimage: reg/app:1.0.0 # {\"$imagepolicy\": \"ns:app\"}\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("unmarked.yaml")).unwrap(),
        "image: reg/app:1.0.0\n"
    );
}

#[test]
fn bad_set_values_are_bad_input_and_write_nothing() {
    let ws = Workspace::new();
    let dir = seed_tree(&ws);
    let before = snapshot(&dir);
    let d = dir.to_str().unwrap();
    for bad in [
        "develop:backend",                        // no '='
        "developbackend=reg/app:1",               // no NS:NAME
        "develop:backend=127.0.0.1:5000/org/app", // no tag
        "develop:backend=reg/app:1@sha256:abc",   // short digest
    ] {
        let r = ferry(&["setters", "apply", "--dir", d, "--set", bad]);
        r.expect_code(2);
        assert!(r.stderr.contains("--set"), "{bad}: {}", r.stderr);
        assert_eq!(
            r.stderr.trim().lines().count(),
            1,
            "{bad}: not one line: {}",
            r.stderr
        );
    }
    let r = ferry(&[
        "setters",
        "apply",
        "--dir",
        &format!("{d}/nope"),
        "--set",
        "a:b=reg/app:1",
    ]);
    r.expect_code(2);
    assert!(snapshot(&dir) == before, "bad input wrote files");
}
