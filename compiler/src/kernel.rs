//! Kernel facts behind a trait: the compiler asks, the runtime answers from the
//! live system (tracefs, BTF, kallsyms), and compiler tests answer from fixture
//! files. Nothing here makes a syscall.

use crate::ctype::TypeGraph;
use crate::elf::Binary;
use crate::tracepoint::TracepointFormat;
use std::fmt;
use std::sync::Arc;

/// One tracepoint, `system:name` (`sched:sched_switch`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TracepointId {
    pub system: String,
    pub name: String,
}

impl fmt::Display for TracepointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.system, self.name)
    }
}

/// A probe-able kernel function; `module` is `None` for vmlinux itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelSymbol {
    pub name: String,
    pub module: Option<String>,
}

/// Which probe mechanisms the kernel offers. The live implementation says how
/// each is detected (runtime `kernel::features`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub kprobes: bool,
    pub kretprobes: bool,
    pub kprobe_multi: bool,
    pub fentry: bool,
    pub uprobes: bool,
    pub perf_sw: bool,
    pub perf_hw: bool,
}

impl Features {
    /// Every mechanism present: what a fixture kernel claims unless told otherwise.
    pub const ALL: Features = Features {
        kprobes: true,
        kretprobes: true,
        kprobe_multi: true,
        fentry: true,
        uprobes: true,
        perf_sw: true,
        perf_hw: true,
    };
}

/// Why a kernel fact could not be had: one sentence a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelError(pub String);

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the compiler may ask about the kernel it compiles for.
pub trait KernelInfo {
    /// Every tracepoint the kernel offers, sorted.
    fn tracepoints(&self) -> Result<Vec<TracepointId>, KernelError>;

    /// The record layout of one tracepoint.
    fn tracepoint_format(&self, tp: &TracepointId) -> Result<TracepointFormat, KernelError>;

    /// Probe-able kernel text symbols (kallsyms `t`/`T`, minus what the kernel
    /// says cannot be probed), sorted by name, deduplicated.
    fn kernel_functions(&self) -> Result<Vec<KernelSymbol>, KernelError>;

    /// The kernel's BTF type graph (vmlinux), parsed once.
    fn kernel_types(&self) -> Result<&TypeGraph, KernelError>;

    /// Which probe mechanisms this kernel supports, detected without side
    /// effects that outlive the call.
    fn features(&self) -> Features;

    /// Whether ftrace can hook vmlinux function `function` (tracefs'
    /// `available_filter_functions` lists it): fentry/fexit trampolines and
    /// kprobe.multi links need that, plain kprobes do not.
    fn traceable(&self, function: &str) -> bool {
        let _ = function;
        true
    }

    /// Whether BPF programs may use `may_goto` (Linux 6.9): the verifier then
    /// accepts a loop after one pass. Asked only when a handler has `foreach`
    /// or searches a string.
    fn may_goto(&self) -> bool {
        true
    }

    /// A user binary's ELF facts. `path` is resolved as a shell does: with a `/`
    /// it is used as is (relative to the working directory), else searched in
    /// `$PATH`. Errors say what was tried.
    fn user_binary(&self, path: &str) -> Result<Arc<Binary>, KernelError>;
}
