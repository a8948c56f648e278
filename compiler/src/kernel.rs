//! Kernel facts behind a trait: the compiler asks, the runtime answers from the
//! live system (tracefs, BTF, kallsyms), and compiler tests answer from fixture
//! files. Nothing here makes a syscall.

use crate::tracepoint::TracepointFormat;
use std::fmt;

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
}
