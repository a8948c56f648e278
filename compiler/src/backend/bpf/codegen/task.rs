//! Values of the probed event and task: tracepoint fields and the task/time built-ins.

use super::{CodegenError, Gen, STACK, output_id};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, Size, helper};
use crate::builtins::Builtin;
use crate::hir::ContextValue;
use crate::mir::Reg;
use rstap_grammar::Span;

impl Gen<'_> {
    pub(super) fn context(&mut self, dst: Reg, value: &ContextValue) -> Result<(), CodegenError> {
        let ContextValue::TracepointField(i) = value else {
            return self.unsupported("this target variable", None);
        };
        let Some(field) = self.format.and_then(|f| f.fields.get(*i)) else {
            return self.unsupported("a target variable of this probe", None);
        };
        let size = u8::try_from(field.size).ok().and_then(Size::of);
        let Some(size) = size else {
            return self.unsupported(
                &format!("the {}-byte field ${}", field.size, field.name),
                None,
            );
        };
        let off = i16::try_from(field.offset).unwrap_or(i16::MAX);
        self.emit(Insn::load(size, 1, 6, off));
        if field.signed && size != Size::DW {
            let shift = 64 - 8 * i32::from(size.bytes());
            self.emit(Insn::alu_imm(Alu::Lsh, 1, shift));
            self.emit(Insn::alu_imm(Alu::Arsh, 1, shift));
        }
        self.store(dst, 1);
        Ok(())
    }

    pub(super) fn builtin(
        &mut self,
        dst: Option<Reg>,
        func: Builtin,
        at: Span,
    ) -> Result<(), CodegenError> {
        match func {
            Builtin::Pid => {
                self.emit(Insn::call(helper::GET_CURRENT_PID_TGID));
                self.emit(Insn::alu_imm(Alu::Rsh, 0, 32));
            }
            Builtin::Tid => {
                self.emit(Insn::call(helper::GET_CURRENT_PID_TGID));
                self.emit(Insn::alu_imm(Alu::Lsh, 0, 32));
                self.emit(Insn::alu_imm(Alu::Rsh, 0, 32));
            }
            Builtin::Uid | Builtin::Euid => {
                self.emit(Insn::call(helper::GET_CURRENT_UID_GID));
                self.emit(Insn::alu_imm(Alu::Lsh, 0, 32));
                self.emit(Insn::alu_imm(Alu::Rsh, 0, 32));
            }
            Builtin::Gid | Builtin::Egid => {
                self.emit(Insn::call(helper::GET_CURRENT_UID_GID));
                self.emit(Insn::alu_imm(Alu::Rsh, 0, 32));
            }
            Builtin::Cpu => self.emit(Insn::call(helper::GET_SMP_PROCESSOR_ID)),
            Builtin::Target => {
                // The runtime writes the pid into the `target` map.
                let key = -i16::try_from(STACK).unwrap_or(512) + 32;
                self.emit(Insn::store_imm(Size::W, 10, key, 0));
                self.emit2(Insn::ld_map(1, output_id(self.prog.globals.len()) + 2));
                self.emit(Insn::mov_reg(2, 10));
                self.emit(Insn::alu_imm(Alu::Add, 2, i32::from(key)));
                self.emit(Insn::call(helper::MAP_LOOKUP_ELEM));
                self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 1));
                self.emit(Insn::load(Size::DW, 0, 0, 0));
            }
            Builtin::KtimeGetNs | Builtin::LocalClockNs | Builtin::CpuClockNs => {
                self.emit(Insn::call(helper::KTIME_GET_NS));
            }
            Builtin::GettimeofdayNs
            | Builtin::GettimeofdayUs
            | Builtin::GettimeofdayMs
            | Builtin::GettimeofdayS => {
                self.emit(Insn::call(helper::KTIME_GET_NS));
                self.emit2(Insn::ld_imm64(1, self.wall_offset_ns as u64));
                self.emit(Insn::alu_reg(Alu::Add, 0, 1));
                let unit = match func {
                    Builtin::GettimeofdayUs => 1_000,
                    Builtin::GettimeofdayMs => 1_000_000,
                    Builtin::GettimeofdayS => 1_000_000_000,
                    _ => 1,
                };
                if unit > 1 {
                    // The time since 1970 is positive: unsigned division is exact.
                    self.emit(Insn::alu_imm(Alu::Div, 0, unit));
                }
            }
            other => {
                return self.unsupported(&format!("the built-in {}()", other.name()), Some(at));
            }
        }
        if let Some(d) = dst {
            self.store(d, 0);
        }
        Ok(())
    }
}
