//! Executes a parsed template tree over a [`Value`], following Go `text/template`'s
//! evaluation rules (missing keys, method-before-field lookup, pipelines passing the
//! previous result as the last argument, lazy `and`/`or`, scoped variables).

use std::fmt::Display;

use crate::funcs::{self, FuncDef, Ty};
use crate::parse::{Arg, Branch, Cmd, Node, Pipe, Tree};
use crate::value::{Value, fmt_v};

/// Go's limit is 100000; commit messages never need more than a handful and Rust stack
/// frames are larger, so a smaller bound keeps a recursive `template` from overflowing.
const MAX_EXEC_DEPTH: usize = 64;

pub(crate) struct Exec<'t> {
    tree: &'t Tree,
    src: &'t str,
    /// Parse name (the top-level template name): used in `NAME:LINE:COL`.
    parse_name: &'t str,
    /// Name of the template currently executing (differs inside `template "x"`).
    cur_name: String,
    vars: Vec<(String, Value)>,
    depth: usize,
    pub out: String,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, String>;

impl<'t> Exec<'t> {
    pub(crate) fn new(tree: &'t Tree, src: &'t str, name: &'t str, data: Value) -> Self {
        Exec {
            tree,
            src,
            parse_name: name,
            cur_name: name.to_string(),
            vars: vec![("$".into(), data)],
            depth: 0,
            out: String::new(),
        }
    }

    pub(crate) fn run(&mut self, data: &Value) -> R<()> {
        let root = self.tree.root.clone();
        self.walk(data, &root).map(|_| ())
    }

    /// Go `state.errorf` with a node: `template: NAME:LINE:COL: executing "T" at <ctx>: msg`.
    fn err_at(&self, pos: usize, ctx: &dyn Display, msg: impl Display) -> String {
        let text = &self.src[..pos.min(self.src.len())];
        let line = 1 + text.matches('\n').count();
        let col = match text.rfind('\n') {
            Some(i) => pos - (i + 1),
            None => pos,
        };
        format!(
            "template: {}:{}:{}: executing {:?} at <{}>: {}",
            self.parse_name, line, col, self.cur_name, ctx, msg
        )
    }

    fn walk(&mut self, dot: &Value, list: &[Node]) -> R<Flow> {
        for node in list {
            match self.walk_node(dot, node)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_node(&mut self, dot: &Value, node: &Node) -> R<Flow> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    match v {
                        Value::Invalid => self.out.push_str("<no value>"),
                        other => fmt_v(&other, false, &mut self.out),
                    }
                }
            }
            Node::If(b) | Node::With(b) => {
                let is_with = matches!(node, Node::With(_));
                let mark = self.vars.len();
                let val = self.eval_pipeline(dot, &b.pipe)?;
                let flow = if val.is_true() {
                    if is_with {
                        self.walk(&val, &b.list)?
                    } else {
                        self.walk(dot, &b.list)?
                    }
                } else if let Some(el) = &b.else_list {
                    self.walk(dot, el)?
                } else {
                    Flow::Normal
                };
                self.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Range(b) => {
                let mark = self.vars.len();
                let r = self.walk_range(dot, b);
                self.vars.truncate(mark);
                return r;
            }
            Node::Template { pos, name, pipe } => {
                let Some(body) = self.tree.defines.get(name).cloned() else {
                    return Err(self.err_at(
                        *pos,
                        &format!("{{{{template {name:?}}}}}"),
                        format!("template {name:?} not defined"),
                    ));
                };
                if self.depth >= MAX_EXEC_DEPTH {
                    return Err(self.err_at(
                        *pos,
                        &format!("{{{{template {name:?}}}}}"),
                        format!("exceeded maximum template depth ({MAX_EXEC_DEPTH})"),
                    ));
                }
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Invalid,
                };
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                let saved_name = std::mem::replace(&mut self.cur_name, name.clone());
                self.depth += 1;
                let r = self.walk(&new_dot, &body);
                self.depth -= 1;
                self.cur_name = saved_name;
                self.vars = saved_vars;
                r?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_range(&mut self, dot: &Value, b: &Branch) -> R<Flow> {
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let mark = self.vars.len();
        let items: Vec<(Value, Value)> = match &val {
            Value::List(l) => l
                .items
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                .collect(),
            Value::Map(m) => m.entries.clone(),
            Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            Value::Invalid | Value::Nil => Vec::new(),
            other => {
                let mut s = String::new();
                fmt_v(other, false, &mut s);
                return Err(self.err_at(
                    b.pos,
                    &format!("{{{{range {}}}}}", b.pipe),
                    format!("range can't iterate over {s}"),
                ));
            }
        };
        if items.is_empty() {
            if let Some(el) = &b.else_list {
                return self.walk(dot, el);
            }
            return Ok(Flow::Normal);
        }
        for (index, elem) in items {
            let decl = &b.pipe.decl;
            if !decl.is_empty() {
                if b.pipe.is_assign {
                    if decl.len() > 1 {
                        self.set_var(b.pos, &decl[0], index.clone())?;
                        self.set_var(b.pos, &decl[1], elem.clone())?;
                    } else {
                        self.set_var(b.pos, &decl[0], elem.clone())?;
                    }
                } else {
                    // The pipeline pushed the declared variables; set them per iteration.
                    let n = self.vars.len();
                    if decl.len() > 1 {
                        self.vars[n - 1].1 = elem.clone();
                        self.vars[n - 2].1 = index.clone();
                    } else {
                        self.vars[n - 1].1 = elem.clone();
                    }
                }
            }
            let flow = self.walk(&elem, &b.list)?;
            self.vars.truncate(mark);
            if let Flow::Break = flow {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    fn set_var(&mut self, pos: usize, name: &str, v: Value) -> R<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => Err(self.err_at(pos, &name, format!("undefined variable: {name}"))),
        }
    }

    fn var_value(&self, pos: usize, name: &str) -> R<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.err_at(pos, &name, format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            // Go re-wraps empty-interface results: a nil interface becomes "no value".
            value = Some(if let Value::Nil = v {
                Value::Invalid
            } else {
                v
            });
        }
        let value = value.unwrap_or(Value::Invalid);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(pipe.pos, name, value.clone())?;
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd: &Cmd, final_: &Option<Value>) -> R<()> {
        if cmd.args.len() > 1 || final_.is_some() {
            let first = &cmd.args[0];
            return Err(self.err_at(
                first.pos(),
                first,
                format!("can't give argument to non-function {first}"),
            ));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Cmd, final_: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { pos, idents } => {
                self.eval_field_chain(dot, dot.clone(), *pos, first, idents, cmd, final_)
            }
            Arg::Chain { pos, node, fields } => {
                if matches!(**node, Arg::Nil(_)) {
                    return Err(self.err_at(
                        *pos,
                        first,
                        format!("indirection through explicit nil in {first}"),
                    ));
                }
                let recv = self.eval_arg_any(dot, node)?;
                self.eval_field_chain(dot, recv, *pos, first, fields, cmd, final_)
            }
            Arg::Ident { pos, name } => self.eval_function(dot, *pos, name, cmd, final_),
            Arg::Pipe(p) => {
                self.not_a_function(cmd, &final_)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Variable { pos, name, idents } => {
                let v = self.var_value(*pos, name)?;
                if idents.is_empty() {
                    self.not_a_function(cmd, &final_)?;
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, *pos, first, idents, cmd, final_)
            }
            _ => {
                self.not_a_function(cmd, &final_)?;
                match first {
                    Arg::Bool(_, b) => Ok(Value::Bool(*b)),
                    Arg::Dot(_) => Ok(dot.clone()),
                    Arg::Nil(pos) => Err(self.err_at(*pos, first, "nil is not a command")),
                    Arg::Number { val, .. } => Ok(val.clone()),
                    Arg::Str { val, .. } => Ok(Value::str(val.as_str())),
                    _ => Ok(Value::Invalid),
                }
            }
        }
    }

    /// Evaluates an argument with no type constraint (Go `evalArg(dot, nil, n)`).
    fn eval_arg_any(&mut self, dot: &Value, arg: &Arg) -> R<Value> {
        match arg {
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => Ok(Value::Nil),
            Arg::Field { pos, idents } => {
                self.eval_field_chain_noargs(dot, dot.clone(), *pos, arg, idents)
            }
            Arg::Variable { pos, name, idents } => {
                let v = self.var_value(*pos, name)?;
                if idents.is_empty() {
                    Ok(v)
                } else {
                    self.eval_field_chain_noargs(dot, v, *pos, arg, idents)
                }
            }
            Arg::Pipe(p) => self.eval_pipeline(dot, p),
            Arg::Ident { pos, name } => {
                let cmd = Cmd {
                    pos: *pos,
                    args: vec![Arg::Ident {
                        pos: *pos,
                        name: name.clone(),
                    }],
                };
                self.eval_function(dot, *pos, name, &cmd, None)
            }
            Arg::Chain { pos, node, fields } => {
                if matches!(**node, Arg::Nil(_)) {
                    return Err(self.err_at(
                        *pos,
                        arg,
                        format!("indirection through explicit nil in {arg}"),
                    ));
                }
                let recv = self.eval_arg_any(dot, node)?;
                self.eval_field_chain_noargs(dot, recv, *pos, arg, fields)
            }
            Arg::Bool(_, b) => Ok(Value::Bool(*b)),
            Arg::Number { val, .. } => Ok(val.clone()),
            Arg::Str { val, .. } => Ok(Value::str(val.as_str())),
        }
    }

    fn eval_field_chain_noargs(
        &mut self,
        dot: &Value,
        recv: Value,
        pos: usize,
        node: &Arg,
        idents: &[String],
    ) -> R<Value> {
        let mut recv = recv;
        for ident in idents {
            recv = self.eval_field(dot, ident, pos, node, None, None, recv)?;
        }
        Ok(recv)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field_chain(
        &mut self,
        dot: &Value,
        recv: Value,
        pos: usize,
        node: &Arg,
        idents: &[String],
        cmd: &Cmd,
        final_: Option<Value>,
    ) -> R<Value> {
        let mut recv = recv;
        let n = idents.len();
        for ident in &idents[..n - 1] {
            recv = self.eval_field(dot, ident, pos, node, None, None, recv)?;
        }
        self.eval_field(dot, &idents[n - 1], pos, node, Some(cmd), final_, recv)
    }

    /// Go `evalField`: methods first, then struct fields, then string-keyed map entries.
    #[allow(clippy::too_many_arguments)]
    fn eval_field(
        &mut self,
        _dot: &Value,
        name: &str,
        pos: usize,
        node: &Arg,
        cmd: Option<&Cmd>,
        final_: Option<Value>,
        recv: Value,
    ) -> R<Value> {
        let extra_args = cmd.map_or(0, |c| c.args.len().saturating_sub(1));
        let has_args = extra_args > 0 || final_.is_some();
        match &recv {
            Value::Invalid => Ok(Value::Invalid),
            Value::Nil => Err(self.err_at(
                pos,
                node,
                format!("nil pointer evaluating interface {{}}.{name}"),
            )),
            Value::Struct(s) => {
                if let Some(v) = Value::struct_method(s, name) {
                    let got = extra_args + usize::from(final_.is_some());
                    if got != 0 {
                        let ctx: &dyn Display = match cmd {
                            Some(c) => c,
                            None => node,
                        };
                        return Err(self.err_at(
                            pos,
                            ctx,
                            format!("wrong number of args for {name}: want 0 got {got}"),
                        ));
                    }
                    return Ok(v);
                }
                if let Some(v) = Value::struct_field(s, name) {
                    if has_args {
                        return Err(self.err_at(
                            pos,
                            node,
                            format!("{name} has arguments but cannot be invoked as function"),
                        ));
                    }
                    return Ok(v);
                }
                Err(self.err_at(
                    pos,
                    node,
                    format!("can't evaluate field {name} in type {}", s.type_name),
                ))
            }
            Value::Map(m) if m.type_name.starts_with("map[string]") => {
                if has_args {
                    return Err(self.err_at(
                        pos,
                        node,
                        format!("{name} is not a method but has arguments"),
                    ));
                }
                Ok(m.entries
                    .iter()
                    .find(|(k, _)| k.as_str() == Some(name))
                    .map_or(Value::Invalid, |(_, v)| v.clone()))
            }
            other => Err(self.err_at(
                pos,
                node,
                format!("can't evaluate field {name} in type {}", other.type_name()),
            )),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &str,
        cmd: &Cmd,
        final_: Option<Value>,
    ) -> R<Value> {
        let Some(def) = funcs::lookup(name) else {
            return Err(self.err_at(pos, &name, format!("{name:?} is not a defined function")));
        };
        let args = &cmd.args[1..];
        let num_in = args.len() + usize::from(final_.is_some());
        let fixed = def.params.len() - usize::from(def.variadic);
        if def.variadic {
            if num_in < fixed {
                return Err(self.err_at(
                    cmd.pos,
                    cmd,
                    format!(
                        "wrong number of args for {name}: want at least {fixed} got {}",
                        args.len()
                    ),
                ));
            }
        } else if num_in != def.params.len() {
            return Err(self.err_at(
                cmd.pos,
                cmd,
                format!(
                    "wrong number of args for {name}: want {} got {num_in}",
                    def.params.len()
                ),
            ));
        }
        let param_ty = |i: usize| -> Ty {
            if i < fixed {
                def.params[i]
            } else {
                def.params[def.params.len() - 1]
            }
        };
        // `and` / `or` short-circuit (Go 1.18+).
        if name == "and" || name == "or" {
            let want = name == "or";
            let mut v = Value::Invalid;
            for a in args {
                v = self.eval_arg(dot, Ty::Refl, a)?;
                if v.is_true() == want {
                    return Ok(v);
                }
            }
            if let Some(f) = final_ {
                v = f;
            }
            return Ok(v);
        }
        let mut argv = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            argv.push(self.eval_arg(dot, param_ty(i), a)?);
        }
        if let Some(f) = final_ {
            let ty = param_ty(args.len());
            argv.push(self.validate(cmd.pos, cmd, f, ty)?);
        }
        call(&def, &argv)
            .map_err(|e| self.err_at(cmd.pos, cmd, format!("error calling {name}: {e}")))
    }

    /// Go `validateType` for our parameter kinds.
    fn validate(&self, pos: usize, ctx: &dyn Display, v: Value, ty: Ty) -> R<Value> {
        match (ty, v) {
            (Ty::Refl, v) => Ok(v),
            (Ty::Any, Value::Invalid) => Ok(Value::Nil),
            (Ty::Any, v) => Ok(v),
            (ty, Value::Invalid) => Err(self.err_at(
                pos,
                ctx,
                format!("invalid value; expected {}", ty.go_name()),
            )),
            (Ty::Str, v @ Value::Str(_)) => Ok(v),
            (Ty::Int, v @ Value::Int(_)) => Ok(v),
            (Ty::Bool, v @ Value::Bool(_)) => Ok(v),
            (Ty::Dict, v @ Value::Map(_)) if v.type_name() == "map[string]interface {}" => Ok(v),
            (ty, v) => {
                let got = if let Value::Nil = v {
                    "interface {}".to_string()
                } else {
                    v.type_name()
                };
                Err(self.err_at(
                    pos,
                    ctx,
                    format!("wrong type for value; expected {}; got {got}", ty.go_name()),
                ))
            }
        }
    }

    /// Go `evalArg` for a typed parameter.
    fn eval_arg(&mut self, dot: &Value, ty: Ty, arg: &Arg) -> R<Value> {
        let pos = arg.pos();
        match arg {
            Arg::Dot(_)
            | Arg::Field { .. }
            | Arg::Variable { .. }
            | Arg::Pipe(_)
            | Arg::Ident { .. }
            | Arg::Chain { .. } => {
                let v = self.eval_arg_any(dot, arg)?;
                let v = if let (Arg::Pipe(_) | Arg::Ident { .. }, Value::Nil) = (arg, &v) {
                    Value::Invalid
                } else {
                    v
                };
                self.validate(pos, arg, v, ty)
            }
            Arg::Nil(_) => match ty {
                Ty::Any => Ok(Value::Nil),
                Ty::Refl => Ok(Value::Invalid),
                _ => Err(self.err_at(pos, arg, format!("cannot assign nil to {}", ty.go_name()))),
            },
            Arg::Bool(_, b) => match ty {
                Ty::Bool | Ty::Any | Ty::Refl => Ok(Value::Bool(*b)),
                _ => Err(self.err_at(
                    pos,
                    arg,
                    format!("expected {}; found {arg}", ty.literal_name()),
                )),
            },
            Arg::Str { val, .. } => match ty {
                Ty::Str | Ty::Any | Ty::Refl => Ok(Value::str(val.as_str())),
                _ => Err(self.err_at(
                    pos,
                    arg,
                    format!("expected {}; found {arg}", ty.literal_name()),
                )),
            },
            Arg::Number { val, .. } => match (ty, val) {
                (Ty::Any | Ty::Refl, v) => Ok(v.clone()),
                (Ty::Int, Value::Int(i)) => Ok(Value::Int(*i)),
                (Ty::Int, Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => {
                    Ok(Value::Int(*f as i64))
                }
                _ => Err(self.err_at(
                    pos,
                    arg,
                    format!("expected {}; found {arg}", ty.literal_name()),
                )),
            },
        }
    }
}

fn call(def: &FuncDef, argv: &[Value]) -> Result<Value, String> {
    (def.f)(argv)
}
