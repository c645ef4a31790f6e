//! The checked, compiled program: what the rest of guichet works with.

use crate::answers::Answers;
use crate::ir::{Node, NodeId, Timeline};
use crate::raw::{AgreementKind, Bilingual, Decision, PayeeKind, QuestionType};
use crate::syntax::{Expr, Span};
use crate::value::{Date, Money, Type, Value};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Program {
    pub id: String,
    pub title: Bilingual,
    pub summary: Option<Bilingual>,
    pub organization: Option<String>,
    pub opens: Date,
    pub closes: Date,
    pub decision: Decision,
    /// SHA-256 (hex) of the canonical form of the file: comments and layout
    /// do not change it; any change of meaning or order does.
    pub version: Arc<str>,
    pub sections: Vec<Section>,
    pub questions: Vec<Question>,
    pub parameters: Vec<Parameter>,
    pub derived: Vec<Derived>,
    pub rules: Vec<Rule>,
    pub amount: Option<Amount>,
    pub payee: Option<Payee>,
    pub agreement: Option<Agreement>,
    pub tests: Vec<TestCase>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) timelines: Vec<Timeline>,
    pub(crate) n_slots: usize,
    pub(crate) choice_sets: Vec<Vec<String>>,
    pub(crate) texts: HashMap<String, i64>,
    pub(crate) text_list: Vec<String>,
    /// Question ids by length, with their index: on the hot path of
    /// `prepare` a length check and one or two comparisons beat hashing.
    pub(crate) question_index: Vec<Vec<(Box<str>, usize)>>,
    /// Nodes the columnar evaluator must compute (see `reach::live_nodes`).
    pub(crate) live: Vec<bool>,
    /// Slots whose value (not only whether it was answered) an expression
    /// may read: see `Batch`.
    pub(crate) value_slots: Vec<bool>,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub id: String,
    pub title: Bilingual,
    pub help: Option<Bilingual>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ChoiceOption {
    pub value: String,
    pub label: Bilingual,
}

#[derive(Debug, Clone)]
pub struct Question {
    pub id: String,
    pub kind: QuestionType,
    pub label: Bilingual,
    pub help: Option<Bilingual>,
    pub section: Option<String>,
    /// The condition as written, if any.
    pub ask_if: Option<String>,
    pub optional: bool,
    /// Asked for the case worker; no rule is expected to read it.
    pub informational: bool,
    pub min: Option<Value>,
    pub max: Option<Value>,
    pub options: Vec<ChoiceOption>,
    pub accept: Vec<String>,
    pub span: Span,
    pub(crate) slot: u32,
    pub(crate) cond: Option<NodeId>,
    /// The node that reads this question's value (gated by its condition).
    pub(crate) node: NodeId,
    /// Address fields: `line1`, `city`, `province`, `postal_code`.
    pub(crate) fields: Vec<(String, NodeId, Type)>,
    pub(crate) choice_set: u32,
    /// The type of the question as a whole (an address is opaque).
    pub(crate) ty: Type,
}

impl Question {
    /// Number of answer slots (an address has four).
    pub fn slots(&self) -> u32 {
        if self.kind == QuestionType::Address { 4 } else { 1 }
    }
}

#[derive(Debug, Clone)]
pub struct Parameter {
    pub name: String,
    pub label: Option<Bilingual>,
    pub ty: Type,
    pub values: Vec<(Date, Value)>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Derived {
    pub name: String,
    pub label: Bilingual,
    pub ty: Type,
    pub source: String,
    pub(crate) node: NodeId,
    pub(crate) expr: Expr,
}

/// A named reference an expression reads, for "the values it used".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Question(usize),
    Field(usize, String),
    Derived(usize),
    Param(usize),
    RefDate,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub label: Bilingual,
    pub fails: Bilingual,
    pub norm: Option<String>,
    pub source: String,
    pub span: Span,
    pub(crate) node: NodeId,
    pub(crate) refs: Vec<(Ref, NodeId, Type)>,
}

#[derive(Debug, Clone)]
pub struct Amount {
    pub label: Bilingual,
    pub source: String,
    pub(crate) node: NodeId,
    pub(crate) expr: Expr,
    pub(crate) refs: Vec<(Ref, NodeId, Type)>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Payee {
    pub kind: PayeeKind,
    pub role: Option<Bilingual>,
    pub name: Option<String>,
    pub address: Option<String>,
    pub email: Option<String>,
    pub bank_account: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Agreement {
    pub kind: AgreementKind,
    pub template: String,
    pub repay_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    pub span: Span,
    pub submitted_on: Date,
    pub answers: Answers,
    pub expect: Expectation,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectation {
    pub eligible: Option<bool>,
    pub amount: Option<Money>,
    pub failed: Option<Vec<String>>,
    pub undetermined: Option<Vec<String>>,
    pub error: Option<crate::ErrorCode>,
}

impl Program {
    pub fn question(&self, id: &str) -> Option<&Question> {
        let (_, i) = self.question_index.get(id.len())?.iter().find(|(n, _)| &**n == id)?;
        self.questions.get(*i)
    }

    /// The documents the program asks for: its file questions.
    pub fn documents(&self) -> impl Iterator<Item = &Question> {
        self.questions.iter().filter(|q| q.kind == QuestionType::File)
    }

    /// The value of a parameter in force on a date.
    pub fn parameter_at(&self, name: &str, date: Date) -> Option<Value> {
        let p = self.parameters.iter().find(|p| p.name == name)?;
        p.values.iter().rev().find(|(d, _)| *d <= date).map(|(_, v)| v.clone())
    }

    pub(crate) fn text_id(&self, s: &str) -> i64 {
        if self.texts.is_empty() {
            return -1;
        }
        self.texts.get(s).copied().unwrap_or(-1)
    }

    /// Turns a lane back into a value of the given type.
    pub(crate) fn value_of(&self, ty: Type, lane: i64) -> Value {
        match ty {
            Type::Bool => Value::Bool(lane != 0),
            Type::Integer => Value::Integer(lane),
            Type::Money => Value::Money(Money(lane)),
            Type::Percent => Value::Percent(crate::value::Percent(lane)),
            Type::Date => Value::Date(Date(i32::try_from(lane).unwrap_or(0))),
            Type::Choice(_) => Value::Choice(u32::try_from(lane).unwrap_or(u32::MAX)),
            Type::Text => Value::Text(Arc::from(
                usize::try_from(lane).ok().and_then(|i| self.text_list.get(i)).map(String::as_str).unwrap_or("…"),
            )),
            Type::Opaque => Value::Present,
        }
    }

    /// The option value (`"hlm"`) of a choice lane.
    pub fn choice_value(&self, ty: Type, lane: i64) -> Option<&str> {
        match ty {
            Type::Choice(set) => self
                .choice_sets
                .get(set as usize)
                .and_then(|s| usize::try_from(lane).ok().and_then(|i| s.get(i)))
                .map(String::as_str),
            _ => None,
        }
    }

    /// Whether two programs read answers identically (same questions,
    /// types, options, bounds, slots and text table), so one encoding of
    /// an application serves both.
    pub fn same_inputs(&self, other: &Program) -> bool {
        self.n_slots == other.n_slots
            && self.texts == other.texts
            && self.questions.len() == other.questions.len()
            && self.questions.iter().zip(&other.questions).all(|(a, b)| {
                a.id == b.id
                    && a.kind == b.kind
                    && a.slot == b.slot
                    && a.min == b.min
                    && a.max == b.max
                    && a.options.iter().map(|o| &o.value).eq(b.options.iter().map(|o| &o.value))
            })
    }

    /// Number of compiled expression nodes (for tests and benchmarks).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

/// Canadian provinces and territories: the option set of address provinces.
pub const PROVINCES: [&str; 13] = ["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"];

#[cfg(test)]
mod sharing {
    const RENT_LOAN: &str = include_str!("../../../programs/shq-pret-loyer-2020.toml");

    /// The rent loan program with one more rule whose condition is `when`.
    fn with_rule(when: &str) -> usize {
        let extra = format!(
            "[rules.extra]\nlabel = {{ fr = \"x\", en = \"x\" }}\nwhen = '{when}'\nfails = {{ fr = \"x\", en = \"x\" }}\n\n[amount]"
        );
        let src = RENT_LOAN.replacen("[amount]", &extra, 1);
        crate::load(&src).expect("loads").program.node_count()
    }

    #[test]
    fn an_expression_written_twice_is_one_node() {
        // `told_landlord == true` is already the condition of
        // landlord_informed_first; `told_landlord == false` is new.
        let repeated = with_rule("told_landlord == true");
        let fresh = with_rule("told_landlord == false");
        assert!(repeated < fresh, "repeated condition: {repeated} nodes, fresh condition: {fresh} nodes");
    }
}
