//! Statements and expressions: AST → HIR with every name resolved (local, global,
//! function, built-in) and every typing fact handed to the solver as it is seen.

use super::code::Code;
use super::points::Derived;
use super::types::Var;
use super::{Checker, Decl, suggest, var_of};
use crate::builtins;
use crate::hir::{
    self, Delete, ExprKind, FunctionId, GlobalId, Iterable, LocalId, Place, PointKind, SortBy,
    StmtKind, Type,
};
use crate::tracepoint::TracepointFormat;
use rstap_grammar::ast::{self, AssignOp, BinOp, UnaryOp};
use rstap_grammar::format::{Piece, Width, parse_format};
use rstap_grammar::{Diag, FileId, Span};
use std::collections::HashMap;

/// Where a body runs, as far as name resolution cares.
pub(super) enum Owner<'d> {
    Probe {
        kind: &'d PointKind,
        tracepoint: Option<&'d TracepointFormat>,
        /// The script's own handler (without alias bodies), for `@probewrite`.
        user_body: &'d ast::Block,
    },
    Function {
        ret: Var,
    },
}

/// The locals of one probe or function body as it is lowered.
pub(super) struct Body<'d> {
    /// The file whose private names are visible (an alias body's own file).
    pub file: FileId,
    pub owner: Owner<'d>,
    pub locals: Vec<hir::Local>,
    pub vars: Vec<Var>,
    names: HashMap<String, LocalId>,
    assigned: Vec<bool>,
    first_read: Vec<Option<Span>>,
    /// Arrays walked by the `foreach` loops around the current statement.
    iterating: Vec<GlobalId>,
    /// Values whose type must end up a plain long or string (checked at the end).
    pub value_uses: Vec<(Var, Span, Option<String>)>,
}

impl<'d> Body<'d> {
    pub fn new(file: FileId, owner: Owner<'d>) -> Body<'d> {
        Body {
            file,
            owner,
            locals: Vec::new(),
            vars: Vec::new(),
            names: HashMap::new(),
            assigned: Vec::new(),
            first_read: Vec::new(),
            iterating: Vec::new(),
            value_uses: Vec::new(),
        }
    }

    pub fn add_local(&mut self, name: &str, var: Var, span: Span) -> LocalId {
        let id = LocalId(u32::try_from(self.locals.len()).unwrap_or(u32::MAX));
        self.locals.push(hir::Local {
            name: name.to_string(),
            ty: Type::Unknown,
            span,
        });
        self.vars.push(var);
        self.names.insert(name.to_string(), id);
        self.assigned.push(false);
        self.first_read.push(None);
        id
    }

    /// Marks a parameter (or other variable set from outside) as assigned.
    pub fn set_assigned(&mut self, id: LocalId) {
        self.assigned[id.index()] = true;
    }

    /// Locals read somewhere but never assigned: `(name, first read)`.
    pub fn never_assigned(&self) -> Vec<(String, Span)> {
        self.locals
            .iter()
            .enumerate()
            .filter(|&(i, _)| !self.assigned[i])
            .filter_map(|(i, l)| self.first_read[i].map(|s| (l.name.clone(), s)))
            .collect()
    }
}

/// A name as the body sees it.
enum Name {
    Local(LocalId),
    Global(GlobalId),
}

impl<'a> Checker<'a> {
    /// Lowers the body of one derived probe: alias prologues, the script's
    /// handler, alias epilogues, in one scope.
    pub(super) fn probe(&mut self, p: &'a ast::Probe) {
        for d in self.resolve_points(&p.points) {
            self.derived_probe(p, d);
        }
    }

    fn derived_probe(&mut self, p: &'a ast::Probe, d: Derived<'a>) {
        let owner = Owner::Probe {
            kind: &d.kind,
            tracepoint: d.tracepoint.as_ref(),
            user_body: &p.body,
        };
        let mut body = Body::new(p.span.file, owner);
        let mut stmts = Vec::new();
        for block in d.prologue.iter().copied() {
            body.file = block.span.file;
            stmts.extend(self.block(&mut body, block).stmts);
        }
        body.file = p.span.file;
        stmts.extend(self.block(&mut body, &p.body).stmts);
        for block in d.epilogue.iter().copied() {
            body.file = block.span.file;
            stmts.extend(self.block(&mut body, block).stmts);
        }
        let condition = d.condition.map(|c| {
            let before = body.locals.len();
            body.file = c.span.file;
            let e = self.value(&mut body, c);
            let cv = var_of(&e);
            self.require(cv, Type::Long, c.span);
            if body.locals.len() > before {
                self.error(
                    Diag::new(
                        Code::E0208,
                        c.span,
                        "a probe condition can only read global variables",
                    )
                    .with_label("this condition names a local variable"),
                );
            }
            e
        });
        let locals = self.end_body(&mut body);
        self.probes.push(hir::Probe {
            kind: d.kind.clone(),
            name: d.name,
            origin: d.origin,
            condition,
            locals,
            cached: Vec::new(),
            body: hir::Block { stmts },
            span: d.span,
        });
        self.probe_vars.push(body.vars);
    }

    /// Lowers a linked function's body.
    pub(super) fn function_body(&mut self, id: FunctionId, decl: Decl<'a, ast::Function>) {
        let f = decl.ast;
        let vars = self.functions[id.index()].1.clone();
        let mut body = Body::new(decl.file, Owner::Function { ret: vars.ret });
        for (p, &v) in f.params.iter().zip(&vars.params) {
            let l = body.add_local(&p.name.node, v, p.name.span);
            body.set_assigned(l);
        }
        let block = match &f.body {
            ast::FunctionBody::Script(b) => self.block(&mut body, b),
            ast::FunctionBody::Embedded(code) => {
                self.error(
                    Diag::new(
                        Code::E0206,
                        code.span,
                        format!(
                            "function '{}' is written in embedded C, which rstap never runs",
                            f.name.node
                        ),
                    )
                    .with_label("embedded C"),
                );
                hir::Block::default()
            }
        };
        let locals = self.end_body(&mut body);
        let slot = &mut self.functions[id.index()];
        slot.0.body = block;
        slot.0.locals = locals;
        slot.1.locals = body.vars;
    }

    /// Reports never-assigned locals and hands back the locals.
    fn end_body(&mut self, body: &mut Body<'_>) -> Vec<hir::Local> {
        for (name, span) in body.never_assigned() {
            self.warn(
                Diag::new(
                    Code::E0209,
                    span,
                    format!("never-assigned local variable '{name}'"),
                )
                .with_label("read here, but nothing assigns it"),
            );
        }
        let uses = std::mem::take(&mut body.value_uses);
        self.value_uses.extend(uses);
        std::mem::take(&mut body.locals)
    }

    pub(super) fn block(&mut self, b: &mut Body<'_>, block: &'a ast::Block) -> hir::Block {
        let mut stmts = Vec::with_capacity(block.stmts.len());
        for s in &block.stmts {
            if let Some(s) = self.stmt(b, s) {
                stmts.push(s);
            }
        }
        hir::Block { stmts }
    }

    fn boxed_stmt(&mut self, b: &mut Body<'_>, s: &'a ast::Stmt) -> Box<hir::Stmt> {
        let span = s.span;
        Box::new(self.stmt(b, s).unwrap_or(hir::Stmt {
            kind: StmtKind::Block(hir::Block::default()),
            span,
        }))
    }

    fn stmt(&mut self, b: &mut Body<'_>, s: &'a ast::Stmt) -> Option<hir::Stmt> {
        let kind = match &s.node {
            ast::StmtKind::Null => return None,
            ast::StmtKind::Block(block) => StmtKind::Block(self.block(b, block)),
            ast::StmtKind::Expr(e) => StmtKind::Expr(self.expr(b, e)),
            ast::StmtKind::If {
                cond,
                then,
                otherwise,
            } => StmtKind::If {
                cond: self.condition(b, cond),
                then: self.boxed_stmt(b, then),
                otherwise: otherwise.as_ref().map(|o| self.boxed_stmt(b, o)),
            },
            ast::StmtKind::While { cond, body } => StmtKind::Loop {
                init: None,
                cond: Some(self.condition(b, cond)),
                step: None,
                body: self.boxed_stmt(b, body),
            },
            ast::StmtKind::For {
                init,
                cond,
                step,
                body,
            } => StmtKind::Loop {
                init: init.as_ref().map(|e| self.expr(b, e)),
                cond: cond.as_ref().map(|e| self.condition(b, e)),
                step: step.as_ref().map(|e| self.expr(b, e)),
                body: self.boxed_stmt(b, body),
            },
            ast::StmtKind::Foreach(f) => self.foreach(b, f)?,
            ast::StmtKind::Delete(e) => StmtKind::Delete(self.delete(b, e)?),
            ast::StmtKind::Next => StmtKind::Next,
            ast::StmtKind::Break => StmtKind::Break,
            ast::StmtKind::Continue => StmtKind::Continue,
            ast::StmtKind::Return(e) => self.return_stmt(b, e.as_ref(), s.span),
            ast::StmtKind::Try(t) => {
                let body = self.block(b, &t.body);
                let var = t.var.as_ref().map(|v| {
                    let id = self.local_for_write(b, &v.node, v.span);
                    let var = b.vars[id.index()];
                    self.require(var, Type::String, v.span);
                    id
                });
                StmtKind::Try {
                    body,
                    var,
                    catch: self.block(b, &t.catch),
                }
            }
        };
        Some(hir::Stmt { kind, span: s.span })
    }

    fn return_stmt(&mut self, b: &mut Body<'_>, e: Option<&'a ast::Expr>, span: Span) -> StmtKind {
        let Owner::Function { ret } = b.owner else {
            // The parser rejects `return` in probes; an alias body cannot hold one either.
            return StmtKind::Return(None);
        };
        let value = e.map(|e| {
            let v = self.value(b, e);
            self.unify(ret, var_of(&v));
            v
        });
        let _ = span;
        StmtKind::Return(value)
    }

    /// An `if`/loop condition: a long.
    fn condition(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> hir::Expr {
        let c = self.value(b, e);
        self.require(var_of(&c), Type::Long, e.span);
        c
    }

    fn foreach(&mut self, b: &mut Body<'_>, f: &'a ast::Foreach) -> Option<StmtKind> {
        let (array, key_vars, value_var) = match &f.array {
            ast::Indexable::Array(name) => {
                let g = self.array(b, name, f.keys.len())?;
                let vars = &self.globals[g.index()].1;
                let keys = vars
                    .keys
                    .as_ref()
                    .map(|(k, _)| k.clone())
                    .unwrap_or_default();
                (Iterable::Array(g), keys, vars.value)
            }
            ast::Indexable::Hist(h) => {
                let h = self.hist(b, h)?;
                let key = self.solver.of(Type::Long, f.keys[0].span);
                let value = self.solver.of(Type::Long, f.keys[0].span);
                (Iterable::Hist(Box::new(h)), vec![key], value)
            }
        };
        let mut keys = Vec::with_capacity(f.keys.len());
        for (k, &kv) in f.keys.iter().zip(&key_vars) {
            let id = self.local_for_write(b, &k.node, k.span);
            self.unify(b.vars[id.index()], kv);
            keys.push(Some(id));
        }
        let value = f.value.as_ref().map(|v| {
            let id = self.local_for_write(b, &v.node, v.span);
            self.unify(b.vars[id.index()], value_var);
            id
        });
        let slice = f.slice.as_ref().map(|s| {
            s.iter()
                .zip(key_vars.iter().copied().chain(std::iter::repeat(value_var)))
                .map(|(k, kv)| {
                    k.as_ref().map(|k| {
                        let e = self.value(b, k);
                        self.unify(var_of(&e), kv);
                        e
                    })
                })
                .collect()
        });
        let sort = f.sort.map(|s| {
            let by = match s.by {
                ast::SortBy::Key(i) => SortBy::Key(i),
                ast::SortBy::Value => SortBy::Value,
                ast::SortBy::Aggregate(op) => {
                    self.require(value_var, Type::Stats, f.body.span);
                    SortBy::Stat(op)
                }
            };
            (by, s.dir)
        });
        let limit = f.limit.as_ref().map(|l| self.condition(b, l));
        let walked = match array {
            Iterable::Array(g) => Some(g),
            Iterable::Hist(_) => None,
        };
        b.iterating.extend(walked);
        let body = self.stmt(b, &f.body);
        if walked.is_some() {
            b.iterating.pop();
        }
        let body = body.unwrap_or(hir::Stmt {
            kind: StmtKind::Block(hir::Block::default()),
            span: f.body.span,
        });
        Some(StmtKind::Foreach(Box::new(hir::Foreach {
            array,
            value,
            keys,
            slice,
            sort,
            limit,
            body,
        })))
    }

    fn delete(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> Option<Delete> {
        match &e.node {
            ast::ExprKind::Var(name) => match self.name(b, name, e.span, true) {
                Name::Local(id) => Some(Delete::Local(id)),
                Name::Global(g) => {
                    self.written(b, g, e.span);
                    Some(Delete::Global(g))
                }
            },
            ast::ExprKind::Index {
                base: ast::Indexable::Array(name),
                indexes,
            } => {
                let g = self.array(b, name, indexes.len())?;
                self.written(b, g, e.span);
                let keys = self.keys(b, g, indexes, true);
                Some(Delete::Elements { array: g, keys })
            }
            _ => {
                self.error(
                    Diag::new(
                        Code::E0208,
                        e.span,
                        "only variables and array elements can be deleted",
                    )
                    .with_label("not a variable or an array element"),
                );
                None
            }
        }
    }

    /// An expression whose value is used: it must have one (not a function that
    /// returns nothing) and be a plain long or string.
    pub(super) fn value(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> hir::Expr {
        let v = self.expr(b, e);
        let call = match &v.kind {
            ExprKind::Call { func, .. } => Some(self.functions[func.index()].0.name.clone()),
            ExprKind::Builtin { func, .. } => Some(func.name().to_string()),
            _ => None,
        };
        b.value_uses.push((var_of(&v), e.span, call));
        v
    }

    fn typed(&mut self, kind: ExprKind, ty: Type, span: Span) -> hir::Expr {
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
    fn like(&mut self, kind: ExprKind, var: Var, span: Span) -> hir::Expr {
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
                let _: UnaryOp = *op;
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
                if let Some(s) = shift {
                    let s = self.value(b, s);
                    self.require(var_of(&s), Type::Long, s.span);
                }
                let kind = ExprKind::Stat {
                    op: *op,
                    of: Box::new(of),
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
    fn name(&mut self, b: &mut Body<'_>, name: &str, span: Span, write: bool) -> Name {
        if let Some(&id) = b.names.get(name) {
            return Name::Local(id);
        }
        if let Some(decl) = self.decls.global(name, b.file) {
            return Name::Global(self.link_global(decl));
        }
        let _ = write;
        let var = self.solver.fresh();
        Name::Local(b.add_local(name, var, span))
    }

    fn local_for_write(&mut self, b: &mut Body<'_>, name: &str, span: Span) -> LocalId {
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

    fn read_var(&mut self, b: &mut Body<'_>, name: &str, span: Span) -> hir::Expr {
        match self.name(b, name, span, false) {
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

    /// A global used without indexes: it must not be an array.
    fn scalar_use(&mut self, g: GlobalId, span: Span) {
        let vars = &mut self.globals[g.index()].1;
        if let Some((keys, first)) = &vars.keys {
            let (n, first) = (keys.len(), *first);
            self.arity_error(g, 0, n, span, first);
        } else {
            vars.scalar_use.get_or_insert(span);
        }
    }

    fn arity_error(&mut self, g: GlobalId, found: usize, first: usize, span: Span, at: Span) {
        let name = self.globals[g.index()].0.name.clone();
        self.error(
            Diag::new(
                Code::E0204,
                span,
                format!("inconsistent arity of '{name}': used with {found} index(es) here, {first} before"),
            )
            .with_label(format!("{found} index(es)"))
            .with_secondary(at, format!("arity {first} first inferred here")),
        );
    }

    /// The global array `name` used with `arity` indexes, its key columns created on first use.
    fn array(&mut self, b: &mut Body<'_>, name: &ast::Ident, arity: usize) -> Option<GlobalId> {
        let g = match self.name(b, &name.node, name.span, false) {
            Name::Global(g) => g,
            Name::Local(id) => {
                // `name` became a local by this very lookup or an earlier use.
                let _ = id;
                self.error(
                    Diag::new(
                        Code::E0203,
                        name.span,
                        format!(
                            "unresolved arity-{arity} global array '{}': missing global declaration?",
                            name.node
                        ),
                    )
                    .with_label("arrays must be declared with `global`")
                    .with_note(format!("add `global {}` at the top level", name.node)),
                );
                return None;
            }
        };
        let vars = &self.globals[g.index()].1;
        match (&vars.keys, vars.scalar_use) {
            (Some((keys, first)), _) if keys.len() != arity => {
                let (n, first) = (keys.len(), *first);
                self.arity_error(g, arity, n, name.span, first);
                None
            }
            (Some(_), _) => Some(g),
            (None, Some(first)) => {
                self.arity_error(g, arity, 0, name.span, first);
                None
            }
            (None, None) => {
                let keys = (0..arity).map(|_| self.solver.fresh()).collect();
                self.globals[g.index()].1.keys = Some((keys, name.span));
                Some(g)
            }
        }
    }

    /// Index expressions of array `g`, unified with its key columns; `wild` allows `*`.
    fn keys(
        &mut self,
        b: &mut Body<'_>,
        g: GlobalId,
        indexes: &'a [Option<ast::Expr>],
        wild: bool,
    ) -> Vec<Option<hir::Expr>> {
        let key_vars = self.globals[g.index()]
            .1
            .keys
            .as_ref()
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(indexes.len());
        for (k, kv) in indexes.iter().zip(key_vars) {
            match k {
                Some(k) => {
                    let e = self.value(b, k);
                    self.unify(var_of(&e), kv);
                    out.push(Some(e));
                }
                None => {
                    if !wild {
                        self.no_wildcard(g);
                    }
                    out.push(None);
                }
            }
        }
        out
    }

    fn no_wildcard(&mut self, g: GlobalId) {
        let span = self.globals[g.index()].0.span;
        let name = self.globals[g.index()].0.name.clone();
        self.error(
            Diag::new(
                Code::E0208,
                span,
                format!("a `*` index of '{name}' can only appear in delete, in and foreach"),
            )
            .with_label("array declared here"),
        );
    }

    fn index(
        &mut self,
        b: &mut Body<'_>,
        base: &'a ast::Indexable,
        indexes: &'a [Option<ast::Expr>],
        span: Span,
    ) -> hir::Expr {
        match base {
            ast::Indexable::Array(name) => {
                let Some(g) = self.array(b, name, indexes.len()) else {
                    return self.typed(ExprKind::Num(0), Type::Unknown, span);
                };
                let keys = self
                    .keys(b, g, indexes, false)
                    .into_iter()
                    .flatten()
                    .collect();
                let var = self.globals[g.index()].1.value;
                self.like(ExprKind::Element { array: g, keys }, var, span)
            }
            ast::Indexable::Hist(h) => {
                let Some(h) = self.hist(b, h) else {
                    return self.typed(ExprKind::Num(0), Type::Long, span);
                };
                let bucket = indexes.first().and_then(Option::as_ref);
                let bucket = bucket.map(|k| {
                    let e = self.value(b, k);
                    self.require(var_of(&e), Type::Long, k.span);
                    e
                });
                let kind = ExprKind::In {
                    array: Iterable::Hist(Box::new(h)),
                    keys: vec![bucket],
                };
                self.typed(kind, Type::Long, span)
            }
        }
    }

    /// `@hist_log(s)` / `@hist_linear(s, ...)` where a histogram may stand.
    pub(super) fn hist(&mut self, b: &mut Body<'_>, h: &'a ast::Expr) -> Option<hir::Expr> {
        let ast::ExprKind::Hist { kind, expr } = &h.node else {
            return None;
        };
        let of = self.stats_operand(b, expr);
        if let ast::Histogram::Linear { start, stop, step } = *kind
            && (step <= 0 || stop <= start)
        {
            {
                self.error(
                    Diag::new(
                        Code::E0303,
                        h.span,
                        "@hist_linear needs start < stop and a positive step",
                    )
                    .with_label("bad bucket parameters"),
                );
            }
        }
        let kind = ExprKind::Hist {
            kind: kind.clone(),
            of: Box::new(of),
        };
        Some(self.typed(kind, Type::Unknown, h.span))
    }

    /// The operand of `@count(x)` or `@hist_log(x)`: a stats global or element.
    fn stats_operand(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> hir::Expr {
        let x = self.expr(b, e);
        self.require(var_of(&x), Type::Stats, e.span);
        if !matches!(x.kind, ExprKind::Global(_) | ExprKind::Element { .. }) {
            self.error(
                Diag::new(
                    Code::E0303,
                    e.span,
                    "statistics can only be read from a global or an element of a global array",
                )
                .with_label("not a global"),
            );
        }
        x
    }

    fn in_expr(
        &mut self,
        b: &mut Body<'_>,
        keys: &'a [Option<ast::Expr>],
        array: &'a ast::Indexable,
        span: Span,
    ) -> hir::Expr {
        match array {
            ast::Indexable::Array(name) => {
                let Some(g) = self.array(b, name, keys.len()) else {
                    return self.typed(ExprKind::Num(0), Type::Long, span);
                };
                let keys = self.keys(b, g, keys, true);
                self.typed(
                    ExprKind::In {
                        array: Iterable::Array(g),
                        keys,
                    },
                    Type::Long,
                    span,
                )
            }
            ast::Indexable::Hist(h) => {
                let Some(h) = self.hist(b, h) else {
                    return self.typed(ExprKind::Num(0), Type::Long, span);
                };
                let keys = keys
                    .iter()
                    .map(|k| {
                        k.as_ref().map(|k| {
                            let e = self.value(b, k);
                            self.require(var_of(&e), Type::Long, k.span);
                            e
                        })
                    })
                    .collect();
                self.typed(
                    ExprKind::In {
                        array: Iterable::Hist(Box::new(h)),
                        keys,
                    },
                    Type::Long,
                    span,
                )
            }
        }
    }

    /// An assignable expression and its type variable.
    fn place(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> (Option<Place>, Var) {
        match &e.node {
            ast::ExprKind::Var(name) => match self.name(b, name, e.span, true) {
                Name::Local(id) => {
                    b.assigned[id.index()] = true;
                    (Some(Place::Local(id)), b.vars[id.index()])
                }
                Name::Global(g) => {
                    self.scalar_use(g, e.span);
                    self.written(b, g, e.span);
                    (Some(Place::Global(g)), self.globals[g.index()].1.value)
                }
            },
            ast::ExprKind::Index {
                base: ast::Indexable::Array(name),
                indexes,
            } => {
                let Some(g) = self.array(b, name, indexes.len()) else {
                    return (None, self.solver.fresh());
                };
                self.written(b, g, e.span);
                let keys = self
                    .keys(b, g, indexes, false)
                    .into_iter()
                    .flatten()
                    .collect();
                let value = self.globals[g.index()].1.value;
                (Some(Place::Element { array: g, keys }), value)
            }
            _ => {
                self.error(
                    Diag::new(Code::E0208, e.span, "this expression cannot be assigned to")
                        .with_label("not a variable or an array element"),
                );
                (None, self.solver.fresh())
            }
        }
    }

    /// Records a write of `g`, refusing one inside a `foreach` over it.
    fn written(&mut self, b: &mut Body<'_>, g: GlobalId, span: Span) {
        self.globals[g.index()].1.written = true;
        if b.iterating.contains(&g) {
            let name = self.globals[g.index()].0.name.clone();
            self.error(
                Diag::new(
                    Code::E0207,
                    span,
                    format!("variable '{name}' modified during 'foreach' iteration"),
                )
                .with_label("modified here")
                .with_note("collect the changes in another array and apply them after the loop"),
            );
        }
    }

    fn assign(
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

    fn binary(
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

    fn call(
        &mut self,
        b: &mut Body<'_>,
        name: &ast::Ident,
        args: &'a [ast::Expr],
        span: Span,
    ) -> hir::Expr {
        let lowered: Vec<hir::Expr> = args.iter().map(|a| self.value(b, a)).collect();
        let candidates = self.decls.functions(&name.node, b.file);
        if let Some(decl) = candidates.iter().find(|d| d.ast.params.len() == args.len()) {
            let id = self.link_function(*decl);
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
        let arities: Vec<usize> = candidates
            .iter()
            .map(|d| d.ast.params.len())
            .chain(
                builtins::names()
                    .filter(|n| *n == name.node)
                    .filter_map(|n| builtins::lookup(n, 0).map(|s| s.params.len())),
            )
            .collect();
        if arities.is_empty() && !builtins::names().any(|n| n == name.node) {
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

    fn print(&mut self, b: &mut Body<'_>, p: &'a ast::Print, span: Span) -> hir::Expr {
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
    fn format_args(&mut self, format: &str, span: Span, args: &[hir::Expr]) {
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

    fn defined(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> bool {
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

    fn probewrite(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> bool {
        let (Owner::Probe { user_body, .. }, ast::ExprKind::Var(name)) = (&b.owner, &e.node) else {
            return false;
        };
        let mut finder = WriteFinder { name, found: false };
        rstap_grammar::visit::Visitor::block(&mut finder, user_body);
        finder.found
    }

    fn entry(&mut self, b: &mut Body<'_>, inner: &'a ast::Expr, span: Span) -> hir::Expr {
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
