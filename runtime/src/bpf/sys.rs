//! The raw system calls under the BPF runtime: `bpf(2)` with the prefixes of
//! `union bpf_attr` rstap uses, `perf_event_open(2)` and its ioctls. Every
//! descriptor comes back owned, so dropping it closes it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub const BPF_MAP_CREATE: libc::c_long = 0;
pub const BPF_PROG_LOAD: libc::c_long = 5;
pub const BPF_BTF_LOAD: libc::c_long = 18;
pub const BPF_LINK_CREATE: libc::c_long = 28;

/// `union bpf_attr` as BPF_MAP_CREATE reads it, up to `btf_value_type_id`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct MapCreateAttr {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub inner_map_fd: u32,
    pub numa_node: u32,
    pub map_name: [u8; 16],
    pub map_ifindex: u32,
    pub btf_fd: u32,
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
}

/// `union bpf_attr` as BPF_PROG_LOAD reads it, up to `attach_prog_fd`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct ProgLoadAttr {
    pub prog_type: u32,
    pub insn_cnt: u32,
    pub insns: u64,
    pub license: u64,
    pub log_level: u32,
    pub log_size: u32,
    pub log_buf: u64,
    pub kern_version: u32,
    pub prog_flags: u32,
    pub prog_name: [u8; 16],
    pub prog_ifindex: u32,
    pub expected_attach_type: u32,
    pub prog_btf_fd: u32,
    pub func_info_rec_size: u32,
    pub func_info: u64,
    pub func_info_cnt: u32,
    pub line_info_rec_size: u32,
    pub line_info: u64,
    pub line_info_cnt: u32,
    pub attach_btf_id: u32,
    pub attach_prog_fd: u32,
    pub pad: u32,
}

/// `union bpf_attr` as BPF_BTF_LOAD reads it.
#[repr(C)]
#[derive(Debug, Default)]
pub struct BtfLoadAttr {
    pub btf: u64,
    pub btf_log_buf: u64,
    pub btf_size: u32,
    pub btf_log_size: u32,
    pub btf_log_level: u32,
}

/// `union bpf_attr` as BPF_LINK_CREATE reads it, with the kprobe_multi member.
#[repr(C)]
#[derive(Debug, Default)]
pub struct LinkCreateAttr {
    pub prog_fd: u32,
    pub target_fd: u32,
    pub attach_type: u32,
    pub flags: u32,
    pub multi_flags: u32,
    pub multi_cnt: u32,
    pub multi_syms: u64,
    pub multi_addrs: u64,
    pub multi_cookies: u64,
}

/// `bpf(cmd, attr)` for a command that returns a new descriptor.
pub fn bpf<A>(cmd: libc::c_long, attr: &A) -> io::Result<OwnedFd> {
    #[expect(unsafe_code, reason = "bpf(2) has no wrapper in std or libc")]
    // SAFETY: `attr` is a live, initialised repr(C) prefix of `union bpf_attr` of
    // the size passed; the pointers inside it point at buffers that outlive the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_ref(attr), size_of::<A>()) };
    owned(fd)
}

/// The descriptor a syscall returned, owned; a negative return is its error.
pub fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(io::Error::other)?;
    #[expect(
        unsafe_code,
        reason = "taking ownership of a descriptor a syscall returned"
    )]
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A descriptor as `union bpf_attr` carries it.
pub fn fd_number(fd: BorrowedFd<'_>) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// `name` as the kernel stores object names: at most 15 bytes of
/// `[A-Za-z0-9_.]`, NUL-terminated.
pub fn object_name(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let usable = name
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.');
    for (d, s) in out.iter_mut().zip(usable.take(15)) {
        *d = s;
    }
    out
}

pub const PERF_TYPE_HARDWARE: u32 = 0;
pub const PERF_TYPE_SOFTWARE: u32 = 1;
pub const PERF_TYPE_TRACEPOINT: u32 = 2;

/// `disabled`, `exclude_kernel`, `exclude_hv` and `freq` of the attr's bits.
pub const PERF_ATTR_DISABLED: u64 = 1 << 0;
pub const PERF_ATTR_EXCLUDE_KERNEL: u64 = 1 << 5;
pub const PERF_ATTR_EXCLUDE_HV: u64 = 1 << 6;
pub const PERF_ATTR_FREQ: u64 = 1 << 10;

const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;

/// `struct perf_event_attr`, PERF_ATTR_SIZE_VER1 (72 bytes): enough for the
/// kprobe and uprobe PMUs (`config1` names the function or file, `config2`
/// the offset).
#[repr(C)]
#[derive(Debug, Default)]
pub struct PerfEventAttr {
    pub type_: u32,
    pub size: u32,
    pub config: u64,
    /// `sample_period`, or `sample_freq` with [`PERF_ATTR_FREQ`].
    pub sample: u64,
    pub sample_type: u64,
    pub read_format: u64,
    pub flags: u64,
    pub wakeup_events: u32,
    pub bp_type: u32,
    pub config1: u64,
    pub config2: u64,
}

/// `perf_event_open(attr, pid, cpu, -1, FD_CLOEXEC)`; `attr.size` is filled in.
pub fn perf_event_open(mut attr: PerfEventAttr, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    attr.size = size_of::<PerfEventAttr>() as u32;
    #[expect(
        unsafe_code,
        reason = "perf_event_open(2) has no wrapper in std or libc"
    )]
    // SAFETY: `attr` is a live, initialised perf_event_attr of the size it
    // declares; the strings `config1` may point at outlive the call (callers
    // keep them alive across it).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            std::ptr::from_ref(&attr),
            pid,
            cpu,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    owned(fd)
}

/// Runs program `prog` on every event of perf event `event`, and enables it.
pub fn perf_event_run_bpf(event: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    ioctl(
        event,
        PERF_EVENT_IOC_SET_BPF,
        libc::c_ulong::from(fd_number(prog)),
    )?;
    ioctl(event, PERF_EVENT_IOC_ENABLE, 0)
}

fn ioctl(fd: BorrowedFd<'_>, request: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
    #[expect(unsafe_code, reason = "the perf event ioctls have no safe wrapper")]
    // SAFETY: `fd` is an open perf event descriptor and both requests take an
    // integer argument, not a pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_layouts_match_the_kernel_abi() {
        assert_eq!(size_of::<MapCreateAttr>(), 60);
        assert_eq!(std::mem::offset_of!(MapCreateAttr, map_name), 28);
        assert_eq!(size_of::<ProgLoadAttr>(), 120);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_btf_fd), 72);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, attach_btf_id), 108);
        assert_eq!(std::mem::offset_of!(BtfLoadAttr, btf_size), 16);
        assert_eq!(std::mem::offset_of!(LinkCreateAttr, multi_syms), 24);
        assert_eq!(size_of::<PerfEventAttr>(), 72);
        assert_eq!(std::mem::offset_of!(PerfEventAttr, config1), 56);
    }

    #[test]
    fn object_names_keep_what_the_kernel_accepts() {
        assert_eq!(&object_name("p12")[..4], b"p12\0");
        assert_eq!(&object_name("a-b c")[..4], b"abc\0");
        assert_eq!(object_name("a_very_long_map_name_indeed")[15], 0);
    }
}
