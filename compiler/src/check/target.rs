//! `$name` target variables: what the probe's context provides. Tracepoints
//! give their record fields (`$field`), `$$name`, `$$system`, `$$vars`; kernel
//! functions their BTF-typed parameters and `$return` (members through
//! [`super::members`]); user functions `$argN` and `$return` by register; USDT
//! marks `$argN`, `$$name`, `$$provider`.

use super::Checker;
use super::body::{Body, Owner};
use super::code::Code;
use super::members::scalar_type;
use super::points::ProbeFacts;
use super::suggest;
use crate::ctype::FuncSig;
use crate::hir::{self, ContextValue, ExprKind, PointKind, Type};
use crate::tracepoint::{FieldKind, TracepointFormat, VarType};
use rstap_grammar::ast::{PrintKind, TargetChain};
use rstap_grammar::{Diag, Span};

/// Where register-passed arguments come from.
#[derive(Clone, Copy)]
enum Registers {
    Function { ret: bool },
    Mark { args: usize },
}

impl<'a> Checker<'a> {
    pub(super) fn target(
        &mut self,
        b: &mut Body<'_>,
        name: &str,
        chain: &'a TargetChain,
        span: Span,
    ) -> hir::Expr {
        let (kind, facts) = match &b.owner {
            Owner::Probe { kind, facts, .. } => (*kind, *facts),
            Owner::Function { .. } => {
                return self.no_target(
                    span,
                    format!("target variable '{name}' used outside a probe"),
                    "target variables exist only in the probe handler whose context has them",
                );
            }
        };
        if name == "$$locals" && !matches!(facts, ProbeFacts::None) {
            // Locals of the probed code come from DWARF, which rstap does not read.
            return self.text(String::new(), span);
        }
        match facts {
            ProbeFacts::Tracepoint(format) => {
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
                    "$$name" => self.text(tp.name.clone(), span),
                    "$$system" => self.text(tp.system.clone(), span),
                    "$$vars" | "$$parms" => self.all_fields(format, span),
                    _ => self.field(format, name.trim_start_matches('$'), span),
                }
            }
            ProbeFacts::KernelFunction { sig, ret } => {
                self.function_target(b, sig.as_ref(), *ret, name, chain, span)
            }
            ProbeFacts::UserFunction {
                ret,
                params: Some(params),
            } => self.user_param(params, *ret, name, chain, span),
            ProbeFacts::UserFunction { ret, params: None } => {
                self.register_target(Registers::Function { ret: *ret }, name, chain, span)
            }
            ProbeFacts::Mark {
                provider,
                name: mark,
                args,
            } => match name {
                "$$name" => self.text(mark.clone(), span),
                "$$provider" => self.text(provider.clone(), span),
                "$$parms" | "$$vars" => {
                    let values = (1..=*args)
                        .map(|i| (format!("arg{i}"), ContextValue::MarkArg(i)))
                        .collect();
                    self.hex_listing(values, span)
                }
                _ => self.register_target(Registers::Mark { args: *args }, name, chain, span),
            },
            ProbeFacts::None => self.no_target(
                span,
                format!("target variable '{name}' is not available in this probe"),
                "only probes on kernel or process events have target variables",
            ),
        }
    }

    /// `$param`, `$return`, `$$parms`, `$$return` of a kernel function, typed by BTF.
    fn function_target(
        &mut self,
        b: &mut Body<'_>,
        sig: Option<&FuncSig>,
        ret: bool,
        name: &str,
        chain: &'a TargetChain,
        span: Span,
    ) -> hir::Expr {
        let Some(sig) = sig else {
            return self.no_target(
                span,
                format!("'{name}' is unknown: the kernel's BTF has no prototype for this function"),
                "read arguments by position with the register helpers instead",
            );
        };
        let Ok(types) = self.kernel.kernel_types() else {
            return self.no_target(span, format!("'{name}' needs the kernel's BTF"), "");
        };
        match name {
            "$$parms" | "$$vars" => {
                let values = sig
                    .params
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, t))| scalar_type(types, *t).is_some())
                    .map(|(i, (n, _))| (n.clone(), ContextValue::FunctionArg(i)))
                    .collect();
                return self.hex_listing(values, span);
            }
            "$$return" if ret => {
                return self.hex_listing(vec![("return".into(), ContextValue::ReturnValue)], span);
            }
            _ => {}
        }
        let bare = name.trim_start_matches('$');
        let (value, ty) = if bare == "return" && ret {
            (ContextValue::ReturnValue, sig.ret)
        } else if bare == "return" {
            return self.no_target(
                span,
                "$return is only available in .return probes".into(),
                "probe kernel.function(\"NAME\").return to see the return value",
            );
        } else if let Some(i) = sig.params.iter().position(|(n, _)| n == bare) {
            (ContextValue::FunctionArg(i), sig.params[i].1)
        } else {
            let names: Vec<&str> = sig.params.iter().map(|(n, _)| n.as_str()).collect();
            let similar = suggest::similar(bare, names.iter().copied());
            let note = suggest::note(&similar)
                .unwrap_or_else(|| format!("its parameters: ${}", names.join(", $")));
            return self.no_target(
                span,
                format!("this function has no parameter '{bare}'"),
                &note,
            );
        };
        if scalar_type(types, ty).is_none() && chain.members.is_empty() {
            return self.no_target(
                span,
                format!(
                    "'{name}' is a {} passed by value, which rstap cannot read",
                    types.spell(ty)
                ),
                "",
            );
        }
        let mut start = self.context(value, Type::Long, span);
        if chain.members.is_empty() {
            start = self.narrow(types, ty, start, span);
        }
        self.member_chain(b, types, start, ty, chain, name)
    }

    /// A register holding a C integer narrower than 64 bits: only its low
    /// bytes are the value (the upper ones are whatever the caller left), so
    /// keep those, sign-extended for a signed type, as stap does.
    fn narrow(
        &mut self,
        types: &crate::ctype::TypeGraph,
        ty: crate::ctype::TypeId,
        value: hir::Expr,
        span: Span,
    ) -> hir::Expr {
        let crate::ctype::CType::Int { size, signed, .. } = types.get(types.strip(ty)) else {
            return value;
        };
        let (size, signed) = (*size, *signed);
        self.narrow_int(size, signed, value, span)
    }

    /// The low `size` bytes of a register, sign-extended when `signed`.
    fn narrow_int(&mut self, size: u32, signed: bool, value: hir::Expr, span: Span) -> hir::Expr {
        let bits = 8 * i64::from(size);
        if bits >= 64 || bits == 0 {
            return value;
        }
        if signed {
            let shift = self.lit_long(64 - bits, span);
            let up = self.binary_long(hir::BinOp::Shl, value, shift, span);
            let shift = self.lit_long(64 - bits, span);
            self.binary_long(hir::BinOp::Shr, up, shift, span)
        } else {
            let mask = self.lit_long((1i64 << bits) - 1, span);
            self.binary_long(hir::BinOp::BitAnd, value, mask, span)
        }
    }

    /// `$name`, `$$parms` of a user function whose binary has DWARF: the
    /// parameter's register at the entry, narrowed to its type; in a
    /// `.return` probe the value saved at the entry, as stap gives it.
    /// `$argN` and `$return` work as without DWARF.
    fn user_param(
        &mut self,
        params: &[crate::dwarf::Param],
        ret: bool,
        name: &str,
        chain: &TargetChain,
        span: Span,
    ) -> hir::Expr {
        use crate::dwarf::ParamType;
        let bare = name.trim_start_matches('$');
        if name == "$$parms" || name == "$$vars" {
            let values = params
                .iter()
                .enumerate()
                .take(6)
                .filter(|(_, p)| !matches!(p.ty, ParamType::Other(_)))
                .map(|(i, p)| (p.name.clone(), ContextValue::FunctionArg(i)))
                .collect();
            return self.hex_listing(values, span);
        }
        let Some((i, param)) = params
            .iter()
            .enumerate()
            .find(|(_, p)| !p.name.is_empty() && p.name == bare)
        else {
            return self.register_target(Registers::Function { ret }, name, chain, span);
        };
        if !chain.members.is_empty() || chain.addr_of || chain.pretty > 0 {
            return self.no_target(
                span,
                format!("member access on '{name}' is not supported for user functions yet"),
                "read memory with user_long(), user_int(), user_string() instead",
            );
        }
        if i >= 6 {
            return self.no_target(
                span,
                format!("'{name}' is parameter {} of its function", i + 1),
                "rstap reads the six parameters passed in registers",
            );
        }
        let mut value = self.context(ContextValue::FunctionArg(i), Type::Long, span);
        match param.ty {
            ParamType::Int { size, signed } => {
                value = self.narrow_int(u32::from(size), signed, value, span);
            }
            ParamType::Pointer { .. } => {}
            ParamType::Other(kind) => {
                return self.no_target(
                    span,
                    format!("'{name}' is a {kind} passed by value, which rstap cannot read"),
                    "",
                );
            }
        }
        if !ret {
            return value;
        }
        let v = super::var_of(&value);
        self.like(ExprKind::Entry(Box::new(value)), v, span)
    }

    /// `$argN` (and `$return`) read from registers: user functions and marks.
    fn register_target(
        &mut self,
        regs: Registers,
        name: &str,
        chain: &TargetChain,
        span: Span,
    ) -> hir::Expr {
        if !chain.members.is_empty() || chain.addr_of || chain.pretty > 0 {
            return self.no_target(
                span,
                format!(
                    "member access on '{name}' needs type information this probe does not have"
                ),
                "read memory with user_long(), user_int(), user_string() instead",
            );
        }
        let bare = name.trim_start_matches('$');
        let (limit, ret) = match regs {
            // The x86-64 calling convention passes six arguments in registers.
            Registers::Function { ret } => (6, ret),
            Registers::Mark { args } => (args, false),
        };
        if bare == "return" && ret {
            return self.context(ContextValue::ReturnValue, Type::Long, span);
        }
        match bare
            .strip_prefix("arg")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if (1..=limit).contains(&n) => {
                let value = match regs {
                    Registers::Function { .. } => ContextValue::FunctionArg(n - 1),
                    Registers::Mark { .. } => ContextValue::MarkArg(n),
                };
                self.context(value, Type::Long, span)
            }
            _ => {
                let and_return = if ret { " and $return" } else { "" };
                self.no_target(
                    span,
                    format!("'{name}' is not available in this probe"),
                    &format!("without DWARF this probe offers $arg1 to $arg{limit}{and_return}"),
                )
            }
        }
    }

    fn context(&mut self, value: ContextValue, ty: Type, span: Span) -> hir::Expr {
        let (id, var) = self.expr_var();
        self.require(var, ty, span);
        hir::Expr {
            kind: ExprKind::Context(value),
            ty: Type::Unknown,
            id,
            span,
        }
    }

    /// `name=0x.. name=0x..` of context values, as `$$parms` prints them.
    fn hex_listing(&mut self, values: Vec<(String, ContextValue)>, span: Span) -> hir::Expr {
        let format = values
            .iter()
            .map(|(n, _)| format!("{n}=%#x"))
            .collect::<Vec<_>>()
            .join(" ");
        let args = values
            .into_iter()
            .map(|(_, v)| self.context(v, Type::Long, span))
            .collect();
        let (id, var) = self.expr_var();
        self.require(var, Type::String, span);
        hir::Expr {
            kind: ExprKind::Print {
                kind: PrintKind::Sprintf,
                format: Some(format),
                args,
            },
            ty: Type::Unknown,
            id,
            span,
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
