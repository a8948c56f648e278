//! `$name` target variables: what the probe's context provides. Tracepoints
//! give their record fields (`$field`), `$$name`, `$$system`, `$$vars` and
//! `$$parms`; other contexts arrive with their families.

use super::Checker;
use super::body::{Body, Owner};
use super::code::Code;
use super::suggest;
use crate::hir::{self, ContextValue, ExprKind, PointKind, Type};
use crate::tracepoint::{FieldKind, TracepointFormat, VarType};
use rstap_grammar::ast::{PrintKind, TargetChain};
use rstap_grammar::{Diag, Span};

impl<'a> Checker<'a> {
    pub(super) fn target(
        &mut self,
        b: &mut Body<'_>,
        name: &str,
        chain: &TargetChain,
        span: Span,
    ) -> hir::Expr {
        let (kind, tracepoint) = match &b.owner {
            Owner::Probe {
                kind, tracepoint, ..
            } => (*kind, *tracepoint),
            Owner::Function { .. } => {
                return self.no_target(
                    span,
                    format!("target variable '{name}' used outside a probe"),
                    "target variables exist only in the probe handler whose context has them",
                );
            }
        };
        let Some(format) = tracepoint else {
            return self.no_target(
                span,
                format!("target variable '{name}' is not available in this probe"),
                "only probes on kernel or process events have target variables",
            );
        };
        if !chain.members.is_empty() || chain.addr_of || chain.pretty > 0 {
            return self.no_target(
                span,
                format!("member access on '{name}' needs the tracepoint's BTF types, which this build does not read yet"),
                "read the field as a plain value",
            );
        }
        let PointKind::Tracepoint(tp) = kind else {
            return self.no_target(span, format!("'{name}' is not available here"), "");
        };
        match name {
            "$$name" => {
                let n = tp.name.clone();
                self.text(n, span)
            }
            "$$system" => {
                let s = tp.system.clone();
                self.text(s, span)
            }
            "$$vars" | "$$parms" => self.all_fields(format, span),
            _ => self.field(format, name.trim_start_matches('$'), span),
        }
    }

    fn text(&mut self, s: String, span: Span) -> hir::Expr {
        let (id, var) = self.expr_var();
        self.require(var, Type::String, span);
        hir::Expr {
            kind: ExprKind::Context(ContextValue::Text(s)),
            ty: Type::Unknown,
            id,
            span,
        }
    }

    fn field(&mut self, format: &TracepointFormat, name: &str, span: Span) -> hir::Expr {
        let Some((index, field)) = format
            .fields
            .iter()
            .enumerate()
            .find(|(_, f)| f.name == name && !f.is_common())
        else {
            let names: Vec<&str> = format.args().map(|f| f.name.as_str()).collect();
            let mut d = Diag::new(
                Code::E0407,
                span,
                format!("this tracepoint has no field '{name}'"),
            )
            .with_label("unknown target variable");
            let similar = suggest::similar(name, names.iter().copied());
            d = match suggest::note(&similar) {
                Some(n) => d.with_note(n),
                None => d.with_note(format!("its fields: ${}", names.join(", $"))),
            };
            self.error(d);
            return self.zero(span);
        };
        let ty = match field.var_type() {
            VarType::Long => Type::Long,
            VarType::String => Type::String,
        };
        let (id, var) = self.expr_var();
        self.require(var, ty, span);
        hir::Expr {
            kind: ExprKind::Context(ContextValue::TracepointField(index)),
            ty: Type::Unknown,
            id,
            span,
        }
    }

    /// `$$vars`: every field as `name=value`, numbers in hex as stap prints them.
    fn all_fields(&mut self, format: &TracepointFormat, span: Span) -> hir::Expr {
        let mut text = String::new();
        let mut args = Vec::new();
        for (i, f) in format
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.is_common())
        {
            if !text.is_empty() {
                text.push(' ');
            }
            let string = matches!(f.kind, FieldKind::CharArray | FieldKind::DataLocString);
            text.push_str(&f.name);
            text.push_str(if string { "=\"%s\"" } else { "=%#x" });
            let ty = if string { Type::String } else { Type::Long };
            let (id, var) = self.expr_var();
            self.require(var, ty, span);
            args.push(hir::Expr {
                kind: ExprKind::Context(ContextValue::TracepointField(i)),
                ty: Type::Unknown,
                id,
                span,
            });
        }
        let (id, var) = self.expr_var();
        self.require(var, Type::String, span);
        hir::Expr {
            kind: ExprKind::Print {
                kind: PrintKind::Sprintf,
                format: Some(text),
                args,
            },
            ty: Type::Unknown,
            id,
            span,
        }
    }

    fn no_target(&mut self, span: Span, msg: String, note: &str) -> hir::Expr {
        let mut d = Diag::new(Code::E0407, span, msg).with_label("target variable");
        if !note.is_empty() {
            d = d.with_note(note);
        }
        self.error(d);
        self.zero(span)
    }

    fn zero(&mut self, span: Span) -> hir::Expr {
        let (id, _) = self.expr_var();
        hir::Expr {
            kind: ExprKind::Num(0),
            ty: Type::Unknown,
            id,
            span,
        }
    }
}
