//! What the finished program uses, read off the HIR after elision: which globals
//! are read, which built-ins are called, and which stable built-ins each probe
//! handler calls directly (computed once per run).

use crate::builtins::Builtin;
use crate::hir::{self, Delete, ExprKind, Function, Iterable, Probe, StmtKind};

pub(super) struct Uses {
    /// Per global: read as a value somewhere (an assignment target is not a read).
    pub read: Vec<bool>,
    /// Every built-in called, in first-call order.
    pub builtins: Vec<Builtin>,
}

pub(super) fn collect(globals: usize, functions: &[Function], probes: &mut [Probe]) -> Uses {
    let mut u = Uses {
        read: vec![false; globals],
        builtins: Vec::new(),
    };
    for f in functions {
        u.block(&f.body, &mut Vec::new());
    }
    for p in probes.iter_mut() {
        let mut cached = Vec::new();
        u.block(&p.body, &mut cached);
        if let Some(c) = &p.condition {
            u.expr(c, &mut Vec::new());
        }
        p.cached = cached
            .into_iter()
            .filter(|b| b.signature().stable)
            .collect();
    }
    u
}

impl Uses {
    /// Notes every use in `block`; `called` collects the built-ins it calls directly.
    fn block(&mut self, block: &hir::Block, called: &mut Vec<Builtin>) {
        hir::for_each_expr(block, &mut |e| self.note(e, called));
        self.walked(block);
    }

    fn expr(&mut self, e: &hir::Expr, called: &mut Vec<Builtin>) {
        hir::expr_ref(e, &mut |x| self.note(x, called));
    }

    fn note(&mut self, e: &hir::Expr, called: &mut Vec<Builtin>) {
        match &e.kind {
            ExprKind::Global(g) | ExprKind::Element { array: g, .. } => {
                self.read[g.index()] = true;
            }
            ExprKind::In {
                array: Iterable::Array(g),
                ..
            } => self.read[g.index()] = true,
            ExprKind::Builtin { func, .. } => {
                if !self.builtins.contains(func) {
                    self.builtins.push(*func);
                }
                if !called.contains(func) {
                    called.push(*func);
                }
            }
            _ => {}
        }
    }

    /// Arrays walked by `foreach` are read.
    fn walked(&mut self, block: &hir::Block) {
        for s in &block.stmts {
            self.walked_stmt(s);
        }
    }

    fn walked_stmt(&mut self, s: &hir::Stmt) {
        match &s.kind {
            StmtKind::Block(b) => self.walked(b),
            StmtKind::If {
                then, otherwise, ..
            } => {
                self.walked_stmt(then);
                if let Some(o) = otherwise {
                    self.walked_stmt(o);
                }
            }
            StmtKind::Loop { body, .. } => self.walked_stmt(body),
            StmtKind::Foreach(f) => {
                if let Iterable::Array(g) = f.array {
                    self.read[g.index()] = true;
                }
                self.walked_stmt(&f.body);
            }
            StmtKind::Try { body, catch, .. } => {
                self.walked(body);
                self.walked(catch);
            }
            // stap counts a `delete` as a use: such a global is not displayed.
            StmtKind::Delete(Delete::Global(g) | Delete::Elements { array: g, .. }) => {
                self.read[g.index()] = true;
            }
            StmtKind::Expr(_)
            | StmtKind::Delete(Delete::Local(_))
            | StmtKind::Return(_)
            | StmtKind::Next
            | StmtKind::Break
            | StmtKind::Continue => {}
        }
    }
}
