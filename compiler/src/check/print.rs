//! The print family: arguments, and printf formats checked against them.

use super::body::Body;
use super::code::Code;
use super::{Checker, var_of};
use crate::hir::{self, ExprKind, Type};
use rstap_grammar::ast::{self};
use rstap_grammar::format::{Piece, Width, parse_format};
use rstap_grammar::{Diag, Span};

impl<'a> Checker<'a> {
    pub(super) fn print(&mut self, b: &mut Body<'_>, p: &'a ast::Print, span: Span) -> hir::Expr {
        let mut args = Vec::with_capacity(p.args.len());
        let single_hist = p.args.len() == 1 && matches!(p.args[0].node, ast::ExprKind::Hist { .. });
        for a in &p.args {
            if single_hist {
                if let Some(h) = self.hist(b, a) {
                    args.push(h);
                }
            } else {
                args.push(self.value(b, a));
            }
        }
        let formatted = matches!(p.kind, ast::PrintKind::Printf | ast::PrintKind::Sprintf);
        if formatted && let Some(f) = &p.format {
            self.format_args(&f.node, f.span, &args);
        }
        let ty = match p.kind {
            ast::PrintKind::Sprint
            | ast::PrintKind::Sprintln
            | ast::PrintKind::Sprintf
            | ast::PrintKind::Sprintd
            | ast::PrintKind::Sprintdln => Type::String,
            _ => Type::Unknown,
        };
        let kind = ExprKind::Print {
            kind: p.kind,
            format: p.format.as_ref().map(|f| f.node.clone()),
            args,
        };
        self.typed(kind, ty, span)
    }

    /// Checks printf arguments against the format's conversions.
    pub(super) fn format_args(&mut self, format: &str, span: Span, args: &[hir::Expr]) {
        // The parser has already rejected malformed formats.
        let Ok(pieces) = parse_format(format) else {
            return;
        };
        let mut wanted = Vec::new();
        for piece in pieces {
            let Piece::Conversion(c) = piece else {
                continue;
            };
            if c.width == Width::Arg {
                wanted.push(Type::Long);
            }
            if c.precision == Width::Arg {
                wanted.push(Type::Long);
            }
            wanted.push(if c.conv == 's' {
                Type::String
            } else {
                Type::Long
            });
        }
        if wanted.len() != args.len() {
            self.error(
                Diag::new(
                    Code::E0304,
                    span,
                    format!(
                        "print format expects {} argument(s), but {} given",
                        wanted.len(),
                        args.len()
                    ),
                )
                .with_label("this format"),
            );
            return;
        }
        for (a, ty) in args.iter().zip(wanted) {
            self.require(var_of(a), ty, a.span);
        }
    }
}
