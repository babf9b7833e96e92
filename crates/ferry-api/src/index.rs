//! A path → line index of one YAML document, built from `saphyr-parser` events.
//!
//! Used to check presence of required fields and to point validation errors at the line of the
//! offending key (serde errors carry their own location).

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// Deeper documents are rejected rather than risking the stack.
const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Scalar,
    Mapping,
    Sequence,
    Alias,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Line of the mapping key (for mapping values) or of the node itself, in file lines.
    pub line: usize,
    pub kind: NodeKind,
    /// Scalar text (None for non-scalars and nulls).
    pub scalar: Option<String>,
}

/// Syntax error: file line and message.
#[derive(Debug, Clone)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Default)]
pub(crate) struct LineIndex {
    entries: HashMap<String, Entry>,
    /// True when the text held no document (only comments/blank).
    pub empty: bool,
}

fn key_of(path: &[&str]) -> String {
    path.join("\u{0}")
}

type Events<'a> = std::iter::Peekable<Parser<'a, saphyr_parser::StrInput<'a>>>;

impl LineIndex {
    /// Parses `text` (one document); `line_offset` is added to parser lines (1-based) to give
    /// file lines.
    pub fn parse(text: &str, line_offset: usize) -> Result<LineIndex, SyntaxError> {
        let mut idx = LineIndex::default();
        let mut events: Events<'_> = Parser::new_from_str(text).peekable();
        let mut path = Vec::new();
        let mut seen_doc = false;
        while let Some(next) = events.next() {
            let (ev, _span) = next.map_err(|e| SyntaxError {
                line: e.marker().line() + line_offset,
                message: e.info().to_string(),
            })?;
            match ev {
                Event::DocumentStart(_) => {
                    if seen_doc {
                        // Only the first document is indexed; the splitter gives one per text.
                        break;
                    }
                    seen_doc = true;
                    idx.walk(&mut events, &mut path, None, 0, line_offset)?;
                }
                Event::StreamEnd => break,
                _ => {}
            }
        }
        idx.empty = !seen_doc;
        Ok(idx)
    }

    fn next_event<'a>(
        events: &mut Events<'a>,
        line_offset: usize,
    ) -> Result<(Event<'a>, usize), SyntaxError> {
        match events.next() {
            Some(Ok((ev, span))) => Ok((ev, span.start.line() + line_offset)),
            Some(Err(e)) => Err(SyntaxError {
                line: e.marker().line() + line_offset,
                message: e.info().to_string(),
            }),
            None => Err(SyntaxError {
                line: line_offset + 1,
                message: "unexpected end of document".to_string(),
            }),
        }
    }

    fn peek_is(events: &mut Events<'_>, end: &Event<'_>) -> bool {
        matches!(events.peek(), Some(Ok((ev, _))) if ev == end)
    }

    fn walk(
        &mut self,
        events: &mut Events<'_>,
        path: &mut Vec<String>,
        key_line: Option<usize>,
        depth: usize,
        line_offset: usize,
    ) -> Result<(), SyntaxError> {
        let (ev, node_line) = Self::next_event(events, line_offset)?;
        if depth > MAX_DEPTH {
            return Err(SyntaxError {
                line: node_line,
                message: "document nesting is too deep".to_string(),
            });
        }
        let line = key_line.unwrap_or(node_line);
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        let key = key_of(&refs);
        let kind = match &ev {
            Event::Scalar(..) => NodeKind::Scalar,
            Event::Alias(_) => NodeKind::Alias,
            Event::SequenceStart(..) => NodeKind::Sequence,
            Event::MappingStart(..) => NodeKind::Mapping,
            _ => return Ok(()),
        };
        let scalar = match ev {
            Event::Scalar(value, style, _, _) => {
                let is_null = style == ScalarStyle::Plain
                    && matches!(value.as_ref(), "" | "~" | "null" | "Null" | "NULL");
                (!is_null).then(|| value.into_owned())
            }
            _ => None,
        };
        self.entries.insert(key, Entry { line, kind, scalar });
        match kind {
            NodeKind::Sequence => self.walk_sequence(events, path, depth, line_offset),
            NodeKind::Mapping => self.walk_mapping(events, path, depth, line_offset),
            _ => Ok(()),
        }
    }

    /// The items of a sequence, indexed `path.0`, `path.1`, …, then its end.
    fn walk_sequence(
        &mut self,
        events: &mut Events<'_>,
        path: &mut Vec<String>,
        depth: usize,
        line_offset: usize,
    ) -> Result<(), SyntaxError> {
        let mut i = 0usize;
        while !Self::peek_is(events, &Event::SequenceEnd) {
            if events.peek().is_none() {
                break;
            }
            path.push(i.to_string());
            let r = self.walk(events, path, None, depth + 1, line_offset);
            path.pop();
            r?;
            i += 1;
        }
        Self::next_event(events, line_offset)?;
        Ok(())
    }

    /// The entries of a mapping, then its end. Scalar keys name the path; complex keys are
    /// indexed under "?".
    fn walk_mapping(
        &mut self,
        events: &mut Events<'_>,
        path: &mut Vec<String>,
        depth: usize,
        line_offset: usize,
    ) -> Result<(), SyntaxError> {
        while !Self::peek_is(events, &Event::MappingEnd) {
            if events.peek().is_none() {
                break;
            }
            let key_name = match events.peek() {
                Some(Ok((Event::Scalar(k, _, _, _), span))) => {
                    Some((k.to_string(), span.start.line() + line_offset))
                }
                _ => None,
            };
            let value_key_line = match key_name {
                Some((k, kl)) => {
                    Self::next_event(events, line_offset)?;
                    path.push(k);
                    Some(kl)
                }
                None => {
                    path.push("?".to_string());
                    let r = self.walk(events, path, None, depth + 1, line_offset);
                    if let Err(e) = r {
                        path.pop();
                        return Err(e);
                    }
                    None
                }
            };
            let r = self.walk(events, path, value_key_line, depth + 1, line_offset);
            path.pop();
            r?;
        }
        Self::next_event(events, line_offset)?;
        Ok(())
    }

    pub fn get(&self, path: &[&str]) -> Option<&Entry> {
        self.entries.get(&key_of(path))
    }

    /// The scalar at `path`, if it is a non-null scalar.
    pub fn scalar(&self, path: &[&str]) -> Option<&str> {
        self.get(path).and_then(|e| e.scalar.as_deref())
    }

    /// Present and not null.
    pub fn present(&self, path: &[&str]) -> bool {
        self.get(path)
            .is_some_and(|e| e.kind != NodeKind::Scalar || e.scalar.is_some())
    }

    /// Present and, for scalars, non-empty.
    pub fn present_non_empty(&self, path: &[&str]) -> bool {
        self.get(path).is_some_and(|e| match e.kind {
            NodeKind::Scalar => e.scalar.as_deref().is_some_and(|s| !s.is_empty()),
            _ => true,
        })
    }

    /// The deepest path whose entry is on `line` (ties broken by path text).
    pub fn deepest_path_at(&self, line: usize) -> Option<Vec<String>> {
        self.entries
            .iter()
            .filter(|(k, e)| e.line == line && !k.is_empty())
            .map(|(k, _)| k.split('\u{0}').map(str::to_string).collect::<Vec<_>>())
            .max_by(|a, b| a.len().cmp(&b.len()).then_with(|| b.cmp(a)))
    }

    /// Line of `path`, else of its nearest indexed ancestor, else `fallback`.
    pub fn line_near(&self, path: &[&str], fallback: usize) -> usize {
        for n in (1..=path.len()).rev() {
            if let Some(e) = self.get(&path[..n]) {
                return e.line;
            }
        }
        fallback
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_paths_and_lines() {
        let text = "# c\napiVersion: v1\nkind: X\nmetadata:\n  name: a\nspec:\n  list:\n  - k: v\n  - 2\n  empty:\n  nul: null\n  q: \"\"\n";
        let idx = LineIndex::parse(text, 10).unwrap();
        assert_eq!(idx.scalar(&["kind"]), Some("X"));
        assert_eq!(idx.get(&["metadata", "name"]).unwrap().line, 15);
        assert_eq!(idx.get(&["spec", "list", "0", "k"]).unwrap().line, 18);
        assert_eq!(idx.get(&["spec", "list", "1"]).unwrap().line, 19);
        assert!(!idx.present(&["spec", "empty"]));
        assert!(!idx.present(&["spec", "nul"]));
        assert!(idx.present(&["spec", "q"]));
        assert!(!idx.present_non_empty(&["spec", "q"]));
        assert!(idx.present(&["spec", "list"]));
        assert_eq!(idx.line_near(&["spec", "list", "7", "x"], 1), 17);
        assert_eq!(idx.line_near(&["nothing"], 3), 3);
    }

    #[test]
    fn reports_syntax_errors_with_file_lines() {
        let err = LineIndex::parse("a: b\nc: [d\n", 4).unwrap_err();
        assert!(err.line >= 5, "{err:?}");
        assert!(LineIndex::parse("# only a comment\n", 0).unwrap().empty);
    }
}
