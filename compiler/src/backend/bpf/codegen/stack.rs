//! Symbols and stacks in kernel context. A handler records addresses, never
//! names: `symname(addr)` keeps the address, `backtrace()` the kernel stack
//! (`bpf_get_stack`, up to MAXBACKTRACE frames); the print record carries
//! them, and the runtime names them from /proc/kallsyms after the event. Such
//! a "deferred" string can therefore only be printed: any other use (a
//! comparison, a map key, a concatenation, sprintf) is refused at compile time.
//! `pp()`, `ppfunc()`, `probefunc()` and `probemod()` are constants of the
//! probe point, folded into string literals (but a sampling probe's
//! `probefunc()`: see `sampled`).

use super::{CodegenError, Gen};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, Size, helper};
use crate::builtins::Builtin;
use crate::hir::PointKind;
use crate::mir::{self, Body, Inst, Reg, Term, Ty};
use rstap_grammar::Span;

/// MAXBACKTRACE: the frames a backtrace records.
pub const MAX_FRAMES: u32 = 20;
/// `bpf_get_stack`'s flag for the user-space stack.
const BPF_F_USER_STACK: i32 = 1 << 8;
/// Frames of a trampoline's kernel stack that are BPF's own (the program,
/// then the trampoline): `bpf_get_stack`'s skip count (its flags' low byte).
const TRAMPOLINE_FRAMES: i32 = 2;
/// Where x86-64's `struct pt_regs` keeps the stack pointer.
const PT_REGS_SP: i16 = 152;

/// A string the kernel cannot compute, and how user space renders it from the
/// bytes of its record column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deferred {
    /// One address (a word): `symname()`, as `vfs_read`.
    Symname,
    /// One address: `symdata()`, as `vfs_read+0x0/0x180 [kernel]`.
    Symdata,
    /// A stack — a word holding its byte count (or a negative error), then
    /// the addresses: `backtrace()`, hex addresses each followed by a space.
    Backtrace,
    /// A stack: `sprint_backtrace()`, a `sym+0xoff [mod]` line per frame.
    SprintBacktrace,
    /// A stack: `print_backtrace()`, a ` 0xADDR : sym+0xoff/0xsize [mod]`
    /// line per frame.
    PrintBacktrace,
    /// The user-space counterparts: the same shapes, named from the ELF
    /// symbols of the objects the process maps. Their columns start with
    /// the process id (a word), then an address or a stack.
    Usymname,
    Usymdata,
    /// `umodname()`: the path of the object mapped at the address.
    Umodname,
    Ubacktrace,
    SprintUbacktrace,
    PrintUbacktrace,
}

impl Deferred {
    /// The deferred string a built-in returns, if it returns one.
    fn of(func: Builtin) -> Option<Deferred> {
        Some(match func {
            Builtin::Symname => Deferred::Symname,
            Builtin::Symdata => Deferred::Symdata,
            Builtin::Backtrace => Deferred::Backtrace,
            Builtin::SprintBacktrace => Deferred::SprintBacktrace,
            Builtin::Usymname => Deferred::Usymname,
            Builtin::Umodname => Deferred::Umodname,
            Builtin::Usymdata => Deferred::Usymdata,
            Builtin::Ubacktrace => Deferred::Ubacktrace,
            Builtin::SprintUbacktrace => Deferred::SprintUbacktrace,
            _ => return None,
        })
    }

    /// The bytes its register (and record column) needs.
    pub(super) fn bytes(func: Builtin) -> Option<u32> {
        Some(Deferred::of(func)?.column())
    }

    /// The bytes of its record column.
    pub fn column(self) -> u32 {
        let words = if self.is_stack() { 1 + MAX_FRAMES } else { 1 };
        8 * (words + u32::from(self.is_user()))
    }

    /// Whether the column holds a stack (else one address).
    pub fn is_stack(self) -> bool {
        !matches!(
            self,
            Deferred::Symname
                | Deferred::Symdata
                | Deferred::Usymname
                | Deferred::Usymdata
                | Deferred::Umodname
        )
    }

    /// Whether it names user-space addresses (its column starts with the pid).
    pub fn is_user(self) -> bool {
        matches!(
            self,
            Deferred::Usymname
                | Deferred::Usymdata
                | Deferred::Umodname
                | Deferred::Ubacktrace
                | Deferred::SprintUbacktrace
                | Deferred::PrintUbacktrace
        )
    }
}

/// Replaces `pp()`, `pn()`, `ppfunc()`, `probefunc()` (and `probemod()` where it is
/// known) in a kernel-context handler, its functions inlined, by the probe's
/// constants.
pub(super) fn fold_probe_names(probe: &mut mir::Probe) {
    let mut body = std::mem::take(&mut probe.body);
    for inst in body.blocks.iter_mut().flat_map(|b| &mut b.insts) {
        if let Some(constant) = folded(probe, inst) {
            *inst = constant;
        }
    }
    probe.body = body;
}

/// Whether [`fold_probe_names`] would change `probe`'s handler.
pub(super) fn folds_names(probe: &mir::Probe) -> bool {
    probe
        .body
        .blocks
        .iter()
        .flat_map(|b| &b.insts)
        .any(|i| fixed(probe, i).is_some())
}

/// The constant `inst` becomes in `probe`'s handler, when it asks for
/// something the probe point decides.
fn folded(probe: &mir::Probe, inst: &Inst) -> Option<Inst> {
    fixed(probe, inst).map(|(dst, value)| match value {
        Fixed::Text(text) => Inst::Str {
            dst,
            bytes: text.as_bytes().to_vec(),
        },
        Fixed::Value(value) => Inst::Const { dst, value },
    })
}

/// What the probe point decides: a name, or a number.
enum Fixed<'p> {
    Text(&'p str),
    Value(i64),
}

/// The register `inst` writes and the value `probe`'s point gives it, when
/// `inst` asks for something the point decides.
fn fixed<'p>(probe: &'p mir::Probe, inst: &Inst) -> Option<(Reg, Fixed<'p>)> {
    let Inst::Builtin {
        dst: Some(dst),
        func,
        ..
    } = inst
    else {
        return None;
    };
    let text = match func {
        Builtin::Pp => probe.pp(),
        Builtin::Pn => probe.pn(),
        Builtin::Ppfunc => probe.ppfunc(),
        // A sampling probe's is the interrupted function: see `sampled`.
        Builtin::Probefunc if !probe.samples() => probe.probefunc(),
        Builtin::Probemod => probe.probemod()?,
        Builtin::UserMode => {
            return user_mode(&probe.kind).map(|user| (*dst, Fixed::Value(i64::from(user))));
        }
        _ => return None,
    };
    Some((*dst, Fixed::Text(text)))
}

/// `user_mode()` where the kind of probe decides it: a uprobe or USDT mark
/// interrupts user code, a tracepoint or kernel function the kernel. A
/// sampling event (timer.profile, perf) may interrupt either: `None`.
fn user_mode(kind: &PointKind) -> Option<bool> {
    match kind {
        PointKind::Uprobe { .. } | PointKind::Usdt { .. } => Some(true),
        PointKind::Profile | PointKind::Perf { .. } => None,
        _ => Some(false),
    }
}

/// Whether `body` is the handler of a uprobe at a function's entry (`body`
/// is borrowed from `prog`'s probes, which are what know their kind).
pub(super) fn at_user_entry(prog: &mir::Program, body: &Body) -> bool {
    prog.probes
        .iter()
        .find(|p| std::ptr::eq(&p.body, body))
        .is_some_and(|p| matches!(p.kind, PointKind::Uprobe { ret: false, .. }))
}

/// The deferred string each register of `body` holds (`None`: an ordinary
/// value), or why the handler uses one where the kernel would need its text.
pub(super) fn deferred_regs(body: &Body) -> Result<Vec<Option<Deferred>>, CodegenError> {
    let mut kinds: Vec<Option<(Deferred, Builtin, Span)>> = vec![None; body.regs.len()];
    let insts = || body.blocks.iter().flat_map(|b| &b.insts);
    loop {
        let mut changed = false;
        for inst in insts() {
            let (dst, kind) = match inst {
                Inst::Builtin {
                    dst: Some(dst),
                    func,
                    at,
                    ..
                } => match Deferred::of(*func) {
                    Some(d) => (*dst, (d, *func, *at)),
                    None => continue,
                },
                Inst::Move { dst, src } => match kinds[src.index()] {
                    Some(k) => (*dst, k),
                    None => continue,
                },
                _ => continue,
            };
            if kinds[dst.index()].is_none() {
                kinds[dst.index()] = Some(kind);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let refuse = |(_, func, at): (Deferred, Builtin, Span)| {
        Err(CodegenError::new(
            format!(
                "in a kernel-context probe, {}() can only be printed: the kernel records addresses and rstap names them after the event",
                func.name()
            ),
            Some(at),
        ))
    };
    for inst in insts() {
        let def = inst.def();
        // A register holding a deferred string gets no other kind of value.
        if let Some(d) = def
            && let Some(k) = kinds[d.index()]
        {
            let same = match inst {
                Inst::Builtin { func, .. } => Deferred::of(*func) == Some(k.0),
                Inst::Move { src, .. } => kinds[src.index()].map(|s| s.0) == Some(k.0),
                _ => false,
            };
            if !same {
                return refuse(k);
            }
        }
        // And is only moved or printed.
        if matches!(inst, Inst::Move { .. } | Inst::Print { dst: None, .. }) {
            continue;
        }
        let mut uses = super::slots::regs_of(inst);
        if let Some(d) = def
            && let Some(i) = uses.iter().position(|r| *r == d)
        {
            uses.remove(i);
        }
        if let Some(k) = uses.iter().find_map(|r| kinds[r.index()]) {
            return refuse(k);
        }
    }
    for block in &body.blocks {
        let used = match &block.term {
            Term::Branch { cond, .. } => Some(*cond),
            Term::Return(r) => *r,
            _ => None,
        };
        if let Some(k) = used.and_then(|r| kinds[r.index()]) {
            return refuse(k);
        }
        if let Term::IterNext { keys, value, .. } = &block.term
            && let Some(k) = keys
                .iter()
                .flatten()
                .chain(value)
                .find_map(|r| kinds[r.index()])
        {
            return refuse(k);
        }
    }
    Ok(kinds.into_iter().map(|k| k.map(|k| k.0)).collect())
}

impl Gen<'_> {
    /// The symbol and stack built-ins; `false` for any other instruction.
    pub(super) fn stack_inst(&mut self, inst: &Inst) -> Result<bool, CodegenError> {
        let Inst::Builtin {
            dst,
            func,
            args,
            at,
        } = inst
        else {
            return Ok(false);
        };
        match (func, dst) {
            (Builtin::PrintBacktrace, _) => self.print_stack(Deferred::PrintBacktrace),
            (Builtin::PrintUbacktrace, _) => self.print_stack(Deferred::PrintUbacktrace),
            // Left unfolded only in a sampling probe.
            (Builtin::Probefunc, Some(d)) => self.sampled_function(*d),
            (Builtin::Probefunc, None) => {}
            (Builtin::Probemod, _) => {
                // Folded where the probe point names a module; elsewhere stap
                // cannot tell either.
                self.raise(mir::NO_MODULE, *at);
            }
            (_, Some(d)) if Deferred::of(*func).is_some() => {
                let how = Deferred::of(*func).unwrap_or(Deferred::Symname);
                let words = self.words(*d);
                let (base, mut off) = self.base(self.region_of(*d));
                if how.is_user() {
                    self.store_pid(base, off);
                    off += 8;
                }
                if how.is_stack() {
                    self.get_stack(base, off, words - u32::from(how.is_user()), how.is_user());
                } else {
                    // The address, in the string's first word.
                    self.load(1, args[0]);
                    self.emit(Insn::store(Size::DW, base, off, 1));
                }
            }
            (_, None) if Deferred::of(*func).is_some() => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// At `base` + `off` (`base` a register the helper call keeps: r7 or
    /// r8), `words` words: the kernel (or `user`) stack's byte count (or the
    /// helper's negative error), then its addresses.
    pub(super) fn get_stack(&mut self, base: u8, off: i16, words: u32, user: bool) {
        let mut frames = words.saturating_sub(1);
        // At a function's entry the frame-pointer walk skips the caller (the
        // callee has not pushed its frame yet): the return address is at the
        // stack pointer, and goes in as the second frame. Kernels since 6.12
        // put it there themselves: then the pc is written twice instead, and
        // user space drops the repeat.
        let entry = user && frames >= 2 && self.at_user_entry;
        if entry {
            frames -= 1;
        }
        let first = i32::from(off) + 8 + 8 * i32::from(entry);
        if frames > 0 {
            self.emit(Insn::mov_reg(1, 6));
            self.emit(Insn::mov_reg(2, base));
            self.emit(Insn::alu_imm(Alu::Add, 2, first));
            self.emit(Insn::mov_imm(3, i32::try_from(8 * frames).unwrap_or(0)));
            // In a trampoline the kernel's walk starts in the program and the
            // trampoline: skip those two, so the stack starts at the traced
            // function as a kprobe's does.
            let flags = if user {
                BPF_F_USER_STACK
            } else if self.trampoline {
                TRAMPOLINE_FRAMES
            } else {
                0
            };
            self.emit(Insn::mov_imm(4, flags));
            self.emit(Insn::call(helper::GET_STACK));
        } else {
            self.emit(Insn::mov_imm(0, 0));
        }
        self.emit(Insn::store(Size::DW, base, off, 0));
        if entry {
            let ip = off + 8;
            let skip = self.forward(Insn::jump_imm(Jmp::Jsle, 0, 0, 0));
            self.emit(Insn::alu_imm(Alu::Add, 0, 8));
            self.emit(Insn::store(Size::DW, base, off, 0));
            // The return address, into the first frame for now.
            self.emit(Insn::mov_reg(1, base));
            self.emit(Insn::alu_imm(Alu::Add, 1, i32::from(ip)));
            self.emit(Insn::mov_imm(2, 8));
            self.emit(Insn::load(Size::DW, 3, 6, PT_REGS_SP));
            self.emit(Insn::call(helper::PROBE_READ_USER));
            self.emit(Insn::load(Size::DW, 1, base, ip));
            self.emit(Insn::load(Size::DW, 2, base, ip + 8));
            self.emit(Insn::load(Size::DW, 3, base, ip + 16));
            // The pc first; then the return address, unless the kernel's walk
            // has it already (or it could not be read).
            self.emit(Insn::store(Size::DW, base, ip, 2));
            let known = self.forward(Insn::jump_reg(Jmp::Jeq, 1, 3, 0));
            let unread = self.forward(Insn::jump_imm(Jmp::Jeq, 1, 0, 0));
            self.emit(Insn::store(Size::DW, base, ip + 8, 1));
            self.land(known);
            self.land(unread);
            self.land(skip);
        }
    }

    /// At `base` + `off`: the current process id.
    pub(super) fn store_pid(&mut self, base: u8, off: i16) {
        self.emit(Insn::call(helper::GET_CURRENT_PID_TGID));
        self.emit(Insn::alu_imm(Alu::Rsh, 0, 32));
        self.emit(Insn::store(Size::DW, base, off, 0));
    }

    /// Whether register `r` holds a deferred string.
    pub(super) fn deferred_of(&self, r: Reg) -> Option<Deferred> {
        if self.body.ty(r) == Ty::Str {
            self.deferred.get(r.index()).copied().flatten()
        } else {
            None
        }
    }
}
