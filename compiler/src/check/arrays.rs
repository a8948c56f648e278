//! Global arrays and statistics: arity, key columns, indexing, `in`,
//! histograms, assignable places, and writes during `foreach`.

use super::body::{Body, Name, Owner};
use super::code::Code;
use super::types::Var;
use super::{Checker, var_of};
use crate::hir::{self, ExprKind, GlobalId, Iterable, Place, Type};
use rstap_grammar::ast::{self};
use rstap_grammar::{Diag, Span};

impl<'a> Checker<'a> {
    /// A global used without indexes: it must not be an array.
    pub(super) fn scalar_use(&mut self, g: GlobalId, span: Span) {
        let vars = &mut self.globals[g.index()].1;
        if let Some((keys, first)) = &vars.keys {
            let (n, first) = (keys.len(), *first);
            self.arity_error(g, 0, n, span, first);
        } else {
            vars.scalar_use.get_or_insert(span);
        }
    }

    pub(super) fn arity_error(
        &mut self,
        g: GlobalId,
        found: usize,
        first: usize,
        span: Span,
        at: Span,
    ) {
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
    pub(super) fn array(
        &mut self,
        b: &mut Body<'_>,
        name: &ast::Ident,
        arity: usize,
    ) -> Option<GlobalId> {
        // An array is never a local: look the name up without making one.
        let global = match b.names.get(name.node.as_str()) {
            Some(_) => None,
            None => self.decls.global(&name.node, b.file),
        };
        let g = match global {
            Some(decl) => self.link_global(decl),
            None => {
                let msg = format!(
                    "unresolved arity-{arity} global array '{}': missing global declaration?",
                    name.node
                );
                // Once per array is enough.
                if !self.diags.iter().any(|d| d.message == msg) {
                    self.error(
                        Diag::new(Code::E0203, name.span, msg)
                            .with_label("arrays must be declared with `global`")
                            .with_note(format!("add `global {}` at the top level", name.node)),
                    );
                }
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
    pub(super) fn keys(
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

    pub(super) fn no_wildcard(&mut self, g: GlobalId) {
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

    pub(super) fn index(
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
                let Some(Some(bucket)) = indexes.first() else {
                    return self.typed(ExprKind::Num(0), Type::Long, span);
                };
                let bucket = {
                    let e = self.value(b, bucket);
                    self.require(var_of(&e), Type::Long, bucket.span);
                    e
                };
                let kind = ExprKind::HistBucket {
                    hist: Box::new(h),
                    bucket: Box::new(bucket),
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
    pub(super) fn stats_operand(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> hir::Expr {
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

    pub(super) fn in_expr(
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
    pub(super) fn place(&mut self, b: &mut Body<'_>, e: &'a ast::Expr) -> (Option<Place>, Var) {
        match &e.node {
            ast::ExprKind::Var(name) => match self.name(b, name, e.span) {
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
    pub(super) fn written(&mut self, b: &mut Body<'_>, g: GlobalId, span: Span) {
        self.globals[g.index()].1.written = true;
        if let Owner::Function { id, .. } = b.owner {
            let writes = &mut self.functions[id.index()].1.writes;
            if !writes.contains(&g) {
                writes.push(g);
            }
        }
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
}
