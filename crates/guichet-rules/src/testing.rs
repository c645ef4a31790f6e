//! Running the test cases written inside a program file.

use crate::answers::Application;
use crate::eval::{Mode, Outcome};
use crate::program::Program;
use crate::syntax::Span;

/// One test's result: what differed between expected and actual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub name: String,
    pub span: Span,
    /// `(what, expected, actual)`; empty when the test passed.
    pub mismatches: Vec<(String, String, String)>,
}

impl TestOutcome {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestReport {
    pub outcomes: Vec<TestOutcome>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.passed()).count()
    }
    pub fn failed(&self) -> usize {
        self.outcomes.len() - self.passed()
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "(none)".into() } else { v.join(", ") }
}

impl Program {
    /// Runs every test case of the file.
    pub fn run_tests(&self) -> TestReport {
        let mut outcomes = Vec::new();
        for t in &self.tests {
            let mut mismatches = Vec::new();
            let app = Application { id: None, submitted_on: t.submitted_on, answers: t.answers.clone() };
            let result = self.prepare(&app).and_then(|inputs| self.evaluate(&inputs, Mode::Complete));
            let e = &t.expect;
            match result {
                Err(err) => match e.error {
                    Some(code) if code == err.code => {}
                    Some(code) => mismatches.push((
                        "error".into(),
                        code.as_str().into(),
                        format!("{}: {}", err.code.as_str(), err.message),
                    )),
                    None => mismatches.push((
                        "error".into(),
                        "(none)".into(),
                        format!("{}: {}", err.code.as_str(), err.message),
                    )),
                },
                Ok(ev) => {
                    if let Some(code) = e.error {
                        mismatches.push(("error".into(), code.as_str().into(), "(none)".into()));
                    }
                    if let Some(want) = e.eligible
                        && want != ev.eligible()
                    {
                        mismatches.push((
                            "eligible".into(),
                            want.to_string(),
                            format!("{} ({:?})", ev.eligible(), ev.status),
                        ));
                    }
                    if let Some(want) = e.amount {
                        let got = ev.amount.unwrap_or_default();
                        if want != got {
                            mismatches.push((
                                "amount".into(),
                                want.to_string(),
                                ev.amount.map(|m| m.to_string()).unwrap_or_else(|| "(none: not eligible)".into()),
                            ));
                        }
                    }
                    for (want, outcome, what) in
                        [(&e.failed, Outcome::Fail, "failed"), (&e.undetermined, Outcome::Unknown, "undetermined")]
                    {
                        if let Some(want) = want {
                            let got: Vec<String> = ev
                                .rules
                                .iter()
                                .filter(|r| r.outcome == outcome)
                                .map(|r| self.rules[r.rule].name.clone())
                                .collect();
                            let mut a = want.clone();
                            a.sort();
                            let mut b = got.clone();
                            b.sort();
                            if a != b {
                                mismatches.push((what.into(), list(want), list(&got)));
                            }
                        }
                    }
                }
            }
            outcomes.push(TestOutcome { name: t.name.clone(), span: t.span.clone(), mismatches });
        }
        TestReport { outcomes }
    }
}
