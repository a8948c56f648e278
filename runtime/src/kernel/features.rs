//! Which probe mechanisms the running kernel offers. Every check leaves nothing
//! behind: files are only read (tracefs is looked at only if already mounted),
//! and probe programs, links and perf events are closed before returning.
//!
//! | feature | detected by |
//! |---|---|
//! | kprobes | tracefs `kprobe_events` exists, or the `kprobe` PMU (/sys/bus/event_source/devices/kprobe) |
//! | kretprobes | kprobes, and the PMU has `format/retprobe` or tracefs' README documents `r[maxactive]` probes |
//! | kprobe_multi | BTF knows `BPF_TRACE_KPROBE_MULTI`, a kprobe program of that attach type loads, and creating a link with no symbols fails with EINVAL (the kernel's fprobe code ran and judged the arguments) rather than EOPNOTSUPP (built without CONFIG_FPROBE) |
//! | fentry | BTF is present, and a two-instruction `BPF_PROG_TYPE_TRACING` program loads as fentry of `bpf_fentry_test1` (else `vfs_read`) and attaches; both are closed at once |
//! | uprobes | tracefs `uprobe_events` exists, or the `uprobe` PMU |
//! | perf_sw | perf_event_open of PERF_COUNT_SW_CPU_CLOCK on this process succeeds |
//! | perf_hw | perf_event_open of PERF_COUNT_HW_CPU_CYCLES on this process succeeds (a VM without a virtual PMU answers ENOENT) |
//! | may_goto (asked apart, only for `foreach` in kernel context) | a socket filter whose first instruction is `may_goto` loads |
//!
//! Kernel configuration (/proc/config.gz) is not used: the 6.18 test VM has
//! CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y yet refuses fentry programs, so only
//! asking the kernel tells the truth.

use crate::bpf::prog::{
    BPF_PROG_TYPE_KPROBE, BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, BPF_TRACE_KPROBE_MULTI,
    link_create,
};
use crate::bpf::sys::{self, BPF_PROG_LOAD, PerfEventAttr, ProgLoadAttr, bpf};
use rstap_compiler::ctype::TypeGraph;
use rstap_compiler::kernel::Features;
use std::os::fd::OwnedFd;
use std::path::Path;

const PMU_DIR: &str = "/sys/bus/event_source/devices";

/// `tracefs` is the mounted tracefs, if any; `btf` the kernel's types, if any.
pub fn detect(tracefs: Option<&Path>, btf: Option<&TypeGraph>) -> Features {
    let pmu = |name: &str| Path::new(PMU_DIR).join(name).join("type").exists();
    let in_tracefs = |file: &str| tracefs.is_some_and(|t| t.join(file).exists());
    let kprobes = in_tracefs("kprobe_events") || pmu("kprobe");
    let kretprobes = kprobes
        && (Path::new(PMU_DIR).join("kprobe/format/retprobe").exists()
            || tracefs.is_some_and(|t| {
                std::fs::read_to_string(t.join("README")).is_ok_and(|r| r.contains("r[maxactive]"))
            }));
    Features {
        kprobes,
        kretprobes,
        kprobe_multi: btf.is_some_and(kprobe_multi),
        fentry: btf.is_some_and(fentry),
        uprobes: in_tracefs("uprobe_events") || pmu("uprobe"),
        perf_sw: perf_event_opens(sys::PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK),
        perf_hw: perf_event_opens(sys::PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES),
    }
}

const PERF_COUNT_HW_CPU_CYCLES: u64 = 0;
const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;

fn fentry(btf: &TypeGraph) -> bool {
    let Some(target) = ["bpf_fentry_test1", "vfs_read"]
        .iter()
        .find_map(|f| btf.function_id(f))
    else {
        return false;
    };
    let Ok(prog) = load_trivial_prog(BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, target.0) else {
        return false;
    };
    link_create(&prog, BPF_TRACE_FENTRY).is_ok()
}

fn kprobe_multi(btf: &TypeGraph) -> bool {
    if btf.enumerator("BPF_TRACE_KPROBE_MULTI").is_none() {
        return false;
    }
    let Ok(prog) = load_trivial_prog(BPF_PROG_TYPE_KPROBE, BPF_TRACE_KPROBE_MULTI, 0) else {
        return false;
    };
    matches!(link_create(&prog, BPF_TRACE_KPROBE_MULTI), Err(e) if e.raw_os_error() == Some(libc::EINVAL))
}

/// Whether a socket filter with a `may_goto` (opcode 0xe5) loads: the
/// verifier knows the instruction from Linux 6.9 on.
pub fn may_goto() -> bool {
    const PROG: [u8; 24] = [
        0xe5, 0, 0, 0, 0, 0, 0, 0, // may_goto +0
        0xb7, 0, 0, 0, 0, 0, 0, 0, // r0 = 0
        0x95, 0, 0, 0, 0, 0, 0, 0, // exit
    ];
    const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
    let license = c"GPL";
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
        insn_cnt: 3,
        insns: PROG.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..ProgLoadAttr::default()
    };
    bpf(BPF_PROG_LOAD, &attr).is_ok()
}

/// `r0 = 0; exit` (opcodes 0xb7 `mov64 imm`, 0x95 `exit`; all else zero).
const TRIVIAL_PROG: [u8; 16] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];

fn load_trivial_prog(prog_type: u32, attach_type: u32, btf_id: u32) -> std::io::Result<OwnedFd> {
    let license = c"GPL";
    let attr = ProgLoadAttr {
        prog_type,
        insn_cnt: 2,
        insns: TRIVIAL_PROG.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: attach_type,
        attach_btf_id: btf_id,
        ..ProgLoadAttr::default()
    };
    bpf(BPF_PROG_LOAD, &attr)
}

fn perf_event_opens(type_: u32, config: u64) -> bool {
    let attr = PerfEventAttr {
        type_,
        config,
        flags: sys::PERF_ATTR_DISABLED | sys::PERF_ATTR_EXCLUDE_KERNEL | sys::PERF_ATTR_EXCLUDE_HV,
        ..PerfEventAttr::default()
    };
    // This process, any CPU: disabled, counting nothing, closed at once.
    sys::perf_event_open(attr, 0, -1).is_ok()
}
