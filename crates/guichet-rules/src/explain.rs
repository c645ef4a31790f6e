//! Plain-language explanations in French and English, and a JSON form.

use crate::Lang;
use crate::eval::{Evaluation, NamedValue, Outcome, Requirement, Status};
use crate::ir::Cmp;
use crate::program::{Program, Ref};
use crate::syntax::{BinOp, Expr, ExprKind, Lit};
use crate::value::{Type, Value};
use serde_json::json;

impl Program {
    /// The label of a reference, in a language.
    pub fn ref_label(&self, r: &Ref, lang: Lang) -> String {
        match r {
            Ref::Question(q) => self.questions[*q].label.get(lang).to_owned(),
            Ref::Field(q, f) => {
                let field = match (f.as_str(), lang) {
                    ("province", Lang::Fr) => "province",
                    ("province", Lang::En) => "province",
                    ("city", Lang::Fr) => "ville",
                    ("city", Lang::En) => "city",
                    ("postal_code", Lang::Fr) => "code postal",
                    ("postal_code", Lang::En) => "postal code",
                    (_, Lang::Fr) => "adresse",
                    (_, Lang::En) => "street address",
                };
                format!("{} ({field})", self.questions[*q].label.get(lang))
            }
            Ref::Derived(d) => self.derived[*d].label.get(lang).to_owned(),
            Ref::Param(p) => {
                let par = &self.parameters[*p];
                par.label.as_ref().map(|l| l.get(lang).to_owned()).unwrap_or_else(|| par.name.clone())
            }
            Ref::RefDate => match lang {
                Lang::Fr => "date de la demande".into(),
                Lang::En => "application date".into(),
            },
        }
    }

    /// The machine name of a reference (`monthly_rent`, `home.province`).
    pub fn ref_name(&self, r: &Ref) -> String {
        match r {
            Ref::Question(q) => self.questions[*q].id.clone(),
            Ref::Field(q, f) => format!("{}.{f}", self.questions[*q].id),
            Ref::Derived(d) => self.derived[*d].name.clone(),
            Ref::Param(p) => self.parameters[*p].name.clone(),
            Ref::RefDate => "submitted_on".into(),
        }
    }

    /// A value as a person reads it: `1 500,00 $`, `1er mai 2020`, `oui`,
    /// the label of a choice.
    pub fn show(&self, ty: Type, v: &Value, lang: Lang) -> String {
        match (v, lang) {
            (Value::Bool(b), Lang::Fr) => if *b { "oui" } else { "non" }.into(),
            (Value::Bool(b), Lang::En) => if *b { "yes" } else { "no" }.into(),
            (Value::Integer(i), _) => i.to_string(),
            (Value::Money(m), Lang::Fr) => m.to_fr(),
            (Value::Money(m), Lang::En) => m.to_en(),
            (Value::Percent(p), _) => p.to_string(),
            (Value::Date(d), Lang::Fr) => d.to_fr(),
            (Value::Date(d), Lang::En) => d.to_en(),
            (Value::Text(t), _) => t.to_string(),
            (Value::Choice(c), _) => self.choice_label(ty, i64::from(*c), lang),
            (Value::Present, Lang::Fr) => "fourni".into(),
            (Value::Present, Lang::En) => "provided".into(),
        }
    }

    fn choice_label(&self, ty: Type, lane: i64, lang: Lang) -> String {
        let Type::Choice(set) = ty else {
            return lane.to_string();
        };
        let value = self.choice_value(ty, lane).unwrap_or("?");
        if set == 0 {
            return value.to_owned();
        }
        self.questions
            .iter()
            .find(|q| q.choice_set == set)
            .and_then(|q| q.options.iter().find(|o| o.value == value))
            .map(|o| o.label.get(lang).to_owned())
            .unwrap_or_else(|| value.to_owned())
    }

    fn show_named(&self, nv: &NamedValue, lang: Lang) -> String {
        let v = match &nv.value {
            Some(v) => self.show(nv.ty, v, lang),
            None => match lang {
                Lang::Fr => "sans réponse".into(),
                Lang::En => "no answer".into(),
            },
        };
        format!("{} : {v}", self.ref_label(&nv.name, lang)).replace(" : ", if lang == Lang::Fr { " : " } else { ": " })
    }

    fn show_requirement(&self, r: &Requirement, lang: Lang) -> String {
        match r {
            Requirement::Compare { target, ty, cmp, value } => {
                let label = self.ref_label(target, lang);
                let v = self.show(*ty, value, lang);
                let dated = *ty == Type::Date;
                if matches!(cmp, Cmp::Eq) && matches!(ty, Type::Bool | Type::Choice(_)) {
                    return match lang {
                        Lang::Fr => format!("il aurait fallu : {label} : {v}"),
                        Lang::En => format!("it would have needed: {label}: {v}"),
                    };
                }
                let phrase = match (lang, cmp, dated) {
                    (Lang::Fr, Cmp::Lt, true) => "avant le",
                    (Lang::Fr, Cmp::Le, true) => "au plus tard le",
                    (Lang::Fr, Cmp::Gt, true) => "après le",
                    (Lang::Fr, Cmp::Ge, true) => "au plus tôt le",
                    (Lang::Fr, Cmp::Lt, false) => "moins de",
                    (Lang::Fr, Cmp::Le, false) => "au plus",
                    (Lang::Fr, Cmp::Gt, false) => "plus de",
                    (Lang::Fr, Cmp::Ge, false) => "au moins",
                    (Lang::Fr, Cmp::Eq, _) => "égal à",
                    (Lang::Fr, Cmp::Ne, _) => "différent de",
                    (Lang::En, Cmp::Lt, true) => "before",
                    (Lang::En, Cmp::Le, true) => "on or before",
                    (Lang::En, Cmp::Gt, true) => "after",
                    (Lang::En, Cmp::Ge, true) => "on or after",
                    (Lang::En, Cmp::Lt, false) => "less than",
                    (Lang::En, Cmp::Le, false) => "at most",
                    (Lang::En, Cmp::Gt, false) => "more than",
                    (Lang::En, Cmp::Ge, false) => "at least",
                    (Lang::En, Cmp::Eq, _) => "equal to",
                    (Lang::En, Cmp::Ne, _) => "other than",
                };
                match lang {
                    Lang::Fr => format!("il aurait fallu : {label} {phrase} {v}"),
                    Lang::En => format!("it would have needed: {label} {phrase} {v}"),
                }
            }
            Requirement::OneOf { target, ty, values } => {
                let opts: Vec<String> = values.iter().map(|v| self.choice_label(*ty, *v, lang)).collect();
                match lang {
                    Lang::Fr => format!("il aurait fallu : {} parmi {}", self.ref_label(target, lang), opts.join(", ")),
                    Lang::En => {
                        format!("it would have needed: {} one of {}", self.ref_label(target, lang), opts.join(", "))
                    }
                }
            }
            Requirement::Provide { target } => match lang {
                Lang::Fr => format!("il aurait fallu fournir : {}", self.ref_label(target, lang)),
                Lang::En => format!("it would have needed: {} provided", self.ref_label(target, lang)),
            },
        }
    }

    /// The amount's formula with the values substituted.
    fn formula(&self, e: &Expr, ev: &Evaluation, lang: Lang, prec: u8) -> String {
        let named = |name: &str| -> Option<String> {
            let r = if let Some(q) = self.questions.iter().position(|q| q.id == name) {
                (self.questions[q].node, self.questions[q].ty)
            } else if let Some(d) = self.derived.iter().find(|d| d.name == name) {
                (d.node, d.ty)
            } else if let Some(p) = self.parameters.iter().find(|p| p.name == name) {
                return self.parameter_at(&p.name, ev.submitted_on).map(|v| self.show(p.ty, &v, lang));
            } else if name == "submitted_on" {
                return Some(self.show(Type::Date, &Value::Date(ev.submitted_on), lang));
            } else {
                return None;
            };
            let c = ev.cells.get(r.0 as usize)?;
            Some(match c.as_known() {
                Some(v) => self.show(r.1, &self.value_of(r.1, v), lang),
                None => "—".into(),
            })
        };
        let (s, p) = match &e.kind {
            ExprKind::Lit(Lit::Int(i)) => (i.to_string(), 9),
            ExprKind::Lit(Lit::Money(m)) => (if lang == Lang::Fr { m.to_fr() } else { m.to_en() }, 9),
            ExprKind::Lit(Lit::Percent(x)) => (x.to_string(), 9),
            ExprKind::Lit(Lit::Date(d)) => (if lang == Lang::Fr { d.to_fr() } else { d.to_en() }, 9),
            ExprKind::Lit(Lit::Str(s)) => {
                // A choice literal reads as its option's label.
                let label = self
                    .questions
                    .iter()
                    .flat_map(|q| q.options.iter())
                    .find(|o| &o.value == s)
                    .map(|o| o.label.get(lang).to_owned());
                (label.unwrap_or_else(|| s.clone()), 9)
            }
            ExprKind::Lit(Lit::Bool(b)) => (self.show(Type::Bool, &Value::Bool(*b), lang), 9),
            ExprKind::Name(n) => (named(n).unwrap_or_else(|| n.clone()), 9),
            ExprKind::Field(_, f, _) => (f.clone(), 9),
            ExprKind::Neg(a) => (format!("-{}", self.formula(a, ev, lang, 8)), 8),
            ExprKind::Not(a) => {
                (format!("{} {}", if lang == Lang::Fr { "non" } else { "not" }, self.formula(a, ev, lang, 3)), 3)
            }
            ExprKind::Binary(op, a, b) => {
                let (p, sym) = match op {
                    BinOp::Or => (1, if lang == Lang::Fr { "ou" } else { "or" }),
                    BinOp::And => (2, if lang == Lang::Fr { "et" } else { "and" }),
                    BinOp::Eq => (4, "="),
                    BinOp::Ne => (4, "≠"),
                    BinOp::Lt => (4, "<"),
                    BinOp::Le => (4, "≤"),
                    BinOp::Gt => (4, ">"),
                    BinOp::Ge => (4, "≥"),
                    BinOp::Add => (5, "+"),
                    BinOp::Sub => (5, "−"),
                    BinOp::Mul => (6, "×"),
                    BinOp::Div => (6, "÷"),
                };
                (format!("{} {sym} {}", self.formula(a, ev, lang, p), self.formula(b, ev, lang, p + 1)), p)
            }
            ExprKind::IsNone(a, neg) => {
                let w = match (lang, neg) {
                    (Lang::Fr, false) => "sans réponse",
                    (Lang::Fr, true) => "répondu",
                    (Lang::En, false) => "unanswered",
                    (Lang::En, true) => "answered",
                };
                (format!("{} {w}", self.formula(a, ev, lang, 4)), 4)
            }
            ExprKind::In(a, items) => {
                let xs: Vec<String> = items.iter().map(|i| self.formula(i, ev, lang, 0)).collect();
                (format!("{} ∈ {{{}}}", self.formula(a, ev, lang, 4), xs.join(", ")), 4)
            }
            ExprKind::If(c, a, b) => {
                let (si, sa, sb) = if lang == Lang::Fr { ("si", "alors", "sinon") } else { ("if", "then", "else") };
                (
                    format!(
                        "{si} {} {sa} {} {sb} {}",
                        self.formula(c, ev, lang, 0),
                        self.formula(a, ev, lang, 0),
                        self.formula(b, ev, lang, 0)
                    ),
                    0,
                )
            }
            ExprKind::Call(f, _, args) => {
                let xs: Vec<String> = args.iter().map(|i| self.formula(i, ev, lang, 0)).collect();
                (format!("{f}({})", xs.join(if lang == Lang::Fr { " ; " } else { ", " })), 9)
            }
        };
        if p < prec { format!("({s})") } else { s }
    }

    /// A plain-language explanation of an evaluation.
    pub fn explain(&self, ev: &Evaluation, lang: Lang) -> String {
        let fr = lang == Lang::Fr;
        // French puts a space before the semicolon; English does not.
        let sep = if fr { " ; " } else { "; " };
        let mut out = String::new();
        out.push_str(self.title.get(lang));
        out.push('\n');
        out.push_str(&if fr {
            format!("Demande du {} — version du programme {}\n\n", ev.submitted_on.to_fr(), &ev.version[..12])
        } else {
            format!("Application of {} — program version {}\n\n", ev.submitted_on.to_en(), &ev.version[..12])
        });
        let verdict = match (ev.status, fr) {
            (Status::Eligible, true) => "Résultat : admissible",
            (Status::Eligible, false) => "Result: eligible",
            (Status::NotEligible, true) => "Résultat : non admissible",
            (Status::NotEligible, false) => "Result: not eligible",
            (Status::Undetermined, true) => "Résultat : à déterminer (des réponses manquent)",
            (Status::Undetermined, false) => "Result: undetermined (answers are missing)",
        };
        out.push_str(verdict);
        if let Some(m) = ev.amount {
            out.push_str(&if fr {
                format!(" — {} : {}", self.amount_label(lang), m.to_fr())
            } else {
                format!(" — {}: {}", self.amount_label(lang), m.to_en())
            });
        }
        out.push_str("\n\n");
        out.push_str(if fr { "Conditions :\n" } else { "Conditions:\n" });
        for r in &ev.rules {
            let rule = &self.rules[r.rule];
            let mark = match r.outcome {
                Outcome::Pass => "✓",
                Outcome::Fail => "✗",
                Outcome::Unknown => "?",
            };
            out.push_str(&format!("  {mark} {}", rule.label.get(lang)));
            if let Some(n) = &rule.norm {
                out.push_str(&format!(" [{n}]"));
            }
            out.push('\n');
            if r.outcome == Outcome::Fail {
                out.push_str(&format!("      {}\n", rule.fails.get(lang)));
            }
            let used: Vec<String> = r.used.iter().map(|u| self.show_named(u, lang)).collect();
            if !used.is_empty() {
                out.push_str(&format!(
                    "      {} {}\n",
                    if fr { "Valeurs utilisées :" } else { "Values used:" },
                    used.join(sep)
                ));
            }
            for req in &r.would_pass {
                out.push_str(&format!("      → {}\n", self.show_requirement(req, lang)));
            }
            if !r.missing.is_empty() {
                let m: Vec<&str> = r.missing.iter().map(|q| self.questions[*q].label.get(lang)).collect();
                out.push_str(&format!(
                    "      {} {}\n",
                    if fr { "Réponses manquantes :" } else { "Missing answers:" },
                    m.join(sep)
                ));
            }
        }
        if let (Some(a), Some(m)) = (&self.amount, ev.amount) {
            out.push('\n');
            let f = self.formula(&a.expr, ev, lang, 0);
            let m = if fr { m.to_fr() } else { m.to_en() };
            out.push_str(&format!("{} : {f} = {m}\n", a.label.get(lang)).replace(" : ", if fr { " : " } else { ": " }));
            // Derived values behind the amount, each with its own formula.
            let mut todo: Vec<usize> = ev
                .amount_used
                .iter()
                .filter_map(|u| if let Ref::Derived(d) = u.name { Some(d) } else { None })
                .collect();
            let mut shown = Vec::new();
            while let Some(d) = todo.pop() {
                if shown.contains(&d) {
                    continue;
                }
                shown.push(d);
                let dv = &self.derived[d];
                let value = ev
                    .cells
                    .get(dv.node as usize)
                    .and_then(|c| c.as_known())
                    .map(|v| self.show(dv.ty, &self.value_of(dv.ty, v), lang))
                    .unwrap_or_else(|| "—".into());
                out.push_str(&format!(
                    "  {} = {} = {value}\n",
                    dv.label.get(lang),
                    self.formula(&dv.expr, ev, lang, 0)
                ));
                let mut ns = Vec::new();
                crate::compile::names(&dv.expr, &mut ns);
                todo.extend(ns.iter().filter_map(|(n, _)| self.derived.iter().position(|x| &x.name == n)));
            }
            let used: Vec<String> = ev.amount_used.iter().map(|u| self.show_named(u, lang)).collect();
            if !used.is_empty() {
                out.push_str(&format!(
                    "  {} {}\n",
                    if fr { "Valeurs utilisées :" } else { "Values used:" },
                    used.join(sep)
                ));
            }
        }
        out
    }

    fn amount_label(&self, lang: Lang) -> String {
        self.amount
            .as_ref()
            .map(|a| a.label.get(lang).to_owned())
            .unwrap_or_else(|| if lang == Lang::Fr { "Montant".into() } else { "Amount".into() })
    }

    fn named_json(&self, nv: &NamedValue, lang: Lang) -> serde_json::Value {
        json!({
            "name": self.ref_name(&nv.name),
            "label": self.ref_label(&nv.name, lang),
            "value": nv.value.as_ref().map(|v| value_json(self, nv.ty, v)),
            "shown": nv.value.as_ref().map(|v| self.show(nv.ty, v, lang)),
        })
    }

    /// The evaluation as JSON, with texts in one language.
    pub fn evaluation_json(&self, ev: &Evaluation, lang: Lang) -> serde_json::Value {
        let rules: Vec<serde_json::Value> = ev
            .rules
            .iter()
            .map(|r| {
                let rule = &self.rules[r.rule];
                json!({
                    "rule": rule.name,
                    "label": rule.label.get(lang),
                    "outcome": r.outcome,
                    "reason": (r.outcome == Outcome::Fail).then(|| rule.fails.get(lang)),
                    "norm": rule.norm,
                    "used": r.used.iter().map(|u| self.named_json(u, lang)).collect::<Vec<_>>(),
                    "would_pass": r.would_pass.iter().map(|q| self.show_requirement(q, lang)).collect::<Vec<_>>(),
                    "missing": r.missing.iter().map(|q| self.questions[*q].id.clone()).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "program": ev.program_id,
            "version": &*ev.version,
            "submitted_on": ev.submitted_on.to_string(),
            "status": ev.status,
            "eligible": ev.eligible(),
            "amount": ev.amount.map(|m| m.to_string()),
            "rules": rules,
            "amount_used": ev.amount_used.iter().map(|u| self.named_json(u, lang)).collect::<Vec<_>>(),
            "explanation": self.explain(ev, lang),
        })
    }
}

fn value_json(p: &Program, ty: Type, v: &Value) -> serde_json::Value {
    match v {
        Value::Bool(b) => json!(b),
        Value::Integer(i) => json!(i),
        Value::Money(m) => json!(m.to_string()),
        Value::Percent(x) => json!(x.to_string()),
        Value::Date(d) => json!(d.to_string()),
        Value::Text(t) => json!(&**t),
        Value::Choice(c) => json!(p.choice_value(ty, i64::from(*c))),
        Value::Present => json!(true),
    }
}
