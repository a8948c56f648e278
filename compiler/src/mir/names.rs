//! What `pp()`, `ppfunc()`, `probefunc()` and `probemod()` say about a probe:
//! all known once the probe point is resolved, so both the BPF backend (as
//! string constants) and the user-space engine answer them from here.

use super::Probe;
use crate::hir::PointKind;

impl Probe {
    /// `pn()`: the probe point as the script names it.
    pub fn pn(&self) -> &str {
        &self.written
    }

    /// `pp()`: the resolved probe point, e.g. `kernel.trace("sched:sched_switch")`.
    pub fn pp(&self) -> &str {
        &self.name
    }

    /// `ppfunc()`: the function named in `pp()` — the text after `function("`
    /// (else `statement("`) up to `@` or `"` — or "" when it names none.
    pub fn ppfunc(&self) -> &str {
        ["function(\"", "statement(\""]
            .iter()
            .find_map(|open| {
                let rest = &self.name[self.name.find(open)? + open.len()..];
                let end = rest.find(['@', '"']).unwrap_or(rest.len());
                Some(&rest[..end])
            })
            .unwrap_or("")
    }

    /// `probefunc()`: the function the probe is in. stap looks up the probed
    /// address; kprobes and uprobes sit at their function's entry, which is the
    /// function `pp()` names. A sampling probe's is the function each sample
    /// interrupted, named after the event (see `backend::bpf::codegen::sampled`):
    /// not a constant. Other probes have no probed function here: "".
    pub fn probefunc(&self) -> &str {
        match &self.kind {
            PointKind::Kprobe { function, .. } => function,
            PointKind::Uprobe { symbol, .. } => symbol,
            _ => "",
        }
    }

    /// Whether it samples (`timer.profile`, `perf.*`): each event interrupted
    /// some function, user or kernel.
    pub fn samples(&self) -> bool {
        matches!(self.kind, PointKind::Profile | PointKind::Perf { .. })
    }

    /// `probemod()`: the module of a kernel-function probe (`kernel` for
    /// vmlinux); `None` where stap cannot determine it, which is a runtime error.
    pub fn probemod(&self) -> Option<&str> {
        match &self.kind {
            PointKind::Kprobe { module, .. } => Some(module.as_deref().unwrap_or("kernel")),
            _ => None,
        }
    }
}

/// The runtime error of `probemod()` where [`Probe::probemod`] is `None`.
pub const NO_MODULE: &str = "Cannot determine kernel module name";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mir::{Body, Context};
    use rstap_grammar::Span;

    fn probe(kind: PointKind, name: &str) -> Probe {
        Probe {
            kind,
            name: name.into(),
            written: name.into(),
            context: Context::Kernel,
            body: Body::default(),
            span: Span::default(),
        }
    }

    #[test]
    fn names_come_from_the_resolved_point() {
        let tp = probe(
            PointKind::Tracepoint(crate::kernel::TracepointId {
                system: "sched".into(),
                name: "sched_switch".into(),
            }),
            "kernel.trace(\"sched:sched_switch\")",
        );
        assert_eq!(
            (tp.pp(), tp.ppfunc(), tp.probefunc(), tp.probemod()),
            ("kernel.trace(\"sched:sched_switch\")", "", "", None)
        );
        let kp = probe(
            PointKind::Kprobe {
                function: "vfs_read".into(),
                module: None,
                ret: true,
            },
            "kernel.function(\"vfs_read\").return",
        );
        assert_eq!(
            (kp.ppfunc(), kp.probefunc(), kp.probemod()),
            ("vfs_read", "vfs_read", Some("kernel"))
        );
        let m = probe(
            PointKind::Kprobe {
                function: "ext4_sync_fs".into(),
                module: Some("ext4".into()),
                ret: false,
            },
            "module(\"ext4\").function(\"ext4_sync_fs@fs/ext4/super.c:6200\")",
        );
        assert_eq!((m.ppfunc(), m.probemod()), ("ext4_sync_fs", Some("ext4")));
    }
}
