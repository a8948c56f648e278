//! Diagnostics shared by every pass: one value type ([`Diag`]) with a stable code,
//! one conversion to codespan, one renderer used by `rstap` and the snapshot tests.
//! Each pass keeps its own code enum (E01xx here; E02xx–E04xx in the compiler) and
//! turns it into a [`Diag`] at its edge.

use crate::source::SourceMap;
use crate::span::{FileId, Span};
use codespan_reporting::diagnostic::{Diagnostic, Label};
use codespan_reporting::term::{self, Config};

/// Stable codes of lexical, preprocessor and parse errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Code {
    /// A character that starts no token.
    E0101 = 101,
    /// A string literal without its closing quote.
    E0102 = 102,
    /// A `/* */` comment or `%{ %}` block without its end.
    E0103 = 103,
    /// A malformed or out-of-range number.
    E0104 = 104,
    /// A preprocessor conditional that is malformed.
    E0110 = 110,
    /// A `@define` problem: redefinition, arity, undefined macro.
    E0111 = 111,
    /// A script argument (`$N`, `@N`) that was not given.
    E0112 = 112,
    /// Statements or expressions nested more deeply than rstap's passes allow.
    E0113 = 113,
    /// The parser found a token it did not expect.
    E0120 = 120,
    /// The script ended in the middle of a construct.
    E0121 = 121,
    /// A printf-style format string that stap would reject.
    E0130 = 130,
    /// A construct in the wrong place (`return` outside a function, ...).
    E0140 = 140,
    /// Embedded C in a script that is not privileged.
    E0150 = 150,
}

impl From<Code> for u16 {
    fn from(code: Code) -> u16 {
        code as u16
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One diagnostic: what went wrong, where, and optional secondary places.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diag {
    /// The number of the stable code: 120 is E0120.
    pub code: u16,
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    pub label: String,
    pub secondary: Vec<(Span, String)>,
    pub notes: Vec<String>,
}

impl Diag {
    pub fn new(code: impl Into<u16>, span: Span, message: impl Into<String>) -> Diag {
        Diag {
            code: code.into(),
            severity: Severity::Error,
            message: message.into(),
            span,
            label: String::new(),
            secondary: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The code as printed: `E0120`.
    pub fn code_name(&self) -> String {
        format!("E{:04}", self.code)
    }

    pub fn warning(mut self) -> Diag {
        self.severity = Severity::Warning;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diag {
        self.label = label.into();
        self
    }

    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Diag {
        self.secondary.push((span, label.into()));
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diag {
        self.notes.push(note.into());
        self
    }

    pub fn to_diagnostic(&self) -> Diagnostic<FileId> {
        let mut labels =
            vec![Label::primary(self.span.file, self.span.range()).with_message(&self.label)];
        for (span, msg) in &self.secondary {
            labels.push(Label::secondary(span.file, span.range()).with_message(msg));
        }
        let diag = match self.severity {
            Severity::Error => Diagnostic::error(),
            Severity::Warning => Diagnostic::warning(),
        };
        diag.with_code(self.code_name())
            .with_message(&self.message)
            .with_labels(labels)
            .with_notes(self.notes.clone())
    }
}

/// The diagnostics of one pass, in the order they were found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diag>);

impl Diagnostics {
    pub fn one(e: Diag) -> Diagnostics {
        Diagnostics(vec![e])
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diag::is_error)
    }

    /// Renders every diagnostic as plain text (no colour), the way `rstap` prints them
    /// to a pipe and the way the snapshot tests record them.
    pub fn render(&self, files: &SourceMap) -> String {
        let config = Config::default();
        let shown = files.printable();
        let files = shown.as_ref().unwrap_or(files);
        let mut out = String::new();
        for e in &self.0 {
            if term::emit_to_string(&mut out, &config, files, &e.to_diagnostic()).is_err() {
                out.push_str(&format!("error[{}]: {}\n", e.code_name(), e.message));
            }
        }
        out
    }
}

impl From<Diag> for Diagnostics {
    fn from(e: Diag) -> Diagnostics {
        Diagnostics::one(e)
    }
}
