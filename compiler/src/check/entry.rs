//! `@entry(expr)` in a function's `.return` probe (a user function's or a
//! kernel function's): `expr` is evaluated when the function is entered, as
//! stap does, not when it returns.
//!
//! Each `@entry` becomes a hidden global array keyed by `[tid(), frame]`: a
//! synthesized entry probe on the same function stores the value, and the
//! return probe takes it (reads and deletes it) before its handler runs.
//! `frame` names the call (`ContextValue::CallFrame`: the stack pointer, or
//! an fentry/fexit trampoline's frame), so recursive calls of one thread each
//! find their own value. The arrays wrap (an LRU map): an entry whose return
//! is never seen (a `longjmp`, a thread killed, a kretprobe out of instances)
//! is dropped when room is needed, never an error.

use super::synth::{assign, builtin, number, stmt, typed};
use crate::builtins::Builtin;
use crate::hir::{
    self, ContextValue, Delete, Expr, ExprKind, Global, GlobalId, Local, LocalId, Place, PointKind,
    Probe, StmtKind, Type,
};
use rstap_grammar::Span;

/// Rewrites every `@entry` of the function return probes in `probes`,
/// adding the arrays to `globals` and the entry probes to `probes`.
pub(super) fn program(globals: &mut Vec<Global>, probes: &mut Vec<Probe>) {
    let mut added = Vec::new();
    for p in probes.iter_mut() {
        let Some(at_entry) = entry_point(&p.kind) else {
            continue;
        };
        let mut saved: Vec<Expr> = Vec::new();
        let mut taken: Vec<(LocalId, GlobalId, Type)> = Vec::new();
        let first_local = p.locals.len();
        let first_global = globals.len();
        hir::for_each_expr_mut(&mut p.body, &mut |e| {
            let ExprKind::Entry(inner) = &mut e.kind else {
                return;
            };
            let value = std::mem::replace(inner.as_mut(), number(0, e.span));
            let k = saved.len();
            let (local, global) = (
                LocalId((first_local + k) as u32),
                GlobalId((first_global + k) as u32),
            );
            taken.push((local, global, value.ty));
            saved.push(value);
            e.kind = ExprKind::Local(local);
        });
        if saved.is_empty() {
            continue;
        }
        let span = p.span;
        let mut prologue = Vec::new();
        let mut entry_body = Vec::new();
        for (k, ((local, global, ty), value)) in taken.into_iter().zip(saved).enumerate() {
            globals.push(Global {
                name: format!("__entry{}", first_global + k),
                ty,
                keys: Some(vec![Type::Long, Type::Long]),
                size: None,
                wrap: true,
                init: None,
                tapset: true,
                span,
            });
            p.locals.push(Local {
                name: format!("__entry{k}"),
                ty,
                span,
            });
            let at_return = || frame_key(false, span);
            let taken = typed(
                ExprKind::Element {
                    array: global,
                    keys: at_return(),
                },
                ty,
                span,
            );
            prologue.push(stmt(
                StmtKind::Expr(assign(Place::Local(local), taken)),
                span,
            ));
            let keys = at_return().into_iter().map(Some).collect();
            prologue.push(stmt(
                StmtKind::Delete(Delete::Elements {
                    array: global,
                    keys,
                }),
                span,
            ));
            let place = Place::Element {
                array: global,
                keys: frame_key(true, span),
            };
            entry_body.push(stmt(StmtKind::Expr(assign(place, value)), span));
        }
        prologue.append(&mut p.body.stmts);
        p.body.stmts = prologue;
        added.push(Probe {
            kind: at_entry,
            name: p.name.trim_end_matches(".return").to_string(),
            origin: p.origin.clone(),
            written: p.written.clone(),
            condition: None,
            // The saved expressions keep their local ids; locals start at 0.
            locals: p.locals.clone(),
            cached: Vec::new(),
            body: hir::Block { stmts: entry_body },
            span,
        });
    }
    probes.extend(added);
}

/// The entry point of a function's return probe (`None`: not one).
fn entry_point(kind: &PointKind) -> Option<PointKind> {
    match kind {
        PointKind::Uprobe {
            binary,
            symbol,
            offset,
            ret: true,
        } => Some(PointKind::Uprobe {
            binary: binary.clone(),
            symbol: symbol.clone(),
            offset: *offset,
            ret: false,
        }),
        PointKind::Kprobe {
            function,
            module,
            ret: true,
        } => Some(PointKind::Kprobe {
            function: function.clone(),
            module: module.clone(),
            ret: false,
        }),
        _ => None,
    }
}

/// `[tid(), frame]`, at the function's entry or at its return.
fn frame_key(entry: bool, span: Span) -> Vec<Expr> {
    let frame = typed(
        ExprKind::Context(ContextValue::CallFrame { entry }),
        Type::Long,
        span,
    );
    vec![builtin(Builtin::Tid, span), frame]
}
