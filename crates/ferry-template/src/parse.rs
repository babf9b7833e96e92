//! Lexer and parser for the Go `text/template` language (delimiters `{{ }}` only).
//!
//! Error texts follow Go's `text/template/parse` (`template: NAME:LINE: msg`) so that
//! conditions read the same as Flux's.

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::value::Value;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Ident(String),
    Keyword(&'static str),
    Bool(bool),
    Field(String),
    Variable(String),
    Dot,
    Str { raw: String, val: String },
    Char { raw: String, val: i64 },
    Number(String),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    OtherChar(char),
    Eof,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    pos: usize,
}

/// Maximum nesting of parentheses and control structures.
const MAX_NESTING: usize = 100;

const KEYWORDS: [&str; 10] = [
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Go `%#U` of a character.
fn sharp_u(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    toks: Vec<Token>,
    /// Trim the leading whitespace of the next text (after a `-}}`).
    trim_next: bool,
}

/// A lexing or parsing failure: message and byte offset (line is derived later).
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub pos: usize,
    pub msg: String,
}

fn serr<T>(pos: usize, msg: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        pos,
        msg: msg.into(),
    })
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn push(&mut self, tok: Tok, pos: usize) {
        self.toks.push(Token { tok, pos });
    }

    fn run(mut self) -> Result<Vec<Token>, SyntaxError> {
        loop {
            let start = self.pos;
            let Some(off) = self.rest().find("{{") else {
                let mut text = self.rest();
                if self.trim_next {
                    text = text.trim_start_matches(is_space);
                }
                if !text.is_empty() {
                    self.push(Tok::Text(text.to_string()), start);
                }
                self.pos = self.src.len();
                self.push(Tok::Eof, self.pos);
                return Ok(self.toks);
            };
            let delim = start + off;
            let after = &self.src[delim + 2..];
            let left_trim = after.starts_with('-') && after[1..].starts_with(is_space);
            let mut text = &self.src[start..delim];
            if self.trim_next {
                text = text.trim_start_matches(is_space);
            }
            if left_trim {
                text = text.trim_end_matches(is_space);
            }
            self.trim_next = false;
            if !text.is_empty() {
                self.push(Tok::Text(text.to_string()), start);
            }
            self.pos = delim + 2 + if left_trim { 2 } else { 0 };
            if self.rest().starts_with("/*") {
                self.comment(delim)?;
                continue;
            }
            self.push(Tok::LeftDelim, delim);
            self.inside_action(delim)?;
        }
    }

    fn comment(&mut self, delim: usize) -> Result<(), SyntaxError> {
        let Some(end) = self.rest().find("*/") else {
            return serr(delim, "unclosed comment");
        };
        self.pos += end + 2;
        let r = self.rest();
        if r.starts_with(is_space) && r[1..].starts_with("-}}") {
            self.pos += 4;
            self.trim_next = true;
        } else if r.starts_with("}}") {
            self.pos += 2;
        } else {
            return serr(delim, "comment ends before closing delimiter");
        }
        Ok(())
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.rest().starts_with("}}"),
        }
    }

    fn inside_action(&mut self, delim: usize) -> Result<(), SyntaxError> {
        let mut paren_depth = 0i32;
        loop {
            let start = self.pos;
            let r = self.rest();
            if r.starts_with("}}") {
                if paren_depth > 0 {
                    return serr(start, "unclosed left paren");
                }
                self.pos += 2;
                self.push(Tok::RightDelim, start);
                return Ok(());
            }
            let Some(c) = self.peek() else {
                return serr(delim, "unclosed action");
            };
            if is_space(c) {
                let n = r.len() - r.trim_start_matches(is_space).len();
                self.pos += n;
                if self.rest().starts_with("-}}") {
                    if paren_depth > 0 {
                        return serr(start, "unclosed left paren");
                    }
                    self.pos += 3;
                    self.trim_next = true;
                    self.push(Tok::RightDelim, start);
                    return Ok(());
                }
                self.push(Tok::Space, start);
                continue;
            }
            match c {
                '=' => {
                    self.pos += 1;
                    self.push(Tok::Assign, start);
                }
                ':' => {
                    if !r.starts_with(":=") {
                        return serr(start, "expected :=");
                    }
                    self.pos += 2;
                    self.push(Tok::Declare, start);
                }
                '|' => {
                    self.pos += 1;
                    self.push(Tok::Pipe, start);
                }
                ',' => {
                    self.pos += 1;
                    self.push(Tok::Comma, start);
                }
                '(' => {
                    self.pos += 1;
                    paren_depth += 1;
                    self.push(Tok::LParen, start);
                }
                ')' => {
                    self.pos += 1;
                    paren_depth -= 1;
                    if paren_depth < 0 {
                        return serr(start, format!("unexpected right paren {}", sharp_u(')')));
                    }
                    self.push(Tok::RParen, start);
                }
                '"' => self.quoted(start)?,
                '`' => self.raw_quoted(start)?,
                '\'' => self.char_const(start)?,
                '$' => self.variable(start)?,
                '.' if r[1..].starts_with(|c: char| c.is_ascii_digit()) => self.number(start)?,
                '.' => self.dot_or_field(start)?,
                '+' | '-' | '0'..='9' => self.number(start)?,
                c if is_alnum(c) => self.word(start)?,
                c if c.is_ascii() && !c.is_ascii_control() => {
                    self.pos += 1;
                    self.push(Tok::OtherChar(c), start);
                }
                c => {
                    return serr(
                        start,
                        format!("unrecognized character in action: {}", sharp_u(c)),
                    );
                }
            }
        }
    }

    /// A raw string: everything up to the next backquote.
    fn raw_quoted(&mut self, start: usize) -> Result<(), SyntaxError> {
        let r = self.rest();
        let Some(end) = r[1..].find('`') else {
            return serr(start, "unterminated raw quoted string");
        };
        let val = r[1..1 + end].to_string();
        let raw = r[..end + 2].to_string();
        self.pos += end + 2;
        self.push(Tok::Str { raw, val }, start);
        Ok(())
    }

    /// `$` or `$name`.
    fn variable(&mut self, start: usize) -> Result<(), SyntaxError> {
        self.pos += 1;
        self.alnum_run();
        let name = self.src[start..self.pos].to_string();
        if !self.at_terminator() {
            return self.bad_char();
        }
        self.push(Tok::Variable(name), start);
        Ok(())
    }

    /// `.` alone, or a field `.Name`.
    fn dot_or_field(&mut self, start: usize) -> Result<(), SyntaxError> {
        self.pos += 1;
        self.alnum_run();
        if self.pos == start + 1 {
            self.push(Tok::Dot, start);
            return Ok(());
        }
        let name = self.src[start..self.pos].to_string();
        if !self.at_terminator() {
            return self.bad_char();
        }
        self.push(Tok::Field(name), start);
        Ok(())
    }

    /// A keyword, `true`/`false`, `nil`, or an identifier.
    fn word(&mut self, start: usize) -> Result<(), SyntaxError> {
        self.alnum_run();
        let word = &self.src[start..self.pos];
        if !self.at_terminator() {
            return self.bad_char();
        }
        let tok = if let Some(k) = KEYWORDS.iter().find(|k| **k == word) {
            Tok::Keyword(k)
        } else if word == "true" || word == "false" {
            Tok::Bool(word == "true")
        } else if word == "nil" {
            Tok::Keyword("nil")
        } else {
            Tok::Ident(word.to_string())
        };
        self.push(tok, start);
        Ok(())
    }

    fn bad_char(&self) -> Result<(), SyntaxError> {
        let c = self.peek().unwrap_or(' ');
        serr(self.pos, format!("bad character {}", sharp_u(c)))
    }

    fn alnum_run(&mut self) {
        let r = self.rest();
        let n = r.len() - r.trim_start_matches(is_alnum).len();
        self.pos += n;
    }

    fn quoted(&mut self, start: usize) -> Result<(), SyntaxError> {
        let r = self.rest();
        let mut it = r.char_indices().skip(1);
        let mut end = None;
        while let Some((i, c)) = it.next() {
            match c {
                '\\' if it.next().is_none() => break,
                '\\' => {}
                '\n' => break,
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            return serr(start, "unterminated quoted string");
        };
        let raw = r[..=end].to_string();
        let val = unquote(&r[1..end]).map_err(|m| SyntaxError { pos: start, msg: m })?;
        self.pos += end + 1;
        self.push(Tok::Str { raw, val }, start);
        Ok(())
    }

    fn char_const(&mut self, start: usize) -> Result<(), SyntaxError> {
        let r = self.rest();
        let mut it = r.char_indices().skip(1);
        let mut end = None;
        while let Some((i, c)) = it.next() {
            match c {
                '\\' if it.next().is_none() => break,
                '\\' => {}
                '\n' => break,
                '\'' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            return serr(start, "unterminated character constant");
        };
        let raw = r[..=end].to_string();
        let body = &r[1..end];
        let s = if body == "\"" {
            "\"".to_string()
        } else {
            unquote(body).map_err(|m| SyntaxError { pos: start, msg: m })?
        };
        let mut chars = s.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return serr(start, format!("malformed character constant: {raw}"));
        };
        self.pos += end + 1;
        self.push(Tok::Char { raw, val: c as i64 }, start);
        Ok(())
    }

    fn number(&mut self, start: usize) -> Result<(), SyntaxError> {
        let r = self.rest();
        let b = r.as_bytes();
        let mut i = 0;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let mut digits: &[u8] = b"0123456789_";
        let mut exp: &[u8] = b"eE";
        if i + 1 < b.len() && b[i] == b'0' {
            match b[i + 1] {
                b'x' | b'X' => {
                    i += 2;
                    digits = b"0123456789abcdefABCDEF_";
                    exp = b"pP";
                }
                b'o' | b'O' => {
                    i += 2;
                    digits = b"01234567_";
                    exp = b"";
                }
                b'b' | b'B' => {
                    i += 2;
                    digits = b"01_";
                    exp = b"";
                }
                _ => {}
            }
        }
        while i < b.len() && digits.contains(&b[i]) {
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && digits.contains(&b[i]) {
                i += 1;
            }
        }
        if !exp.is_empty() && i < b.len() && exp.contains(&b[i]) {
            i += 1;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                i += 1;
            }
            while i < b.len() && b[i].is_ascii_digit() || i < b.len() && b[i] == b'_' {
                i += 1;
            }
        }
        let text = &r[..i];
        self.pos += i;
        if self.peek().is_some_and(is_alnum) || parse_number(text).is_none() {
            let mut j = self.pos;
            while j < self.src.len() && self.src[j..].starts_with(is_alnum) {
                j += self.src[j..].chars().next().map_or(1, char::len_utf8);
            }
            return serr(
                start,
                format!("bad number syntax: {:?}", &self.src[start..j]),
            );
        }
        self.push(Tok::Number(text.to_string()), start);
        Ok(())
    }
}

/// Go `strconv.Unquote` body handling for `"..."` and `'...'` literals.
fn unquote(body: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut it = body.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = it.next() else {
            return Err("invalid syntax".into());
        };
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n).filter_map(|_| it.next()).collect();
                let v = u32::from_str_radix(&hex, 16).map_err(|_| "invalid syntax".to_string())?;
                out.push(char::from_u32(v).ok_or_else(|| "invalid syntax".to_string())?);
            }
            '0'..='7' => {
                let mut s = String::from(e);
                for _ in 0..2 {
                    if let Some(d) = it.next() {
                        s.push(d);
                    }
                }
                let v = u32::from_str_radix(&s, 8).map_err(|_| "invalid syntax".to_string())?;
                out.push(char::from_u32(v).ok_or_else(|| "invalid syntax".to_string())?);
            }
            _ => return Err("invalid syntax".into()),
        }
    }
    Ok(out)
}

/// Parses a Go number literal: an integer (i64) or a float.
fn parse_number(text: &str) -> Option<Value> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean).to_string()),
    };
    if body.is_empty() {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        if h.contains('.') || h.contains('p') {
            None
        } else {
            Some(i64::from_str_radix(h, 16).ok())
        }
    } else if let Some(o) = lower.strip_prefix("0o") {
        Some(i64::from_str_radix(o, 8).ok())
    } else if let Some(bn) = lower.strip_prefix("0b") {
        Some(i64::from_str_radix(bn, 2).ok())
    } else if !lower.contains(['.', 'e']) {
        if lower.len() > 1 && lower.starts_with('0') {
            Some(i64::from_str_radix(&lower[1..], 8).ok())
        } else {
            Some(lower.parse::<i64>().ok())
        }
    } else {
        None
    };
    match int {
        Some(Some(v)) => Some(Value::Int(if neg { -v } else { v })),
        Some(None) => None,
        None => {
            let f: f64 = if lower.starts_with("0x") {
                return None;
            } else {
                lower.parse().ok()?
            };
            let f = if neg { -f } else { f };
            // Go treats an integral float constant as usable where an int is expected;
            // for printing it stays a float64.
            Some(Value::Float(f))
        }
    }
}

// ---------------------------------------------------------------- AST

#[derive(Debug)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug)]
pub(crate) struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug)]
pub(crate) struct Cmd {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub(crate) enum Arg {
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    Variable {
        pos: usize,
        name: String,
        idents: Vec<String>,
    },
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number {
        pos: usize,
        text: String,
        val: Value,
    },
    Str {
        pos: usize,
        raw: String,
        val: String,
    },
    Ident {
        pos: usize,
        name: String,
    },
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    Pipe(Box<Pipe>),
}

impl Arg {
    pub(crate) fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::Number { pos, .. }
            | Arg::Str { pos, .. }
            | Arg::Ident { pos, .. }
            | Arg::Chain { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Variable { name, idents, .. } => {
                write!(f, "{name}")?;
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number { text, .. } => f.write_str(text),
            Arg::Str { raw, .. } => f.write_str(raw),
            Arg::Ident { name, .. } => f.write_str(name),
            Arg::Chain { node, fields, .. } => {
                if matches!(**node, Arg::Pipe(_)) {
                    write!(f, "({node})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if let Arg::Pipe(p) = a {
                write!(f, "({p})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            write!(f, "{}", self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A parsed template set: the main body plus `define`d templates.
#[derive(Debug)]
pub(crate) struct Tree {
    pub root: Rc<Vec<Node>>,
    pub defines: HashMap<String, Rc<Vec<Node>>>,
}

// ---------------------------------------------------------------- parser

struct Parser<'f> {
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    /// Nesting of pipelines and control structures; bounded so a hostile template cannot
    /// overflow the stack (Go bounds expression depth the same way).
    depth: usize,
    defines: HashMap<String, Rc<Vec<Node>>>,
    is_func: &'f dyn Fn(&str) -> bool,
}

enum ListEnd {
    End,
    Else(usize),
    Eof,
}

/// Parses `src`. `is_func` tells which identifiers name functions (checked at parse time,
/// like Go: an unknown function is a parse error).
pub(crate) fn parse(src: &str, is_func: &dyn Fn(&str) -> bool) -> Result<Tree, SyntaxError> {
    let toks = Lexer {
        src,
        pos: 0,
        toks: Vec::new(),
        trim_next: false,
    }
    .run()?;
    let mut p = Parser {
        toks,
        i: 0,
        vars: vec!["$".into()],
        range_depth: 0,
        depth: 0,
        defines: HashMap::new(),
        is_func,
    };
    let mut root = Vec::new();
    loop {
        // Top level: `define` is only allowed here.
        if p.peek_nonspace_after_delim() == Some(Tok::Keyword("define")) {
            p.next(); // {{
            p.next_nonspace(); // define
            p.parse_definition()?;
            continue;
        }
        match p.item_list_into(&mut root)? {
            ListEnd::Eof => break,
            ListEnd::End => return serr(p.cur_pos(), "unexpected {{end}}"),
            ListEnd::Else(pos) => return serr(pos, "unexpected {{else}}"),
        }
    }
    Ok(Tree {
        root: Rc::new(root),
        defines: p.defines,
    })
}

fn tok_desc(t: &Tok) -> String {
    let q = |s: &str| {
        if s.len() > 10 {
            let cut: String = s.chars().take(10).collect();
            format!("{cut:?}...")
        } else {
            format!("{s:?}")
        }
    };
    match t {
        Tok::Eof => "EOF".into(),
        Tok::Keyword(k) => format!("<{k}>"),
        Tok::Text(s) | Tok::Ident(s) | Tok::Field(s) | Tok::Variable(s) | Tok::Number(s) => q(s),
        Tok::Str { raw, .. } | Tok::Char { raw, .. } => q(raw),
        Tok::Bool(b) => q(if *b { "true" } else { "false" }),
        Tok::LeftDelim => q("{{"),
        Tok::RightDelim => q("}}"),
        Tok::Space => q(" "),
        Tok::Dot => q("."),
        Tok::Pipe => q("|"),
        Tok::LParen => q("("),
        Tok::RParen => q(")"),
        Tok::Declare => q(":="),
        Tok::Assign => q("="),
        Tok::Comma => q(","),
        Tok::OtherChar(c) => q(&c.to_string()),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].tok
    }

    fn cur_pos(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].pos
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.i.min(self.toks.len() - 1)].clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn next_nonspace(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.tok != Tok::Space {
                return t;
            }
        }
    }

    fn peek_nonspace(&mut self) -> Tok {
        let save = self.i;
        let t = self.next_nonspace().tok;
        self.i = save;
        t
    }

    /// If the next token is `{{`, the first non-space token after it.
    fn peek_nonspace_after_delim(&mut self) -> Option<Tok> {
        if *self.peek() != Tok::LeftDelim {
            return None;
        }
        let save = self.i;
        self.next();
        let t = self.next_nonspace().tok;
        self.i = save;
        Some(t)
    }

    fn unexpected<T>(&self, t: &Token, context: &str) -> Result<T, SyntaxError> {
        serr(
            t.pos,
            format!("unexpected {} in {}", tok_desc(&t.tok), context),
        )
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<(), SyntaxError> {
        let t = self.next_nonspace();
        if t.tok != Tok::RightDelim {
            return self.unexpected(&t, context);
        }
        Ok(())
    }

    fn parse_definition(&mut self) -> Result<(), SyntaxError> {
        let t = self.next_nonspace();
        let name = match t.tok {
            Tok::Str { val, .. } => val,
            _ => return self.unexpected(&t, "define clause"),
        };
        self.expect_right_delim("define clause")?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let mut list = Vec::new();
        let end = self.item_list_into(&mut list)?;
        self.vars = saved_vars;
        match end {
            ListEnd::End => {}
            ListEnd::Else(pos) => return serr(pos, "unexpected {{else}}"),
            ListEnd::Eof => return serr(self.cur_pos(), "unexpected EOF"),
        }
        self.defines.insert(name, Rc::new(list));
        Ok(())
    }

    /// Parses text and actions until `{{end}}`, `{{else}}` or EOF.
    fn item_list_into(&mut self, list: &mut Vec<Node>) -> Result<ListEnd, SyntaxError> {
        loop {
            let t = self.next();
            match t.tok {
                Tok::Eof => return Ok(ListEnd::Eof),
                Tok::Text(s) => list.push(Node::Text(s)),
                Tok::LeftDelim => {
                    let k = self.next_nonspace();
                    match k.tok {
                        Tok::Keyword("end") => {
                            self.expect_right_delim("end")?;
                            return Ok(ListEnd::End);
                        }
                        Tok::Keyword("else") => return Ok(ListEnd::Else(k.pos)),
                        _ => {
                            self.i -= 1;
                            // Go rewinds spaces too; re-skip them.
                            while self.i > 0 && self.toks[self.i - 1].tok == Tok::Space {
                                self.i -= 1;
                            }
                            list.push(self.action()?);
                        }
                    }
                }
                _ => return self.unexpected(&t, "input"),
            }
        }
    }

    fn action(&mut self) -> Result<Node, SyntaxError> {
        let t = self.next_nonspace();
        match t.tok {
            Tok::Keyword("block") => self.block(t.pos),
            Tok::Keyword("break") | Tok::Keyword("continue") => {
                let is_break = t.tok == Tok::Keyword("break");
                let word = if is_break { "break" } else { "continue" };
                if self.range_depth == 0 {
                    return serr(t.pos, format!("{{{{{word}}}}} outside {{{{range}}}}"));
                }
                let n = self.next_nonspace();
                if n.tok != Tok::RightDelim {
                    return self.unexpected(&n, &format!("{{{{{word}}}}}"));
                }
                Ok(if is_break {
                    Node::Break
                } else {
                    Node::Continue
                })
            }
            Tok::Keyword("define") => self.unexpected(&t, "command"),
            Tok::Keyword("if") => Ok(Node::If(self.control("if", t.pos)?)),
            Tok::Keyword("range") => Ok(Node::Range(self.control("range", t.pos)?)),
            Tok::Keyword("with") => Ok(Node::With(self.control("with", t.pos)?)),
            Tok::Keyword("template") => self.template_call(t.pos),
            _ => {
                self.i -= 1;
                let pos = t.pos;
                let pipe = self.pipeline("command", pos, true)?;
                Ok(Node::Action(pipe))
            }
        }
    }

    fn template_call(&mut self, pos: usize) -> Result<Node, SyntaxError> {
        let t = self.next_nonspace();
        let name = match t.tok {
            Tok::Str { val, .. } => val,
            _ => return self.unexpected(&t, "template clause"),
        };
        let pipe = if self.peek_nonspace() != Tok::RightDelim {
            Some(self.pipeline("template clause", pos, true)?)
        } else {
            self.next_nonspace();
            None
        };
        Ok(Node::Template { pos, name, pipe })
    }

    fn block(&mut self, pos: usize) -> Result<Node, SyntaxError> {
        let t = self.next_nonspace();
        let name = match t.tok {
            Tok::Str { val, .. } => val,
            _ => return self.unexpected(&t, "block clause"),
        };
        let pipe = self.pipeline("block clause", pos, true)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let mut list = Vec::new();
        let end = self.item_list_into(&mut list)?;
        self.vars = saved_vars;
        match end {
            ListEnd::End => {}
            ListEnd::Else(p) => return serr(p, "unexpected {{else}}"),
            ListEnd::Eof => return serr(self.cur_pos(), "unexpected EOF"),
        }
        self.defines.insert(name.clone(), Rc::new(list));
        Ok(Node::Template {
            pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn enter(&mut self, pos: usize) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return serr(pos, "max expression depth exceeded");
        }
        Ok(())
    }

    fn control(&mut self, context: &'static str, pos: usize) -> Result<Branch, SyntaxError> {
        self.enter(pos)?;
        let r = self.control_inner(context, pos);
        self.depth -= 1;
        r
    }

    fn control_inner(&mut self, context: &'static str, pos: usize) -> Result<Branch, SyntaxError> {
        let vars_len = self.vars.len();
        let pipe = self.pipeline(context, pos, true)?;
        if pipe.decl.is_empty() && pipe.cmds.is_empty() {
            return serr(pos, format!("missing value for {context}"));
        }
        if context == "range" {
            self.range_depth += 1;
        }
        let mut list = Vec::new();
        let end = self.item_list_into(&mut list)?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            ListEnd::End => None,
            ListEnd::Eof => {
                self.vars.truncate(vars_len);
                return serr(self.cur_pos(), "unexpected EOF");
            }
            ListEnd::Else(else_pos) => {
                // `{{else if ...}}` / `{{else with ...}}` chain into a nested control with a
                // single shared `{{end}}`.
                let nested = self.peek_nonspace();
                if (context == "if" && nested == Tok::Keyword("if"))
                    || (context == "with" && nested == Tok::Keyword("with"))
                {
                    let kw = self.next_nonspace();
                    let inner = self.control(context, kw.pos)?;
                    Some(vec![if context == "if" {
                        Node::If(inner)
                    } else {
                        Node::With(inner)
                    }])
                } else {
                    let t = self.next_nonspace();
                    if t.tok != Tok::RightDelim {
                        return self.unexpected(&t, "else");
                    }
                    let _ = else_pos;
                    let mut el = Vec::new();
                    match self.item_list_into(&mut el)? {
                        ListEnd::End => {}
                        ListEnd::Else(p) => return serr(p, "expected end; found {{else}}"),
                        ListEnd::Eof => return serr(self.cur_pos(), "unexpected EOF"),
                    }
                    Some(el)
                }
            }
        };
        self.vars.truncate(vars_len);
        Ok(Branch {
            pos,
            pipe,
            list,
            else_list,
        })
    }

    /// Parses a pipeline up to `}}` (or `)` when `!top`), including declarations.
    fn pipeline(&mut self, context: &str, pos: usize, top: bool) -> Result<Pipe, SyntaxError> {
        self.enter(pos)?;
        let r = self.pipeline_inner(context, pos, top);
        self.depth -= 1;
        r
    }

    fn pipeline_inner(
        &mut self,
        context: &str,
        pos: usize,
        top: bool,
    ) -> Result<Pipe, SyntaxError> {
        let (decl, is_assign) = self.declarations(context)?;
        if !is_assign {
            for d in &decl {
                self.vars.push(d.clone());
            }
        } else {
            for d in &decl {
                if !self.vars.contains(d) {
                    return serr(pos, format!("undefined variable {d:?}"));
                }
            }
        }
        let cmds = self.commands(context, top)?;
        if cmds.is_empty() && (!decl.is_empty() || !top || context != "command") {
            return serr(pos, format!("missing value for {context}"));
        }
        if cmds.is_empty() {
            return serr(pos, "missing value for command");
        }
        // Go: later pipeline stages must be executable.
        for (i, c) in cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args[0],
                Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number { .. } | Arg::Str { .. }
            ) {
                return serr(
                    c.pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                );
            }
        }
        let pos = if let Some(c) = cmds.first() {
            if decl.is_empty() { c.pos } else { pos }
        } else {
            pos
        };
        Ok(Pipe {
            pos,
            is_assign,
            decl,
            cmds,
        })
    }

    /// The declarations that start a pipeline: `$x :=`, `$x =`, and in range `$i, $e :=`;
    /// none (and the position restored) otherwise.
    fn declarations(&mut self, context: &str) -> Result<(Vec<String>, bool), SyntaxError> {
        let mut decl = Vec::new();
        let mut is_assign = false;
        let save = self.i;
        let t = self.next_nonspace();
        if let Tok::Variable(name) = &t.tok {
            let n = self.next_nonspace();
            match n.tok {
                Tok::Declare | Tok::Assign => {
                    is_assign = n.tok == Tok::Assign;
                    if is_assign && !self.vars.contains(name) {
                        return serr(t.pos, format!("undefined variable {name:?}"));
                    }
                    decl.push(name.clone());
                }
                Tok::Comma if context == "range" => {
                    let v2 = self.next_nonspace();
                    let Tok::Variable(name2) = &v2.tok else {
                        return serr(
                            v2.pos,
                            format!(
                                "range can only initialize variables; found {}",
                                tok_desc(&v2.tok)
                            ),
                        );
                    };
                    let n2 = self.next_nonspace();
                    match n2.tok {
                        Tok::Declare | Tok::Assign => is_assign = n2.tok == Tok::Assign,
                        Tok::Comma => return serr(n2.pos, "too many declarations in range"),
                        _ => return self.unexpected(&n2, "range"),
                    }
                    decl.push(name.clone());
                    decl.push(name2.clone());
                }
                _ => self.i = save,
            }
        } else {
            self.i = save;
        }
        Ok((decl, is_assign))
    }

    /// The commands of a pipeline, separated by `|`, up to its end token.
    fn commands(&mut self, context: &str, top: bool) -> Result<Vec<Cmd>, SyntaxError> {
        let mut cmds = Vec::new();
        loop {
            let t = self.next_nonspace();
            match t.tok {
                Tok::RightDelim if top => break,
                Tok::RParen if !top => break,
                Tok::RightDelim | Tok::RParen => return self.unexpected(&t, context),
                Tok::Pipe => return serr(t.pos, format!("missing command before | in {context}")),
                _ => {
                    self.i -= 1;
                    let cmd = self.command(top)?;
                    cmds.push(cmd);
                }
            }
            // After a command: either `|` (continue) or the end token.
            let n = self.peek_nonspace();
            if n == Tok::Pipe {
                self.next_nonspace();
                let after = self.peek_nonspace();
                if after == Tok::RightDelim || after == Tok::RParen {
                    let t = self.next_nonspace();
                    return self.unexpected(&t, context);
                }
            }
        }
        Ok(cmds)
    }

    fn command(&mut self, top: bool) -> Result<Cmd, SyntaxError> {
        let mut args = Vec::new();
        let mut pos = None;
        loop {
            self.skip_spaces();
            let t = self.peek().clone();
            match t {
                Tok::RightDelim | Tok::RParen | Tok::Pipe => break,
                _ => {}
            }
            let op = self.operand()?;
            pos.get_or_insert(op.pos());
            args.push(op);
            // Operand must be followed by space, `|`, or the end token.
            let n = self.toks[self.i].clone();
            match n.tok {
                Tok::Space | Tok::Pipe | Tok::RightDelim | Tok::RParen => {}
                Tok::Eof => return serr(n.pos, "unexpected EOF"),
                _ => return self.unexpected(&n, "operand"),
            }
        }
        let _ = top;
        if args.is_empty() {
            return serr(self.cur_pos(), "empty command");
        }
        Ok(Cmd {
            pos: pos.unwrap_or(0),
            args,
        })
    }

    fn skip_spaces(&mut self) {
        while *self.peek() == Tok::Space {
            self.next();
        }
    }

    fn operand(&mut self) -> Result<Arg, SyntaxError> {
        let term = self.term()?;
        let mut fields = Vec::new();
        while let Tok::Field(f) = self.peek().clone() {
            self.next();
            fields.push(f[1..].to_string());
        }
        if fields.is_empty() {
            return Ok(term);
        }
        Ok(match term {
            Arg::Field { pos, mut idents } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable {
                pos,
                name,
                mut idents,
            } => {
                idents.extend(fields);
                Arg::Variable { pos, name, idents }
            }
            Arg::Bool(..) | Arg::Str { .. } | Arg::Number { .. } | Arg::Nil(_) | Arg::Dot(_) => {
                return serr(
                    term.pos(),
                    format!("unexpected . after term {:?}", term.to_string()),
                );
            }
            other => Arg::Chain {
                pos: other.pos(),
                node: Box::new(other),
                fields,
            },
        })
    }

    fn term(&mut self) -> Result<Arg, SyntaxError> {
        let t = self.next_nonspace();
        Ok(match t.tok {
            Tok::Ident(name) => {
                if !(self.is_func)(&name) {
                    return serr(t.pos, format!("function {name:?} not defined"));
                }
                Arg::Ident { pos: t.pos, name }
            }
            Tok::Dot => Arg::Dot(t.pos),
            Tok::Keyword("nil") => Arg::Nil(t.pos),
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return serr(t.pos, format!("undefined variable {name:?}"));
                }
                Arg::Variable {
                    pos: t.pos,
                    name,
                    idents: Vec::new(),
                }
            }
            Tok::Field(f) => Arg::Field {
                pos: t.pos,
                idents: vec![f[1..].to_string()],
            },
            Tok::Bool(b) => Arg::Bool(t.pos, b),
            Tok::Char { raw, val } => Arg::Number {
                pos: t.pos,
                text: raw,
                val: Value::Int(val),
            },
            Tok::Number(text) => {
                let val = parse_number(&text).ok_or_else(|| SyntaxError {
                    pos: t.pos,
                    msg: format!("illegal number syntax: {text:?}"),
                })?;
                Arg::Number {
                    pos: t.pos,
                    text,
                    val,
                }
            }
            Tok::LParen => {
                let pipe = self.pipeline("parenthesized pipeline", t.pos, false)?;
                Arg::Pipe(Box::new(pipe))
            }
            Tok::Str { raw, val } => Arg::Str {
                pos: t.pos,
                raw,
                val,
            },
            Tok::Eof => return serr(t.pos, "unexpected EOF"),
            _ => return self.unexpected(&t, "operand"),
        })
    }
}
