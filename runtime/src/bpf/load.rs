//! Loading a BPF object with aya and attaching its programs. A [`BpfObject`]
//! owns everything the kernel gave us (maps, programs, links); dropping it
//! detaches every probe first.
//!
//! Errors are sentences: an attach that cannot work on this kernel names the
//! missing kernel feature and what to use instead, and aya's errors are
//! rendered with their whole cause chain, never as a bare errno.

use super::direct;
use super::maps::RawMap;
use aya::maps::{Map, MapData};
use aya::programs::kprobe::KProbeLinkId;
use aya::programs::perf_event::{PerfEventLinkId, PerfEventScope};
use aya::programs::trace_point::TracePointLinkId;
use aya::programs::uprobe::{UProbeAttachLocation, UProbeLinkId, UProbeScope};
use aya::programs::{KProbe, PerfEvent, Program, ProgramError, TracePoint, UProbe};
use aya::{Ebpf, EbpfLoader};
use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::fmt;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

pub use aya::programs::perf_event::{HardwareEvent, PerfEventConfig, SamplePolicy, SoftwareEvent};

const PMU_DIR: &str = "/sys/bus/event_source/devices";
const TRACEFS_DIRS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// A loaded BPF object: its maps, its verified programs and their attachments.
pub struct BpfObject {
    // Field order is drop order: links (detach) before maps and programs.
    links: Vec<Link>,
    maps: HashMap<String, RawMap>,
    /// Programs loaded past aya ([`super::direct`]), by name.
    direct: HashMap<String, OwnedFd>,
    pub(super) ebpf: Ebpf,
}

impl fmt::Debug for BpfObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BpfObject")
            .field("programs", &self.program_names().collect::<Vec<_>>())
            .field("maps", &self.maps.keys().collect::<Vec<_>>())
            .field("links", &self.links.len())
            .finish()
    }
}

struct Link {
    program: String,
    id: LinkId,
}

enum LinkId {
    TracePoint(TracePointLinkId),
    KProbe(KProbeLinkId),
    UProbe(UProbeLinkId),
    PerfEvent(PerfEventLinkId),
    /// A BPF link of a directly loaded program; closing it detaches.
    Direct(OwnedFd),
}

/// How a directly loaded program is linked.
#[derive(Clone, Copy, Debug)]
pub enum DirectLink<'a> {
    /// fentry/fexit: to the function the program was loaded for.
    Trampoline { function: &'a str, ret: bool },
    /// One kprobe.multi link to every function, at entry or return.
    KprobeMulti { functions: &'a [&'a str], ret: bool },
}

/// Where a uprobe goes in its binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UprobeLocation<'a> {
    /// At a function's entry, found in the binary's symbol table.
    Symbol(&'a str),
    /// At some bytes past a function's entry.
    SymbolOffset(&'a str, u64),
    /// At a file offset.
    FileOffset(u64),
}

/// Loading failed: aya could not build the object's maps, or the kernel
/// refused a program.
#[derive(Debug)]
pub enum LoadError {
    /// The object could not be parsed or relocated, or a map not created.
    Object { reason: String },
    /// A program has a section type rstap does not load.
    UnsupportedProgram { program: String },
    /// The kernel (usually its verifier) refused a program.
    Program {
        program: String,
        reason: String,
        verifier_log: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Object { reason } => write!(f, "cannot load the BPF object: {reason}"),
            LoadError::UnsupportedProgram { program } => write!(
                f,
                "cannot load BPF program `{program}`: rstap loads only tracepoint, kprobe, uprobe and perf_event programs"
            ),
            LoadError::Program {
                program,
                reason,
                verifier_log,
            } => {
                write!(f, "the kernel refused BPF program `{program}`: {reason}")?;
                let log = verifier_log.trim_end();
                if !log.is_empty() {
                    write!(f, "\nverifier log:\n{log}")?;
                }
                Ok(())
            }
        }
    }
}

impl Error for LoadError {}

/// A kernel mechanism a probe needs and this kernel lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingFeature {
    Kprobes,
    Uprobes,
    HardwareCounters,
}

/// Attaching failed.
#[derive(Debug)]
pub enum AttachError {
    NoSuchProgram {
        program: String,
    },
    /// The program's type does not fit this kind of attach point.
    WrongKind {
        program: String,
        wanted: &'static str,
    },
    /// This kernel (or machine) cannot provide the attach point at all.
    Unsupported {
        program: String,
        target: String,
        missing: MissingFeature,
        instead: String,
    },
    /// The tracepoint does not exist in this kernel.
    NoSuchTracepoint {
        program: String,
        category: String,
        name: String,
    },
    /// The kernel refused the attachment.
    Failed {
        program: String,
        target: String,
        reason: String,
    },
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachError::NoSuchProgram { program } => {
                write!(f, "the BPF object has no program `{program}`")
            }
            AttachError::WrongKind { program, wanted } => {
                write!(f, "BPF program `{program}` is not a {wanted} program")
            }
            AttachError::Unsupported {
                program,
                target,
                missing,
                instead,
            } => {
                let missing = match missing {
                    MissingFeature::Kprobes => "this kernel has no kprobes (CONFIG_KPROBE_EVENTS)",
                    MissingFeature::Uprobes => "this kernel has no uprobes (CONFIG_UPROBE_EVENTS)",
                    MissingFeature::HardwareCounters => {
                        "this machine has no hardware performance counters (as in a virtual machine without a virtual PMU)"
                    }
                };
                write!(
                    f,
                    "cannot attach `{program}` to {target}: {missing}; use {instead} instead"
                )
            }
            AttachError::NoSuchTracepoint {
                program,
                category,
                name,
            } => write!(
                f,
                "cannot attach `{program}`: this kernel has no tracepoint {category}:{name}"
            ),
            AttachError::Failed {
                program,
                target,
                reason,
            } => write!(f, "cannot attach `{program}` to {target}: {reason}"),
        }
    }
}

impl Error for AttachError {}

impl BpfObject {
    /// Creates the object's maps and loads (verifies) every program; nothing is
    /// attached yet.
    pub fn load(object: &[u8]) -> Result<BpfObject, LoadError> {
        BpfObject::load_except(object, &HashSet::new())
    }

    /// [`BpfObject::load`], leaving the programs named in `later` unloaded:
    /// they are loaded directly ([`BpfObject::load_direct`]) or on demand
    /// ([`BpfObject::load_now`]).
    pub fn load_except(object: &[u8], later: &HashSet<String>) -> Result<BpfObject, LoadError> {
        let (buffer, start) = aligned_copy(object);
        let bytes = buffer.as_ref().map_or(object, |b| &b[start..]);
        let mut ebpf = EbpfLoader::new()
            .load(bytes)
            .map_err(|e| LoadError::Object {
                reason: describe(&e),
            })?;
        for (name, program) in ebpf.programs_mut() {
            if !later.contains(name) {
                load_program(name, program)?;
            }
        }
        let mut maps = HashMap::new();
        for (name, map) in ebpf.maps() {
            maps.insert(name.to_string(), raw_map(name, map)?);
        }
        Ok(BpfObject {
            links: Vec::new(),
            maps,
            direct: HashMap::new(),
            ebpf,
        })
    }

    /// Loads program `name` of the object, left out by [`BpfObject::load_except`].
    pub fn load_now(&mut self, name: &str) -> Result<(), LoadError> {
        let program = self
            .ebpf
            .program_mut(name)
            .ok_or_else(|| LoadError::Object {
                reason: format!("the object has no program `{name}`"),
            })?;
        load_program(name, program)
    }

    /// Loads `insns` (whose map loads name maps by their index in `maps`) as
    /// program `name` of `kind`, past aya.
    pub fn load_direct(
        &mut self,
        name: &str,
        kind: direct::Kind,
        insns: &[[u8; 8]],
        maps: &[&str],
    ) -> Result<(), LoadError> {
        let fds = maps
            .iter()
            .map(|m| {
                self.maps
                    .get(*m)
                    .map(RawMap::fd)
                    .ok_or_else(|| LoadError::Object {
                        reason: format!("map `{m}` was not created"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let fd = direct::load(name, kind, insns, &fds).map_err(|r| LoadError::Program {
            program: name.to_string(),
            reason: r.error.to_string(),
            verifier_log: r.log,
        })?;
        self.direct.insert(name.to_string(), fd);
        Ok(())
    }

    /// Links directly loaded program `program` as `how` says.
    pub fn link_direct(&mut self, program: &str, how: DirectLink<'_>) -> Result<(), AttachError> {
        let (target, made) = {
            let prog = self
                .direct
                .get(program)
                .ok_or_else(|| AttachError::NoSuchProgram {
                    program: program.to_string(),
                })?;
            match how {
                DirectLink::Trampoline { function, ret } => {
                    let (kind, attach) = if ret {
                        ("fexit", direct::BPF_TRACE_FEXIT)
                    } else {
                        ("fentry", direct::BPF_TRACE_FENTRY)
                    };
                    (
                        format!("kernel function {function} ({kind})"),
                        direct::link_create(prog, attach),
                    )
                }
                DirectLink::KprobeMulti { functions, ret } => (
                    format!("{} kernel functions (kprobe.multi)", functions.len()),
                    direct::link_kprobe_multi(prog, functions, ret),
                ),
            }
        };
        let fd = made.map_err(|e| AttachError::Failed {
            program: program.to_string(),
            target,
            reason: e.to_string(),
        })?;
        self.links.push(Link {
            program: program.to_string(),
            id: LinkId::Direct(fd),
        });
        Ok(())
    }

    pub fn program_names(&self) -> impl Iterator<Item = &str> {
        self.ebpf.programs().map(|(name, _)| name)
    }

    /// The map called `name` in the object.
    pub fn map(&self, name: &str) -> Option<&RawMap> {
        self.maps.get(name)
    }

    /// Drops the raw handle of a map taken out of the object.
    pub(super) fn forget_map(&mut self, name: &str) {
        self.maps.remove(name);
    }

    /// How many attachments are live.
    pub fn attachments(&self) -> usize {
        self.links.len()
    }

    /// Attaches a `tracepoint/...` program to `category:name`.
    pub fn attach_tracepoint(
        &mut self,
        program: &str,
        category: &str,
        name: &str,
    ) -> Result<(), AttachError> {
        let target = format!("tracepoint {category}:{name}");
        let prog: &mut TracePoint = self.program(program, "tracepoint")?;
        let id = prog.attach(category, name).map_err(|e| {
            if tracepoint_missing(&e) {
                AttachError::NoSuchTracepoint {
                    program: program.to_string(),
                    category: category.to_string(),
                    name: name.to_string(),
                }
            } else {
                failed(program, &target, &e)
            }
        })?;
        self.links.push(Link {
            program: program.to_string(),
            id: LinkId::TracePoint(id),
        });
        Ok(())
    }

    /// Attaches a `kprobe/...` or `kretprobe/...` program to `function`
    /// (+`offset` bytes for kprobes).
    pub fn attach_kprobe(
        &mut self,
        program: &str,
        function: &str,
        offset: u64,
    ) -> Result<(), AttachError> {
        let prog: &mut KProbe = self.program(program, "kprobe")?;
        let is_return = matches!(prog.kind(), aya::programs::ProbeKind::Return);
        let target = format!("kernel function {function}");
        if !has_kprobes() {
            return Err(AttachError::Unsupported {
                program: program.to_string(),
                target,
                missing: MissingFeature::Kprobes,
                instead: tracepoint_instead(function, is_return),
            });
        }
        let id = prog
            .attach(function, offset)
            .map_err(|e| failed(program, &target, &e))?;
        self.links.push(Link {
            program: program.to_string(),
            id: LinkId::KProbe(id),
        });
        Ok(())
    }

    /// Attaches a `uprobe/...` or `uretprobe/...` program to `location` in
    /// `binary`, for every process or only `pid`.
    pub fn attach_uprobe(
        &mut self,
        program: &str,
        binary: &Path,
        location: UprobeLocation<'_>,
        pid: Option<NonZeroU32>,
    ) -> Result<(), AttachError> {
        let target = match location {
            UprobeLocation::Symbol(s) => format!("{s} in {}", binary.display()),
            UprobeLocation::SymbolOffset(s, o) => format!("{s}+{o:#x} in {}", binary.display()),
            UprobeLocation::FileOffset(o) => format!("offset {o:#x} of {}", binary.display()),
        };
        let prog: &mut UProbe = self.program(program, "uprobe")?;
        if !has_uprobes() {
            return Err(AttachError::Unsupported {
                program: program.to_string(),
                target,
                missing: MissingFeature::Uprobes,
                instead: "a tracepoint (kernel.trace(\"...\"))".to_string(),
            });
        }
        let location = match location {
            UprobeLocation::Symbol(s) => UProbeAttachLocation::Symbol(s),
            UprobeLocation::SymbolOffset(s, o) => UProbeAttachLocation::SymbolOffset(s, o),
            UprobeLocation::FileOffset(o) => UProbeAttachLocation::AbsoluteOffset(o),
        };
        let scope = pid.map_or(UProbeScope::AllProcesses, UProbeScope::OneProcess);
        let id = prog
            .attach(location, binary, scope)
            .map_err(|e| failed(program, &target, &e))?;
        self.links.push(Link {
            program: program.to_string(),
            id: LinkId::UProbe(id),
        });
        Ok(())
    }

    /// Attaches a `uprobe/...` program to the USDT mark at file offset
    /// `offset` of `binary` whose semaphore is at file offset `semaphore`:
    /// the kernel counts the probe there while it is attached.
    pub fn attach_uprobe_with_semaphore(
        &mut self,
        program: &str,
        binary: &Path,
        offset: u64,
        semaphore: u64,
    ) -> Result<(), AttachError> {
        let target = format!("offset {offset:#x} of {}", binary.display());
        let prog: &mut UProbe = self.program(program, "uprobe")?;
        let fd = prog
            .fd()
            .map_err(|e| failed(program, &target, &e))
            .and_then(|fd| {
                super::semaphore::attach(fd.as_fd(), binary, offset, semaphore).map_err(|e| {
                    AttachError::Failed {
                        program: program.to_string(),
                        target: target.clone(),
                        reason: e.to_string(),
                    }
                })
            })?;
        self.links.push(Link {
            program: program.to_string(),
            id: LinkId::Direct(fd),
        });
        Ok(())
    }

    /// Attaches a `perf_event` program to `event` on every online CPU, for all
    /// processes (what `timer.profile` and `perf.*` probes mean).
    pub fn attach_perf_event(
        &mut self,
        program: &str,
        event: PerfEventConfig,
        sample: SamplePolicy,
    ) -> Result<(), AttachError> {
        let target = format!("perf event {event:?}");
        let cpus = aya::util::online_cpus().map_err(|(path, e)| AttachError::Failed {
            program: program.to_string(),
            target: target.clone(),
            reason: format!("cannot read {path}: {e}"),
        })?;
        let prog: &mut PerfEvent = self.program(program, "perf_event")?;
        let mut ids = Vec::with_capacity(cpus.len());
        for cpu in cpus {
            let scope = PerfEventScope::AllProcessesOneCpu { cpu };
            match prog.attach(event, scope, sample, false) {
                Ok(id) => ids.push(id),
                Err(e) => {
                    // Leave nothing behind from a half-done attach.
                    for id in ids {
                        let _ = prog.detach(id);
                    }
                    if matches!(event, PerfEventConfig::Hardware(_)) && is_errno(&e, libc::ENOENT) {
                        return Err(AttachError::Unsupported {
                            program: program.to_string(),
                            target,
                            missing: MissingFeature::HardwareCounters,
                            instead: "a software event (perf.sw.cpu_clock or timer.profile)"
                                .to_string(),
                        });
                    }
                    return Err(failed(program, &target, &e));
                }
            }
        }
        self.links.extend(ids.into_iter().map(|id| Link {
            program: program.to_string(),
            id: LinkId::PerfEvent(id),
        }));
        Ok(())
    }

    /// Detaches every probe, newest first. Maps and programs stay loaded.
    pub fn detach_all(&mut self) {
        while let Some(Link { program, id }) = self.links.pop() {
            if let LinkId::Direct(fd) = id {
                drop(fd);
                continue;
            }
            let Some(prog) = self.ebpf.program_mut(&program) else {
                continue;
            };
            // A failed detach leaves nothing we could retry: the link's fd is
            // closed with the program in any case.
            let _ = match (prog, id) {
                (Program::TracePoint(p), LinkId::TracePoint(id)) => p.detach(id),
                (Program::KProbe(p), LinkId::KProbe(id)) => p.detach(id),
                (Program::UProbe(p), LinkId::UProbe(id)) => p.detach(id),
                (Program::PerfEvent(p), LinkId::PerfEvent(id)) => p.detach(id),
                _ => Ok(()),
            };
        }
    }

    fn program<'a, T>(
        &'a mut self,
        name: &str,
        wanted: &'static str,
    ) -> Result<&'a mut T, AttachError>
    where
        &'a mut T: TryFrom<&'a mut Program>,
    {
        let program = self
            .ebpf
            .program_mut(name)
            .ok_or_else(|| AttachError::NoSuchProgram {
                program: name.to_string(),
            })?;
        program.try_into().map_err(|_| AttachError::WrongKind {
            program: name.to_string(),
            wanted,
        })
    }
}

impl Drop for BpfObject {
    fn drop(&mut self) {
        self.detach_all();
    }
}

fn load_program(name: &str, program: &mut Program) -> Result<(), LoadError> {
    let result = match program {
        Program::TracePoint(p) => p.load(),
        Program::KProbe(p) => p.load(),
        Program::UProbe(p) => p.load(),
        Program::PerfEvent(p) => p.load(),
        _ => {
            return Err(LoadError::UnsupportedProgram {
                program: name.to_string(),
            });
        }
    };
    result.map_err(|e| match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => LoadError::Program {
            program: name.to_string(),
            reason: io_error.to_string(),
            verifier_log: verifier_log.to_string(),
        },
        other => LoadError::Program {
            program: name.to_string(),
            reason: describe(&other),
            verifier_log: String::new(),
        },
    })
}

/// A [`RawMap`] over a duplicate of aya's fd, so map access does not borrow the
/// [`BpfObject`] mutably.
fn raw_map(name: &str, map: &Map) -> Result<RawMap, LoadError> {
    let per_cpu = matches!(
        map,
        Map::PerCpuArray(_)
            | Map::PerCpuHashMap(_)
            | Map::PerCpuLruHashMap(_)
            | Map::PerCpuCgroupStorage(_)
    );
    let data = map_data(map);
    let cannot = |reason: String| LoadError::Object {
        reason: format!("map `{name}`: {reason}"),
    };
    let info = data.info().map_err(|e| cannot(describe(&e)))?;
    let fd = data
        .fd()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| cannot(format!("cannot duplicate its file descriptor: {e}")))?;
    Ok(RawMap::new(
        name,
        fd,
        info.key_size(),
        info.value_size(),
        per_cpu,
    ))
}

fn map_data(map: &Map) -> &MapData {
    match map {
        Map::Array(d)
        | Map::ArrayOfMaps(d)
        | Map::BloomFilter(d)
        | Map::CgroupArray(d)
        | Map::CgroupStorage(d)
        | Map::CgrpStorage(d)
        | Map::CpuMap(d)
        | Map::DevMap(d)
        | Map::DevMapHash(d)
        | Map::HashMap(d)
        | Map::HashOfMaps(d)
        | Map::InodeStorage(d)
        | Map::LpmTrie(d)
        | Map::LruHashMap(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuCgroupStorage(d)
        | Map::PerCpuHashMap(d)
        | Map::PerCpuLruHashMap(d)
        | Map::PerfEventArray(d)
        | Map::ProgramArray(d)
        | Map::Queue(d)
        | Map::ReusePortSockArray(d)
        | Map::RingBuf(d)
        | Map::SockHash(d)
        | Map::SockMap(d)
        | Map::SkStorage(d)
        | Map::Stack(d)
        | Map::StackTraceMap(d)
        | Map::Unsupported(d)
        | Map::XskMap(d) => d,
    }
}

/// aya-obj parses ELF headers in place and needs them aligned; a caller's
/// buffer need not be. Returns a copy (and where the bytes start in it) when the
/// original is misaligned.
fn aligned_copy(bytes: &[u8]) -> (Option<Vec<u8>>, usize) {
    if bytes.as_ptr().align_offset(8) == 0 {
        return (None, 0);
    }
    let mut buffer: Vec<u8> = Vec::with_capacity(bytes.len() + 8);
    let start = buffer.as_ptr().align_offset(8);
    buffer.resize(start, 0);
    buffer.extend_from_slice(bytes);
    (Some(buffer), start)
}

/// Whether the kernel can create kprobes: the `kprobe` PMU (what aya uses
/// first) or tracefs' `kprobe_events`.
pub fn has_kprobes() -> bool {
    has_probe_kind("kprobe")
}

/// Whether the kernel can create uprobes, as [`has_kprobes`] decides.
pub fn has_uprobes() -> bool {
    has_probe_kind("uprobe")
}

fn has_probe_kind(kind: &str) -> bool {
    Path::new(PMU_DIR).join(kind).join("type").exists()
        || TRACEFS_DIRS
            .iter()
            .any(|t| Path::new(t).join(format!("{kind}_events")).exists())
}

/// The tracepoint to suggest for a kernel function: the syscall's own
/// tracepoint for syscall entry points, else the generic form.
fn tracepoint_instead(function: &str, is_return: bool) -> String {
    let syscall = [
        "__x64_sys_",
        "__arm64_sys_",
        "__ia32_sys_",
        "__se_sys_",
        "__do_sys_",
        "ksys_",
        "sys_",
    ]
    .iter()
    .find_map(|prefix| function.strip_prefix(prefix))
    .filter(|name| !name.is_empty());
    match syscall {
        Some(name) => {
            let when = if is_return { "exit" } else { "enter" };
            format!("kernel.trace(\"syscalls:sys_{when}_{name}\")")
        }
        None => "a tracepoint (kernel.trace(\"...\"))".to_string(),
    }
}

fn tracepoint_missing(e: &ProgramError) -> bool {
    matches!(
        e,
        ProgramError::TracePointError(aya::programs::trace_point::TracePointError::FileError { io_error, .. })
            if io_error.kind() == io::ErrorKind::NotFound
    )
}

fn is_errno(e: &ProgramError, errno: i32) -> bool {
    let mut source: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<io::Error>()
            && io.raw_os_error() == Some(errno)
        {
            return true;
        }
        source = err.source();
    }
    false
}

fn failed(program: &str, target: &str, e: &ProgramError) -> AttachError {
    AttachError::Failed {
        program: program.to_string(),
        target: target.to_string(),
        reason: describe(e),
    }
}

/// An error and its causes, each said once: aya's messages sometimes repeat
/// their source, sometimes only point to it.
fn describe(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_functions_suggest_their_tracepoint() {
        assert_eq!(
            tracepoint_instead("__x64_sys_openat", false),
            "kernel.trace(\"syscalls:sys_enter_openat\")"
        );
        assert_eq!(
            tracepoint_instead("ksys_read", true),
            "kernel.trace(\"syscalls:sys_exit_read\")"
        );
        assert_eq!(
            tracepoint_instead("vfs_read", false),
            "a tracepoint (kernel.trace(\"...\"))"
        );
    }

    #[test]
    fn missing_kprobes_is_one_sentence() {
        let e = AttachError::Unsupported {
            program: "probe_0".into(),
            target: "kernel function vfs_read".into(),
            missing: MissingFeature::Kprobes,
            instead: tracepoint_instead("vfs_read", false),
        };
        assert_eq!(
            e.to_string(),
            "cannot attach `probe_0` to kernel function vfs_read: this kernel has no kprobes \
             (CONFIG_KPROBE_EVENTS); use a tracepoint (kernel.trace(\"...\")) instead"
        );
    }

    #[test]
    fn causes_are_said_once() {
        let e = io::Error::other(LoadError::Object { reason: "x".into() });
        assert_eq!(describe(&e), "cannot load the BPF object: x");
    }

    #[test]
    fn misaligned_objects_are_copied_aligned() {
        let backing = [0u64; 4];
        let bytes: Vec<u8> = backing.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let (copy, start) = aligned_copy(&bytes[1..]);
        if bytes[1..].as_ptr().align_offset(8) != 0 {
            let copy = copy.unwrap_or_default();
            assert_eq!(copy[start..].as_ptr().align_offset(8), 0);
            assert_eq!(&copy[start..], &bytes[1..]);
        }
    }
}
