//! String registers: stack regions of 8-byte words, NUL-padded.

use super::{CodegenError, Gen};
use crate::backend::bpf::insn::{Alu, Insn, Size, helper};
use crate::backend::bpf::layout::STRING_KEY_BYTES;
use crate::builtins::Builtin;
use crate::hir::ContextValue;
use crate::mir::{Inst, Reg, Ty};

impl Gen<'_> {
    /// Whether `r` is only a key column in `inst` (string keys are supported).
    pub(super) fn is_key(&self, inst: &Inst, r: Reg) -> bool {
        match inst {
            Inst::MapRead { keys, dst, .. } => keys.contains(&r) && *dst != r,
            Inst::MapWrite { keys, src, .. } => keys.contains(&r) && *src != r,
            Inst::AggAdd { keys, value, .. } => keys.contains(&r) && *value != r,
            Inst::MapContains { keys, dst, .. } => keys.contains(&Some(r)) && *dst != r,
            Inst::MapDelete { keys, .. } => keys.contains(&Some(r)),
            _ => false,
        }
    }

    /// The words of string register `r`'s region.
    pub(super) fn words(&self, r: Reg) -> u32 {
        self.caps[r.index()].div_ceil(8).max(STRING_KEY_BYTES / 8)
    }

    /// Zeroes words `from..` of string register `r`'s region.
    pub(super) fn zero_from(&mut self, r: Reg, from: u32) {
        for w in from..self.words(r) {
            let off = self.slot[r.index()] + 8 * i16::try_from(w).unwrap_or(0);
            self.emit(Insn::store_imm(Size::DW, 10, off, 0));
        }
    }

    /// Strings this backend can make: literals, execname(), `char[N]` fields,
    /// and copies of them. `true` when `inst` was one of those.
    pub(super) fn string_inst(&mut self, inst: &Inst) -> Result<bool, CodegenError> {
        match inst {
            Inst::Str { dst, bytes } if self.caps[dst.index()] > 0 => {
                let mut padded = bytes.clone();
                padded.resize(8 * self.words(*dst) as usize, 0);
                for (w, chunk) in padded.chunks(8).enumerate() {
                    let off = self.slot[dst.index()] + 8 * i16::try_from(w).unwrap_or(0);
                    let lo = i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                    let hi = i32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
                    self.emit(Insn::store_imm(Size::W, 10, off, lo));
                    self.emit(Insn::store_imm(Size::W, 10, off + 4, hi));
                }
                Ok(true)
            }
            Inst::Move { dst, src }
                if self.body.ty(*dst) == Ty::Str && self.caps[src.index()] > 0 =>
            {
                let n = self.words(*src);
                for w in 0..n {
                    let d = 8 * i16::try_from(w).unwrap_or(0);
                    self.emit(Insn::load(Size::DW, 1, 10, self.slot[src.index()] + d));
                    self.emit(Insn::store(Size::DW, 10, self.slot[dst.index()] + d, 1));
                }
                self.zero_from(*dst, n);
                Ok(true)
            }
            Inst::Builtin {
                dst: Some(dst),
                func: Builtin::Execname,
                ..
            } => {
                self.zero_from(*dst, 2);
                self.emit(Insn::mov_reg(1, 10));
                self.emit(Insn::alu_imm(
                    Alu::Add,
                    1,
                    i32::from(self.slot[dst.index()]),
                ));
                self.emit(Insn::mov_imm(2, 16));
                self.emit(Insn::call(helper::GET_CURRENT_COMM));
                Ok(true)
            }
            Inst::Context {
                dst,
                value: ContextValue::TracepointField(i),
            } if self.body.ty(*dst) == Ty::Str && self.caps[dst.index()] > 0 => {
                let Some(field) = self.format.and_then(|f| f.fields.get(*i)) else {
                    return Ok(false);
                };
                let (size, offset) = (field.size, field.offset);
                self.zero_from(*dst, 0);
                self.emit(Insn::mov_reg(1, 10));
                self.emit(Insn::alu_imm(
                    Alu::Add,
                    1,
                    i32::from(self.slot[dst.index()]),
                ));
                self.emit(Insn::mov_imm(2, i32::try_from(size).unwrap_or(0)));
                self.emit(Insn::mov_reg(3, 6));
                self.emit(Insn::alu_imm(
                    Alu::Add,
                    3,
                    i32::try_from(offset).unwrap_or(0),
                ));
                self.emit(Insn::call(helper::PROBE_READ_KERNEL));
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
