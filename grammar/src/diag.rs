//! Diagnostics of the front end: one error type, stable E01xx codes, one conversion
//! to codespan, one renderer shared by `rstap` and the snapshot tests.

use crate::source::SourceMap;
use crate::span::{FileId, Span};
use codespan_reporting::diagnostic::{Diagnostic, Label};
use codespan_reporting::term::{self, Config};

/// Stable codes of lexical, preprocessor and parse errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// A character that starts no token.
    E0101,
    /// A string literal without its closing quote.
    E0102,
    /// A `/* */` comment or `%{ %}` block without its end.
    E0103,
    /// A malformed or out-of-range number.
    E0104,
    /// A preprocessor conditional that is malformed.
    E0110,
    /// A `@define` problem: redefinition, arity, undefined macro.
    E0111,
    /// A script argument (`$N`, `@N`) that was not given.
    E0112,
    /// The parser found a token it did not expect.
    E0120,
    /// The script ended in the middle of a construct.
    E0121,
    /// A printf-style format string that stap would reject.
    E0130,
    /// A construct in the wrong place (`return` outside a function, ...).
    E0140,
    /// Embedded C in a script that is not privileged.
    E0150,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::E0101 => "E0101",
            Code::E0102 => "E0102",
            Code::E0103 => "E0103",
            Code::E0104 => "E0104",
            Code::E0110 => "E0110",
            Code::E0111 => "E0111",
            Code::E0112 => "E0112",
            Code::E0120 => "E0120",
            Code::E0121 => "E0121",
            Code::E0130 => "E0130",
            Code::E0140 => "E0140",
            Code::E0150 => "E0150",
        }
    }
}

/// One front-end error: what went wrong, where, and optional secondary places.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub code: Code,
    pub message: String,
    pub span: Span,
    pub label: String,
    pub secondary: Vec<(Span, String)>,
    pub notes: Vec<String>,
}

impl SyntaxError {
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            code,
            message: message.into(),
            span,
            label: String::new(),
            secondary: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> SyntaxError {
        self.label = label.into();
        self
    }

    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> SyntaxError {
        self.secondary.push((span, label.into()));
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> SyntaxError {
        self.notes.push(note.into());
        self
    }

    pub fn to_diagnostic(&self) -> Diagnostic<FileId> {
        let mut labels =
            vec![Label::primary(self.span.file, self.span.range()).with_message(&self.label)];
        for (span, msg) in &self.secondary {
            labels.push(Label::secondary(span.file, span.range()).with_message(msg));
        }
        Diagnostic::error()
            .with_code(self.code.as_str())
            .with_message(&self.message)
            .with_labels(labels)
            .with_notes(self.notes.clone())
    }
}

/// All errors of one parse, in source order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<SyntaxError>);

impl Diagnostics {
    pub fn one(e: SyntaxError) -> Diagnostics {
        Diagnostics(vec![e])
    }

    /// Renders every diagnostic as plain text (no colour), the way `rstap` prints them
    /// to a pipe and the way the snapshot tests record them.
    pub fn render(&self, files: &SourceMap) -> String {
        let config = Config::default();
        let mut out = String::new();
        for e in &self.0 {
            if term::emit_to_string(&mut out, &config, files, &e.to_diagnostic()).is_err() {
                out.push_str(&format!("error[{}]: {}\n", e.code.as_str(), e.message));
            }
        }
        out
    }
}

impl From<SyntaxError> for Diagnostics {
    fn from(e: SyntaxError) -> Diagnostics {
        Diagnostics::one(e)
    }
}
