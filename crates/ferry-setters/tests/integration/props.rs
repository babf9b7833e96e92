//! Property tests of the setter edit (the invariant of `tests/oracle`, also fuzzed in fuzz/):
//! generated manifests with marked scalars in every quoting style, block and flow, get new
//! values of any text; only those scalars' bytes change and a reparse finds the new values.

use crate::oracle;

use ferry_setters::ImageRef;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Style {
    Plain,
    Double,
    Single,
}

fn scalar(style: &Style, v: &str) -> String {
    match style {
        Style::Plain => v.to_string(),
        Style::Double => format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")),
        Style::Single => format!("'{}'", v.replace('\'', "''")),
    }
}

fn marker(field: u8) -> String {
    let suffix = ["", ":tag", ":name", ":digest"][usize::from(field % 4)];
    format!("# {{\"$imagepolicy\": \"ns:app{suffix}\"}}")
}

/// One marked (or unmarked) value: where it sits, its style, old text, marker field.
type Entry = (u8, Style, String, Option<u8>);

fn entry() -> impl Strategy<Value = Entry> {
    (
        0u8..3,
        prop_oneof![Just(Style::Plain), Just(Style::Double), Just(Style::Single)],
        "[a-z0-9][a-z0-9./_-]{0,12}",
        proptest::option::of(0u8..4),
    )
}

fn manifest(entries: &[Entry], crlf: bool) -> String {
    let mut out =
        String::from("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n");
    for (i, (place, style, old, field)) in entries.iter().enumerate() {
        let v = scalar(style, old);
        let m = field.map(marker).unwrap_or_default();
        match place {
            0 => out.push_str(&format!("  k{i}: {v} {m}\n")),
            1 => out.push_str(&format!("  l{i}:\n  - {v} {m}\n  - other\n")),
            _ => out.push_str(&format!("  f{i}: [x, {v} {m}\n    ]\n")),
        }
    }
    if crlf {
        out = out.replace('\n', "\r\n");
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn only_the_marked_scalars_change(
        entries in proptest::collection::vec(entry(), 1..6),
        crlf in any::<bool>(),
        tag in prop_oneof!["[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", "\\PC{0,12}"],
        name in prop_oneof!["[a-z0-9.:/-]{1,30}", "\\PC{1,12}"],
    ) {
        let yaml = manifest(&entries, crlf);
        let image = ImageRef { name, tag, digest: Some(format!("sha256:{}", "ab".repeat(32))) };
        let up = oracle::check_edit(yaml.as_bytes(), &image).expect("generated YAML parses");
        let marked = entries.iter().filter(|e| e.3.is_some()).count();
        prop_assert!(up.changes.len() <= marked);
    }
}
