//! Programs rstap loads and links itself with `bpf(2)`, past aya: fentry/fexit
//! trampolines and kprobe.multi programs. aya 0.14 cannot load a kprobe.multi
//! program at all, and its fentry loader would parse the kernel's BTF a second
//! time; here the compiler's own instructions get their map descriptors patched
//! in and the attach target is named by the BTF id rstap already knows.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;

pub const BPF_PROG_TYPE_KPROBE: u32 = 2;
pub const BPF_PROG_TYPE_TRACING: u32 = 26;
pub const BPF_TRACE_FENTRY: u32 = 24;
pub const BPF_TRACE_FEXIT: u32 = 25;
pub const BPF_TRACE_KPROBE_MULTI: u32 = 42;
const BPF_F_KPROBE_MULTI_RETURN: u32 = 1;

/// `BPF_LD | BPF_IMM | BPF_DW` and `BPF_PSEUDO_MAP_FD`: an `ld_imm64` whose
/// immediate names a map.
const LD_IMM64: u8 = 0x18;
const PSEUDO_MAP_FD: u8 = 1;

/// The verifier's log, when a load fails, is kept up to this many bytes.
const LOG_BYTES: usize = 1 << 20;

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

/// What to load: the program type, the attach type the kernel checks it
/// against, and (for trampolines) the BTF id of the traced function.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    pub prog_type: u32,
    pub attach_type: u32,
    pub btf_id: u32,
}

/// The kernel refused a program: why, and the verifier's log.
#[derive(Debug)]
pub struct Refused {
    pub error: io::Error,
    pub log: String,
}

/// Loads `insns` (encoded instructions whose map loads carry an index into
/// `maps`) as a GPL program named `name`. When the kernel refuses it, the load
/// is repeated with the verifier's log on, so the refusal can be shown.
pub fn load(
    name: &str,
    kind: Kind,
    insns: &[[u8; 8]],
    maps: &[BorrowedFd<'_>],
) -> Result<OwnedFd, Refused> {
    let code = with_map_fds(insns, maps).map_err(|error| Refused {
        error,
        log: String::new(),
    })?;
    let license = c"GPL";
    let mut prog_name = [0u8; 16];
    for (d, s) in prog_name.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    let mut attr = ProgLoadAttr {
        prog_type: kind.prog_type,
        insn_cnt: u32::try_from(code.len()).unwrap_or(u32::MAX),
        insns: code.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name,
        expected_attach_type: kind.attach_type,
        attach_btf_id: kind.btf_id,
        ..ProgLoadAttr::default()
    };
    match bpf(BPF_PROG_LOAD, &attr) {
        Ok(fd) => Ok(fd),
        Err(error) => {
            let mut log = vec![0u8; LOG_BYTES];
            attr.log_level = 1;
            attr.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
            attr.log_buf = log.as_mut_ptr() as u64;
            if let Ok(fd) = bpf(BPF_PROG_LOAD, &attr) {
                return Ok(fd);
            }
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err(Refused {
                error,
                log: String::from_utf8_lossy(&log[..end]).into_owned(),
            })
        }
    }
}

/// The instructions as the kernel reads them, each map index replaced by the
/// map's descriptor.
fn with_map_fds(insns: &[[u8; 8]], maps: &[BorrowedFd<'_>]) -> io::Result<Vec<[u8; 8]>> {
    let mut code = insns.to_vec();
    for ins in &mut code {
        if ins[0] == LD_IMM64 && ins[1] >> 4 == PSEUDO_MAP_FD {
            let index = u32::from_le_bytes([ins[4], ins[5], ins[6], ins[7]]);
            let fd = maps.get(index as usize).ok_or_else(|| {
                io::Error::other(format!(
                    "the program names map {index}, which was not created"
                ))
            })?;
            ins[4..8].copy_from_slice(&fd.as_raw_fd().to_le_bytes());
        }
    }
    Ok(code)
}

/// Links a loaded kprobe.multi program to every function of `functions`, at
/// their entry or (`ret`) their return.
pub fn link_kprobe_multi(prog: &OwnedFd, functions: &[&str], ret: bool) -> io::Result<OwnedFd> {
    let names: Vec<CString> = functions
        .iter()
        .map(|f| CString::new(*f).map_err(io::Error::other))
        .collect::<io::Result<_>>()?;
    let pointers: Vec<u64> = names.iter().map(|n| n.as_ptr() as u64).collect();
    let attr = LinkCreateAttr {
        prog_fd: fd_number(prog),
        attach_type: BPF_TRACE_KPROBE_MULTI,
        multi_flags: if ret { BPF_F_KPROBE_MULTI_RETURN } else { 0 },
        multi_cnt: u32::try_from(pointers.len()).unwrap_or(u32::MAX),
        multi_syms: pointers.as_ptr() as u64,
        ..LinkCreateAttr::default()
    };
    bpf(BPF_LINK_CREATE, &attr)
}

/// A link of `prog` with no target beyond what it was loaded for (an
/// fentry/fexit program: the function it was loaded for).
pub fn link_create(prog: &OwnedFd, attach_type: u32) -> io::Result<OwnedFd> {
    let attr = LinkCreateAttr {
        prog_fd: fd_number(prog),
        attach_type,
        ..LinkCreateAttr::default()
    };
    bpf(BPF_LINK_CREATE, &attr)
}

fn fd_number(fd: &OwnedFd) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// `struct perf_event_attr` up to `config2` (PERF_ATTR_SIZE_VER1, 72 bytes):
/// what feature checks and uprobes with a semaphore need.
#[repr(C)]
#[derive(Debug, Default)]
pub struct PerfEventAttr {
    pub kind: u32,
    pub size: u32,
    pub config: u64,
    pub sample_period: u64,
    pub sample_type: u64,
    pub read_format: u64,
    pub flags: u64,
    pub wakeup_events: u32,
    pub bp_type: u32,
    pub config1: u64,
    pub config2: u64,
}

impl PerfEventAttr {
    /// The attribute's size, as the kernel wants it in `size`.
    pub const SIZE: u32 = size_of::<PerfEventAttr>() as u32;
}

const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// `perf_event_open(attr, pid, cpu, no group, CLOEXEC)`.
pub fn perf_event_open(attr: &PerfEventAttr, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    let group: libc::c_int = -1;
    #[expect(
        unsafe_code,
        reason = "perf_event_open(2) has no wrapper in std or libc"
    )]
    // SAFETY: `attr` is a live, initialised perf_event_attr of the size it
    // declares; what its config fields point at outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            std::ptr::from_ref(attr),
            pid,
            cpu,
            group,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    owned(fd)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_event_attr_is_the_kernels_version_1_layout() {
        assert_eq!(PerfEventAttr::SIZE, 72);
    }

    #[test]
    fn attr_layouts_match_the_kernel_abi() {
        assert_eq!(size_of::<ProgLoadAttr>(), 120);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, attach_btf_id), 108);
        assert_eq!(std::mem::offset_of!(LinkCreateAttr, multi_syms), 24);
    }

    #[test]
    fn map_indexes_become_descriptors() {
        let file = std::fs::File::open("/dev/null").expect("/dev/null opens");
        use std::os::fd::AsFd;
        let fd = file.as_fd();
        let ld_map = [LD_IMM64, 1 | (PSEUDO_MAP_FD << 4), 0, 0, 0, 0, 0, 0];
        let plain_ld = [LD_IMM64, 1, 0, 0, 0, 0, 0, 0];
        let code = with_map_fds(&[ld_map, [0; 8], plain_ld, [0; 8]], &[fd]).expect("map 0 exists");
        assert_eq!(code[0][4..8], fd.as_raw_fd().to_le_bytes());
        assert_eq!(code[2], plain_ld, "a plain 64-bit constant is left alone");
        let missing = [LD_IMM64, PSEUDO_MAP_FD << 4, 0, 0, 3, 0, 0, 0];
        assert!(with_map_fds(&[missing, [0; 8]], &[fd]).is_err());
    }
}
