//! What the generator must know of a body before emitting it: reachable blocks,
//! the stack slot of every long register and the scratch region of every string.

use super::{CodegenError, SCRATCH};
use crate::mir::{Block, Body, Inst, Reg, Term, Ty};
use rstap_grammar::Span;
use smallvec::{SmallVec, smallvec};

/// Which blocks a path from the entry reaches.
pub(super) fn reachable(body: &Body) -> Vec<bool> {
    let mut seen = vec![false; body.blocks.len()];
    let mut stack = vec![0usize];
    while let Some(b) = stack.pop() {
        if b >= seen.len() || std::mem::replace(&mut seen[b], true) {
            continue;
        }
        if let Some((catch, _)) = body.blocks[b].catch {
            stack.push(catch.index());
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

/// Gives every long register an 8-byte stack slot, sharing slots between
/// registers that live in one block only and are not live at the same time.
/// (Strings live in the scratch map: see [`regions`].) A `pinned` register
/// gets a slot of its own: it is the home of a register living in a machine
/// register, written and read whenever r8 and r9 are lent.
pub(super) fn assign_slots(
    body: &Body,
    pinned: &[bool],
    stack: usize,
) -> Result<Vec<i16>, CodegenError> {
    let n = body.regs.len();
    let is_str = |r: usize| body.regs[r] == Ty::Str;
    // The block each register appears in (or `SEVERAL`), and its last
    // position there: all a register of one block needs.
    const NONE: usize = usize::MAX;
    const SEVERAL: usize = usize::MAX - 1;
    let mut block_of = vec![NONE; n];
    let mut last = vec![0usize; n];
    for (b, block) in body.blocks.iter().enumerate() {
        for i in 0..=block.insts.len() {
            for r in mentioned(block, i) {
                let r = r.index();
                block_of[r] = match block_of[r] {
                    NONE => b,
                    x if x == b => b,
                    _ => SEVERAL,
                };
                last[r] = i;
            }
        }
    }
    // Script variables keep their value across loop iterations even when only
    // one block mentions them: they, and registers of several blocks, get a
    // slot of their own. The rest are temporaries, written before they are read.
    for (r, _) in &body.names {
        block_of[r.index()] = SEVERAL;
    }
    // A register no block mentions (codegen's own, such as the MAXACTION
    // count) has no block either: it, and every pinned one, keeps its slot.
    let own: Vec<bool> = (0..n)
        .map(|r| block_of[r] >= SEVERAL || pinned.get(r) == Some(&true))
        .collect();
    let mut slot = vec![0usize; n];
    let mut next = 0;
    for r in 0..n {
        if own[r] && !is_str(r) {
            slot[r] = next;
            next += 1;
        }
    }
    let shared_base = next;
    let mut peak = 0usize;
    let mut live = vec![false; n];
    for block in &body.blocks {
        let mut free: Vec<usize> = Vec::new();
        let mut used = 0usize;
        for i in 0..=block.insts.len() {
            let here = mentioned(block, i);
            for r in &here {
                let r = r.index();
                if !own[r] && !is_str(r) && !live[r] {
                    let s = free.pop().unwrap_or_else(|| {
                        used += 1;
                        used - 1
                    });
                    slot[r] = shared_base + s;
                    live[r] = true;
                }
            }
            // A temporary's slot is free again after its last mention.
            for r in &here {
                let r = r.index();
                if live[r] && last[r] <= i {
                    live[r] = false;
                    free.push(slot[r] - shared_base);
                }
            }
        }
        peak = peak.max(used);
    }
    let total = shared_base + peak;
    if total * 8 + SCRATCH > stack {
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
        .map(|s| -8 * i16::try_from(s + 1).unwrap_or(i16::MAX))
        .collect())
}

/// The registers the `i`th instruction of `block` mentions; its terminator's
/// for `i == insts.len()`.
fn mentioned(block: &Block, i: usize) -> Regs {
    match block.insts.get(i) {
        Some(inst) => regs_of(inst),
        None => term_regs(&block.term),
    }
}

/// The offset in the scratch area of every string register's region (its cap
/// rounded up to 8-byte words), starting at `base`; and the end of the last.
pub(super) fn regions(body: &Body, caps: &[u32], base: u32) -> (Vec<u32>, u32) {
    let mut next = base;
    let offsets = body
        .regs
        .iter()
        .zip(caps)
        .map(|(ty, cap)| {
            let at = next;
            if *ty == Ty::Str {
                next += cap.next_multiple_of(8).max(8);
            }
            at
        })
        .collect();
    (offsets, next)
}

pub(super) fn term_regs(t: &Term) -> Regs {
    match t {
        Term::Branch { cond, .. } => smallvec![*cond],
        Term::Return(Some(r)) => smallvec![*r],
        Term::IterNext { keys, value, .. } => keys.iter().flatten().chain(value).copied().collect(),
        Term::Jump(_) | Term::Return(None) | Term::Next => Regs::new(),
    }
}

/// The registers of one instruction or terminator, held inline.
pub(super) type Regs = SmallVec<[Reg; 4]>;

/// Every register an instruction mentions.
pub(super) fn regs_of(i: &Inst) -> Regs {
    match i {
        Inst::Const { dst, .. } | Inst::Str { dst, .. } | Inst::Context { dst, .. } => {
            smallvec![*dst]
        }
        Inst::Move { dst, src } | Inst::Unary { dst, src, .. } => smallvec![*dst, *src],
        Inst::Binary { dst, a, b, .. }
        | Inst::Compare { dst, a, b, .. }
        | Inst::StrCompare { dst, a, b, .. }
        | Inst::Concat { dst, a, b } => smallvec![*dst, *a, *b],
        Inst::Regex { dst, src, .. } => smallvec![*dst, *src],
        Inst::ReadGlobal { dst, .. } => smallvec![*dst],
        Inst::WriteGlobal { src, .. } => smallvec![*src],
        Inst::MapRead { dst, keys, .. } => keys.iter().copied().chain([*dst]).collect(),
        Inst::MapWrite { keys, src, .. } => keys.iter().copied().chain([*src]).collect(),
        Inst::MapContains { dst, keys, .. } => {
            keys.iter().flatten().copied().chain([*dst]).collect()
        }
        Inst::MapDelete { keys, .. } => keys.iter().flatten().copied().collect(),
        Inst::Clear { .. } => Regs::new(),
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
        Inst::Load { dst, addr, .. } | Inst::LoadStr { dst, addr, .. } => smallvec![*dst, *addr],
        Inst::Print { dst, args, .. } => args.iter().copied().chain(*dst).collect(),
        Inst::PrintHist { keys, .. } => keys.iter().copied().collect(),
        Inst::IterStart { limit, slice, .. } => limit
            .iter()
            .copied()
            .chain(slice.iter().flatten().flatten().copied())
            .collect(),
    }
}

pub(super) fn span_of(i: &Inst) -> Option<Span> {
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

pub(super) fn inst_name(i: &Inst) -> &'static str {
    match i {
        Inst::Str { .. } | Inst::StrCompare { .. } | Inst::Concat { .. } => "a string value",
        Inst::Regex { .. } => "a regular expression match",
        Inst::MapContains { .. } => "`in`",
        Inst::MapDelete { .. } | Inst::Clear { .. } => "delete",
        Inst::AggRead { .. } | Inst::HistBucket { .. } => "reading an aggregate",
        Inst::Call { .. } => "a function call",
        Inst::Load { .. } | Inst::LoadStr { .. } => "reading kernel memory",
        Inst::Print { dst: Some(_), .. } => {
            "a `sprintf` whose result the probe uses itself (not only prints)"
        }
        Inst::Print { .. } | Inst::PrintHist { .. } => "printing",
        Inst::IterStart { .. } => "foreach",
        _ => "this operation",
    }
}
