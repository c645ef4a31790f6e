//! The expression language: tokens, syntax tree and a Pratt parser.
//!
//! Spans are byte offsets into the expression text; the loader shifts them
//! to offsets in the program file so diagnostics point at the right column.

use crate::value::{Date, LiteralError, Money, Percent};
use std::ops::Range;

pub type Span = Range<usize>;

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Int(i64),
    Money(Money),
    Percent(Percent),
    Date(Date),
    Str(String),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "and",
            BinOp::Or => "or",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Lit(Lit),
    Name(String),
    /// `home.province`: the span of the field name is kept for errors.
    Field(Box<Expr>, String, Span),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `x is none` (negated: `x is not none`).
    IsNone(Box<Expr>, bool),
    In(Box<Expr>, Vec<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Call(String, Span, Vec<Expr>),
}

/// A syntax error with the span it concerns and an optional hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub span: Span,
    pub hint: Option<String>,
}

impl SyntaxError {
    fn new(message: impl Into<String>, span: Span) -> Self {
        SyntaxError { message: message.into(), span, hint: None }
    }
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(Lit),
    Ident(String),
    And,
    Or,
    Not,
    If,
    Then,
    Else,
    Is,
    None,
    In,
    Op(BinOp),
    Minus,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Eof,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Lit(_) => "a value".into(),
        Tok::Ident(n) => format!("`{n}`"),
        Tok::And => "`and`".into(),
        Tok::Or => "`or`".into(),
        Tok::Not => "`not`".into(),
        Tok::If => "`if`".into(),
        Tok::Then => "`then`".into(),
        Tok::Else => "`else`".into(),
        Tok::Is => "`is`".into(),
        Tok::None => "`none`".into(),
        Tok::In => "`in`".into(),
        Tok::Op(op) => format!("`{}`", op.symbol()),
        Tok::Minus => "`-`".into(),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::LBracket => "`[`".into(),
        Tok::RBracket => "`]`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Dot => "`.`".into(),
        Tok::Eof => "the end of the expression".into(),
    }
}

fn lex(src: &str) -> Result<Vec<(Tok, Span)>, SyntaxError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            // Date: exactly dddd-dd-dd.
            if i + 10 <= b.len()
                && b[i..i + 10].iter().enumerate().all(
                    |(k, ch)| {
                        if k == 4 || k == 7 { *ch == b'-' } else { ch.is_ascii_digit() }
                    },
                )
                && !b.get(i + 10).is_some_and(|ch| ch.is_ascii_alphanumeric())
            {
                let text = &src[i..i + 10];
                let d = Date::parse(text).map_err(|e| SyntaxError::new(e.to_string(), i..i + 10))?;
                out.push((Tok::Lit(Lit::Date(d)), i..i + 10));
                i += 10;
                continue;
            }
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            let num: String = src[start..i].chars().filter(|c| *c != '_').collect();
            // A unit may follow after spaces.
            let mut j = i;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            let unit = b.get(j).copied();
            match unit {
                Some(b'$') => {
                    let m = Money::parse(&num).map_err(|e| SyntaxError::new(e.to_string(), start..j + 1))?;
                    out.push((Tok::Lit(Lit::Money(m)), start..j + 1));
                    i = j + 1;
                }
                Some(b'%') => {
                    let p = Percent::parse(&num).map_err(|e| SyntaxError::new(e.to_string(), start..j + 1))?;
                    out.push((Tok::Lit(Lit::Percent(p)), start..j + 1));
                    i = j + 1;
                }
                _ => {
                    if num.contains('.') {
                        return Err(SyntaxError::new(format!("`{num}` has decimals but no unit"), start..i)
                            .hint(format!("write `{num} $` for money or `{num} %` for a percentage")));
                    }
                    let v: i64 = num
                        .parse()
                        .map_err(|_| SyntaxError::new(LiteralError::Range(num.clone()).to_string(), start..i))?;
                    out.push((Tok::Lit(Lit::Int(v)), start..i));
                }
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = &src[start..i];
            let tok = match word {
                "and" => Tok::And,
                "or" => Tok::Or,
                "not" => Tok::Not,
                "if" => Tok::If,
                "then" => Tok::Then,
                "else" => Tok::Else,
                "is" => Tok::Is,
                "none" => Tok::None,
                "in" => Tok::In,
                "true" => Tok::Lit(Lit::Bool(true)),
                "false" => Tok::Lit(Lit::Bool(false)),
                _ => Tok::Ident(word.to_owned()),
            };
            out.push((tok, start..i));
            continue;
        }
        if c == b'"' {
            i += 1;
            let mut s = String::new();
            loop {
                match src[i..].chars().next() {
                    None => {
                        return Err(SyntaxError::new("this text is never closed", start..src.len())
                            .hint("add the closing `\"`"));
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let next = src[i + 1..].chars().next();
                        match next {
                            Some(ch @ ('"' | '\\')) => {
                                s.push(ch);
                                i += 2;
                            }
                            _ => {
                                return Err(SyntaxError::new("unknown escape in text", i..i + 1)
                                    .hint("only `\\\"` and `\\\\` are allowed"));
                            }
                        }
                    }
                    Some(ch) => {
                        s.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            out.push((Tok::Lit(Lit::Str(s)), start..i));
            continue;
        }
        let two = src.get(i..i + 2).unwrap_or("");
        let (tok, len) = match (c, two) {
            (_, "==") => (Tok::Op(BinOp::Eq), 2),
            (_, "!=") => (Tok::Op(BinOp::Ne), 2),
            (_, "<=") => (Tok::Op(BinOp::Le), 2),
            (_, ">=") => (Tok::Op(BinOp::Ge), 2),
            (_, "&&") => {
                return Err(SyntaxError::new("`&&` is not part of the language", i..i + 2).hint("write `and`"));
            }
            (_, "||") => {
                return Err(SyntaxError::new("`||` is not part of the language", i..i + 2).hint("write `or`"));
            }
            (b'<', _) => (Tok::Op(BinOp::Lt), 1),
            (b'>', _) => (Tok::Op(BinOp::Gt), 1),
            (b'+', _) => (Tok::Op(BinOp::Add), 1),
            (b'-', _) => (Tok::Minus, 1),
            (b'*', _) => (Tok::Op(BinOp::Mul), 1),
            (b'/', _) => (Tok::Op(BinOp::Div), 1),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'[', _) => (Tok::LBracket, 1),
            (b']', _) => (Tok::RBracket, 1),
            (b',', _) => (Tok::Comma, 1),
            (b'.', _) => (Tok::Dot, 1),
            (b'=', _) => {
                return Err(SyntaxError::new("`=` alone is not a comparison", i..i + 1).hint("write `==` to compare"));
            }
            (b'!', _) => {
                return Err(SyntaxError::new("`!` is not part of the language", i..i + 1).hint("write `not`"));
            }
            (b'\'', _) => {
                return Err(SyntaxError::new("text goes between double quotes", i..i + 1)
                    .hint("write \"hlm\", not 'hlm' (in TOML, wrap the whole expression in single quotes)"));
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(SyntaxError::new(format!("unexpected character `{ch}`"), i..i + ch.len_utf8()));
            }
        };
        out.push((tok, i..i + len));
        i += len;
    }
    out.push((Tok::Eof, src.len()..src.len()));
    Ok(out)
}

/// Nesting limit: the language has no loops, and this bounds recursion too.
const MAX_DEPTH: usize = 64;

struct Parser {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    depth: usize,
}

/// Parses one expression.
pub fn parse(src: &str) -> Result<Expr, SyntaxError> {
    let toks = lex(src)?;
    let mut p = Parser { toks, pos: 0, depth: 0 };
    let e = p.expr()?;
    let (t, span) = p.peek();
    if *t != Tok::Eof {
        let msg = format!("unexpected {} after a complete expression", describe(t));
        let span = span.clone();
        let hint = match t {
            Tok::Op(BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge) => {
                "comparisons do not chain: write `a <= b and b <= c`"
            }
            _ => "join conditions with `and` or `or`",
        };
        return Err(SyntaxError::new(msg, span).hint(hint));
    }
    Ok(e)
}

impl Parser {
    fn peek(&self) -> &(Tok, Span) {
        // The token list always ends with Eof and we never advance past it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }
    fn bump(&mut self) -> (Tok, Span) {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }
    fn expect(&mut self, want: Tok, what: &str) -> Result<Span, SyntaxError> {
        let (t, span) = self.peek().clone();
        if t == want {
            self.bump();
            Ok(span)
        } else {
            Err(SyntaxError::new(format!("expected {what}, found {}", describe(&t)), span))
        }
    }
    fn enter(&mut self, span: &Span) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(
                SyntaxError::new("expression nested too deeply", span.clone()).hint("split it into derived values")
            );
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        let span = self.peek().1.clone();
        self.enter(&span)?;
        let r = if self.peek().0 == Tok::If {
            let (_, start) = self.bump();
            let c = self.expr()?;
            self.expect(Tok::Then, "`then`")?;
            let a = self.expr()?;
            self.expect(Tok::Else, "`else` (every `if` needs one)")?;
            let b = self.expr()?;
            let span = start.start..b.span.end;
            Ok(Expr { kind: ExprKind::If(Box::new(c), Box::new(a), Box::new(b)), span })
        } else {
            self.or()
        };
        self.depth -= 1;
        r
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut l = self.and()?;
        while self.peek().0 == Tok::Or {
            self.bump();
            let r = self.and()?;
            let span = l.span.start..r.span.end;
            l = Expr { kind: ExprKind::Binary(BinOp::Or, Box::new(l), Box::new(r)), span };
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut l = self.not()?;
        while self.peek().0 == Tok::And {
            self.bump();
            let r = self.not()?;
            let span = l.span.start..r.span.end;
            l = Expr { kind: ExprKind::Binary(BinOp::And, Box::new(l), Box::new(r)), span };
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, SyntaxError> {
        if self.peek().0 == Tok::Not {
            let (_, start) = self.bump();
            self.enter(&start)?;
            let e = self.not()?;
            self.depth -= 1;
            let span = start.start..e.span.end;
            return Ok(Expr { kind: ExprKind::Not(Box::new(e)), span });
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, SyntaxError> {
        let l = self.additive()?;
        let (t, _) = self.peek().clone();
        match t {
            Tok::Op(op @ (BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge)) => {
                self.bump();
                let r = self.additive()?;
                let span = l.span.start..r.span.end;
                Ok(Expr { kind: ExprKind::Binary(op, Box::new(l), Box::new(r)), span })
            }
            Tok::Is => {
                self.bump();
                let negated = if self.peek().0 == Tok::Not {
                    self.bump();
                    true
                } else {
                    false
                };
                let end = self.expect(Tok::None, "`none` after `is`")?;
                let span = l.span.start..end.end;
                Ok(Expr { kind: ExprKind::IsNone(Box::new(l), negated), span })
            }
            Tok::In => {
                self.bump();
                self.expect(Tok::LBracket, "`[` to start the list")?;
                let mut items = Vec::new();
                loop {
                    if self.peek().0 == Tok::RBracket {
                        break;
                    }
                    items.push(self.additive()?);
                    if self.peek().0 == Tok::Comma {
                        self.bump();
                    } else {
                        break;
                    }
                }
                let end = self.expect(Tok::RBracket, "`]` to close the list")?;
                let span = l.span.start..end.end;
                if items.is_empty() {
                    return Err(SyntaxError::new("the list after `in` is empty", span));
                }
                Ok(Expr { kind: ExprKind::In(Box::new(l), items), span })
            }
            _ => Ok(l),
        }
    }

    fn additive(&mut self) -> Result<Expr, SyntaxError> {
        let mut l = self.multiplicative()?;
        loop {
            let op = match self.peek().0 {
                Tok::Op(BinOp::Add) => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => break,
            };
            self.bump();
            let r = self.multiplicative()?;
            let span = l.span.start..r.span.end;
            l = Expr { kind: ExprKind::Binary(op, Box::new(l), Box::new(r)), span };
        }
        Ok(l)
    }

    fn multiplicative(&mut self) -> Result<Expr, SyntaxError> {
        let mut l = self.unary()?;
        loop {
            let op = match self.peek().0 {
                Tok::Op(BinOp::Mul) => BinOp::Mul,
                Tok::Op(BinOp::Div) => BinOp::Div,
                _ => break,
            };
            self.bump();
            let r = self.unary()?;
            let span = l.span.start..r.span.end;
            l = Expr { kind: ExprKind::Binary(op, Box::new(l), Box::new(r)), span };
        }
        Ok(l)
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        if self.peek().0 == Tok::Minus {
            let (_, start) = self.bump();
            self.enter(&start)?;
            let e = self.unary()?;
            self.depth -= 1;
            let span = start.start..e.span.end;
            return Ok(Expr { kind: ExprKind::Neg(Box::new(e)), span });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, SyntaxError> {
        let mut e = self.primary()?;
        while self.peek().0 == Tok::Dot {
            self.bump();
            let (t, span) = self.bump();
            match t {
                Tok::Ident(name) => {
                    let full = e.span.start..span.end;
                    e = Expr { kind: ExprKind::Field(Box::new(e), name, span), span: full };
                }
                other => {
                    return Err(SyntaxError::new(
                        format!("expected a field name after `.`, found {}", describe(&other)),
                        span,
                    ));
                }
            }
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        let (t, span) = self.bump();
        match t {
            Tok::Lit(l) => Ok(Expr { kind: ExprKind::Lit(l), span }),
            Tok::Ident(name) => {
                if self.peek().0 == Tok::LParen {
                    self.bump();
                    let mut args = Vec::new();
                    if self.peek().0 != Tok::RParen {
                        loop {
                            args.push(self.expr()?);
                            if self.peek().0 == Tok::Comma {
                                self.bump();
                            } else {
                                break;
                            }
                        }
                    }
                    let end = self.expect(Tok::RParen, "`)` to close the call")?;
                    Ok(Expr { kind: ExprKind::Call(name, span.clone(), args), span: span.start..end.end })
                } else {
                    Ok(Expr { kind: ExprKind::Name(name), span })
                }
            }
            Tok::LParen => {
                let e = self.expr()?;
                let end = self.expect(Tok::RParen, "`)`")?;
                Ok(Expr { kind: e.kind, span: span.start..end.end })
            }
            Tok::If => {
                // `if` in operand position: parse as a full conditional.
                self.pos -= 1;
                self.expr()
            }
            Tok::None => Err(SyntaxError::new("`none` can only be tested with `is none`", span)
                .hint("write `x is none` or `x is not none`")),
            Tok::Eof => {
                Err(SyntaxError::new("the expression ends too early", span).hint("a value or a name is missing here"))
            }
            other => Err(SyntaxError::new(format!("expected a value or a name, found {}", describe(&other)), span)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sexp(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Lit(Lit::Int(i)) => i.to_string(),
            ExprKind::Lit(Lit::Money(m)) => m.to_string(),
            ExprKind::Lit(Lit::Percent(p)) => p.to_string(),
            ExprKind::Lit(Lit::Date(d)) => d.to_string(),
            ExprKind::Lit(Lit::Str(s)) => format!("{s:?}"),
            ExprKind::Lit(Lit::Bool(b)) => b.to_string(),
            ExprKind::Name(n) => n.clone(),
            ExprKind::Field(e, f, _) => format!("{}.{f}", sexp(e)),
            ExprKind::Neg(e) => format!("(- {})", sexp(e)),
            ExprKind::Not(e) => format!("(not {})", sexp(e)),
            ExprKind::Binary(op, a, b) => format!("({} {} {})", op.symbol(), sexp(a), sexp(b)),
            ExprKind::IsNone(e, n) => format!("({} {})", if *n { "is-not-none" } else { "is-none" }, sexp(e)),
            ExprKind::In(e, items) => {
                format!("(in {} [{}])", sexp(e), items.iter().map(sexp).collect::<Vec<_>>().join(" "))
            }
            ExprKind::If(c, a, b) => format!("(if {} {} {})", sexp(c), sexp(a), sexp(b)),
            ExprKind::Call(f, _, args) => format!("({f} {})", args.iter().map(sexp).collect::<Vec<_>>().join(" ")),
        }
    }

    fn check(src: &str, expect: &str) {
        let e = parse(src).unwrap_or_else(|err| panic!("{src}: {err:?}"));
        assert_eq!(sexp(&e), expect, "{src}");
    }

    #[test]
    fn precedence() {
        check("a + b * c", "(+ a (* b c))");
        check("a - b - c", "(- (- a b) c)");
        check("not a and b or c", "(or (and (not a) b) c)");
        check("x <= 2020-05-01 and y is none", "(and (<= x 2020-05-01) (is-none y))");
        check("min(a * 2, 1500.00 $)", "(min (* a 2) 1500.00 $)");
        check("if a then 1 else 2 + 3", "(if a 1 (+ 2 3))");
        check("home.province == \"QC\"", "(== home.province \"QC\")");
        check("t in [\"a\", \"b\"]", "(in t [\"a\" \"b\"])");
        check("12.5 % * 3", "(* 12.50 % 3)");
        check("-a * b", "(* (- a) b)");
        check("x is not none", "(is-not-none x)");
        check("1 + (if a then 2 else 3)", "(+ 1 (if a 2 3))");
        check("1_000 $", "1000.00 $");
    }

    #[test]
    fn errors_have_spans_and_hints() {
        let e = parse("a = b").expect_err("must fail");
        assert_eq!(e.span, 2..3);
        assert!(e.hint.as_deref().is_some_and(|h| h.contains("==")));
        let e = parse("a <= b <= c").expect_err("must fail");
        assert_eq!(e.span, 7..9);
        let e = parse("12.5").expect_err("must fail");
        assert!(e.hint.as_deref().is_some_and(|h| h.contains("$")));
        let e = parse("if a then b").expect_err("must fail");
        assert!(e.message.contains("else"));
        let e = parse("min(a,").expect_err("must fail");
        assert!(e.message.contains("too early"));
        assert!(parse("2020-02-30 < x").is_err());
        assert!(parse("\"open").is_err());
        let deep = "(".repeat(200) + "1" + &")".repeat(200);
        assert!(parse(&deep).expect_err("too deep").message.contains("deeply"));
    }
}
