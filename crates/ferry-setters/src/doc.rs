//! Parsing one YAML file into the marker sites it contains, and splicing new values into it.
//!
//! `saphyr-parser` validates the YAML and gives node structure and spans; comments are not
//! parser events, so marker comments are read from the source text around each scalar.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::marker::{Marker, parse_marker_comment};
use crate::quote::{Style, render};
use crate::{Change, FileUpdate, ObjectId, PolicyValues, SetterError, setter_value};

/// One marked scalar in a file.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    pub marker: Marker,
    pub object: ObjectId,
    /// 1-based line of the scalar's first character.
    pub line: usize,
    /// The scalar's current (decoded) value.
    pub value: String,
    /// Byte range of the scalar text in the input, quotes included, properties excluded.
    pub range: (usize, usize),
    pub style: Style,
    pub in_flow: bool,
}

struct Scalar {
    value: String,
    style: ScalarStyle,
    range: (usize, usize),
    line: usize,
    in_flow: bool,
    /// False for a scalar that has no text of its own (an empty value such as `key:`).
    has_text: bool,
}

enum Node {
    Map(Vec<(Node, Node)>),
    Seq { items: Vec<Node>, flow: bool },
    Scalar(Scalar),
    Alias,
}

enum Frame {
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        flow: bool,
    },
    Seq {
        items: Vec<Node>,
        flow: bool,
    },
}

impl Frame {
    fn flow(&self) -> bool {
        match self {
            Frame::Map { flow, .. } | Frame::Seq { flow, .. } => *flow,
        }
    }
}

/// Maps parser character indices to byte offsets in the source.
struct Offsets {
    table: Option<Vec<usize>>,
    len: usize,
}

impl Offsets {
    fn new(src: &str) -> Self {
        let table = if src.is_ascii() {
            None
        } else {
            let mut t: Vec<usize> = src.char_indices().map(|(b, _)| b).collect();
            t.push(src.len());
            Some(t)
        };
        Offsets {
            table,
            len: src.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.table {
            None => char_index.min(self.len),
            Some(t) => t.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

fn parse_err(line: usize, column: usize, message: impl Into<String>) -> SetterError {
    SetterError::Parse {
        line,
        column,
        message: message.into(),
    }
}

fn line_of(src: &str, byte: usize) -> usize {
    src.as_bytes()[..byte.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Skips anchor (`&a`) and tag (`!t`) properties, returning the offset of the node's content.
fn skip_props(src: &str, mut pos: usize) -> usize {
    let b = src.as_bytes();
    while pos < b.len() && (b[pos] == b'&' || b[pos] == b'!') {
        while pos < b.len() && !b[pos].is_ascii_whitespace() {
            pos += 1;
        }
        while pos < b.len() && b[pos].is_ascii_whitespace() {
            pos += 1;
        }
    }
    pos
}

/// End (exclusive) of a quoted scalar starting at `start` (which holds the quote).
fn quoted_end(src: &str, start: usize, quote: u8) -> Option<usize> {
    let b = src.as_bytes();
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if quote == b'"' => i += 2,
            q if q == quote => {
                if quote == b'\'' && b.get(i + 1) == Some(&b'\'') {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            _ => i += 1,
        }
    }
    None
}

struct Builder<'s> {
    src: &'s str,
    offsets: Offsets,
    stack: Vec<Frame>,
    root: Option<Node>,
}

impl Builder<'_> {
    fn in_flow(&self) -> bool {
        self.stack.iter().any(Frame::flow)
    }

    fn add(&mut self, node: Node) -> Result<(), SetterError> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    if let Node::Scalar(ks) = &k {
                        let dup = entries.iter().find_map(|(ek, _)| match ek {
                            Node::Scalar(es) if es.value == ks.value && es.has_text => {
                                Some(es.line)
                            }
                            _ => None,
                        });
                        if let Some(first) = dup
                            && ks.has_text
                        {
                            // go-yaml v3 refuses duplicate keys, so Flux skips such files.
                            return Err(parse_err(
                                ks.line,
                                0,
                                format!(
                                    "mapping key {:?} already defined at line {first}",
                                    ks.value
                                ),
                            ));
                        }
                    }
                    entries.push((k, node));
                }
            },
        }
        Ok(())
    }

    fn container_flow(&self, span: &Span) -> bool {
        let pos = skip_props(self.src, self.offsets.byte(span.start.index()));
        matches!(self.src.as_bytes().get(pos), Some(b'[' | b'{'))
    }

    fn scalar(&self, value: String, style: ScalarStyle, span: &Span) -> Scalar {
        let start = self.offsets.byte(span.start.index());
        let end = self.offsets.byte(span.end.index());
        let b = self.src.as_bytes();
        let (range, has_text) = match style {
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                let q = if style == ScalarStyle::SingleQuoted {
                    b'\''
                } else {
                    b'"'
                };
                // The parser's span of a quoted scalar may run to the end of the line
                // (comment included); find the quotes ourselves.
                match b[start..end.max(start)].iter().position(|&c| c == q) {
                    Some(off) => {
                        let s = start + off;
                        match quoted_end(self.src, s, q) {
                            Some(e) => ((s, e), true),
                            None => ((start, start), false),
                        }
                    }
                    None => ((start, start), false),
                }
            }
            ScalarStyle::Plain => {
                let s = skip_props(self.src, start).min(end);
                ((s, end), end > s)
            }
            _ => ((start, end), false),
        };
        Scalar {
            value,
            style,
            line: line_of(self.src, range.0),
            range,
            in_flow: self.in_flow(),
            has_text,
        }
    }
}

/// Parses `src` into document roots (`None` for an empty document).
fn parse_documents(src: &str) -> Result<Vec<Option<Node>>, SetterError> {
    let mut b = Builder {
        src,
        offsets: Offsets::new(src),
        stack: Vec::new(),
        root: None,
    };
    let mut docs = Vec::new();
    for ev in Parser::new_from_str(src) {
        let (event, span) = ev.map_err(|e| {
            parse_err(
                e.marker().line(),
                e.marker().col() + 1,
                e.info().to_string(),
            )
        })?;
        match event {
            Event::DocumentStart(_) => {
                b.stack.clear();
                b.root = None;
            }
            Event::DocumentEnd => docs.push(b.root.take()),
            Event::MappingStart(..) => {
                let flow = b.container_flow(&span);
                b.stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    flow,
                });
            }
            Event::SequenceStart(..) => {
                let flow = b.container_flow(&span);
                b.stack.push(Frame::Seq {
                    items: Vec::new(),
                    flow,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let node = match b.stack.pop() {
                    Some(Frame::Map { entries, .. }) => Node::Map(entries),
                    Some(Frame::Seq { items, flow }) => Node::Seq { items, flow },
                    None => {
                        return Err(parse_err(span.start.line(), 0, "unbalanced collection end"));
                    }
                };
                b.add(node)?;
            }
            Event::Scalar(value, style, _, _) => {
                let s = b.scalar(value.into_owned(), style, &span);
                b.add(Node::Scalar(s))?;
            }
            Event::Alias(_) => b.add(Node::Alias)?,
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
    Ok(docs)
}

/// kyaml splits documents on every line starting with `---` and rejects text after it that is
/// not a comment; Flux then skips the file. Mirror that so both agree on which files are broken.
fn check_separators(src: &str) -> Result<(), SetterError> {
    for (i, line) in src.split('\n').enumerate().skip(1) {
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(parse_err(
                    i + 1,
                    1,
                    format!("invalid document separator: {}", line.trim()),
                ));
            }
        }
    }
    Ok(())
}

fn scalar_str(node: &Node) -> Option<&str> {
    match node {
        Node::Scalar(s) => Some(&s.value),
        _ => None,
    }
}

fn get<'n>(entries: &'n [(Node, Node)], key: &str) -> Option<&'n Node> {
    entries
        .iter()
        .find(|(k, _)| scalar_str(k) == Some(key))
        .map(|(_, v)| v)
}

fn object_id(entries: &[(Node, Node)]) -> ObjectId {
    let s = |n: Option<&Node>| n.and_then(scalar_str).unwrap_or_default().to_string();
    let meta = match get(entries, "metadata") {
        Some(Node::Map(m)) => Some(m.as_slice()),
        _ => None,
    };
    ObjectId {
        api_version: s(get(entries, "apiVersion")),
        kind: s(get(entries, "kind")),
        name: s(meta.and_then(|m| get(m, "name"))),
        namespace: s(meta.and_then(|m| get(m, "namespace"))),
    }
}

/// The comment text (from `#` to end of line) directly after `end` on the same line.
fn line_comment(src: &str, end: usize) -> Option<&str> {
    let b = src.as_bytes();
    let mut i = end;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    if b.get(i) != Some(&b'#') {
        return None;
    }
    let stop = src[i..].find('\n').map_or(src.len(), |n| i + n);
    Some(src[i..stop].trim_end_matches('\r'))
}

/// A one-line head comment directly above a block sequence item that starts at `start`.
/// Two or more comment lines form a multi-line head comment, which is never a marker.
fn head_comment(src: &str, start: usize) -> Option<&str> {
    let line_start = src[..start].rfind('\n').map_or(0, |n| n + 1);
    let prefix = &src[line_start..start];
    if !prefix.contains('-') || !prefix.bytes().all(|c| matches!(c, b' ' | b'\t' | b'-')) {
        return None;
    }
    let comment_line = |end_nl: usize| -> Option<(&str, usize)> {
        // `end_nl` is the offset of the '\n' ending the line; returns (trimmed text, line start).
        let s = src[..end_nl].rfind('\n').map_or(0, |n| n + 1);
        let t = src[s..end_nl].trim();
        t.starts_with('#').then_some((t, s))
    };
    if line_start == 0 {
        return None;
    }
    let (text, s) = comment_line(line_start - 1)?;
    if s > 0 && comment_line(s - 1).is_some() {
        return None;
    }
    Some(text)
}

struct Walker<'a> {
    src: &'a str,
    sites: Vec<Site>,
}

impl Walker<'_> {
    fn visit(&mut self, node: &Node, obj: &ObjectId) {
        match node {
            Node::Map(entries) => {
                for (_, v) in entries {
                    self.value(v, obj, false);
                }
            }
            Node::Seq { items, flow } => {
                for it in items {
                    self.value(it, obj, !flow);
                }
            }
            Node::Scalar(_) | Node::Alias => {}
        }
    }

    fn value(&mut self, node: &Node, obj: &ObjectId, block_item: bool) {
        let Node::Scalar(s) = node else {
            return self.visit(node, obj);
        };
        let style = match s.style {
            ScalarStyle::Plain => Style::Plain,
            ScalarStyle::SingleQuoted => Style::SingleQuoted,
            ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
            // Block scalars are never set: their text is content, not comments.
            _ => return,
        };
        if !s.has_text {
            return;
        }
        // Flux reads the line comment first, then the head comment.
        let mut marker = line_comment(self.src, s.range.1).and_then(parse_marker_comment);
        if marker.is_none() && block_item {
            marker = head_comment(self.src, s.range.0).and_then(parse_marker_comment);
        }
        if let Some(marker) = marker {
            self.sites.push(Site {
                marker,
                object: obj.clone(),
                line: s.line,
                value: s.value.clone(),
                range: s.range,
                style,
                in_flow: s.in_flow,
            });
        }
    }
}

/// Finds every marker site in a file (`src` without BOM, `base` = BOM length added to ranges).
pub(crate) fn find_sites(src: &str, base: usize) -> Result<Vec<Site>, SetterError> {
    check_separators(src)?;
    let docs = parse_documents(src)?;
    let mut w = Walker {
        src,
        sites: Vec::new(),
    };
    for root in docs.iter().flatten() {
        match root {
            Node::Map(entries) => {
                let id = object_id(entries);
                let is_list = matches!(id.kind.as_str(), "List" | "ResourceList");
                match (is_list, get(entries, "items")) {
                    (true, Some(Node::Seq { items, .. })) => {
                        // kyaml unwraps Lists: each item is its own object.
                        for (k, v) in entries {
                            if scalar_str(k) == Some("items") {
                                for it in items {
                                    match it {
                                        Node::Map(ie) => w.visit(it, &object_id(ie)),
                                        other => w.value(other, &id, true),
                                    }
                                }
                            } else {
                                w.value(v, &id, false);
                            }
                        }
                    }
                    _ => w.visit(root, &id),
                }
            }
            // An empty or comment-only document parses as a null scalar.
            Node::Scalar(s)
                if !s.has_text
                    || (s.style == ScalarStyle::Plain
                        && matches!(s.value.as_str(), "" | "~" | "null")) => {}
            Node::Scalar(s) => {
                return Err(parse_err(
                    s.line,
                    1,
                    "document is a scalar, not a mapping (Flux cannot read it)",
                ));
            }
            Node::Seq { items, .. } => {
                let line = items.iter().find_map(|n| match n {
                    Node::Scalar(s) => Some(s.line),
                    _ => None,
                });
                return Err(parse_err(
                    line.unwrap_or(1),
                    1,
                    "document is a sequence, not a mapping (Flux cannot read it)",
                ));
            }
            Node::Alias => {}
        }
    }
    for s in &mut w.sites {
        s.range = (s.range.0 + base, s.range.1 + base);
    }
    Ok(w.sites)
}

/// Splits off a UTF-8 BOM and validates UTF-8.
pub(crate) fn decode(input: &[u8]) -> Result<(&str, usize), SetterError> {
    let (body, base) = match input.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (rest, 3),
        None => (input, 0),
    };
    match std::str::from_utf8(body) {
        Ok(s) => Ok((s, base)),
        Err(e) => {
            let off = e.valid_up_to();
            let line = body[..off].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(parse_err(line, 0, "file is not valid UTF-8"))
        }
    }
}

/// See [`crate::update_bytes`].
pub(crate) fn update(input: &[u8], values: &PolicyValues) -> Result<FileUpdate, SetterError> {
    let (src, base) = decode(input)?;
    let sites = find_sites(src, base)?;
    let site_count = sites.len();
    let mut out = Vec::with_capacity(input.len() + 64);
    let mut pos = 0;
    let mut changes = Vec::new();
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for site in sites {
        let Some(image) = values.get(&site.marker.policy) else {
            continue;
        };
        let new = setter_value(image, site.marker.field);
        if new == site.value {
            continue;
        }
        edits.push((
            site.range.0,
            site.range.1,
            render(&new, site.style, site.in_flow),
        ));
        changes.push((
            site.object,
            Change {
                old_value: site.value,
                new_value: new,
                setter: site.marker.setter,
            },
        ));
    }
    edits.sort_by_key(|e| e.0);
    for (s, e, text) in edits {
        if s < pos {
            continue; // cannot happen for distinct scalars; never corrupt the file
        }
        out.extend_from_slice(&input[pos..s]);
        out.extend_from_slice(text.as_bytes());
        pos = e;
    }
    out.extend_from_slice(&input[pos..]);
    if !changes.is_empty() {
        check_reparse(&out, values, site_count)?;
    }
    Ok(FileUpdate {
        output: out,
        changes,
    })
}

/// Never produce a file that does not read back with the new values: the YAML parser has
/// context-dependent quirks (e.g. it takes `key:\t<control character>` but not `key:\tvalue`),
/// so an edit that reads differently is refused and the file is left as it was.
fn check_reparse(output: &[u8], values: &PolicyValues, sites: usize) -> Result<(), SetterError> {
    let refuse = |line: usize, why: String| {
        parse_err(
            line,
            0,
            format!("the edited file would not read back ({why}); left unchanged"),
        )
    };
    let (src, base) = decode(output)?;
    let found = find_sites(src, base).map_err(|e| match e {
        SetterError::Parse { line, message, .. } => refuse(line, message),
        other => other,
    })?;
    if found.len() != sites {
        return Err(refuse(
            1,
            format!("{} markers instead of {sites}", found.len()),
        ));
    }
    for site in found {
        if let Some(image) = values.get(&site.marker.policy)
            && setter_value(image, site.marker.field) != site.value
        {
            return Err(refuse(site.line, format!("{:?} reads back", site.value)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImageRef;

    fn values() -> PolicyValues {
        let mut v = PolicyValues::new();
        v.insert(
            "ns:app".into(),
            ImageRef {
                name: "reg/app".into(),
                tag: "v2".into(),
                digest: None,
            },
        );
        v
    }

    fn run(input: &str) -> String {
        let up = update(input.as_bytes(), &values()).unwrap();
        String::from_utf8(up.output).unwrap()
    }

    const M: &str = r#"{"$imagepolicy": "ns:app:tag"}"#;

    #[test]
    fn non_ascii_before_scalar() {
        let input = format!("note: «é» ünïcødé\nkey: \"v1\" # {M}\nz: 'ü' # {M}\n");
        let want = format!("note: «é» ünïcødé\nkey: \"v2\" # {M}\nz: 'v2' # {M}\n");
        assert_eq!(run(&input), want);
    }

    #[test]
    fn head_comments() {
        // Single-line head comment above a scalar sequence item: honoured.
        let input = format!("list:\n  - a\n  # {M}\n  - v1\n");
        assert_eq!(run(&input), format!("list:\n  - a\n  # {M}\n  - v2\n"));
        // Multi-line: not a marker.
        let input = format!("list:\n  # note\n  # {M}\n  - v1\n");
        assert_eq!(run(&input), input);
        // Above a key or a mapping item: belongs to the key.
        let input = format!("# {M}\nkey: v1\nlist:\n# {M}\n- k: v1\n");
        assert_eq!(run(&input), input);
        // Flow sequence items never take head comments.
        let input = format!("list: [\n  # {M}\n  v1]\n");
        assert_eq!(run(&input), input);
    }

    #[test]
    fn line_comment_variants() {
        let input = format!("a: v1\t# {M}\r\nb: v1 #{M}\r\n");
        assert_eq!(run(&input), format!("a: v2\t# {M}\r\nb: v2 #{M}\r\n"));
        // Multi-line plain scalar: the comment after its last line.
        let input = format!("a: v1\n  cont # {M}\n");
        assert_eq!(run(&input), format!("a: v2 # {M}\n"));
        // Flow sequence item and flow mapping value.
        let input = format!("a: [x, v1 # {M}\n  ]\nb: {{k: v1 # {M}\n  }}\n");
        assert_eq!(
            run(&input),
            format!("a: [x, v2 # {M}\n  ]\nb: {{k: v2 # {M}\n  }}\n")
        );
        // Empty values and keys are never set (the value after the key is).
        let input = format!("a: # {M}\nb:\n  v1\nv1: x # {M}\n");
        assert_eq!(run(&input), format!("a: # {M}\nb:\n  v1\nv1: v2 # {M}\n"));
    }

    #[test]
    fn unknown_policies_and_equal_values_are_left_alone() {
        let input = "a: v1 # {\"$imagepolicy\": \"other:app:tag\"}\nb: v2 # {\"$imagepolicy\": \"ns:app:tag\"}\n";
        let up = update(input.as_bytes(), &values()).unwrap();
        assert!(up.changes.is_empty());
        assert_eq!(up.output, input.as_bytes());
    }

    #[test]
    fn parse_errors_name_the_line() {
        let err = update(b"a: b\nc: [x\n", &values()).unwrap_err();
        assert!(matches!(err, SetterError::Parse { line: 3, .. }), "{err}");
        let err = update(b"a: b\n--- x\n", &values()).unwrap_err();
        assert!(matches!(err, SetterError::Parse { line: 2, .. }), "{err}");
        let err = update(b"a: \xff\n", &values()).unwrap_err();
        assert!(matches!(err, SetterError::Parse { line: 1, .. }), "{err}");
    }
}
