//! Post-build variables (`--var KEY=VALUE`, `--vars-file FILE`) and `${var}` substitution with
//! Flux `postBuild.substitute` semantics.
//!
//! Supported forms: `${var}`, `${var:=default}`, `${var:-default}` (default when unset or
//! empty), `${var=default}`, `${var-default}` (default when unset); defaults may nest
//! `${...}`. `$$` is an escape for a literal `$` (so `$${var}` yields `${var}`). Any other
//! `${...}` form (`${#var}`, `${var^^}`, `${var/a/b}` …) is reported as a bad substitution.
//!
//! As in Flux, newlines inside variable values are dropped, and documents (or objects) labelled
//! or annotated `kustomize.toolkit.fluxcd.io/substitute: disabled` are left untouched.
//! Unlike Flux (which works on re-serialized YAML, where comments are gone), Ferry substitutes
//! the source text, so it skips `#` comments to avoid reporting placeholders Flux never sees.
//!
//! Difference from Flux (deliberate): Flux replaces an undefined variable with an empty string
//! unless strict substitution is enabled; Ferry always reports it, since a silently empty image
//! name is never what was meant.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::error::{LoadError, LoadErrorKind, LoadErrors};
use crate::index::LineIndex;

/// Variable values for substitution. `Debug` shows names only (values may be secrets).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Vars {
    map: BTreeMap<String, String>,
}

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vars")
            .field("names", &self.map.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A variable name, as Flux validates them: `^[_a-zA-Z][_a-zA-Z0-9]*$`.
pub fn is_valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// An invalid `--var` argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarError {
    /// No `=`.
    #[error("invalid --var {0:?}: expected KEY=VALUE")]
    MissingEquals(String),
    /// Name not `[_a-zA-Z][_a-zA-Z0-9]*`.
    #[error("invalid variable name {0:?}: must match [_a-zA-Z][_a-zA-Z0-9]*")]
    BadName(String),
}

impl Vars {
    /// No variables.
    pub fn new() -> Self {
        Vars::default()
    }

    /// Sets a variable (later values win).
    pub fn insert(&mut self, name: &str, value: &str) -> Result<(), VarError> {
        if !is_valid_var_name(name) {
            return Err(VarError::BadName(name.to_string()));
        }
        self.map.insert(name.to_string(), value.to_string());
        Ok(())
    }

    /// Value of a variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Variable names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// Applies one `--var KEY=VALUE` argument (value may contain `=`; the key is trimmed).
    pub fn set_from_arg(&mut self, arg: &str) -> Result<(), VarError> {
        let (k, v) = arg
            .split_once('=')
            .ok_or_else(|| VarError::MissingEquals(redact_arg(arg)))?;
        self.insert(k.trim(), v)
    }

    /// Reads a vars file: either `KEY=VALUE` lines (dotenv style: `#` comments, blank lines,
    /// optional `export `, optional single/double quotes) or a YAML/JSON mapping of scalars.
    /// Files ending in `.yaml`, `.yml` or `.json` are read as YAML; otherwise the first
    /// significant line decides (`NAME=` → dotenv). Errors name `file:line`.
    pub fn load_file(&mut self, path: &Path) -> Result<(), LoadErrors> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| LoadError::new(&file, 0, None, LoadErrorKind::Io(e.kind().to_string())))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| LoadError::new(&file, 0, None, LoadErrorKind::NotUtf8))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let yaml = match ext.as_str() {
            "yaml" | "yml" | "json" => true,
            _ => !looks_like_dotenv(text),
        };
        if yaml {
            self.load_yaml(&file, text)
        } else {
            self.load_dotenv(&file, text)
        }
    }

    /// Builds variables from CLI flags: every `--vars-file` in order, then every `--var`
    /// (so `--var` overrides files). All problems are collected.
    pub fn from_cli<P: AsRef<Path>>(args: &[String], files: &[P]) -> Result<Vars, LoadErrors> {
        let mut vars = Vars::new();
        let mut errors = Vec::new();
        for f in files {
            if let Err(e) = vars.load_file(f.as_ref()) {
                errors.extend(e);
            }
        }
        for a in args {
            if let Err(e) = vars.set_from_arg(a) {
                errors.push(LoadError::new(
                    "--var",
                    0,
                    None,
                    LoadErrorKind::Vars(e.to_string()),
                ));
            }
        }
        if errors.is_empty() {
            Ok(vars)
        } else {
            Err(LoadErrors(errors))
        }
    }

    fn load_dotenv(&mut self, file: &str, text: &str) -> Result<(), LoadErrors> {
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").map_or(line, str::trim_start);
            let err = |msg: String| LoadError::new(file, line_no, None, LoadErrorKind::Vars(msg));
            let Some((k, v)) = line.split_once('=') else {
                errors.push(err(
                    "invalid line in vars file: expected KEY=VALUE".to_string()
                ));
                continue;
            };
            let k = k.trim();
            if !is_valid_var_name(k) {
                errors.push(err(format!(
                    "invalid variable name {k:?}: must match [_a-zA-Z][_a-zA-Z0-9]*"
                )));
                continue;
            }
            match dotenv_value(v.trim()) {
                Ok(v) => {
                    self.map.insert(k.to_string(), v);
                }
                Err(msg) => errors.push(err(format!("variable {k}: {msg}"))),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(LoadErrors(errors))
        }
    }

    fn load_yaml(&mut self, file: &str, text: &str) -> Result<(), LoadErrors> {
        let idx = LineIndex::parse(text, 0).map_err(|e| {
            LoadError::new(
                file,
                e.line,
                None,
                LoadErrorKind::Vars(format!("YAML syntax error: {}", e.message)),
            )
        })?;
        if idx.empty {
            return Ok(());
        }
        let map: BTreeMap<String, String> = serde_saphyr::from_str(text).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line() as usize);
            LoadError::new(
                file,
                line,
                None,
                LoadErrorKind::Vars(format!(
                    "vars file must be a mapping of names to scalar values: {}",
                    crate::load::saphyr_message(&e)
                )),
            )
        })?;
        let mut errors = Vec::new();
        for (k, v) in map {
            if is_valid_var_name(&k) {
                self.map.insert(k, v);
            } else {
                let line = idx.get(&[k.as_str()]).map_or(0, |e| e.line);
                errors.push(LoadError::new(
                    file,
                    line,
                    None,
                    LoadErrorKind::Vars(format!(
                        "invalid variable name {k:?}: must match [_a-zA-Z][_a-zA-Z0-9]*"
                    )),
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(LoadErrors(errors))
        }
    }
}

/// Shows the key of a bad `--var` but never the value.
fn redact_arg(arg: &str) -> String {
    if arg.len() > 40 {
        format!("{}…", arg.chars().take(40).collect::<String>())
    } else {
        arg.to_string()
    }
}

fn looks_like_dotenv(text: &str) -> bool {
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let t = t.strip_prefix("export ").map_or(t, str::trim_start);
        return match t.split_once('=') {
            Some((k, _)) => is_valid_var_name(k.trim()),
            None => false,
        };
    }
    true
}

fn dotenv_value(v: &str) -> Result<String, String> {
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    let tail = chars.as_str().trim();
                    if tail.is_empty() || tail.starts_with('#') {
                        return Ok(out);
                    }
                    return Err("unexpected text after closing quote".to_string());
                }
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(other) => out.push(other),
                    None => return Err("unterminated double quote".to_string()),
                },
                c => out.push(c),
            }
        }
        return Err("unterminated double quote".to_string());
    }
    if let Some(rest) = v.strip_prefix('\'') {
        return match rest.split_once('\'') {
            Some((inner, tail)) => {
                let tail = tail.trim();
                if tail.is_empty() || tail.starts_with('#') {
                    Ok(inner.to_string())
                } else {
                    Err("unexpected text after closing quote".to_string())
                }
            }
            None => Err("unterminated single quote".to_string()),
        };
    }
    // Unquoted: ` #` starts a comment.
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    Ok(v.trim_end().to_string())
}

/// A substitution problem at a byte offset of the substituted text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubstError {
    pub offset: usize,
    pub kind: LoadErrorKind,
}

/// Substitutes `${...}` in one YAML document with Flux post-build semantics (see the module
/// docs), for callers outside this crate (the renderer substitutes a parent Kustomization's
/// variables into the Kustomizations it produces). Returns every problem found.
pub fn substitute_text(text: &str, vars: &Vars) -> Result<String, Vec<LoadErrorKind>> {
    substitute(text, vars).map_err(|errs| errs.into_iter().map(|e| e.kind).collect())
}

/// Substitutes `${...}` in `text`, skipping YAML comments. Returns the new text or every
/// problem found.
pub(crate) fn substitute(text: &str, vars: &Vars) -> Result<String, Vec<SubstError>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut block_indent: Option<usize> = None;
    let mut offset = 0usize;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start_matches(' ').len();
        let is_blank = body.trim().is_empty();
        if let Some(parent) = block_indent {
            if is_blank || indent > parent {
                // Block scalar content: no comments inside.
                expand(line, 0, vars, &mut out, &mut errors, offset);
                offset += line.len();
                continue;
            }
            block_indent = None;
        }
        let code_end = comment_start(body).unwrap_or(line.len());
        expand(&line[..code_end], 0, vars, &mut out, &mut errors, offset);
        out.push_str(&line[code_end..]);
        if starts_block_scalar(body[..code_end.min(body.len())].trim_end()) {
            block_indent = Some(indent);
        }
        offset += line.len();
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Byte index where a `#` comment starts on this line (outside quotes), if any.
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let prev = if i == 0 { b' ' } else { bytes[i - 1] };
        match quote {
            Some(b'"') => {
                if b == b'\\' {
                    i += 1;
                } else if b == b'"' {
                    quote = None;
                }
            }
            Some(_) => {
                if b == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 1;
                    } else {
                        quote = None;
                    }
                }
            }
            None => {
                let at_token_start = matches!(prev, b' ' | b'\t' | b'[' | b'{' | b',' | b':');
                if (b == b'"' || b == b'\'') && (i == 0 || at_token_start) {
                    quote = Some(b);
                } else if b == b'#' && (i == 0 || prev == b' ' || prev == b'\t') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

/// `key: |`, `- >-`, `key: |2+` …
fn starts_block_scalar(code: &str) -> bool {
    let t = code.trim_end_matches(|c: char| c == '+' || c == '-' || c.is_ascii_digit());
    let Some(rest) = t.strip_suffix(['|', '>']) else {
        return false;
    };
    rest.is_empty() || rest.ends_with([' ', '\t']) || rest.ends_with(':') || rest.ends_with('-')
}

/// Expands `s` into `out`. `base` is the byte offset of `s` in the whole text, for errors.
/// With `depth > 0`, stops before an unmatched `}` and returns its index; else returns `s.len()`.
fn expand(
    s: &str,
    depth: usize,
    vars: &Vars,
    out: &mut String,
    errors: &mut Vec<SubstError>,
    base: usize,
) -> usize {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut lit_start = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'}' if depth > 0 => {
                out.push_str(&s[lit_start..i]);
                return i;
            }
            b'$' if bytes.get(i + 1) == Some(&b'$') => {
                out.push_str(&s[lit_start..i]);
                out.push('$');
                i += 2;
                lit_start = i;
            }
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                out.push_str(&s[lit_start..i]);
                i = expand_expr(s, i, depth, vars, out, errors, base);
                lit_start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&s[lit_start..]);
    s.len()
}

/// Expands the `${...}` starting at `start`; returns the index after it.
fn expand_expr(
    s: &str,
    start: usize,
    depth: usize,
    vars: &Vars,
    out: &mut String,
    errors: &mut Vec<SubstError>,
    base: usize,
) -> usize {
    let bytes = s.as_bytes();
    let name_start = start + 2;
    let mut i = name_start;
    while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
        i += 1;
    }
    let name = &s[name_start..i];
    let bad = |reason: &str, end: usize, errors: &mut Vec<SubstError>| {
        let expr: String = s[start..end.min(s.len())].chars().take(60).collect();
        errors.push(SubstError {
            offset: base + start,
            kind: LoadErrorKind::BadSubstitution {
                expr,
                reason: reason.to_string(),
            },
        });
    };
    if name.is_empty() || !is_valid_var_name(name) {
        let end = matching_brace(s, name_start).map_or(s.len(), |e| e + 1);
        bad(
            "expected a variable name [_a-zA-Z][_a-zA-Z0-9]* (Ferry supports ${var}, ${var:=default}, ${var:-default}, ${var=default}, ${var-default})",
            end,
            errors,
        );
        out.push_str(&s[start..end]);
        return end;
    }
    let value = vars.get(name);
    let (op_len, use_if_empty) = match (bytes.get(i), bytes.get(i + 1)) {
        (Some(b'}'), _) => {
            match value {
                Some(v) => push_value(out, v),
                None => {
                    errors.push(SubstError {
                        offset: base + start,
                        kind: LoadErrorKind::UnresolvedVariable {
                            name: name.to_string(),
                        },
                    });
                    out.push_str(&s[start..=i]);
                }
            }
            return i + 1;
        }
        (Some(b':'), Some(b'=' | b'-')) => (2, true),
        (Some(b'=' | b'-'), _) => (1, false),
        (None, _) => {
            bad("missing closing brace", s.len(), errors);
            out.push_str(&s[start..]);
            return s.len();
        }
        _ => {
            let end = matching_brace(s, i).map_or(s.len(), |e| e + 1);
            bad(
                "unsupported operator (Ferry supports ${var}, ${var:=default}, ${var:-default}, ${var=default}, ${var-default})",
                end,
                errors,
            );
            out.push_str(&s[start..end]);
            return end;
        }
    };
    let default_start = i + op_len;
    let mut default_out = String::new();
    let mut default_errors = Vec::new();
    let rel_end = expand(
        &s[default_start..],
        depth + 1,
        vars,
        &mut default_out,
        &mut default_errors,
        base + default_start,
    );
    let close = default_start + rel_end;
    if close >= s.len() {
        bad("missing closing brace", s.len(), errors);
        out.push_str(&s[start..]);
        return s.len();
    }
    let use_default = match value {
        None => true,
        Some(v) => use_if_empty && v.is_empty(),
    };
    if use_default {
        errors.extend(default_errors);
        out.push_str(&default_out);
    } else if let Some(v) = value {
        push_value(out, v);
    }
    close + 1
}

/// Appends a variable's value; like Flux, newlines in values are dropped (this also keeps
/// file line numbers valid after substitution).
fn push_value(out: &mut String, v: &str) {
    out.extend(v.chars().filter(|c| *c != '\n'));
}

/// Index of the `}` closing a `${` whose body starts at `from` (nested `${` counted).
fn matching_brace(s: &str, from: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        let mut v = Vars::new();
        for (k, val) in pairs {
            v.insert(k, val).unwrap();
        }
        v
    }

    fn sub(text: &str, v: &Vars) -> Result<String, Vec<SubstError>> {
        substitute(text, v)
    }

    #[test]
    fn basic_forms() {
        let v = vars(&[
            ("reg", "ghcr.io/acme"),
            ("empty", ""),
            ("multi", "line1\nline2\n"),
        ]);
        let cases = [
            ("image: ${reg}/backend", "image: ghcr.io/acme/backend"),
            ("a: ${missing:=def}", "a: def"),
            ("a: ${missing:-def}", "a: def"),
            ("a: ${missing=def}", "a: def"),
            ("a: ${missing-def}", "a: def"),
            ("a: ${empty:=def}", "a: def"),
            ("a: ${empty:-def}", "a: def"),
            ("a: ${empty=def}", "a: "),
            ("a: ${empty-def}", "a: "),
            ("a: ${reg:=def}", "a: ghcr.io/acme"),
            ("a: ${missing:=${reg}/x}", "a: ghcr.io/acme/x"),
            ("a: ${missing:=}", "a: "),
            ("a: $${reg}", "a: ${reg}"),
            ("a: $$x and $x and $", "a: $x and $x and $"),
            ("a: ^v[0-9]+$", "a: ^v[0-9]+$"),
            (
                "a: x # ${not_substituted} in comment",
                "a: x # ${not_substituted} in comment",
            ),
            ("a: \"# ${reg}\"", "a: \"# ghcr.io/acme\""),
            ("a: ${multi}", "a: line1line2"),
        ];
        for (input, want) in cases {
            assert_eq!(sub(input, &v).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn block_scalars_are_substituted_including_hash_lines() {
        let v = vars(&[("x", "X")]);
        let text = "t: |\n  # heading ${x}\n  body ${x}\nnext: ${x} # ${nope}\n";
        assert_eq!(
            sub(text, &v).unwrap(),
            "t: |\n  # heading X\n  body X\nnext: X # ${nope}\n"
        );
    }

    #[test]
    fn unresolved_and_bad() {
        let v = vars(&[]);
        let errs = sub("a: 1\nb: ${one}/${two}\n", &v).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].offset, 8);
        assert_eq!(
            errs[0].kind,
            LoadErrorKind::UnresolvedVariable { name: "one".into() }
        );
        assert_eq!(
            errs[1].kind,
            LoadErrorKind::UnresolvedVariable { name: "two".into() }
        );
        for bad in [
            "${#x}", "${x^^}", "${x/a/b}", "${x", "${1x}", "${}", "${x:=abc",
        ] {
            let errs = sub(bad, &v).unwrap_err();
            assert!(
                matches!(errs[0].kind, LoadErrorKind::BadSubstitution { .. }),
                "{bad}: {errs:?}"
            );
        }
        // An unused default is not evaluated.
        assert_eq!(
            sub("${x:=${y}}", &vars(&[("x", "v")])).unwrap(),
            "v".to_string()
        );
    }

    #[test]
    fn var_names_and_args() {
        assert!(is_valid_var_name("_a1"));
        assert!(is_valid_var_name("image_registry"));
        assert!(!is_valid_var_name("1a"));
        assert!(!is_valid_var_name("a-b"));
        assert!(!is_valid_var_name(""));
        let mut v = Vars::new();
        v.set_from_arg("a=b=c").unwrap();
        assert_eq!(v.get("a"), Some("b=c"));
        assert!(matches!(
            v.set_from_arg("novalue"),
            Err(VarError::MissingEquals(_))
        ));
        assert!(matches!(v.set_from_arg("a-b=1"), Err(VarError::BadName(_))));
        v.insert("secret", "hunter2").unwrap();
        assert!(!format!("{v:?}").contains("hunter2"));
    }

    #[test]
    fn dotenv_values() {
        assert_eq!(dotenv_value("plain").unwrap(), "plain");
        assert_eq!(dotenv_value("plain # c").unwrap(), "plain");
        assert_eq!(dotenv_value("a#b").unwrap(), "a#b");
        assert_eq!(dotenv_value("\"a b\\n\" # c").unwrap(), "a b\n");
        assert_eq!(dotenv_value("'a \\n'").unwrap(), "a \\n");
        assert!(dotenv_value("\"open").is_err());
        assert!(dotenv_value("'x' y").is_err());
    }
}
