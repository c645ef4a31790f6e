//! A generator of realistic applications for a program, from a fixed seed:
//! the input of benchmarks and what-if simulations when no real caseload is
//! at hand. Answers follow each question's type, bounds and options; most
//! applicants are eligible-looking, a realistic share are not.

use crate::program::{PROVINCES, Program};
use crate::raw::QuestionType;
use crate::value::{Date, Money};
use serde_json::{Map, Value, json};

const CITIES: [(&str, &str, &str); 6] = [
    ("Montréal", "QC", "H2X 1Y4"),
    ("Québec", "QC", "G1R 4P5"),
    ("Gatineau", "QC", "J8X 3X7"),
    ("Sherbrooke", "QC", "J1H 1Z3"),
    ("Saguenay", "QC", "G7H 5B1"),
    ("Ottawa", "ON", "K1P 1J1"),
];
const STREETS: [&str; 6] = [
    "rue Saint-Denis",
    "boulevard René-Lévesque",
    "rue King Ouest",
    "avenue du Parc",
    "rue Racine Est",
    "chemin Sainte-Foy",
];
const NAMES: [&str; 6] =
    ["Gestion Tremblay inc.", "Marie Gagnon", "Immeubles Roy", "Jean Côté", "Habitations Bouchard", "Sylvie Lavoie"];

/// Generates `count` applications (JSON values) for `program`.
pub fn applications(program: &Program, count: usize, seed: u64) -> Vec<Value> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..count).map(|i| application(program, &mut rng, i)).collect()
}

/// One application, as `{"id", "submitted_on", "answers"}`.
pub fn application(program: &Program, rng: &mut fastrand::Rng, index: usize) -> Value {
    let span = (program.closes.0 - program.opens.0).max(0);
    // Most applications come early in the window; a few arrive late.
    let offset = if rng.u8(..100) < 97 { rng.i32(0..=span) } else { span + rng.i32(1..=20) };
    let submitted = Date(program.opens.0 + offset);
    let mut answers = Map::new();
    for q in &program.questions {
        // Optional questions are skipped now and then.
        if q.optional && rng.u8(..100) < 30 {
            continue;
        }
        // A small share of applicants leave something unanswered.
        if rng.u16(..1000) < 3 {
            continue;
        }
        let v = match q.kind {
            QuestionType::YesNo => json!(rng.u8(..100) < 88),
            QuestionType::Choice => {
                // The first option is the most common answer.
                let n = q.options.len();
                let k = if rng.u8(..100) < 70 { 0 } else { rng.usize(..n) };
                json!(q.options[k].value)
            }
            QuestionType::Integer => {
                let lo = q.min.as_ref().map(|v| v.lane()).unwrap_or(0);
                let hi = q.max.as_ref().map(|v| v.lane()).unwrap_or(lo + 10).max(lo);
                json!(rng.i64(lo..=hi.min(lo + 90)))
            }
            QuestionType::Money => {
                let lo = q.min.as_ref().map(|v| v.lane()).unwrap_or(0).max(0);
                let hi = q.max.as_ref().map(|v| v.lane()).unwrap_or(500_000).max(lo);
                // Typical amounts sit in the lower part of the range.
                let typical = lo + (hi - lo) / 8;
                let cents = if rng.u8(..100) < 90 { rng.i64(lo..=typical.max(lo)) } else { rng.i64(lo..=hi) };
                let cents = cents / 100 * 100 + if rng.bool() { 0 } else { 50 };
                json!(Money(cents.clamp(lo, hi)).to_string().trim_end_matches(" $"))
            }
            QuestionType::Date => {
                let lo = q.min.as_ref().map(|v| v.lane()).unwrap_or(i64::from(program.opens.0) - 900);
                let hi = q.max.as_ref().map(|v| v.lane()).unwrap_or(i64::from(program.closes.0) + 120).max(lo);
                // Near a date the rules compare it with, mostly on the side
                // that satisfies the rule: real applicants mostly qualify,
                // and the boundaries get exercised.
                let d = match near_anchor(program, q, rng, 90) {
                    Some(d) => d.clamp(lo, hi),
                    None => rng.i64(lo..=hi),
                };
                json!(Date(i32::try_from(d).unwrap_or(0)).to_string())
            }
            QuestionType::Text => json!(NAMES[rng.usize(..NAMES.len())]),
            QuestionType::File => json!(format!("document-{}.pdf", rng.u32(..100_000))),
            QuestionType::BankAccount => json!({
                "institution": format!("{:03}", [1, 2, 3, 4, 6, 815][rng.usize(..6)]),
                "transit": format!("{:05}", rng.u32(..100_000)),
                "account": format!("{:07}", rng.u32(..10_000_000)),
            }),
            QuestionType::Address => {
                let (city, prov, postal) = CITIES[if rng.u8(..100) < 95 { rng.usize(..5) } else { 5 }];
                debug_assert!(PROVINCES.contains(&prov));
                json!({
                    "line1": format!("{} {}", rng.u32(1..9999), STREETS[rng.usize(..STREETS.len())]),
                    "city": city,
                    "province": prov,
                    "postal_code": postal,
                })
            }
        };
        answers.insert(q.id.clone(), v);
    }
    json!({ "id": format!("app-{index:07}"), "submitted_on": submitted.to_string(), "answers": answers })
}

/// A value near one of the constants or parameters a rule compares the
/// question with: 85% on the side that satisfies the comparison.
fn near_anchor(program: &Program, q: &crate::program::Question, rng: &mut fastrand::Rng, spread: i64) -> Option<i64> {
    use crate::ir::{Cmp, Op};
    let reads_q = |id: u32| {
        id == q.node || matches!(program.nodes.get(id as usize).map(|n| &n.op), Some(Op::Input(s)) if *s == q.slot)
    };
    let value = |id: u32| match program.nodes.get(id as usize).map(|n| &n.op) {
        Some(Op::Const(v)) => Some(*v),
        Some(Op::Param(p)) => program.timelines.get(*p as usize).and_then(|t| t.at(i64::from(program.opens.0))),
        _ => None,
    };
    let anchors: Vec<(Cmp, i64)> = program
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            Op::Cmp(c, a, b) if reads_q(a) => value(b).map(|v| (c, v)),
            Op::Cmp(c, a, b) if reads_q(b) => value(a).map(|v| (c.flip(), v)),
            _ => None,
        })
        .collect();
    if anchors.is_empty() {
        return None;
    }
    let (cmp, anchor) = anchors[rng.usize(..anchors.len())];
    let cmp = if rng.u8(..100) < 85 { cmp } else { cmp.negate() };
    let off = rng.i64(1..=spread.max(1));
    Some(match cmp {
        Cmp::Lt => anchor - off,
        Cmp::Le => anchor - off + 1,
        Cmp::Gt => anchor + off,
        Cmp::Ge => anchor + off - 1,
        Cmp::Eq => anchor,
        Cmp::Ne => anchor + if rng.bool() { off } else { -off },
    })
}

/// The generator's random source for a seed.
pub fn rng(seed: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(seed)
}
