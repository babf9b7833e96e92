//! The dynamic value model the template engine works on, shaped after the Go `reflect`
//! kinds that `text/template` distinguishes, plus Go `fmt` `%v` rendering of it.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::rc::Rc;

/// A template value. `Invalid` is Go's invalid `reflect.Value` (a missing map key), which
/// prints as `<no value>`; `Nil` is a nil `interface{}` (prints `<nil>`).
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Invalid,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    List(Rc<ListVal>),
    Map(Rc<MapVal>),
    Struct(Rc<StructVal>),
}

#[derive(Debug)]
pub(crate) struct ListVal {
    /// Go type, e.g. `[]interface {}`, `[]string`, `[]update.Change`.
    pub type_name: Rc<str>,
    pub items: Vec<Value>,
}

#[derive(Debug)]
pub(crate) struct MapVal {
    /// Go type, e.g. `map[string]string`.
    pub type_name: Rc<str>,
    /// Zero value of the element type (what `index` returns for a missing key).
    pub zero: Value,
    /// Entries kept sorted by key (Go's `fmt` and `range` both visit keys in sorted order).
    pub entries: Vec<(Value, Value)>,
}

#[derive(Debug)]
pub(crate) struct StructVal {
    /// Go type, e.g. `update.Change`.
    pub type_name: &'static str,
    pub fields: Vec<Field>,
    /// Niladic methods with their (precomputed) results, e.g. `Changes` on `update.Result`.
    pub methods: Vec<(&'static str, Value)>,
    /// `String()` result when the Go type implements `fmt.Stringer`.
    pub stringer: Option<Rc<str>>,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub value: Value,
    /// Anonymous (embedded) field: its fields and methods are promoted.
    pub embedded: bool,
    /// JSON name (`None` = Go field name); `Some("")` with `embedded` = inlined.
    pub json: Option<&'static str>,
    pub omitempty: bool,
}

impl Field {
    pub(crate) fn plain(name: &'static str, value: Value) -> Field {
        Field {
            name,
            value,
            embedded: false,
            json: None,
            omitempty: false,
        }
    }
}

impl Value {
    pub(crate) fn str(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into())
    }

    pub(crate) fn list(type_name: &str, items: Vec<Value>) -> Value {
        Value::List(Rc::new(ListVal {
            type_name: type_name.into(),
            items,
        }))
    }

    /// Builds a map; entries are sorted and de-duplicated by key (last wins).
    pub(crate) fn map(type_name: &str, zero: Value, mut entries: Vec<(Value, Value)>) -> Value {
        entries.sort_by(|a, b| cmp_keys(&a.0, &b.0));
        let mut out: Vec<(Value, Value)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match out.last_mut() {
                Some(last) if cmp_keys(&last.0, &k) == Ordering::Equal => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        Value::Map(Rc::new(MapVal {
            type_name: type_name.into(),
            zero,
            entries: out,
        }))
    }

    /// Go `%T`-style type name.
    pub(crate) fn type_name(&self) -> String {
        match self {
            Value::Invalid | Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float64".into(),
            Value::Str(_) => "string".into(),
            Value::List(l) => l.type_name.to_string(),
            Value::Map(m) => m.type_name.to_string(),
            Value::Struct(s) => s.type_name.into(),
        }
    }

    /// Go `reflect.Kind` name (sprig `kindOf`).
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            Value::Invalid | Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Struct(_) => "struct",
        }
    }

    /// Go `text/template` truth (`if`, `with`, `and`, `or`, `not`).
    pub(crate) fn is_true(&self) -> bool {
        match self {
            Value::Invalid | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.items.is_empty(),
            Value::Map(m) => !m.entries.is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// A nil interface is "invalid" for comparisons and missing-value checks.
    pub(crate) fn is_missing(&self) -> bool {
        matches!(self, Value::Invalid | Value::Nil)
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Struct field lookup with Go's promotion through embedded fields (breadth first).
    pub(crate) fn struct_field(s: &StructVal, name: &str) -> Option<Value> {
        let mut level: Vec<&StructVal> = vec![s];
        while !level.is_empty() {
            let mut next = Vec::new();
            for st in &level {
                for f in &st.fields {
                    if f.name == name {
                        return Some(f.value.clone());
                    }
                }
            }
            for st in &level {
                for f in &st.fields {
                    if let (true, Value::Struct(inner)) = (f.embedded, &f.value) {
                        next.push(inner.as_ref());
                    }
                }
            }
            level = next;
        }
        None
    }

    /// Method lookup (methods are promoted through embedded fields as well).
    pub(crate) fn struct_method(s: &StructVal, name: &str) -> Option<Value> {
        if let Some((_, v)) = s.methods.iter().find(|(n, _)| *n == name) {
            return Some(v.clone());
        }
        for f in &s.fields {
            if let (true, Value::Struct(inner)) = (f.embedded, &f.value)
                && let Some(v) = Value::struct_method(inner, name)
            {
                return Some(v);
            }
        }
        None
    }
}

/// Ordering of map keys as Go's `internal/fmtsort` does it: strings and numbers naturally,
/// structs field by field, nil first.
pub(crate) fn cmp_keys(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Invalid | Value::Nil => 0,
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::Float(_) => 3,
            Value::Str(_) => 4,
            Value::Struct(_) => 5,
            Value::List(_) => 6,
            Value::Map(_) => 7,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Struct(x), Value::Struct(y)) => {
            for (fx, fy) in x.fields.iter().zip(y.fields.iter()) {
                let c = cmp_keys(&fx.value, &fy.value);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.fields.len().cmp(&y.fields.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `reflect.DeepEqual`-like equality (used by sprig `uniq`, `has`, `without`, `deepEqual`).
pub(crate) fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Invalid | Value::Nil, Value::Invalid | Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.type_name == y.type_name
                && x.items.len() == y.items.len()
                && x.items
                    .iter()
                    .zip(y.items.iter())
                    .all(|(p, q)| deep_equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.type_name == y.type_name
                && x.entries.len() == y.entries.len()
                && x.entries
                    .iter()
                    .zip(y.entries.iter())
                    .all(|(p, q)| deep_equal(&p.0, &q.0) && deep_equal(&p.1, &q.1))
        }
        (Value::Struct(x), Value::Struct(y)) => {
            x.type_name == y.type_name
                && x.fields.len() == y.fields.len()
                && x.fields
                    .iter()
                    .zip(y.fields.iter())
                    .all(|(p, q)| deep_equal(&p.value, &q.value))
        }
        _ => false,
    }
}

/// Go `fmt` `%v` (and `%+v` with `plus`) rendering.
pub(crate) fn fmt_v(v: &Value, plus: bool, out: &mut String) {
    match v {
        Value::Invalid => out.push_str("<invalid reflect.Value>"),
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float_g(*f, None, false)),
        Value::Str(s) => out.push_str(s),
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_v(item, plus, out);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, val)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_v(k, plus, out);
                out.push(':');
                fmt_v(val, plus, out);
            }
            out.push(']');
        }
        Value::Struct(s) => {
            if let Some(text) = &s.stringer {
                out.push_str(text);
                return;
            }
            out.push('{');
            for (i, f) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                if plus {
                    out.push_str(f.name);
                    out.push(':');
                }
                fmt_v(&f.value, plus, out);
            }
            out.push('}');
        }
    }
}

/// `fmt.Sprint` of one operand.
pub(crate) fn sprint1(v: &Value) -> String {
    let mut s = String::new();
    fmt_v(v, false, &mut s);
    s
}

/// Go `strconv.FormatFloat(f, 'g'|'e'|'f', prec, 64)`-compatible rendering used by `%v`,
/// `%g`, `%e`, `%f`. `prec = None` means shortest round-trip.
pub(crate) fn format_float_g(f: f64, prec: Option<usize>, upper: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Decimal digits and exponent (d.ddd × 10^exp).
    let (neg, digits, exp) = decimal_digits(f, prec.map(|p| p.max(1)));
    let eprec = match prec {
        None => 6,
        Some(p) => {
            let p = p.max(1);
            if p > digits.len() && digits.len() as i32 > exp {
                digits.len()
            } else {
                p
            }
        }
    };
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if exp < -4 || exp >= eprec as i32 {
        s.push_str(&digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push(if upper { 'E' } else { 'e' });
        push_exp(&mut s, exp);
    } else if exp < 0 {
        s.push_str("0.");
        for _ in 0..(-exp - 1) {
            s.push('0');
        }
        s.push_str(&digits);
    } else {
        let int_len = (exp + 1) as usize;
        if digits.len() <= int_len {
            s.push_str(&digits);
            for _ in digits.len()..int_len {
                s.push('0');
            }
        } else {
            s.push_str(&digits[..int_len]);
            s.push('.');
            s.push_str(&digits[int_len..]);
        }
    }
    s
}

fn push_exp(s: &mut String, exp: i32) {
    s.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        s.push('0');
    }
    let _ = write!(s, "{e}");
}

/// Significant digits (trailing zeros stripped) and decimal exponent of `f`.
/// `sig = None` gives the shortest representation that round-trips.
fn decimal_digits(f: f64, sig: Option<usize>) -> (bool, String, i32) {
    let neg = f.is_sign_negative() && f != 0.0;
    let a = f.abs();
    if a == 0.0 {
        return (neg, "0".into(), 0);
    }
    let text = match sig {
        None => format!("{a:e}"),
        // An f64 has at most 767 significant decimal digits; the rest are zeros, trimmed below.
        Some(p) => format!("{:.*e}", (p - 1).min(EXACT_SIG), a),
    };
    let (mant, exp) = text.split_once('e').unwrap_or((text.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    (neg, digits, exp)
}

/// `%e` with precision (default 6).
pub(crate) fn format_float_e(f: f64, prec: usize, upper: bool) -> String {
    if !f.is_finite() {
        return format_float_g(f, None, upper);
    }
    let text = format!("{:.*e}", prec.min(EXACT_SIG), f);
    let (mant, exp) = text.split_once('e').unwrap_or((text.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut s = mant.to_string();
    pad_zeros(&mut s, prec.saturating_sub(EXACT_SIG));
    s.push(if upper { 'E' } else { 'e' });
    push_exp(&mut s, exp);
    s
}

/// `%f` with precision (default 6).
pub(crate) fn format_float_f(f: f64, prec: usize) -> String {
    if !f.is_finite() {
        return format_float_g(f, None, false);
    }
    let mut s = format!("{:.*}", prec.min(EXACT_FRACTION), f);
    pad_zeros(&mut s, prec.saturating_sub(EXACT_FRACTION));
    s
}

/// Significant decimal digits that can be non-zero in an f64 (767), rounded up.
const EXACT_SIG: usize = 800;
/// Fraction digits that can be non-zero in an f64 (1074 for the smallest subnormal), rounded
/// up. Rust's formatter panics above 65535 digits of precision; Go's `fmt` allows up to 1e6
/// (`printf` bounds it), and every digit past these is a zero.
const EXACT_FRACTION: usize = 1100;

fn pad_zeros(s: &mut String, n: usize) {
    s.extend(std::iter::repeat_n('0', n));
}

/// Go `encoding/json` marshalling (sprig `toJson`). Errors like Go for unsupported keys.
pub(crate) fn to_json(v: &Value, escape_html: bool, out: &mut String) -> Result<(), String> {
    match v {
        Value::Invalid | Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(format!(
                    "json: unsupported value: {}",
                    format_float_g(*f, None, false)
                ));
            }
            // Go uses %f-like output for "normal" magnitudes and exponent form otherwise.
            let a = f.abs();
            if a != 0.0 && !(1e-6..1e21).contains(&a) {
                let s = format_float_e(*f, 0, false);
                let mut short = format_float_g(*f, None, false);
                if !short.contains('e') {
                    short = s;
                }
                // Go trims "e-07" to "e-7".
                out.push_str(&short.replace("e-0", "e-").replace("e+0", "e+"));
            } else {
                let (neg, digits, exp) = decimal_digits(*f, None);
                let mut s = String::new();
                if neg {
                    s.push('-');
                }
                if exp < 0 {
                    s.push_str("0.");
                    for _ in 0..(-exp - 1) {
                        s.push('0');
                    }
                    s.push_str(&digits);
                } else {
                    let int_len = (exp + 1) as usize;
                    if digits.len() <= int_len {
                        s.push_str(&digits);
                        for _ in digits.len()..int_len {
                            s.push('0');
                        }
                    } else {
                        s.push_str(&digits[..int_len]);
                        s.push('.');
                        s.push_str(&digits[int_len..]);
                    }
                }
                out.push_str(&s);
            }
        }
        Value::Str(s) => json_string(s, escape_html, out),
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_json(item, escape_html, out)?;
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, val)) in m.entries.iter().enumerate() {
                let key = match k {
                    Value::Str(s) => s.to_string(),
                    Value::Int(n) => n.to_string(),
                    _ => return Err(format!("json: unsupported type: {}", m.type_name)),
                };
                if i > 0 {
                    out.push(',');
                }
                json_string(&key, escape_html, out);
                out.push(':');
                to_json(val, escape_html, out)?;
            }
            out.push('}');
        }
        Value::Struct(s) => {
            out.push('{');
            let mut first = true;
            json_struct_fields(s, escape_html, out, &mut first)?;
            out.push('}');
        }
    }
    Ok(())
}

fn json_struct_fields(
    s: &StructVal,
    escape_html: bool,
    out: &mut String,
    first: &mut bool,
) -> Result<(), String> {
    for f in &s.fields {
        let name = f.json.unwrap_or(f.name);
        // Anonymous struct fields without a JSON name are inlined, as encoding/json does.
        if let (true, true, Value::Struct(inner)) =
            (f.embedded, name.is_empty() || f.json.is_none(), &f.value)
        {
            json_struct_fields(inner, escape_html, out, first)?;
            continue;
        }
        if f.omitempty && !f.value.is_true() {
            continue;
        }
        if !*first {
            out.push(',');
        }
        *first = false;
        json_string(name, escape_html, out);
        out.push(':');
        to_json(&f.value, escape_html, out)?;
    }
    Ok(())
}

fn json_string(s: &str, escape_html: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if escape_html => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        assert_eq!(format_float_g(1.5, None, false), "1.5");
        assert_eq!(format_float_g(1e6, None, false), "1e+06");
        assert_eq!(format_float_g(123456.0, None, false), "123456");
        assert_eq!(format_float_g(0.0001, None, false), "0.0001");
        assert_eq!(format_float_g(0.00001, None, false), "1e-05");
        assert_eq!(format_float_g(3.0, None, false), "3");
        assert_eq!(format_float_g(-2.25, None, false), "-2.25");
        assert_eq!(format_float_e(1234.5678, 6, false), "1.234568e+03");
        assert_eq!(format_float_f(1.23456, 2), "1.23");
    }
}
