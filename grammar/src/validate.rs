//! Checks stap makes while parsing that a context-free grammar cannot: `return`
//! only in functions, `break`/`continue` only in loops, and embedded C and
//! guru-only operators only when privileged. Also bounds how deeply statements
//! and expressions nest, so that no later pass runs out of stack.

use crate::ast::*;
use crate::diag::{Code, Diag, Diagnostics};
use crate::span::Span;
use crate::visit::{Visitor, walk_expr, walk_item, walk_stmt};

/// How deeply statements and expressions may nest. Every pass after parsing
/// recurses over the tree, about a kilobyte of stack a level: a script of a
/// million tokens (macros make one from a few hundred bytes) could otherwise
/// nest a million deep and overflow even rstap's 1 GiB stack. Generated
/// `else if` chains of a few thousand branches stay well inside.
pub const MAX_DEPTH: u32 = 10_000;

pub fn check(file: &File, privileged: bool) -> Result<(), Diagnostics> {
    let mut v = Validator {
        privileged,
        errors: Vec::new(),
        in_function: false,
        loops: 0,
        depth: 0,
        too_deep: false,
    };
    for item in &file.items {
        v.item(item);
    }
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(v.errors))
    }
}

struct Validator {
    privileged: bool,
    in_function: bool,
    /// How many loops enclose the current statement.
    loops: u32,
    /// How many statements and expressions enclose the current one.
    depth: u32,
    /// Whether the nesting limit was reported (once is enough).
    too_deep: bool,
    errors: Vec<Diag>,
}

impl Validator {
    /// Whether a node at `span` lies deeper than [`MAX_DEPTH`]: then it is
    /// reported (the first time) and not walked.
    fn beyond_limit(&mut self, span: Span) -> bool {
        if self.depth < MAX_DEPTH {
            return false;
        }
        if !self.too_deep {
            self.too_deep = true;
            self.errors.push(
                Diag::new(
                    Code::E0113,
                    span,
                    format!("statements and expressions nested more than {MAX_DEPTH} deep"),
                )
                .with_label("nested too deeply here")
                .with_note("split the expression or statement into smaller ones"),
            );
        }
        true
    }

    fn embedded(&mut self, span: Span, what: &str) {
        if !self.privileged {
            self.errors.push(
                Diag::new(Code::E0150, span, format!("{what} in unprivileged script; need -g"))
                    .with_label("embedded C needs guru mode")
                    .with_note("rstap parses embedded C but never runs it: scripts that need it are refused at elaboration"),
            );
        }
    }

    fn guru_operator(&mut self, span: Span, name: &str) {
        if !self.privileged {
            self.errors.push(
                Diag::new(
                    Code::E0150,
                    span,
                    format!("using {name} operator not permitted; need -g"),
                )
                .with_label("this operator is only available in guru mode"),
            );
        }
    }
}

impl Visitor for Validator {
    fn item(&mut self, item: &Item) {
        match item {
            Item::Embedded(code) => self.embedded(code.span, "embedded code"),
            Item::Function(f) => {
                self.in_function = true;
                if let FunctionBody::Embedded(code) = &f.body {
                    self.embedded(code.span, "embedded code");
                }
            }
            _ => self.in_function = false,
        }
        self.loops = 0;
        walk_item(self, item);
    }

    fn stmt(&mut self, s: &Stmt) {
        if self.beyond_limit(s.span) {
            return;
        }
        if matches!(s.node, StmtKind::Return(_)) && !self.in_function {
            self.errors.push(
                Diag::new(
                    Code::E0140,
                    Span {
                        end: s.span.start + 6,
                        ..s.span
                    },
                    "found 'return' not in function context",
                )
                .with_label("probes cannot return a value; use `next` to leave a probe handler"),
            );
        }
        // stap refuses these when it translates; lowering would otherwise
        // drop them silently and run the statements after them.
        let jump = match s.node {
            StmtKind::Break => Some("break"),
            StmtKind::Continue => Some("continue"),
            _ => None,
        };
        if let Some(word) = jump
            && self.loops == 0
        {
            self.errors.push(
                Diag::new(Code::E0140, s.span, format!("cannot '{word}' outside loop"))
                    .with_label("no while, for or foreach loop encloses this"),
            );
        }
        let loop_stmt = matches!(
            s.node,
            StmtKind::While { .. } | StmtKind::For { .. } | StmtKind::Foreach(_)
        );
        self.loops += u32::from(loop_stmt);
        self.depth += 1;
        walk_stmt(self, s);
        self.depth -= 1;
        self.loops -= u32::from(loop_stmt);
    }

    fn expr(&mut self, e: &Expr) {
        if self.beyond_limit(e.span) {
            return;
        }
        match &e.node {
            ExprKind::Embedded(_) => self.embedded(e.span, "embedded expression code"),
            ExprKind::Const(_) => self.guru_operator(e.span, "@const"),
            ExprKind::Register { user: false, .. } => self.guru_operator(e.span, "@kregister"),
            ExprKind::Deref { user: false, .. } => self.guru_operator(e.span, "@kderef"),
            _ => {}
        }
        self.depth += 1;
        walk_expr(self, e);
        self.depth -= 1;
    }
}
