//! Statements and expressions: AST → HIR with every name resolved (local, global,
//! function, built-in) and every typing fact handed to the solver as it is seen.

use super::code::Code;
use super::points::{Derived, ProbeFacts};
use super::types::Var;
use super::{Checker, Decl, var_of};
use crate::hir::{
    self, Delete, FunctionId, GlobalId, Iterable, LocalId, PointKind, SortBy, StmtKind, Type,
};
use rstap_grammar::ast::{self};
use rstap_grammar::{Diag, FileId, Span};
use std::collections::HashMap;

/// Where a body runs, as far as name resolution cares.
pub(super) enum Owner<'d> {
    Probe {
        kind: &'d PointKind,
        facts: &'d ProbeFacts,
        /// The script's own handler (without alias bodies), for `@probewrite`.
        user_body: &'d ast::Block,
    },
    Function {
        id: FunctionId,
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
    pub names: HashMap<String, LocalId>,
    pub assigned: Vec<bool>,
    pub first_read: Vec<Option<Span>>,
    /// Arrays walked by the `foreach` loops around the current statement.
    pub iterating: Vec<GlobalId>,
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
pub(super) enum Name {
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

    pub(super) fn derived_probe(&mut self, p: &'a ast::Probe, d: Derived<'a>) {
        let owner = Owner::Probe {
            kind: &d.kind,
            facts: &d.facts,
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
            // The condition sees none of the body's locals: a name the body
            // assigns is still a new (so refused) local here, not the body's.
            let names = std::mem::take(&mut body.names);
            let before = body.locals.len();
            body.file = c.span.file;
            let e = self.value(&mut body, c);
            body.names = names;
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
            written: d.written,
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
        let mut body = Body::new(decl.file, Owner::Function { id, ret: vars.ret });
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
    pub(super) fn end_body(&mut self, body: &mut Body<'_>) -> Vec<hir::Local> {
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

    pub(super) fn boxed_stmt(&mut self, b: &mut Body<'_>, s: &'a ast::Stmt) -> Box<hir::Stmt> {
        let span = s.span;
        Box::new(self.stmt(b, s).unwrap_or(hir::Stmt {
            kind: StmtKind::Block(hir::Block::default()),
            span,
        }))
    }

    pub(super) fn stmt(&mut self, b: &mut Body<'_>, s: &'a ast::Stmt) -> Option<hir::Stmt> {
        let kind = match &s.node {
            ast::StmtKind::Null => return None,
            ast::StmtKind::Block(block) => StmtKind::Block(self.block(b, block)),
            ast::StmtKind::Expr(e) => StmtKind::Expr(self.expr(b, e)),
            ast::StmtKind::If {
                cond,
                then,
                otherwise,
            } => match self.settled_defined(b, cond) {
                // `if (@defined($x)) ... $x ...`: as with `?:`, the branch
                // not taken is never resolved, so it may name what this
                // probe lacks (one mark of `mark("*")` without `$arg1`).
                Some(taken) => StmtKind::If {
                    cond: self.typed(hir::ExprKind::Num(i64::from(taken)), Type::Long, cond.span),
                    then: if taken {
                        self.boxed_stmt(b, then)
                    } else {
                        Box::new(hir::Stmt {
                            kind: StmtKind::Block(hir::Block::default()),
                            span: then.span,
                        })
                    },
                    otherwise: match otherwise {
                        Some(o) if !taken => Some(self.boxed_stmt(b, o)),
                        _ => None,
                    },
                },
                None => StmtKind::If {
                    cond: self.condition(b, cond),
                    then: self.boxed_stmt(b, then),
                    otherwise: otherwise.as_ref().map(|o| self.boxed_stmt(b, o)),
                },
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
            ast::StmtKind::Return(e) => self.return_stmt(b, e.as_ref()),
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

    pub(super) fn return_stmt(&mut self, b: &mut Body<'_>, e: Option<&'a ast::Expr>) -> StmtKind {
        let Owner::Function { ret, .. } = b.owner else {
            // The parser rejects `return` in probes; an alias body cannot hold one either.
            return StmtKind::Return(None);
        };
        let value = e.map(|e| {
            if let Owner::Function { id, .. } = b.owner {
                self.functions[id.index()].1.returns_value = true;
            }
            let v = self.value(b, e);
            self.unify(ret, var_of(&v));
            v
        });
        StmtKind::Return(value)
    }

    /// An `if`/loop condition: a long.
    /// Whether `@defined(x)` or `!@defined(x)` holds, when `e` is one of them.
    fn settled_defined(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> Option<bool> {
        match &e.node {
            ast::ExprKind::Defined(inner) => Some(self.defined(b, inner)),
            ast::ExprKind::Unary {
                op: ast::UnaryOp::Not,
                expr,
            } => self.settled_defined(b, expr).map(|d| !d),
            _ => None,
        }
    }

    pub(super) fn condition(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> hir::Expr {
        let c = self.value(b, e);
        self.require(var_of(&c), Type::Long, e.span);
        c
    }

    pub(super) fn foreach(&mut self, b: &mut Body<'_>, f: &'a ast::Foreach) -> Option<StmtKind> {
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

    pub(super) fn delete(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> Option<Delete> {
        match &e.node {
            ast::ExprKind::Var(name) => match self.name(b, name, e.span) {
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
}
