//! Columnar evaluation of a whole caseload: the same compiled nodes as the
//! scalar evaluator, run over chunks of rows so each operation is a tight
//! loop over integers, on every core.

use crate::answers::Application;
use crate::eval::Mode;
use crate::ir::{self, Cell, ERROR, KNOWN, Op, UNKNOWN};
use crate::program::Program;
use crate::{ErrorCode, EvalError};

/// Rows evaluated together: small enough that a chunk's node buffers stay
/// in the CPU caches.
const CHUNK: usize = 1024;

/// Applications encoded for one program, column by column.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    rows: usize,
    dates: Vec<i64>,
    /// Per slot; empty for slots whose value no expression needs.
    values: Vec<Vec<i64>>,
    states: Vec<Vec<u8>>,
    keep: Vec<bool>,
    /// Rows whose answers could not be encoded, with why.
    invalid: Vec<Option<ErrorCode>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum RowStatus {
    Eligible = 0,
    NotEligible = 1,
    Undetermined = 2,
    Error = 3,
}

impl RowStatus {
    pub const ALL: [RowStatus; 4] =
        [RowStatus::Eligible, RowStatus::NotEligible, RowStatus::Undetermined, RowStatus::Error];
    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Eligible => "eligible",
            RowStatus::NotEligible => "not eligible",
            RowStatus::Undetermined => "undetermined",
            RowStatus::Error => "error",
        }
    }
}

/// Per-row results of a batch evaluation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub status: Vec<RowStatus>,
    /// Cents; zero unless eligible.
    pub amount: Vec<i64>,
}

impl Batch {
    /// Encodes applications for `program`. Rows with invalid answers are
    /// kept (as errors) so row numbers stay aligned with the input.
    pub fn new(program: &Program, apps: &[Application]) -> Batch {
        let mut b = Batch::with_capacity(program, apps.len());
        for a in apps {
            b.push(program, a);
        }
        b
    }

    pub fn with_capacity(program: &Program, rows: usize) -> Batch {
        // Values are kept only where they can matter (not for free text that
        // no rule compares, documents or bank accounts: their state says all).
        let keep = &program.value_slots;
        Batch {
            rows: 0,
            dates: Vec::with_capacity(rows),
            values: keep.iter().map(|k| Vec::with_capacity(if *k { rows } else { 0 })).collect(),
            states: (0..program.n_slots).map(|_| Vec::with_capacity(rows)).collect(),
            keep: keep.clone(),
            invalid: Vec::with_capacity(rows),
        }
    }

    pub fn push(&mut self, program: &Program, app: &Application) {
        match program.prepare(app) {
            Ok(inputs) => self.push_cells(i64::from(app.submitted_on.0), &inputs.slots, None),
            Err(e) => self.push_invalid(e),
        }
    }

    /// Appends a row from answers borrowed from an input line.
    pub(crate) fn push_answers<'a, S: AsRef<str> + 'a>(
        &mut self,
        program: &Program,
        date: crate::value::Date,
        answers: impl Iterator<Item = (&'a str, &'a crate::answers::AnswerValue<S>)>,
        scratch: &mut Vec<Cell>,
    ) {
        scratch.clear();
        scratch.resize(program.n_slots, Cell::UNKNOWN);
        match program.encode_all(answers, scratch) {
            Ok(()) => self.push_cells(i64::from(date.0), scratch, None),
            Err(e) => self.push_invalid(e),
        }
    }

    /// Appends a row that could not be parsed or encoded.
    pub fn push_invalid(&mut self, e: EvalError) {
        let empty = vec![Cell::UNKNOWN; self.states.len()];
        self.push_cells(0, &empty, Some(e.code));
    }

    fn push_cells(&mut self, date: i64, cells: &[Cell], invalid: Option<ErrorCode>) {
        self.dates.push(date);
        for (s, c) in cells.iter().enumerate() {
            if self.keep[s] {
                self.values[s].push(c.v);
            }
            self.states[s].push(c.s);
        }
        self.invalid.push(invalid);
        self.rows += 1;
    }

    /// Empties the batch, keeping its memory for the next rows.
    pub fn clear(&mut self) {
        self.rows = 0;
        self.dates.clear();
        self.values.iter_mut().for_each(Vec::clear);
        self.states.iter_mut().for_each(Vec::clear);
        self.invalid.clear();
    }

    pub fn len(&self) -> usize {
        self.rows
    }
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes held by the columns (for the memory figures of the benchmark).
    pub fn heap_bytes(&self) -> usize {
        self.dates.capacity() * 8
            + self.values.iter().map(|v| v.capacity() * 8).sum::<usize>()
            + self.states.iter().map(|v| v.capacity()).sum::<usize>()
            + self.invalid.capacity() * std::mem::size_of::<Option<ErrorCode>>()
    }
}

/// Whether the processor runs AVX2 (checked once, then cached by std).
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

struct Scratch {
    v: Vec<i64>,
    s: Vec<u8>,
    /// Per node: every row of the chunk is known. Most rows answer every
    /// question they are asked, so most nodes take the fast kernels that
    /// skip three-valued logic entirely.
    known: Vec<bool>,
    /// Read in place of a value column the batch does not keep.
    zeros: Vec<i64>,
    /// The states of an all-known node (`KNOWN` is 0).
    known_states: Vec<u8>,
}

impl Program {
    /// Evaluates every row of a batch, on `threads` threads (0: all cores).
    pub fn evaluate_batch(&self, batch: &Batch, mode: Mode, threads: usize) -> BatchOutcome {
        self.evaluate_batch_with(batch, mode, threads, has_avx2())
    }

    fn evaluate_batch_with(&self, batch: &Batch, mode: Mode, threads: usize, avx2: bool) -> BatchOutcome {
        let n = batch.rows;
        let mut out = BatchOutcome { status: vec![RowStatus::Error; n], amount: vec![0; n] };
        // A batch encoded for a program with other questions: every row is
        // an error rather than a wrong answer.
        if batch.states.len() != self.n_slots || batch.keep != self.value_slots {
            return out;
        }
        let threads =
            if threads == 0 { std::thread::available_parallelism().map(|x| x.get()).unwrap_or(1) } else { threads };
        let per = n.div_ceil(threads.max(1)).div_ceil(CHUNK).max(1) * CHUNK;
        std::thread::scope(|scope| {
            for (i, (st, am)) in out.status.chunks_mut(per).zip(out.amount.chunks_mut(per)).enumerate() {
                let start = i * per;
                scope.spawn(move || {
                    let mut sc = Scratch {
                        v: vec![0; self.nodes.len() * CHUNK],
                        s: vec![0; self.nodes.len() * CHUNK],
                        known: vec![false; self.nodes.len()],
                        zeros: vec![0; CHUNK],
                        known_states: vec![KNOWN; CHUNK],
                    };
                    // Constants never change: fill them once.
                    for (i, node) in self.nodes.iter().enumerate() {
                        if let Op::Const(c) = node.op {
                            sc.v[i * CHUNK..(i + 1) * CHUNK].fill(c);
                            sc.s[i * CHUNK..(i + 1) * CHUNK].fill(KNOWN);
                            sc.known[i] = true;
                        }
                    }
                    let mut r = 0;
                    while r < st.len() {
                        let len = CHUNK.min(st.len() - r);
                        self.eval_chunk_best(
                            avx2,
                            batch,
                            start + r,
                            len,
                            mode,
                            &mut sc,
                            &mut st[r..r + len],
                            &mut am[r..r + len],
                        );
                        r += len;
                    }
                });
            }
        });
        out
    }

    /// The kernel of an op whose inputs are all known in this chunk: values
    /// only, no states. `None`: no fast kernel for this op or its inputs are
    /// not all known; `Some(false)`: it ran into an overflow, so the slow
    /// kernel must redo the node with error states.
    #[inline(always)]
    fn fast_kernel<'a>(
        &self,
        op: &Op,
        all: &dyn Fn(&[u32]) -> bool,
        ov: &mut [i64],
        dates: &[i64],
        cv: impl Fn(u32) -> &'a [i64],
    ) -> Option<bool> {
        let n = ov.len();
        match op {
            Op::RefDate => ov.copy_from_slice(dates),
            Op::Gate(x, k) if all(&[*x, *k]) => {
                let kv = cv(*k);
                if !kv.iter().all(|v| *v != 0) {
                    return None;
                }
                ov.copy_from_slice(cv(*x));
            }
            Op::Not(a) if all(&[*a]) => {
                for (o, x) in ov.iter_mut().zip(cv(*a)) {
                    *o = i64::from(*x == 0);
                }
            }
            Op::And(a, b) if all(&[*a, *b]) => {
                for ((o, x), y) in ov.iter_mut().zip(cv(*a)).zip(cv(*b)) {
                    *o = i64::from((*x != 0) & (*y != 0));
                }
            }
            Op::Or(a, b) if all(&[*a, *b]) => {
                for ((o, x), y) in ov.iter_mut().zip(cv(*a)).zip(cv(*b)) {
                    *o = i64::from((*x != 0) | (*y != 0));
                }
            }
            Op::Cmp(c, a, b) if all(&[*a, *b]) => {
                let (av, bv) = (cv(*a), cv(*b));
                macro_rules! cmp {
                    ($f:expr) => {
                        for ((o, x), y) in ov.iter_mut().zip(av).zip(bv) {
                            *o = i64::from($f(*x, *y));
                        }
                    };
                }
                match c {
                    ir::Cmp::Eq => cmp!(|x: i64, y: i64| x == y),
                    ir::Cmp::Ne => cmp!(|x: i64, y: i64| x != y),
                    ir::Cmp::Lt => cmp!(|x: i64, y: i64| x < y),
                    ir::Cmp::Le => cmp!(|x: i64, y: i64| x <= y),
                    ir::Cmp::Gt => cmp!(|x: i64, y: i64| x > y),
                    ir::Cmp::Ge => cmp!(|x: i64, y: i64| x >= y),
                }
            }
            Op::IsNone(a) if all(&[*a]) => ov.fill(0),
            Op::IsSome(a) if all(&[*a]) => ov.fill(1),
            Op::In(a, set) if all(&[*a]) => {
                for (o, x) in ov.iter_mut().zip(cv(*a)) {
                    *o = i64::from(set.contains(x));
                }
            }
            Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) if all(&[*a, *b]) => {
                let (av, bv) = (cv(*a), cv(*b));
                let mut overflow = false;
                macro_rules! arith {
                    ($f:ident) => {
                        for ((o, x), y) in ov.iter_mut().zip(av).zip(bv) {
                            let (r, f) = x.$f(*y);
                            *o = r;
                            overflow |= f;
                        }
                    };
                }
                match op {
                    Op::Add(..) => arith!(overflowing_add),
                    Op::Sub(..) => arith!(overflowing_sub),
                    _ => arith!(overflowing_mul),
                }
                if overflow {
                    return Some(false);
                }
            }
            Op::If(k, a, b) if all(&[*k, *a, *b]) => {
                for (((o, t), x), y) in ov.iter_mut().zip(cv(*k)).zip(cv(*a)).zip(cv(*b)) {
                    *o = if *t != 0 { *x } else { *y };
                }
            }
            Op::Min(xs) | Op::Max(xs) if all(xs) => {
                let is_min = matches!(op, Op::Min(_));
                let (first, rest) = xs.split_first()?;
                ov.copy_from_slice(cv(*first));
                for x in rest {
                    for (o, y) in ov.iter_mut().zip(cv(*x)) {
                        *o = if is_min { (*o).min(*y) } else { (*o).max(*y) };
                    }
                }
            }
            _ => return None,
        }
        debug_assert_eq!(ov.len(), n);
        Some(true)
    }

    /// Runs the kernels compiled for AVX2 when the processor has it (four
    /// 64-bit lanes per instruction instead of two): about 1.5 times faster.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn eval_chunk_best(
        &self,
        avx2: bool,
        b: &Batch,
        r0: usize,
        n: usize,
        mode: Mode,
        sc: &mut Scratch,
        status: &mut [RowStatus],
        amount: &mut [i64],
    ) {
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: `avx2` comes from `has_avx2()`, the run-time check that
            // this processor supports AVX2; that is the only requirement of
            // calling a function compiled with `target_feature(enable = "avx2")`.
            #[allow(unsafe_code)]
            unsafe {
                self.eval_chunk_avx2(b, r0, n, mode, sc, status, amount)
            };
            return;
        }
        let _ = avx2;
        self.eval_chunk(b, r0, n, mode, sc, status, amount)
    }

    /// The same code as `eval_chunk`, compiled with AVX2 enabled.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    fn eval_chunk_avx2(
        &self,
        b: &Batch,
        r0: usize,
        n: usize,
        mode: Mode,
        sc: &mut Scratch,
        status: &mut [RowStatus],
        amount: &mut [i64],
    ) {
        self.eval_chunk(b, r0, n, mode, sc, status, amount)
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn eval_chunk(
        &self,
        b: &Batch,
        r0: usize,
        n: usize,
        mode: Mode,
        sc: &mut Scratch,
        status: &mut [RowStatus],
        amount: &mut [i64],
    ) {
        let dates = &b.dates[r0..r0 + n];
        let zeros = &sc.zeros[..n];
        let known_states = &sc.known_states[..n];
        for (i, node) in self.nodes.iter().enumerate() {
            // Inputs are read in place from the batch, constants were filled
            // once, dead nodes are skipped.
            if !self.live[i] || matches!(node.op, Op::Const(_)) {
                continue;
            }
            if let Op::Input(slot) = node.op {
                sc.known[i] = b.states[slot as usize][r0..r0 + n].iter().all(|s| *s == KNOWN);
                continue;
            }
            let (vb, va) = sc.v.split_at_mut(i * CHUNK);
            let (sb, sa) = sc.s.split_at_mut(i * CHUNK);
            let (kb, ka) = sc.known.split_at_mut(i);
            let ov = &mut va[..n];
            let os = &mut sa[..n];
            let nodes = &self.nodes;
            let all = |ids: &[u32]| ids.iter().all(|id| kb[*id as usize]);
            if let Some(done) = self.fast_kernel(&node.op, &all, ov, dates, |id| {
                let x = match nodes[id as usize].op {
                    Op::Input(slot) => match b.values[slot as usize].get(r0..r0 + n) {
                        Some(col) => col,
                        None => zeros,
                    },
                    _ => &vb[id as usize * CHUNK..],
                };
                &x[..n]
            }) {
                ka[0] = done;
                if done {
                    continue;
                }
            }
            // Every slice handed to a kernel has exactly `n` elements, which
            // lets the compiler drop bounds checks and vectorize the loops.
            let cv = |id: u32| -> &[i64] {
                let x = match nodes[id as usize].op {
                    Op::Input(slot) => match b.values[slot as usize].get(r0..r0 + n) {
                        Some(col) => col,
                        None => zeros,
                    },
                    _ => &vb[id as usize * CHUNK..],
                };
                &x[..n]
            };
            let cs = |id: u32| -> &[u8] {
                if kb[id as usize] {
                    return known_states;
                }
                let x = match nodes[id as usize].op {
                    Op::Input(slot) => &b.states[slot as usize][r0..],
                    _ => &sb[id as usize * CHUNK..],
                };
                &x[..n]
            };
            match &node.op {
                Op::Const(_) | Op::Input(_) => {}
                Op::Gate(x, k) => {
                    let (xv, xs, kv, ks) = (cv(*x), cs(*x), cv(*k), cs(*k));
                    ov.copy_from_slice(xv);
                    for (((o, x), k), kv) in os.iter_mut().zip(xs).zip(ks).zip(kv) {
                        let open = (*k == KNOWN) & (*kv != 0);
                        // Closed: unknown, or the condition's error.
                        *o = if open { *x } else { (*k).max(UNKNOWN) };
                    }
                }
                Op::Param(p) => {
                    let t = &self.timelines[*p as usize];
                    // One value in force for the whole chunk: the usual case.
                    let (lo, hi) = dates.iter().fold((i64::MAX, i64::MIN), |(l, h), d| (l.min(*d), h.max(*d)));
                    let k = t.dates.partition_point(|d| *d <= lo);
                    if k > 0 && t.dates.get(k).is_none_or(|next| *next > hi) {
                        ov.fill(t.values[k - 1]);
                        os.fill(KNOWN);
                        ka[0] = true;
                        continue;
                    }
                    for j in 0..n {
                        match t.at(dates[j]) {
                            Some(v) => {
                                ov[j] = v;
                                os[j] = KNOWN;
                            }
                            None => os[j] = ERROR,
                        }
                    }
                }
                Op::RefDate => {
                    ov.copy_from_slice(dates);
                    os.fill(KNOWN);
                }
                Op::Not(a) => {
                    let (av, as_) = (cv(*a), cs(*a));
                    for (o, x) in ov.iter_mut().zip(av) {
                        *o = i64::from(*x == 0);
                    }
                    os.copy_from_slice(as_);
                }
                Op::And(a, c) | Op::Or(a, c) => {
                    let decide = i64::from(matches!(node.op, Op::Or(..)));
                    let (av, as_, bv, bs) = (cv(*a), cs(*a), cv(*c), cs(*c));
                    let d = decide != 0;
                    for ((((o, st), (x, xs)), y), ys) in
                        ov.iter_mut().zip(os.iter_mut()).zip(av.iter().zip(as_)).zip(bv).zip(bs)
                    {
                        let f = ((*xs == KNOWN) & ((*x != 0) == d)) | ((*ys == KNOWN) & ((*y != 0) == d));
                        *st = if f { KNOWN } else { (*xs).max(*ys) };
                        *o = if f { decide } else { 1 - decide };
                    }
                }
                Op::Cmp(op, a, c) => {
                    let (av, as_) = (cv(*a), cs(*a));
                    // A comparison with a constant reads a scalar, not a column.
                    if let Op::Const(k) = nodes[*c as usize].op {
                        macro_rules! cmp_const {
                            ($f:expr) => {
                                for (o, x) in ov.iter_mut().zip(av) {
                                    *o = i64::from($f(*x, k));
                                }
                            };
                        }
                        match op {
                            ir::Cmp::Eq => cmp_const!(|x: i64, y: i64| x == y),
                            ir::Cmp::Ne => cmp_const!(|x: i64, y: i64| x != y),
                            ir::Cmp::Lt => cmp_const!(|x: i64, y: i64| x < y),
                            ir::Cmp::Le => cmp_const!(|x: i64, y: i64| x <= y),
                            ir::Cmp::Gt => cmp_const!(|x: i64, y: i64| x > y),
                            ir::Cmp::Ge => cmp_const!(|x: i64, y: i64| x >= y),
                        }
                        os.copy_from_slice(as_);
                        ka[0] = os.iter().all(|s| *s == KNOWN);
                        continue;
                    }
                    let (bv, bs) = (cv(*c), cs(*c));
                    macro_rules! cmp_loop {
                        ($f:expr) => {
                            for ((o, x), y) in ov.iter_mut().zip(av).zip(bv) {
                                *o = i64::from($f(*x, *y));
                            }
                        };
                    }
                    match op {
                        ir::Cmp::Eq => cmp_loop!(|x: i64, y: i64| x == y),
                        ir::Cmp::Ne => cmp_loop!(|x: i64, y: i64| x != y),
                        ir::Cmp::Lt => cmp_loop!(|x: i64, y: i64| x < y),
                        ir::Cmp::Le => cmp_loop!(|x: i64, y: i64| x <= y),
                        ir::Cmp::Gt => cmp_loop!(|x: i64, y: i64| x > y),
                        ir::Cmp::Ge => cmp_loop!(|x: i64, y: i64| x >= y),
                    }
                    for ((o, x), y) in os.iter_mut().zip(as_).zip(bs) {
                        *o = (*x).max(*y);
                    }
                }
                Op::IsNone(a) | Op::IsSome(a) => {
                    let want = if matches!(node.op, Op::IsNone(_)) { UNKNOWN } else { KNOWN };
                    let as_ = cs(*a);
                    for ((o, st), x) in ov.iter_mut().zip(os.iter_mut()).zip(as_) {
                        *o = i64::from(*x == want);
                        *st = if *x == ERROR { ERROR } else { KNOWN };
                    }
                }
                Op::In(a, set) => {
                    let (av, as_) = (cv(*a), cs(*a));
                    for (o, x) in ov.iter_mut().zip(av) {
                        *o = i64::from(set.contains(x));
                    }
                    os.copy_from_slice(as_);
                }
                Op::Add(a, c) | Op::Sub(a, c) | Op::Mul(a, c) => {
                    let (av, as_, bv, bs) = (cv(*a), cs(*a), cv(*c), cs(*c));
                    macro_rules! arith_loop {
                        ($f:ident) => {
                            for ((((o, st), x), y), (xs, ys)) in
                                ov.iter_mut().zip(os.iter_mut()).zip(av).zip(bv).zip(as_.iter().zip(bs))
                            {
                                let (r, f) = x.$f(*y);
                                let s = (*xs).max(*ys);
                                *o = r;
                                *st = s.max(u8::from((s == KNOWN) & f) * ERROR);
                            }
                        };
                    }
                    match node.op {
                        Op::Add(..) => arith_loop!(overflowing_add),
                        Op::Sub(..) => arith_loop!(overflowing_sub),
                        _ => arith_loop!(overflowing_mul),
                    }
                }
                Op::Neg(a) => {
                    let (av, as_) = (cv(*a), cs(*a));
                    for j in 0..n {
                        let (r, o) = av[j].overflowing_neg();
                        ov[j] = r;
                        os[j] = as_[j].max(u8::from((as_[j] == KNOWN) & o) * ERROR);
                    }
                }
                Op::MulPct(a, c) | Op::DivRound(a, c) | Op::DivPct(a, c) | Op::DivTrunc(a, c) | Op::AddMonths(a, c) => {
                    let (av, as_, bv, bs) = (cv(*a), cs(*a), cv(*c), cs(*c));
                    let f: fn(i64, i64) -> Option<i64> = match node.op {
                        Op::MulPct(..) => ir::mul_pct,
                        Op::DivRound(..) => ir::div_rnd,
                        Op::DivPct(..) => ir::div_pct,
                        Op::DivTrunc(..) => i64::checked_div,
                        _ => ir::add_months,
                    };
                    for j in 0..n {
                        let s = as_[j].max(bs[j]);
                        if s == KNOWN {
                            match f(av[j], bv[j]) {
                                Some(r) => {
                                    ov[j] = r;
                                    os[j] = KNOWN;
                                }
                                None => os[j] = ERROR,
                            }
                        } else {
                            os[j] = s;
                        }
                    }
                }
                Op::If(k, a, c) => {
                    let (kv, ks, av, as_, bv, bs) = (cv(*k), cs(*k), cv(*a), cs(*a), cv(*c), cs(*c));
                    for (((o, t), x), y) in ov.iter_mut().zip(kv).zip(av).zip(bv) {
                        *o = if *t != 0 { *x } else { *y };
                    }
                    for ((((st, k), t), xs), ys) in os.iter_mut().zip(ks).zip(kv).zip(as_).zip(bs) {
                        let branch = if *t != 0 { *xs } else { *ys };
                        *st = if *k != KNOWN { *k } else { branch };
                    }
                }
                Op::Min(xs) | Op::Max(xs) => {
                    let is_min = matches!(node.op, Op::Min(_));
                    let (first, rest) = xs.split_first().map(|(f, r)| (*f, r)).unwrap_or((0, &[]));
                    ov.copy_from_slice(cv(first));
                    os.copy_from_slice(cs(first));
                    for x in rest {
                        let (xv, xs_) = (cv(*x), cs(*x));
                        if is_min {
                            for (o, y) in ov.iter_mut().zip(xv) {
                                *o = (*o).min(*y);
                            }
                        } else {
                            for (o, y) in ov.iter_mut().zip(xv) {
                                *o = (*o).max(*y);
                            }
                        }
                        for (o, y) in os.iter_mut().zip(xs_) {
                            *o = (*o).max(*y);
                        }
                    }
                }
                Op::RoundDollar(a) | Op::Year(a) | Op::Month(a) => {
                    let (av, as_) = (cv(*a), cs(*a));
                    for j in 0..n {
                        os[j] = as_[j];
                        if as_[j] == KNOWN {
                            match node.op {
                                Op::RoundDollar(_) => match ir::round_dollar(av[j]) {
                                    Some(r) => ov[j] = r,
                                    None => os[j] = ERROR,
                                },
                                Op::Year(_) => ov[j] = ir::year(av[j]),
                                _ => ov[j] = ir::month(av[j]),
                            }
                        }
                    }
                }
            }
            ka[0] = os.iter().all(|s| *s == KNOWN);
        }
        // Row status, with the scalar evaluator's precedence, one flag
        // array at a time so that each loop is branch-free.
        let node_s = |id: u32| {
            if sc.known[id as usize] {
                &sc.known_states[..n]
            } else {
                &sc.s[id as usize * CHUNK..id as usize * CHUNK + n]
            }
        };
        let node_v = |id: u32| &sc.v[id as usize * CHUNK..id as usize * CHUNK + n];
        let mut err = [false; CHUNK];
        let mut fail = [false; CHUNK];
        let mut unk = [false; CHUNK];
        let (opens, closes) = (i64::from(self.opens.0), i64::from(self.closes.0));
        for j in 0..n {
            err[j] = b.invalid[r0 + j].is_some() | (dates[j] < opens) | (dates[j] > closes);
        }
        if mode == Mode::Complete {
            for q in self.questions.iter().filter(|q| !q.optional) {
                let have = &b.states[q.slot as usize][r0..r0 + n];
                match q.cond {
                    None => (0..n).for_each(|j| err[j] |= have[j] != KNOWN),
                    Some(k) => {
                        let (ks, kv) = (node_s(k), node_v(k));
                        (0..n).for_each(|j| err[j] |= (ks[j] == KNOWN) & (kv[j] == 1) & (have[j] != KNOWN));
                    }
                }
            }
        }
        for rule in &self.rules {
            let (rs, rv) = (node_s(rule.node), node_v(rule.node));
            for ((((e, u), f), s), v) in err.iter_mut().zip(unk.iter_mut()).zip(fail.iter_mut()).zip(rs).zip(rv) {
                *e |= *s == ERROR;
                *u |= *s == UNKNOWN;
                *f |= (*s == KNOWN) & (*v == 0);
            }
        }
        let amount_cells = self.amount.as_ref().map(|a| (node_s(a.node), node_v(a.node)));
        for j in 0..n {
            let mut st = if err[j] {
                RowStatus::Error
            } else if fail[j] {
                RowStatus::NotEligible
            } else if unk[j] {
                RowStatus::Undetermined
            } else {
                RowStatus::Eligible
            };
            amount[j] = 0;
            if st == RowStatus::Eligible
                && let Some((as_, av)) = amount_cells
            {
                match as_[j] {
                    ERROR => st = RowStatus::Error,
                    UNKNOWN => st = RowStatus::Undetermined,
                    _ => amount[j] = av[j].max(0),
                }
            }
            status[j] = st;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 build of the kernels and the portable one agree (the
    /// property tests exercise whichever this machine picks).
    #[test]
    fn portable_and_avx2_kernels_agree() {
        let p = crate::load(include_str!("../../../programs/shq-pret-loyer-2020.toml")).expect("loads").program;
        let mut rng = crate::generate::rng(11);
        let mut batch = Batch::with_capacity(&p, 5000);
        for i in 0..5000 {
            let a = Application::from_json(&crate::generate::application(&p, &mut rng, i)).expect("valid");
            batch.push(&p, &a);
        }
        for mode in [Mode::Complete, Mode::Draft] {
            let portable = p.evaluate_batch_with(&batch, mode, 2, false);
            assert!(
                portable.status.contains(&RowStatus::Eligible) && portable.status.contains(&RowStatus::NotEligible)
            );
            if has_avx2() {
                assert_eq!(p.evaluate_batch_with(&batch, mode, 1, true), portable);
            }
        }
    }
}
