//! Property tests of commit-message templates (also fuzzed in fuzz/, target `template`):
//! values reach the message verbatim, literal text passes through, rendering is
//! deterministic, and any template either renders or fails with an error (never panics).

use ferry_template::{TemplateData, render_commit_message};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn values_and_text_pass_through(value in "\\PC{0,40}", text in "[^{}]{0,40}") {
        let mut d = TemplateData::default();
        d.values.insert("v".into(), value.clone());
        let out = render_commit_message(&format!("{text}{{{{ .Values.v }}}}{text}"), &d).unwrap();
        prop_assert_eq!(out, format!("{text}{value}{text}"));
    }

    #[test]
    fn any_template_renders_or_errors(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("{{".to_string()), Just("}}".to_string()), Just("{{-".to_string()),
                Just(" -}}".to_string()), Just(" .Values".to_string()), Just(" range".to_string()),
                Just(" end".to_string()), Just(" if".to_string()), Just(" else".to_string()),
                Just(" $x :=".to_string()), Just(" $x".to_string()), Just(" |".to_string()),
                Just(" printf \"%v\"".to_string()), Just(" .Changed.Changes".to_string()),
                Just(" len".to_string()), Just(" index".to_string()), Just(" (".to_string()),
                Just(")".to_string()), "[a-z \"]{0,6}",
            ],
            0..16,
        ),
    ) {
        let t: String = parts.concat();
        let d = TemplateData::default();
        let first = render_commit_message(&t, &d);
        prop_assert_eq!(first, render_commit_message(&t, &d));
    }
}
