//! Attacker path: a GitOps repository whose marked files are symlinks to files outside the
//! checkout (or whose update path leads out) never makes the setters write outside it.

use std::fs;

use ferry_setters::{ImageRef, PolicyValues, SetterError, WriteMode, apply_tree_in};

const MARKED: &str = "image: reg/app:v0 # {\"$imagepolicy\": \"ns:app\"}\n";

fn values() -> PolicyValues {
    let mut v = PolicyValues::new();
    v.insert(
        "ns:app".into(),
        ImageRef {
            name: "reg/app".into(),
            tag: "v1".into(),
            digest: None,
        },
    );
    v
}

#[test]
fn a_symlink_out_of_the_checkout_is_never_written() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside.yaml");
    fs::write(&outside, MARKED).unwrap();
    let checkout = tmp.path().join("checkout");
    let apps = checkout.join("apps");
    fs::create_dir_all(&apps).unwrap();
    std::os::unix::fs::symlink(&outside, apps.join("escape.yaml")).unwrap();
    std::os::unix::fs::symlink("../../outside.yaml", apps.join("relative.yaml")).unwrap();
    // A symlink that stays inside the checkout still works.
    fs::write(checkout.join("real.yaml"), MARKED).unwrap();
    std::os::unix::fs::symlink("../real.yaml", apps.join("inside.yaml")).unwrap();

    for mode in [WriteMode::DryRun, WriteMode::Write] {
        let up = apply_tree_in(&checkout, &apps, &values(), mode).unwrap();
        assert_eq!(up.files.keys().collect::<Vec<_>>(), ["inside.yaml"]);
        let skipped: Vec<_> = up.warnings.iter().map(|w| w.file.as_str()).collect();
        assert_eq!(skipped, ["escape.yaml", "relative.yaml"]);
        assert!(up.warnings[0].message.contains("outside the checkout"));
    }
    assert_eq!(fs::read_to_string(&outside).unwrap(), MARKED);
    assert_eq!(
        fs::read_to_string(checkout.join("real.yaml")).unwrap(),
        "image: reg/app:v1 # {\"$imagepolicy\": \"ns:app\"}\n"
    );
    // Nothing else appeared next to the outside file (no temp files either).
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 2);
}

#[test]
fn an_update_path_leading_out_of_the_checkout_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::write(elsewhere.join("deploy.yaml"), MARKED).unwrap();
    let checkout = tmp.path().join("checkout");
    fs::create_dir(&checkout).unwrap();
    std::os::unix::fs::symlink(&elsewhere, checkout.join("linked")).unwrap();
    for root in [checkout.join("linked"), checkout.join("../elsewhere")] {
        let err = apply_tree_in(&checkout, &root, &values(), WriteMode::Write).unwrap_err();
        assert!(matches!(err, SetterError::OutsideCheckout { .. }), "{err}");
        assert!(err.to_string().contains("outside the checkout"), "{err}");
    }
    assert_eq!(
        fs::read_to_string(elsewhere.join("deploy.yaml")).unwrap(),
        MARKED
    );
}
