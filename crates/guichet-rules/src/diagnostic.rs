//! Compiler-style diagnostics: file, line, column, a caret under the span,
//! and a hint. Rendering goes to a `String`; the caller decides where it goes.

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a program file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Byte range in the program file; empty when the problem has no place.
    pub span: Range<usize>,
    /// A short label under the caret.
    pub label: Option<String>,
    /// Other places worth showing (a first definition, a cycle's members).
    pub related: Vec<(Range<usize>, String)>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, span: Range<usize>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span,
            label: None,
            related: Vec::new(),
            hint: None,
        }
    }
    pub fn warning(message: impl Into<String>, span: Range<usize>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(message, span) }
    }
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn with_related(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Line and column (both from 1) of the start of the span.
    pub fn line_col(&self, source: &str) -> (usize, usize) {
        line_col(source, self.span.start)
    }

    /// Renders like a compiler: `error: …` then `┌─ file:line:col`, the
    /// source line, a caret under the span and the hint.
    pub fn render(&self, file_name: &str, source: &str) -> String {
        let file = SimpleFile::new(file_name, source);
        let clamp = |r: &Range<usize>| {
            let s = r.start.min(source.len());
            let e = r.end.clamp(s, source.len());
            s..e
        };
        let mut d = match self.severity {
            Severity::Error => CsDiagnostic::error(),
            Severity::Warning => CsDiagnostic::warning(),
        }
        .with_message(&self.message);
        let mut labels =
            vec![Label::primary((), clamp(&self.span)).with_message(self.label.clone().unwrap_or_default())];
        for (span, msg) in &self.related {
            labels.push(Label::secondary((), clamp(span)).with_message(msg));
        }
        d = d.with_labels(labels);
        if let Some(h) = &self.hint {
            d = d.with_notes(vec![format!("hint: {h}")]);
        }
        let config = term::Config::default();
        match term::emit_into_string(&config, &file, &d) {
            Ok(s) => s,
            Err(_) => {
                let (l, c) = self.line_col(source);
                format!("{file_name}:{l}:{c}: {}\n", self.message)
            }
        }
    }
}

/// Line and column (both from 1, column in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}
