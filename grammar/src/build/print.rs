//! Calls, and the print family stap recognises in its parser (`printf` needs a
//! literal format, checked directive by directive).

use super::MemberTok;
use super::{BExpr, Ctx, PResult, user};
use crate::ast::*;
use crate::diag::{Code, Diag};
use crate::format::parse_format;
use crate::span::Spanned;

const PRINT_FAMILY: &[(&str, PrintKind)] = &[
    ("print", PrintKind::Print),
    ("println", PrintKind::Println),
    ("printf", PrintKind::Printf),
    ("printd", PrintKind::Printd),
    ("printdln", PrintKind::Printdln),
    ("sprint", PrintKind::Sprint),
    ("sprintln", PrintKind::Sprintln),
    ("sprintf", PrintKind::Sprintf),
    ("sprintd", PrintKind::Sprintd),
    ("sprintdln", PrintKind::Sprintdln),
];

impl Ctx<'_> {
    pub fn call(
        &self,
        name: Ident,
        args: Vec<Expr>,
        members: Option<Vec<MemberTok>>,
        l: usize,
        r: usize,
    ) -> PResult<BExpr> {
        let e = match PRINT_FAMILY.iter().find(|(n, _)| *n == name.node) {
            Some(&(_, kind)) => self.print(kind, args, l, r)?,
            None => Spanned::new(ExprKind::Call { name, args }, self.span(l, r)),
        };
        let e = Box::new(e);
        self.maybe_chain(e, members, l, r)
    }

    fn print(&self, kind: PrintKind, mut args: Vec<Expr>, l: usize, r: usize) -> PResult<Expr> {
        let span = self.span(l, r);
        let needs_format = matches!(kind, PrintKind::Printf | PrintKind::Sprintf);
        let needs_delim = matches!(
            kind,
            PrintKind::Printd | PrintKind::Printdln | PrintKind::Sprintd | PrintKind::Sprintdln
        );
        let mut format = None;
        if needs_format || needs_delim {
            let first = (!args.is_empty()).then(|| args.remove(0));
            match first {
                Some(Spanned {
                    node: ExprKind::Str(s),
                    span,
                }) => {
                    if needs_format && let Err(e) = parse_format(&s) {
                        return user(
                            Diag::new(Code::E0130, span, e.message()).with_label(
                                "see `man 3stap printf` for the directives stap accepts",
                            ),
                        );
                    }
                    format = Some(Spanned::new(s, span));
                }
                other => {
                    let at = other.map_or(span, |e| e.span);
                    let what = if needs_format { "format" } else { "delimiter" };
                    return user(
                        Diag::new(Code::E0130, at, "expected literal string").with_label(format!(
                            "the {what} of this print call must be a string literal"
                        )),
                    );
                }
            }
            if needs_delim && args.len() < 2 {
                return user(
                    Diag::new(
                        Code::E0130,
                        span,
                        "expected at least two values after the delimiter",
                    )
                    .with_label("printd joins two or more values"),
                );
            }
        } else if args.is_empty() && matches!(kind, PrintKind::Print | PrintKind::Sprint) {
            return user(
                Diag::new(Code::E0130, span, "expected literal string or number")
                    .with_label("print needs at least one value"),
            );
        }
        Ok(Spanned::new(
            ExprKind::Print(Box::new(Print { kind, format, args })),
            span,
        ))
    }
}
