//! Expressions: operators, assignment, variables, calls and the compile-time
//! @-operators, each handing its typing facts to the solver.

use super::body::{Body, Name, Owner};
use super::code::Code;
use super::types::Var;
use super::{Checker, suggest, var_of};
use crate::builtins;
use crate::hir::{self, ExprKind, FunctionId, LocalId, PointKind, Type};
use rstap_grammar::ast::{self, AssignOp, BinOp};
use rstap_grammar::{Diag, Span};

impl<'a> Checker<'a> {
    /// An expression whose value is used: it must have one (not a function that
    /// returns nothing) and be a plain long or string.
    pub(super) fn value(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> hir::Expr {
        let v = self.expr(b, e);
        let call = match &v.kind {
            ExprKind::Call { func, .. } => Some(super::Callee::Script(*func)),
            ExprKind::Builtin { func, .. } => Some(super::Callee::Builtin(*func)),
            _ => None,
        };
        self.value_uses.push((var_of(&v), e.span, call));
        v
    }

    pub(super) fn typed(&mut self, kind: ExprKind, ty: Type, span: Span) -> hir::Expr {
        let (id, var) = self.expr_var();
        self.require(var, ty, span);
        hir::Expr {
            kind,
            ty: Type::Unknown,
            id,
            span,
        }
    }

    /// An expression whose type is that of `var`.
    pub(super) fn like(&mut self, kind: ExprKind, var: Var, span: Span) -> hir::Expr {
        let (id, v) = self.expr_var();
        self.unify(v, var);
        hir::Expr {
            kind,
            ty: Type::Unknown,
            id,
            span,
        }
    }

    pub(super) fn expr(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> hir::Expr {
        let span = e.span;
        // `@defined(x) ? a : b` is settled here: the branch not taken is never
        // resolved (so `a` may name what does not exist), as stap does.
        if let ast::ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } = &e.node
            && let ast::ExprKind::Defined(inner) = &cond.node
        {
            let chosen = if self.defined(b, inner) {
                then
            } else {
                otherwise
            };
            return self.expr(b, chosen);
        }
        match &e.node {
            ast::ExprKind::Num(n) => self.typed(ExprKind::Num(*n), Type::Long, span),
            ast::ExprKind::Str(s) => self.typed(ExprKind::Str(s.clone()), Type::String, span),
            ast::ExprKind::Var(name) => self.read_var(b, name, span),
            ast::ExprKind::Index { base, indexes } => self.index(b, base, indexes, span),
            ast::ExprKind::Call { name, args } => self.call(b, name, args, span),
            ast::ExprKind::Print(p) => self.print(b, p, span),
            ast::ExprKind::Unary { op, expr } => {
                let x = self.value(b, expr);
                self.require(var_of(&x), Type::Long, expr.span);
                let kind = ExprKind::Unary {
                    op: *op,
                    expr: Box::new(x),
                };
                self.typed(kind, Type::Long, span)
            }
            ast::ExprKind::Binary { op, left, right } => self.binary(b, *op, left, right, span),
            ast::ExprKind::Regex {
                expr,
                negated,
                pattern,
            } => {
                let x = self.value(b, expr);
                self.require(var_of(&x), Type::String, expr.span);
                let kind = ExprKind::Regex {
                    expr: Box::new(x),
                    negated: *negated,
                    pattern: pattern.node.clone(),
                };
                self.typed(kind, Type::Long, span)
            }
            ast::ExprKind::Assign { op, left, right } => self.assign(b, *op, left, right, span),
            ast::ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                let c = self.condition(b, cond);
                let t = self.value(b, then);
                let o = self.value(b, otherwise);
                self.unify(var_of(&t), var_of(&o));
                let tv = var_of(&t);
                let kind = ExprKind::Ternary {
                    cond: Box::new(c),
                    then: Box::new(t),
                    otherwise: Box::new(o),
                };
                self.like(kind, tv, span)
            }
            ast::ExprKind::In { keys, array } => self.in_expr(b, keys, array, span),
            ast::ExprKind::Crement { op, post, expr } => {
                let (place, pv) = self.place(b, expr);
                self.require(pv, Type::Long, expr.span);
                let Some(place) = place else {
                    return self.typed(ExprKind::Num(0), Type::Long, span);
                };
                let kind = ExprKind::Crement {
                    op: *op,
                    post: *post,
                    place: Box::new(place),
                };
                self.typed(kind, Type::Long, span)
            }
            ast::ExprKind::Stat { op, expr, shift } => {
                let of = self.stats_operand(b, expr);
                let shift = shift.as_ref().map(|s| {
                    let s = self.value(b, s);
                    self.require(var_of(&s), Type::Long, s.span);
                    Box::new(s)
                });
                let kind = ExprKind::Stat {
                    op: *op,
                    of: Box::new(of),
                    shift,
                };
                self.typed(kind, Type::Long, span)
            }
            ast::ExprKind::Hist { .. } => {
                self.error(
                    Diag::new(
                        Code::E0305,
                        span,
                        "a histogram can only be printed, indexed or walked with foreach",
                    )
                    .with_label("use it as `print(@hist_log(x))`"),
                );
                self.typed(ExprKind::Num(0), Type::Long, span)
            }
            ast::ExprKind::Target { name, chain } => self.target(b, name, chain, span),
            ast::ExprKind::Defined(inner) => {
                let defined = self.defined(b, inner);
                self.typed(ExprKind::Num(i64::from(defined)), Type::Long, span)
            }
            ast::ExprKind::Probewrite(inner) => {
                let written = self.probewrite(b, inner);
                self.typed(ExprKind::Num(i64::from(written)), Type::Long, span)
            }
            ast::ExprKind::Entry(inner) => self.entry(b, inner, span),
            ast::ExprKind::Cast {
                expr,
                ty,
                module,
                chain,
            } => {
                let addr = self.value(b, expr);
                self.require(var_of(&addr), Type::Long, expr.span);
                let module = module.as_ref().map(|m| m.node.as_str());
                self.cast(b, addr, &ty.node, module, chain, span)
            }
            ast::ExprKind::Embedded(_) => {
                self.error(
                    Diag::new(
                        Code::E0206,
                        span,
                        "embedded C expressions are not supported: rstap never runs C code",
                    )
                    .with_label("embedded C"),
                );
                self.typed(ExprKind::Num(0), Type::Long, span)
            }
            other => {
                let what = unsupported_name(other);
                self.error(
                    Diag::new(
                        Code::E0213,
                        span,
                        format!("{what} is not supported by this build yet"),
                    )
                    .with_label("not available yet"),
                );
                self.typed(ExprKind::Num(0), Type::Long, span)
            }
        }
    }

    /// Resolves a plain name: a local in scope, else a global, else a new local.
    pub(super) fn name(&mut self, b: &mut Body<'_>, name: &str, span: Span) -> Name {
        if let Some(&id) = b.names.get(name) {
            return Name::Local(id);
        }
        if let Some(decl) = self.decls.global(name, b.file) {
            return Name::Global(self.link_global(decl));
        }
        let var = self.solver.fresh();
        Name::Local(b.add_local(name, var, span))
    }

    pub(super) fn local_for_write(&mut self, b: &mut Body<'_>, name: &str, span: Span) -> LocalId {
        match b.names.get(name) {
            Some(&id) => {
                b.assigned[id.index()] = true;
                id
            }
            None => {
                let var = self.solver.fresh();
                let id = b.add_local(name, var, span);
                b.assigned[id.index()] = true;
                id
            }
        }
    }

    pub(super) fn read_var(&mut self, b: &mut Body<'_>, name: &str, span: Span) -> hir::Expr {
        match self.name(b, name, span) {
            Name::Local(id) => {
                let slot = &mut b.first_read[id.index()];
                slot.get_or_insert(span);
                let var = b.vars[id.index()];
                self.like(ExprKind::Local(id), var, span)
            }
            Name::Global(g) => {
                self.scalar_use(g, span);
                let var = self.globals[g.index()].1.value;
                self.like(ExprKind::Global(g), var, span)
            }
        }
    }

    pub(super) fn assign(
        &mut self,
        b: &mut Body<'_>,
        op: AssignOp,
        left: &'a ast::Expr,
        right: &'a ast::Expr,
        span: Span,
    ) -> hir::Expr {
        let value = self.value(b, right);
        let (place, pv) = self.place(b, left);
        let vv = var_of(&value);
        match op {
            AssignOp::Assign => self.unify(pv, vv),
            AssignOp::Concat => {
                self.require(vv, Type::String, right.span);
                self.require(pv, Type::String, left.span);
            }
            AssignOp::Aggregate => {
                self.require(vv, Type::Long, right.span);
                self.require(pv, Type::Stats, left.span);
            }
            _ => {
                self.require(vv, Type::Long, right.span);
                self.require(pv, Type::Long, left.span);
            }
        }
        let Some(place) = place else {
            return self.typed(ExprKind::Num(0), Type::Unknown, span);
        };
        let kind = ExprKind::Assign {
            op,
            place: Box::new(place),
            value: Box::new(value),
        };
        if op == AssignOp::Aggregate {
            // `s <<< v` has no value of its own.
            return self.typed(kind, Type::Unknown, span);
        }
        self.like(kind, pv, span)
    }

    pub(super) fn binary(
        &mut self,
        b: &mut Body<'_>,
        op: BinOp,
        left: &'a ast::Expr,
        right: &'a ast::Expr,
        span: Span,
    ) -> hir::Expr {
        let l = self.value(b, left);
        let r = self.value(b, right);
        let (lv, rv) = (var_of(&l), var_of(&r));
        let result = match op {
            BinOp::Concat => {
                self.require(lv, Type::String, left.span);
                self.require(rv, Type::String, right.span);
                Type::String
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                self.unify(lv, rv);
                Type::Long
            }
            _ => {
                self.require(lv, Type::Long, left.span);
                self.require(rv, Type::Long, right.span);
                Type::Long
            }
        };
        let kind = ExprKind::Binary {
            op,
            left: Box::new(l),
            right: Box::new(r),
        };
        self.typed(kind, result, span)
    }

    /// Links the definitions of arity `arity` among `candidates` in priority
    /// order (`:PRIO`, default 0 for the script and 1 for tapsets), as far as
    /// `next` can reach: each is linked only if the one before it can execute
    /// `next`. They share one signature. The first to run, if any.
    fn overloads(
        &mut self,
        candidates: &[super::Decl<'a, ast::Function>],
        arity: usize,
    ) -> Option<FunctionId> {
        let mut same: Vec<_> = candidates
            .iter()
            .filter(|d| d.ast.params.len() == arity)
            .copied()
            .collect();
        same.sort_by_key(|d| {
            d.ast
                .priority
                .as_ref()
                .map_or(i64::from(d.tapset), |p| p.node)
        });
        let reachable = same
            .iter()
            .position(|d| !has_next(d.ast))
            .map_or(same.len(), |last| last + 1);
        let ids: Vec<FunctionId> = same
            .into_iter()
            .take(reachable)
            .map(|d| self.link_function(d))
            .collect();
        for pair in ids.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            self.functions[a.index()].0.next = Some(b);
            let (va, vb) = (
                self.functions[a.index()].1.clone(),
                self.functions[b.index()].1.clone(),
            );
            self.unify(va.ret, vb.ret);
            for (pa, pb) in va.params.iter().zip(&vb.params) {
                self.unify(*pa, *pb);
            }
        }
        ids.first().copied()
    }

    pub(super) fn call(
        &mut self,
        b: &mut Body<'_>,
        name: &ast::Ident,
        args: &'a [ast::Expr],
        span: Span,
    ) -> hir::Expr {
        let lowered: Vec<hir::Expr> = args.iter().map(|a| self.value(b, a)).collect();
        let candidates = self.decls.functions(&name.node, b.file);
        if let Some(id) = self.overloads(&candidates, args.len()) {
            if let Owner::Function { id: caller, .. } = b.owner {
                self.functions[caller.index()].1.calls.push(id);
            }
            if !b.iterating.is_empty() {
                self.foreach_calls
                    .push((id, name.span, b.iterating.clone()));
            }
            let vars = self.functions[id.index()].1.clone();
            for (a, p) in lowered.iter().zip(&vars.params) {
                self.unify(var_of(a), *p);
            }
            let kind = ExprKind::Call {
                func: id,
                args: lowered,
            };
            return self.like(kind, vars.ret, span);
        }
        if let Some(sig) = builtins::lookup(&name.node, args.len()) {
            for (a, &(_, ty)) in lowered.iter().zip(sig.params) {
                self.require(var_of(a), ty, a.span);
            }
            let kind = ExprKind::Builtin {
                func: sig.builtin,
                args: lowered,
            };
            return self.typed(kind, sig.ret, span);
        }
        let known = !candidates.is_empty() || builtins::names().any(|n| n == name.node);
        if !known {
            let known: Vec<String> = self
                .decls
                .functions
                .keys()
                .map(|k| k.to_string())
                .chain(builtins::names().map(str::to_string))
                .collect();
            let similar = suggest::similar(&name.node, known.iter().map(String::as_str));
            let note = suggest::note(&similar);
            let mut d = Diag::new(
                Code::E0201,
                name.span,
                format!("unresolved function '{}'", name.node),
            )
            .with_label("no script, tapset or built-in function has this name");
            if let Some(n) = note {
                d = d.with_note(n);
            }
            self.error(d);
        } else {
            self.error(
                Diag::new(
                    Code::E0202,
                    name.span,
                    format!(
                        "function '{}' called with {} argument(s), but no definition takes that many",
                        name.node,
                        args.len()
                    ),
                )
                .with_label("wrong number of arguments"),
            );
        }
        self.typed(ExprKind::Num(0), Type::Unknown, span)
    }

    pub(super) fn defined(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> bool {
        let errors = self.diags.len();
        let before = b.locals.len();
        let _ = self.expr(b, e);
        let ok = self.diags.len() == errors;
        self.diags.truncate(errors);
        if b.locals.len() > before && !matches!(e.node, ast::ExprKind::Var(_)) {
            // A trial resolution must not leave locals behind.
            b.locals.truncate(before);
        }
        ok
    }

    pub(super) fn probewrite(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> bool {
        let (Owner::Probe { user_body, .. }, ast::ExprKind::Var(name)) = (&b.owner, &e.node) else {
            return false;
        };
        let mut finder = WriteFinder { name, found: false };
        rstap_grammar::visit::Visitor::block(&mut finder, user_body);
        finder.found
    }

    pub(super) fn entry(
        &mut self,
        b: &mut Body<'_>,
        inner: &'a ast::Expr,
        span: Span,
    ) -> hir::Expr {
        let is_return = matches!(
            b.owner,
            Owner::Probe {
                kind: PointKind::Kprobe { ret: true, .. } | PointKind::Uprobe { ret: true, .. },
                ..
            }
        );
        if !is_return {
            self.error(
                Diag::new(
                    Code::E0208,
                    span,
                    "@entry can only be used in .return probes",
                )
                .with_label("not in a return probe"),
            );
        }
        let x = self.value(b, inner);
        let v = var_of(&x);
        self.like(ExprKind::Entry(Box::new(x)), v, span)
    }
}

/// Whether a function's body contains `next` (passing control to the next overload).
fn has_next(f: &ast::Function) -> bool {
    struct Finder(bool);
    impl rstap_grammar::visit::Visitor for Finder {
        fn stmt(&mut self, s: &ast::Stmt) {
            self.0 |= matches!(s.node, ast::StmtKind::Next);
            rstap_grammar::visit::walk_stmt(self, s);
        }
    }
    let ast::FunctionBody::Script(body) = &f.body else {
        return false;
    };
    let mut finder = Finder(false);
    rstap_grammar::visit::Visitor::block(&mut finder, body);
    finder.0
}

/// Whether a block assigns the variable `name` (for `@probewrite`).
struct WriteFinder<'n> {
    name: &'n str,
    found: bool,
}

impl rstap_grammar::visit::Visitor for WriteFinder<'_> {
    fn expr(&mut self, e: &ast::Expr) {
        let target = match &e.node {
            ast::ExprKind::Assign { left, .. } => Some(left),
            ast::ExprKind::Crement { expr, .. } => Some(expr),
            _ => None,
        };
        if let Some(t) = target
            && matches!(&t.node, ast::ExprKind::Var(n) if n == self.name)
        {
            self.found = true;
        }
        rstap_grammar::visit::walk_expr(self, e);
    }
}

fn unsupported_name(e: &ast::ExprKind) -> &'static str {
    match e {
        ast::ExprKind::Chain { .. } => "member access on a plain value",
        ast::ExprKind::Cast { .. } => "@cast",
        ast::ExprKind::AtVar { .. } => "@var",
        ast::ExprKind::Register { .. } => "@kregister/@uregister",
        ast::ExprKind::Deref { .. } => "@kderef/@uderef",
        ast::ExprKind::Const(_) => "@const",
        ast::ExprKind::Perf(_) => "@perf",
        ast::ExprKind::AddrOf(_) => "taking the address of a script value",
        _ => "this expression",
    }
}
