//! C values seen through the kernel's BTF types: `$file->f_path->dentry`,
//! `$task->comm`, `$buf[3]`, `&$p->field`, `@cast(p, "task_struct")->pid`. A chain
//! becomes address arithmetic and sized loads ([`ExprKind::Load`]): integers,
//! enums and pointers read as longs, `char[N]` reads as a string, bitfields are
//! shifted and masked.

use super::Checker;
use super::body::Body;
use super::code::Code;
use super::types::Var;
use super::var_of;
use crate::ctype::{CType, TypeGraph, TypeId};
use crate::hir::{self, ExprKind, Type};
use rstap_grammar::ast::{BinOp, Member, TargetChain};
use rstap_grammar::{Diag, Span};

/// Where the chain is: a value of a C type, or the address of an object of one.
enum At {
    Value(hir::Expr, TypeId),
    Object {
        addr: hir::Expr,
        ty: TypeId,
        /// `(shift, width)` of a bitfield.
        bits: Option<(u32, u32)>,
    },
}

impl<'a> Checker<'a> {
    /// Applies `chain` to `value`, a C value of type `ty` in `types`. `what` names
    /// the start for messages (`$file`).
    pub(super) fn member_chain(
        &mut self,
        b: &mut Body<'_>,
        types: &TypeGraph,
        value: hir::Expr,
        ty: TypeId,
        chain: &'a TargetChain,
        what: &str,
    ) -> hir::Expr {
        self.walk_chain(b, types, At::Value(value, ty), chain, what)
    }

    /// `@cast(addr, "type"[, "module"])` and its member chain: `addr` points to a
    /// kernel object of the named type.
    pub(super) fn cast(
        &mut self,
        b: &mut Body<'_>,
        addr: hir::Expr,
        ty: &str,
        module: Option<&str>,
        chain: &'a TargetChain,
        span: Span,
    ) -> hir::Expr {
        let kernel_module = module.is_none_or(|m| {
            m.split(':').any(|part| {
                part.split('<')
                    .next()
                    .is_some_and(|k| k.is_empty() || k == "kernel")
            })
        });
        if !kernel_module {
            return self.member_error(
                span,
                format!("@cast to a type of \"{}\" needs its DWARF; rstap knows only the kernel's BTF types", module.unwrap_or("")),
                "cast to a kernel type: @cast(p, \"task_struct\")",
            );
        }
        let Ok(types) = self.kernel.kernel_types() else {
            return self.member_error(span, "@cast needs the kernel's BTF".into(), "");
        };
        let Some(target) = types.struct_named(ty).or_else(|| types.typedef_named(ty)) else {
            return self.member_error(
                span,
                format!("the kernel's BTF has no type named '{ty}'"),
                "name a struct, union or typedef of the kernel: \"task_struct\", \"struct sk_buff\"",
            );
        };
        if chain.members.is_empty() && !chain.addr_of {
            return addr;
        }
        let addr = hir::Expr { span, ..addr };
        let at = At::Object {
            addr,
            ty: target,
            bits: None,
        };
        self.walk_chain(b, types, at, chain, &format!("@cast(..., \"{ty}\")"))
    }

    fn walk_chain(
        &mut self,
        b: &mut Body<'_>,
        types: &TypeGraph,
        mut at: At,
        chain: &'a TargetChain,
        what: &str,
    ) -> hir::Expr {
        let span = match &at {
            At::Value(v, _) => v.span,
            At::Object { addr, .. } => addr.span,
        };
        if chain.pretty > 0 {
            return self.member_error(
                span,
                format!("pretty-printing {what}$ is not supported yet"),
                "print the members you need with printf",
            );
        }
        let mut spelled = what.to_string();
        for m in &chain.members {
            let next = match m {
                Member::Field(name) => {
                    spelled.push_str("->");
                    spelled.push_str(name);
                    self.field_step(types, at, name, &spelled, span)
                }
                Member::Index(index) => {
                    spelled.push_str("[]");
                    let i = self.value(b, index);
                    self.require(var_of(&i), Type::Long, index.span);
                    self.index_step(types, at, i, &spelled, span)
                }
            };
            at = match next {
                Ok(at) => at,
                Err(e) => return e,
            };
        }
        if chain.addr_of {
            return match at {
                At::Object {
                    addr, bits: None, ..
                } => addr,
                At::Object { .. } => self.member_error(
                    span,
                    format!("cannot take the address of the bitfield {spelled}"),
                    "",
                ),
                At::Value(..) => self.member_error(
                    span,
                    format!("{spelled} is a value, not an object with an address"),
                    "take the address of a member: &$p->field",
                ),
            };
        }
        match at {
            At::Value(v, _) => v,
            At::Object { addr, ty, bits } => self.read_object(types, addr, ty, bits, &spelled),
        }
    }

    fn field_step(
        &mut self,
        types: &TypeGraph,
        at: At,
        name: &str,
        spelled: &str,
        span: Span,
    ) -> Result<At, hir::Expr> {
        // Through a pointer, load it first; an embedded struct is already an object.
        let (base, container) = match at {
            At::Value(v, ty) => {
                match types.get(types.strip(ty)) {
                    CType::Ptr(inner) => (v, *inner),
                    _ => {
                        return Err(self.member_error(
                        span,
                        format!("{spelled}: the value before `->{name}` is not a pointer to a struct"),
                        &format!("its type is {}", types.spell(ty)),
                    ));
                    }
                }
            }
            At::Object { addr, ty, .. } => match types.get(types.strip(ty)) {
                CType::Ptr(inner) => (self.load(addr, 8, false, span), *inner),
                _ => (addr, ty),
            },
        };
        let Some(field) = types.field(container, name) else {
            return Err(self.member_error(
                span,
                format!("{} has no member '{name}'", types.spell(container)),
                "member names come from the kernel's BTF",
            ));
        };
        let addr = self.offset(base, i64::from(field.byte_offset), span);
        let bits = (field.bitfield_size > 0).then_some((field.bit_shift, field.bitfield_size));
        Ok(At::Object {
            addr,
            ty: field.ty,
            bits,
        })
    }

    fn index_step(
        &mut self,
        types: &TypeGraph,
        at: At,
        index: hir::Expr,
        spelled: &str,
        span: Span,
    ) -> Result<At, hir::Expr> {
        let (base, elem) = match at {
            At::Value(v, ty) => match types.get(types.strip(ty)) {
                CType::Ptr(e) => (v, *e),
                _ => return Err(self.not_indexable(types, ty, spelled, span)),
            },
            At::Object { addr, ty, .. } => match types.get(types.strip(ty)) {
                CType::Array { elem, .. } => (addr, *elem),
                CType::Ptr(e) => (self.load(addr, 8, false, span), *e),
                _ => return Err(self.not_indexable(types, ty, spelled, span)),
            },
        };
        let size = types.size_of(elem).unwrap_or(0);
        if size == 0 {
            return Err(self.member_error(
                span,
                format!(
                    "{spelled}: elements of type {} have no size",
                    types.spell(elem)
                ),
                "",
            ));
        }
        let size = self.lit_long(i64::from(size), span);
        let scaled = self.binary_long(BinOp::Mul, index, size, span);
        let addr = self.binary_long(BinOp::Add, base, scaled, span);
        Ok(At::Object {
            addr,
            ty: elem,
            bits: None,
        })
    }

    fn not_indexable(
        &mut self,
        types: &TypeGraph,
        ty: TypeId,
        spelled: &str,
        span: Span,
    ) -> hir::Expr {
        self.member_error(
            span,
            format!(
                "{spelled}: a value of type {} cannot be indexed",
                types.spell(ty)
            ),
            "only pointers and arrays can be indexed",
        )
    }

    /// The value of the object at `addr`.
    fn read_object(
        &mut self,
        types: &TypeGraph,
        addr: hir::Expr,
        ty: TypeId,
        bits: Option<(u32, u32)>,
        spelled: &str,
    ) -> hir::Expr {
        let span = addr.span;
        let stripped = types.strip(ty);
        match types.get(stripped) {
            CType::Int { size, signed, .. } | CType::Enum { size, signed, .. } => {
                let (size, signed) = (*size, *signed);
                let width = u8::try_from(size)
                    .ok()
                    .filter(|w| matches!(w, 1 | 2 | 4 | 8));
                let Some(width) = width else {
                    return self.member_error(
                        span,
                        format!("{spelled} is a {size}-byte integer, which cannot be read"),
                        "",
                    );
                };
                let value = self.load(addr, width, signed && bits.is_none(), span);
                match bits {
                    None => value,
                    Some((shift, width)) => self.bitfield(value, shift, width, span),
                }
            }
            CType::Ptr(_) => self.load(addr, 8, false, span),
            CType::Array { elem, len } if is_char(types, *elem) => {
                let len = *len;
                let (id, var) = self.expr_var();
                self.require(var, Type::String, span);
                hir::Expr {
                    kind: ExprKind::LoadString {
                        addr: Box::new(addr),
                        len,
                        user: false,
                    },
                    ty: Type::Unknown,
                    id,
                    span,
                }
            }
            _ => self.member_error(
                span,
                format!(
                    "{spelled} is a {}, not a number or a string",
                    types.spell(ty)
                ),
                "access one of its members, or take its address with &",
            ),
        }
    }

    fn bitfield(&mut self, value: hir::Expr, shift: u32, width: u32, span: Span) -> hir::Expr {
        let shift = self.lit_long(i64::from(shift), span);
        let shifted = self.binary_long(BinOp::Shr, value, shift, span);
        let mask = if width >= 64 { -1 } else { (1i64 << width) - 1 };
        let mask = self.lit_long(mask, span);
        self.binary_long(BinOp::BitAnd, shifted, mask, span)
    }

    pub(super) fn load(
        &mut self,
        addr: hir::Expr,
        size: u8,
        signed: bool,
        span: Span,
    ) -> hir::Expr {
        let (id, var) = self.expr_var();
        self.require(var, Type::Long, span);
        hir::Expr {
            kind: ExprKind::Load {
                addr: Box::new(addr),
                size,
                signed,
                user: false,
            },
            ty: Type::Unknown,
            id,
            span,
        }
    }

    fn offset(&mut self, base: hir::Expr, by: i64, span: Span) -> hir::Expr {
        if by == 0 {
            return base;
        }
        let n = self.lit_long(by, span);
        self.binary_long(BinOp::Add, base, n, span)
    }

    pub(super) fn lit_long(&mut self, n: i64, span: Span) -> hir::Expr {
        let (id, var) = self.expr_var();
        self.require(var, Type::Long, span);
        hir::Expr {
            kind: ExprKind::Num(n),
            ty: Type::Unknown,
            id,
            span,
        }
    }

    pub(super) fn binary_long(
        &mut self,
        op: BinOp,
        left: hir::Expr,
        right: hir::Expr,
        span: Span,
    ) -> hir::Expr {
        let (id, var) = self.expr_var();
        self.require(var, Type::Long, span);
        hir::Expr {
            kind: ExprKind::Binary {
                op,
                left: Box::new(left),
                right: Box::new(right),
            },
            ty: Type::Unknown,
            id,
            span,
        }
    }

    pub(super) fn member_error(&mut self, span: Span, msg: String, note: &str) -> hir::Expr {
        let mut d = Diag::new(Code::E0407, span, msg).with_label("in this target expression");
        if !note.is_empty() {
            d = d.with_note(note.to_string());
        }
        self.error(d);
        let (id, _): (u32, Var) = self.expr_var();
        hir::Expr {
            kind: ExprKind::Num(0),
            ty: Type::Unknown,
            id,
            span,
        }
    }
}

/// Whether `id` is a one-byte integer (`char`, `u8`), through typedefs.
fn is_char(types: &TypeGraph, id: TypeId) -> bool {
    matches!(types.get(types.strip(id)), CType::Int { size: 1, .. })
}

/// The script type of a C value of type `ty` (a function argument, `$return`):
/// numbers and pointers are longs; anything else has no script value.
pub(super) fn scalar_type(types: &TypeGraph, ty: TypeId) -> Option<Type> {
    match types.get(types.strip(ty)) {
        CType::Int { .. } | CType::Enum { .. } | CType::Ptr(_) => Some(Type::Long),
        _ => None,
    }
}
