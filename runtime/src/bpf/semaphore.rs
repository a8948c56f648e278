//! Uprobes on USDT marks that have a semaphore. A program guards an expensive
//! mark's argument set-up with `if (provider_name_SEMAPHORE)`; the kernel
//! counts the probes attached there in the traced process's memory when the
//! uprobe is created with a `ref_ctr_offset` (Linux 4.20+), for processes that
//! are running and those that start later. aya 0.14's uprobe attach has no
//! way to pass it, so this opens the uprobe perf event itself.

use super::direct::{PerfEventAttr, perf_event_open};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe";
/// `_IOW('$', 8, __u32)` and `_IO('$', 0)`.
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;

/// Where the uprobe PMU's format puts `ref_ctr_offset` in `config`.
fn ref_ctr_shift() -> io::Result<u32> {
    let format = std::fs::read_to_string(format!("{UPROBE_PMU}/format/ref_ctr_offset"))
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                "this kernel's uprobes cannot count USDT semaphores (no ref_ctr_offset: Linux 4.20 or later has it)",
            )
        })?;
    format
        .trim()
        .strip_prefix("config:")
        .and_then(|bits| bits.split('-').next())
        .and_then(|lo| lo.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected ref_ctr_offset format `{format}`")))
}

/// A uprobe at `offset` of `binary` for every process, counting the semaphore
/// at `ref_ctr_offset`, running `program`. Closing the result detaches it.
pub fn attach(
    program: BorrowedFd<'_>,
    binary: &Path,
    offset: u64,
    ref_ctr_offset: u64,
) -> io::Result<OwnedFd> {
    let kind: u32 = std::fs::read_to_string(format!("{UPROBE_PMU}/type"))?
        .trim()
        .parse()
        .map_err(io::Error::other)?;
    let path = CString::new(binary.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let attr = PerfEventAttr {
        kind,
        size: PerfEventAttr::SIZE,
        config: ref_ctr_offset << ref_ctr_shift()?,
        config1: path.as_ptr() as u64,
        config2: offset,
        ..PerfEventAttr::default()
    };
    // Every process (pid -1) through CPU 0's event: a uprobe fires on any CPU.
    let event = perf_event_open(&attr, -1, 0)?;
    for (request, arg) in [
        (PERF_EVENT_IOC_SET_BPF, program.as_raw_fd()),
        (PERF_EVENT_IOC_ENABLE, 0),
    ] {
        #[expect(unsafe_code, reason = "perf event ioctls have no wrapper")]
        // SAFETY: `event` is an open perf event; both requests take an int.
        let rc = unsafe { libc::ioctl(event.as_raw_fd(), request, arg) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(event)
}
