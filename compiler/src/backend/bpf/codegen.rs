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

use super::insn::{Alu, Insn, Jmp, Size, helper};
use super::layout::{GlobalMap, MapSpec, STRING_KEY_BYTES, StatLayout, Storage, global_map};
use crate::builtins::Builtin;
use crate::hir::{BinOp, ContextValue, PointKind};
use crate::kernel::KernelInfo;
use crate::mir::{self, Body, CmpOp, Context, Inst, Reg, Term, Ty, UnOp};
use crate::tracepoint::TracepointFormat;
use rstap_grammar::Span;
use std::collections::HashMap;

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

    /// Reports runtime error `msg` through the output ring and ends the handler.
    fn raise(&mut self, msg: &str, at: Span) {
        let site = i64::try_from(self.errors.len()).unwrap_or(0) + ERROR_RECORD;
        self.errors.push(ErrorSite {
            msg: msg.to_string(),
            at,
        });
        let output = output_id(self.prog.globals.len());
        self.emit2(Insn::ld_map(1, output));
        self.emit(Insn::mov_imm(2, 8));
        self.emit(Insn::mov_imm(3, 0));
        self.emit(Insn::call(helper::RINGBUF_RESERVE));
        // Past the record: ld_imm64 (two slots), store, two moves and the call.
        self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 6));
        self.emit2(Insn::ld_imm64(1, site as u64));
        self.emit(Insn::store(Size::DW, 0, 0, 1));
        self.emit(Insn::mov_reg(1, 0));
        self.emit(Insn::mov_imm(2, 0));
        self.emit(Insn::call(helper::RINGBUF_SUBMIT));
        self.emit(Insn::mov_imm(0, 0));
        self.emit(Insn::exit());
    }

    /// A print record into the output ring: the site's index, then each
    /// argument as an 8-byte word. No room counts as a lost record.
    fn print(&mut self, spec: &mir::PrintSpec, args: &[Reg]) {
        let site = i32::try_from(self.prints.len()).unwrap_or(i32::MAX);
        self.prints.push(spec.clone());
        let output = output_id(self.prog.globals.len());
        let size = 8 + 8 * i32::try_from(args.len()).unwrap_or(0);
        self.emit2(Insn::ld_map(1, output));
        self.emit(Insn::mov_imm(2, size));
        self.emit(Insn::mov_imm(3, 0));
        self.emit(Insn::call(helper::RINGBUF_RESERVE));
        let lost_at = self.insns.len();
        self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 0));
        let start = self.insns.len();
        self.emit(Insn::store_imm(Size::DW, 0, 0, site));
        for (i, a) in args.iter().enumerate() {
            self.load(1, *a);
            let off = 8 + 8 * i16::try_from(i).unwrap_or(0);
            self.emit(Insn::store(Size::DW, 0, off, 1));
        }
        self.emit(Insn::mov_reg(1, 0));
        self.emit(Insn::mov_imm(2, 0));
        self.emit(Insn::call(helper::RINGBUF_SUBMIT));
        let done_at = self.insns.len();
        self.emit(Insn::jump(0));
        self.insns[lost_at].off = i16::try_from(self.insns.len() - start).unwrap_or(i16::MAX);
        // Count the record the ring had no room for.
        let key = -i16::try_from(STACK).unwrap_or(512) + 32;
        self.emit(Insn::store_imm(Size::W, 10, key, 0));
        self.emit2(Insn::ld_map(1, output + 1));
        self.emit(Insn::mov_reg(2, 10));
        self.emit(Insn::alu_imm(Alu::Add, 2, i32::from(key)));
        self.emit(Insn::call(helper::MAP_LOOKUP_ELEM));
        self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 3));
        self.emit(Insn::load(Size::DW, 1, 0, 0));
        self.emit(Insn::alu_imm(Alu::Add, 1, 1));
        self.emit(Insn::store(Size::DW, 0, 0, 1));
        self.insns[done_at].off = i16::try_from(self.insns.len() - done_at - 1).unwrap_or(i16::MAX);
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

    /// Whether `r` is only a key column in `inst` (string keys are supported).
    fn is_key(&self, inst: &Inst, r: Reg) -> bool {
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
    fn words(&self, r: Reg) -> u32 {
        self.caps[r.index()].div_ceil(8).max(STRING_KEY_BYTES / 8)
    }

    /// Zeroes words `from..` of string register `r`'s region.
    fn zero_from(&mut self, r: Reg, from: u32) {
        for w in from..self.words(r) {
            let off = self.slot[r.index()] + 8 * i16::try_from(w).unwrap_or(0);
            self.emit(Insn::store_imm(Size::DW, 10, off, 0));
        }
    }

    /// Strings this backend can make: literals, execname(), `char[N]` fields,
    /// and copies of them. `true` when `inst` was one of those.
    fn string_inst(&mut self, inst: &Inst) -> Result<bool, CodegenError> {
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

    fn agg_add(&mut self, g: usize, keys: &[Reg], value: Reg) -> Result<(), CodegenError> {
        let map = self.map(g)?;
        let layout = self.maps[g]
            .as_ref()
            .and_then(|m| m.stat)
            .unwrap_or(StatLayout { buckets: 0 });
        let storage = self.maps[g].as_ref().map(|m| m.storage);
        let key = self.key(keys)?;
        if storage == Some(Storage::StatsArray) {
            // Create the element (zeroed) unless it exists.
            let fresh = key - 32;
            if layout.size() > 32 {
                return self.unsupported("an aggregate with a histogram", None);
            }
            for w in 0..layout.size() / 8 {
                let off = fresh + 8 * i16::try_from(w).unwrap_or(0);
                self.emit(Insn::store_imm(Size::DW, 10, off, 0));
            }
            self.emit2(Insn::ld_map(1, map));
            self.emit(Insn::mov_reg(2, 10));
            self.emit(Insn::alu_imm(Alu::Add, 2, i32::from(key)));
            self.emit(Insn::mov_reg(3, 10));
            self.emit(Insn::alu_imm(Alu::Add, 3, i32::from(fresh)));
            // BPF_NOEXIST: an existing element keeps its counts.
            self.emit(Insn::mov_imm(4, 1));
            self.emit(Insn::call(helper::MAP_UPDATE_ELEM));
        }
        self.emit2(Insn::ld_map(1, map));
        self.emit(Insn::mov_reg(2, 10));
        self.emit(Insn::alu_imm(Alu::Add, 2, i32::from(key)));
        self.emit(Insn::call(helper::MAP_LOOKUP_ELEM));
        let skip_at = self.insns.len();
        self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 0));
        let start = self.insns.len();
        self.load(1, value);
        // The first value sets min and max.
        self.emit(Insn::load(Size::DW, 2, 0, StatLayout::COUNT));
        self.emit(Insn::jump_imm(Jmp::Jne, 2, 0, 2));
        self.emit(Insn::store(Size::DW, 0, StatLayout::MIN, 1));
        self.emit(Insn::store(Size::DW, 0, StatLayout::MAX, 1));
        self.emit(Insn::alu_imm(Alu::Add, 2, 1));
        self.emit(Insn::store(Size::DW, 0, StatLayout::COUNT, 2));
        self.emit(Insn::load(Size::DW, 2, 0, StatLayout::SUM));
        self.emit(Insn::alu_reg(Alu::Add, 2, 1));
        self.emit(Insn::store(Size::DW, 0, StatLayout::SUM, 2));
        self.emit(Insn::load(Size::DW, 2, 0, StatLayout::MIN));
        self.emit(Insn::jump_reg(Jmp::Jsge, 1, 2, 1));
        self.emit(Insn::store(Size::DW, 0, StatLayout::MIN, 1));
        self.emit(Insn::load(Size::DW, 2, 0, StatLayout::MAX));
        self.emit(Insn::jump_reg(Jmp::Jsle, 1, 2, 1));
        self.emit(Insn::store(Size::DW, 0, StatLayout::MAX, 1));
        if layout.buckets > 0 {
            self.log_bucket();
        }
        let len = self.insns.len() - start;
        self.insns[skip_at].off = i16::try_from(len).unwrap_or(i16::MAX);
        Ok(())
    }

    /// With the value in r1 and the aggregate at r0: one more in its log
    /// bucket, `64 ± bit length of |v|`.
    fn log_bucket(&mut self) {
        // r3 = |v| (i64::MIN stays 2^63 as an unsigned number), r4 = its bit length.
        self.emit(Insn::mov_reg(3, 1));
        self.emit(Insn::jump_imm(Jmp::Jsge, 1, 0, 1));
        self.emit(Insn::alu_imm(Alu::Neg, 3, 0));
        self.emit(Insn::mov_imm(4, 0));
        for k in [32, 16, 8, 4, 2, 1] {
            self.emit(Insn::mov_reg(5, 3));
            self.emit(Insn::alu_imm(Alu::Rsh, 5, k));
            self.emit(Insn::jump_imm(Jmp::Jeq, 5, 0, 2));
            self.emit(Insn::alu_imm(Alu::Add, 4, k));
            self.emit(Insn::mov_reg(3, 5));
        }
        self.emit(Insn::jump_imm(Jmp::Jeq, 3, 0, 1));
        self.emit(Insn::alu_imm(Alu::Add, 4, 1));
        // Negative values count down from bucket 64, the rest up (at most 127).
        self.emit(Insn::jump_imm(Jmp::Jsge, 1, 0, 4));
        self.emit(Insn::mov_imm(5, 64));
        self.emit(Insn::alu_reg(Alu::Sub, 5, 4));
        self.emit(Insn::mov_reg(4, 5));
        self.emit(Insn::jump(3));
        self.emit(Insn::jump_imm(Jmp::Jle, 4, 63, 1));
        self.emit(Insn::mov_imm(4, 63));
        self.emit(Insn::alu_imm(Alu::Add, 4, 64));
        self.emit(Insn::jump_imm(Jmp::Jle, 4, 127, 1));
        self.emit(Insn::mov_imm(4, 127));
        self.emit(Insn::alu_imm(Alu::Lsh, 4, 3));
        self.emit(Insn::mov_reg(5, 0));
        self.emit(Insn::alu_reg(Alu::Add, 5, 4));
        self.emit(Insn::load(Size::DW, 2, 5, StatLayout::BUCKETS));
        self.emit(Insn::alu_imm(Alu::Add, 2, 1));
        self.emit(Insn::store(Size::DW, 5, StatLayout::BUCKETS, 2));
    }

    fn context(&mut self, dst: Reg, value: &ContextValue) -> Result<(), CodegenError> {
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

    fn builtin(&mut self, dst: Option<Reg>, func: Builtin, at: Span) -> Result<(), CodegenError> {
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

/// Which blocks a path from the entry reaches.
fn reachable(body: &Body) -> Vec<bool> {
    let mut seen = vec![false; body.blocks.len()];
    let mut stack = vec![0usize];
    while let Some(b) = stack.pop() {
        if b >= seen.len() || std::mem::replace(&mut seen[b], true) {
            continue;
        }
        match &body.blocks[b].term {
            Term::Jump(t) => stack.push(t.index()),
            Term::Branch {
                then, otherwise, ..
            } => {
                stack.push(then.index());
                stack.push(otherwise.index());
            }
            Term::IterNext {
                body: inner, done, ..
            } => {
                stack.push(inner.index());
                stack.push(done.index());
            }
            Term::Return(_) | Term::Next => {}
        }
    }
    seen
}

/// The bytes each string register can hold: literals their length plus the
/// NUL, execname() 16, a `char[N]` tracepoint field N, a copy its source's.
fn string_caps(body: &Body, format: Option<&TracepointFormat>) -> Vec<u32> {
    let mut caps = vec![0u32; body.regs.len()];
    let char_field = |i: usize| {
        format
            .and_then(|f| f.fields.get(i))
            .filter(|f| f.kind == crate::tracepoint::FieldKind::CharArray)
            .map(|f| f.size)
    };
    loop {
        let mut changed = false;
        for inst in body.blocks.iter().flat_map(|b| &b.insts) {
            let (dst, cap) = match inst {
                Inst::Str { dst, bytes } if bytes.len() < 64 => {
                    (*dst, u32::try_from(bytes.len() + 1).unwrap_or(0))
                }
                Inst::Builtin {
                    dst: Some(dst),
                    func: Builtin::Execname,
                    ..
                } => (*dst, 16),
                Inst::Context {
                    dst,
                    value: ContextValue::TracepointField(i),
                } => match char_field(*i) {
                    Some(n) => (*dst, n),
                    None => continue,
                },
                Inst::Move { dst, src } if body.ty(*dst) == Ty::Str => (*dst, caps[src.index()]),
                _ => continue,
            };
            if cap > caps[dst.index()] {
                caps[dst.index()] = cap;
                changed = true;
            }
        }
        if !changed {
            return caps;
        }
    }
}

/// Gives every register a stack slot (strings a region of 8-byte words),
/// sharing slots between long registers that live in one block only and are
/// not live at the same time.
fn assign_slots(body: &Body, caps: &[u32]) -> Result<Vec<i16>, CodegenError> {
    let n = body.regs.len();
    let size = |r: usize| -> usize {
        if body.regs[r] == Ty::Str {
            (caps[r].div_ceil(8).max(STRING_KEY_BYTES / 8)) as usize
        } else {
            1
        }
    };
    // The blocks each register appears in, and its last position in each.
    let mut blocks_of: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut last: HashMap<(usize, usize), usize> = HashMap::new();
    for (b, block) in body.blocks.iter().enumerate() {
        let mentions = block
            .insts
            .iter()
            .enumerate()
            .flat_map(|(i, inst)| regs_of(inst).into_iter().map(move |r| (i, r)))
            .chain(
                term_regs(&block.term)
                    .into_iter()
                    .map(|r| (block.insts.len(), r)),
            );
        for (i, r) in mentions {
            if !blocks_of[r.index()].contains(&b) {
                blocks_of[r.index()].push(b);
            }
            last.insert((r.index(), b), i);
        }
    }
    // Script variables keep their value across loop iterations even when only
    // one block mentions them: they, and registers of several blocks, get a
    // slot of their own. The rest are temporaries, written before they are read.
    for (r, _) in &body.names {
        blocks_of[r.index()].push(usize::MAX);
    }
    for (blocks, ty) in blocks_of.iter_mut().zip(&body.regs) {
        if *ty == Ty::Str {
            blocks.push(usize::MAX);
        }
    }
    let mut slot = vec![0usize; n];
    let mut next = 0usize;
    for r in 0..n {
        if blocks_of[r].len() != 1 {
            slot[r] = next;
            next += size(r);
        }
    }
    let shared_base = next;
    let mut peak = 0usize;
    for (b, block) in body.blocks.iter().enumerate() {
        let mut free: Vec<usize> = Vec::new();
        let mut used = 0usize;
        let mut live: Vec<(usize, usize)> = Vec::new();
        for i in 0..=block.insts.len() {
            let here: Vec<Reg> = if i < block.insts.len() {
                regs_of(&block.insts[i])
            } else {
                term_regs(&block.term)
            };
            for r in here {
                let r = r.index();
                if blocks_of[r].len() == 1 && !live.iter().any(|&(x, _)| x == r) {
                    let s = free.pop().unwrap_or_else(|| {
                        used += 1;
                        used - 1
                    });
                    slot[r] = shared_base + s;
                    live.push((r, s));
                }
            }
            live.retain(|&(r, s)| {
                let done = last.get(&(r, b)).is_some_and(|&l| l <= i);
                if done {
                    free.push(s);
                }
                !done
            });
        }
        peak = peak.max(used);
    }
    let total = shared_base + peak;
    if total * 8 + SCRATCH > STACK {
        return Err(CodegenError::new(
            format!(
                "this handler needs {} bytes of BPF stack, more than the kernel's 512; split it into smaller functions or probes",
                total * 8 + SCRATCH
            ),
            None,
        ));
    }
    Ok(slot
        .into_iter()
        .enumerate()
        .map(|(r, s)| {
            let words = if blocks_of[r].len() != 1 { size(r) } else { 1 };
            -8 * i16::try_from(s + words).unwrap_or(i16::MAX)
        })
        .collect())
}

fn term_regs(t: &Term) -> Vec<Reg> {
    match t {
        Term::Branch { cond, .. } => vec![*cond],
        Term::Return(Some(r)) => vec![*r],
        Term::IterNext { keys, value, .. } => keys.iter().flatten().chain(value).copied().collect(),
        Term::Jump(_) | Term::Return(None) | Term::Next => Vec::new(),
    }
}

/// Every register an instruction mentions.
fn regs_of(i: &Inst) -> Vec<Reg> {
    match i {
        Inst::Const { dst, .. } | Inst::Str { dst, .. } | Inst::Context { dst, .. } => vec![*dst],
        Inst::Move { dst, src } | Inst::Unary { dst, src, .. } => vec![*dst, *src],
        Inst::Binary { dst, a, b, .. }
        | Inst::Compare { dst, a, b, .. }
        | Inst::StrCompare { dst, a, b, .. }
        | Inst::Concat { dst, a, b } => vec![*dst, *a, *b],
        Inst::Regex { dst, src, .. } => vec![*dst, *src],
        Inst::ReadGlobal { dst, .. } => vec![*dst],
        Inst::WriteGlobal { src, .. } => vec![*src],
        Inst::MapRead { dst, keys, .. } => keys.iter().copied().chain([*dst]).collect(),
        Inst::MapWrite { keys, src, .. } => keys.iter().copied().chain([*src]).collect(),
        Inst::MapContains { dst, keys, .. } => {
            keys.iter().flatten().copied().chain([*dst]).collect()
        }
        Inst::MapDelete { keys, .. } => keys.iter().flatten().copied().collect(),
        Inst::Clear { .. } => Vec::new(),
        Inst::AggAdd { keys, value, .. } => keys.iter().copied().chain([*value]).collect(),
        Inst::AggRead {
            dst, keys, shift, ..
        } => keys.iter().copied().chain([*dst]).chain(*shift).collect(),
        Inst::HistBucket {
            dst, keys, bucket, ..
        } => keys.iter().copied().chain([*dst, *bucket]).collect(),
        Inst::Call { dst, args, .. } | Inst::Builtin { dst, args, .. } => {
            args.iter().copied().chain(*dst).collect()
        }
        Inst::Load { dst, addr, .. } | Inst::LoadStr { dst, addr, .. } => vec![*dst, *addr],
        Inst::Print { dst, args, .. } => args.iter().copied().chain(*dst).collect(),
        Inst::PrintHist { keys, .. } => keys.clone(),
        Inst::IterStart { limit, slice, .. } => limit
            .iter()
            .copied()
            .chain(slice.iter().flatten().flatten().copied())
            .collect(),
    }
}

fn span_of(i: &Inst) -> Option<Span> {
    match i {
        Inst::Binary { at, .. }
        | Inst::MapWrite { at, .. }
        | Inst::AggAdd { at, .. }
        | Inst::AggRead { at, .. }
        | Inst::Call { at, .. }
        | Inst::Builtin { at, .. }
        | Inst::Load { at, .. }
        | Inst::LoadStr { at, .. }
        | Inst::PrintHist { at, .. } => Some(*at),
        _ => None,
    }
}

fn inst_name(i: &Inst) -> &'static str {
    match i {
        Inst::Str { .. } | Inst::StrCompare { .. } | Inst::Concat { .. } => "a string value",
        Inst::Regex { .. } => "a regular expression match",
        Inst::MapContains { .. } => "`in`",
        Inst::MapDelete { .. } | Inst::Clear { .. } => "delete",
        Inst::AggRead { .. } | Inst::HistBucket { .. } => "reading an aggregate",
        Inst::Call { .. } => "a function call",
        Inst::Load { .. } | Inst::LoadStr { .. } => "reading kernel memory",
        Inst::Print { .. } | Inst::PrintHist { .. } => "printing",
        Inst::IterStart { .. } => "foreach",
        _ => "this operation",
    }
}
