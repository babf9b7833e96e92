//! Setter edit: `update_bytes` on arbitrary YAML with arbitrary new values.
//! Input: line 1 = new tag, line 2 = new image name, the rest = the YAML file.
//! Invariants: only the replaced scalars differ (the YAML event structure is unchanged, the
//! changed scalars hold exactly the new values, and the bytes before the first and after the
//! last changed scalar are untouched); parsing the output finds the new values (a second
//! pass changes nothing).
#![no_main]

use ferry_setters::{ImageRef, PolicyValues, setter_value, update_bytes};
use libfuzzer_sys::fuzz_target;
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

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let (Some(tag), Some(name), Some(yaml)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let (Ok(tag), Ok(name)) = (std::str::from_utf8(tag), std::str::from_utf8(name)) else {
        return;
    };
    let mut values = PolicyValues::new();
    let image = ImageRef {
        name: name.to_string(),
        tag: tag.to_string(),
        digest: Some(format!("sha256:{}", "a".repeat(64))),
    };
    values.insert("ns:app".into(), image.clone());
    let Ok(up) = update_bytes(yaml, &values) else {
        return;
    };
    let again = update_bytes(&up.output, &values).expect("the output must still parse");
    assert!(again.changes.is_empty(), "second pass changed {:?}", again.changes);
    assert_eq!(again.output, up.output);
    if up.changes.is_empty() {
        assert_eq!(up.output, yaml);
        return;
    }
    let new_values: Vec<String> = [
        ferry_setters::SetterField::Full,
        ferry_setters::SetterField::Tag,
        ferry_setters::SetterField::Name,
        ferry_setters::SetterField::Digest,
    ]
    .iter()
    .map(|f| setter_value(&image, *f))
    .collect();
    for (_, c) in &up.changes {
        assert!(new_values.contains(&c.new_value));
    }
    let body = |b: &[u8]| {
        let b = b.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(b);
        String::from_utf8(b.to_vec()).expect("input was UTF-8")
    };
    let (src_in, src_out) = (body(yaml), body(&up.output));
    let (Some(ev_in), Some(ev_out)) = (events(&src_in), events(&src_out)) else {
        panic!("saphyr reads one of the two texts but not the other");
    };
    assert_eq!(ev_in.len(), ev_out.len(), "event count changed");
    let mut changed = Vec::new();
    for (a, b) in ev_in.iter().zip(&ev_out) {
        match (a, b) {
            (Ev::Other(x), Ev::Other(y)) => assert_eq!(x, y, "structure changed"),
            (Ev::Scalar(x, s, e), Ev::Scalar(y, so, eo)) => {
                if x != y {
                    assert!(new_values.contains(y), "{y:?} is not a new value");
                    changed.push((*s, *e, *so, *eo));
                }
            }
            _ => panic!("event kinds changed: {a:?} vs {b:?}"),
        }
    }
    assert_eq!(changed.len(), up.changes.len(), "changed scalars vs changes");
    let (first, last) = (changed[0], changed[changed.len() - 1]);
    assert_eq!(src_in.as_bytes()[..first.0], src_out.as_bytes()[..first.0]);
    assert!(src_out.as_bytes().ends_with(&src_in.as_bytes()[last.1..]));
});
