//! Pass 5's attaching: every compiled program to its probe points, by the
//! mechanism the compiler chose and the kernel offers.
//!
//! - fentry/fexit programs (the compiler chose them: their code reads the
//!   trampoline's frame) are loaded and linked as such ([`crate::bpf::prog`]).
//! - A program serving several functions of a wildcard gets one kprobe.multi
//!   link where the kernel has kprobe.multi and ftrace can hook every one of
//!   them; else it is loaded once and attached to each function as a kprobe.
//! - Functions of a wildcard the kernel will not probe (not traceable, inlined
//!   away) are skipped with one warning, as stap and bpftrace do; a wildcard
//!   with nothing attachable fails.

use crate::bpf::prog::{self, BPF_PROG_TYPE_KPROBE, BPF_PROG_TYPE_TRACING};
use crate::bpf::{BpfObject, DirectLink, LoadError, UprobeLocation};
use crate::probes::{StartError, fail};
use rstap_compiler::backend::bpf::codegen::{Compiled, Program, from_kprobe_wildcard};
use rstap_compiler::hir::PointKind;
use rstap_compiler::kernel::KernelInfo;
use rstap_compiler::mir;
use std::collections::HashSet;
use std::path::Path;

/// The object's name for the program of `p`.
pub fn program_name(p: &Program) -> String {
    format!("p{}", p.probe)
}

/// How one program reaches the kernel.
enum Route<'a> {
    /// As its section says, attached to each probe point.
    Object,
    /// An fentry/fexit trampoline on `function`.
    Trampoline { function: &'a str, ret: bool },
    /// One kprobe.multi link to every function ftrace can hook; the probes
    /// of the others (`rest`) get kprobes.
    KprobeMulti {
        functions: Vec<&'a str>,
        rest: Vec<usize>,
        ret: bool,
    },
}

/// The probes program `p` serves.
fn served(p: &Program) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(p.probe).chain(p.also.iter().copied())
}

fn route<'a>(prog: &'a mir::Program, p: &Program, kernel: &dyn KernelInfo) -> Route<'a> {
    let PointKind::Kprobe { function, ret, .. } = &prog.probes[p.probe].kind else {
        return Route::Object;
    };
    if p.trampoline {
        return Route::Trampoline {
            function,
            ret: *ret,
        };
    }
    if p.also.is_empty() || !kernel.features().kprobe_multi {
        return Route::Object;
    }
    let (mut functions, mut rest) = (Vec::new(), Vec::new());
    for i in served(p) {
        match &prog.probes[i].kind {
            PointKind::Kprobe {
                function,
                module: None,
                ..
            } if kernel.traceable(function) => functions.push(function.as_str()),
            _ => rest.push(i),
        }
    }
    if functions.len() < 2 {
        return Route::Object;
    }
    Route::KprobeMulti {
        functions,
        rest,
        ret: *ret,
    }
}

/// The programs not to load as their sections say: they are loaded directly.
pub fn loaded_directly(
    prog: &mir::Program,
    compiled: &Compiled,
    kernel: &dyn KernelInfo,
) -> HashSet<String> {
    compiled
        .programs
        .iter()
        .filter(|p| !matches!(route(prog, p, kernel), Route::Object))
        .map(program_name)
        .collect()
}

/// What was attached, for `-v`: how many probe points by each mechanism.
#[derive(Debug, Default)]
pub struct Attached {
    kinds: Vec<(&'static str, usize)>,
    /// Functions of wildcards that could not be probed, with why.
    pub skipped: Vec<(String, String)>,
}

impl Attached {
    fn count(&mut self, kind: &'static str, n: usize) {
        match self.kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, m)) => *m += n,
            None => self.kinds.push((kind, n)),
        }
    }

    /// Probe points attached.
    pub fn total(&self) -> usize {
        self.kinds.iter().map(|(_, n)| n).sum()
    }

    /// `2 kprobes, 1 fentry`.
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = self
            .kinds
            .iter()
            .map(|(k, n)| {
                let plural = if *n == 1 || k.ends_with("multi") {
                    ""
                } else {
                    "s"
                };
                format!("{n} {k}{plural}")
            })
            .collect();
        kinds.join(", ")
    }
}

/// Loads the directly loaded programs and attaches every program of
/// `compiled`. `refused` turns a load failure into the script's diagnostic.
pub fn attach_all(
    object: &mut BpfObject,
    prog: &mir::Program,
    compiled: &Compiled,
    kernel: &dyn KernelInfo,
    refused: &dyn Fn(LoadError) -> StartError,
) -> Result<Attached, StartError> {
    let mut attached = Attached::default();
    for p in &compiled.programs {
        let name = program_name(p);
        match route(prog, p, kernel) {
            Route::Trampoline { function, ret } => {
                let types = kernel.kernel_types().map_err(|e| fail(e.0))?;
                let btf_id = types.function_id(function).map_or(0, |t| t.0);
                let kind = prog::Kind {
                    prog_type: BPF_PROG_TYPE_TRACING,
                    attach_type: if ret {
                        prog::BPF_TRACE_FEXIT
                    } else {
                        prog::BPF_TRACE_FENTRY
                    },
                    btf_id,
                };
                object.load_direct(&name, kind).map_err(refused)?;
                object
                    .link_direct(&name, DirectLink::Trampoline { function, ret })
                    .map_err(|e| fail(e.to_string()))?;
                attached.count(if ret { "fexit" } else { "fentry" }, 1);
            }
            Route::KprobeMulti {
                functions,
                rest,
                ret,
            } => {
                let kind = prog::Kind {
                    prog_type: BPF_PROG_TYPE_KPROBE,
                    attach_type: prog::BPF_TRACE_KPROBE_MULTI,
                    btf_id: 0,
                };
                let how = DirectLink::KprobeMulti {
                    functions: &functions,
                    ret,
                };
                let linked = object
                    .load_direct(&name, kind)
                    .map_err(|e| e.to_string())
                    .and_then(|()| object.link_direct(&name, how).map_err(|e| e.to_string()));
                let kprobes: Vec<usize> = if linked.is_ok() {
                    let kind = if ret {
                        "kretprobes via kprobe.multi"
                    } else {
                        "kprobes via kprobe.multi"
                    };
                    attached.count(kind, functions.len());
                    rest
                } else {
                    // One function the fprobe layer refuses fails the whole
                    // link: fall back to a kprobe on each function.
                    served(p).collect()
                };
                if !kprobes.is_empty() {
                    object.load_now(&name).map_err(refused)?;
                    each_point(object, prog, kprobes, &name, &mut attached)?;
                }
            }
            Route::Object => each_point(object, prog, served(p), &name, &mut attached)?,
        }
    }
    if let Some((_, why)) = attached.skipped.first()
        && attached.total() == 0
    {
        return Err(fail(why.clone()));
    }
    Ok(attached)
}

/// Attaches program `name` to the probe point of each of `probes`.
fn each_point(
    object: &mut BpfObject,
    prog: &mir::Program,
    probes: impl IntoIterator<Item = usize>,
    name: &str,
    attached: &mut Attached,
) -> Result<(), StartError> {
    for i in probes {
        let probe = &prog.probes[i];
        let (result, kind) = match &probe.kind {
            PointKind::Tracepoint(tp) => (
                object.attach_tracepoint(name, &tp.system, &tp.name),
                "tracepoint",
            ),
            PointKind::Kprobe { function, ret, .. } => (
                object.attach_kprobe(name, function, 0),
                if *ret { "kretprobe" } else { "kprobe" },
            ),
            PointKind::Uprobe {
                binary,
                offset,
                ret,
                ..
            } => (
                object.attach_uprobe(
                    name,
                    Path::new(binary),
                    UprobeLocation::FileOffset(*offset),
                    None,
                ),
                if *ret { "uretprobe" } else { "uprobe" },
            ),
            _ => (Ok(()), "other probe"),
        };
        match result {
            Ok(()) => attached.count(kind, 1),
            // One function of a wildcard the kernel will not probe (not
            // traceable, inlined away): skip it, as stap and bpftrace do.
            Err(e) if from_kprobe_wildcard(prog, i) => {
                attached.skipped.push((probe.name.clone(), e.to_string()));
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    Ok(())
}
