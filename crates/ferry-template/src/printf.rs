//! Go `fmt.Sprintf` / `fmt.Sprint` / `fmt.Sprintln` emulation over [`Value`].

use std::fmt::Write as _;

use crate::value::{Value, fmt_v, format_float_e, format_float_f, format_float_g};

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// `fmt.Sprint`: spaces between operands when neither side is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        fmt_v(a, false, &mut out);
    }
    out
}

/// `fmt.Sprintln`: always spaces, trailing newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        fmt_v(a, false, &mut out);
    }
    out.push('\n');
    out
}

/// Go's `fmt` bound on widths and precisions (`tooLarge`): beyond ±1e6 they are refused, so a
/// template cannot ask for a gigabyte of padding.
fn too_large(n: i64) -> bool {
    !(-1_000_000..=1_000_000).contains(&n)
}

/// Go `parsenum`: digits of a width or precision. A number that grows too large consumes the
/// rest of the format (Go then reports `%!(NOVERB)`) and counts as absent.
fn parse_num(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Option<usize> {
    let mut num: i64 = 0;
    let mut any = false;
    while let Some(&(_, d)) = chars.peek() {
        let Some(digit) = d.to_digit(10) else { break };
        if too_large(num) {
            chars.for_each(drop);
            return None;
        }
        num = num * 10 + i64::from(digit);
        any = true;
        chars.next();
    }
    any.then_some(num as usize)
}

/// `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0usize;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        // flags
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                _ => break,
            }
            chars.next();
        }
        // width
        if let Some(&(_, '*')) = chars.peek() {
            chars.next();
            match args.get(argi) {
                Some(Value::Int(n)) if !too_large(*n) => {
                    if *n < 0 {
                        spec.minus = true;
                    }
                    spec.width = Some(n.unsigned_abs() as usize);
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            argi += 1;
        } else {
            spec.width = parse_num(&mut chars);
        }
        // precision
        if let Some(&(_, '.')) = chars.peek() {
            chars.next();
            if let Some(&(_, '*')) = chars.peek() {
                chars.next();
                match args.get(argi) {
                    Some(Value::Int(n)) if *n >= 0 && !too_large(*n) => {
                        spec.prec = Some(*n as usize)
                    }
                    _ => out.push_str("%!(BADPREC)"),
                }
                argi += 1;
            } else {
                spec.prec = Some(parse_num(&mut chars).unwrap_or(0));
            }
        }
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        argi += 1;
        format_arg(&mut out, arg, verb, spec, 0);
    }
    if argi < args.len() {
        extra(&mut out, &args[argi..]);
    }
    out
}

/// Go's `%!(EXTRA type=value, …)` for arguments no verb used.
fn extra(out: &mut String, args: &[Value]) {
    out.push_str("%!(EXTRA ");
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if let Value::Nil | Value::Invalid = a {
            out.push_str("<nil>");
        } else {
            let _ = write!(out, "{}=", a.type_name());
            fmt_v(a, false, out);
        }
    }
    out.push(')');
}

fn pad(out: &mut String, s: &str, spec: Spec, numeric: bool) {
    let len = s.chars().count();
    let width = spec.width.unwrap_or(0);
    if len >= width {
        out.push_str(s);
        return;
    }
    let fill = width - len;
    if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && numeric {
        // zero padding goes after the sign
        let (sign, rest) = if s.starts_with(['-', '+', ' ']) {
            s.split_at(1)
        } else {
            ("", s)
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(rest);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(s);
    }
}

fn bad_verb(out: &mut String, arg: &Value, verb: char) {
    let _ = write!(out, "%!{verb}(");
    match arg {
        Value::Nil | Value::Invalid => out.push_str("<nil>"),
        _ => {
            let _ = write!(out, "{}=", arg.type_name());
            fmt_v(arg, false, out);
        }
    }
    out.push(')');
}

fn sign_prefix(neg: bool, spec: Spec) -> &'static str {
    if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn format_arg(out: &mut String, arg: &Value, verb: char, spec: Spec, depth: usize) {
    if verb == 'T' {
        pad(out, &arg.type_name(), spec, false);
        return;
    }
    match arg {
        Value::Nil | Value::Invalid => {
            if verb == 'v' {
                pad(out, "<nil>", spec, false);
            } else {
                bad_verb(out, arg, verb);
            }
        }
        Value::Bool(b) => match verb {
            'v' | 't' => pad(out, if *b { "true" } else { "false" }, spec, false),
            _ => bad_verb(out, arg, verb),
        },
        Value::Int(i) => format_int(out, *i, verb, spec, arg),
        Value::Float(f) => {
            let neg = f.is_sign_negative() && *f != 0.0;
            let body = match verb {
                'v' | 'g' => format_float_g(f.abs(), spec.prec, false),
                'G' => format_float_g(f.abs(), spec.prec, true),
                'e' => format_float_e(f.abs(), spec.prec.unwrap_or(6), false),
                'E' => format_float_e(f.abs(), spec.prec.unwrap_or(6), true),
                'f' | 'F' => format_float_f(f.abs(), spec.prec.unwrap_or(6)),
                _ => {
                    bad_verb(out, arg, verb);
                    return;
                }
            };
            let s = format!("{}{}", sign_prefix(neg, spec), body);
            pad(out, &s, spec, true);
        }
        Value::Str(s) => format_str(out, s, verb, spec, arg),
        Value::List(l) => {
            if depth == 0
                && matches!(verb, 's' | 'q' | 'x' | 'X')
                && l.type_name.as_ref() == "[]uint8"
            {
                // not produced by this engine; keep generic path
            }
            out.push('[');
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_arg(out, item, verb, spec, depth + 1);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, v)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_arg(out, k, verb, spec, depth + 1);
                out.push(':');
                format_arg(out, v, verb, spec, depth + 1);
            }
            out.push(']');
        }
        Value::Struct(s) => {
            if let Some(text) = &s.stringer
                && matches!(verb, 'v' | 's' | 'x' | 'X' | 'q')
            {
                format_str(out, text, verb, spec, arg);
                return;
            }
            out.push('{');
            for (i, f) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                if verb == 'v' && spec.plus {
                    out.push_str(f.name);
                    out.push(':');
                }
                format_arg(out, &f.value, verb, spec, depth + 1);
            }
            out.push('}');
        }
    }
}

fn format_int(out: &mut String, i: i64, verb: char, spec: Spec, arg: &Value) {
    let neg = i < 0;
    let u = i.unsigned_abs();
    let mut digits = match verb {
        'v' | 'd' => u.to_string(),
        'b' => format!("{u:b}"),
        'o' | 'O' => format!("{u:o}"),
        'x' => format!("{u:x}"),
        'X' => format!("{u:X}"),
        'c' => {
            let c = char::from_u32(i as u32).unwrap_or('\u{FFFD}');
            pad(out, &c.to_string(), spec, false);
            return;
        }
        'q' => {
            let c = char::from_u32(i as u32).unwrap_or('\u{FFFD}');
            pad(out, &quote_rune(c), spec, false);
            return;
        }
        'U' => {
            let s = format!("U+{u:04X}");
            pad(out, &s, spec, false);
            return;
        }
        _ => {
            bad_verb(out, arg, verb);
            return;
        }
    };
    if let Some(p) = spec.prec
        && digits.len() < p
    {
        // One allocation: inserting zeros one by one is quadratic in the precision.
        digits = "0".repeat(p - digits.len()) + &digits;
    }
    let prefix = match verb {
        'O' => "0o",
        'x' if spec.sharp => "0x",
        'X' if spec.sharp => "0X",
        'o' if spec.sharp => "0",
        'b' if spec.sharp => "0b",
        _ => "",
    };
    let s = format!("{}{}{}", sign_prefix(neg, spec), prefix, digits);
    pad(
        out,
        &s,
        Spec {
            zero: spec.zero && spec.prec.is_none(),
            ..spec
        },
        true,
    );
}

fn format_str(out: &mut String, s: &str, verb: char, spec: Spec, arg: &Value) {
    let truncated: String = match spec.prec {
        Some(p) if matches!(verb, 'v' | 's' | 'q') => s.chars().take(p).collect(),
        _ => s.to_string(),
    };
    match verb {
        'v' | 's' => pad(out, &truncated, spec, false),
        'q' => pad(out, &go_quote(&truncated), spec, false),
        'x' | 'X' => {
            let mut h = String::new();
            for (i, b) in s.bytes().enumerate() {
                if spec.space && i > 0 {
                    h.push(' ');
                }
                if verb == 'x' {
                    let _ = write!(h, "{b:02x}");
                } else {
                    let _ = write!(h, "{b:02X}");
                }
            }
            pad(out, &h, spec, false);
        }
        _ => bad_verb(out, arg, verb),
    }
}

fn is_go_print(c: char) -> bool {
    !(c.is_control()
        || matches!(c, '\u{00AD}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}')
        || (c.is_whitespace() && c != ' '))
}

fn escape_char(out: &mut String, c: char, quote: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if is_go_print(c) => out.push(c),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// Go `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape_char(&mut out, c, '"');
    }
    out.push('"');
    out
}

fn quote_rune(c: char) -> String {
    let mut out = String::from('\'');
    escape_char(&mut out, c, '\'');
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs() {
        let s = |v: &str| Value::str(v);
        assert_eq!(sprintf("%s-%d", &[s("a"), Value::Int(3)]), "a-3");
        assert_eq!(sprintf("%q", &[s("a\"b\n")]), "\"a\\\"b\\n\"");
        assert_eq!(sprintf("%x", &[s("hi")]), "6869");
        assert_eq!(sprintf("%x", &[Value::Int(255)]), "ff");
        assert_eq!(
            sprintf("%05d|%-4s|%4s", &[Value::Int(42), s("ab"), s("cd")]),
            "00042|ab  |  cd"
        );
        assert_eq!(sprintf("%d", &[s("x")]), "%!d(string=x)");
        assert_eq!(sprintf("%s %s", &[s("x")]), "x %!s(MISSING)");
        assert_eq!(sprintf("%s", &[s("x"), Value::Int(1)]), "x%!(EXTRA int=1)");
        assert_eq!(sprintf("%v", &[Value::Nil]), "<nil>");
        assert_eq!(sprintf("%s", &[Value::Nil]), "%!s(<nil>)");
        assert_eq!(
            sprintf("%.2f %v", &[Value::Float(1.23456), Value::Float(2.5)]),
            "1.23 2.5"
        );
        assert_eq!(sprintf("%.3s", &[s("abcdef")]), "abc");
        assert_eq!(sprintf("100%%", &[]), "100%");
        assert_eq!(
            sprint(&[s("a"), Value::Int(1), Value::Int(2), s("b")]),
            "a1 2b"
        );
    }
}
