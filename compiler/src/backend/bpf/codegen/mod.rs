//! MIR → BPF for kernel-context handlers, in two steps: instructions over
//! stack slots with jumps to block labels, then label resolution ("nothing moves
//! after this point"). Every MIR register lives in an 8-byte stack slot; a
//! register used in one block only shares slots with other such registers once
//! its last use is past, so a handler fits the 512-byte stack. r6 holds the
//! context pointer; r0–r5 are scratch around each instruction.
//!
//! This first version covers what counting and aggregating scripts need: long
//! arithmetic and comparisons, branches and loops, long scalars, long-keyed
//! arrays and aggregates (count, sum, min, max), tracepoint fields, and the
//! task/time built-ins. Anything else is refused with a sentence naming it.

mod output;
mod slots;
mod stats;
mod strings;
mod task;

use super::insn::{Alu, Insn, Jmp, Size, helper};
use super::layout::{GlobalMap, MapSpec, STRING_KEY_BYTES, global_map};
use crate::hir::{BinOp, PointKind};
use crate::kernel::KernelInfo;
use crate::mir::{self, Body, CmpOp, Context, Inst, Reg, Term, Ty, UnOp};
use crate::tracepoint::TracepointFormat;
use rstap_grammar::Span;
use slots::{assign_slots, inst_name, reachable, regs_of, span_of, string_caps};

/// BPF's stack.
const STACK: usize = 512;
/// Scratch bytes below the register slots: a map key or a fresh aggregate.
const SCRATCH: usize = 64;

/// Why a handler cannot become BPF (yet): a sentence, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodegenError {
    pub msg: String,
    pub at: Option<Span>,
}

impl CodegenError {
    fn new(msg: impl Into<String>, at: Option<Span>) -> CodegenError {
        CodegenError {
            msg: msg.into(),
            at,
        }
    }
}

/// One kernel-context handler as BPF instructions; its `Insn::ld_map`
/// immediates are indexes into [`Compiled::maps`].
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// Its index in the MIR's probes.
    pub probe: usize,
    pub insns: Vec<Insn>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    /// Every map the programs use.
    pub maps: Vec<MapSpec>,
    pub programs: Vec<Program>,
    /// The print calls of kernel-context handlers: a record's first word is
    /// an index here, its arguments follow as 8-byte words.
    pub prints: Vec<mir::PrintSpec>,
    /// Runtime errors the handlers can raise: a record whose first word is
    /// [`ERROR_RECORD`] plus an index here reports it (and the handler stops).
    pub errors: Vec<ErrorSite>,
}

/// The first word of an error record is this plus the error's index.
pub const ERROR_RECORD: i64 = 1 << 32;

/// A runtime error a handler can raise: stap's message, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorSite {
    pub msg: String,
    pub at: Span,
}

/// What the generated code must know of the machine it will run on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Target {
    /// MAXMAPENTRIES.
    pub max_entries: u32,
    /// Wall-clock time minus the monotonic clock BPF reads, in nanoseconds,
    /// for `gettimeofday_*()`.
    pub wall_offset_ns: i64,
}

/// Compiles every kernel-context probe of `prog`.
pub fn compile(
    prog: &mir::Program,
    kernel: &dyn KernelInfo,
    target: Target,
) -> Result<Compiled, CodegenError> {
    let max_entries = target.max_entries;
    let mut maps: Vec<Option<GlobalMap>> = vec![None; prog.globals.len()];
    let mut prints = Vec::new();
    let mut errors = Vec::new();
    let mut programs = Vec::new();
    for (i, probe) in prog.probes.iter().enumerate() {
        if probe.context != Context::Kernel {
            continue;
        }
        let format = match &probe.kind {
            PointKind::Tracepoint(tp) => Some(
                kernel
                    .tracepoint_format(tp)
                    .map_err(|e| CodegenError::new(e.0, None))?,
            ),
            _ => None,
        };
        let mut g = Gen::new(prog, &probe.body, format.as_ref(), &mut maps, max_entries)?;
        g.wall_offset_ns = target.wall_offset_ns;
        g.prints = std::mem::take(&mut prints);
        g.errors = std::mem::take(&mut errors);
        g.body()?;
        prints = std::mem::take(&mut g.prints);
        errors = std::mem::take(&mut g.errors);
        programs.push(Program {
            probe: i,
            insns: g.finish(),
        });
    }
    // Map ids so far: globals by index, then the output ring and the lost
    // counter; number the maps the programs use, in that order.
    let globals = prog.globals.len();
    let mut order: Vec<(u32, MapSpec)> = maps
        .into_iter()
        .enumerate()
        .filter_map(|(i, m)| {
            m.map(|m| (u32::try_from(i).unwrap_or(u32::MAX), MapSpec::global(i, m)))
        })
        .collect();
    if !prints.is_empty() || !errors.is_empty() {
        order.push((output_id(globals), MapSpec::output()));
        order.push((output_id(globals) + 1, MapSpec::lost()));
    }
    let target = output_id(globals) + 2;
    let uses_target = programs.iter().any(|p| {
        p.insns.iter().any(|i| {
            i.code == 0x18 && i.src == super::insn::PSEUDO_MAP_FD && i.imm as u32 == target
        })
    });
    if uses_target {
        order.push((target, MapSpec::target()));
    }
    for p in &mut programs {
        for ins in &mut p.insns {
            if ins.code == 0x18 && ins.src == super::insn::PSEUDO_MAP_FD {
                let id = ins.imm as u32;
                let index = order.iter().position(|(o, _)| *o == id).unwrap_or(0);
                ins.imm = i32::try_from(index).unwrap_or(0);
            }
        }
    }
    Ok(Compiled {
        maps: order.into_iter().map(|(_, m)| m).collect(),
        programs,
        prints,
        errors,
    })
}

/// The internal id of the output ring buffer (the lost counter is the next).
fn output_id(globals: usize) -> u32 {
    u32::try_from(globals).unwrap_or(u32::MAX - 2)
}

struct Gen<'a> {
    prog: &'a mir::Program,
    body: &'a Body,
    format: Option<&'a TracepointFormat>,
    maps: &'a mut Vec<Option<GlobalMap>>,
    max_entries: u32,
    insns: Vec<Insn>,
    /// Jumps to patch: instruction index and target block.
    fixups: Vec<(usize, usize)>,
    starts: Vec<usize>,
    /// Stack offset (from r10) of each register.
    slot: Vec<i16>,
    /// Bytes each string register holds (including the NUL), 0 for longs and
    /// strings this backend cannot produce.
    caps: Vec<u32>,
    /// Print sites of the whole program so far.
    prints: Vec<mir::PrintSpec>,
    /// Error sites of the whole program so far.
    errors: Vec<ErrorSite>,
    wall_offset_ns: i64,
}

impl<'a> Gen<'a> {
    fn new(
        prog: &'a mir::Program,
        body: &'a Body,
        format: Option<&'a TracepointFormat>,
        maps: &'a mut Vec<Option<GlobalMap>>,
        max_entries: u32,
    ) -> Result<Gen<'a>, CodegenError> {
        let caps = string_caps(body, format);
        let slot = assign_slots(body, &caps)?;
        Ok(Gen {
            prog,
            body,
            format,
            maps,
            max_entries,
            insns: Vec::new(),
            fixups: Vec::new(),
            starts: Vec::new(),
            slot,
            caps,
            prints: Vec::new(),
            errors: Vec::new(),
            wall_offset_ns: 0,
        })
    }

    fn emit(&mut self, i: Insn) {
        self.insns.push(i);
    }

    fn emit2(&mut self, pair: [Insn; 2]) {
        self.insns.extend(pair);
    }

    fn load(&mut self, dst: u8, r: Reg) {
        let off = self.slot[r.index()];
        self.emit(Insn::load(Size::DW, dst, 10, off));
    }

    fn store(&mut self, r: Reg, src: u8) {
        let off = self.slot[r.index()];
        self.emit(Insn::store(Size::DW, 10, off, src));
    }

    /// A jump (or conditional jump) to block `target`, patched in `finish`.
    fn jump_to(&mut self, i: Insn, target: usize) {
        self.fixups.push((self.insns.len(), target));
        self.emit(i);
    }

    fn body(&mut self) -> Result<(), CodegenError> {
        self.emit(Insn::mov_reg(6, 1));
        // Locals start at 0, and the verifier refuses reads of unwritten stack.
        let mut words: Vec<i16> = Vec::new();
        for r in 0..self.slot.len() {
            let n = if self.body.regs[r] == Ty::Str {
                self.words(Reg(u32::try_from(r).unwrap_or(0)))
            } else {
                1
            };
            for w in 0..n {
                words.push(self.slot[r] + 8 * i16::try_from(w).unwrap_or(0));
            }
        }
        words.sort_unstable();
        words.dedup();
        for off in words {
            self.emit(Insn::store_imm(Size::DW, 10, off, 0));
        }
        for b in &self.body.blocks {
            if b.catch.is_some() {
                return Err(CodegenError::new(
                    "try/catch is not supported in kernel-context probes yet",
                    None,
                ));
            }
        }
        // The verifier refuses code no path reaches (the rest of a block after
        // `break`, `continue`, `next`), so only reachable blocks are emitted.
        let reachable = reachable(self.body);
        let order: Vec<usize> = (0..self.body.blocks.len())
            .filter(|&b| reachable[b])
            .collect();
        self.starts = vec![0; self.body.blocks.len()];
        for (k, &b) in order.iter().enumerate() {
            self.starts[b] = self.insns.len();
            let block = &self.body.blocks[b];
            for inst in &block.insts {
                self.inst(inst)?;
            }
            self.term(&block.term, order.get(k + 1).copied())?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Vec<Insn> {
        for &(at, target) in &self.fixups {
            let dest = self.starts.get(target).copied().unwrap_or(self.insns.len());
            let off = i64::try_from(dest).unwrap_or(0) - i64::try_from(at).unwrap_or(0) - 1;
            self.insns[at].off = i16::try_from(off).unwrap_or(i16::MAX);
        }
        std::mem::take(&mut self.insns)
    }

    /// A block's end; `next` is the block emitted right after it, which a jump
    /// needs not name.
    fn term(&mut self, t: &Term, next: Option<usize>) -> Result<(), CodegenError> {
        match t {
            Term::Jump(b) => {
                if Some(b.index()) != next {
                    self.jump_to(Insn::jump(0), b.index());
                }
            }
            Term::Branch {
                cond,
                then,
                otherwise,
            } => {
                self.load(1, *cond);
                self.jump_to(Insn::jump_imm(Jmp::Jne, 1, 0, 0), then.index());
                self.jump_to(Insn::jump(0), otherwise.index());
            }
            Term::Return(_) | Term::Next => {
                self.emit(Insn::mov_imm(0, 0));
                self.emit(Insn::exit());
            }
            Term::IterNext { .. } => {
                return Err(CodegenError::new(
                    "foreach is not supported in kernel-context probes yet",
                    None,
                ));
            }
        }
        Ok(())
    }

    fn unsupported<T>(&self, what: &str, at: Option<Span>) -> Result<T, CodegenError> {
        Err(CodegenError::new(
            format!("{what} is not supported in kernel-context probes yet"),
            at,
        ))
    }

    fn inst(&mut self, inst: &Inst) -> Result<(), CodegenError> {
        if self.string_inst(inst)? {
            return Ok(());
        }
        for r in regs_of(inst) {
            if self.body.ty(r) == Ty::Str && !self.is_key(inst, r) {
                return self.unsupported("a string value", span_of(inst));
            }
        }
        match inst {
            Inst::Const { dst, value } => self.constant(*dst, *value),
            Inst::Move { dst, src } => {
                self.load(1, *src);
                self.store(*dst, 1);
            }
            Inst::Unary { dst, op, src } => {
                self.load(1, *src);
                match op {
                    UnOp::Neg => self.emit(Insn::alu_imm(Alu::Neg, 1, 0)),
                    UnOp::BitNot => self.emit(Insn::alu_imm(Alu::Xor, 1, -1)),
                    UnOp::Not => {
                        self.emit(Insn::mov_imm(0, 1));
                        self.emit(Insn::jump_imm(Jmp::Jeq, 1, 0, 1));
                        self.emit(Insn::mov_imm(0, 0));
                        self.emit(Insn::mov_reg(1, 0));
                    }
                }
                self.store(*dst, 1);
            }
            Inst::Binary { dst, op, a, b, at } => self.binary(*dst, *op, *a, *b, *at)?,
            Inst::Compare { dst, op, a, b } => {
                self.load(1, *a);
                self.load(2, *b);
                let j = match op {
                    CmpOp::Eq => Jmp::Jeq,
                    CmpOp::Ne => Jmp::Jne,
                    CmpOp::Lt => Jmp::Jslt,
                    CmpOp::Le => Jmp::Jsle,
                    CmpOp::Gt => Jmp::Jsgt,
                    CmpOp::Ge => Jmp::Jsge,
                };
                self.emit(Insn::mov_imm(0, 1));
                self.emit(Insn::jump_reg(j, 1, 2, 1));
                self.emit(Insn::mov_imm(0, 0));
                self.store(*dst, 0);
            }
            Inst::ReadGlobal { dst, global } => {
                self.lookup(global.index(), &[])?;
                self.read_value(*dst);
            }
            Inst::WriteGlobal { global, src } => {
                self.lookup(global.index(), &[])?;
                self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 2));
                self.load(1, *src);
                self.emit(Insn::store(Size::DW, 0, 0, 1));
            }
            Inst::MapRead { dst, global, keys } => {
                self.lookup(global.index(), keys)?;
                self.read_value(*dst);
            }
            Inst::MapWrite {
                global, keys, src, ..
            } => {
                let map = self.map(global.index())?;
                let key = self.key(keys)?;
                let value = key - 8;
                self.load(1, *src);
                self.emit(Insn::store(Size::DW, 10, value, 1));
                self.emit2(Insn::ld_map(1, map));
                self.emit(Insn::mov_reg(2, 10));
                self.emit(Insn::alu_imm(Alu::Add, 2, i32::from(key)));
                self.emit(Insn::mov_reg(3, 10));
                self.emit(Insn::alu_imm(Alu::Add, 3, i32::from(value)));
                self.emit(Insn::mov_imm(4, 0));
                self.emit(Insn::call(helper::MAP_UPDATE_ELEM));
            }
            Inst::AggAdd {
                global,
                keys,
                value,
                ..
            } => self.agg_add(global.index(), keys, *value)?,
            Inst::MapContains { dst, global, keys } if keys.iter().all(Option::is_some) => {
                let keys: Vec<Reg> = keys.iter().flatten().copied().collect();
                self.lookup(global.index(), &keys)?;
                self.emit(Insn::mov_imm(1, 1));
                self.emit(Insn::jump_imm(Jmp::Jne, 0, 0, 1));
                self.emit(Insn::mov_imm(1, 0));
                self.store(*dst, 1);
            }
            Inst::MapDelete { global, keys } if keys.iter().all(Option::is_some) => {
                let keys: Vec<Reg> = keys.iter().flatten().copied().collect();
                let map = self.map(global.index())?;
                let key = self.key(&keys)?;
                self.emit2(Insn::ld_map(1, map));
                self.emit(Insn::mov_reg(2, 10));
                self.emit(Insn::alu_imm(Alu::Add, 2, i32::from(key)));
                self.emit(Insn::call(helper::MAP_DELETE_ELEM));
            }
            Inst::Context { dst, value } => self.context(*dst, value)?,
            Inst::Builtin { dst, func, at, .. } => self.builtin(*dst, *func, *at)?,
            Inst::Print {
                dst: None,
                spec,
                args,
            } => self.print(spec, args),
            other => return self.unsupported(inst_name(other), span_of(other)),
        }
        Ok(())
    }

    fn constant(&mut self, dst: Reg, value: i64) {
        match i32::try_from(value) {
            Ok(v) => {
                let off = self.slot[dst.index()];
                self.emit(Insn::store_imm(Size::DW, 10, off, v));
            }
            Err(_) => {
                self.emit2(Insn::ld_imm64(1, value as u64));
                self.store(dst, 1);
            }
        }
    }

    fn binary(
        &mut self,
        dst: Reg,
        op: BinOp,
        a: Reg,
        b: Reg,
        at: Span,
    ) -> Result<(), CodegenError> {
        self.load(1, a);
        self.load(2, b);
        let alu = match op {
            BinOp::Add => Alu::Add,
            BinOp::Sub => Alu::Sub,
            BinOp::Mul => Alu::Mul,
            BinOp::BitAnd => Alu::And,
            BinOp::BitOr => Alu::Or,
            BinOp::BitXor => Alu::Xor,
            BinOp::Shl | BinOp::Shr | BinOp::UShr => {
                // stap shifts by the low six bits of the count, as x86 does.
                self.emit(Insn::alu_imm(Alu::And, 2, 63));
                match op {
                    BinOp::Shl => Alu::Lsh,
                    BinOp::Shr => Alu::Arsh,
                    _ => Alu::Rsh,
                }
            }
            BinOp::Div | BinOp::Mod => {
                // Division by zero is stap's runtime error; the rest is C's
                // signed division (sdiv/smod).
                let check = self.insns.len();
                self.emit(Insn::jump_imm(Jmp::Jne, 2, 0, 0));
                let start = self.insns.len();
                self.raise("division by 0", at);
                self.insns[check].off = i16::try_from(self.insns.len() - start).unwrap_or(i16::MAX);
                let alu = if op == BinOp::Div { Alu::Div } else { Alu::Mod };
                self.emit(Insn::alu_signed(alu, 1, 2));
                self.store(dst, 1);
                return Ok(());
            }
            _ => return self.unsupported("this operator", Some(at)),
        };
        self.emit(Insn::alu_reg(alu, 1, 2));
        self.store(dst, 1);
        Ok(())
    }

    /// The map index of global `g`, created on first use.
    fn map(&mut self, g: usize) -> Result<u32, CodegenError> {
        if self.maps[g].is_none() {
            let m = global_map(g, &self.prog.globals[g], self.max_entries)
                .map_err(|e| CodegenError::new(e.0, None))?;
            self.maps[g] = Some(m);
        }
        Ok(u32::try_from(g).unwrap_or(u32::MAX))
    }

    /// Packs `keys` (longs) into the scratch area; its stack offset. A scalar's
    /// key is the u32 0. The scratch area holds a fresh aggregate (or a value to
    /// store) in its first 32 bytes and the key in the last 32.
    fn key(&mut self, keys: &[Reg]) -> Result<i16, CodegenError> {
        let key = -i16::try_from(STACK).unwrap_or(512) + 32;
        if keys.len() * 8 > 32 {
            return self.unsupported("an array with more than four key columns", None);
        }
        if keys.is_empty() {
            self.emit(Insn::store_imm(Size::W, 10, key, 0));
            return Ok(key);
        }
        let width: usize = keys
            .iter()
            .map(|&k| {
                if self.body.ty(k) == Ty::Str {
                    STRING_KEY_BYTES as usize
                } else {
                    8
                }
            })
            .sum();
        if width > 32 {
            return self.unsupported("a key this wide (at most 32 bytes)", None);
        }
        let mut off = key;
        for &k in keys {
            let words = if self.body.ty(k) == Ty::Str {
                if self.caps[k.index()] == 0 || self.caps[k.index()] > STRING_KEY_BYTES {
                    return self.unsupported(
                        "a string key longer than 15 bytes (or not known to be shorter)",
                        None,
                    );
                }
                STRING_KEY_BYTES / 8
            } else {
                1
            };
            for w in 0..words {
                let src = self.slot[k.index()] + 8 * i16::try_from(w).unwrap_or(0);
                self.emit(Insn::load(Size::DW, 1, 10, src));
                self.emit(Insn::store(Size::DW, 10, off, 1));
                off += 8;
            }
        }
        Ok(key)
    }

    /// r0 = the element of global `g` at `keys`, or 0 when absent.
    fn lookup(&mut self, g: usize, keys: &[Reg]) -> Result<(), CodegenError> {
        let map = self.map(g)?;
        let key = self.key(keys)?;
        self.emit2(Insn::ld_map(1, map));
        self.emit(Insn::mov_reg(2, 10));
        self.emit(Insn::alu_imm(Alu::Add, 2, i32::from(key)));
        self.emit(Insn::call(helper::MAP_LOOKUP_ELEM));
        Ok(())
    }

    /// dst = *r0, or 0 when r0 is null.
    fn read_value(&mut self, dst: Reg) {
        self.emit(Insn::mov_imm(1, 0));
        self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 1));
        self.emit(Insn::load(Size::DW, 1, 0, 0));
        self.store(dst, 1);
    }
}
