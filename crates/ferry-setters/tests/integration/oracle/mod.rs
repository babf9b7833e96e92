//! The setter-edit invariant, shared by the property test (`tests/props.rs`) and the
//! `setter_edit` fuzz target (fuzz/, which compiles this file in): only the replaced scalars'
//! bytes differ, and parsing the output finds the new values.
#![allow(dead_code)]

use ferry_setters::{FileUpdate, ImageRef, PolicyValues, SetterField, setter_value, update_bytes};
use saphyr_parser::{Event, Parser};

/// One parser event: scalars as (value, byte start, byte end), everything else as text.
#[derive(Debug)]
enum Ev {
    Scalar(String, usize, usize),
    Other(String),
}

fn events(src: &str) -> Option<Vec<Ev>> {
    // saphyr spans count characters; the checks need bytes.
    let mut byte_of: Vec<usize> = src.char_indices().map(|(i, _)| i).collect();
    byte_of.push(src.len());
    let at = |i: usize| byte_of.get(i).copied().unwrap_or(src.len());
    let mut out = Vec::new();
    for ev in Parser::new_from_str(src) {
        let (ev, span) = ev.ok()?;
        out.push(match ev {
            Event::Scalar(v, ..) => {
                Ev::Scalar(v.into_owned(), at(span.start.index()), at(span.end.index()))
            }
            other => Ev::Other(format!("{other:?}")),
        });
    }
    Some(out)
}

fn text(b: &[u8]) -> String {
    let b = b.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(b);
    String::from_utf8(b.to_vec()).expect("update_bytes only accepts UTF-8")
}

/// Applies `image` as policy `ns:app` to `yaml` and checks the invariant; returns the update
/// (`None` when the file is not YAML Flux reads). Panics with the broken rule.
pub fn check_edit(yaml: &[u8], image: &ImageRef) -> Option<FileUpdate> {
    let mut values = PolicyValues::new();
    values.insert("ns:app".into(), image.clone());
    let up = update_bytes(yaml, &values).ok()?;
    let again = update_bytes(&up.output, &values).expect("the output must still parse");
    assert!(
        again.changes.is_empty(),
        "second pass changed {:?}",
        again.changes
    );
    if up.changes.is_empty() {
        assert_eq!(up.output, yaml, "no change but different bytes");
        return Some(up);
    }
    let fields = [
        SetterField::Full,
        SetterField::Tag,
        SetterField::Name,
        SetterField::Digest,
    ];
    let new_values: Vec<String> = fields.iter().map(|f| setter_value(image, *f)).collect();
    for (_, c) in &up.changes {
        assert!(new_values.contains(&c.new_value), "{c:?}");
    }
    let (src_in, src_out) = (text(yaml), text(&up.output));
    let (Some(ev_in), Some(ev_out)) = (events(&src_in), events(&src_out)) else {
        panic!("saphyr reads one of input and output but not the other");
    };
    assert_eq!(ev_in.len(), ev_out.len(), "event count changed");
    let mut changed = Vec::new();
    for (a, b) in ev_in.iter().zip(&ev_out) {
        match (a, b) {
            (Ev::Other(x), Ev::Other(y)) => assert_eq!(x, y, "structure changed"),
            (Ev::Scalar(x, s, e), Ev::Scalar(y, ..)) if x != y => {
                assert!(new_values.contains(y), "{y:?} is not a new value");
                changed.push((*s, *e));
            }
            (Ev::Scalar(..), Ev::Scalar(..)) => {}
            _ => panic!("event kinds changed: {a:?} vs {b:?}"),
        }
    }
    assert_eq!(
        changed.len(),
        up.changes.len(),
        "changed scalars vs changes"
    );
    let (start, end) = (changed[0].0, changed[changed.len() - 1].1);
    assert_eq!(
        src_in.as_bytes()[..start],
        src_out.as_bytes()[..start],
        "bytes before"
    );
    assert!(
        src_out.as_bytes().ends_with(&src_in.as_bytes()[end..]),
        "bytes after"
    );
    Some(up)
}
