//! Evaluating one application: eligibility, amount, every rule's outcome
//! with the values it used, and what would have made a failed rule pass.

use crate::answers::Inputs;
use crate::ir::{self, Cell, Cmp, ERROR, FaultKind, KNOWN, NodeId, Op, UNKNOWN};
use crate::program::{Program, Ref};
use crate::value::{Date, Money, Type, Value};
use crate::{ErrorCode, EvalError};
use std::sync::Arc;

/// How strictly missing answers are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A submitted application: every required question that is asked must
    /// be answered, or evaluation fails with `missing_answer`.
    #[default]
    Complete,
    /// A draft ("am I eligible?"): missing answers make rules undetermined.
    Draft,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Eligible,
    NotEligible,
    /// No rule failed, but some could not be decided for lack of answers.
    Undetermined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    Unknown,
}

/// A value an expression read, by reference.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedValue {
    pub name: Ref,
    pub ty: Type,
    pub value: Option<Value>,
}

/// A condition on one answer (or derived value) that would have made a
/// failed rule hold, all else being equal.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    Compare { target: Ref, ty: Type, cmp: Cmp, value: Value },
    OneOf { target: Ref, ty: Type, values: Vec<i64> },
    Provide { target: Ref },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleResult {
    pub rule: usize,
    pub outcome: Outcome,
    pub used: Vec<NamedValue>,
    /// Questions whose answer was missing (draft mode).
    pub missing: Vec<usize>,
    pub would_pass: Vec<Requirement>,
}

/// The full result for one application.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub program_id: String,
    /// The program version (SHA-256 of its canonical form).
    pub version: Arc<str>,
    pub submitted_on: Date,
    pub status: Status,
    /// Present when eligible.
    pub amount: Option<Money>,
    pub rules: Vec<RuleResult>,
    pub amount_used: Vec<NamedValue>,
    pub(crate) cells: Vec<Cell>,
}

impl Evaluation {
    pub fn eligible(&self) -> bool {
        self.status == Status::Eligible
    }
    pub fn failed(&self) -> impl Iterator<Item = &RuleResult> {
        self.rules.iter().filter(|r| r.outcome == Outcome::Fail)
    }
}

impl Program {
    /// Checks the window and the required answers, then evaluates every node.
    pub(crate) fn run(&self, inputs: &Inputs, mode: Mode, cells: &mut Vec<Cell>) -> Result<(), EvalError> {
        let d = inputs.submitted_on;
        if d < self.opens || d > self.closes {
            return Err(EvalError::new(
                ErrorCode::OutsideWindow,
                format!(
                    "the application date {d} is outside the program's window ({} to {}); applications are accepted from {} to {}",
                    self.opens,
                    self.closes,
                    self.opens.to_fr(),
                    self.closes.to_fr()
                ),
            )
            .field("submitted_on"));
        }
        ir::eval_scalar(&self.nodes, &inputs.slots, &self.timelines, i64::from(d.0), cells);
        if mode == Mode::Complete {
            let mut missing = Vec::new();
            for q in &self.questions {
                if q.optional {
                    continue;
                }
                let asked = q.cond.is_none_or(|k| cells[k as usize] == Cell::known(1));
                if asked && inputs.slots[q.slot as usize].s != KNOWN {
                    missing.push(q);
                }
            }
            if let Some(first) = missing.first() {
                let list: Vec<String> = missing.iter().map(|q| format!("`{}` ({})", q.id, q.label.en)).collect();
                return Err(EvalError::new(
                    ErrorCode::MissingAnswer,
                    format!("missing answer{}: {}", if list.len() > 1 { "s" } else { "" }, list.join(", ")),
                )
                .field(&first.id));
            }
        }
        Ok(())
    }

    fn fault(&self, cell: Cell, context: &str) -> EvalError {
        let (kind, node) = cell.fault_of().unwrap_or((FaultKind::Overflow, 0));
        let span = self.nodes.get(node as usize).map(|n| n.span.clone());
        let (code, what) = match kind {
            FaultKind::DivisionByZero => (ErrorCode::DivisionByZero, "division by zero"),
            FaultKind::Overflow => (ErrorCode::Overflow, "a value is too large"),
            FaultKind::NoParameterValue => (ErrorCode::NoParameterValue, "a parameter has no value on this date"),
        };
        let mut e = EvalError::new(code, format!("{what} in {context}"));
        e.span = span;
        e
    }

    /// The decision only: status and amount, no trace. The fast path.
    pub fn decide(
        &self,
        inputs: &Inputs,
        mode: Mode,
        scratch: &mut Vec<Cell>,
    ) -> Result<(Status, Option<Money>), EvalError> {
        self.run(inputs, mode, scratch)?;
        let cells = &*scratch;
        let mut status = Status::Eligible;
        for r in &self.rules {
            let c = cells[r.node as usize];
            match c.s {
                ERROR => return Err(self.fault(c, &format!("rule `{}`", r.name))),
                UNKNOWN if status == Status::Eligible => status = Status::Undetermined,
                UNKNOWN => {}
                _ if c.v == 0 => status = Status::NotEligible,
                _ => {}
            }
        }
        let amount = self.amount_of(cells, status)?;
        Ok((
            if status == Status::Eligible && amount.is_none() && self.amount.is_some() {
                Status::Undetermined
            } else {
                status
            },
            amount,
        ))
    }

    fn amount_of(&self, cells: &[Cell], status: Status) -> Result<Option<Money>, EvalError> {
        if status != Status::Eligible {
            return Ok(None);
        }
        let Some(a) = &self.amount else {
            return Ok(None);
        };
        let c = cells[a.node as usize];
        match c.s {
            ERROR => Err(self.fault(c, "the amount")),
            KNOWN => Ok(Some(Money(c.v.max(0)))),
            _ => Ok(None),
        }
    }

    fn named(&self, cells: &[Cell], refs: &[(Ref, NodeId, Type)]) -> Vec<NamedValue> {
        refs.iter()
            .map(|(r, n, t)| NamedValue {
                name: r.clone(),
                ty: *t,
                value: cells[*n as usize].as_known().map(|v| self.value_of(*t, v)),
            })
            .collect()
    }

    /// Which questions are asked, given the answers so far (for a guided
    /// form): `Some(true)` asked, `Some(false)` not asked (its condition is
    /// false), `None` not known yet (its condition reads an unanswered
    /// question). In the order of `questions`.
    pub fn asked(&self, inputs: &Inputs) -> Vec<Option<bool>> {
        let mut cells = Vec::with_capacity(self.nodes.len());
        ir::eval_scalar(&self.nodes, &inputs.slots, &self.timelines, i64::from(inputs.submitted_on.0), &mut cells);
        self.questions
            .iter()
            .map(|q| match q.cond {
                None => Some(true),
                Some(k) => {
                    let c = cells[k as usize];
                    (c.s == KNOWN).then_some(c.v != 0)
                }
            })
            .collect()
    }

    /// Evaluates one application with its full explanation.
    pub fn evaluate(&self, inputs: &Inputs, mode: Mode) -> Result<Evaluation, EvalError> {
        let mut cells = Vec::with_capacity(self.nodes.len());
        let (status, amount) = self.decide(inputs, mode, &mut cells)?;
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, r) in self.rules.iter().enumerate() {
            let c = cells[r.node as usize];
            let outcome = match (c.s, c.v) {
                (KNOWN, 0) => Outcome::Fail,
                (KNOWN, _) => Outcome::Pass,
                _ => Outcome::Unknown,
            };
            let used = self.named(&cells, &r.refs);
            let missing = if outcome == Outcome::Unknown {
                r.refs
                    .iter()
                    .filter_map(|(rf, n, _)| match rf {
                        Ref::Question(q) | Ref::Field(q, _) if cells[*n as usize].s == UNKNOWN => {
                            let qq = &self.questions[*q];
                            let asked = qq.cond.is_none_or(|k| cells[k as usize] == Cell::known(1));
                            asked.then_some(*q)
                        }
                        _ => None,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let mut would_pass = Vec::new();
            if outcome == Outcome::Fail {
                self.why(r.node, &cells, &r.refs, false, &mut would_pass);
            }
            rules.push(RuleResult { rule: i, outcome, used, missing, would_pass });
        }
        let amount_used = self.amount.as_ref().map(|a| self.named(&cells, &a.refs)).unwrap_or_default();
        Ok(Evaluation {
            program_id: self.id.clone(),
            version: self.version.clone(),
            submitted_on: inputs.submitted_on,
            status,
            amount,
            rules,
            amount_used,
            cells,
        })
    }

    /// Walks a false condition down to the comparisons that made it false
    /// and states, for each, the value that would have made it hold.
    fn why(
        &self,
        node: NodeId,
        cells: &[Cell],
        refs: &[(Ref, NodeId, Type)],
        negated: bool,
        out: &mut Vec<Requirement>,
    ) {
        let target = |n: NodeId| {
            refs.iter().find(|(r, id, _)| *id == n && !matches!(r, Ref::Param(_))).map(|(r, _, t)| (r.clone(), *t))
        };
        match &self.nodes[node as usize].op {
            Op::And(a, b) if !negated => {
                for x in [*a, *b] {
                    if cells[x as usize] == Cell::known(0) {
                        self.why(x, cells, refs, false, out);
                    }
                }
            }
            Op::Or(a, b) if negated => {
                for x in [*a, *b] {
                    if cells[x as usize] == Cell::known(1) {
                        self.why(x, cells, refs, true, out);
                    }
                }
            }
            Op::Not(a) => self.why(*a, cells, refs, !negated, out),
            Op::Cmp(op, a, b) => {
                let op = if negated { op.negate() } else { *op };
                let (ca, cb) = (cells[*a as usize], cells[*b as usize]);
                if let (Some((t, ty)), KNOWN) = (target(*a), cb.s) {
                    out.push(Requirement::Compare { target: t, ty, cmp: op, value: self.value_of(ty, cb.v) });
                } else if let (Some((t, ty)), KNOWN) = (target(*b), ca.s) {
                    out.push(Requirement::Compare { target: t, ty, cmp: op.flip(), value: self.value_of(ty, ca.v) });
                }
            }
            Op::In(a, set) if !negated => {
                if let Some((t, ty)) = target(*a) {
                    out.push(Requirement::OneOf { target: t, ty, values: set.to_vec() });
                }
            }
            Op::IsSome(a) if !negated => {
                if let Some((t, _)) = target(*a) {
                    out.push(Requirement::Provide { target: t });
                }
            }
            Op::IsNone(a) if negated => {
                if let Some((t, _)) = target(*a) {
                    out.push(Requirement::Provide { target: t });
                }
            }
            _ => {}
        }
    }
}
