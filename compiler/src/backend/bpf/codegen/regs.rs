//! Register allocation: the hottest long registers of a body live in the
//! callee-saved machine registers r8 and r9 for the whole handler; every other
//! register stays in its stack slot (spilled).
//!
//! A register that gets a machine register keeps its stack slot as a home.
//! A sequence that needs r8 or r9 as a temporary (a string read, a
//! concatenation, a record with strings, a fault, a `foreach` step) first
//! *lends* them: the allocated values go to their homes, and until they are
//! *given back* (reloaded) [`Gen::load`] and [`Gen::store`] use the homes.
//! A home is a slot of the register's own (never shared with a temporary), so
//! lending may write it at any time; registers whose slot's address is handed
//! to a helper (memory reads, aggregates) stay on the stack.

use super::Gen;
use super::slots::{reachable, regs_of, term_regs};
use crate::backend::bpf::insn::{Insn, Size};
use crate::mir::{Body, Inst, Reg, Term, Ty};

/// The machine registers handed out, hottest register first.
const MACHINE: [u8; 2] = [8, 9];

/// The machine register of each register of `body` (`None`: its stack slot).
/// [`super::slots::assign_slots`] must give each allocated register a slot of
/// its own, its home.
pub(super) fn allocate(body: &Body, count: Option<Reg>) -> Vec<Option<u8>> {
    let n = body.regs.len();
    let mut out = vec![None; n];
    let depth = loop_depth(body);
    let live = reachable(body);
    // Each mention counts 8× more per loop around it.
    let mut weight = vec![0u64; n];
    let mut excluded = vec![false; n];
    for (b, block) in body.blocks.iter().enumerate() {
        if !live[b] {
            continue;
        }
        let w = 8u64.pow(depth[b].min(6));
        for inst in &block.insts {
            for r in regs_of(inst) {
                weight[r.index()] += w;
            }
            if let Some(dst) = address_taken(inst) {
                excluded[dst.index()] = true;
            }
        }
        for r in term_regs(&block.term) {
            weight[r.index()] += w;
        }
        if let Some(c) = count.filter(|_| block.actions > 0) {
            weight[c.index()] += 2 * w;
        }
    }
    let mut candidates: Vec<usize> = (0..n)
        .filter(|&r| body.regs[r] == Ty::Long && !excluded[r] && weight[r] >= 2)
        .collect();
    candidates.sort_by_key(|&r| (std::cmp::Reverse(weight[r]), r));
    for (&r, &m) in candidates.iter().zip(&MACHINE) {
        out[r] = Some(m);
    }
    out
}

/// The register whose stack slot an instruction writes through its address
/// (a helper reads memory into it, or an extraction counts CPUs in it).
fn address_taken(inst: &Inst) -> Option<Reg> {
    match inst {
        Inst::Load { dst, .. } | Inst::AggRead { dst, .. } | Inst::HistBucket { dst, .. } => {
            Some(*dst)
        }
        Inst::Builtin { dst, .. } | Inst::Call { dst, .. } => *dst,
        _ => None,
    }
}

/// The blocks a block may continue to, its catch block included.
fn successors(body: &Body, b: usize) -> Vec<usize> {
    let block = &body.blocks[b];
    let mut next: Vec<usize> = block.catch.iter().map(|(c, _)| c.index()).collect();
    match &block.term {
        Term::Jump(t) => next.push(t.index()),
        Term::Branch {
            then, otherwise, ..
        } => next.extend([then.index(), otherwise.index()]),
        Term::IterNext {
            body: inner, done, ..
        } => next.extend([inner.index(), done.index()]),
        Term::Return(_) | Term::Next => {}
    }
    next.retain(|&s| s < body.blocks.len());
    next
}

/// How many natural loops hold each block: a back edge `u → h` (to a block
/// on the depth-first path) makes a loop of `h` and every block that reaches
/// `u` without passing `h`.
fn loop_depth(body: &Body) -> Vec<u32> {
    let n = body.blocks.len();
    let mut depth = vec![0u32; n];
    if n == 0 {
        return depth;
    }
    let succ: Vec<Vec<usize>> = (0..n).map(|b| successors(body, b)).collect();
    let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (b, s) in succ.iter().enumerate() {
        for &t in s {
            pred[t].push(b);
        }
    }
    // Iterative depth-first search; 0 unseen, 1 on the path, 2 done.
    let mut state = vec![0u8; n];
    let mut back = Vec::new();
    let mut stack = vec![(0usize, 0usize)];
    state[0] = 1;
    while let Some(&mut (b, ref mut i)) = stack.last_mut() {
        if let Some(&t) = succ[b].get(*i) {
            *i += 1;
            match state[t] {
                0 => {
                    state[t] = 1;
                    stack.push((t, 0));
                }
                1 => back.push((b, t)),
                _ => {}
            }
        } else {
            state[b] = 2;
            stack.pop();
        }
    }
    for (u, h) in back {
        let mut inside = vec![false; n];
        inside[h] = true;
        let mut work = vec![u];
        while let Some(x) = work.pop() {
            if !std::mem::replace(&mut inside[x], true) {
                work.extend(&pred[x]);
            }
        }
        for (d, i) in depth.iter_mut().zip(inside) {
            *d += u32::from(i);
        }
    }
    depth
}

impl Gen<'_> {
    /// The machine register `r` lives in now, if any.
    fn machine_of(&self, r: Reg) -> Option<u8> {
        if self.lent > 0 {
            return None;
        }
        self.machine[r.index()]
    }

    /// `dst` = register `r`.
    pub(super) fn load(&mut self, dst: u8, r: Reg) {
        match self.machine_of(r) {
            Some(m) if m == dst => {}
            Some(m) => self.emit(Insn::mov_reg(dst, m)),
            None => self.emit(Insn::load(Size::DW, dst, 10, self.slot[r.index()])),
        }
    }

    /// Register `r` = `src`.
    pub(super) fn store(&mut self, r: Reg, src: u8) {
        match self.machine_of(r) {
            Some(m) if m == src => {}
            Some(m) => self.emit(Insn::mov_reg(m, src)),
            None => self.emit(Insn::store(Size::DW, 10, self.slot[r.index()], src)),
        }
    }

    /// Register `r` = the constant `v`.
    pub(super) fn store_imm(&mut self, r: Reg, v: i32) {
        match self.machine_of(r) {
            Some(m) => self.emit(Insn::mov_imm(m, v)),
            None => self.emit(Insn::store_imm(Size::DW, 10, self.slot[r.index()], v)),
        }
    }

    /// The registers in r8 and r9 start at 0, as every local does.
    pub(super) fn zero_allocated(&mut self) {
        for m in self.machine.clone().into_iter().flatten() {
            self.emit(Insn::mov_imm(m, 0));
        }
    }

    /// Frees r8 and r9 for a sequence's own use: the registers living there
    /// go to their homes (once, however deeply lending nests).
    pub(super) fn lend(&mut self) {
        if self.lent == 0 {
            for (r, m) in self.allocated() {
                self.emit(Insn::store(Size::DW, 10, self.slot[r], m));
            }
        }
        self.lent += 1;
    }

    /// Ends a [`Gen::lend`]: the outermost one reloads r8 and r9 from the homes.
    pub(super) fn give_back(&mut self) {
        self.lent = self.lent.saturating_sub(1);
        if self.lent == 0 {
            self.reload_lent_always();
        }
    }

    /// Before leaving a lending sequence by a jump (to a catch block, or back
    /// to a loop's top emitted before the lending): reload r8 and r9.
    pub(super) fn reload_if_lent(&mut self) {
        if self.lent > 0 {
            self.reload_lent_always();
        }
    }

    fn reload_lent_always(&mut self) {
        for (r, m) in self.allocated() {
            self.emit(Insn::load(Size::DW, m, 10, self.slot[r]));
        }
    }

    fn allocated(&self) -> Vec<(usize, u8)> {
        self.machine
            .iter()
            .enumerate()
            .filter_map(|(r, m)| m.map(|m| (r, m)))
            .collect()
    }
}
