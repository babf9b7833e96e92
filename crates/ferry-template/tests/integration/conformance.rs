//! Runs Flux's commit-message and push-summary cases
//! (`flux-policy/iac-commit-templates.json`) against ferry-template.

use ferry_template::{
    AutomationObject, Change, ChangeResult, ObjectId, TemplateData, push_summary,
    render_commit_message,
};
use serde_json::Value as J;

fn text(v: &J, key: &str) -> String {
    v.get(key)
        .and_then(J::as_str)
        .unwrap_or_default()
        .to_string()
}

fn template_data(case: &J) -> TemplateData {
    let auto = text(case, "automationObject");
    let (namespace, name) = auto.split_once('/').unwrap();
    let mut data = TemplateData {
        automation: AutomationObject {
            namespace: namespace.into(),
            name: name.into(),
        },
        ..Default::default()
    };
    if let Some(values) = case["values"].as_object() {
        for (k, v) in values {
            data.values
                .insert(k.clone(), v.as_str().unwrap().to_string());
        }
    }
    let mut changed = ChangeResult::default();
    for (file, objects) in case["changed"]["files"].as_object().unwrap() {
        for entry in objects.as_array().unwrap() {
            let o = &entry["object"];
            let id = ObjectId {
                api_version: text(o, "apiVersion"),
                kind: text(o, "kind"),
                name: text(o, "name"),
                namespace: text(o, "namespace"),
            };
            let changes = entry["changes"].as_array().unwrap().iter().map(|c| Change {
                old_value: text(c, "oldValue"),
                new_value: text(c, "newValue"),
                setter: text(c, "setter"),
            });
            changed.add_change(file, id, changes);
        }
    }
    data.changed = changed;
    data
}

#[test]
fn iac_commit_templates() {
    let Some(dir) = ferry_testbed::conformance_dir() else {
        eprintln!("conformance corpus not present; skipping");
        return;
    };
    let path = dir.join("flux-policy/iac-commit-templates.json");
    let raw =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let table: J = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        table["default_template"].as_str(),
        Some(ferry_template::DEFAULT_COMMIT_MESSAGE)
    );

    let (mut passed, mut failed) = (0usize, 0usize);
    let mut report = |name: &str, ok: bool, detail: String| {
        if ok {
            passed += 1;
        } else {
            failed += 1;
            eprintln!("FAIL {name}: {detail}");
        }
    };

    for case in table["template_cases"].as_array().unwrap() {
        let name = text(case, "name");
        let got = render_commit_message(&text(case, "template"), &template_data(case));
        if let Some(want) = case.get("expected").and_then(J::as_str) {
            report(
                &name,
                got.as_deref() == Ok(want),
                format!("want {want:?}, got {got:?}"),
            );
        } else if let Some(parts) = case.get("expected_contains").and_then(J::as_array) {
            let ok = match &got {
                Ok(msg) => parts.iter().all(|p| msg.contains(p.as_str().unwrap())),
                Err(_) => false,
            };
            report(&name, ok, format!("want all of {parts:?}, got {got:?}"));
        } else if let Some(want) = case.get("expected_error").and_then(J::as_str) {
            let ok = matches!(&got, Err(e @ ferry_template::TemplateError::RemovedField(_)) if e.to_string() == want);
            report(&name, ok, format!("want error {want:?}, got {got:?}"));
        } else {
            report(&name, false, "case has no expectation".into());
        }
    }

    for case in table["push_summary_cases"].as_array().unwrap() {
        let name = text(case, "name");
        let refspecs: Vec<String> = case["refspecs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        let got = push_summary(
            &text(case, "rev"),
            &text(case, "branch"),
            &refspecs,
            &text(case, "commitMsg"),
        );
        if let Some(want) = case.get("expected").and_then(J::as_str) {
            report(
                &name,
                got.as_deref() == Ok(want),
                format!("want {want:?}, got {got:?}"),
            );
        } else {
            let want = text(case, "expected_error");
            let ok = matches!(&got, Err(e) if e.to_string() == want);
            report(&name, ok, format!("want error {want:?}, got {got:?}"));
        }
    }

    println!("iac-commit-templates: {passed} passed, {failed} failed");
    assert_eq!(failed, 0, "iac-commit-templates: {failed} failed");
}
