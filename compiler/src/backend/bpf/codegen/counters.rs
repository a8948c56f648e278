//! Long globals written from kernel context: `a[k] = v`, with stap's overflow
//! error when the array is full, and increments (`n++`, `n += d`, `a[k]++`,
//! `a[k] -= d`) as one atomic add on the map's value, so that CPUs bumping one
//! counter at the same time lose no update.
//!
//! Lowering writes `a[k] += d` as a read, maybe a copy, an add and a write. When
//! those temporaries are used nowhere else, the read, copy and add emit nothing
//! and the write becomes `lock *value += d`.

use super::slots::{regs_of, term_regs};
use super::stats::E2BIG;
use super::{CodegenError, Gen};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, helper};
use crate::hir::{BinOp, GlobalId};
use crate::mir::{self, Body, GlobalKind, Inst, IterSource, Reg, Ty};
use rstap_grammar::Span;
use std::collections::{HashMap, HashSet};

/// The increments of one body that become atomic adds.
#[derive(Debug, Default)]
pub(super) struct Fusion {
    /// Registers whose defining instruction emits nothing: the read, copy and
    /// sum of an increment.
    skipped: HashSet<Reg>,
    /// A write of one of these registers adds `delta` (negated for `-=`).
    adds: HashMap<Reg, (Reg, bool)>,
}

/// Finds the increments of `body` that can be atomic adds.
pub(super) fn plan(prog: &mir::Program, body: &Body) -> Fusion {
    let mut mentions = vec![0usize; body.regs.len()];
    for b in &body.blocks {
        for r in b.insts.iter().flat_map(regs_of).chain(term_regs(&b.term)) {
            mentions[r.index()] += 1;
        }
    }
    let mut named = vec![false; body.regs.len()];
    for (r, _) in &body.names {
        named[r.index()] = true;
    }
    // Defined once and used once, by the next step of the pattern.
    let temp = |r: Reg| mentions.get(r.index()) == Some(&2) && !named[r.index()];
    let mut fusion = Fusion::default();
    for b in &body.blocks {
        for (w, inst) in b.insts.iter().enumerate() {
            if let Some(found) = increment(prog, &b.insts, w, inst, &temp) {
                fusion.skipped.extend(found.skipped);
                fusion.adds.insert(found.sum, (found.delta, found.negate));
            }
        }
    }
    fusion
}

struct Increment {
    sum: Reg,
    delta: Reg,
    negate: bool,
    skipped: Vec<Reg>,
}

/// The increment that the write `insts[w]` ends, if it is one.
fn increment(
    prog: &mir::Program,
    insts: &[Inst],
    w: usize,
    write: &Inst,
    temp: &dyn Fn(Reg) -> bool,
) -> Option<Increment> {
    let (global, keys, sum) = match write {
        Inst::WriteGlobal { global, src } => (*global, &[][..], *src),
        Inst::MapWrite {
            global, keys, src, ..
        } => (*global, keys.as_slice(), *src),
        _ => return None,
    };
    if prog.globals[global.index()].kind != GlobalKind::Value(Ty::Long) || !temp(sum) {
        return None;
    }
    let s = defined_at(insts, w, sum)?;
    let Inst::Binary { op, a, b, .. } = &insts[s] else {
        return None;
    };
    let operands = match op {
        BinOp::Add => vec![(*a, *b), (*b, *a)],
        BinOp::Sub => vec![(*a, *b)],
        _ => return None,
    };
    let negate = *op == BinOp::Sub;
    for (old, delta) in operands {
        if old == delta || !temp(old) {
            continue;
        }
        let mut skipped = vec![sum, old];
        let mut r = defined_at(insts, s, old)?;
        let mut steps = vec![s];
        if let Inst::Move { src, .. } = &insts[r] {
            if !temp(*src) {
                continue;
            }
            skipped.push(*src);
            steps.push(r);
            r = defined_at(insts, r, *src)?;
        }
        let reads = match &insts[r] {
            Inst::ReadGlobal { global: g, .. } => *g == global && keys.is_empty(),
            Inst::MapRead {
                global: g, keys: k, ..
            } => *g == global && k == keys,
            _ => false,
        };
        // Nothing between the read and the write may touch the global, change
        // a key, or (after the add) change the delta.
        let undisturbed = (r + 1..w).filter(|i| !steps.contains(i)).all(|i| {
            let regs = regs_of(&insts[i]);
            !(touches(&insts[i], global)
                || matches!(insts[i], Inst::Call { .. })
                || keys.iter().any(|k| regs.contains(k))
                || (i > s && regs.contains(&delta)))
        });
        if reads && undisturbed {
            return Some(Increment {
                sum,
                delta,
                negate,
                skipped,
            });
        }
    }
    None
}

/// The index of the instruction before `before` that mentions `r`: its
/// definition, when `r` is a temporary whose use is at `before`.
fn defined_at(insts: &[Inst], before: usize, r: Reg) -> Option<usize> {
    (0..before).rev().find(|&i| regs_of(&insts[i]).contains(&r))
}

/// Whether `inst` reads or writes global `g`.
fn touches(inst: &Inst, g: GlobalId) -> bool {
    match inst {
        Inst::ReadGlobal { global, .. }
        | Inst::WriteGlobal { global, .. }
        | Inst::MapRead { global, .. }
        | Inst::MapWrite { global, .. }
        | Inst::MapContains { global, .. }
        | Inst::MapDelete { global, .. }
        | Inst::Clear { global }
        | Inst::AggAdd { global, .. }
        | Inst::AggRead { global, .. }
        | Inst::HistBucket { global, .. }
        | Inst::PrintHist { global, .. } => *global == g,
        Inst::IterStart { source, .. } => match &**source {
            IterSource::Array(global) | IterSource::Hist { global, .. } => *global == g,
        },
        _ => false,
    }
}

impl Gen<'_> {
    /// Emits `inst` if it is part of an increment made atomic: nothing for
    /// its read, copy and sum, the atomic add for its write. `false` for any
    /// other instruction.
    pub(super) fn fused(&mut self, inst: &Inst) -> Result<bool, CodegenError> {
        let (global, keys, sum, at) = match inst {
            Inst::ReadGlobal { dst, .. }
            | Inst::MapRead { dst, .. }
            | Inst::Move { dst, .. }
            | Inst::Binary { dst, .. } => return Ok(self.fusion.skipped.contains(dst)),
            Inst::WriteGlobal { global, src } => (*global, &[][..], *src, Span::default()),
            Inst::MapWrite {
                global,
                keys,
                src,
                at,
            } => (*global, keys.as_slice(), *src, *at),
            _ => return Ok(false),
        };
        let Some(&(delta, negate)) = self.fusion.adds.get(&sum) else {
            return Ok(false);
        };
        let g = global.index();
        let map = self.map(g)?;
        let Some(m) = self.maps[g].clone() else {
            return Ok(false);
        };
        let skips = if keys.is_empty() {
            self.lookup(g, keys)?;
            vec![self.forward(Insn::jump_imm(Jmp::Jeq, 0, 0, 0))]
        } else {
            let key = self.key(g, keys)?;
            self.element(map, &m, key, at)
        };
        self.load(1, delta);
        if negate {
            self.emit(Insn::alu_imm(Alu::Neg, 1, 0));
        }
        self.emit(Insn::atomic_add(0, 0, 1));
        for s in skips {
            self.land(s);
        }
        Ok(true)
    }

    /// `g[keys] = src`; a new key in a full array raises stap's overflow error.
    pub(super) fn map_write(
        &mut self,
        g: usize,
        keys: &[Reg],
        src: Reg,
        at: Span,
    ) -> Result<(), CodegenError> {
        let map = self.map(g)?;
        let overflow = self.maps[g]
            .as_ref()
            .filter(|m| !m.wrap)
            .map(|m| m.overflow_message());
        let key = self.key(g, keys)?;
        let value = self.stage_value(src);
        self.emit2(Insn::ld_map(1, map));
        self.ptr(2, key);
        self.ptr(3, value);
        self.emit(Insn::mov_imm(4, 0));
        self.emit(Insn::call(helper::MAP_UPDATE_ELEM));
        if let Some(msg) = overflow {
            let room = self.forward(Insn::jump_imm(Jmp::Jne, 0, E2BIG, 0));
            self.raise(&msg, at);
            self.land(room);
        }
        Ok(())
    }
}
