//! What-if simulation: evaluate a caseload under two versions of a program
//! and report counts, cost and every application whose outcome changes.

use crate::columnar::{Batch, RowStatus};
use crate::eval::Mode;
use crate::program::Program;
use crate::value::Money;
use crate::{ErrorCode, EvalError};
use std::sync::Mutex;

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

/// Evaluates every line of `jsonl` under both programs. `progress` is
/// called with the number of bytes done since its last call.
pub fn simulate(
    baseline: &Program,
    candidate: &Program,
    jsonl: &[u8],
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Simulation {
    // Chunks of about 4 MB of whole lines, handed to the workers in turn.
    let mut rest = jsonl;
    let chunks = std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(4 << 20);
        while end < rest.len() && rest[end - 1] != b'\n' {
            end += 1;
        }
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(Ok::<_, std::convert::Infallible>(chunk))
    });
    match simulate_stream(baseline, candidate, threads, chunks, progress, &|_| {}) {
        Ok(sim) => sim,
        Err(never) => match never {},
    }
}

/// Evaluates a stream of chunks, each made of whole lines, under both
/// programs. Each worker thread takes the next chunk when it is free (it
/// reads it, too, when the iterator reads a file), so reading overlaps with
/// evaluating and no thread waits for another; memory stays bounded by a
/// few chunks whatever the input's size. Each chunk is handed to `recycle`
/// once evaluated, so its buffer can be reused. The first error of the
/// iterator stops the simulation.
pub fn simulate_stream<C, E, I>(
    baseline: &Program,
    candidate: &Program,
    threads: usize,
    chunks: I,
    progress: &(dyn Fn(usize) + Sync),
    recycle: &(dyn Fn(C) + Sync),
) -> Result<Simulation, E>
where
    C: AsRef<[u8]> + Send,
    E: Send,
    I: Iterator<Item = Result<C, E>> + Send,
{
    let threads =
        if threads == 0 { std::thread::available_parallelism().map(|x| x.get()).unwrap_or(1) } else { threads };
    let shared = baseline.same_inputs(candidate);
    // The source: the iterator, the next chunk's number, the first error.
    let source = Mutex::new((chunks, 0usize, None::<E>));
    let done: Mutex<Vec<(usize, usize, Simulation)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut w = Worker {
                    ba: Batch::with_capacity(baseline, SLICE),
                    bb: Batch::with_capacity(candidate, SLICE),
                    scratch: Vec::new(),
                };
                loop {
                    let (index, chunk) = {
                        let mut src = source.lock().unwrap_or_else(|p| p.into_inner());
                        if src.2.is_some() {
                            break;
                        }
                        match src.0.next() {
                            None => break,
                            Some(Err(e)) => {
                                src.2 = Some(e);
                                break;
                            }
                            Some(Ok(c)) => {
                                src.1 += 1;
                                (src.1 - 1, c)
                            }
                        }
                    };
                    let (lines, sim) = run_part(baseline, candidate, shared, &mut w, chunk.as_ref(), progress);
                    recycle(chunk);
                    done.lock().unwrap_or_else(|p| p.into_inner()).push((index, lines, sim));
                }
            });
        }
    });
    let (_, _, error) = source.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = error {
        return Err(e);
    }
    let mut parts = done.into_inner().unwrap_or_else(|p| p.into_inner());
    parts.sort_by_key(|(i, _, _)| *i);
    // Each chunk numbered its lines from 1: shift by the lines before it.
    let mut total = Simulation::default();
    let mut before = 0;
    for (_, lines, mut r) in parts {
        r.changes.iter_mut().for_each(|c| c.line += before);
        r.unreadable.iter_mut().for_each(|u| u.0 += before);
        before += lines;
        total.merge(r);
    }
    Ok(total)
}

/// What one worker thread keeps between chunks: its batches and scratch
/// space, so memory is allocated once, not per chunk.
#[derive(Debug, Default)]
struct Worker {
    ba: Batch,
    bb: Batch,
    scratch: Vec<crate::ir::Cell>,
}

/// Evaluates one part; returns its number of lines and its results, with
/// line numbers counted from the start of the part.
fn run_part(
    a: &Program,
    b: &Program,
    shared: bool,
    w: &mut Worker,
    part: &[u8],
    progress: &(dyn Fn(usize) + Sync),
) -> (usize, Simulation) {
    let mut sim = Simulation::default();
    let mut count = 0;
    // One UTF-8 check for the whole part; then `str::split` finds newlines
    // with memchr. An invalid part falls back to checking line by line.
    let text = std::str::from_utf8(part);
    let mut lines: Box<dyn Iterator<Item = Result<&str, &[u8]>>> = match text {
        Ok(t) => Box::new(t.split('\n').map(Ok)),
        Err(_) => Box::new(part.split(|c| *c == b'\n').map(|l| std::str::from_utf8(l).map_err(|_| l))),
    };
    let mut lines = std::iter::from_fn(move || lines.next()).enumerate().peekable();
    // Per row of the slice: its line number and id (kept for the changes).
    let mut rows: Vec<(usize, Option<std::borrow::Cow<'_, str>>)> = Vec::with_capacity(SLICE);
    loop {
        rows.clear();
        w.ba.clear();
        w.bb.clear();
        let mut bytes = 0;
        while rows.len() < SLICE {
            let Some((i, l)) = lines.next() else { break };
            let len = match l {
                Ok(s) => s.len(),
                Err(b) => b.len(),
            };
            bytes += len + 1;
            // `split` yields an empty last piece after a final newline.
            if i + 1 > count && !(len == 0 && lines.peek().is_none()) {
                count = i + 1;
            }
            let line = i + 1;
            let parsed = match l {
                Ok(l) => {
                    let l = l.strip_suffix('\r').unwrap_or(l);
                    if l.trim().is_empty() {
                        continue;
                    }
                    crate::jsonline::parse(l)
                }
                Err(_) => Err(EvalError::new(ErrorCode::InvalidAnswer, "this line is not valid UTF-8")),
            };
            // Encode at once: when both versions read answers the same way
            // (the usual what-if: a parameter or a rule changed), one
            // encoding serves both.
            match parsed {
                Ok(app) => {
                    let answers = || app.answers.iter().map(|(k, v)| (k.as_ref(), v));
                    w.ba.push_answers(a, app.submitted_on, answers(), &mut w.scratch);
                    if !shared {
                        w.bb.push_answers(b, app.submitted_on, answers(), &mut w.scratch);
                    }
                    rows.push((line, app.id));
                }
                Err(e) => {
                    sim.unreadable_count += 1;
                    if sim.unreadable.len() < 100 {
                        sim.unreadable.push((line, e.message.clone()));
                    }
                    if !shared {
                        w.bb.push_invalid(e.clone());
                    }
                    w.ba.push_invalid(e);
                    rows.push((line, None));
                }
            }
        }
        if rows.is_empty() {
            break;
        }
        let ra = a.evaluate_batch(&w.ba, Mode::Complete, 1);
        let rb = b.evaluate_batch(if shared { &w.ba } else { &w.bb }, Mode::Complete, 1);
        for (k, (line, id)) in rows.iter().enumerate() {
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
                    id: id.as_ref().map(|s| s.to_string()),
                    before: (sa, Money(ma)),
                    after: (sb, Money(mb)),
                });
            }
        }
        progress(bytes);
    }
    (count, sim)
}
