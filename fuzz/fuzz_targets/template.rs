//! Go `text/template` commit messages (ferry-template): parse and execute arbitrary templates
//! over Flux's template data.
//! Invariants: no panic, no unbounded recursion or output; rendering is deterministic.
#![no_main]

use ferry_template::{Change, ObjectId, TemplateData, render_commit_message};
use libfuzzer_sys::fuzz_target;

fn data() -> TemplateData {
    let mut d = TemplateData::default();
    d.automation.namespace = "flux-system".into();
    d.automation.name = "apps".into();
    d.values.insert("env".into(), "staging".into());
    d.changed.add_change(
        "apps/backend.yaml",
        ObjectId {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "backend".into(),
            namespace: "staging".into(),
        },
        [Change {
            old_value: "reg/backend:1.0.0".into(),
            new_value: "reg/backend:1.1.0".into(),
            setter: "staging:backend".into(),
        }],
    );
    d
}

fuzz_target!(|data: &[u8]| {
    let Ok(template) = std::str::from_utf8(data) else {
        return;
    };
    let d = self::data();
    let first = render_commit_message(template, &d);
    assert_eq!(first, render_commit_message(template, &d), "non-deterministic");
});
