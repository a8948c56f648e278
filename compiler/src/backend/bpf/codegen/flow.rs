//! Blocks and how control leaves them: the order blocks are emitted in, the
//! MAXACTION count at each block's entry, jumps and branches laid out so the
//! verifier can walk loops, and the end of the handler.
//!
//! The verifier walks a loop once per iteration; it learns that each loop ends
//! from the statement count, which grows by every block's `actions` and stops
//! the handler past MAXACTION. At a conditional jump it goes on along the
//! fall-through and stacks the jump's target for later, refusing a program once
//! 8192 targets wait: so the count's check falls through to the error, a
//! branch falls through to the side that leaves a loop, and a comparison that
//! only feeds a branch becomes the branch's own jump rather than a 0/1 value
//! (made by a jump of its own).

use super::{CodegenError, Gen, signed_jump, slots};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, helper};
use crate::mir::{Block, Body, CmpOp, Inst, Reg, Term, Ty};

/// What stap says when a handler runs more than MAXACTION statements.
const EXCEEDED: &str = "MAXACTION exceeded";

/// A comparison emitted as the jump of the branch that reads it.
struct Fused {
    op: CmpOp,
    a: Reg,
    b: Reg,
}

/// Adds to `body` the register that counts its statements, unless no run of
/// it can execute more than `max_action` (no loop, few statements).
pub(super) fn count_register(body: &mut Body, max_action: u32) -> Option<Reg> {
    if within_max_action(body, max_action) {
        return None;
    }
    // No instruction names it, so it is confined to no block and keeps a
    // stack slot of its own (slots::assign_slots).
    let r = Reg(u32::try_from(body.regs.len()).unwrap_or(u32::MAX));
    body.regs.push(Ty::Long);
    Some(r)
}

/// Whether no run of `body` can take more than `max_action` actions, so
/// that it needs no count.
pub(super) fn within_max_action(body: &Body, max_action: u32) -> bool {
    most_actions(body).is_some_and(|n| n <= u64::from(max_action))
}

impl Gen<'_> {
    /// Every block a path from the entry reaches (the verifier refuses code
    /// no path reaches: the rest of a block after `break`, `continue`, `next`),
    /// then the MAXACTION error if some block can get there.
    pub(super) fn blocks(&mut self) -> Result<(), CodegenError> {
        let reachable = slots::reachable(self.body);
        let order: Vec<usize> = (0..self.body.blocks.len())
            .filter(|&b| reachable[b])
            .collect();
        let mut mentions = vec![0usize; self.body.regs.len()];
        for block in &self.body.blocks {
            let insts = block.insts.iter().flat_map(slots::regs_of);
            for r in insts.chain(slots::term_regs(&block.term)) {
                mentions[r.index()] += 1;
            }
        }
        // One label past the blocks: where a handler over MAXACTION goes.
        let exceeded = self.body.blocks.len();
        self.starts = vec![0; exceeded + 1];
        self.start_count();
        for (k, &b) in order.iter().enumerate() {
            self.starts[b] = self.insns.len();
            self.block = b;
            let block = &self.body.blocks[b];
            self.count_actions(block.actions, exceeded);
            let fused = fused_compare(block, &mentions);
            let insts = &block.insts[..block.insts.len() - usize::from(fused.is_some())];
            for inst in insts {
                self.inst(inst)?;
            }
            self.term(b, &block.term, fused, order.get(k + 1).copied())?;
        }
        if self.fixups.iter().any(|&(_, t)| t == exceeded) {
            self.starts[exceeded] = self.insns.len();
            // As from a block in no `try`: the error ends the handler.
            self.block = self
                .body
                .blocks
                .iter()
                .position(|b| b.catch.is_none())
                .unwrap_or(0);
            self.raise_uncatchable(EXCEEDED);
        }
        Ok(())
    }

    /// The count starts at 0, but the verifier must not know it: from an
    /// exact count it cannot merge the two sides of an `if` in a loop (their
    /// counts differ), and the paths to walk grow with the square of the
    /// iterations. It sees a count anywhere in 0..2^31 instead, and after each
    /// check one in `k..=MAXACTION` where `k` grows with every block: the loop
    /// still ends for it, and a path with the wider range covers the other.
    /// The zero: the clock since boot shifted right by 63 (it reaches 2^63 ns
    /// after 292 years), times 2^31 - 1.
    fn start_count(&mut self) {
        let Some(count) = self.count else {
            return;
        };
        self.emit(Insn::call(helper::KTIME_GET_NS));
        self.emit(Insn::alu_imm(Alu::Rsh, 0, 63));
        self.emit(Insn::alu_imm(Alu::Mul, 0, i32::MAX));
        self.store(count, 0);
    }

    /// Adds a block's statements to the count and raises MAXACTION past the
    /// limit, as the user-space engine does at block entry (a `try` around
    /// the block catches it there too; else the handler goes to label
    /// `exceeded`). The verifier walks the error's side first, the
    /// fall-through, which ends soon.
    fn count_actions(&mut self, actions: u32, exceeded: usize) {
        let Some(count) = self.count else {
            return;
        };
        if actions == 0 {
            return;
        }
        let n = i32::try_from(actions).unwrap_or(i32::MAX);
        let max = i32::try_from(self.shared.target.max_action).unwrap_or(i32::MAX);
        self.load(1, count);
        self.emit(Insn::alu_imm(Alu::Add, 1, n));
        self.store(count, 1);
        if self.body.blocks[self.block].catch.is_some() {
            let within = self.forward(Insn::jump_imm(Jmp::Jle, 1, max, 0));
            self.raise_uncatchable(EXCEEDED);
            self.land(within);
        } else {
            self.emit(Insn::jump_imm(Jmp::Jle, 1, max, 1));
            self.jump_to(Insn::jump(0), exceeded);
        }
    }

    /// Block `b`'s end; `next` is the block emitted right after it, which a
    /// jump needs not name.
    fn term(
        &mut self,
        b: usize,
        t: &Term,
        fused: Option<Fused>,
        next: Option<usize>,
    ) -> Result<(), CodegenError> {
        match t {
            Term::Jump(target) => {
                if Some(target.index()) != next {
                    self.jump_to(Insn::jump(0), target.index());
                }
            }
            Term::Branch {
                cond,
                then,
                otherwise,
            } => {
                let (then, otherwise) = (then.index(), otherwise.index());
                let leave_by_then =
                    comes_back(self.body, otherwise, b) && !comes_back(self.body, then, b);
                let (target, fall) = if leave_by_then {
                    (otherwise, then)
                } else {
                    (then, otherwise)
                };
                let jump = match fused {
                    Some(Fused { op, a, b }) => {
                        self.load(1, a);
                        self.load(2, b);
                        let op = if leave_by_then { negated(op) } else { op };
                        Insn::jump_reg(signed_jump(op), 1, 2, 0)
                    }
                    None => {
                        self.load(1, *cond);
                        let op = if leave_by_then { Jmp::Jeq } else { Jmp::Jne };
                        Insn::jump_imm(op, 1, 0, 0)
                    }
                };
                self.jump_to(jump, target);
                if Some(fall) != next {
                    self.jump_to(Insn::jump(0), fall);
                }
            }
            Term::Return(_) | Term::Next => {
                self.emit(Insn::mov_imm(0, 0));
                self.emit(Insn::exit());
            }
            Term::IterNext {
                iter,
                keys,
                value,
                body,
                done,
            } => self.iter_next(*iter, keys, *value, body.index(), done.index())?,
        }
        Ok(())
    }
}

/// The comparison ending `block` when only the block's branch reads it.
fn fused_compare(block: &Block, mentions: &[usize]) -> Option<Fused> {
    let Term::Branch { cond, .. } = &block.term else {
        return None;
    };
    match block.insts.last() {
        Some(&Inst::Compare { dst, op, a, b }) if dst == *cond && mentions[dst.index()] == 2 => {
            Some(Fused { op, a, b })
        }
        _ => None,
    }
}

/// The comparison that holds when `op` does not.
fn negated(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Eq => CmpOp::Ne,
        CmpOp::Ne => CmpOp::Eq,
        CmpOp::Lt => CmpOp::Ge,
        CmpOp::Ge => CmpOp::Lt,
        CmpOp::Le => CmpOp::Gt,
        CmpOp::Gt => CmpOp::Le,
    }
}

/// The blocks `block` may go to: its terminator's, and its catch block.
fn successors(block: &Block) -> Vec<usize> {
    let mut next = match &block.term {
        Term::Jump(b) => vec![b.index()],
        Term::Branch {
            then, otherwise, ..
        } => vec![then.index(), otherwise.index()],
        Term::IterNext { body, done, .. } => vec![body.index(), done.index()],
        Term::Return(_) | Term::Next => Vec::new(),
    };
    next.extend(block.catch.map(|(c, _)| c.index()));
    next
}

/// Whether a path from block `from` reaches block `to`.
fn comes_back(body: &Body, from: usize, to: usize) -> bool {
    let mut seen = vec![false; body.blocks.len()];
    let mut todo = vec![from];
    while let Some(b) = todo.pop() {
        if b == to {
            return true;
        }
        if seen.get(b).is_none_or(|&s| s) {
            continue;
        }
        seen[b] = true;
        todo.extend(successors(&body.blocks[b]));
    }
    false
}

/// The most statements one run of `body` can execute, or `None` when a loop
/// leaves that to the data.
fn most_actions(body: &Body) -> Option<u64> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done(u64),
    }
    let mut mark = vec![Mark::New; body.blocks.len()];
    // Depth first, without recursion: a block is done once its successors
    // are; meeting an open one again is a loop.
    let mut todo = vec![0usize];
    while let Some(&b) = todo.last() {
        let next = successors(body.blocks.get(b)?);
        match mark[b] {
            Mark::New => {
                mark[b] = Mark::Open;
                for s in next {
                    match mark.get(s)? {
                        Mark::New => todo.push(s),
                        Mark::Open => return None,
                        Mark::Done(_) => {}
                    }
                }
            }
            Mark::Open => {
                let most = next
                    .iter()
                    .map(|&s| match mark[s] {
                        Mark::Done(n) => n,
                        _ => 0,
                    })
                    .max()
                    .unwrap_or(0);
                mark[b] = Mark::Done(most + u64::from(body.blocks[b].actions));
                todo.pop();
            }
            Mark::Done(_) => {
                todo.pop();
            }
        }
    }
    match mark.first() {
        Some(Mark::Done(n)) => Some(*n),
        _ => Some(0),
    }
}
