//! Byte-exact in-place edits on hard formatting cases (`tests/fixtures/hard`).

use crate::util;

use std::fs;
use std::path::{Path, PathBuf};

use ferry_setters::{
    Change, ImageRef, ObjectId, PolicyValues, SetterField, WriteMode, apply_tree, scan_markers,
    scan_markers_with_warnings, update_bytes,
};

fn fixture(side: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hard")
        .join(side)
}

fn values() -> PolicyValues {
    let mut v = PolicyValues::new();
    let r = |name: &str, tag: &str, digest: Option<&str>| ImageRef {
        name: name.into(),
        tag: tag.into(),
        digest: digest.map(str::to_string),
    };
    v.insert("ns:app".into(), r("reg/app", "v1.0.1", None));
    v.insert("ns:helm".into(), r("reg/helm", "1.10", None));
    let digest = format!("sha256:{}", "ab".repeat(32));
    v.insert("ns:dig".into(), r("reg/dig", "v2", Some(&digest)));
    v
}

/// Symlinks git fixtures should not carry: a dangling link and a link to a directory.
fn add_links(dir: &Path) {
    std::os::unix::fs::symlink("missing.yaml", dir.join("dangling.yaml")).unwrap();
    std::os::unix::fs::symlink("helm", dir.join("linkdir")).unwrap();
}

fn id(api: &str, kind: &str, name: &str, ns: &str) -> ObjectId {
    ObjectId {
        api_version: api.into(),
        kind: kind.into(),
        name: name.into(),
        namespace: ns.into(),
    }
}

#[test]
fn hard_tree_byte_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, exp) = (tmp.path().join("work"), tmp.path().join("expected"));
    util::copy_tree(&fixture("original"), &work);
    util::copy_tree(&fixture("expected"), &exp);
    add_links(&work);
    add_links(&exp);

    let result = apply_tree(&work, &values(), WriteMode::Write).unwrap();
    let problems = util::diff_trees(&work, &exp, false);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let changed: Vec<&str> = result.files.keys().map(String::as_str).collect();
    assert_eq!(
        changed,
        [
            ".hidden/deploy.yml",
            "Kustomization",
            "bom.yaml",
            "crlf.yaml",
            "flow.yaml",
            "helm/release.yaml",
            "indent4.yaml",
            "kustomization.yaml",
            "list.yaml",
            "multi.yaml",
            "quoted.yaml"
        ]
    );
    let mut warned: Vec<(&str, usize)> = result
        .warnings
        .iter()
        .map(|w| (w.file.as_str(), w.line))
        .collect();
    warned.sort();
    assert_eq!(
        warned,
        [
            ("badsep.yaml", 3),
            ("broken.yaml", 6),
            ("dupkey.yaml", 3),
            ("topseq.yaml", 1)
        ],
        "{:?}",
        result.warnings
    );

    // kind: List items are their own objects.
    let list = &result.files["list.yaml"];
    assert_eq!(
        list.keys().cloned().collect::<Vec<_>>(),
        [
            id("apps/v1", "Deployment", "one", ""),
            id("apps/v1", "Deployment", "two", "ns2")
        ]
    );
    // Objects across documents of one file; flow-style metadata is read too.
    let multi = &result.files["multi.yaml"];
    assert_eq!(multi[&id("v1", "ConfigMap", "embedded", "")].len(), 1);
    assert_eq!(multi[&id("apps/v1", "Deployment", "web", "prod")].len(), 2);
    assert!(!multi.contains_key(&id("v1", "Service", "web-svc", "prod")));
    assert_eq!(
        result.files["kustomization.yaml"]
            [&id("kustomize.config.k8s.io/v1beta1", "Kustomization", "", "")],
        [
            change("reg/old", "reg/dig", "ns:dig:name"),
            change("v0", "v2", "ns:dig:tag"),
            change(
                "sha256:0000",
                &format!("sha256:{}", "ab".repeat(32)),
                "ns:dig:digest"
            ),
            change("sha256:1111", "", "ns:app:digest"),
        ]
    );
    // Result helpers: Changes de-duplicates, Objects merges per object.
    let all = result.changes();
    assert!(all.contains(&change("v1", "1.10", "ns:helm:tag")));
    assert_eq!(
        all.iter()
            .filter(|c| **c == change("v1", "1.10", "ns:helm:tag"))
            .count(),
        1
    );
    assert!(result.objects().len() >= 10);
    assert!(result.diff().contains("+          image: reg/app:v1.0.1"));

    // Oracle: re-parsing the output, every site of a known policy now holds the policy's value.
    let v = values();
    for site in scan_markers(&work).unwrap() {
        if let Some(image) = v.get(&site.policy) {
            assert_eq!(
                site.value,
                ferry_setters::setter_value(image, site.field),
                "{}:{} ({})",
                site.file,
                site.line,
                site.setter
            );
        }
    }

    // Idempotent: a second run changes nothing.
    let again = apply_tree(&work, &values(), WriteMode::Write).unwrap();
    assert!(again.is_empty(), "{:?}", again.files);
}

fn change(old: &str, new: &str, setter: &str) -> Change {
    Change {
        old_value: old.into(),
        new_value: new.into(),
        setter: setter.into(),
    }
}

#[test]
fn dry_run_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    util::copy_tree(&fixture("original"), tmp.path());
    let result = apply_tree(tmp.path(), &values(), WriteMode::DryRun).unwrap();
    assert!(!result.is_empty());
    assert!(util::diff_trees(tmp.path(), &fixture("original"), false).is_empty());
    // Edits carry the bytes a write would produce.
    let e = &result.edits["crlf.yaml"];
    assert_eq!(
        e.new,
        fs::read(fixture("expected").join("crlf.yaml")).unwrap()
    );
}

#[test]
fn unchanged_input_is_identical() {
    for entry in fs::read_dir(fixture("expected")).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_file() && ferry_setters::is_candidate_name(&name) {
            let bytes = fs::read(&p).unwrap();
            if let Ok(up) = update_bytes(&bytes, &values()) {
                assert!(up.changes.is_empty(), "{}: {:?}", p.display(), up.changes);
                assert_eq!(up.output, bytes, "{}", p.display());
            }
        }
    }
}

#[test]
fn scan_reports_sites_and_values() {
    let (sites, warnings) = scan_markers_with_warnings(&fixture("original")).unwrap();
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    let helm: Vec<_> = sites
        .iter()
        .filter(|s| s.file == "helm/release.yaml")
        .collect();
    assert_eq!(helm.len(), 2);
    assert_eq!(
        (helm[0].line, helm[0].field, helm[0].value.as_str()),
        (13, SetterField::Name, "reg/helm")
    );
    assert_eq!(
        (helm[1].line, helm[1].field, helm[1].value.as_str()),
        (14, SetterField::Tag, "1.9")
    );
    assert_eq!(helm[1].policy, "ns:helm");
    assert_eq!(
        helm[1].object,
        id(
            "helm.toolkit.fluxcd.io/v2",
            "HelmRelease",
            "podinfo",
            "flux-system"
        )
    );
    // Unknown policies are still reported by the scan (it does not know the policy set).
    assert!(sites.iter().any(|s| s.policy == "other:app"));
    // Block scalar content and head comments above keys are never sites.
    let multi: Vec<usize> = sites
        .iter()
        .filter(|s| s.file == "multi.yaml")
        .map(|s| s.line)
        .collect();
    assert_eq!(multi, [15, 32, 36, 45, 46]);
    let bom: Vec<_> = sites.iter().filter(|s| s.file == "bom.yaml").collect();
    assert_eq!((bom[0].line, bom[0].value.as_str()), (11, "reg/app:v0.9"));
    assert_eq!(
        scan_markers(&fixture("original")).unwrap().len(),
        sites.len()
    );
}

#[test]
fn single_file_root_and_symlinked_file() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    fs::create_dir(&real).unwrap();
    let target = real.join("deploy.yaml");
    fs::write(
        &target,
        "image: reg/app:v0 # {\"$imagepolicy\": \"ns:app\"}\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
    let view = tmp.path().join("view");
    fs::create_dir(&view).unwrap();
    let link = view.join("link.yaml");
    std::os::unix::fs::symlink("../real/deploy.yaml", &link).unwrap();

    let result = apply_tree(&view, &values(), WriteMode::Write).unwrap();
    assert_eq!(result.files.keys().collect::<Vec<_>>(), ["link.yaml"]);
    // The link is still a link; its target got the new content and kept its mode.
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "image: reg/app:v1.0.1 # {\"$imagepolicy\": \"ns:app\"}\n"
    );
    assert_eq!(
        fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o640
    );
    // No temp files left behind.
    assert_eq!(fs::read_dir(&real).unwrap().count(), 1);

    // A file as update.path.
    fs::write(
        &target,
        "image: reg/app:v0 # {\"$imagepolicy\": \"ns:app\"}\n",
    )
    .unwrap();
    let result = apply_tree(&target, &values(), WriteMode::Write).unwrap();
    assert_eq!(result.files.keys().collect::<Vec<_>>(), ["deploy.yaml"]);
    assert!(fs::read_to_string(&target).unwrap().contains("v1.0.1"));

    // A missing update.path is an error naming it.
    let err = apply_tree(&tmp.path().join("nope"), &values(), WriteMode::DryRun).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}
