//! How many bytes each string may need, so that registers, map columns and
//! output records are sized by the value's bound rather than MAXSTRINGLEN:
//! `execname()` 16, a literal its length, a `char[N]` field N + 1, a copy its
//! source's, a concatenation the sum; strings read from memory MAXSTRINGLEN.

use crate::backend::bpf::layout::Widths;
use crate::builtins::Builtin;
use crate::hir::ContextValue;
use crate::mir::{self, Body, Context, Inst, Reg, Ty};
use crate::tracepoint::{FieldKind, TracepointFormat};

/// The bytes (with the NUL) each string register of `body` can hold; 0 for
/// longs. `value` is the width of the string values of globals.
pub(super) fn string_caps(
    body: &Body,
    format: Option<&TracepointFormat>,
    max_string: u32,
    value: u32,
    widths: &[Widths],
) -> Vec<u32> {
    let field = |i: usize| format.and_then(|f| f.fields.get(i));
    let mut caps: Vec<u32> = body.regs.iter().map(|t| u32::from(*t == Ty::Str)).collect();
    // A foreach's key variables receive keys of their array's columns.
    let mut walked = std::collections::HashMap::new();
    for inst in body.blocks.iter().flat_map(|b| &b.insts) {
        if let Inst::IterStart { iter, source, .. } = inst
            && let mir::IterSource::Array(g) = &**source
        {
            walked.insert(*iter, g.index());
        }
    }
    for block in &body.blocks {
        if let mir::Term::IterNext { iter, keys, .. } = &block.term {
            for (c, k) in keys.iter().enumerate() {
                let Some(k) = k else { continue };
                if body.ty(*k) != Ty::Str {
                    continue;
                }
                let width = walked
                    .get(iter)
                    .and_then(|g| widths.get(*g))
                    .and_then(|w| w.keys.get(c).copied())
                    .filter(|w| *w > 0)
                    .unwrap_or(max_string);
                caps[k.index()] = caps[k.index()].max(width.min(max_string));
            }
        }
    }
    // A catch variable receives an error message.
    for block in &body.blocks {
        if let Some((_, Some(var))) = block.catch {
            caps[var.index()] = max_string;
        }
    }
    loop {
        let mut changed = false;
        for inst in body.blocks.iter().flat_map(|b| &b.insts) {
            let (dst, cap) = match inst {
                Inst::Str { dst, bytes } => {
                    (*dst, u32::try_from(bytes.len() + 1).unwrap_or(u32::MAX))
                }
                Inst::Move { dst, src } => (*dst, caps[src.index()]),
                Inst::Concat { dst, a, b } => (*dst, caps[a.index()] + caps[b.index()] - 1),
                Inst::ReadGlobal { dst, .. } | Inst::MapRead { dst, .. } => (*dst, value),
                Inst::Builtin {
                    dst: Some(dst),
                    func,
                    args,
                    ..
                } => match func {
                    Builtin::Execname | Builtin::Pexecname => (*dst, 16),
                    Builtin::Probefunc => (*dst, super::sampled::TOKEN_BYTES),
                    // A part of a string is no longer than the string.
                    Builtin::Substr => (*dst, caps[args[0].index()]),
                    f if super::stack::Deferred::bytes(*f).is_some() => {
                        (*dst, super::stack::Deferred::bytes(*f).unwrap_or(8))
                    }
                    _ => (*dst, max_string),
                },
                Inst::Context {
                    dst,
                    value: ContextValue::TracepointField(i),
                } => match field(*i) {
                    Some(f) if f.kind == FieldKind::CharArray => (*dst, f.size + 1),
                    _ => (*dst, max_string),
                },
                Inst::Context { dst, .. }
                | Inst::LoadStr { dst, .. }
                | Inst::Call { dst: Some(dst), .. }
                | Inst::Print { dst: Some(dst), .. } => (*dst, max_string),
                _ => continue,
            };
            if body.ty(dst) != Ty::Str {
                continue;
            }
            let cap = cap.clamp(1, max_string);
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

/// The column widths of every global's map: a string key column as wide as
/// the longest string a kernel-context handler uses there — or MAXSTRINGLEN
/// when a user-context handler may add keys too — and string values
/// MAXSTRINGLEN.
pub(super) fn global_widths(
    prog: &mir::Program,
    formats: &[Option<TracepointFormat>],
    max_string: u32,
) -> Vec<Widths> {
    let mut widths: Vec<Widths> = prog
        .globals
        .iter()
        .map(|g| Widths {
            keys: vec![0; g.keys.len()],
            value: max_string,
        })
        .collect();
    for (i, probe) in prog.probes.iter().enumerate() {
        let kernel = probe.context == Context::Kernel;
        let caps = if kernel {
            string_caps(
                &probe.body,
                formats.get(i).and_then(Option::as_ref),
                max_string,
                max_string,
                &[],
            )
        } else {
            Vec::new()
        };
        let mut widen = |g: usize, col: usize, r: Option<Reg>| {
            let Some(w) = widths.get_mut(g).and_then(|w| w.keys.get_mut(col)) else {
                return;
            };
            let cap = match r {
                Some(r) if kernel => caps.get(r.index()).copied().unwrap_or(max_string),
                _ => max_string,
            };
            *w = (*w).max(cap);
        };
        for inst in probe.body.blocks.iter().flat_map(|b| &b.insts) {
            match inst {
                Inst::MapWrite { global, keys, .. } | Inst::AggAdd { global, keys, .. } => {
                    for (c, k) in keys.iter().enumerate() {
                        widen(global.index(), c, Some(*k));
                    }
                }
                Inst::MapRead { global, keys, .. } if kernel => {
                    for (c, k) in keys.iter().enumerate() {
                        widen(global.index(), c, Some(*k));
                    }
                }
                Inst::MapContains { global, keys, .. } | Inst::MapDelete { global, keys, .. }
                    if kernel =>
                {
                    for (c, k) in keys.iter().enumerate() {
                        widen(global.index(), c, *k);
                    }
                }
                _ => {}
            }
        }
    }
    // Functions run in both contexts; what they add counts as user-context.
    for f in &prog.functions {
        for inst in f.body.blocks.iter().flat_map(|b| &b.insts) {
            if let Inst::MapWrite { global, keys, .. } | Inst::AggAdd { global, keys, .. } = inst
                && let Some(w) = widths.get_mut(global.index())
            {
                for c in 0..keys.len().min(w.keys.len()) {
                    w.keys[c] = max_string;
                }
            }
        }
    }
    for (w, g) in widths.iter_mut().zip(&prog.globals) {
        for (k, ty) in w.keys.iter_mut().zip(&g.keys) {
            if *ty == Ty::Str && *k == 0 {
                *k = max_string;
            }
        }
    }
    widths
}
