//! How kernel-function probes reach the kernel.
//!
//! - A probe on one BTF-typed function that ftrace can hook runs as an
//!   fentry/fexit trampoline where the kernel has them: no breakpoint trap, and
//!   the arguments come from the trampoline's frame (`bpf_get_func_arg`, which
//!   the verifier inlines). `kprobe.function(...)` always means a kprobe, and
//!   [`Target::fentry`] off (`--kprobes`) keeps every probe a kprobe.
//! - The functions of a wildcard get kprobes. Their programs usually compile to
//!   the same instructions: those become one program, verified once and
//!   attached to every function (through one kprobe.multi link where the
//!   kernel has it: the runtime decides).

use super::{Program, Target};
use crate::ctype::{CType, TypeGraph, TypeId};
use crate::hir::PointKind;
use crate::kernel::KernelInfo;
use crate::mir;

/// Arguments a trampoline hands over in registers (x86-64's six).
const TRAMPOLINE_ARGS: usize = 6;

/// Whether probe `i` of `prog` is one of several kernel functions a single
/// probe point of the script matched (a wildcard such as `vfs_*`). The entry
/// probe that an `@entry` adds to a `.return` (same point, same function) is
/// not another function.
pub fn from_kprobe_wildcard(prog: &mir::Program, i: usize) -> bool {
    let function = |k: &PointKind| match k {
        PointKind::Kprobe { function, .. } => Some(function.clone()),
        _ => None,
    };
    let probe = &prog.probes[i];
    let Some(f) = function(&probe.kind) else {
        return false;
    };
    prog.probes
        .iter()
        .any(|q| q.span == probe.span && function(&q.kind).is_some_and(|g| g != f))
}

/// Whether a return probe on probe `i`'s function comes from `i`'s probe
/// point: `i` is that return probe, or the entry probe an `@entry` added to
/// it. The two name a call's frame alike only if both run as trampolines or
/// neither does.
fn paired_with_return(prog: &mir::Program, i: usize) -> bool {
    let probe = &prog.probes[i];
    let PointKind::Kprobe { function, .. } = &probe.kind else {
        return false;
    };
    prog.probes.iter().any(|q| {
        q.span == probe.span
            && matches!(&q.kind, PointKind::Kprobe { function: g, ret: true, .. } if g == function)
    })
}

/// Whether probe `i` of `prog` runs as an fentry (fexit for `.return`)
/// trampoline rather than a kprobe.
pub(super) fn trampoline(
    prog: &mir::Program,
    i: usize,
    kernel: &dyn KernelInfo,
    target: Target,
) -> bool {
    let probe = &prog.probes[i];
    let PointKind::Kprobe {
        function,
        module: None,
        ret,
    } = &probe.kind
    else {
        return false;
    };
    if !target.fentry
        || probe.name.starts_with("kprobe.")
        || from_kprobe_wildcard(prog, i)
        || !kernel.features().fentry
        || !kernel.traceable(function)
    {
        return false;
    }
    let Ok(types) = kernel.kernel_types() else {
        return false;
    };
    let Some(sig) = types.function(function) else {
        return false;
    };
    sig.params.len() <= TRAMPOLINE_ARGS
        && sig.params.iter().all(|(_, t)| in_one_register(types, *t))
        && (!(*ret || paired_with_return(prog, i))
            || is_void(types, sig.ret)
            || in_one_register(types, sig.ret))
}

/// A value a trampoline passes in one 64-bit slot: an integer, enum or pointer.
fn in_one_register(types: &TypeGraph, ty: TypeId) -> bool {
    matches!(
        types.get(types.strip(ty)),
        CType::Int { .. } | CType::Enum { .. } | CType::Ptr(_)
    )
}

fn is_void(types: &TypeGraph, ty: TypeId) -> bool {
    matches!(types.get(types.strip(ty)), CType::Void)
}

/// Folds each wildcard kprobe program into an earlier one with the same
/// instructions (same probe point, same direction): the earlier one then
/// serves both functions.
pub(super) fn merge_wildcards(prog: &mir::Program, programs: Vec<Program>) -> Vec<Program> {
    let mut kept: Vec<Program> = Vec::with_capacity(programs.len());
    for p in programs {
        let mergeable = !p.trampoline && from_kprobe_wildcard(prog, p.probe);
        let same = |q: &Program| {
            !q.trampoline
                && prog.probes[q.probe].span == prog.probes[p.probe].span
                && returns(prog, q.probe) == returns(prog, p.probe)
                && q.insns == p.insns
        };
        match kept.iter_mut().find(|q| mergeable && same(q)) {
            Some(q) => q.also.push(p.probe),
            None => kept.push(p),
        }
    }
    kept
}

fn returns(prog: &mir::Program, i: usize) -> Option<bool> {
    match &prog.probes[i].kind {
        PointKind::Kprobe { ret, .. } => Some(*ret),
        _ => None,
    }
}
