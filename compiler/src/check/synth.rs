//! Building blocks for HIR the checker writes itself (`@entry`'s saving probe,
//! `process.end`'s filter): expressions already typed, marked [`SYNTHESIZED`].

use crate::builtins::Builtin;
use crate::hir::{AssignOp, BinOp, Expr, ExprKind, Place, SYNTHESIZED, Stmt, StmtKind, Type};
use rstap_grammar::Span;

pub(super) fn typed(kind: ExprKind, ty: Type, span: Span) -> Expr {
    Expr {
        kind,
        ty,
        id: SYNTHESIZED,
        span,
    }
}

pub(super) fn number(n: i64, span: Span) -> Expr {
    typed(ExprKind::Num(n), Type::Long, span)
}

/// A call of a built-in that takes no argument and returns a long.
pub(super) fn builtin(func: Builtin, span: Span) -> Expr {
    typed(
        ExprKind::Builtin {
            func,
            args: Vec::new(),
        },
        Type::Long,
        span,
    )
}

pub(super) fn binary_long(op: BinOp, left: Expr, right: Expr) -> Expr {
    let span = left.span;
    typed(
        ExprKind::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
        },
        Type::Long,
        span,
    )
}

pub(super) fn assign(place: Place, value: Expr) -> Expr {
    let (ty, span) = (value.ty, value.span);
    typed(
        ExprKind::Assign {
            op: AssignOp::Assign,
            place: Box::new(place),
            value: Box::new(value),
        },
        ty,
        span,
    )
}

pub(super) fn stmt(kind: StmtKind, span: Span) -> Stmt {
    Stmt { kind, span }
}
