//! What-if simulation: evaluate a caseload under two versions of a program
//! and report counts, cost and every application whose outcome changes.

use crate::answers::Application;
use crate::columnar::{Batch, RowStatus};
use crate::eval::Mode;
use crate::program::Program;
use crate::value::Money;
use crate::{ErrorCode, EvalError};

/// Lines handled together by one thread.
const SLICE: usize = 8192;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Rows by status, indexed by `RowStatus as usize`.
    pub counts: [usize; 4],
    /// Sum of the amounts of eligible rows, in cents.
    pub cost: i128,
}

impl Totals {
    pub fn count(&self, s: RowStatus) -> usize {
        self.counts[s as usize]
    }
    pub fn cost_money(&self) -> Money {
        Money(i64::try_from(self.cost).unwrap_or(i64::MAX))
    }
}

/// One application whose outcome differs between the versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Line number in the input (from 1).
    pub line: usize,
    pub id: Option<String>,
    pub before: (RowStatus, Money),
    pub after: (RowStatus, Money),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simulation {
    pub rows: usize,
    pub baseline: Totals,
    pub candidate: Totals,
    /// `transitions[before][after]`: how many rows went from one status to another.
    pub transitions: [[usize; 4]; 4],
    pub changes: Vec<Change>,
    /// Lines that are not valid JSON applications (line, message); counted
    /// as errors under both versions. At most 100 are kept.
    pub unreadable: Vec<(usize, String)>,
    pub unreadable_count: usize,
}

impl Simulation {
    fn merge(&mut self, o: Simulation) {
        self.rows += o.rows;
        for s in 0..4 {
            self.baseline.counts[s] += o.baseline.counts[s];
            self.candidate.counts[s] += o.candidate.counts[s];
            for t in 0..4 {
                self.transitions[s][t] += o.transitions[s][t];
            }
        }
        self.baseline.cost += o.baseline.cost;
        self.candidate.cost += o.candidate.cost;
        self.changes.extend(o.changes);
        self.unreadable_count += o.unreadable_count;
        for u in o.unreadable {
            if self.unreadable.len() < 100 {
                self.unreadable.push(u);
            }
        }
    }
}

/// Parses one JSONL line into an application.
pub fn parse_line(line: &[u8]) -> Result<Application, EvalError> {
    let v: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| EvalError::new(ErrorCode::InvalidAnswer, format!("not valid JSON: {e}")))?;
    Application::from_json(&v)
}

/// Splits `data` into `parts` ranges that end on line boundaries.
fn split_lines(data: &[u8], parts: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for p in 1..=parts {
        let mut end = if p == parts { data.len() } else { (data.len() * p / parts).max(start) };
        while end < data.len() && data[end - 1] != b'\n' {
            end += 1;
        }
        if end > start || p == parts {
            out.push((start, end));
        }
        start = end;
    }
    out
}

/// Evaluates every line of `jsonl` under both programs. `progress` is
/// called with the number of bytes done since its last call.
pub fn simulate(
    baseline: &Program,
    candidate: &Program,
    jsonl: &[u8],
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Simulation {
    let threads = if threads == 0 { std::thread::available_parallelism().map(|x| x.get()).unwrap_or(1) } else { threads };
    let parts = split_lines(jsonl, threads);
    // Line numbers: count newlines before each part.
    let mut first_lines = Vec::new();
    let mut line = 1;
    for (s, e) in &parts {
        first_lines.push(line);
        line += jsonl[*s..*e].iter().filter(|b| **b == b'\n').count();
    }
    let results: Vec<Simulation> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .zip(first_lines)
            .map(|((s, e), first)| {
                let part = &jsonl[*s..*e];
                scope.spawn(move || run_part(baseline, candidate, part, first, progress))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut total = Simulation::default();
    for r in results {
        total.merge(r);
    }
    total
}

fn run_part(a: &Program, b: &Program, part: &[u8], first_line: usize, progress: &(dyn Fn(usize) + Sync)) -> Simulation {
    let mut sim = Simulation::default();
    let mut lines = part.split(|c| *c == b'\n').enumerate().peekable();
    let mut apps: Vec<(usize, Option<Application>)> = Vec::with_capacity(SLICE);
    loop {
        apps.clear();
        let mut bytes = 0;
        while apps.len() < SLICE {
            let Some((i, l)) = lines.next() else { break };
            bytes += l.len() + 1;
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            if l.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line = first_line + i;
            match parse_line(l) {
                Ok(app) => apps.push((line, Some(app))),
                Err(e) => {
                    sim.unreadable_count += 1;
                    if sim.unreadable.len() < 100 {
                        sim.unreadable.push((line, e.message));
                    }
                    apps.push((line, None));
                }
            }
        }
        if apps.is_empty() {
            break;
        }
        let mut ba = Batch::with_capacity(a, apps.len());
        let mut bb = Batch::with_capacity(b, apps.len());
        for (_, app) in &apps {
            match app {
                Some(app) => {
                    ba.push(a, app);
                    bb.push(b, app);
                }
                None => {
                    let e = EvalError::new(ErrorCode::InvalidAnswer, "unreadable");
                    ba.push_invalid(e.clone());
                    bb.push_invalid(e);
                }
            }
        }
        let ra = a.evaluate_batch(&ba, Mode::Complete, 1);
        let rb = b.evaluate_batch(&bb, Mode::Complete, 1);
        for (k, (line, app)) in apps.iter().enumerate() {
            let (sa, sb) = (ra.status[k], rb.status[k]);
            let (ma, mb) = (ra.amount[k], rb.amount[k]);
            sim.rows += 1;
            sim.baseline.counts[sa as usize] += 1;
            sim.candidate.counts[sb as usize] += 1;
            sim.baseline.cost += i128::from(ma);
            sim.candidate.cost += i128::from(mb);
            sim.transitions[sa as usize][sb as usize] += 1;
            if sa != sb || ma != mb {
                sim.changes.push(Change {
                    line: *line,
                    id: app.as_ref().and_then(|x| x.id.clone()),
                    before: (sa, Money(ma)),
                    after: (sb, Money(mb)),
                });
            }
        }
        progress(bytes);
    }
    sim
}
