//! Loading programs and linking them: the compiler's instructions get their
//! map descriptors patched in, the callbacks they use appended (with the BTF
//! the kernel wants for them), and the verifier's log kept when it refuses.
//! fentry/fexit programs name their function by the BTF id rstap already
//! knows; kprobe.multi programs are linked to many functions at once.

use super::sys::{
    BPF_BTF_LOAD, BPF_LINK_CREATE, BPF_PROG_LOAD, BtfLoadAttr, LinkCreateAttr, ProgLoadAttr, bpf,
    fd_number, object_name,
};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

pub const BPF_PROG_TYPE_KPROBE: u32 = 2;
pub const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
pub const BPF_PROG_TYPE_PERF_EVENT: u32 = 7;
pub const BPF_PROG_TYPE_TRACING: u32 = 26;
pub const BPF_TRACE_FENTRY: u32 = 24;
pub const BPF_TRACE_FEXIT: u32 = 25;
pub const BPF_TRACE_KPROBE_MULTI: u32 = 42;
const BPF_F_KPROBE_MULTI_RETURN: u32 = 1;

/// `BPF_LD | BPF_IMM | BPF_DW`, and its `src` values `BPF_PSEUDO_MAP_FD` (the
/// immediate names a map), `BPF_PSEUDO_MAP_VALUE` (it names a map whose value
/// the instruction addresses) and `BPF_PSEUDO_FUNC` (a function of the program).
const LD_IMM64: u8 = 0x18;
const PSEUDO_MAP_FD: u8 = 1;
const PSEUDO_MAP_VALUE: u8 = 2;
const PSEUDO_FUNC: u8 = 4;

/// The verifier's log, when a load fails, is kept up to this many bytes.
const LOG_BYTES: usize = 1 << 20;

/// `log_level` bits: the verifier's walk of the instructions, and its
/// statistics (instructions processed, states, time).
const LOG_INSNS: u32 = 1;
const LOG_STATS: u32 = 4;

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
/// `maps`) as a GPL program named `name`; `funcs` is the BTF and func_info
/// of a program with callbacks. When the kernel refuses it, the load is
/// repeated with the verifier's log on, so the refusal can be shown. With
/// `log` (`-vv`), the program is verified with the log on from the start and
/// the log of the accepted program, with the verifier's statistics, lands there.
pub fn load(
    name: &str,
    kind: Kind,
    insns: &[[u8; 8]],
    maps: &[BorrowedFd<'_>],
    funcs: Option<&Funcs>,
    log: Option<&mut String>,
) -> Result<OwnedFd, Refused> {
    let code = with_map_fds(insns, maps).map_err(|error| Refused {
        error,
        log: String::new(),
    })?;
    let license = c"GPL";
    let mut attr = ProgLoadAttr {
        prog_type: kind.prog_type,
        insn_cnt: u32::try_from(code.len()).unwrap_or(u32::MAX),
        insns: code.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: object_name(name),
        expected_attach_type: kind.attach_type,
        attach_btf_id: kind.btf_id,
        ..ProgLoadAttr::default()
    };
    if let Some(f) = funcs {
        attr.prog_btf_fd = fd_number(f.btf.as_fd());
        attr.func_info_rec_size = 8;
        attr.func_info = f.info.as_ptr() as u64;
        attr.func_info_cnt = u32::try_from(f.info.len()).unwrap_or(u32::MAX);
    }
    if let Some(kept) = log {
        // A log longer than the buffer fails the load (ENOSPC): then the
        // statistics alone.
        for level in [LOG_INSNS | LOG_STATS, LOG_STATS] {
            let mut buf = vec![0u8; LOG_BYTES];
            attr.log_level = level;
            attr.log_size = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            attr.log_buf = buf.as_mut_ptr() as u64;
            if let Ok(fd) = bpf(BPF_PROG_LOAD, &attr) {
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                *kept = String::from_utf8_lossy(&buf[..end]).into_owned();
                return Ok(fd);
            }
        }
        attr.log_level = 0;
        attr.log_size = 0;
        attr.log_buf = 0;
    }
    match bpf(BPF_PROG_LOAD, &attr) {
        Ok(fd) => Ok(fd),
        Err(error) => {
            let mut log = vec![0u8; LOG_BYTES];
            attr.log_level = LOG_INSNS;
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

/// The BTF of a program's functions, loaded, and where each starts.
#[derive(Debug)]
pub struct Funcs {
    btf: OwnedFd,
    /// `struct bpf_func_info`: the first instruction and the BTF id.
    info: Vec<[u32; 2]>,
}

/// A program with the callbacks it uses appended.
#[derive(Debug)]
pub struct Assembled {
    pub code: Vec<[u8; 8]>,
    /// Each appended callback's index and first instruction, in order.
    pub placed: Vec<(usize, u32)>,
}

/// A program and the callbacks it uses, as one instruction stream: each used
/// callback appended once, and each `ld_imm64` of a callback (whose immediate
/// is the callback's index) pointed at it.
pub fn assemble(program: &[[u8; 8]], callbacks: &[Vec<[u8; 8]>]) -> io::Result<Assembled> {
    let mut code = program.to_vec();
    // (callback index, first instruction)
    let mut placed: Vec<(usize, u32)> = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let ins = code[i];
        if ins[0] == LD_IMM64 && ins[1] >> 4 == PSEUDO_FUNC {
            let index = u32::from_le_bytes([ins[4], ins[5], ins[6], ins[7]]) as usize;
            let start = match placed.iter().find(|(c, _)| *c == index) {
                Some((_, start)) => *start,
                None => {
                    let body = callbacks.get(index).ok_or_else(|| {
                        io::Error::other(format!(
                            "the program calls back into function {index}, which it does not have"
                        ))
                    })?;
                    let start = u32::try_from(code.len()).map_err(io::Error::other)?;
                    code.extend_from_slice(body);
                    placed.push((index, start));
                    start
                }
            };
            let relative = i64::from(start) - i64::try_from(i + 1).map_err(io::Error::other)?;
            let relative = i32::try_from(relative).map_err(io::Error::other)?;
            code[i][4..8].copy_from_slice(&relative.to_le_bytes());
            i += 2;
            continue;
        }
        i += if ins[0] == LD_IMM64 { 2 } else { 1 };
    }
    Ok(Assembled { code, placed })
}

/// Loads `btf` (a `.BTF` section: the program's function, then each
/// callback's, as ids 5, 6, ...) and pairs it with where each function starts.
pub fn funcs(btf: &[u8], starts: &[u32]) -> io::Result<Funcs> {
    let attr = BtfLoadAttr {
        btf: btf.as_ptr() as u64,
        btf_size: u32::try_from(btf.len()).map_err(io::Error::other)?,
        ..BtfLoadAttr::default()
    };
    let fd = bpf(BPF_BTF_LOAD, &attr)?;
    let info = std::iter::once(0)
        .chain(starts.iter().copied())
        .zip(5u32..)
        .map(|(start, id)| [start, id])
        .collect();
    Ok(Funcs { btf: fd, info })
}

/// The instructions as the kernel reads them, each map index replaced by the
/// map's descriptor.
fn with_map_fds(insns: &[[u8; 8]], maps: &[BorrowedFd<'_>]) -> io::Result<Vec<[u8; 8]>> {
    let mut code = insns.to_vec();
    for ins in &mut code {
        if ins[0] == LD_IMM64 && matches!(ins[1] >> 4, PSEUDO_MAP_FD | PSEUDO_MAP_VALUE) {
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
        prog_fd: fd_number(prog.as_fd()),
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
        prog_fd: fd_number(prog.as_fd()),
        attach_type,
        ..LinkCreateAttr::default()
    };
    bpf(BPF_LINK_CREATE, &attr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_are_appended_once_and_pointed_at() {
        let ld_cb = |index: u8| [LD_IMM64, 2 | (PSEUDO_FUNC << 4), 0, 0, index, 0, 0, 0];
        let exit = [0x95, 0, 0, 0, 0, 0, 0, 0];
        let program = [ld_cb(1), [0; 8], ld_cb(1), [0; 8], exit];
        let callbacks = vec![vec![exit, exit], vec![exit]];
        let Assembled { code, placed } = assemble(&program, &callbacks).expect("assembles");
        // Callback 1 goes after the program's 5 instructions, once.
        assert_eq!(placed, [(1, 5)]);
        assert_eq!(code.len(), 6);
        assert_eq!(
            i32::from_le_bytes([code[0][4], code[0][5], code[0][6], code[0][7]]),
            4
        );
        assert_eq!(
            i32::from_le_bytes([code[2][4], code[2][5], code[2][6], code[2][7]]),
            2
        );
        assert!(assemble(&[ld_cb(7), [0; 8], exit], &callbacks).is_err());
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
