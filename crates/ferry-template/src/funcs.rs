//! Go `text/template` builtins plus the sprig v3 `HermeticTxtFuncMap` subset that Ferry
//! supports. [`SUPPORTED_FUNCTIONS`] is the authoritative list; any other identifier is a
//! parse error (`function "x" not defined`), exactly as an undefined function is in Go.

use std::fmt::Write as _;

use base64::Engine as _;
use sha2::Digest as _;

use crate::printf::{go_quote, sprint, sprintf, sprintln};
use crate::value::{Value, cmp_keys, deep_equal, sprint1, to_json};

/// Parameter kinds, mirroring the Go parameter types that matter for argument checking.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ty {
    /// `interface{}`: a missing value arrives as nil.
    Any,
    /// `reflect.Value` (builtins): a missing value arrives as-is.
    Refl,
    Str,
    Int,
    Bool,
    /// `map[string]interface{}` (sprig dict functions).
    Dict,
}

impl Ty {
    pub(crate) fn go_name(self) -> &'static str {
        match self {
            Ty::Any => "interface {}",
            Ty::Refl => "reflect.Value",
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Bool => "bool",
            Ty::Dict => "map[string]interface {}",
        }
    }

    pub(crate) fn literal_name(self) -> &'static str {
        match self {
            Ty::Int => "integer",
            other => other.go_name(),
        }
    }
}

pub(crate) struct FuncDef {
    pub params: &'static [Ty],
    /// The last parameter is variadic.
    pub variadic: bool,
    pub f: fn(&[Value]) -> Result<Value, String>,
}

use Ty::{Any, Bool, Dict, Int, Refl, Str};

type Entry = (
    &'static str,
    &'static [Ty],
    bool,
    fn(&[Value]) -> Result<Value, String>,
);

/// Every function name the engine knows, Go builtins first, then sprig.
pub const SUPPORTED_FUNCTIONS: &[&str] = &[
    // Go text/template builtins
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "call", // sprig: strings
    "lower",
    "upper",
    "title",
    "untitle",
    "trim",
    "trimAll",
    "trimall",
    "trimPrefix",
    "trimSuffix",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "repeat",
    "substr",
    "trunc",
    "abbrev",
    "initials",
    "nospace",
    "indent",
    "nindent",
    "quote",
    "squote",
    "cat",
    "plural",
    "toString",
    "toStrings",
    "join",
    "split",
    "splitList",
    "splitn",
    "sortAlpha",
    // sprig: encoding / hashing
    "b64enc",
    "b64dec",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "adler32sum",
    "toJson",
    "toPrettyJson",
    "toRawJson",
    // sprig: defaults / flow
    "default",
    "empty",
    "coalesce",
    "ternary",
    "fail", // sprig: lists
    "list",
    "first",
    "last",
    "rest",
    "initial",
    "reverse",
    "uniq",
    "has",
    "without",
    "append",
    "push",
    "prepend",
    "concat",
    "compact",
    "until", // sprig: dicts
    "dict",
    "get",
    "hasKey",
    "keys",
    "values",
    "pluck",
    "pick",
    "omit", // sprig: math / conversion
    "add",
    "add1",
    "sub",
    "mul",
    "div",
    "mod",
    "max",
    "min",
    "int",
    "int64",
    "float64",
    "atoi",
    "floor",
    "ceil",
    // sprig: types / regex
    "typeOf",
    "kindOf",
    "typeIs",
    "kindIs",
    "deepEqual",
    "regexMatch",
    "regexFind",
    "regexFindAll",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "regexSplit",
    "regexQuoteMeta",
];

const TABLE: &[Entry] = &[
    ("and", &[Refl, Refl], true, f_unreachable),
    ("or", &[Refl, Refl], true, f_unreachable),
    ("not", &[Refl], false, |a| Ok(Value::Bool(!a[0].is_true()))),
    ("len", &[Refl], false, f_len),
    ("index", &[Refl, Refl], true, f_index),
    ("slice", &[Refl, Refl], true, f_slice),
    ("print", &[Any], true, |a| Ok(Value::str(sprint(a)))),
    ("printf", &[Str, Any], true, |a| {
        Ok(Value::str(sprintf(s0(&a[0]), &a[1..])))
    }),
    ("println", &[Any], true, |a| Ok(Value::str(sprintln(a)))),
    ("html", &[Any], true, |a| {
        Ok(Value::str(html_escape(&eval_args(a))))
    }),
    ("js", &[Any], true, |a| {
        Ok(Value::str(js_escape(&eval_args(a))))
    }),
    ("urlquery", &[Any], true, |a| {
        Ok(Value::str(url_query_escape(&eval_args(a))))
    }),
    ("eq", &[Refl, Refl], true, |a| {
        eq(&a[0], &a[1..]).map(Value::Bool)
    }),
    ("ne", &[Refl, Refl], false, |a| {
        eq(&a[0], &a[1..]).map(|b| Value::Bool(!b))
    }),
    ("lt", &[Refl, Refl], false, |a| {
        lt(&a[0], &a[1]).map(Value::Bool)
    }),
    ("le", &[Refl, Refl], false, |a| {
        Ok(Value::Bool(lt(&a[0], &a[1])? || eq(&a[0], &a[1..])?))
    }),
    ("gt", &[Refl, Refl], false, |a| {
        Ok(Value::Bool(!(lt(&a[0], &a[1])? || eq(&a[0], &a[1..])?)))
    }),
    ("ge", &[Refl, Refl], false, |a| {
        lt(&a[0], &a[1]).map(|b| Value::Bool(!b))
    }),
    ("call", &[Refl, Refl], true, |a| {
        Err(format!(
            "non-function {} of type {}",
            sprint1(&a[0]),
            a[0].type_name()
        ))
    }),
    // --- sprig strings
    ("lower", &[Str], false, |a| {
        Ok(Value::str(s0(&a[0]).to_lowercase()))
    }),
    ("upper", &[Str], false, |a| {
        Ok(Value::str(s0(&a[0]).to_uppercase()))
    }),
    ("title", &[Str], false, |a| Ok(Value::str(title(s0(&a[0]))))),
    ("untitle", &[Str], false, |a| {
        Ok(Value::str(untitle(s0(&a[0]))))
    }),
    ("trim", &[Str], false, |a| Ok(Value::str(s0(&a[0]).trim()))),
    ("trimAll", &[Str, Str], false, |a| {
        Ok(Value::str(
            s0(&a[1]).trim_matches(|c| s0(&a[0]).contains(c)),
        ))
    }),
    ("trimall", &[Str, Str], false, |a| {
        Ok(Value::str(
            s0(&a[1]).trim_matches(|c| s0(&a[0]).contains(c)),
        ))
    }),
    ("trimPrefix", &[Str, Str], false, |a| {
        Ok(Value::str(
            s0(&a[1]).strip_prefix(s0(&a[0])).unwrap_or(s0(&a[1])),
        ))
    }),
    ("trimSuffix", &[Str, Str], false, |a| {
        Ok(Value::str(
            s0(&a[1]).strip_suffix(s0(&a[0])).unwrap_or(s0(&a[1])),
        ))
    }),
    ("replace", &[Str, Str, Str], false, |a| {
        Ok(Value::str(go_replace(s0(&a[2]), s0(&a[0]), s0(&a[1]))))
    }),
    ("contains", &[Str, Str], false, |a| {
        Ok(Value::Bool(s0(&a[1]).contains(s0(&a[0]))))
    }),
    ("hasPrefix", &[Str, Str], false, |a| {
        Ok(Value::Bool(s0(&a[1]).starts_with(s0(&a[0]))))
    }),
    ("hasSuffix", &[Str, Str], false, |a| {
        Ok(Value::Bool(s0(&a[1]).ends_with(s0(&a[0]))))
    }),
    ("repeat", &[Int, Str], false, f_repeat),
    ("substr", &[Int, Int, Str], false, f_substr),
    ("trunc", &[Int, Str], false, f_trunc),
    ("abbrev", &[Int, Str], false, f_abbrev),
    ("initials", &[Str], false, |a| {
        Ok(Value::str(
            s0(&a[0])
                .split_whitespace()
                .filter_map(|w| w.chars().next())
                .collect::<String>(),
        ))
    }),
    ("nospace", &[Str], false, |a| {
        Ok(Value::str(
            s0(&a[0])
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>(),
        ))
    }),
    ("indent", &[Int, Str], false, |a| {
        Ok(Value::str(indent(i0(&a[0]), s0(&a[1]))))
    }),
    ("nindent", &[Int, Str], false, |a| {
        Ok(Value::str(format!("\n{}", indent(i0(&a[0]), s0(&a[1])))))
    }),
    ("quote", &[Any], true, |a| {
        Ok(Value::str(
            a.iter()
                .filter(|v| !v.is_missing())
                .map(|v| go_quote(&strval(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ))
    }),
    ("squote", &[Any], true, |a| {
        Ok(Value::str(
            a.iter()
                .filter(|v| !v.is_missing())
                .map(|v| format!("'{}'", strval(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ))
    }),
    ("cat", &[Any], true, |a| {
        Ok(Value::str(
            a.iter()
                .filter(|v| !v.is_missing())
                .map(sprint1)
                .collect::<Vec<_>>()
                .join(" "),
        ))
    }),
    ("plural", &[Str, Str, Int], false, |a| {
        Ok(if i0(&a[2]) == 1 {
            a[0].clone()
        } else {
            a[1].clone()
        })
    }),
    ("toString", &[Any], false, |a| Ok(Value::str(strval(&a[0])))),
    ("toStrings", &[Any], false, |a| {
        Ok(str_list(strslice(&a[0])))
    }),
    ("join", &[Str, Any], false, |a| {
        Ok(Value::str(strslice(&a[1]).join(s0(&a[0]))))
    }),
    ("split", &[Str, Str], false, |a| {
        Ok(split_map(s0(&a[1]), s0(&a[0]), -1))
    }),
    ("splitn", &[Str, Int, Str], false, |a| {
        Ok(split_map(s0(&a[2]), s0(&a[0]), i0(&a[1])))
    }),
    ("splitList", &[Str, Str], false, |a| {
        Ok(str_list(go_split(s0(&a[1]), s0(&a[0]), -1)))
    }),
    ("sortAlpha", &[Any], false, |a| {
        let mut v = strslice(&a[0]);
        v.sort();
        Ok(str_list(v))
    }),
    // --- encoding / hashing
    ("b64enc", &[Str], false, |a| {
        Ok(Value::str(
            base64::engine::general_purpose::STANDARD.encode(s0(&a[0])),
        ))
    }),
    ("b64dec", &[Str], false, |a| {
        Ok(Value::str(
            match base64::engine::general_purpose::STANDARD.decode(s0(&a[0])) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => e.to_string(),
            },
        ))
    }),
    ("sha1sum", &[Str], false, |a| {
        Ok(Value::str(sha1_hex(s0(&a[0]).as_bytes())))
    }),
    ("sha256sum", &[Str], false, |a| {
        Ok(Value::str(hex::encode(sha2::Sha256::digest(
            s0(&a[0]).as_bytes(),
        ))))
    }),
    ("sha512sum", &[Str], false, |a| {
        Ok(Value::str(hex::encode(sha2::Sha512::digest(
            s0(&a[0]).as_bytes(),
        ))))
    }),
    ("adler32sum", &[Str], false, |a| {
        Ok(Value::str(adler32(s0(&a[0]).as_bytes()).to_string()))
    }),
    ("toJson", &[Any], false, |a| {
        Ok(Value::str(json(&a[0], true, false)))
    }),
    ("toPrettyJson", &[Any], false, |a| {
        Ok(Value::str(json(&a[0], true, true)))
    }),
    ("toRawJson", &[Any], false, |a| {
        Ok(Value::str(json(&a[0], false, false)))
    }),
    // --- defaults / flow
    ("default", &[Any, Any], true, |a| {
        Ok(if a.len() < 2 || empty(&a[1]) {
            a[0].clone()
        } else {
            a[1].clone()
        })
    }),
    ("empty", &[Any], false, |a| Ok(Value::Bool(empty(&a[0])))),
    ("coalesce", &[Any], true, |a| {
        Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Nil))
    }),
    ("ternary", &[Any, Any, Bool], false, |a| {
        Ok(if a[2].is_true() {
            a[0].clone()
        } else {
            a[1].clone()
        })
    }),
    ("fail", &[Str], false, |a| Err(s0(&a[0]).to_string())),
    // --- lists
    ("list", &[Any], true, |a| {
        Ok(Value::list("[]interface {}", a.to_vec()))
    }),
    ("first", &[Any], false, |a| {
        list_op(&a[0], "first", |v| v.first().cloned().unwrap_or(Value::Nil))
    }),
    ("last", &[Any], false, |a| {
        list_op(&a[0], "last", |v| v.last().cloned().unwrap_or(Value::Nil))
    }),
    ("rest", &[Any], false, |a| {
        list_op(&a[0], "rest", |v| {
            any_list(v.get(1..).map(<[Value]>::to_vec))
        })
    }),
    ("initial", &[Any], false, |a| {
        list_op(&a[0], "initial", |v| {
            any_list(
                v.get(..v.len().saturating_sub(1))
                    .filter(|_| !v.is_empty())
                    .map(<[Value]>::to_vec),
            )
        })
    }),
    ("reverse", &[Any], false, |a| {
        list_op(&a[0], "reverse", |v| {
            any_list(Some(v.iter().rev().cloned().collect()))
        })
    }),
    ("uniq", &[Any], false, |a| {
        list_op(&a[0], "uniq", |v| {
            let mut out: Vec<Value> = Vec::new();
            for x in v {
                if !out.iter().any(|y| deep_equal(x, y)) {
                    out.push(x.clone());
                }
            }
            any_list(Some(out))
        })
    }),
    ("compact", &[Any], false, |a| {
        list_op(&a[0], "compact", |v| {
            any_list(Some(v.iter().filter(|x| !empty(x)).cloned().collect()))
        })
    }),
    ("has", &[Any, Any], false, |a| {
        let needle = a[0].clone();
        match &a[1] {
            Value::Nil => Ok(Value::Bool(false)),
            h => list_op(h, "has", |v| {
                Value::Bool(v.iter().any(|x| deep_equal(x, &needle)))
            }),
        }
    }),
    ("without", &[Any, Any], true, |a| {
        let omit = a[1..].to_vec();
        list_op(&a[0], "without", |v| {
            any_list(Some(
                v.iter()
                    .filter(|x| !omit.iter().any(|o| deep_equal(x, o)))
                    .cloned()
                    .collect(),
            ))
        })
    }),
    ("append", &[Any, Any], false, f_append),
    ("push", &[Any, Any], false, f_append),
    ("prepend", &[Any, Any], false, |a| {
        let item = a[1].clone();
        list_op(&a[0], "prepend", |v| {
            any_list(Some(
                std::iter::once(item.clone())
                    .chain(v.iter().cloned())
                    .collect(),
            ))
        })
    }),
    ("concat", &[Any], true, |a| {
        let mut out = Vec::new();
        for l in a {
            match l {
                Value::List(l) => out.extend(l.items.iter().cloned()),
                other => return Err(format!("Cannot concat type {} as list", other.type_name())),
            }
        }
        Ok(Value::list("[]interface {}", out))
    }),
    ("until", &[Int], false, |a| {
        let n = i0(&a[0]);
        // Like `repeat`: a commit message never needs a million-element list, and sprig would
        // allocate whatever it is asked for (`until 56e8` is 134 GB).
        if n.unsigned_abs() > 1 << 20 {
            return Err(format!("until: {n} elements is more than {}", 1 << 20));
        }
        let v: Vec<Value> = if n >= 0 {
            (0..n).map(Value::Int).collect()
        } else {
            (n + 1..=0).rev().map(Value::Int).collect()
        };
        Ok(Value::list("[]int", v))
    }),
    // --- dicts
    ("dict", &[Any], true, |a| {
        let mut entries = Vec::new();
        for pair in a.chunks(2) {
            let k = Value::str(strval(&pair[0]));
            let v = pair.get(1).cloned().unwrap_or_else(|| Value::str(""));
            entries.push((k, v));
        }
        Ok(Value::map("map[string]interface {}", Value::Nil, entries))
    }),
    ("get", &[Dict, Str], false, |a| {
        Ok(dict_get(&a[0], s0(&a[1])).unwrap_or_else(|| Value::str("")))
    }),
    ("hasKey", &[Dict, Str], false, |a| {
        Ok(Value::Bool(dict_get(&a[0], s0(&a[1])).is_some()))
    }),
    ("keys", &[Dict], true, |a| {
        let mut keys = Vec::new();
        for d in a {
            if let Value::Map(m) = d {
                keys.extend(m.entries.iter().map(|(k, _)| strval(k)));
            }
        }
        // Go's map order is random; Ferry returns keys sorted (what `sortAlpha` would give).
        keys.sort();
        Ok(str_list(keys))
    }),
    ("values", &[Dict], false, |a| match &a[0] {
        Value::Map(m) => Ok(Value::list(
            "[]interface {}",
            m.entries.iter().map(|(_, v)| v.clone()).collect(),
        )),
        _ => Ok(Value::list("[]interface {}", Vec::new())),
    }),
    ("pluck", &[Str, Dict], true, |a| {
        Ok(Value::list(
            "[]interface {}",
            a[1..]
                .iter()
                .filter_map(|d| dict_get(d, s0(&a[0])))
                .collect(),
        ))
    }),
    ("pick", &[Dict, Str], true, |a| {
        let names: Vec<&str> = a[1..].iter().map(s0).collect();
        Ok(dict_filter(&a[0], |k| names.contains(&k)))
    }),
    ("omit", &[Dict, Str], true, |a| {
        let names: Vec<&str> = a[1..].iter().map(s0).collect();
        Ok(dict_filter(&a[0], |k| !names.contains(&k)))
    }),
    // --- math / conversion (sprig uses int64 and cast.ToInt64 / ToFloat64)
    ("add", &[Any], true, |a| {
        Ok(Value::Int(
            a.iter().map(to_i64).fold(0i64, i64::wrapping_add),
        ))
    }),
    ("add1", &[Any], false, |a| {
        Ok(Value::Int(to_i64(&a[0]).wrapping_add(1)))
    }),
    ("sub", &[Any, Any], false, |a| {
        Ok(Value::Int(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))))
    }),
    ("mul", &[Any, Any], true, |a| {
        Ok(Value::Int(
            a.iter().map(to_i64).fold(1i64, i64::wrapping_mul),
        ))
    }),
    ("div", &[Any, Any], false, |a| {
        let d = to_i64(&a[1]);
        if d == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(Value::Int(to_i64(&a[0]).wrapping_div(d)))
    }),
    ("mod", &[Any, Any], false, |a| {
        let d = to_i64(&a[1]);
        if d == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(Value::Int(to_i64(&a[0]).wrapping_rem(d)))
    }),
    ("max", &[Any, Any], true, |a| {
        Ok(Value::Int(a.iter().map(to_i64).max().unwrap_or(0)))
    }),
    ("min", &[Any, Any], true, |a| {
        Ok(Value::Int(a.iter().map(to_i64).min().unwrap_or(0)))
    }),
    ("int", &[Any], false, |a| Ok(Value::Int(to_i64(&a[0])))),
    ("int64", &[Any], false, |a| Ok(Value::Int(to_i64(&a[0])))),
    ("float64", &[Any], false, |a| {
        Ok(Value::Float(to_f64(&a[0])))
    }),
    ("atoi", &[Str], false, |a| {
        Ok(Value::Int(s0(&a[0]).parse::<i64>().unwrap_or(0)))
    }),
    ("floor", &[Any], false, |a| {
        Ok(Value::Float(to_f64(&a[0]).floor()))
    }),
    ("ceil", &[Any], false, |a| {
        Ok(Value::Float(to_f64(&a[0]).ceil()))
    }),
    // --- types
    ("typeOf", &[Any], false, |a| {
        Ok(Value::str(a[0].type_name()))
    }),
    ("kindOf", &[Any], false, |a| {
        Ok(Value::str(a[0].kind_name()))
    }),
    ("typeIs", &[Str, Any], false, |a| {
        Ok(Value::Bool(a[1].type_name() == s0(&a[0])))
    }),
    ("kindIs", &[Str, Any], false, |a| {
        Ok(Value::Bool(a[1].kind_name() == s0(&a[0])))
    }),
    ("deepEqual", &[Any, Any], false, |a| {
        Ok(Value::Bool(deep_equal(&a[0], &a[1])))
    }),
    // --- regex (Go RE2 syntax; Rust `regex` accepts the same syntax for these uses)
    ("regexMatch", &[Str, Str], false, |a| {
        Ok(Value::Bool(
            regex::Regex::new(s0(&a[0])).is_ok_and(|r| r.is_match(s0(&a[1]))),
        ))
    }),
    ("regexFind", &[Str, Str], false, |a| {
        let r = re(&a[0])?;
        Ok(Value::str(r.find(s0(&a[1])).map_or("", |m| m.as_str())))
    }),
    ("regexFindAll", &[Str, Str, Int], false, |a| {
        let r = re(&a[0])?;
        let n = i0(&a[2]);
        let it = r.find_iter(s0(&a[1])).map(|m| m.as_str().to_string());
        let v: Vec<String> = if n < 0 {
            it.collect()
        } else {
            it.take(n as usize).collect()
        };
        Ok(str_list(v))
    }),
    ("regexReplaceAll", &[Str, Str, Str], false, |a| {
        let r = re(&a[0])?;
        Ok(Value::str(r.replace_all(s0(&a[1]), s0(&a[2])).into_owned()))
    }),
    ("regexReplaceAllLiteral", &[Str, Str, Str], false, |a| {
        let r = re(&a[0])?;
        Ok(Value::str(
            r.replace_all(s0(&a[1]), regex::NoExpand(s0(&a[2])))
                .into_owned(),
        ))
    }),
    ("regexSplit", &[Str, Str, Int], false, |a| {
        let r = re(&a[0])?;
        let n = i0(&a[2]);
        let v: Vec<String> = if n < 0 {
            r.split(s0(&a[1])).map(str::to_string).collect()
        } else if n == 0 {
            Vec::new()
        } else {
            r.splitn(s0(&a[1]), n as usize)
                .map(str::to_string)
                .collect()
        };
        Ok(str_list(v))
    }),
    ("regexQuoteMeta", &[Str], false, |a| {
        Ok(Value::str(regex::escape(s0(&a[0]))))
    }),
];

/// Looks a function up by name.
pub(crate) fn lookup(name: &str) -> Option<FuncDef> {
    TABLE.iter().find(|e| e.0 == name).map(|e| FuncDef {
        params: e.1,
        variadic: e.2,
        f: e.3,
    })
}

pub(crate) fn is_defined(name: &str) -> bool {
    TABLE.iter().any(|e| e.0 == name)
}

fn f_unreachable(_: &[Value]) -> Result<Value, String> {
    Err("internal error: and/or are evaluated lazily".into())
}

fn s0(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn i0(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        _ => 0,
    }
}

/// sprig `strval`.
fn strval(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        other => sprint1(other),
    }
}

/// sprig `strslice`.
fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l
            .items
            .iter()
            .filter(|x| !x.is_missing())
            .map(strval)
            .collect(),
        Value::Nil | Value::Invalid => Vec::new(),
        other => vec![strval(other)],
    }
}

fn str_list(v: Vec<String>) -> Value {
    Value::list("[]string", v.into_iter().map(Value::str).collect())
}

fn any_list(v: Option<Vec<Value>>) -> Value {
    Value::list("[]interface {}", v.unwrap_or_default())
}

fn list_op(v: &Value, name: &str, f: impl FnOnce(&[Value]) -> Value) -> Result<Value, String> {
    match v {
        Value::List(l) => Ok(f(&l.items)),
        other => Err(format!("Cannot find {name} on type {}", other.type_name())),
    }
}

fn f_append(a: &[Value]) -> Result<Value, String> {
    let item = a[1].clone();
    list_op(&a[0], "append", |v| {
        any_list(Some(
            v.iter()
                .cloned()
                .chain(std::iter::once(item.clone()))
                .collect(),
        ))
    })
}

/// sprig `empty`.
fn empty(v: &Value) -> bool {
    match v {
        Value::Invalid | Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Float(f) => *f == 0.0,
        Value::Str(s) => s.is_empty(),
        Value::List(l) => l.items.is_empty(),
        Value::Map(m) => m.entries.is_empty(),
        Value::Struct(_) => false,
    }
}

fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => parse_go_int(s).unwrap_or(0),
        _ => 0,
    }
}

fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let l = body.to_ascii_lowercase();
    let v = if let Some(h) = l.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(b) = l.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if let Some(o) = l.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if l.len() > 1 && l.starts_with('0') {
        i64::from_str_radix(&l[1..], 8).ok()?
    } else {
        l.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn dict_get(d: &Value, key: &str) -> Option<Value> {
    match d {
        Value::Map(m) => m
            .entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v.clone()),
        _ => None,
    }
}

fn dict_filter(d: &Value, keep: impl Fn(&str) -> bool) -> Value {
    let entries = match d {
        Value::Map(m) => m
            .entries
            .iter()
            .filter(|(k, _)| keep(k.as_str().unwrap_or("")))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    Value::map("map[string]interface {}", Value::Nil, entries)
}

fn re(v: &Value) -> Result<regex::Regex, String> {
    regex::Regex::new(s0(v)).map_err(|e| format!("error parsing regexp: {e}"))
}

fn json(v: &Value, escape_html: bool, pretty: bool) -> String {
    let mut out = String::new();
    if to_json(v, escape_html, &mut out).is_err() {
        // sprig's toJson swallows marshalling errors and returns "".
        return String::new();
    }
    if pretty { pretty_json(&out) } else { out }
}

/// Re-indents compact JSON with two spaces (Go `json.MarshalIndent(v, "", "  ")`).
fn pretty_json(s: &str) -> String {
    let mut out = String::new();
    let mut indent = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                if chars.get(i + 1) == Some(&close) {
                    out.push(c);
                    out.push(close);
                    i += 2;
                    continue;
                }
                indent += 1;
                out.push(c);
                out.push('\n');
                out.push_str(&"  ".repeat(indent));
            }
            '}' | ']' => {
                indent = indent.saturating_sub(1);
                out.push('\n');
                out.push_str(&"  ".repeat(indent));
                out.push(c);
            }
            ',' => {
                out.push(',');
                out.push('\n');
                out.push_str(&"  ".repeat(indent));
            }
            ':' => out.push_str(": "),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

fn f_len(a: &[Value]) -> Result<Value, String> {
    match &a[0] {
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::List(l) => Ok(Value::Int(l.items.len() as i64)),
        Value::Map(m) => Ok(Value::Int(m.entries.len() as i64)),
        Value::Invalid | Value::Nil => Err("len of nil pointer".into()),
        other => Err(format!("len of type {}", other.type_name())),
    }
}

fn index_arg(idx: &Value, len: usize) -> Result<usize, String> {
    let x = match idx {
        Value::Int(i) => *i,
        Value::Invalid | Value::Nil => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ));
        }
    };
    if x < 0 || x as usize >= len {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn f_index(a: &[Value]) -> Result<Value, String> {
    let mut item = a[0].clone();
    if item.is_missing() {
        return Err("index of untyped nil".into());
    }
    for idx in &a[1..] {
        item = match &item {
            Value::List(l) => l.items[index_arg(idx, l.items.len())?].clone(),
            Value::Str(s) => Value::Int(i64::from(s.as_bytes()[index_arg(idx, s.len())?])),
            Value::Map(m) => {
                let string_keys = m.type_name.starts_with("map[string]");
                if string_keys && !matches!(idx, Value::Str(_)) {
                    return Err(format!(
                        "value has type {}; should be string",
                        idx.type_name()
                    ));
                }
                match m
                    .entries
                    .iter()
                    .find(|(k, _)| cmp_keys(k, idx).is_eq() && deep_equal(k, idx))
                {
                    Some((_, v)) => v.clone(),
                    None => m.zero.clone(),
                }
            }
            Value::Nil | Value::Invalid => return Err("index of nil pointer".into()),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn f_slice(a: &[Value]) -> Result<Value, String> {
    let item = &a[0];
    if item.is_missing() {
        return Err("slice of untyped nil".into());
    }
    if a.len() > 4 {
        return Err(format!("too many slice indexes: {}", a.len() - 1));
    }
    let len = match item {
        Value::Str(s) => s.len(),
        Value::List(l) => l.items.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    if matches!(item, Value::Str(_)) && a.len() == 4 {
        return Err("cannot 3-index slice a string".into());
    }
    let mut idx = [0usize, len, len];
    for (i, v) in a[1..].iter().enumerate() {
        let x = match v {
            Value::Int(x) => *x,
            other => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    other.type_name()
                ));
            }
        };
        if x < 0 || x as usize > len {
            return Err(format!("index out of range: {x}"));
        }
        idx[i] = x as usize;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    match item {
        Value::Str(s) => Ok(Value::str(
            String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned(),
        )),
        Value::List(l) => Ok(Value::list(&l.type_name, l.items[idx[0]..idx[1]].to_vec())),
        _ => Err("can't slice".into()),
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
}

fn basic_kind(v: &Value) -> Result<Kind, String> {
    match v {
        Value::Bool(_) => Ok(Kind::Bool),
        Value::Int(_) => Ok(Kind::Int),
        Value::Float(_) => Ok(Kind::Float),
        Value::Str(_) => Ok(Kind::Str),
        _ => Err("invalid type for comparison".into()),
    }
}

/// Go `eq` (1.18+ semantics: missing values compare unequal to everything but each other).
fn eq(a: &Value, rest: &[Value]) -> Result<bool, String> {
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = basic_kind(a).unwrap_or(Kind::Invalid);
    for b in rest {
        let k2 = basic_kind(b).unwrap_or(Kind::Invalid);
        let truth = if k1 != k2 {
            if !a.is_missing() && !b.is_missing() {
                return Err("incompatible types for comparison".into());
            }
            false
        } else {
            match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Str(x), Value::Str(y)) => x == y,
                _ => {
                    if a.is_missing() || b.is_missing() {
                        a.is_missing() && b.is_missing()
                    } else {
                        match (a, b) {
                            (Value::Struct(x), Value::Struct(y)) if x.type_name == y.type_name => {
                                deep_equal(a, b)
                            }
                            (Value::List(_) | Value::Map(_), _) => {
                                return Err(format!(
                                    "non-comparable type {}: {}",
                                    sprint1(a),
                                    a.type_name()
                                ));
                            }
                            _ => {
                                return Err(format!(
                                    "non-comparable types {}: {}, {}: {}",
                                    sprint1(a),
                                    a.type_name(),
                                    b.type_name(),
                                    sprint1(b)
                                ));
                            }
                        }
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let k1 = basic_kind(a)?;
    let k2 = basic_kind(b)?;
    if k1 != k2 {
        return Err("incompatible types for comparison".into());
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Str(x), Value::Str(y)) => x.as_bytes() < y.as_bytes(),
        _ => return Err("invalid type for comparison".into()),
    })
}

/// Go `evalArgs` for html/js/urlquery: a single string is used as-is.
fn eval_args(a: &[Value]) -> String {
    if let [Value::Str(s)] = a {
        s.to_string()
    } else {
        sprint(a)
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn url_query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Go `strings.Title`: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = (c.is_whitespace() || c.is_ascii()) && c != '_' && !c.is_alphanumeric();
    }
    out
}

fn untitle(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_space = true;
    for c in s.chars() {
        if prev_space {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        prev_space = c.is_whitespace();
    }
    out
}

fn go_replace(src: &str, old: &str, new: &str) -> String {
    if old.is_empty() {
        // Go inserts `new` before every rune and at the end.
        let mut out = String::new();
        for c in src.chars() {
            out.push_str(new);
            out.push(c);
        }
        out.push_str(new);
        return out;
    }
    src.replace(old, new)
}

/// Go `strings.SplitN` (n < 0: all).
fn go_split(s: &str, sep: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if sep.is_empty() {
        let mut v: Vec<String> = s.chars().map(String::from).collect();
        if n > 0 && v.len() > n as usize {
            let tail: String = v[n as usize - 1..].concat();
            v.truncate(n as usize - 1);
            v.push(tail);
        }
        return v;
    }
    if n < 0 {
        s.split(sep).map(str::to_string).collect()
    } else {
        s.splitn(n as usize, sep).map(str::to_string).collect()
    }
}

fn split_map(s: &str, sep: &str, n: i64) -> Value {
    let entries = go_split(s, sep, n)
        .into_iter()
        .enumerate()
        .map(|(i, p)| (Value::str(format!("_{i}")), Value::str(p)))
        .collect();
    Value::map("map[string]string", Value::str(""), entries)
}

fn f_repeat(a: &[Value]) -> Result<Value, String> {
    let n = i0(&a[0]);
    if n < 0 {
        return Err("strings: negative Repeat count".into());
    }
    let s = s0(&a[1]);
    // Guard against runaway output; a commit message never needs this much.
    if (s.len() as u128) * (n as u128) > 1 << 24 {
        return Err("strings: Repeat output length overflow".into());
    }
    Ok(Value::str(s.repeat(n as usize)))
}

fn byte_slice(s: &str, from: usize, to: usize) -> String {
    String::from_utf8_lossy(&s.as_bytes()[from..to]).into_owned()
}

fn f_substr(a: &[Value]) -> Result<Value, String> {
    let (start, end, s) = (i0(&a[0]), i0(&a[1]), s0(&a[2]));
    let len = s.len() as i64;
    let (from, to) = if start < 0 {
        (0, end)
    } else if end < 0 || end > len {
        (start, len)
    } else {
        (start, end)
    };
    if from > to || to > len || from < 0 || to < 0 {
        return Err(format!(
            "runtime error: slice bounds out of range [{from}:{to}]"
        ));
    }
    Ok(Value::str(byte_slice(s, from as usize, to as usize)))
}

fn f_trunc(a: &[Value]) -> Result<Value, String> {
    let (c, s) = (i0(&a[0]), s0(&a[1]));
    let len = s.len() as i64;
    Ok(Value::str(if c < 0 && len + c > 0 {
        byte_slice(s, (len + c) as usize, s.len())
    } else if c >= 0 && len > c {
        byte_slice(s, 0, c as usize)
    } else {
        s.to_string()
    }))
}

fn f_abbrev(a: &[Value]) -> Result<Value, String> {
    let (w, s) = (i0(&a[0]), s0(&a[1]));
    if w < 4 || s.len() as i64 <= w {
        return Ok(Value::str(s));
    }
    Ok(Value::str(format!(
        "{}...",
        byte_slice(s, 0, (w - 3) as usize)
    )))
}

fn indent(n: i64, s: &str) -> String {
    let pad = " ".repeat(n.max(0) as usize);
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// SHA-1 (sprig `sha1sum`); small self-contained implementation to avoid a dependency.
fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let (mut a, mut b, mut c, mut d, mut e) = (h[0], h[1], h[2], h[3], h[4]);
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_supported_list() {
        for name in SUPPORTED_FUNCTIONS {
            assert!(is_defined(name), "{name} listed but not implemented");
        }
        for e in TABLE {
            assert!(
                SUPPORTED_FUNCTIONS.contains(&e.0),
                "{} implemented but not listed",
                e.0
            );
        }
    }

    #[test]
    fn hashes() {
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(adler32(b"Wikipedia"), 300286872);
    }

    #[test]
    fn title_like_go() {
        assert_eq!(title("hello world-foo bar_baz"), "Hello World-Foo Bar_baz");
    }
}
