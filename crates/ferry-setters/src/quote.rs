//! Rendering a new scalar value in the style of the node it replaces.
//!
//! Flux (kyaml `FormatNonStringStyle`) double-quotes a plain node when the new value would read
//! as a non-string under YAML 1.1 (go-yaml v2 resolution); the go-yaml v3 encoder additionally
//! quotes values that cannot be written plain (empty string, indicators, `: `, ` #`, …).
//! Quoted nodes keep their quote style.

/// The style of the scalar being replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
}

/// Returns the source text for `value` written in (or derived from) `style`.
/// `in_flow` is true inside `[...]`/`{...}`, where `,[]{}` also end a plain scalar.
pub fn render(value: &str, style: Style, in_flow: bool) -> String {
    match style {
        Style::Plain => {
            if value.is_empty() || is_yaml11_non_string(value) {
                double_quoted(value)
            } else if plain_allowed(value, in_flow) {
                value.to_string()
            } else if single_allowed(value) {
                single_quoted(value)
            } else {
                double_quoted(value)
            }
        }
        Style::SingleQuoted if single_allowed(value) => single_quoted(value),
        Style::SingleQuoted | Style::DoubleQuoted => double_quoted(value),
    }
}

fn single_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if is_printable(c) => out.push(c),
            c if (c as u32) <= 0xFF => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// YAML's printable set (libyaml `is_printable`), without line breaks.
fn is_printable(c: char) -> bool {
    matches!(c as u32,
        0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        && c != '\u{FEFF}'
}

fn single_allowed(value: &str) -> bool {
    value.chars().all(is_printable)
}

/// Whether `value` can be written as a plain scalar and read back as the same string
/// (libyaml `yaml_emitter_analyze_scalar`, value position).
pub fn plain_allowed(value: &str, in_flow: bool) -> bool {
    let chars: Vec<char> = value.chars().collect();
    let Some(&first) = chars.first() else {
        return false;
    };
    if value.starts_with("---") || value.starts_with("...") {
        return false;
    }
    let is_ws = |c: Option<&char>| matches!(c, None | Some(' ') | Some('\t'));
    if first == ' ' || chars.last() == Some(&' ') {
        return false;
    }
    for (i, &c) in chars.iter().enumerate() {
        if !is_printable(c) {
            return false;
        }
        let next_ws = is_ws(chars.get(i + 1));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => return false,
                '?' | ':' if in_flow || next_ws => return false,
                '-' if next_ws => return false,
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' if in_flow => return false,
                ':' if in_flow || next_ws => return false,
                '#' if chars[i - 1] == ' ' => return false,
                _ => {}
            }
        }
    }
    true
}

/// True when `value`, written plain, would be read as something other than a string by a
/// YAML 1.1 reader (go-yaml v2 resolution, which Flux uses for this decision): booleans
/// (`y/n/yes/no/on/off/true/false` in their three spellings), nulls, ints (decimal, `0x`, `0o`,
/// `0b`, leading-zero octal, `_` separators), floats (`1.10`, `1e3`, `.5`, `.inf`, `.nan`),
/// timestamps (`2024-01-02`), and sexagesimal numbers (`1:30`, YAML 1.1 spec).
/// Empty and multi-line values count as strings (they are handled separately).
pub fn is_yaml11_non_string(value: &str) -> bool {
    // go-yaml parses the value as a whole document, so surrounding blanks do not matter.
    let v = value.trim_matches([' ', '\t']);
    if v.is_empty() || value.contains('\n') {
        return false;
    }
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    if WORDS.contains(&v) {
        return true;
    }
    let first = v.as_bytes()[0];
    match first {
        b'.' => is_float_syntax(v),
        b'0'..=b'9' | b'+' | b'-' => {
            if first.is_ascii_digit() && is_timestamp(v) {
                return true;
            }
            let plain = v.replace('_', "");
            is_go_int(&plain) || is_float_syntax(&plain) || is_sexagesimal(v)
        }
        _ => false,
    }
}

/// `strconv.ParseInt(s, 0, 64)` or `ParseUint(s, 0, 64)` succeeding.
fn is_go_int(s: &str) -> bool {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return false;
    }
    match u64::from_str_radix(digits, radix) {
        Ok(m) if neg => m <= 1u64 << 63,
        Ok(_) => true,
        Err(_) => false,
    }
}

/// go-yaml v2 `yamlStyleFloat` (`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`) plus a
/// finite `ParseFloat` result.
fn is_float_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if int_digits == 0 {
        if b.get(i) != Some(&b'.') {
            return false;
        }
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == f {
            return false;
        }
    } else if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return false;
        }
    }
    i == b.len() && s.parse::<f64>().map(f64::is_finite).unwrap_or(false)
}

/// YAML 1.1 sexagesimal int/float: `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?`.
fn is_sexagesimal(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    if let Some(f) = frac
        && !f.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    let head_ok = head.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && head.chars().all(|c| c.is_ascii_digit() || c == '_');
    let mut n = 0;
    for p in parts {
        n += 1;
        let b = p.as_bytes();
        let ok = match b.len() {
            1 => b[0].is_ascii_digit(),
            2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    head_ok && n > 0
}

/// go-yaml v2 `parseTimestamp`: four digits and `-`, then one of the accepted layouts
/// (`2006-1-2`, `2006-1-2 15:4:5.999999999`, `2006-1-2T15:4:5.999999999Z07:00`).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    // Date part: month-day, one or two digits each.
    let (date, time) = match rest.find(['T', 't', ' ']) {
        Some(i) => (&rest[..i], Some((&rest[i..i + 1], &rest[i + 1..]))),
        None => (rest, None),
    };
    let Some((mo, d)) = date.split_once('-') else {
        return false;
    };
    let num = |x: &str, max: u32| {
        (1..=2).contains(&x.len())
            && x.chars().all(|c| c.is_ascii_digit())
            && x.parse::<u32>().is_ok_and(|v| v <= max)
    };
    if !num(mo, 12) || !num(d, 31) || mo.parse::<u32>() == Ok(0) || d.parse::<u32>() == Ok(0) {
        return false;
    }
    let Some((sep, t)) = time else {
        return true;
    };
    // Time: h:m:s[.frac] then (for T/t) a zone `Z` or `±hh:mm`.
    let (clock, zone) = if sep == " " {
        (t, "")
    } else {
        match t.find(['Z', '+', '-']) {
            Some(i) => (&t[..i], &t[i..]),
            None => return false,
        }
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (clock, None),
    };
    if frac.is_some_and(|f| f.is_empty() || !f.chars().all(|c| c.is_ascii_digit())) {
        return false;
    }
    let hms: Vec<&str> = hms.split(':').collect();
    if hms.len() != 3 || !num(hms[0], 23) || !num(hms[1], 59) || !num(hms[2], 59) {
        return false;
    }
    match zone {
        "" | "Z" => true,
        z => {
            let z = &z[1..];
            let Some((h, m)) = z.split_once(':') else {
                return false;
            };
            h.len() == 2 && m.len() == 2 && num(h, 23) && num(m, 59)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml11_non_strings() {
        for v in [
            "1",
            "10",
            "-1",
            "+1",
            "0",
            "017",
            "08",
            "0x1F",
            "0o17",
            "0b101",
            "1_000",
            "1.10",
            "1.0",
            "1.",
            ".5",
            "1e3",
            "1E-3",
            "-1.5e+3",
            "20240102",
            "3.14",
            ".inf",
            "-.Inf",
            "+.INF",
            ".nan",
            ".NaN",
            "true",
            "True",
            "TRUE",
            "false",
            "yes",
            "Yes",
            "YES",
            "no",
            "NO",
            "on",
            "On",
            "ON",
            "off",
            "OFF",
            "y",
            "Y",
            "n",
            "N",
            "~",
            "null",
            "Null",
            "NULL",
            "2024-01-02",
            "2001-12-14t21:59:43.10-05:00",
            "2001-12-14 21:59:43.10",
            "1:30",
            "190:20:30",
            "1:20.5",
            "99999999999999999999",
            " 1 ",
            "1_",
        ] {
            assert!(is_yaml11_non_string(v), "{v} should be non-string");
        }
    }

    #[test]
    fn yaml11_strings() {
        for v in [
            "",
            "v1.0.1",
            "1.0.0",
            "1.2.3-rc1",
            "main-abc123",
            "latest",
            "yES",
            "tRUE",
            "nO",
            "onn",
            "0x",
            "0xZZ",
            "1e",
            "e3",
            "1.0.0.0",
            "sha256:abcd",
            "image:v1",
            "nginx",
            "1e400",
            "0b",
            "12:60",
            "2024-13-01",
            "1__0a",
            ".",
            "-",
            "+",
            "--1",
            "a:1",
            "NaN",
            "Infinity",
            "1.2.3@sha256:0",
        ] {
            assert!(!is_yaml11_non_string(v), "{v} should be a string");
        }
    }

    #[test]
    fn render_rules() {
        assert_eq!(render("1.10", Style::Plain, false), "\"1.10\"");
        assert_eq!(render("true", Style::Plain, false), "\"true\"");
        assert_eq!(render("", Style::Plain, false), "\"\"");
        assert_eq!(render("v1.0.1", Style::Plain, false), "v1.0.1");
        assert_eq!(render("a:b@sha256:1", Style::Plain, false), "a:b@sha256:1");
        assert_eq!(render("1.10", Style::SingleQuoted, false), "'1.10'");
        assert_eq!(render("it's", Style::SingleQuoted, false), "'it''s'");
        assert_eq!(
            render("a\"b\\c", Style::DoubleQuoted, false),
            "\"a\\\"b\\\\c\""
        );
        assert_eq!(render("a\tb", Style::SingleQuoted, false), "\"a\\tb\"");
        // Plain values that cannot stay plain get single quotes, as the go-yaml emitter does.
        assert_eq!(render("@x", Style::Plain, false), "'@x'");
        assert_eq!(render("a #b", Style::Plain, false), "'a #b'");
        assert_eq!(render("a: b", Style::Plain, false), "'a: b'");
        assert_eq!(render("a,b", Style::Plain, false), "a,b");
        assert_eq!(render("a,b", Style::Plain, true), "'a,b'");
        assert_eq!(render("reg:5000/x:1", Style::Plain, true), "'reg:5000/x:1'");
        assert_eq!(render("reg:5000/x:1", Style::Plain, false), "reg:5000/x:1");
    }
}
