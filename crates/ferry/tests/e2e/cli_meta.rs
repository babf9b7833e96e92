//! `ferry completions`, `ferry man` and `ferry version` without an app (issue 16).

use std::process::Command;

use crate::common::*;

#[test]
fn bash_completions_source_cleanly() {
    let bin = bin();
    let script = format!(
        "source <('{}' completions bash) && complete -p ferry",
        bin.display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("-F _ferry ferry"), "{stdout}");
}

#[test]
fn zsh_and_fish_completions_and_man_page() {
    let zsh = ferry(&["completions", "zsh"]);
    zsh.expect_code(0);
    assert!(zsh.stdout.starts_with("#compdef ferry"), "{}", zsh.stdout);
    let fish = ferry(&["completions", "fish"]);
    fish.expect_code(0);
    assert!(fish.stdout.contains("complete -c ferry"), "{}", fish.stdout);
    assert!(fish.stdout.contains("reconcile"));
    let man = ferry(&["man"]);
    man.expect_code(0);
    assert!(man.stdout.contains(".TH ferry 1"), "{}", man.stdout);
    assert!(man.stdout.contains("reconcile"));
    ferry(&["completions", "tcsh"]).expect_code(2);
}

#[test]
fn version_without_app_prints_ferry_build() {
    let table = ferry(&["version"]);
    table.expect_code(0);
    assert!(
        table
            .stdout
            .starts_with(&format!("ferry {}\n", env!("CARGO_PKG_VERSION"))),
        "{}",
        table.stdout
    );
    for flags in [&["version", "--json"][..], &["version", "-o", "json"][..]] {
        let r = ferry(flags);
        r.expect_code(0);
        let v = r.json();
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        let rev = v["git_revision"].as_str().unwrap();
        assert!(
            rev == "unknown" || (rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())),
            "{rev}"
        );
        let date = v["build_date"].as_str().unwrap();
        assert!(date == "unknown" || date.ends_with('Z'), "{date}");
        assert!(v["rustc"].as_str().unwrap().starts_with("rustc "), "{v}");
    }
    assert_eq!(
        ferry(&["--version"]).stdout.trim(),
        format!("ferry {}", env!("CARGO_PKG_VERSION"))
    );
    // `--next` needs an app; `ferry version APP` still needs a source.
    ferry(&["version", "--next"]).expect_code(2);
    let app = ferry(&["version", "backend"]);
    assert_ne!(app.code, Some(0), "{}", app.all());
}

#[test]
fn image_push_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_string_lossy().into_owned();
    // Not a layout.
    let r = ferry(&["image", "push", &d, "127.0.0.1:1/repo:v1", "--insecure"]);
    r.expect_code(2);
    assert!(r.stderr.contains("oci-layout"), "{}", r.stderr);
    // No tag, or a digest: refused before any request.
    std::fs::write(
        dir.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("index.json"), r#"{"manifests":[]}"#).unwrap();
    for bad in ["127.0.0.1:1/repo", "127.0.0.1:1/repo@sha256:00"] {
        let r = ferry(&["image", "push", &d, bad, "--insecure"]);
        r.expect_code(2);
        assert!(r.stderr.contains("REGISTRY/REPO:TAG"), "{}", r.stderr);
    }
    // An index naming no manifest.
    let r = ferry(&["image", "push", &d, "127.0.0.1:1/repo:v1", "--insecure"]);
    r.expect_code(2);
    assert!(r.stderr.contains("exactly one"), "{}", r.stderr);
}
