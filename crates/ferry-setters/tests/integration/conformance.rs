//! Replays the upstream Flux setter fixtures (`flux-setters/cases.json`) byte for byte.

use crate::util;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use ferry_setters::{
    Change, FileChanges, ImageRef, ObjectId, PolicyValues, WriteMode, apply_tree,
    scan_markers_with_warnings,
};
use serde_json::Value;

fn policies(case: &Value) -> PolicyValues {
    let mut values = PolicyValues::new();
    for p in case["policies"].as_array().into_iter().flatten() {
        let r = &p["latestRef"];
        values.insert(
            format!(
                "{}:{}",
                p["namespace"].as_str().unwrap(),
                p["name"].as_str().unwrap()
            ),
            ImageRef {
                name: r["name"].as_str().unwrap().to_string(),
                tag: r["tag"].as_str().unwrap().to_string(),
                digest: r["digest"].as_str().map(str::to_string),
            },
        );
    }
    values
}

fn expected_result(v: &Value) -> FileChanges {
    let mut files = FileChanges::new();
    for (file, f) in v.as_object().unwrap() {
        let mut objects = BTreeMap::new();
        for o in f["objects"].as_array().unwrap() {
            let id = &o["id"];
            let s = |k: &str| id[k].as_str().unwrap().to_string();
            let oid = ObjectId {
                api_version: s("apiVersion"),
                kind: s("kind"),
                name: s("name"),
                namespace: s("namespace"),
            };
            let changes: Vec<Change> = o["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| Change {
                    old_value: c["old"].as_str().unwrap().to_string(),
                    new_value: c["new"].as_str().unwrap().to_string(),
                    setter: c["setter"].as_str().unwrap().to_string(),
                })
                .collect();
            objects.insert(oid, changes);
        }
        files.insert(file.clone(), objects);
    }
    files
}

/// The JSON marker literal named in a case's `preprocess` text, e.g. `{"$imagepolicy": "ns:p"}`.
fn preprocess_marker(case: &Value) -> Option<String> {
    let text = case["preprocess"].as_str()?;
    let start = text.find('{')?;
    let end = start + text[start..].find('}')?;
    let marker = &text[start..=end];
    (!marker.contains('<')).then(|| marker.to_string())
}

/// Recreates symlinks that the corpus copy stored as plain files (its notes say which).
fn restore_symlinks(case: &Value, dir: &Path) {
    for note in case["notes"].as_array().into_iter().flatten() {
        let note = note.as_str().unwrap_or_default();
        let Some(rest) = note.strip_prefix("original/") else {
            continue;
        };
        let Some((name, tail)) = rest.split_once(" is a DANGLING symlink (-> ") else {
            continue;
        };
        let target = tail.split(')').next().unwrap();
        let p = dir.join(name);
        let _ = fs::remove_file(&p);
        std::os::unix::fs::symlink(target, &p).unwrap();
    }
}

fn run_case(base: &Path, case: &Value) -> Result<(), String> {
    let input = base.join(case["input_dir"].as_str().unwrap());
    let expected = base.join(case["expected_dir"].as_str().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let exp = tmp.path().join("expected");
    util::copy_tree(&input, &work);
    util::copy_tree(&expected, &exp);
    restore_symlinks(case, &work);
    let mut values = policies(case);
    if let Some(marker) = preprocess_marker(case) {
        util::replace_in_tree(&work, "SETTER_SITE", &marker);
        util::replace_in_tree(&exp, "SETTER_SITE", &marker);
    } else if case["preprocess"].is_string() {
        // The controller e2e fixture names the policy generically: `<ns>:<policy>` with
        // latestRef helloworld:1.0.1.
        let marker = r#"{"$imagepolicy": "e2e-ns:policy"}"#;
        util::replace_in_tree(&work, "SETTER_SITE", marker);
        util::replace_in_tree(&exp, "SETTER_SITE", marker);
        values.insert(
            "e2e-ns:policy".into(),
            ImageRef {
                name: "helloworld".into(),
                tag: "1.0.1".into(),
                digest: None,
            },
        );
    }
    let mode = case["mode"].as_str().unwrap_or("in-place");
    let update_path = case["automation"]["update"]["path"].as_str().unwrap_or(".");
    let root = work.join(update_path);
    let mut problems = Vec::new();
    if mode.starts_with("write changed files only") {
        let result = apply_tree(&root, &values, WriteMode::DryRun).map_err(|e| e.to_string())?;
        let out = tmp.path().join("out");
        fs::create_dir_all(&out).unwrap();
        for (rel, edit) in &result.edits {
            let p = out.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, &edit.new).unwrap();
        }
        problems.extend(util::diff_trees(&out, &exp, true));
        if !result.warnings.is_empty() {
            problems.push(format!("unexpected warnings: {:?}", result.warnings));
        }
        if let Some(er) = case.get("expected_result") {
            let want = expected_result(er);
            if result.files != want {
                problems.push(format!(
                    "result differs:\n got {:#?}\nwant {:#?}",
                    result.files, want
                ));
            }
        }
        if let Some(files) = case["scanner_expectation"]["files_parsed"].as_array() {
            let (sites, warnings) = scan_markers_with_warnings(&root).map_err(|e| e.to_string())?;
            let mut got: Vec<String> = sites.iter().map(|s| s.file.clone()).collect();
            got.dedup();
            got.sort();
            let mut want: Vec<String> = files
                .iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect();
            want.sort();
            if got != want || !warnings.is_empty() {
                problems.push(format!("scanned files {got:?} != {want:?} ({warnings:?})"));
            }
        }
    } else {
        let result = apply_tree(&root, &values, WriteMode::Write).map_err(|e| e.to_string())?;
        if result.is_empty() {
            problems.push("no change recorded".into());
        }
        problems.extend(util::diff_trees(&work, &exp, true));
        // Idempotence: a second run changes nothing.
        let again = apply_tree(&root, &values, WriteMode::Write).map_err(|e| e.to_string())?;
        if !again.is_empty() {
            problems.push(format!("second run changed {:?}", again.files));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn flux_setters_conformance() {
    let Some(dir) = ferry_testbed::conformance_dir() else {
        return;
    };
    let base = dir.join("flux-setters");
    let cases: Value = serde_json::from_slice(&fs::read(base.join("cases.json")).unwrap()).unwrap();
    let (mut passed, mut failed, mut out_of_scope) = (0, 0, Vec::new());
    for case in cases["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if case.get("input_dir").is_none() {
            // Update-strategy validation (`expected_error`) is the engine's job, not the setters'.
            out_of_scope.push(name);
            continue;
        }
        match run_case(&base, case) {
            Ok(()) => passed += 1,
            Err(e) => {
                failed += 1;
                eprintln!("FAIL {name}:\n{e}");
            }
        }
    }
    println!("flux-setters: {passed} passed, {failed} failed");
    println!(
        "flux-setters: not setter cases (ferry-engine validates strategies): {out_of_scope:?}"
    );
    assert_eq!(failed, 0);
    assert!(passed >= 5);
}
