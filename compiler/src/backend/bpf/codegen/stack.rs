//! Symbols and stacks in kernel context. A handler records addresses, never
//! names: `symname(addr)` keeps the address, `backtrace()` the kernel stack
//! (`bpf_get_stack`, up to MAXBACKTRACE frames); the print record carries
//! them, and the runtime names them from /proc/kallsyms after the event. Such
//! a "deferred" string can therefore only be printed: any other use (a
//! comparison, a map key, a concatenation, sprintf) is refused at compile time.
//! `pp()`, `ppfunc()`, `probefunc()` and `probemod()` are constants of the
//! probe point, folded into string literals.

use super::{CodegenError, Gen};
use crate::backend::bpf::insn::{Alu, Insn, Size, helper};
use crate::builtins::Builtin;
use crate::mir::{self, Body, Inst, Reg, Term, Ty};
use rstap_grammar::Span;

/// MAXBACKTRACE: the frames a backtrace records.
pub const MAX_FRAMES: u32 = 20;

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
}

impl Deferred {
    /// The deferred string a built-in returns, if it returns one.
    fn of(func: Builtin) -> Option<Deferred> {
        Some(match func {
            Builtin::Symname => Deferred::Symname,
            Builtin::Symdata => Deferred::Symdata,
            Builtin::Backtrace => Deferred::Backtrace,
            Builtin::SprintBacktrace => Deferred::SprintBacktrace,
            _ => return None,
        })
    }

    /// The bytes its register (and record column) needs.
    pub(super) fn bytes(func: Builtin) -> Option<u32> {
        Some(match Deferred::of(func)? {
            Deferred::Symname | Deferred::Symdata => 8,
            _ => 8 * (1 + MAX_FRAMES),
        })
    }

    /// Whether the column holds a stack (else one address).
    pub fn is_stack(self) -> bool {
        !matches!(self, Deferred::Symname | Deferred::Symdata)
    }
}

/// Replaces `pp()`, `ppfunc()`, `probefunc()` (and `probemod()` where it is
/// known) in a kernel-context handler, its functions inlined, by the probe's
/// constants.
pub(super) fn fold_probe_names(probe: &mut mir::Probe) {
    let names = [
        (Builtin::Pp, Some(probe.pp().to_string())),
        (Builtin::Ppfunc, Some(probe.ppfunc().to_string())),
        (Builtin::Probefunc, Some(probe.probefunc().to_string())),
        (Builtin::Probemod, probe.probemod().map(str::to_string)),
    ];
    for inst in probe.body.blocks.iter_mut().flat_map(|b| &mut b.insts) {
        let Inst::Builtin {
            dst: Some(dst),
            func,
            ..
        } = inst
        else {
            continue;
        };
        if let Some((_, Some(text))) = names.iter().find(|(b, _)| b == func) {
            *inst = Inst::Str {
                dst: *dst,
                bytes: text.clone().into_bytes(),
            };
        }
    }
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
        let def = def_of(inst);
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

/// The register an instruction writes.
fn def_of(inst: &Inst) -> Option<Reg> {
    match inst {
        Inst::Const { dst, .. }
        | Inst::Str { dst, .. }
        | Inst::Context { dst, .. }
        | Inst::Move { dst, .. }
        | Inst::Unary { dst, .. }
        | Inst::Binary { dst, .. }
        | Inst::Compare { dst, .. }
        | Inst::StrCompare { dst, .. }
        | Inst::Concat { dst, .. }
        | Inst::Regex { dst, .. }
        | Inst::ReadGlobal { dst, .. }
        | Inst::MapRead { dst, .. }
        | Inst::MapContains { dst, .. }
        | Inst::AggRead { dst, .. }
        | Inst::HistBucket { dst, .. }
        | Inst::Load { dst, .. }
        | Inst::LoadStr { dst, .. } => Some(*dst),
        Inst::Call { dst, .. } | Inst::Builtin { dst, .. } | Inst::Print { dst, .. } => *dst,
        Inst::WriteGlobal { .. }
        | Inst::MapWrite { .. }
        | Inst::MapDelete { .. }
        | Inst::Clear { .. }
        | Inst::AggAdd { .. }
        | Inst::PrintHist { .. }
        | Inst::IterStart { .. } => None,
    }
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
            (Builtin::Probemod, _) => {
                // Folded where the probe point names a module; elsewhere stap
                // cannot tell either.
                self.raise(mir::NO_MODULE, *at);
            }
            (Builtin::Symname | Builtin::Symdata, Some(d)) => {
                // The address, in the string's first word.
                self.load(1, args[0]);
                let (base, off) = self.base(self.region_of(*d));
                self.emit(Insn::store(Size::DW, base, off, 1));
            }
            (Builtin::Backtrace | Builtin::SprintBacktrace, Some(d)) => {
                let words = self.words(*d);
                let (base, off) = self.base(self.region_of(*d));
                self.get_stack(base, off, words);
            }
            (Builtin::Symname | Builtin::Symdata, None)
            | (Builtin::Backtrace | Builtin::SprintBacktrace, None) => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// At `base` + `off` (`base` a register the helper call keeps: r7 or
    /// r8), `words` words: the kernel stack's byte count (or the helper's
    /// negative error), then its addresses.
    pub(super) fn get_stack(&mut self, base: u8, off: i16, words: u32) {
        let bytes = 8 * words.saturating_sub(1);
        if bytes > 0 {
            self.emit(Insn::mov_reg(1, 6));
            self.emit(Insn::mov_reg(2, base));
            self.emit(Insn::alu_imm(Alu::Add, 2, i32::from(off) + 8));
            self.emit(Insn::mov_imm(3, i32::try_from(bytes).unwrap_or(0)));
            self.emit(Insn::mov_imm(4, 0));
            self.emit(Insn::call(helper::GET_STACK));
        } else {
            self.emit(Insn::mov_imm(0, 0));
        }
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
