//! A read-only walk over the AST: override the hooks you need, call the `walk_*`
//! functions to continue into children.

use crate::ast::*;

pub trait Visitor {
    fn item(&mut self, i: &Item) {
        walk_item(self, i);
    }
    fn block(&mut self, b: &Block) {
        walk_block(self, b);
    }
    fn stmt(&mut self, s: &Stmt) {
        walk_stmt(self, s);
    }
    fn expr(&mut self, e: &Expr) {
        walk_expr(self, e);
    }
}

pub fn walk_file<V: Visitor + ?Sized>(v: &mut V, f: &File) {
    for i in &f.items {
        v.item(i);
    }
}

pub fn walk_item<V: Visitor + ?Sized>(v: &mut V, i: &Item) {
    match i {
        Item::Embedded(_) => {}
        Item::Global(_) => {}
        Item::Probe(p) => {
            for c in p.points.iter().filter_map(|pp| pp.condition.as_ref()) {
                v.expr(c);
            }
            v.block(&p.body);
        }
        Item::Alias(a) => {
            for c in a.points.iter().filter_map(|pp| pp.condition.as_ref()) {
                v.expr(c);
            }
            v.block(&a.body);
            if let Some(b) = &a.epilogue {
                v.block(b);
            }
        }
        Item::Function(f) => {
            if let FunctionBody::Script(b) = &f.body {
                v.block(b);
            }
        }
    }
}

pub fn walk_block<V: Visitor + ?Sized>(v: &mut V, b: &Block) {
    for s in &b.stmts {
        v.stmt(s);
    }
}

fn indexable<V: Visitor + ?Sized>(v: &mut V, i: &Indexable) {
    if let Indexable::Hist(h) = i {
        v.expr(h);
    }
}

pub fn walk_stmt<V: Visitor + ?Sized>(v: &mut V, s: &Stmt) {
    match &s.node {
        StmtKind::Block(b) => v.block(b),
        StmtKind::Null | StmtKind::Next | StmtKind::Break | StmtKind::Continue => {}
        StmtKind::Expr(e) | StmtKind::Delete(e) => v.expr(e),
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => {
            v.expr(cond);
            v.stmt(then);
            if let Some(e) = otherwise {
                v.stmt(e);
            }
        }
        StmtKind::While { cond, body } => {
            v.expr(cond);
            v.stmt(body);
        }
        StmtKind::For {
            init,
            cond,
            step,
            body,
        } => {
            for e in [init, cond, step].into_iter().flatten() {
                v.expr(e);
            }
            v.stmt(body);
        }
        StmtKind::Foreach(f) => {
            indexable(v, &f.array);
            for e in f.slice.iter().flatten().flatten() {
                v.expr(e);
            }
            if let Some(l) = &f.limit {
                v.expr(l);
            }
            v.stmt(&f.body);
        }
        StmtKind::Return(e) => {
            if let Some(e) = e {
                v.expr(e);
            }
        }
        StmtKind::Try(t) => {
            v.block(&t.body);
            v.block(&t.catch);
        }
    }
}

fn chain<V: Visitor + ?Sized>(v: &mut V, c: &TargetChain) {
    for m in &c.members {
        if let Member::Index(e) = m {
            v.expr(e);
        }
    }
}

pub fn walk_expr<V: Visitor + ?Sized>(v: &mut V, e: &Expr) {
    match &e.node {
        ExprKind::Num(_)
        | ExprKind::Str(_)
        | ExprKind::Var(_)
        | ExprKind::Perf(_)
        | ExprKind::Const(_)
        | ExprKind::Embedded(_) => {}
        ExprKind::Register { number, .. } => v.expr(number),
        ExprKind::Deref { size, addr, .. } => {
            v.expr(size);
            v.expr(addr);
        }
        ExprKind::Index {
            base,
            indexes: keys,
        }
        | ExprKind::In { keys, array: base } => {
            indexable(v, base);
            for i in keys.iter().flatten() {
                v.expr(i);
            }
        }
        ExprKind::Call { args, .. } => args.iter().for_each(|a| v.expr(a)),
        ExprKind::Print(p) => p.args.iter().for_each(|a| v.expr(a)),
        ExprKind::Unary { expr, .. }
        | ExprKind::Regex { expr, .. }
        | ExprKind::Crement { expr, .. }
        | ExprKind::Hist { expr, .. }
        | ExprKind::Entry(expr)
        | ExprKind::Defined(expr)
        | ExprKind::Probewrite(expr)
        | ExprKind::AddrOf(expr) => v.expr(expr),
        ExprKind::Stat { expr, shift, .. } => {
            v.expr(expr);
            if let Some(s) = shift {
                v.expr(s);
            }
        }
        ExprKind::Binary { left, right, .. } | ExprKind::Assign { left, right, .. } => {
            v.expr(left);
            v.expr(right);
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => {
            v.expr(cond);
            v.expr(then);
            v.expr(otherwise);
        }
        ExprKind::Target { chain: c, .. } | ExprKind::AtVar { chain: c, .. } => chain(v, c),
        ExprKind::Chain { base, chain: c } => {
            v.expr(base);
            chain(v, c);
        }
        ExprKind::Cast { expr, chain: c, .. } => {
            v.expr(expr);
            chain(v, c);
        }
    }
}
