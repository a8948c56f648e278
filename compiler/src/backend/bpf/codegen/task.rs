//! Values of the probed event and task: tracepoint fields and the task/time built-ins.

use super::{CodegenError, ErrorMsg, Gen};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, Size, helper};
use crate::builtins::Builtin;
use crate::hir::ContextValue;
use crate::mir::Reg;
use rstap_grammar::Span;

/// Where x86-64's `struct pt_regs` keeps the six argument registers (rdi,
/// rsi, rdx, rcx, r8, r9), and rax: the return value.
const ARG_REGS: [i16; 6] = [112, 104, 96, 88, 72, 64];
const PT_REGS_AX: i16 = 80;
const PT_REGS_SP: i16 = 152;
const PT_REGS_CS: i16 = 136;

/// The helper that reads `value` in an fentry/fexit trampoline, if it is an
/// argument or the return value.
fn trampoline_read(value: &ContextValue) -> Option<i32> {
    match value {
        ContextValue::FunctionArg(_) => Some(helper::GET_FUNC_ARG),
        ContextValue::ReturnValue => Some(helper::GET_FUNC_RET),
        _ => None,
    }
}

impl Gen<'_> {
    pub(super) fn context(&mut self, dst: Reg, value: &ContextValue) -> Result<(), CodegenError> {
        if self.trampoline
            && let Some(call) = trampoline_read(value)
        {
            // The helper writes the value to the stack: a plain number to
            // the verifier, even when it is a pointer.
            let tmp = self.bottom + 24;
            self.emit(Insn::mov_reg(1, 6));
            let mut out = 2;
            if let ContextValue::FunctionArg(n) = value {
                self.emit(Insn::mov_imm(2, i32::try_from(*n).unwrap_or(0)));
                out = 3;
            }
            self.emit(Insn::mov_reg(out, 10));
            self.emit(Insn::alu_imm(Alu::Add, out, i32::from(tmp)));
            self.emit(Insn::call(call));
            self.emit(Insn::load(Size::DW, 1, 10, tmp));
            self.store(dst, 1);
            return Ok(());
        }
        if let ContextValue::MarkArg(n) = value {
            return self.mark_arg(dst, *n);
        }
        if let ContextValue::CallFrame { entry } = value {
            if self.trampoline {
                // The fentry and fexit programs of one call run in the same
                // trampoline frame, where their context lives; a nested
                // call's trampoline has its own. (A pointer as a number:
                // the loader is privileged.)
                self.store(dst, 6);
            } else {
                self.emit(Insn::load(Size::DW, 1, 6, PT_REGS_SP));
                if *entry {
                    // The return pops the return address the entry sees.
                    self.emit(Insn::alu_imm(Alu::Add, 1, 8));
                }
                self.store(dst, 1);
            }
            return Ok(());
        }
        let register = match value {
            ContextValue::FunctionArg(n) => ARG_REGS.get(*n).copied(),
            ContextValue::ReturnValue => Some(PT_REGS_AX),
            _ => None,
        };
        if let Some(off) = register {
            // kprobes and uprobes see the task's `struct pt_regs`.
            self.emit(Insn::load(Size::DW, 1, 6, off));
            self.store(dst, 1);
            return Ok(());
        }
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
        args: &[Reg],
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
            Builtin::UserMode => {
                // Only a sampling event gets here (see `fold_probe_names`):
                // its context starts with the interrupted `struct pt_regs`,
                // whose code segment's privilege level is 3 in user mode.
                self.emit(Insn::load(Size::DW, 0, 6, PT_REGS_CS));
                self.emit(Insn::alu_imm(Alu::And, 0, 3));
                self.emit(Insn::mov_imm(1, 1));
                self.emit(Insn::jump_imm(Jmp::Jeq, 0, 3, 1));
                self.emit(Insn::mov_imm(1, 0));
                self.emit(Insn::mov_reg(0, 1));
            }
            Builtin::TaskCurrent => self.emit(Insn::call(helper::GET_CURRENT_TASK)),
            Builtin::StpPid => self.emit(Insn::mov_imm(0, self.shared.target.tracer_pid)),
            Builtin::Target => {
                // The runtime writes the pid into the `target` map.
                self.target_slot(0);
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
                self.emit2(Insn::ld_imm64(1, self.shared.target.wall_offset_ns as u64));
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
            Builtin::Ppid => {
                let Some(t) = self.shared.task else {
                    return self.unsupported("ppid() without the kernel's BTF", Some(at));
                };
                // current->real_parent->tgid, through probe_read_kernel.
                let tmp = self.slot_of(dst);
                self.emit(Insn::call(helper::GET_CURRENT_TASK));
                self.read_kernel_word(tmp, 0, t.real_parent, 8);
                self.emit(Insn::load(Size::DW, 3, 10, tmp));
                self.read_kernel_word(tmp, 3, t.tgid, 4);
                self.emit(Insn::load(Size::DW, 0, 10, tmp));
            }
            Builtin::Exit => {
                self.exit_record();
                return Ok(());
            }
            Builtin::Error => {
                self.script_error(args[0], at);
                return Ok(());
            }
            Builtin::Warn => {
                self.warn(args[0], at);
                return Ok(());
            }
            Builtin::System => {
                self.system(args[0], at);
                return Ok(());
            }
            Builtin::Pexecname => {
                let (Some(t), Some(d)) = (self.shared.task, dst) else {
                    return self.unsupported("pexecname() without the kernel's BTF", Some(at));
                };
                let tmp = self.bottom + 24;
                self.emit(Insn::call(helper::GET_CURRENT_TASK));
                self.read_kernel_word(tmp, 0, t.real_parent, 8);
                self.zero_from(d, 0);
                self.ptr(1, self.region_of(d));
                self.emit(Insn::mov_imm(2, 16));
                self.emit(Insn::load(Size::DW, 3, 10, tmp));
                self.emit(Insn::alu_imm(
                    Alu::Add,
                    3,
                    i32::try_from(t.comm).unwrap_or(0),
                ));
                self.emit(Insn::call(helper::PROBE_READ_KERNEL));
                return Ok(());
            }
            Builtin::CmdlineArgs | Builtin::EnvVar | Builtin::StrspnAt | Builtin::StrcspnAt
                if !self.shared.bpf_loop =>
            {
                let what = match func {
                    Builtin::StrspnAt | Builtin::StrcspnAt => "tokenize()".to_string(),
                    f => format!("{}()", f.name()),
                };
                return Err(CodegenError::new(
                    format!(
                        "{what} needs, in a kernel-context probe, the bpf_loop helper of Linux 5.17 or later, which this kernel lacks; call it in a begin, end or timer probe"
                    ),
                    Some(at),
                ));
            }
            Builtin::CmdlineArgs | Builtin::EnvVar => {
                return self.process_area(dst, func, args, at);
            }
            Builtin::StrspnAt | Builtin::StrcspnAt => {
                if let Some(d) = dst {
                    self.span_at(d, args, func == Builtin::StrspnAt);
                }
                return Ok(());
            }
            _ if memory_read(func).is_some() => {
                let (size, signed, user) = memory_read(func).unwrap_or((8, true, false));
                if let Some(d) = dst {
                    self.read_memory(d, args[0], size, signed, user, at)?;
                }
                return Ok(());
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

impl Gen<'_> {
    /// `dst` = the `size`-byte number at the address in register `addr`, in
    /// user or kernel memory; a fault is stap's read fault.
    pub(super) fn read_memory(
        &mut self,
        dst: Reg,
        addr: Reg,
        size: u8,
        signed: bool,
        user: bool,
        at: Span,
    ) -> Result<(), CodegenError> {
        let Some(width) = Size::of(size) else {
            return self.unsupported(&format!("reading {size} bytes of memory"), Some(at));
        };
        let off = self.slot[dst.index()];
        self.emit(Insn::store_imm(Size::DW, 10, off, 0));
        self.emit(Insn::mov_reg(1, 10));
        self.emit(Insn::alu_imm(Alu::Add, 1, i32::from(off)));
        self.emit(Insn::mov_imm(2, i32::from(size)));
        self.load(3, addr);
        self.emit(Insn::call(if user {
            helper::PROBE_READ_USER
        } else {
            helper::PROBE_READ_KERNEL
        }));
        let ok = self.forward(Insn::jump_imm(Jmp::Jsge, 0, 0, 0));
        self.load(1, addr);
        self.emit(Insn::mov_reg(2, 0));
        self.raise_fault(
            ErrorMsg::Fault {
                user,
                string: false,
            },
            at,
        );
        self.land(ok);
        if signed && width != Size::DW {
            let shift = 64 - 8 * i32::from(size);
            self.load(1, dst);
            self.emit(Insn::alu_imm(Alu::Lsh, 1, shift));
            self.emit(Insn::alu_imm(Alu::Arsh, 1, shift));
            self.store(dst, 1);
        }
        Ok(())
    }
}

/// Built-ins that read a number from memory: (bytes, signed, user memory).
fn memory_read(func: Builtin) -> Option<(u8, bool, bool)> {
    Some(match func {
        Builtin::UserLong => (8, true, true),
        Builtin::UserInt => (4, true, true),
        Builtin::UserShort => (2, true, true),
        Builtin::UserChar => (1, true, true),
        Builtin::KernelLong | Builtin::KernelPointer => (8, true, false),
        Builtin::KernelInt => (4, true, false),
        Builtin::KernelShort => (2, true, false),
        Builtin::KernelChar => (1, true, false),
        _ => return None,
    })
}

/// Byte offsets in `struct task_struct`, from the kernel's BTF.
#[derive(Clone, Copy, Debug)]
pub(super) struct TaskOffsets {
    real_parent: u32,
    tgid: u32,
    comm: u32,
}

/// The offsets, when a kernel-context handler calls ppid() or pexecname().
pub(super) fn offsets_if_needed(
    prog: &crate::mir::Program,
    kernel: &dyn crate::kernel::KernelInfo,
) -> Option<TaskOffsets> {
    let needed = prog.kernel_insts().any(|i| {
        matches!(
            i,
            crate::mir::Inst::Builtin {
                func: Builtin::Ppid | Builtin::Pexecname,
                ..
            }
        )
    });
    if !needed {
        return None;
    }
    let types = kernel.kernel_types().ok()?;
    let task = types.struct_named("task_struct")?;
    let at = |name: &str| types.field(task, name).map(|f| f.byte_offset);
    Some(TaskOffsets {
        real_parent: at("real_parent")?,
        tgid: at("tgid")?,
        comm: at("comm")?,
    })
}

impl Gen<'_> {
    /// The stack slot of long register `r`.
    fn slot_of(&self, r: Option<Reg>) -> i16 {
        r.map_or(self.bottom + 24, |r| self.slot[r.index()])
    }

    /// The stack word at `slot` = the `size`-byte kernel value at `base` + `off`
    /// (`base` a register holding an address; 0 on a fault).
    fn read_kernel_word(&mut self, slot: i16, base: u8, off: u32, size: i32) {
        self.emit(Insn::mov_reg(3, base));
        self.emit(Insn::alu_imm(Alu::Add, 3, i32::try_from(off).unwrap_or(0)));
        self.emit(Insn::store_imm(Size::DW, 10, slot, 0));
        self.emit(Insn::mov_reg(1, 10));
        self.emit(Insn::alu_imm(Alu::Add, 1, i32::from(slot)));
        self.emit(Insn::mov_imm(2, size));
        self.emit(Insn::call(helper::PROBE_READ_KERNEL));
    }
}
