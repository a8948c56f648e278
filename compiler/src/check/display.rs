//! stap prints, at the end of a session, every global of the user's script that
//! the script writes but never reads: an `end` probe per such global, with the
//! formats of stap-semantics §4.2 (arrays sorted by value, descending).

use crate::hir::{
    self, ExprKind, Global, GlobalId, Iterable, LocalId, PointKind, PrintKind, SortBy, SortDir,
    StatOp, StmtKind, Type,
};
use rstap_grammar::ast::BinOp;
use rstap_grammar::{FileId, Span};

/// The globals of `script` that are written and never read, in declaration order.
pub(super) fn unread(
    globals: &[Global],
    written: &[bool],
    read: &[bool],
    script: FileId,
) -> Vec<GlobalId> {
    (0..globals.len())
        .filter(|&i| {
            let global = &globals[i];
            let unknown = global.ty == Type::Unknown
                || global
                    .keys
                    .as_ref()
                    .is_some_and(|k| k.contains(&Type::Unknown));
            // An unknown type was reported as unresolved already.
            !global.tapset && written[i] && !read[i] && global.span.file == script && !unknown
        })
        .map(|i| GlobalId(u32::try_from(i).unwrap_or(u32::MAX)))
        .collect()
}

/// An `end` probe for each of the `unread` globals, printing it as stap does.
pub(super) fn probes(globals: &[Global], unread: &[GlobalId]) -> Vec<hir::Probe> {
    let mut probes = Vec::new();
    for &g in unread {
        let global = &globals[g.index()];
        let mut d = Display { locals: Vec::new() };
        let stmt = match &global.keys {
            None => d.scalar(g, &global.name, global.ty, global.span),
            Some(keys) => d.array(g, &global.name, global.ty, keys, global.span),
        };
        probes.push(hir::Probe {
            kind: PointKind::End(0),
            name: "end".into(),
            origin: "end".into(),
            written: "end".into(),
            condition: None,
            locals: d.locals,
            cached: Vec::new(),
            body: hir::Block { stmts: vec![stmt] },
            span: global.span,
        });
    }
    probes
}

/// Builds typed HIR directly: every type here is known.
struct Display {
    locals: Vec<hir::Local>,
}

impl Display {
    fn scalar(&mut self, g: GlobalId, name: &str, ty: Type, span: Span) -> hir::Stmt {
        match ty {
            Type::String => {
                let v = self.expr(ExprKind::Global(g), Type::String, span);
                self.printf(&format!("{name}=\\\"%s\\\"\\n"), vec![v], span)
            }
            Type::Stats => {
                let of = || ExprKind::Global(g);
                self.stats(name, &of, span)
            }
            _ => {
                let v = self.expr(ExprKind::Global(g), Type::Long, span);
                self.printf(&format!("{name}=%d\\n"), vec![v], span)
            }
        }
    }

    /// `name @count=… @min=…`, or `name @count=0x0` when empty.
    fn stats(&mut self, label: &str, of: &dyn Fn() -> ExprKind, span: Span) -> hir::Stmt {
        let stat = |d: &mut Self, op| {
            let x = d.expr(of(), Type::Stats, span);
            d.expr(
                ExprKind::Stat {
                    op,
                    of: Box::new(x),
                    shift: None,
                },
                Type::Long,
                span,
            )
        };
        let count = stat(self, StatOp::Count);
        let zero = self.expr(ExprKind::Num(0), Type::Long, span);
        let empty = self.expr(
            ExprKind::Binary {
                op: BinOp::Eq,
                left: Box::new(count),
                right: Box::new(zero),
            },
            Type::Long,
            span,
        );
        let none = self.printf(&format!("{label} @count=0x0\\n"), Vec::new(), span);
        let ops = [
            StatOp::Count,
            StatOp::Min,
            StatOp::Max,
            StatOp::Sum,
            StatOp::Avg,
        ];
        let args = ops.iter().map(|&op| stat(self, op)).collect();
        let all = self.printf(
            &format!("{label} @count=%d @min=%d @max=%d @sum=%d @avg=%d\\n"),
            args,
            span,
        );
        hir::Stmt {
            kind: StmtKind::If {
                cond: empty,
                then: Box::new(none),
                otherwise: Some(Box::new(all)),
            },
            span,
        }
    }

    fn array(
        &mut self,
        g: GlobalId,
        name: &str,
        value: Type,
        keys: &[Type],
        span: Span,
    ) -> hir::Stmt {
        let idx: Vec<LocalId> = keys
            .iter()
            .enumerate()
            .map(|(i, &t)| self.local(&format!("__idx{i}"), t, span))
            .collect();
        let key_fmt: Vec<&str> = keys
            .iter()
            .map(|t| {
                if *t == Type::String {
                    "\\\"%s\\\""
                } else {
                    "%d"
                }
            })
            .collect();
        let label = format!("{name}[{}]", key_fmt.join(","));
        let key_args = |d: &mut Self| -> Vec<hir::Expr> {
            idx.iter()
                .zip(keys)
                .map(|(&l, &t)| d.expr(ExprKind::Local(l), t, span))
                .collect()
        };
        let (val, body, sort) = if value == Type::Stats {
            // `label` holds printf conversions for the keys: print it with them first.
            let head = key_args(self);
            let prefix = self.printf(&label, head, span);
            let element = |d: &mut Self| ExprKind::Element {
                array: g,
                keys: key_args(d),
            };
            let stats = self.stats_element(&element, span);
            let body = hir::Stmt {
                kind: StmtKind::Block(hir::Block {
                    stmts: vec![prefix, stats],
                }),
                span,
            };
            (None, body, SortBy::Stat(StatOp::Count))
        } else {
            let v = self.local("__val", value, span);
            let mut args = key_args(self);
            args.push(self.expr(ExprKind::Local(v), value, span));
            let val_fmt = if value == Type::String {
                "=\\\"%s\\\"\\n"
            } else {
                "=%d\\n"
            };
            let body = self.printf(&format!("{label}{val_fmt}"), args, span);
            (Some(v), body, SortBy::Value)
        };
        hir::Stmt {
            kind: StmtKind::Foreach(Box::new(hir::Foreach {
                array: Iterable::Array(g),
                value: val,
                keys: idx.iter().copied().map(Some).collect(),
                slice: None,
                sort: Some((sort, SortDir::Descending)),
                limit: None,
                body,
            })),
            span,
        }
    }

    /// ` @count=… @min=…` of one element of a stats array.
    fn stats_element(&mut self, element: &dyn Fn(&mut Self) -> ExprKind, span: Span) -> hir::Stmt {
        let ops = [
            StatOp::Count,
            StatOp::Min,
            StatOp::Max,
            StatOp::Sum,
            StatOp::Avg,
        ];
        let mut args = Vec::new();
        for op in ops {
            let kind = element(self);
            let x = self.expr(kind, Type::Stats, span);
            args.push(self.expr(
                ExprKind::Stat {
                    op,
                    of: Box::new(x),
                    shift: None,
                },
                Type::Long,
                span,
            ));
        }
        self.printf(" @count=%d @min=%d @max=%d @sum=%d @avg=%d\\n", args, span)
    }

    fn local(&mut self, name: &str, ty: Type, span: Span) -> LocalId {
        let id = LocalId(u32::try_from(self.locals.len()).unwrap_or(u32::MAX));
        self.locals.push(hir::Local {
            name: name.to_string(),
            ty,
            span,
        });
        id
    }

    fn expr(&mut self, kind: ExprKind, ty: Type, span: Span) -> hir::Expr {
        hir::Expr {
            kind,
            ty,
            id: hir::SYNTHESIZED,
            span,
        }
    }

    fn printf(&mut self, format: &str, args: Vec<hir::Expr>, span: Span) -> hir::Stmt {
        let e = self.expr(
            ExprKind::Print {
                kind: PrintKind::Printf,
                format: Some(format.to_string()),
                args,
            },
            Type::Unknown,
            span,
        );
        hir::Stmt {
            kind: StmtKind::Expr(e),
            span,
        }
    }
}
