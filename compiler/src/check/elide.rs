//! Removing code that has no effect, as stap's pass 2 does (and `-u` skips):
//! assignments (`=`, `<<<`) to locals nothing reads, expression statements with no
//! side effect, locals left unused, and probes whose handler ends up empty. Each
//! removal is a warning. Type errors are found before this runs, so rstap reports
//! a conflict even in code that is then removed (stap would elide it silently).

use super::code::Code;
use crate::builtins::Builtin;
use crate::hir::{
    self, AssignOp, Delete, Expr, ExprKind, Function, LocalId, Place, Probe, Stmt, StmtKind,
};
use rstap_grammar::Diag;

/// Elides in every function and probe; probes left empty are dropped.
pub(super) fn program(
    functions: &mut [Function],
    probes: &mut Vec<Probe>,
    warnings: &mut Vec<Diag>,
) {
    let pure = pure_functions(functions);
    for f in functions.iter_mut() {
        body(&mut f.body, &mut f.locals, f.params, &pure, warnings);
    }
    probes.retain_mut(|p| {
        let keep_condition = p.condition.is_some();
        body(&mut p.body, &mut p.locals, 0, &pure, warnings);
        if p.body.stmts.is_empty() && !keep_condition {
            warnings.push(
                Diag::new(
                    Code::E0210,
                    p.span,
                    format!("probe '{}' has been elided", p.name),
                )
                .with_label("its handler does nothing")
                .warning(),
            );
            return false;
        }
        true
    });
}

/// Elides in one body whose first `fixed` locals (parameters) always stay.
fn body(
    block: &mut hir::Block,
    locals: &mut Vec<hir::Local>,
    fixed: usize,
    pure: &[bool],
    warnings: &mut Vec<Diag>,
) {
    let mut read = vec![false; locals.len()];
    mark_reads_block(block, &mut read);
    let mut e = Eliminator {
        read: &read,
        locals,
        pure,
        warnings,
    };
    e.block(block);
    // Keep what is still mentioned anywhere; renumber the rest away.
    let mut used = vec![false; locals.len()];
    for u in used.iter_mut().take(fixed) {
        *u = true;
    }
    mark_uses_block(block, &mut used);
    let mut map = Vec::with_capacity(locals.len());
    let mut next = 0u32;
    for &u in &used {
        map.push(u.then(|| {
            next += 1;
            LocalId(next - 1)
        }));
    }
    let mut k = 0;
    locals.retain(|_| {
        k += 1;
        used[k - 1]
    });
    remap_block(block, &map);
}

struct Eliminator<'r> {
    read: &'r [bool],
    locals: &'r [hir::Local],
    /// Which functions have no effect but their value (see [`pure_functions`]).
    pure: &'r [bool],
    warnings: &'r mut Vec<Diag>,
}

impl Eliminator<'_> {
    fn block(&mut self, b: &mut hir::Block) {
        for s in &mut b.stmts {
            self.stmt(s);
        }
        b.stmts.retain(|s| !is_empty(s));
    }

    fn stmt(&mut self, s: &mut Stmt) {
        match &mut s.kind {
            StmtKind::Block(b) => self.block(b),
            StmtKind::Expr(e) => {
                self.expr(e);
                if !has_side_effects(e, self.pure) {
                    self.warnings.push(
                        Diag::new(Code::E0210, e.span, "eliding side-effect-free expression")
                            .with_label("this computes a value nothing uses")
                            .warning(),
                    );
                    s.kind = StmtKind::Block(hir::Block::default());
                }
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond);
                self.stmt(then);
                if let Some(o) = otherwise {
                    self.stmt(o);
                }
                let idle = is_empty(then) && otherwise.as_deref().is_none_or(is_empty);
                if idle && !has_side_effects(cond, self.pure) {
                    s.kind = StmtKind::Block(hir::Block::default());
                }
            }
            StmtKind::Loop {
                init,
                cond,
                step,
                body,
            } => {
                for e in [init, cond, step].into_iter().flatten() {
                    self.expr(e);
                }
                self.stmt(body);
            }
            StmtKind::Foreach(f) => {
                for k in &mut f.keys {
                    if k.is_some_and(|id| !self.read[id.index()]) {
                        *k = None;
                    }
                }
                if f.value.is_some_and(|id| !self.read[id.index()]) {
                    f.value = None;
                }
                self.stmt(&mut f.body);
                let limit_acts = f
                    .limit
                    .as_ref()
                    .is_some_and(|l| has_side_effects(l, self.pure));
                if is_empty(&f.body) && !limit_acts {
                    s.kind = StmtKind::Block(hir::Block::default());
                }
            }
            StmtKind::Return(Some(e)) => self.expr(e),
            StmtKind::Try { body, catch, .. } => {
                self.block(body);
                self.block(catch);
            }
            StmtKind::Delete(_)
            | StmtKind::Return(None)
            | StmtKind::Next
            | StmtKind::Break
            | StmtKind::Continue => {}
        }
    }

    /// Replaces `x = v` by `v` wherever nothing reads the local `x`.
    fn expr(&mut self, e: &mut Expr) {
        let mut rewrite = |x: &mut Expr| {
            let ExprKind::Assign { op, place, value } = &mut x.kind else {
                return;
            };
            let Place::Local(id) = **place else { return };
            if !matches!(op, AssignOp::Assign | AssignOp::Aggregate) || self.read[id.index()] {
                return;
            }
            let name = &self.locals[id.index()].name;
            self.warnings.push(
                Diag::new(
                    Code::E0210,
                    x.span,
                    format!("eliding assignment to '{name}'"),
                )
                .with_label("nothing reads this variable")
                .warning(),
            );
            let value = std::mem::replace(
                &mut **value,
                Expr {
                    kind: ExprKind::Num(0),
                    ty: hir::Type::Long,
                    id: 0,
                    span: x.span,
                },
            );
            *x = value;
        };
        hir::expr_mut(e, &mut rewrite);
    }
}

fn is_empty(s: &Stmt) -> bool {
    matches!(&s.kind, StmtKind::Block(b) if b.stmts.is_empty())
}

/// Whether evaluating `e` can change anything: assignments, calls of script
/// functions that act, prints, built-ins that act.
fn has_side_effects(e: &Expr, pure: &[bool]) -> bool {
    let mut effects = false;
    hir::expr_ref(e, &mut |x| {
        effects |= match &x.kind {
            ExprKind::Assign { .. } | ExprKind::Crement { .. } | ExprKind::Print { .. } => true,
            ExprKind::Call { func, .. } => !pure.get(func.index()).copied().unwrap_or(false),
            ExprKind::Builtin { func, .. } => acts_builtin(*func),
            _ => false,
        };
    });
    effects
}

/// Which functions do nothing but compute their value: no global written or
/// deleted, nothing printed, no built-in that acts, no call of a function
/// that does any of these. As stap does, a call of one whose value nobody
/// uses is removed (the syscall aliases' `argstr` when a handler ignores it).
fn pure_functions(functions: &[Function]) -> Vec<bool> {
    let mut pure = vec![true; functions.len()];
    loop {
        let mut changed = false;
        for (i, f) in functions.iter().enumerate() {
            if pure[i] && acts(&f.body, &pure) {
                pure[i] = false;
                changed = true;
            }
        }
        if !changed {
            return pure;
        }
    }
}

/// Whether a function body has an effect outside itself.
fn acts(b: &hir::Block, pure: &[bool]) -> bool {
    let mut effects = false;
    hir::for_each_expr(b, &mut |x| {
        effects |= match &x.kind {
            ExprKind::Assign { place, .. } | ExprKind::Crement { place, .. } => {
                !matches!(**place, Place::Local(_))
            }
            // sprintf and its kin only make a string.
            ExprKind::Print { kind, .. } => !kind.returns_string(),
            ExprKind::Call { func, .. } => !pure.get(func.index()).copied().unwrap_or(false),
            ExprKind::Builtin { func, .. } => acts_builtin(*func),
            _ => false,
        };
    });
    effects || deletes_global(b)
}

fn deletes_global(b: &hir::Block) -> bool {
    b.stmts.iter().any(stmt_deletes_global)
}

fn stmt_deletes_global(s: &Stmt) -> bool {
    match &s.kind {
        StmtKind::Delete(d) => !matches!(d, Delete::Local(_)),
        StmtKind::Block(b) => deletes_global(b),
        StmtKind::If {
            then, otherwise, ..
        } => stmt_deletes_global(then) || otherwise.as_deref().is_some_and(stmt_deletes_global),
        StmtKind::Loop { body, .. } => stmt_deletes_global(body),
        StmtKind::Foreach(f) => stmt_deletes_global(&f.body),
        StmtKind::Try { body, catch, .. } => deletes_global(body) || deletes_global(catch),
        _ => false,
    }
}

/// Built-ins called for what they do rather than what they return.
fn acts_builtin(b: Builtin) -> bool {
    matches!(
        b,
        Builtin::Exit
            | Builtin::Error
            | Builtin::Warn
            | Builtin::System
            | Builtin::Log
            | Builtin::Abort
            | Builtin::PrintBacktrace
            | Builtin::PrintUbacktrace
    )
}

/// Locals read as values (a compound assignment or `++` reads its target).
fn mark_reads_block(b: &hir::Block, read: &mut [bool]) {
    hir::for_each_expr(b, &mut |x| match &x.kind {
        ExprKind::Local(id) => read[id.index()] = true,
        ExprKind::Assign { op, place, .. }
            if !matches!(op, AssignOp::Assign | AssignOp::Aggregate) =>
        {
            if let Place::Local(id) = **place {
                read[id.index()] = true;
            }
        }
        ExprKind::Crement { place, .. } => {
            if let Place::Local(id) = **place {
                read[id.index()] = true;
            }
        }
        _ => {}
    });
}

/// Locals mentioned anywhere (read, written, bound by foreach or catch, deleted).
fn mark_uses_block(b: &mut hir::Block, used: &mut [bool]) {
    visit_locals(b, &mut |id| used[id.index()] = true);
}

fn remap_block(b: &mut hir::Block, map: &[Option<LocalId>]) {
    visit_locals(b, &mut |id| {
        if let Some(new) = map[id.index()] {
            *id = new;
        }
    });
}

/// Calls `f` on every local id in a block, wherever it appears.
fn visit_locals(b: &mut hir::Block, f: &mut dyn FnMut(&mut LocalId)) {
    hir::for_each_expr_mut(b, &mut |x| match &mut x.kind {
        ExprKind::Local(id) => f(id),
        ExprKind::Assign { place, .. } | ExprKind::Crement { place, .. } => {
            if let Place::Local(id) = &mut **place {
                f(id);
            }
        }
        _ => {}
    });
    for s in &mut b.stmts {
        stmt_locals(s, f);
    }
}

fn stmt_locals(s: &mut Stmt, f: &mut dyn FnMut(&mut LocalId)) {
    match &mut s.kind {
        StmtKind::Block(b) => visit_locals_stmts(b, f),
        StmtKind::If {
            then, otherwise, ..
        } => {
            stmt_locals(then, f);
            if let Some(o) = otherwise {
                stmt_locals(o, f);
            }
        }
        StmtKind::Loop { body, .. } => stmt_locals(body, f),
        StmtKind::Foreach(fe) => {
            for id in fe.keys.iter_mut().flatten() {
                f(id);
            }
            if let Some(v) = &mut fe.value {
                f(v);
            }
            stmt_locals(&mut fe.body, f);
        }
        StmtKind::Delete(Delete::Local(id)) => f(id),
        StmtKind::Try { body, var, catch } => {
            visit_locals_stmts(body, f);
            if let Some(v) = var {
                f(v);
            }
            visit_locals_stmts(catch, f);
        }
        StmtKind::Expr(_)
        | StmtKind::Delete(_)
        | StmtKind::Return(_)
        | StmtKind::Next
        | StmtKind::Break
        | StmtKind::Continue => {}
    }
}

/// The statement-level locals of nested blocks (their expressions are visited by
/// the caller's single expression walk).
fn visit_locals_stmts(b: &mut hir::Block, f: &mut dyn FnMut(&mut LocalId)) {
    for s in &mut b.stmts {
        stmt_locals(s, f);
    }
}
