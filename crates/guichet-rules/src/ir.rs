//! The compiled form of expressions and the scalar evaluator.
//!
//! Every typed value is an `i64` lane (cents, hundredths of a percent, days
//! since 1970, option index, interned text id, 0/1) plus a state: known,
//! unknown (a missing answer: three-valued logic) or error. Nodes are stored
//! in one arena in topological order (children before parents), so both
//! evaluators are a single forward pass with no recursion: the scalar one
//! here, and the columnar one in `columnar.rs` which runs the same ops over
//! chunks of rows.

use crate::syntax::Span;
use crate::value::{Date, div_round};

pub type NodeId = u32;

/// State of a cell. The order matters: combining children takes the maximum.
pub const KNOWN: u8 = 0;
pub const UNKNOWN: u8 = 1;
pub const ERROR: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    #[inline(always)]
    pub fn apply(self, a: i64, b: i64) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
    pub fn negate(self) -> Cmp {
        match self {
            Cmp::Eq => Cmp::Ne,
            Cmp::Ne => Cmp::Eq,
            Cmp::Lt => Cmp::Ge,
            Cmp::Le => Cmp::Gt,
            Cmp::Gt => Cmp::Le,
            Cmp::Ge => Cmp::Lt,
        }
    }
    pub fn flip(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            other => other,
        }
    }
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// What went wrong while evaluating a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    DivisionByZero,
    Overflow,
    /// The reference date is before a parameter's first effective date.
    NoParameterValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    Const(i64),
    /// An answer slot, as given.
    Input(u32),
    /// The answer if its question is asked (condition known true), else unknown.
    Gate(NodeId, NodeId),
    Param(u32),
    /// The reference date (`submitted_on`).
    RefDate,
    Not(NodeId),
    And(NodeId, NodeId),
    Or(NodeId, NodeId),
    Cmp(Cmp, NodeId, NodeId),
    IsNone(NodeId),
    IsSome(NodeId),
    In(NodeId, Box<[i64]>),
    Add(NodeId, NodeId),
    Sub(NodeId, NodeId),
    Mul(NodeId, NodeId),
    Neg(NodeId),
    /// money × percent, rounded to the cent.
    MulPct(NodeId, NodeId),
    /// a ÷ b rounded half away from zero.
    DivRound(NodeId, NodeId),
    /// money ÷ money as a percentage.
    DivPct(NodeId, NodeId),
    /// integer ÷ integer toward zero.
    DivTrunc(NodeId, NodeId),
    If(NodeId, NodeId, NodeId),
    Min(Box<[NodeId]>),
    Max(Box<[NodeId]>),
    RoundDollar(NodeId),
    AddMonths(NodeId, NodeId),
    Year(NodeId),
    Month(NodeId),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub op: Op,
    /// Byte range in the program file.
    pub span: Span,
}

/// One evaluated cell. For an error, `v` holds the fault: kind in the high
/// half, node id in the low half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub v: i64,
    pub s: u8,
}

impl Cell {
    pub const UNKNOWN: Cell = Cell { v: 0, s: UNKNOWN };
    #[inline(always)]
    pub fn known(v: i64) -> Cell {
        Cell { v, s: KNOWN }
    }
    fn fault(kind: FaultKind, node: usize) -> Cell {
        let k = match kind {
            FaultKind::DivisionByZero => 1i64,
            FaultKind::Overflow => 2,
            FaultKind::NoParameterValue => 3,
        };
        Cell { v: (k << 32) | (node as i64 & 0xffff_ffff), s: ERROR }
    }
    /// The fault of an error cell.
    pub fn fault_of(self) -> Option<(FaultKind, NodeId)> {
        if self.s != ERROR {
            return None;
        }
        let kind = match self.v >> 32 {
            1 => FaultKind::DivisionByZero,
            2 => FaultKind::Overflow,
            _ => FaultKind::NoParameterValue,
        };
        Some((kind, (self.v & 0xffff_ffff) as NodeId))
    }
    pub fn as_known(self) -> Option<i64> {
        (self.s == KNOWN).then_some(self.v)
    }
}

/// The values of one parameter over time, sorted by effective date.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub dates: Vec<i64>,
    pub values: Vec<i64>,
}

impl Timeline {
    #[inline]
    pub fn at(&self, date: i64) -> Option<i64> {
        // Few entries: a backwards scan beats a binary search.
        let mut i = self.dates.len();
        while i > 0 {
            i -= 1;
            if self.dates[i] <= date {
                return Some(self.values[i]);
            }
        }
        None
    }
}

#[inline(always)]
fn both(a: Cell, b: Cell) -> Option<Cell> {
    if a.s == KNOWN && b.s == KNOWN {
        None
    } else if a.s == ERROR {
        Some(a)
    } else if b.s == ERROR {
        Some(b)
    } else {
        Some(Cell::UNKNOWN)
    }
}

#[inline(always)]
fn arith(a: Cell, b: Cell, i: usize, f: impl Fn(i64, i64) -> Option<i64>, kind: FaultKind) -> Cell {
    if let Some(c) = both(a, b) {
        return c;
    }
    match f(a.v, b.v) {
        Some(v) => Cell::known(v),
        None => Cell::fault(kind, i),
    }
}

pub(crate) fn mul_pct(a: i64, b: i64) -> Option<i64> {
    div_round(i128::from(a) * i128::from(b), 10_000).and_then(|v| i64::try_from(v).ok())
}
pub(crate) fn div_pct(a: i64, b: i64) -> Option<i64> {
    div_round(i128::from(a) * 10_000, i128::from(b)).and_then(|v| i64::try_from(v).ok())
}
pub(crate) fn div_rnd(a: i64, b: i64) -> Option<i64> {
    div_round(i128::from(a), i128::from(b)).and_then(|v| i64::try_from(v).ok())
}
pub(crate) fn round_dollar(a: i64) -> Option<i64> {
    div_rnd(a, 100).and_then(|d| d.checked_mul(100))
}
pub(crate) fn add_months(d: i64, n: i64) -> Option<i64> {
    let d = Date(i32::try_from(d).ok()?);
    d.add_months(n).map(|x| i64::from(x.0))
}
pub(crate) fn year(d: i64) -> i64 {
    i32::try_from(d).map(|d| Date(d).year()).unwrap_or(0)
}
pub(crate) fn month(d: i64) -> i64 {
    i32::try_from(d).map(|d| Date(d).month()).unwrap_or(0)
}

/// Evaluates every node once, in order, into `out` (resized to the arena).
pub fn eval_scalar(nodes: &[Node], inputs: &[Cell], params: &[Timeline], date: i64, out: &mut Vec<Cell>) {
    out.clear();
    out.reserve(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        // Children always precede their parent, so these reads are in bounds.
        let c = |n: NodeId| out[n as usize];
        let cell = match &node.op {
            Op::Const(v) => Cell::known(*v),
            Op::Input(s) => inputs.get(*s as usize).copied().unwrap_or(Cell::UNKNOWN),
            Op::Gate(x, cond) => {
                let k = c(*cond);
                match k.s {
                    KNOWN if k.v != 0 => c(*x),
                    ERROR => k,
                    _ => Cell::UNKNOWN,
                }
            }
            Op::Param(p) => match params[*p as usize].at(date) {
                Some(v) => Cell::known(v),
                None => Cell::fault(FaultKind::NoParameterValue, i),
            },
            Op::RefDate => Cell::known(date),
            Op::Not(a) => {
                let a = c(*a);
                if a.s == KNOWN { Cell::known(i64::from(a.v == 0)) } else { a }
            }
            Op::And(a, b) => {
                let (a, b) = (c(*a), c(*b));
                if (a.s == KNOWN && a.v == 0) || (b.s == KNOWN && b.v == 0) {
                    Cell::known(0)
                } else {
                    both(a, b).unwrap_or(Cell::known(1))
                }
            }
            Op::Or(a, b) => {
                let (a, b) = (c(*a), c(*b));
                if (a.s == KNOWN && a.v != 0) || (b.s == KNOWN && b.v != 0) {
                    Cell::known(1)
                } else {
                    both(a, b).unwrap_or(Cell::known(0))
                }
            }
            Op::Cmp(op, a, b) => {
                let (a, b) = (c(*a), c(*b));
                both(a, b).unwrap_or_else(|| Cell::known(i64::from(op.apply(a.v, b.v))))
            }
            Op::IsNone(a) => {
                let a = c(*a);
                if a.s == ERROR { a } else { Cell::known(i64::from(a.s == UNKNOWN)) }
            }
            Op::IsSome(a) => {
                let a = c(*a);
                if a.s == ERROR { a } else { Cell::known(i64::from(a.s == KNOWN)) }
            }
            Op::In(a, set) => {
                let a = c(*a);
                if a.s == KNOWN { Cell::known(i64::from(set.contains(&a.v))) } else { a }
            }
            Op::Add(a, b) => arith(c(*a), c(*b), i, i64::checked_add, FaultKind::Overflow),
            Op::Sub(a, b) => arith(c(*a), c(*b), i, i64::checked_sub, FaultKind::Overflow),
            Op::Mul(a, b) => arith(c(*a), c(*b), i, i64::checked_mul, FaultKind::Overflow),
            Op::Neg(a) => {
                let a = c(*a);
                if a.s != KNOWN {
                    a
                } else {
                    a.v.checked_neg().map(Cell::known).unwrap_or(Cell::fault(FaultKind::Overflow, i))
                }
            }
            Op::MulPct(a, b) => arith(c(*a), c(*b), i, mul_pct, FaultKind::Overflow),
            Op::DivRound(a, b) | Op::DivPct(a, b) | Op::DivTrunc(a, b) => {
                let (a, b) = (c(*a), c(*b));
                if let Some(x) = both(a, b) {
                    x
                } else if b.v == 0 {
                    Cell::fault(FaultKind::DivisionByZero, i)
                } else {
                    let r = match &node.op {
                        Op::DivRound(..) => div_rnd(a.v, b.v),
                        Op::DivPct(..) => div_pct(a.v, b.v),
                        _ => a.v.checked_div(b.v),
                    };
                    r.map(Cell::known).unwrap_or(Cell::fault(FaultKind::Overflow, i))
                }
            }
            Op::If(k, a, b) => {
                let k = c(*k);
                if k.s != KNOWN {
                    k
                } else if k.v != 0 {
                    c(*a)
                } else {
                    c(*b)
                }
            }
            Op::Min(xs) | Op::Max(xs) => {
                let is_min = matches!(node.op, Op::Min(_));
                let mut acc = Cell::known(if is_min { i64::MAX } else { i64::MIN });
                let mut state = Cell::known(0);
                for x in xs.iter() {
                    let x = c(*x);
                    if x.s == ERROR {
                        state = x;
                        break;
                    }
                    if x.s == UNKNOWN {
                        state = Cell::UNKNOWN;
                    } else if (is_min && x.v < acc.v) || (!is_min && x.v > acc.v) {
                        acc = x;
                    }
                }
                if state.s == KNOWN { acc } else { state }
            }
            Op::RoundDollar(a) => {
                let a = c(*a);
                if a.s != KNOWN {
                    a
                } else {
                    round_dollar(a.v).map(Cell::known).unwrap_or(Cell::fault(FaultKind::Overflow, i))
                }
            }
            Op::AddMonths(a, b) => arith(c(*a), c(*b), i, add_months, FaultKind::Overflow),
            Op::Year(a) => {
                let a = c(*a);
                if a.s == KNOWN { Cell::known(year(a.v)) } else { a }
            }
            Op::Month(a) => {
                let a = c(*a);
                if a.s == KNOWN { Cell::known(month(a.v)) } else { a }
            }
        };
        out.push(cell);
    }
}
