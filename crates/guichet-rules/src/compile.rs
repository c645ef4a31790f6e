//! From a program file's text to a checked `Program`: TOML shapes, names,
//! types, cycles, unreachable questions, test cases. Every problem becomes a
//! `Diagnostic` with a span in the file.

use crate::answers::{AnswerValue, Answers};
use crate::diagnostic::Diagnostic;
use crate::ir::{Cmp, Node, NodeId, Op, Timeline};
use crate::program::*;
use crate::raw::{QuestionType, RawProgram};
use crate::syntax::{self, BinOp, Expr, ExprKind, Lit, Span};
use crate::value::{Date, Money, Percent, Type, Value};
use crate::{ErrorCode, Loaded};
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use toml::Spanned;

/// The closest name, for "did you mean".
pub(crate) fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| {
            (*d <= 2.max(name.len() / 3) && *d < c.len().max(name.len()))
                || (c.len() >= 3 && name.len() >= 3 && (name.starts_with(c) || c.starts_with(name)))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn is_ident(s: &str) -> bool {
    let mut ch = s.chars();
    ch.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && ch.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

const KEYWORDS: [&str; 11] = ["and", "or", "not", "if", "then", "else", "is", "none", "in", "true", "false"];
const FUNCTIONS: [&str; 8] = ["min", "max", "round", "days_between", "add_days", "add_months", "year", "month"];

/// Where an expression string sits in the file, to map its spans back.
#[derive(Clone)]
struct Origin {
    base: usize,
    exact: bool,
    whole: Span,
}

impl Origin {
    fn of(src: &str, span: Span) -> Origin {
        let raw = src.get(span.clone()).unwrap_or("");
        let (open, exact) = if let Some(rest) = raw.strip_prefix("'''") {
            (3 + usize::from(rest.starts_with('\n')), true)
        } else if let Some(rest) = raw.strip_prefix("\"\"\"") {
            (3 + usize::from(rest.starts_with('\n')), !raw.contains('\\'))
        } else if raw.starts_with('\'') {
            (1, true)
        } else if raw.starts_with('"') {
            (1, !raw.contains('\\'))
        } else {
            (0, false)
        };
        Origin { base: span.start + open, exact, whole: span }
    }
    fn map(&self, s: &Span) -> Span {
        if self.exact { self.base + s.start..self.base + s.end } else { self.whole.clone() }
    }
}

fn remap(e: &mut Expr, o: &Origin) {
    e.span = o.map(&e.span);
    match &mut e.kind {
        ExprKind::Lit(_) | ExprKind::Name(_) => {}
        ExprKind::Field(a, _, s) => {
            *s = o.map(s);
            remap(a, o);
        }
        ExprKind::Neg(a) | ExprKind::Not(a) | ExprKind::IsNone(a, _) => remap(a, o),
        ExprKind::Binary(_, a, b) => {
            remap(a, o);
            remap(b, o);
        }
        ExprKind::In(a, items) => {
            remap(a, o);
            items.iter_mut().for_each(|i| remap(i, o));
        }
        ExprKind::If(a, b, c) => {
            remap(a, o);
            remap(b, o);
            remap(c, o);
        }
        ExprKind::Call(_, s, args) => {
            *s = o.map(s);
            args.iter_mut().for_each(|i| remap(i, o));
        }
    }
}

/// Free names of an expression (without address fields).
pub(crate) fn names(e: &Expr, out: &mut Vec<(String, Span)>) {
    match &e.kind {
        ExprKind::Name(n) => out.push((n.clone(), e.span.clone())),
        ExprKind::Lit(_) => {}
        ExprKind::Field(a, _, _) | ExprKind::Neg(a) | ExprKind::Not(a) | ExprKind::IsNone(a, _) => names(a, out),
        ExprKind::Binary(_, a, b) => {
            names(a, out);
            names(b, out);
        }
        ExprKind::In(a, items) => {
            names(a, out);
            items.iter().for_each(|i| names(i, out));
        }
        ExprKind::If(a, b, c) => {
            names(a, out);
            names(b, out);
            names(c, out);
        }
        ExprKind::Call(_, _, args) => args.iter().for_each(|i| names(i, out)),
    }
}

fn toml_date(dt: &toml::value::Datetime) -> Result<Date, String> {
    match (dt.date, dt.time, dt.offset) {
        (Some(d), None, None) => Date::from_ymd(i16::try_from(d.year).unwrap_or(i16::MAX), d.month as i8, d.day as i8)
            .map_err(|e| e.to_string()),
        _ => Err(format!("`{dt}` is not a plain date: write it like 2020-05-01, without a time")),
    }
}

/// Reads a literal value (parameter value, question bound) from TOML.
fn toml_literal(v: &toml::Value) -> Result<Value, String> {
    match v {
        toml::Value::Boolean(b) => Ok(Value::Bool(*b)),
        toml::Value::Integer(i) => Ok(Value::Integer(*i)),
        toml::Value::Datetime(dt) => toml_date(dt).map(Value::Date),
        toml::Value::String(s) => {
            let t = s.trim();
            if t.ends_with('$') || t.starts_with('$') {
                Money::parse(t).map(Value::Money).map_err(|e| e.to_string())
            } else if t.ends_with('%') {
                Percent::parse(t).map(Value::Percent).map_err(|e| e.to_string())
            } else {
                Ok(Value::Text(Arc::from(s.as_str())))
            }
        }
        toml::Value::Float(f) => Err(format!(
            "`{f}` is a decimal number without a unit: write \"{f} $\" for money or \"{f} %\" for a percentage (as text, so it stays exact)"
        )),
        toml::Value::Array(_) | toml::Value::Table(_) => Err("expected a single value".into()),
    }
}

fn type_of_value(v: &Value) -> Type {
    match v {
        Value::Bool(_) => Type::Bool,
        Value::Integer(_) => Type::Integer,
        Value::Money(_) => Type::Money,
        Value::Percent(_) => Type::Percent,
        Value::Date(_) => Type::Date,
        Value::Text(_) | Value::Choice(_) => Type::Text,
        Value::Present => Type::Opaque,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Binding {
    Question(usize),
    Derived(usize),
    Param(usize),
    RefDate,
}

/// What an expression may read.
#[derive(Clone, Copy)]
enum Scope {
    /// A question's condition: earlier questions, parameters, the date.
    AskIf(usize),
    /// Derived values, rules, amount: everything already compiled.
    All,
}

struct Compiler<'s> {
    src: &'s str,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    nodes: Vec<Node>,
    types: Vec<Type>,
    /// Nodes by their op and type, for sharing identical ones.
    seen: HashMap<(Op, Type), NodeId>,
    bindings: HashMap<String, Binding>,
    questions: Vec<Question>,
    parameters: Vec<Parameter>,
    derived: Vec<Option<Derived>>,
    derived_names: Vec<String>,
    choice_sets: Vec<Vec<String>>,
    texts: HashMap<String, i64>,
    text_list: Vec<String>,
    /// Names read while compiling the current expression.
    used: Vec<(Ref, NodeId, Type)>,
    /// Every question read by any expression.
    read: HashSet<usize>,
    /// Where each question is declared (known before any is compiled).
    qspans: Vec<Span>,
}

type R<T> = Result<T, Diagnostic>;

impl<'s> Compiler<'s> {
    /// Adds a node, or returns the identical one already built: every op
    /// is pure, so `x is none` written twice is computed once. (A shared
    /// node keeps the span of its first occurrence.)
    fn push(&mut self, op: Op, ty: Type, span: Span) -> NodeId {
        if let Some(&id) = self.seen.get(&(op.clone(), ty)) {
            return id;
        }
        let id = self.nodes.len() as NodeId;
        self.seen.insert((op.clone(), ty), id);
        self.nodes.push(Node { op, span });
        self.types.push(ty);
        id
    }

    /// Records that the current expression reads `r` (once).
    fn use_ref(&mut self, r: Ref, node: NodeId, ty: Type) {
        let entry = (r, node, ty);
        if !self.used.contains(&entry) {
            self.used.push(entry);
        }
    }

    fn intern(&mut self, s: &str) -> i64 {
        if let Some(&id) = self.texts.get(s) {
            return id;
        }
        let id = self.text_list.len() as i64;
        self.text_list.push(s.to_owned());
        self.texts.insert(s.to_owned(), id);
        id
    }

    fn parse_expr(&mut self, text: &Spanned<String>) -> Option<Expr> {
        let origin = Origin::of(self.src, text.span());
        match syntax::parse(text.get_ref()) {
            Ok(mut e) => {
                remap(&mut e, &origin);
                Some(e)
            }
            Err(err) => {
                let mut d = Diagnostic::error(err.message, origin.map(&err.span));
                if let Some(h) = err.hint {
                    d = d.with_hint(h);
                }
                self.errors.push(d);
                None
            }
        }
    }

    fn type_name(&self, t: Type) -> String {
        match t {
            Type::Choice(set) => {
                let opts = self.choice_sets.get(set as usize).map(|s| s.join(", ")).unwrap_or_default();
                format!("choice ({opts})")
            }
            other => other.name().to_owned(),
        }
    }

    fn name(&mut self, name: &str, span: &Span, scope: Scope) -> R<(NodeId, Type)> {
        let Some(b) = self.bindings.get(name).copied() else {
            let cands: Vec<String> = self.bindings.keys().cloned().chain(["submitted_on".to_owned()]).collect();
            let mut d = Diagnostic::error(format!("unknown name `{name}`"), span.clone())
                .with_label("not a question, derived value or parameter");
            if let Some(best) = closest(name, cands.iter().map(String::as_str)) {
                d = d.with_hint(format!("did you mean `{best}`?"));
            } else if FUNCTIONS.contains(&name) {
                d = d.with_hint(format!("`{name}` is a function: call it like `{name}(…)`"));
            }
            return Err(d);
        };
        match (b, scope) {
            (Binding::Question(q), Scope::AskIf(me)) if q >= me => {
                let other_span = self.qspans.get(q).cloned().unwrap_or(0..0);
                let d = if q == me {
                    Diagnostic::error(format!("the condition of `{name}` uses `{name}` itself"), span.clone())
                        .with_hint("a question cannot depend on its own answer")
                } else {
                    Diagnostic::error(format!("`{name}` is asked after this question"), span.clone())
                        .with_related(other_span, "asked here")
                        .with_hint("a condition may only use questions that come before it in the form; move this question after it")
                };
                return Err(d);
            }
            (Binding::Derived(_), Scope::AskIf(_)) => {
                return Err(Diagnostic::error(
                    format!("a question's condition cannot use the derived value `{name}`"),
                    span.clone(),
                )
                .with_hint("write the condition with the earlier questions directly"));
            }
            _ => {}
        }
        Ok(match b {
            Binding::Question(q) => {
                self.read.insert(q);
                let (node, ty) = (self.questions[q].node, self.questions[q].ty);
                self.use_ref(Ref::Question(q), node, ty);
                (node, ty)
            }
            Binding::Derived(d) => {
                let Some(dv) = self.derived.get(d).and_then(|x| x.as_ref()) else {
                    return Err(Diagnostic::error(format!("`{name}` is not available here"), span.clone()));
                };
                let (node, ty) = (dv.node, dv.ty);
                self.use_ref(Ref::Derived(d), node, ty);
                (node, ty)
            }
            // `push` shares identical nodes: one Param node per parameter,
            // one RefDate node, however often they are named.
            Binding::Param(p) => {
                let ty = self.parameters[p].ty;
                let node = self.push(Op::Param(p as u32), ty, self.parameters[p].span.clone());
                self.use_ref(Ref::Param(p), node, ty);
                (node, ty)
            }
            Binding::RefDate => {
                let node = self.push(Op::RefDate, Type::Date, span.clone());
                self.use_ref(Ref::RefDate, node, Type::Date);
                (node, Type::Date)
            }
        })
    }

    fn mismatch(&self, what: &str, span: &Span, want: &str, got: Type) -> Diagnostic {
        Diagnostic::error(format!("{what} must be {want}, but this is {}", self.type_name(got)), span.clone())
            .with_label(format!("this is {}", self.type_name(got)))
    }

    /// Compiles `e`, resolving a text literal against `want` when given.
    fn expr_as(&mut self, e: &Expr, want: Type, scope: Scope) -> R<NodeId> {
        if let ExprKind::Lit(Lit::Str(s)) = &e.kind {
            return match want {
                Type::Choice(set) => {
                    let opts = self.choice_sets.get(set as usize).cloned().unwrap_or_default();
                    match opts.iter().position(|o| o == s) {
                        Some(i) => Ok(self.push(Op::Const(i as i64), want, e.span.clone())),
                        None => {
                            let mut d = Diagnostic::error(format!("\"{s}\" is not one of the options"), e.span.clone())
                                .with_label(format!("options: {}", opts.join(", ")));
                            if let Some(best) = closest(s, opts.iter().map(String::as_str)) {
                                d = d.with_hint(format!("did you mean \"{best}\"?"));
                            }
                            Err(d)
                        }
                    }
                }
                Type::Text => {
                    let id = self.intern(s);
                    Ok(self.push(Op::Const(id), Type::Text, e.span.clone()))
                }
                other => Err(self.mismatch("this value", &e.span, &self.type_name(other), Type::Text)),
            };
        }
        let (n, t) = self.expr(e, scope)?;
        if t != want {
            return Err(self.mismatch("this value", &e.span, &self.type_name(want), t).with_hint(hint_for(want, t)));
        }
        Ok(n)
    }

    fn expr(&mut self, e: &Expr, scope: Scope) -> R<(NodeId, Type)> {
        let span = e.span.clone();
        match &e.kind {
            ExprKind::Lit(l) => Ok(match l {
                Lit::Int(i) => (self.push(Op::Const(*i), Type::Integer, span), Type::Integer),
                Lit::Money(m) => (self.push(Op::Const(m.0), Type::Money, span), Type::Money),
                Lit::Percent(p) => (self.push(Op::Const(p.0), Type::Percent, span), Type::Percent),
                Lit::Date(d) => (self.push(Op::Const(i64::from(d.0)), Type::Date, span), Type::Date),
                Lit::Bool(b) => (self.push(Op::Const(i64::from(*b)), Type::Bool, span), Type::Bool),
                Lit::Str(s) => {
                    return Err(Diagnostic::error(
                        format!("the text \"{s}\" can only be compared with a question"),
                        span,
                    )
                    .with_hint("write `question == \"value\"`"));
                }
            }),
            ExprKind::Name(n) => self.name(n, &span, scope),
            ExprKind::Field(base, field, fspan) => {
                let ExprKind::Name(qname) = &base.kind else {
                    return Err(Diagnostic::error("only an address question has fields", base.span.clone()));
                };
                let (_, ty) = self.name(qname, &base.span, scope)?;
                let q = match self.bindings.get(qname) {
                    Some(Binding::Question(q)) if self.questions[*q].kind == QuestionType::Address => *q,
                    _ => {
                        return Err(Diagnostic::error(
                            format!("`{qname}` has no fields (it is {})", self.type_name(ty)),
                            fspan.clone(),
                        )
                        .with_hint("fields exist on address questions: line1, city, province, postal_code"));
                    }
                };
                let found = self.questions[q].fields.iter().find(|(f, _, _)| f == field).cloned();
                match found {
                    Some((f, node, t)) => {
                        self.used.retain(|(r, _, _)| *r != Ref::Question(q));
                        self.use_ref(Ref::Field(q, f), node, t);
                        Ok((node, t))
                    }
                    None => Err(Diagnostic::error(format!("an address has no field `{field}`"), fspan.clone())
                        .with_hint("the fields are line1, city, province, postal_code")),
                }
            }
            ExprKind::Neg(a) => {
                let (n, t) = self.expr(a, scope)?;
                if !matches!(t, Type::Integer | Type::Money | Type::Percent) {
                    return Err(self.mismatch("a negated value", &a.span, "a number, money or a percentage", t));
                }
                Ok((self.push(Op::Neg(n), t, span), t))
            }
            ExprKind::Not(a) => {
                let n = self.expr_as(a, Type::Bool, scope)?;
                Ok((self.push(Op::Not(n), Type::Bool, span), Type::Bool))
            }
            ExprKind::IsNone(a, negated) => {
                let (n, _) = self.expr(a, scope)?;
                let op = if *negated { Op::IsSome(n) } else { Op::IsNone(n) };
                Ok((self.push(op, Type::Bool, span), Type::Bool))
            }
            ExprKind::In(a, items) => {
                let (n, t) = self.expr(a, scope)?;
                if !matches!(t, Type::Choice(_) | Type::Text | Type::Integer) {
                    return Err(self.mismatch("the value before `in`", &a.span, "a choice, text or integer", t));
                }
                let mut set = Vec::new();
                for it in items {
                    let id = self.expr_as(it, t, scope)?;
                    match self.nodes[id as usize].op {
                        Op::Const(v) => set.push(v),
                        _ => {
                            return Err(Diagnostic::error("the list after `in` may hold only values", it.span.clone()));
                        }
                    }
                }
                Ok((self.push(Op::In(n, set.into_boxed_slice()), Type::Bool, span), Type::Bool))
            }
            ExprKind::If(c, a, b) => {
                let cn = self.expr_as(c, Type::Bool, scope)?;
                let (an, at) = match &a.kind {
                    ExprKind::Lit(Lit::Str(_)) => {
                        let (bn, bt) = self.expr(b, scope)?;
                        let an = self.expr_as(a, bt, scope)?;
                        return Ok((self.push(Op::If(cn, an, bn), bt, span), bt));
                    }
                    _ => self.expr(a, scope)?,
                };
                let bn = self.expr_as(b, at, scope).map_err(|d| {
                    d.with_related(a.span.clone(), format!("the `then` branch is {}", self.type_name(at)))
                })?;
                Ok((self.push(Op::If(cn, an, bn), at, span), at))
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, span, scope),
            ExprKind::Call(f, fspan, args) => self.call(f, fspan, args, span, scope),
        }
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, span: Span, scope: Scope) -> R<(NodeId, Type)> {
        use Type::*;
        match op {
            BinOp::And | BinOp::Or => {
                let an = self.expr_as(a, Bool, scope)?;
                let bn = self.expr_as(b, Bool, scope)?;
                let o = if op == BinOp::And { Op::And(an, bn) } else { Op::Or(an, bn) };
                Ok((self.push(o, Bool, span), Bool))
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let cmp = match op {
                    BinOp::Eq => Cmp::Eq,
                    BinOp::Ne => Cmp::Ne,
                    BinOp::Lt => Cmp::Lt,
                    BinOp::Le => Cmp::Le,
                    BinOp::Gt => Cmp::Gt,
                    _ => Cmp::Ge,
                };
                let (an, bn, t) = if matches!(a.kind, ExprKind::Lit(Lit::Str(_))) {
                    let (bn, bt) = self.expr(b, scope)?;
                    (self.expr_as(a, bt, scope)?, bn, bt)
                } else {
                    let (an, at) = self.expr(a, scope)?;
                    let bn = self.expr_as(b, at, scope).map_err(|d| {
                        if d.message.contains("must be") {
                            Diagnostic::error(
                                format!(
                                    "cannot compare {} with {}",
                                    self.type_name(at),
                                    d.label.clone().unwrap_or_default().trim_start_matches("this is ")
                                ),
                                span.clone(),
                            )
                            .with_related(a.span.clone(), format!("this is {}", self.type_name(at)))
                            .with_hint(d.hint.clone().unwrap_or_else(|| "both sides must have the same type".into()))
                        } else {
                            d
                        }
                    })?;
                    (an, bn, at)
                };
                let ordered = matches!(t, Integer | Money | Percent | Date);
                if !ordered && !matches!(cmp, Cmp::Eq | Cmp::Ne) {
                    return Err(Diagnostic::error(
                        format!("`{}` does not apply to {}", op.symbol(), self.type_name(t)),
                        span,
                    )
                    .with_hint("only numbers, money, percentages and dates are ordered; use `==` or `!=`"));
                }
                if t == Opaque {
                    return Err(Diagnostic::error("a document, address or bank account cannot be compared", span)
                        .with_hint("test it with `is none` or `is not none`"));
                }
                Ok((self.push(Op::Cmp(cmp, an, bn), Bool, span), Bool))
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
                let (an, at) = self.expr(a, scope)?;
                let (bn, bt) = self.expr(b, scope)?;
                let res = match (op, at, bt) {
                    (BinOp::Add, Integer, Integer) => Some((Op::Add(an, bn), Integer)),
                    (BinOp::Add, Money, Money) => Some((Op::Add(an, bn), Money)),
                    (BinOp::Add, Percent, Percent) => Some((Op::Add(an, bn), Percent)),
                    (BinOp::Add, Date, Integer) | (BinOp::Add, Integer, Date) => Some((Op::Add(an, bn), Date)),
                    (BinOp::Sub, Integer, Integer) => Some((Op::Sub(an, bn), Integer)),
                    (BinOp::Sub, Money, Money) => Some((Op::Sub(an, bn), Money)),
                    (BinOp::Sub, Percent, Percent) => Some((Op::Sub(an, bn), Percent)),
                    (BinOp::Sub, Date, Integer) => Some((Op::Sub(an, bn), Date)),
                    (BinOp::Sub, Date, Date) => Some((Op::Sub(an, bn), Integer)),
                    (BinOp::Mul, Integer, Integer) => Some((Op::Mul(an, bn), Integer)),
                    (BinOp::Mul, Money, Integer) | (BinOp::Mul, Integer, Money) => Some((Op::Mul(an, bn), Money)),
                    (BinOp::Mul, Integer, Percent) | (BinOp::Mul, Percent, Integer) => Some((Op::Mul(an, bn), Percent)),
                    (BinOp::Mul, Money, Percent) => Some((Op::MulPct(an, bn), Money)),
                    (BinOp::Mul, Percent, Money) => Some((Op::MulPct(bn, an), Money)),
                    (BinOp::Div, Money, Integer) => Some((Op::DivRound(an, bn), Money)),
                    (BinOp::Div, Percent, Integer) => Some((Op::DivRound(an, bn), Percent)),
                    (BinOp::Div, Money, Money) => Some((Op::DivPct(an, bn), Percent)),
                    (BinOp::Div, Integer, Integer) => Some((Op::DivTrunc(an, bn), Integer)),
                    _ => None,
                };
                match res {
                    Some((o, t)) => Ok((self.push(o, t, span), t)),
                    None => {
                        let mut d = Diagnostic::error(
                            format!(
                                "`{}` does not apply to {} and {}",
                                op.symbol(),
                                self.type_name(at),
                                self.type_name(bt)
                            ),
                            span,
                        )
                        .with_related(a.span.clone(), self.type_name(at))
                        .with_related(b.span.clone(), self.type_name(bt));
                        d = d.with_hint(match (at, bt) {
                            (Money, Money) if op == BinOp::Mul => {
                                "multiply money by a number or a percentage".to_owned()
                            }
                            (Integer, Money) | (Money, Integer) => {
                                "write money amounts with a unit: `1500 $`".to_owned()
                            }
                            (Date, Date) => {
                                "subtracting two dates gives days: `b - a` or `days_between(a, b)`".to_owned()
                            }
                            _ => "see the operator table in docs/program-format.md".to_owned(),
                        });
                        Err(d)
                    }
                }
            }
        }
    }

    fn call(&mut self, f: &str, fspan: &Span, args: &[Expr], span: Span, scope: Scope) -> R<(NodeId, Type)> {
        use Type::*;
        let arity = |n: usize| -> R<()> {
            if args.len() == n {
                Ok(())
            } else {
                Err(Diagnostic::error(
                    format!("`{f}` takes {n} argument{}, {} given", if n == 1 { "" } else { "s" }, args.len()),
                    span.clone(),
                ))
            }
        };
        match f {
            "min" | "max" => {
                if args.len() < 2 {
                    return Err(Diagnostic::error(format!("`{f}` needs at least two values"), span));
                }
                let (first, t) = self.expr(&args[0], scope)?;
                if !matches!(t, Integer | Money | Percent | Date) {
                    return Err(self.mismatch(
                        &format!("an argument of `{f}`"),
                        &args[0].span,
                        "a number, money, a percentage or a date",
                        t,
                    ));
                }
                let mut ns = vec![first];
                for a in &args[1..] {
                    ns.push(self.expr_as(a, t, scope)?);
                }
                let o = if f == "min" { Op::Min(ns.into_boxed_slice()) } else { Op::Max(ns.into_boxed_slice()) };
                Ok((self.push(o, t, span), t))
            }
            "round" => {
                arity(1)?;
                let n = self.expr_as(&args[0], Money, scope)?;
                Ok((self.push(Op::RoundDollar(n), Money, span), Money))
            }
            "days_between" => {
                arity(2)?;
                let a = self.expr_as(&args[0], Date, scope)?;
                let b = self.expr_as(&args[1], Date, scope)?;
                Ok((self.push(Op::Sub(b, a), Integer, span), Integer))
            }
            "add_days" | "add_months" => {
                arity(2)?;
                let a = self.expr_as(&args[0], Date, scope)?;
                let b = self.expr_as(&args[1], Integer, scope)?;
                let o = if f == "add_days" { Op::Add(a, b) } else { Op::AddMonths(a, b) };
                Ok((self.push(o, Date, span), Date))
            }
            "year" | "month" => {
                arity(1)?;
                let a = self.expr_as(&args[0], Date, scope)?;
                let o = if f == "year" { Op::Year(a) } else { Op::Month(a) };
                Ok((self.push(o, Integer, span), Integer))
            }
            _ => {
                let mut d = Diagnostic::error(format!("unknown function `{f}`"), fspan.clone())
                    .with_label(format!("functions: {}", FUNCTIONS.join(", ")));
                if let Some(best) = closest(f, FUNCTIONS.iter().copied()) {
                    d = d.with_hint(format!("did you mean `{best}`?"));
                }
                Err(d)
            }
        }
    }
}

fn hint_for(want: Type, got: Type) -> String {
    match (want, got) {
        (Type::Money, Type::Integer) => "write money with a unit: `1500 $`".into(),
        (Type::Bool, _) => "a condition must be true or false: compare the value, e.g. `x > 0`".into(),
        (Type::Date, _) => "write dates like 2020-05-01".into(),
        _ => "both sides must have the same type".into(),
    }
}

/// Loads and checks a program file. `Err` holds at least one error.
pub fn load(src: &str) -> Result<Loaded, Vec<Diagnostic>> {
    let raw: RawProgram = match toml::from_str(src) {
        Ok(r) => r,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let mut msg = e.message().trim().to_owned();
            if msg == "wanted string or table" {
                msg = "expected text here (one of the allowed values, in quotes)".into();
            }
            let mut d = Diagnostic::error(msg.clone(), span);
            if let Some(field) = msg.strip_prefix("unknown field `").and_then(|s| s.split('`').next()) {
                let expected: Vec<&str> =
                    msg.split("expected ").nth(1).map(|s| s.split(", ").collect()).unwrap_or_default();
                let exp: Vec<String> = expected
                    .iter()
                    .map(|s| {
                        s.trim_matches(|c| c == '`' || c == ' ' || c == '.')
                            .trim_start_matches("one of ")
                            .trim_matches('`')
                            .to_owned()
                    })
                    .collect();
                if let Some(best) = closest(field, exp.iter().map(String::as_str)) {
                    d = d.with_hint(format!("did you mean `{best}`?"));
                }
            }
            return Err(vec![d]);
        }
    };
    let version = crate::canonical::version(src);
    let mut c = Compiler {
        src,
        errors: Vec::new(),
        warnings: Vec::new(),
        nodes: Vec::new(),
        types: Vec::new(),
        seen: HashMap::new(),
        bindings: HashMap::new(),
        questions: Vec::new(),
        parameters: Vec::new(),
        derived: Vec::new(),
        derived_names: Vec::new(),
        choice_sets: vec![PROVINCES.iter().map(|s| (*s).to_owned()).collect()],
        texts: HashMap::new(),
        text_list: Vec::new(),
        used: Vec::new(),
        read: HashSet::new(),
        qspans: raw.questions.values().map(|q| q.span()).collect(),
    };
    c.bindings.insert("submitted_on".into(), Binding::RefDate);

    // Identity and window.
    let id = raw.id.get_ref();
    if id.is_empty() || !id.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-') {
        c.errors.push(
            Diagnostic::error("a program id uses lowercase letters, digits and dashes", raw.id.span())
                .with_hint("e.g. `shq-pret-loyer-2020`"),
        );
    }
    let date_of = |c: &mut Compiler, d: &Spanned<toml::value::Datetime>| match toml_date(d.get_ref()) {
        Ok(x) => Some(x),
        Err(m) => {
            c.errors.push(Diagnostic::error(m, d.span()));
            None
        }
    };
    let opens = date_of(&mut c, &raw.opens);
    let closes = date_of(&mut c, &raw.closes);
    if let (Some(o), Some(cl)) = (opens, closes)
        && cl < o
    {
        c.errors.push(
            Diagnostic::error(format!("the program closes ({cl}) before it opens ({o})"), raw.closes.span())
                .with_related(raw.opens.span(), "opens here"),
        );
    }

    // Name checks shared by every kind of definition.
    let mut defined: HashMap<String, (&str, Span)> = HashMap::new();
    let mut define = |c: &mut Compiler, name: &str, kind: &'static str, span: Span| -> bool {
        if !is_ident(name) {
            c.errors
                .push(Diagnostic::error(format!("`{name}` is not a valid name for a {kind}"), span).with_hint(
                    "use lowercase letters, digits and underscores, starting with a letter: `monthly_rent`",
                ));
            return false;
        }
        if KEYWORDS.contains(&name) || FUNCTIONS.contains(&name) || name == "submitted_on" {
            c.errors.push(Diagnostic::error(format!("`{name}` is a reserved word of the rules language"), span));
            return false;
        }
        if let Some((other, ospan)) = defined.get(name) {
            c.errors.push(
                Diagnostic::error(format!("`{name}` is already defined as a {other}"), span)
                    .with_related(ospan.clone(), "first defined here"),
            );
            return false;
        }
        defined.insert(name.to_owned(), (kind, span));
        true
    };

    // Parameters.
    for (name, spanned) in &raw.parameters {
        let span = spanned.span();
        if !define(&mut c, name, "parameter", span.clone()) {
            continue;
        }
        let (label, values) = match spanned.get_ref() {
            toml::Value::Table(t) if t.contains_key("values") => {
                let mut label = None;
                for (k, v) in t {
                    match k.as_str() {
                        "values" => {}
                        "label" => match v.clone().try_into::<crate::raw::Bilingual>() {
                            Ok(b) => label = Some(b),
                            Err(_) => c.errors.push(Diagnostic::error(
                                format!("the label of parameter `{name}` needs `fr` and `en` texts"),
                                span.clone(),
                            )),
                        },
                        other => c.errors.push(
                            Diagnostic::error(format!("unknown key `{other}` in parameter `{name}`"), span.clone())
                                .with_hint("a parameter has `label` and `values`"),
                        ),
                    }
                }
                (label, t.get("values").cloned())
            }
            v @ toml::Value::Table(_) => (None, Some(v.clone())),
            _ => (None, None),
        };
        let Some(toml::Value::Table(values)) = values else {
            c.errors.push(
                Diagnostic::error(format!("parameter `{name}` needs values by effective date"), span)
                    .with_hint(format!("write `{name} = {{ 2020-04-01 = \"1500.00 $\" }}`")),
            );
            continue;
        };
        let mut list: Vec<(Date, Value)> = Vec::new();
        let mut ty: Option<Type> = None;
        for (k, v) in &values {
            let d = match Date::parse(k) {
                Ok(d) => d,
                Err(_) => {
                    c.errors.push(
                        Diagnostic::error(
                            format!("`{k}` in parameter `{name}` is not an effective date"),
                            span.clone(),
                        )
                        .with_hint("keys are dates: `2020-04-01 = …`"),
                    );
                    continue;
                }
            };
            match toml_literal(v) {
                Ok(val) => {
                    let t = type_of_value(&val);
                    if let Some(prev) = ty
                        && prev != t
                    {
                        c.errors.push(Diagnostic::error(
                            format!("parameter `{name}` mixes {} and {} values", prev.name(), t.name()),
                            span.clone(),
                        ));
                    }
                    ty = Some(t);
                    list.push((d, val));
                }
                Err(m) => c.errors.push(Diagnostic::error(format!("parameter `{name}` on {k}: {m}"), span.clone())),
            }
        }
        list.sort_by_key(|(d, _)| *d);
        if list.windows(2).any(|w| w[0].0 == w[1].0) {
            c.errors
                .push(Diagnostic::error(format!("parameter `{name}` has two values on the same date"), span.clone()));
        }
        if ty == Some(Type::Text) {
            c.errors.push(
                Diagnostic::error(
                    format!(
                        "parameter `{name}` holds text; parameters are numbers, money, percentages, dates or yes/no"
                    ),
                    span.clone(),
                )
                .with_hint("write money as \"1500.00 $\" and percentages as \"12.5 %\""),
            );
        }
        if let (Some(first), Some(o)) = (list.first(), opens)
            && first.0 > o
        {
            c.warnings.push(Diagnostic::warning(
                format!("parameter `{name}` has no value before {}, but the program opens on {o}", first.0),
                span.clone(),
            ));
        }
        let idx = c.parameters.len();
        c.parameters.push(Parameter { name: name.clone(), label, ty: ty.unwrap_or(Type::Integer), values: list, span });
        c.bindings.insert(name.clone(), Binding::Param(idx));
    }

    // Sections.
    let sections: Vec<Section> = raw
        .sections
        .iter()
        .map(|(id, s)| Section { id: id.clone(), title: s.title.clone(), help: s.help.clone() })
        .collect();

    // Questions, in form order. Names are bound first so that a condition
    // naming a later question gets "asked after", not "unknown".
    for (qi, (name, spanned)) in raw.questions.iter().enumerate() {
        if define(&mut c, name, "question", spanned.span()) {
            c.bindings.insert(name.clone(), Binding::Question(qi));
        }
    }
    let mut n_slots: u32 = 0;
    for (qi, (name, spanned)) in raw.questions.iter().enumerate() {
        let span = spanned.span();
        let rq = spanned.get_ref();
        if let Some(sec) = &rq.section
            && !raw.sections.contains_key(sec.get_ref())
        {
            let mut d = Diagnostic::error(format!("unknown section `{}`", sec.get_ref()), sec.span());
            if let Some(best) = closest(sec.get_ref(), raw.sections.keys().map(String::as_str)) {
                d = d.with_hint(format!("did you mean `{best}`?"));
            } else {
                d = d.with_hint("declare it with [sections.NAME] and a title");
            }
            c.errors.push(d);
        }
        if rq.kind == QuestionType::Choice && rq.options.len() < 2 {
            c.errors.push(
                Diagnostic::error(format!("choice question `{name}` needs at least two options"), span.clone())
                    .with_hint("options = [{ value = \"a\", label = { fr = \"…\", en = \"…\" } }, …]"),
            );
        }
        if rq.kind != QuestionType::Choice && !rq.options.is_empty() {
            c.errors.push(Diagnostic::error(
                format!("only a choice question has options (`{name}` is not one)"),
                span.clone(),
            ));
        }
        let mut seen = HashSet::new();
        for o in &rq.options {
            if !seen.insert(o.value.as_str()) {
                c.errors
                    .push(Diagnostic::error(format!("option \"{}\" appears twice in `{name}`", o.value), span.clone()));
            }
        }
        let bound = |c: &mut Compiler, b: &Option<Spanned<toml::Value>>| -> Option<Value> {
            let b = b.as_ref()?;
            let val = match toml_literal(b.get_ref()) {
                Ok(v) => v,
                Err(m) => {
                    c.errors.push(Diagnostic::error(m, b.span()));
                    return None;
                }
            };
            let fits = matches!(
                (rq.kind, &val),
                (QuestionType::Integer, Value::Integer(_))
                    | (QuestionType::Money, Value::Money(_))
                    | (QuestionType::Date, Value::Date(_))
            );
            if !fits {
                c.errors.push(
                    Diagnostic::error(
                        format!("this bound does not fit a {:?} question", rq.kind).to_lowercase(),
                        b.span(),
                    )
                    .with_hint("bounds apply to integer (2), money (\"1.00 $\") and date (2020-05-01) questions"),
                );
                return None;
            }
            Some(val)
        };
        let min = bound(&mut c, &rq.min);
        let max = bound(&mut c, &rq.max);
        if let (Some(a), Some(b)) = (&min, &max)
            && a.lane() > b.lane()
        {
            c.errors.push(Diagnostic::error(format!("`{name}` has a minimum above its maximum"), span.clone()));
        }
        let choice_set = if rq.kind == QuestionType::Choice {
            c.choice_sets.push(rq.options.iter().map(|o| o.value.clone()).collect());
            (c.choice_sets.len() - 1) as u32
        } else {
            0
        };
        let ty = match rq.kind {
            QuestionType::Text => Type::Text,
            QuestionType::YesNo => Type::Bool,
            QuestionType::Integer => Type::Integer,
            QuestionType::Money => Type::Money,
            QuestionType::Date => Type::Date,
            QuestionType::Choice => Type::Choice(choice_set),
            QuestionType::Address | QuestionType::File | QuestionType::BankAccount => Type::Opaque,
        };
        // The condition may read earlier questions only.
        let cond = match &rq.ask_if {
            Some(text) => match c.parse_expr(text) {
                Some(e) => {
                    c.used.clear();
                    match c.expr_as(&e, Type::Bool, Scope::AskIf(qi)) {
                        Ok(n) => Some(n),
                        Err(d) => {
                            c.errors.push(d);
                            None
                        }
                    }
                }
                None => None,
            },
            None => None,
        };
        let slot = n_slots;
        let mut q = Question {
            id: name.clone(),
            kind: rq.kind,
            label: rq.label.clone(),
            help: rq.help.clone(),
            section: rq.section.as_ref().map(|s| s.get_ref().clone()),
            ask_if: rq.ask_if.as_ref().map(|s| s.get_ref().clone()),
            optional: rq.optional,
            informational: rq.informational,
            min,
            max,
            options: rq
                .options
                .iter()
                .map(|o| ChoiceOption { value: o.value.clone(), label: o.label.clone() })
                .collect(),
            accept: rq.accept.clone(),
            span: span.clone(),
            slot,
            cond,
            node: 0,
            fields: Vec::new(),
            choice_set,
            ty,
        };
        n_slots += q.slots();
        let gate = |c: &mut Compiler, slot: u32, ty: Type| {
            let input = c.push(Op::Input(slot), ty, span.clone());
            match cond {
                Some(k) => c.push(Op::Gate(input, k), ty, span.clone()),
                None => input,
            }
        };
        if rq.kind == QuestionType::Address {
            let line1 = gate(&mut c, slot, Type::Text);
            let city = gate(&mut c, slot + 1, Type::Text);
            let prov = gate(&mut c, slot + 2, Type::Choice(0));
            let postal = gate(&mut c, slot + 3, Type::Text);
            q.fields = vec![
                ("line1".into(), line1, Type::Text),
                ("city".into(), city, Type::Text),
                ("province".into(), prov, Type::Choice(0)),
                ("postal_code".into(), postal, Type::Text),
            ];
            // The address as a whole is present when its province is.
            q.node = prov;
        } else {
            q.node = gate(&mut c, slot, ty);
        }
        c.questions.push(q);
    }

    // Derived values: declare all, then compile in dependency order.
    let mut derived_exprs: Vec<Option<Expr>> = Vec::new();
    for (name, d) in &raw.derived {
        let ok = define(&mut c, name, "derived value", d.span());
        let e = c.parse_expr(&d.get_ref().value);
        let idx = c.derived_names.len();
        c.derived_names.push(name.clone());
        c.derived.push(None);
        derived_exprs.push(e);
        if ok {
            c.bindings.insert(name.clone(), Binding::Derived(idx));
        }
    }
    let order = derived_order(&mut c, &raw, &derived_exprs);
    for i in order {
        let Some(e) = &derived_exprs[i] else { continue };
        let Some((name, rd)) = raw.derived.get_index(i) else {
            continue;
        };
        c.used.clear();
        match c.expr(e, Scope::All) {
            Ok((node, ty)) => {
                if ty == Type::Opaque {
                    c.errors.push(Diagnostic::error(
                        format!("derived value `{name}` must be a value, not a document"),
                        e.span.clone(),
                    ));
                }
                c.derived[i] = Some(Derived {
                    name: name.clone(),
                    label: rd.get_ref().label.clone(),
                    ty,
                    source: rd.get_ref().value.get_ref().clone(),
                    node,
                    expr: e.clone(),
                });
            }
            Err(d) => c.errors.push(d),
        }
    }

    // Rules.
    let mut rules = Vec::new();
    if raw.rules.is_empty() {
        c.warnings.push(Diagnostic::warning("this program has no rules: everyone is eligible", 0..0));
    }
    for (name, r) in &raw.rules {
        let span = r.span();
        let rr = r.get_ref();
        if !define(&mut c, name, "rule", span.clone()) {
            continue;
        }
        let Some(e) = c.parse_expr(&rr.when) else {
            continue;
        };
        c.used.clear();
        match c.expr_as(&e, Type::Bool, Scope::All) {
            Ok(node) => rules.push(Rule {
                name: name.clone(),
                label: rr.label.clone(),
                fails: rr.fails.clone(),
                norm: rr.norm.clone(),
                source: rr.when.get_ref().clone(),
                span,
                node,
                refs: std::mem::take(&mut c.used),
            }),
            Err(d) => c.errors.push(d),
        }
    }

    // Amount.
    let amount = raw.amount.as_ref().and_then(|a| {
        let e = c.parse_expr(&a.value)?;
        c.used.clear();
        match c.expr_as(&e, Type::Money, Scope::All) {
            Ok(node) => Some(Amount {
                label: a.label.clone(),
                source: a.value.get_ref().clone(),
                node,
                expr: e,
                refs: std::mem::take(&mut c.used),
            }),
            Err(d) => {
                c.errors.push(d);
                None
            }
        }
    });

    // Payee and agreement refer to questions and parameters by name.
    let payee = raw.payee.as_ref().map(|p| {
        let pr = p.get_ref();
        let check = |c: &mut Compiler, field: &str, q: &Option<String>, kinds: &[QuestionType]| {
            let Some(qn) = q else { return };
            match c.questions.iter().position(|x| &x.id == qn) {
                Some(i) => {
                    c.read.insert(i);
                    if !kinds.contains(&c.questions[i].kind) {
                        c.errors.push(Diagnostic::error(
                            format!(
                                "payee `{field}` must name a {:?} question; `{qn}` is {:?}",
                                kinds[0], c.questions[i].kind
                            )
                            .to_lowercase(),
                            p.span(),
                        ));
                    }
                }
                None => {
                    c.errors.push(Diagnostic::error(format!("payee `{field}` names no question: `{qn}`"), p.span()))
                }
            }
        };
        check(&mut c, "name", &pr.name, &[QuestionType::Text]);
        check(&mut c, "address", &pr.address, &[QuestionType::Address]);
        check(&mut c, "email", &pr.email, &[QuestionType::Text]);
        check(&mut c, "bank_account", &pr.bank_account, &[QuestionType::BankAccount]);
        if pr.kind == crate::raw::PayeeKind::ThirdParty && pr.name.is_none() {
            c.errors.push(Diagnostic::error("a third-party payee needs a `name` question", p.span()));
        }
        Payee {
            kind: pr.kind,
            role: pr.role.clone(),
            name: pr.name.clone(),
            address: pr.address.clone(),
            email: pr.email.clone(),
            bank_account: pr.bank_account.clone(),
        }
    });
    let agreement = raw.agreement.as_ref().map(|a| {
        let ar = a.get_ref();
        if let Some(p) = &ar.repay_by {
            match c.parameters.iter().find(|x| &x.name == p) {
                Some(x) if x.ty == Type::Date => {}
                Some(_) => c.errors.push(Diagnostic::error(
                    format!("`repay_by` must name a date parameter; `{p}` is not a date"),
                    a.span(),
                )),
                None => c.errors.push(Diagnostic::error(format!("`repay_by` names no parameter: `{p}`"), a.span())),
            }
        }
        if ar.kind == crate::raw::AgreementKind::Loan && ar.repay_by.is_none() {
            c.errors.push(Diagnostic::error("a loan agreement needs `repay_by` (a date parameter)", a.span()));
        }
        Agreement { kind: ar.kind, template: ar.template.clone(), repay_by: ar.repay_by.clone() }
    });

    // Questions nothing reads are worth a warning (documents and payee
    // details are read by people, not rules).
    for (i, q) in c.questions.iter().enumerate() {
        let data = matches!(
            q.kind,
            QuestionType::File | QuestionType::Text | QuestionType::Address | QuestionType::BankAccount
        );
        if !data && !q.informational && !c.read.contains(&i) {
            c.warnings.push(
                Diagnostic::warning(
                    format!("question `{}` is asked but no rule, amount or condition uses it", q.id),
                    q.span.clone(),
                )
                .with_hint("if it is asked for the case worker's information, say so: `informational = true`"),
            );
        }
    }

    let derived: Vec<Derived> = c.derived.iter().flatten().cloned().collect();
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    let timelines = c
        .parameters
        .iter()
        .map(|p| Timeline {
            dates: p.values.iter().map(|(d, _)| i64::from(d.0)).collect(),
            values: p.values.iter().map(|(_, v)| v.lane()).collect(),
        })
        .collect();
    let mut question_index: Vec<Vec<(Box<str>, usize)>> = Vec::new();
    for (i, q) in c.questions.iter().enumerate() {
        if question_index.len() <= q.id.len() {
            question_index.resize(q.id.len() + 1, Vec::new());
        }
        question_index[q.id.len()].push((q.id.as_str().into(), i));
    }
    let mut program = Program {
        id: raw.id.get_ref().clone(),
        title: raw.title.clone(),
        summary: raw.summary.clone(),
        organization: raw.organization.clone(),
        opens: opens.unwrap_or(Date(0)),
        closes: closes.unwrap_or(Date(0)),
        decision: raw.decision,
        version: Arc::from(version.as_str()),
        sections,
        questions: std::mem::take(&mut c.questions),
        parameters: std::mem::take(&mut c.parameters),
        derived,
        rules,
        amount,
        payee,
        agreement,
        tests: Vec::new(),
        nodes: std::mem::take(&mut c.nodes),
        timelines,
        n_slots: n_slots as usize,
        choice_sets: std::mem::take(&mut c.choice_sets),
        texts: std::mem::take(&mut c.texts),
        text_list: std::mem::take(&mut c.text_list),
        question_index,
        live: Vec::new(),
        value_slots: Vec::new(),
    };
    program.live = crate::reach::live_nodes(&program);
    // Free text matters only if some expression compares it to a literal;
    // documents and bank accounts only by being there.
    let texts_compared = !program.texts.is_empty();
    program.value_slots = vec![false; program.n_slots];
    for q in &program.questions {
        let types: Vec<Type> =
            if q.kind == QuestionType::Address { q.fields.iter().map(|(_, _, t)| *t).collect() } else { vec![q.ty] };
        for (k, t) in types.into_iter().enumerate() {
            program.value_slots[q.slot as usize + k] = match t {
                Type::Opaque => false,
                Type::Text => texts_compared,
                _ => true,
            };
        }
    }
    let mut errors = Vec::new();
    crate::reach::check_unreachable(&program, &mut errors);
    program.tests = tests(&program, &raw, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Loaded { program, warnings: c.warnings })
}

/// Orders derived values so each comes after those it uses; reports cycles.
fn derived_order(c: &mut Compiler, raw: &RawProgram, exprs: &[Option<Expr>]) -> Vec<usize> {
    let n = exprs.len();
    let index: HashMap<&str, usize> = raw.derived.keys().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let deps: Vec<Vec<(usize, Span)>> = exprs
        .iter()
        .map(|e| {
            let mut ns = Vec::new();
            if let Some(e) = e {
                names(e, &mut ns);
            }
            ns.into_iter().filter_map(|(n, s)| index.get(n.as_str()).map(|&i| (i, s))).collect()
        })
        .collect();
    // 0 = new, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; n];
    let mut order = Vec::new();
    let mut reported = false;
    fn visit(
        i: usize,
        deps: &[Vec<(usize, Span)>],
        state: &mut [u8],
        stack: &mut Vec<(usize, Span)>,
        order: &mut Vec<usize>,
        cycle: &mut Option<Vec<(usize, Span)>>,
    ) {
        state[i] = 1;
        for (j, s) in &deps[i] {
            if state[*j] == 1 {
                if cycle.is_none() {
                    let start = stack.iter().position(|(k, _)| k == j).unwrap_or(0);
                    let mut cyc: Vec<(usize, Span)> = stack[start..].to_vec();
                    cyc.push((i, s.clone()));
                    *cycle = Some(cyc);
                }
            } else if state[*j] == 0 {
                stack.push((i, s.clone()));
                visit(*j, deps, state, stack, order, cycle);
                stack.pop();
            }
        }
        state[i] = 2;
        order.push(i);
    }
    for i in 0..n {
        if state[i] == 0 {
            let mut cycle = None;
            visit(i, &deps, &mut state, &mut Vec::new(), &mut order, &mut cycle);
            if let Some(cyc) = cycle
                && !reported
            {
                reported = true;
                let names: Vec<&str> = cyc
                    .iter()
                    .map(|(k, _)| raw.derived.get_index(*k).map(|(n, _)| n.as_str()).unwrap_or("?"))
                    .collect();
                let mut path = names.join(" → ");
                if let Some(first) = names.first() {
                    path.push_str(&format!(" → {first}"));
                }
                let last = cyc.last().map(|(_, s)| s.clone()).unwrap_or(0..0);
                let mut d = Diagnostic::error(format!("derived values depend on each other in a cycle: {path}"), last)
                    .with_hint(
                        "break the cycle: one of these values must be computed from answers and parameters only",
                    );
                for (_, s) in cyc.iter().take(cyc.len().saturating_sub(1)) {
                    d = d.with_related(s.clone(), "used here");
                }
                c.errors.push(d);
            }
        }
    }
    order
}

fn tests(program: &Program, raw: &RawProgram, errors: &mut Vec<Diagnostic>) -> Vec<TestCase> {
    let mut out = Vec::new();
    let base_date = raw.test_defaults.as_ref().and_then(|d| d.submitted_on.as_ref());
    let mut base = Answers::default();
    let convert =
        |m: &IndexMap<String, Spanned<toml::Value>>, into: &mut Answers, errors: &mut Vec<Diagnostic>, probe: bool| {
            for (k, v) in m {
                let Some(q) = program.question(k) else {
                    let mut d = Diagnostic::error(format!("there is no question `{k}`"), v.span());
                    if let Some(best) = closest(k, program.questions.iter().map(|q| q.id.as_str())) {
                        d = d.with_hint(format!("did you mean `{best}`?"));
                    }
                    errors.push(d);
                    continue;
                };
                match AnswerValue::from_toml(v.get_ref()) {
                    Ok(a) => {
                        // Check the answer now, so a typo in a test is a load error.
                        // (A test that expects `invalid_answer` keeps its bad answer.)
                        let app = crate::answers::Application {
                            id: None,
                            submitted_on: program.opens,
                            answers: Answers([(q.id.clone(), a.clone())].into_iter().collect()),
                        };
                        if probe && let Err(e) = program.prepare(&app) {
                            errors.push(Diagnostic::error(e.message, v.span()));
                            continue;
                        }
                        into.0.insert(k.clone(), a);
                    }
                    Err(m) => errors.push(Diagnostic::error(m, v.span())),
                }
            }
        };
    if let Some(d) = &raw.test_defaults {
        convert(&d.answers, &mut base, errors, true);
    }
    let mut names_seen: HashMap<&str, Span> = HashMap::new();
    for t in &raw.tests {
        let tr = t.get_ref();
        if let Some(prev) = names_seen.insert(tr.name.as_str(), t.span()) {
            errors.push(
                Diagnostic::error(format!("two tests are named \"{}\"", tr.name), t.span())
                    .with_related(prev, "first here"),
            );
        }
        let mut answers = base.clone();
        for u in &tr.unset {
            if answers.0.shift_remove(u).is_none() {
                errors.push(Diagnostic::error(
                    format!("`unset` names `{u}`, which the defaults do not answer"),
                    t.span(),
                ));
            }
        }
        let expects_invalid = tr.expect.get_ref().error.as_deref() == Some("invalid_answer");
        convert(&tr.answers, &mut answers, errors, !expects_invalid);
        let date = match tr.submitted_on.as_ref().or(base_date) {
            Some(d) => match toml_date(d.get_ref()) {
                Ok(x) => x,
                Err(m) => {
                    errors.push(Diagnostic::error(m, d.span()));
                    continue;
                }
            },
            None => {
                errors.push(Diagnostic::error(
                    format!("test \"{}\" has no `submitted_on` (nor does [test_defaults])", tr.name),
                    t.span(),
                ));
                continue;
            }
        };
        let ex = tr.expect.get_ref();
        let espan = tr.expect.span();
        let mut expect = Expectation { eligible: ex.eligible, ..Expectation::default() };
        if let Some(a) = &ex.amount {
            match Money::parse(a) {
                Ok(m) => expect.amount = Some(m),
                Err(e) => errors.push(Diagnostic::error(e.to_string(), espan.clone())),
            }
        }
        for (list, slot) in [(&ex.failed, &mut expect.failed), (&ex.undetermined, &mut expect.undetermined)] {
            if let Some(names) = list {
                for n in names {
                    if !program.rules.iter().any(|r| &r.name == n) {
                        let mut d = Diagnostic::error(format!("there is no rule `{n}`"), espan.clone());
                        if let Some(best) = closest(n, program.rules.iter().map(|r| r.name.as_str())) {
                            d = d.with_hint(format!("did you mean `{best}`?"));
                        }
                        errors.push(d);
                    }
                }
                *slot = Some(names.clone());
            }
        }
        if let Some(code) = &ex.error {
            match ErrorCode::parse(code) {
                Some(c) => expect.error = Some(c),
                None => {
                    errors.push(Diagnostic::error(format!("unknown error code `{code}`"), espan.clone()).with_hint(
                        format!("one of: {}", ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")),
                    ))
                }
            }
        }
        if *ex == crate::raw::RawExpect::default() {
            errors.push(
                Diagnostic::error(format!("test \"{}\" expects nothing", tr.name), espan.clone())
                    .with_hint("give `eligible`, `amount`, `failed` or `error`"),
            );
        }
        out.push(TestCase { name: tr.name.clone(), span: t.span(), submitted_on: date, answers, expect });
    }
    out
}
