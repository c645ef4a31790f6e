//! Unreachable questions: a condition that no combination of answers can
//! make true. Decided exactly by enumeration when the condition depends
//! only on yes/no and choice questions (the usual case); otherwise left
//! alone rather than guessed.

use crate::diagnostic::Diagnostic;
use crate::ir::{self, Cell, NodeId, Op};
use crate::program::Program;
use crate::raw::QuestionType;
use std::collections::BTreeSet;

const MAX_COMBINATIONS: usize = 512;

pub(crate) fn children(op: &Op) -> Vec<NodeId> {
    match op {
        Op::Const(_) | Op::Input(_) | Op::Param(_) | Op::RefDate => vec![],
        Op::Gate(a, b)
        | Op::And(a, b)
        | Op::Or(a, b)
        | Op::Cmp(_, a, b)
        | Op::Add(a, b)
        | Op::Sub(a, b)
        | Op::Mul(a, b)
        | Op::MulPct(a, b)
        | Op::DivRound(a, b)
        | Op::DivPct(a, b)
        | Op::DivTrunc(a, b)
        | Op::AddMonths(a, b) => vec![*a, *b],
        Op::Not(a)
        | Op::IsNone(a)
        | Op::IsSome(a)
        | Op::In(a, _)
        | Op::Neg(a)
        | Op::RoundDollar(a)
        | Op::Year(a)
        | Op::Month(a) => {
            vec![*a]
        }
        Op::If(a, b, c) => vec![*a, *b, *c],
        Op::Min(xs) | Op::Max(xs) => xs.to_vec(),
    }
}

pub(crate) fn check_unreachable(p: &Program, errors: &mut Vec<Diagnostic>) {
    let slot_owner = |slot: u32| p.questions.iter().position(|q| q.slot <= slot && slot < q.slot + q.slots());
    let mut cells = Vec::new();
    for q in &p.questions {
        let Some(cond) = q.cond else { continue };
        // What the condition reads, transitively through earlier conditions.
        let mut stack = vec![cond];
        let mut seen = BTreeSet::new();
        let mut slots = BTreeSet::new();
        let mut timeless = true;
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            let op = &p.nodes[n as usize].op;
            match op {
                Op::Input(s) => {
                    slots.insert(*s);
                }
                Op::Param(_) | Op::RefDate => timeless = false,
                _ => {}
            }
            stack.extend(children(op));
        }
        if !timeless {
            continue;
        }
        // Candidate values per slot: none, then every value it can take.
        let mut domains: Vec<(u32, Vec<Cell>)> = Vec::new();
        let mut total = 1usize;
        let mut decidable = true;
        for s in &slots {
            let Some(owner) = slot_owner(*s).map(|i| &p.questions[i]) else {
                decidable = false;
                break;
            };
            let mut dom = vec![Cell::UNKNOWN];
            match owner.kind {
                QuestionType::YesNo => dom.extend([Cell::known(0), Cell::known(1)]),
                QuestionType::Choice => dom.extend((0..owner.options.len() as i64).map(Cell::known)),
                QuestionType::File | QuestionType::BankAccount => dom.push(Cell::known(1)),
                _ => {
                    decidable = false;
                    break;
                }
            }
            total = total.saturating_mul(dom.len());
            domains.push((*s, dom));
        }
        if !decidable || total > MAX_COMBINATIONS {
            continue;
        }
        let mut inputs = vec![Cell::UNKNOWN; p.n_slots];
        let mut reachable = false;
        for k in 0..total {
            let mut rest = k;
            for (s, dom) in &domains {
                inputs[*s as usize] = dom[rest % dom.len()];
                rest /= dom.len();
            }
            ir::eval_scalar(&p.nodes, &inputs, &p.timelines, i64::from(p.opens.0), &mut cells);
            if cells[cond as usize] == Cell::known(1) {
                reachable = true;
                break;
            }
        }
        if !reachable {
            let span = p.nodes[cond as usize].span.clone();
            errors.push(
                Diagnostic::error(format!("question `{}` can never be asked", q.id), span)
                    .with_label("this condition is false for every possible answer")
                    .with_hint("check the option values and the conditions of the questions it depends on"),
            );
        }
    }
}

/// Nodes that a batch evaluation needs: those the rules, the amount and
/// the required-answer checks read. The others (address lines, names…)
/// are skipped by the columnar evaluator.
pub(crate) fn live_nodes(p: &Program) -> Vec<bool> {
    let mut live = vec![false; p.nodes.len()];
    let mut stack: Vec<NodeId> = p.rules.iter().map(|r| r.node).collect();
    stack.extend(p.amount.as_ref().map(|a| a.node));
    stack.extend(p.questions.iter().filter_map(|q| q.cond));
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut live[n as usize], true) {
            continue;
        }
        stack.extend(children(&p.nodes[n as usize].op));
    }
    live
}
