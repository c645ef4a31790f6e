//! # guichet-rules
//!
//! Program files for aid programs: a TOML file declares questions, dated
//! parameters, derived values, eligibility rules, the amount, the payee and
//! tests. This crate parses and checks it like a compiler ([`load`]),
//! evaluates one application with an explanation ([`Program::evaluate`]),
//! evaluates a whole caseload in a columnar pass ([`Batch`]) and compares two
//! versions on it ([`simulate`]).
//!
//! Pure: no file, network or database access. Callers pass text in and get
//! values and diagnostics out.

mod answers;
pub mod canonical;
mod columnar;
mod compile;
mod diagnostic;
mod eval;
mod explain;
pub mod generate;
mod ir;
mod jsonline;
mod program;
pub mod raw;
mod reach;
pub mod simulate;
pub mod syntax;
mod testing;
pub mod value;

pub use answers::{AnswerValue, Answers, Application, Inputs};
pub use columnar::{Batch, BatchOutcome, RowStatus};
pub use compile::load;
pub use diagnostic::{Diagnostic, Severity, line_col};
pub use eval::{Evaluation, Mode, NamedValue, Outcome, Requirement, RuleResult, Status};
pub use program::{
    Agreement, Amount, ChoiceOption, Derived, Expectation, Parameter, Payee, Program, Question, Ref, Rule, Section,
    TestCase,
};
pub use raw::{Bilingual, Decision, QuestionType};
pub use simulate::{Simulation, simulate};
pub use testing::{TestOutcome, TestReport};
pub use value::{Date, Money, Percent, Type, Value};

/// A program that passed every check, with the warnings worth reading.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub program: Program,
    pub warnings: Vec<Diagnostic>,
}

/// The two languages of every text. French is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// Why an application could not be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The reference date is outside the program's opening window.
    OutsideWindow,
    /// A question that must be answered was not.
    MissingAnswer,
    /// An answer has the wrong type, is out of bounds, or names no question.
    InvalidAnswer,
    DivisionByZero,
    Overflow,
    /// A parameter has no value in force on the reference date.
    NoParameterValue,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 6] = [
        ErrorCode::OutsideWindow,
        ErrorCode::MissingAnswer,
        ErrorCode::InvalidAnswer,
        ErrorCode::DivisionByZero,
        ErrorCode::Overflow,
        ErrorCode::NoParameterValue,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::OutsideWindow => "outside_window",
            ErrorCode::MissingAnswer => "missing_answer",
            ErrorCode::InvalidAnswer => "invalid_answer",
            ErrorCode::DivisionByZero => "division_by_zero",
            ErrorCode::Overflow => "overflow",
            ErrorCode::NoParameterValue => "no_parameter_value",
        }
    }
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// An application that cannot be evaluated, with a precise message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub code: ErrorCode,
    pub message: String,
    /// The question concerned, when there is one.
    pub field: Option<String>,
    /// The expression concerned (byte range in the program file).
    pub span: Option<std::ops::Range<usize>>,
}

impl EvalError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        EvalError { code, message: message.into(), field: None, span: None }
    }
    pub fn field(mut self, f: &str) -> Self {
        self.field = Some(f.to_owned());
        self
    }
}

/// The JSON Schema of the program file format, for editors.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(raw::RawProgram)).unwrap_or(serde_json::Value::Null)
}
