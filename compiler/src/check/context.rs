//! Kernel-only code in user-context probes: begin, end, error and timer
//! handlers run in rstap's user-space engine, which has no kernel task to
//! give `task_current()` and no kernel memory to read. A call that needs
//! either, directly or through the functions it calls (the `task_*`
//! accessors read `task_struct` through `@cast`), is refused here, at the
//! call in the probe, rather than failing each time the handler runs.

use super::Code;
use crate::builtins::Builtin;
use crate::hir::{self, ExprKind, Function, Probe};
use rstap_grammar::Diag;

/// What a kernel-only expression needs, as the diagnostic says it.
fn needs(e: &hir::Expr) -> Option<(&'static str, String)> {
    let what = match &e.kind {
        ExprKind::Builtin {
            func: Builtin::TaskCurrent,
            ..
        } => "the current kernel task",
        ExprKind::Builtin { func, .. } if func.reads_kernel_memory() => {
            return Some(("kernel memory", format!("{}()", func.name())));
        }
        ExprKind::Load { user: false, .. } | ExprKind::LoadString { user: false, .. } => {
            return Some(("kernel memory", "a @cast or target-variable member".into()));
        }
        _ => return None,
    };
    Some((what, "task_current()".into()))
}

/// For each function, what it needs from the kernel, itself or through a
/// function it calls, and through what.
fn kernel_functions(functions: &[Function]) -> Vec<Option<(&'static str, String)>> {
    let mut found: Vec<Option<(&'static str, String)>> = functions
        .iter()
        .map(|f| {
            let mut first = None;
            hir::for_each_expr(&f.body, &mut |e| {
                if first.is_none() {
                    first = needs(e);
                }
            });
            first
        })
        .collect();
    loop {
        let mut changed = false;
        for (i, f) in functions.iter().enumerate() {
            if found[i].is_some() {
                continue;
            }
            let mut via = None;
            hir::for_each_expr(&f.body, &mut |e| {
                if let ExprKind::Call { func, .. } = &e.kind
                    && via.is_none()
                    && let Some((what, _)) = &found[func.index()]
                {
                    via = Some((*what, format!("{}()", functions[func.index()].name)));
                }
            });
            if via.is_some() {
                found[i] = via;
                changed = true;
            }
        }
        if !changed {
            return found;
        }
    }
}

/// The refusals for every user-context probe of the program.
pub(super) fn user_probes(functions: &[Function], probes: &[Probe]) -> Vec<Diag> {
    let kernel = kernel_functions(functions);
    let mut diags = Vec::new();
    for p in probes {
        if p.kind.context() != hir::Context::User {
            continue;
        }
        let mut check = |e: &hir::Expr| {
            let (name, need) = match &e.kind {
                ExprKind::Call { func, .. } => match &kernel[func.index()] {
                    Some((what, via)) => (
                        format!("{}()", functions[func.index()].name),
                        Some((*what, Some(via.clone()))),
                    ),
                    None => return,
                },
                ExprKind::Builtin { func, .. } => (
                    format!("{}()", func.name()),
                    needs(e).map(|(w, _)| (w, None)),
                ),
                _ => (
                    String::from("this @cast member"),
                    needs(e).map(|(w, _)| (w, None)),
                ),
            };
            let Some((what, via)) = need else { return };
            // One refusal per call: `task_pid(task_current())` is refused at
            // task_current() alone.
            let inner = |d: &Diag| {
                d.span.file == e.span.file
                    && d.span.start >= e.span.start
                    && d.span.end <= e.span.end
            };
            if diags.iter().any(inner) {
                return;
            }
            let mut d = Diag::new(
                Code::E0408,
                e.span,
                format!("{name} works in kernel-context probes only: it reads {what}"),
            )
            .with_label(format!(
                "in this {} probe, which runs in rstap's user space",
                p.name
            ));
            if let Some(via) = via {
                d = d.with_note(format!("{name} reads it through {via}"));
            }
            diags.push(d.with_note(
                "call it from a kernel-context probe (a tracepoint, syscall, kprobe, uprobe, perf or profile probe)",
            ));
        };
        hir::for_each_expr(&p.body, &mut check);
        if let Some(c) = &p.condition {
            hir::expr_ref(c, &mut check);
        }
    }
    diags
}
