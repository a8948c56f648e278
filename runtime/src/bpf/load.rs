//! Loading the compiler's maps and programs with raw `bpf(2)` calls and
//! attaching the programs. A [`BpfObject`] owns everything the kernel gave us
//! (maps, programs, links); dropping it detaches every probe first.
//!
//! rstap loads what it generated itself: no ELF parsing, no relocation and no
//! kernel BTF at load time (aya's loader spent ~16 ms and most of rstap's
//! memory parsing vmlinux BTF for objects that need no CO-RE).
//!
//! Errors are sentences: an attach that cannot work on this kernel names the
//! missing kernel feature and what to use instead, never a bare errno.

use super::events::Pmu;
pub use super::events::{HardwareEvent, PerfEventConfig, SamplePolicy, SoftwareEvent};
use super::maps::RawMap;
use super::prog::{self, Funcs, Kind};
use super::sys::{self, PerfEventAttr};
use rstap_compiler::backend::bpf::btf_out;
use rstap_compiler::backend::bpf::object::{CallbackDef, MapDef, MapKind, ProgramDef};
use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::ffi::CString;
use std::fmt;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

const PMU_DIR: &str = "/sys/bus/event_source/devices";
const TRACEFS_DIRS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// A loaded BPF object: its maps, its verified programs and their attachments.
pub struct BpfObject {
    // Field order is drop order: links (detach) before maps and programs.
    /// The attachments: perf events running a program, or BPF links.
    /// Closing one detaches.
    links: Vec<OwnedFd>,
    maps: HashMap<String, RawMap>,
    /// Ring buffer maps' sizes in bytes, by name.
    rings: HashMap<String, u32>,
    /// Every program of the object, loaded or not yet.
    programs: HashMap<String, Program>,
    /// The callbacks programs may use, by index.
    callbacks: Vec<Vec<[u8; 8]>>,
    callback_names: Vec<String>,
    /// `-vv`: the verifier's log of each program loaded, by name.
    verifier_logs: Option<Vec<(String, String)>>,
    /// Map names by the index `ld_map` instructions carry.
    map_order: Vec<String>,
}

struct Program {
    section: String,
    code: Vec<[u8; 8]>,
    fd: Option<OwnedFd>,
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

/// Loading failed: a map could not be created, or the kernel refused a
/// program.
#[derive(Debug)]
pub enum LoadError {
    /// A map could not be created, or a program's parts do not fit.
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
                "cannot load BPF program `{program}`: rstap loads only tracepoint, kprobe, uprobe, perf_event and (directly) fentry/fexit programs"
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
    /// Creates `maps` and loads (verifies) every program; nothing is attached
    /// yet. `ld_map` instructions name maps by their index in `maps`, and
    /// callbacks by their index in `callbacks`.
    pub fn load(
        maps: &[MapDef],
        programs: &[ProgramDef],
        callbacks: &[CallbackDef],
    ) -> Result<BpfObject, LoadError> {
        BpfObject::load_except(maps, programs, callbacks, &HashSet::new())
    }

    /// [`BpfObject::load`], leaving the programs named in `later` unloaded:
    /// they are loaded directly ([`BpfObject::load_direct`]) or on demand
    /// ([`BpfObject::load_now`]).
    pub fn load_except(
        maps: &[MapDef],
        programs: &[ProgramDef],
        callbacks: &[CallbackDef],
        later: &HashSet<String>,
    ) -> Result<BpfObject, LoadError> {
        let mut object = BpfObject::create(maps, programs, callbacks)?;
        object.load_all_except(later)?;
        Ok(object)
    }

    /// Creates `maps` and takes `programs` without loading any of them:
    /// [`BpfObject::load_all_except`] or [`BpfObject::load_now`] does.
    pub fn create(
        maps: &[MapDef],
        programs: &[ProgramDef],
        callbacks: &[CallbackDef],
    ) -> Result<BpfObject, LoadError> {
        let mut object = BpfObject {
            verifier_logs: None,
            links: Vec::new(),
            maps: HashMap::new(),
            rings: HashMap::new(),
            programs: HashMap::new(),
            callbacks: callbacks.iter().map(|c| encode(&c.insns)).collect(),
            callback_names: callbacks.iter().map(|c| c.name.clone()).collect(),
            map_order: maps.iter().map(|m| m.name.clone()).collect(),
        };
        for def in maps {
            object.create_map(def)?;
        }
        for p in programs {
            object.programs.insert(
                p.name.clone(),
                Program {
                    section: p.section.clone(),
                    code: encode(&p.insns),
                    fd: None,
                },
            );
        }
        Ok(object)
    }

    /// Loads every program not named in `later`, in name order.
    pub fn load_all_except(&mut self, later: &HashSet<String>) -> Result<(), LoadError> {
        let mut names: Vec<String> = self
            .programs
            .keys()
            .filter(|n| !later.contains(*n))
            .cloned()
            .collect();
        names.sort();
        for name in names {
            self.load_now(&name)?;
        }
        Ok(())
    }

    /// From now on, keep the verifier's log of every program loaded (`-vv`).
    pub fn keep_verifier_logs(&mut self) {
        self.verifier_logs = Some(Vec::new());
    }

    /// The verifier's logs kept so far, by program name, in load order.
    pub fn take_verifier_logs(&mut self) -> Vec<(String, String)> {
        self.verifier_logs
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn create_map(&mut self, def: &MapDef) -> Result<(), LoadError> {
        let cannot = |reason: String| LoadError::Object {
            reason: format!("cannot create map `{}`: {reason}", def.name),
        };
        let max_entries = if def.kind == MapKind::RingBuf {
            ring_size(def.max_entries, page_size())
        } else {
            def.max_entries
        };
        let attr = sys::MapCreateAttr {
            map_type: def.kind.type_id(),
            key_size: def.key_size,
            value_size: def.value_size,
            max_entries,
            map_flags: def.flags,
            map_name: sys::object_name(&def.name),
            ..sys::MapCreateAttr::default()
        };
        let fd = sys::bpf(sys::BPF_MAP_CREATE, &attr).map_err(|e| {
            if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
                LoadError::Object {
                    reason: crate::privilege::denied(),
                }
            } else {
                cannot(e.to_string())
            }
        })?;
        if def.kind == MapKind::RingBuf {
            self.rings.insert(def.name.clone(), max_entries);
        }
        let map = RawMap::new(
            &def.name,
            fd,
            def.key_size,
            def.value_size,
            def.kind.is_per_cpu(),
        );
        self.maps.insert(def.name.clone(), map);
        Ok(())
    }

    pub fn program_names(&self) -> impl Iterator<Item = &str> {
        self.programs.keys().map(String::as_str)
    }

    /// The map called `name` in the object.
    pub fn map(&self, name: &str) -> Option<&RawMap> {
        self.maps.get(name)
    }

    /// Takes map `name` out of the object, with a ring buffer's size.
    pub(super) fn take_map(&mut self, name: &str) -> Option<(RawMap, Option<u32>)> {
        let map = self.maps.remove(name)?;
        Some((map, self.rings.get(name).copied()))
    }

    /// How many attachments are live.
    pub fn attachments(&self) -> usize {
        self.links.len()
    }

    /// Loads program `name` of the object, as its section says, if it is not
    /// loaded yet.
    pub fn load_now(&mut self, name: &str) -> Result<(), LoadError> {
        let program = self.programs.get(name).ok_or_else(|| LoadError::Object {
            reason: format!("the object has no program `{name}`"),
        })?;
        if program.fd.is_some() {
            return Ok(());
        }
        let kind = program_kind(&program.section).ok_or_else(|| LoadError::UnsupportedProgram {
            program: name.to_string(),
        })?;
        let code = program.code.clone();
        let fd = self.load_code(name, kind, &code)?;
        if let Some(p) = self.programs.get_mut(name) {
            p.fd = Some(fd);
        }
        Ok(())
    }

    /// Loads program `name` (its own instructions) as `kind`, past its
    /// section's type: an fentry/fexit trampoline on a BTF id, or a
    /// kprobe.multi program.
    pub fn load_direct(&mut self, name: &str, kind: Kind) -> Result<(), LoadError> {
        let code = self
            .programs
            .get(name)
            .map(|p| p.code.clone())
            .ok_or_else(|| LoadError::Object {
                reason: format!("the object has no program `{name}`"),
            })?;
        let fd = self.load_code(name, kind, &code)?;
        if let Some(p) = self.programs.get_mut(name) {
            p.fd = Some(fd);
        }
        Ok(())
    }

    /// Loads `code` with the callbacks it uses and the maps it names.
    fn load_code(
        &mut self,
        name: &str,
        kind: Kind,
        code: &[[u8; 8]],
    ) -> Result<OwnedFd, LoadError> {
        let refused = |error: io::Error, log: String| LoadError::Program {
            program: name.to_string(),
            reason: error.to_string(),
            verifier_log: log,
        };
        let prog::Assembled { code, placed } =
            prog::assemble(code, &self.callbacks).map_err(|e| refused(e, String::new()))?;
        let funcs = if placed.is_empty() {
            None
        } else {
            Some(
                self.funcs(name, &placed)
                    .map_err(|e| refused(e, String::new()))?,
            )
        };
        let fds = self
            .map_order
            .iter()
            .map(|m| {
                self.maps
                    .get(m)
                    .map(RawMap::fd)
                    .ok_or_else(|| LoadError::Object {
                        reason: format!("map `{m}` is no longer in the object"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut log = self.verifier_logs.as_ref().map(|_| String::new());
        let fd =
            prog::load(name, kind, &code, &fds, funcs.as_ref(), log.as_mut()).map_err(|r| {
                // EPERM with no verifier log is the kernel refusing the caller,
                // not the program (the verifier answers EACCES or EINVAL).
                if r.error.raw_os_error() == Some(libc::EPERM) && r.log.trim().is_empty() {
                    LoadError::Object {
                        reason: crate::privilege::denied(),
                    }
                } else {
                    refused(r.error, r.log)
                }
            })?;
        if let (Some(logs), Some(log)) = (self.verifier_logs.as_mut(), log) {
            logs.push((name.to_string(), log));
        }
        Ok(fd)
    }

    /// The BTF of program `name` and the callbacks placed after it.
    fn funcs(&self, name: &str, placed: &[(usize, u32)]) -> io::Result<Funcs> {
        let mut list = vec![btf_out::Func {
            name,
            section: "",
            offset: 0,
            callback: false,
        }];
        for (index, _) in placed {
            list.push(btf_out::Func {
                name: self.callback_names.get(*index).map_or("", String::as_str),
                section: "",
                offset: 0,
                callback: true,
            });
        }
        let (btf, _) = btf_out::encode(&list);
        let starts: Vec<u32> = placed.iter().map(|(_, start)| *start).collect();
        prog::funcs(&btf, &starts)
    }

    /// Links directly loaded program `program` as `how` says.
    pub fn link_direct(&mut self, program: &str, how: DirectLink<'_>) -> Result<(), AttachError> {
        let prog = self.loaded(program)?;
        let (target, made) = match how {
            DirectLink::Trampoline { function, ret } => {
                let (kind, attach) = if ret {
                    ("fexit", prog::BPF_TRACE_FEXIT)
                } else {
                    ("fentry", prog::BPF_TRACE_FENTRY)
                };
                (
                    format!("kernel function {function} ({kind})"),
                    prog::link_create(prog, attach),
                )
            }
            DirectLink::KprobeMulti { functions, ret } => (
                format!("{} kernel functions (kprobe.multi)", functions.len()),
                prog::link_kprobe_multi(prog, functions, ret),
            ),
        };
        let fd = made.map_err(|e| AttachError::Failed {
            program: program.to_string(),
            target,
            reason: e.to_string(),
        })?;
        self.links.push(fd);
        Ok(())
    }

    /// Program `name`'s descriptor, once loaded.
    fn loaded(&self, name: &str) -> Result<&OwnedFd, AttachError> {
        self.programs
            .get(name)
            .and_then(|p| p.fd.as_ref())
            .ok_or_else(|| AttachError::NoSuchProgram {
                program: name.to_string(),
            })
    }

    /// Program `name`, checked to be of the section family `wanted`.
    fn program_for(&self, name: &str, wanted: &'static str) -> Result<&Program, AttachError> {
        let p = self
            .programs
            .get(name)
            .ok_or_else(|| AttachError::NoSuchProgram {
                program: name.to_string(),
            })?;
        let family = p.section.split('/').next().unwrap_or("");
        let fits = match wanted {
            "tracepoint" => family == "tracepoint",
            "kprobe" => matches!(family, "kprobe" | "kretprobe"),
            "uprobe" => matches!(family, "uprobe" | "uretprobe"),
            _ => family == wanted,
        };
        if !fits {
            return Err(AttachError::WrongKind {
                program: name.to_string(),
                wanted,
            });
        }
        Ok(p)
    }

    /// Opens `attr` (on `pid`/`cpu`) and runs `program` on its events.
    fn attach_perf(
        &mut self,
        program: &str,
        target: &str,
        attr: PerfEventAttr,
        pid: i32,
        cpu: i32,
    ) -> Result<(), AttachError> {
        let failed = |e: io::Error| AttachError::Failed {
            program: program.to_string(),
            target: target.to_string(),
            reason: e.to_string(),
        };
        let prog = self.loaded(program)?;
        let event = sys::perf_event_open(attr, pid, cpu).map_err(failed)?;
        sys::perf_event_run_bpf(event.as_fd(), prog.as_fd()).map_err(failed)?;
        self.links.push(event);
        Ok(())
    }

    /// Attaches a `tracepoint/...` program to `category:name`.
    pub fn attach_tracepoint(
        &mut self,
        program: &str,
        category: &str,
        name: &str,
    ) -> Result<(), AttachError> {
        self.program_for(program, "tracepoint")?;
        let target = format!("tracepoint {category}:{name}");
        let id = TRACEFS_DIRS.iter().find_map(|t| {
            let path = Path::new(t)
                .join("events")
                .join(category)
                .join(name)
                .join("id");
            std::fs::read_to_string(path).ok()
        });
        let Some(id) = id.and_then(|i| i.trim().parse::<u64>().ok()) else {
            return Err(AttachError::NoSuchTracepoint {
                program: program.to_string(),
                category: category.to_string(),
                name: name.to_string(),
            });
        };
        let attr = PerfEventAttr {
            type_: sys::PERF_TYPE_TRACEPOINT,
            config: id,
            sample: 1,
            wakeup_events: 1,
            flags: sys::PERF_ATTR_DISABLED,
            ..PerfEventAttr::default()
        };
        self.attach_perf(program, &target, attr, -1, 0)
    }

    /// Attaches a `kprobe/...` or `kretprobe/...` program to `function`
    /// (+`offset` bytes for kprobes).
    pub fn attach_kprobe(
        &mut self,
        program: &str,
        function: &str,
        offset: u64,
    ) -> Result<(), AttachError> {
        let is_return = section_returns(&self.program_for(program, "kprobe")?.section);
        let target = format!("kernel function {function}");
        let Some(pmu) = Pmu::read("kprobe") else {
            return Err(AttachError::Unsupported {
                program: program.to_string(),
                target,
                missing: MissingFeature::Kprobes,
                instead: tracepoint_instead(function, is_return),
            });
        };
        let name = c_string(program, &target, function)?;
        let attr = pmu.attr(is_return, name.as_ptr() as u64, offset);
        self.attach_perf(program, &target, attr, -1, 0)
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
        let is_return = section_returns(&self.program_for(program, "uprobe")?.section);
        let Some(pmu) = Pmu::read("uprobe") else {
            return Err(AttachError::Unsupported {
                program: program.to_string(),
                target,
                missing: MissingFeature::Uprobes,
                instead: "a tracepoint (kernel.trace(\"...\"))".to_string(),
            });
        };
        let offset = match location {
            UprobeLocation::FileOffset(o) => o,
            UprobeLocation::Symbol(s) => symbol_offset(binary, s, program, &target)?,
            UprobeLocation::SymbolOffset(s, o) => symbol_offset(binary, s, program, &target)? + o,
        };
        let path = c_string(program, &target, &binary.to_string_lossy())?;
        let attr = pmu.attr(is_return, path.as_ptr() as u64, offset);
        let (pid, cpu) = match pid {
            Some(p) => (i32::try_from(p.get()).unwrap_or(i32::MAX), -1),
            None => (-1, 0),
        };
        self.attach_perf(program, &target, attr, pid, cpu)
    }

    /// Attaches a `uprobe/...` program to the USDT mark at file offset
    /// `offset` of `binary` whose semaphore is at file offset `semaphore`:
    /// the kernel counts the probe there (the uprobe's `ref_ctr_offset`)
    /// while it is attached, in running processes and those that start later.
    pub fn attach_uprobe_with_semaphore(
        &mut self,
        program: &str,
        binary: &Path,
        offset: u64,
        semaphore: u64,
    ) -> Result<(), AttachError> {
        let target = format!("offset {offset:#x} of {}", binary.display());
        self.program_for(program, "uprobe")?;
        let unsupported = || AttachError::Unsupported {
            program: program.to_string(),
            target: target.clone(),
            missing: MissingFeature::Uprobes,
            instead: "a tracepoint (kernel.trace(\"...\"))".to_string(),
        };
        let pmu = Pmu::read("uprobe").ok_or_else(unsupported)?;
        let Some(shift) = pmu.ref_ctr_shift else {
            return Err(AttachError::Failed {
                program: program.to_string(),
                target,
                reason: "this kernel's uprobes cannot count USDT semaphores (no ref_ctr_offset: Linux 4.20 or later has it)".to_string(),
            });
        };
        let path = c_string(program, &target, &binary.to_string_lossy())?;
        let mut attr = pmu.attr(false, path.as_ptr() as u64, offset);
        attr.config |= semaphore << shift;
        self.attach_perf(program, &target, attr, -1, 0)
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
        self.program_for(program, "perf_event")?;
        let cpus = online_cpus().map_err(|e| AttachError::Failed {
            program: program.to_string(),
            target: target.clone(),
            reason: format!("cannot read {ONLINE_CPUS}: {e}"),
        })?;
        let (type_, config) = event.type_and_config();
        let (sample, freq) = match sample {
            SamplePolicy::Period(n) => (n, 0),
            SamplePolicy::Frequency(n) => (n, sys::PERF_ATTR_FREQ),
        };
        let before = self.links.len();
        for cpu in cpus {
            let attr = PerfEventAttr {
                type_,
                config,
                sample,
                flags: sys::PERF_ATTR_DISABLED | freq,
                ..PerfEventAttr::default()
            };
            if let Err(e) = self.attach_perf(program, &target, attr, -1, cpu) {
                // Leave nothing behind from a half-done attach.
                self.links.truncate(before);
                let no_pmu = matches!(&e, AttachError::Failed { reason, .. }
                    if reason.contains(&io::Error::from_raw_os_error(libc::ENOENT).to_string()));
                if matches!(event, PerfEventConfig::Hardware(_)) && no_pmu {
                    return Err(AttachError::Unsupported {
                        program: program.to_string(),
                        target,
                        missing: MissingFeature::HardwareCounters,
                        instead: "a software event (perf.sw.cpu_clock or timer.profile)"
                            .to_string(),
                    });
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Detaches every probe. Maps and programs stay loaded.
    pub fn detach_all(&mut self) {
        close_all(std::mem::take(&mut self.links));
    }

    /// Detaches every probe without waiting for it, when that would take
    /// long: a child process keeps the attachments and closes them, while
    /// this one goes on (and exits) at once. The caller must have made the
    /// programs inert first (the exiting flag). `false`: nothing to gain, or
    /// no child could be made; nothing was done.
    pub fn detach_in_background(&mut self) -> bool {
        if self.links.len() < BACKGROUND_DETACH {
            return false;
        }
        let mut fds: Vec<i32> = self.links.iter().map(AsRawFd::as_raw_fd).collect();
        fds.sort_unstable();
        #[expect(unsafe_code, reason = "fork(2) has no safe wrapper in std")]
        // SAFETY: the child runs only async-signal-safe system calls
        // (close_range, close, _exit) on values computed before the fork.
        let pid = unsafe { libc::fork() };
        match pid {
            0 => close_and_exit(&fds),
            p if p > 0 => {
                // The child holds every attachment: these closes return at once.
                drop(std::mem::take(&mut self.links));
                true
            }
            _ => false,
        }
    }
}

/// Attachments from which detaching in a child process pays: even one
/// tracepoint's perf event takes ~50 ms of RCU grace periods to close, more
/// than all the rest of a short run.
const BACKGROUND_DETACH: usize = 1;

/// In the forked child: closes every descriptor but `links` (rstap's output
/// pipe among them, so its reader sees the end at once), then closes
/// `links`, one by one, and exits.
fn close_and_exit(links: &[i32]) -> ! {
    let close_range = |first: u32, last: u32| {
        if first <= last {
            #[expect(unsafe_code, reason = "close_range(2) has no wrapper in std or libc")]
            // SAFETY: close_range takes two numbers and flags; it only closes.
            unsafe {
                libc::syscall(libc::SYS_close_range, first, last, 0u32);
            }
        }
    };
    let mut next = 0u32;
    for &fd in links {
        let fd = u32::try_from(fd).unwrap_or(0);
        if fd > 0 {
            close_range(next, fd - 1);
        }
        next = fd.saturating_add(1);
    }
    close_range(next, u32::MAX);
    for &fd in links {
        #[expect(unsafe_code, reason = "close(2) on a raw descriptor after fork")]
        // SAFETY: `fd` is one of this process's descriptors, closed once.
        unsafe {
            libc::close(fd);
        }
    }
    #[expect(
        unsafe_code,
        reason = "_exit(2): the child must not run the parent's exit handlers"
    )]
    // SAFETY: _exit never returns and runs nothing of the parent's.
    unsafe {
        libc::_exit(0)
    }
}

/// Links closed from one thread each, at most this many at once.
const CLOSERS: usize = 256;

/// Closes `links`. Closing a tracepoint's perf event waits in the kernel for
/// RCU grace periods (~60 ms here): one after another, the 360 tracepoints of
/// `syscall.*` took 26 s to detach. Waits that overlap share their grace
/// periods, so the links are closed from parallel threads.
fn close_all(links: Vec<OwnedFd>) {
    if links.len() < 2 {
        return;
    }
    let per_thread = links.len().div_ceil(CLOSERS);
    let mut links = links;
    std::thread::scope(|scope| {
        while !links.is_empty() {
            let batch: Vec<OwnedFd> = links.drain(..per_thread.min(links.len())).collect();
            let spawned = std::thread::Builder::new()
                .stack_size(64 << 10)
                .spawn_scoped(scope, move || drop(batch));
            // No thread to be had: the batch was dropped (closed) with the
            // failed spawn's closure, here.
            let _ = spawned;
        }
    });
}

impl Drop for BpfObject {
    fn drop(&mut self) {
        self.detach_all();
    }
}

/// The program type and attach type a section names; `None` for what is
/// loaded only directly (fentry/fexit) or not at all.
fn program_kind(section: &str) -> Option<Kind> {
    let prog_type = match section.split('/').next().unwrap_or("") {
        "tracepoint" => prog::BPF_PROG_TYPE_TRACEPOINT,
        "kprobe" | "kretprobe" | "uprobe" | "uretprobe" => prog::BPF_PROG_TYPE_KPROBE,
        "perf_event" => prog::BPF_PROG_TYPE_PERF_EVENT,
        _ => return None,
    };
    Some(Kind {
        prog_type,
        attach_type: 0,
        btf_id: 0,
    })
}

/// Whether a kprobe or uprobe section is the return probe's.
fn section_returns(section: &str) -> bool {
    section.starts_with("kretprobe") || section.starts_with("uretprobe")
}

fn encode(insns: &[rstap_compiler::backend::bpf::insn::Insn]) -> Vec<[u8; 8]> {
    insns.iter().map(|i| i.encode()).collect()
}

/// A ring buffer's size: a power of two, at least a page.
fn ring_size(requested: u32, page: u32) -> u32 {
    requested
        .max(page)
        .checked_next_power_of_two()
        .unwrap_or(1 << 31)
}

pub(super) fn page_size() -> u32 {
    #[expect(unsafe_code, reason = "sysconf(3) has no wrapper in std")]
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(size).unwrap_or(4096)
}

const ONLINE_CPUS: &str = "/sys/devices/system/cpu/online";

/// The online CPUs' ids.
pub fn online_cpus() -> io::Result<Vec<i32>> {
    let text = std::fs::read_to_string(ONLINE_CPUS)?;
    super::maps::cpu_ids(&text)
        .map(|ids| {
            ids.into_iter()
                .filter_map(|c| i32::try_from(c).ok())
                .collect()
        })
        .ok_or_else(|| io::Error::other(format!("cannot parse {:?}", text.trim())))
}

fn c_string(program: &str, target: &str, s: &str) -> Result<CString, AttachError> {
    CString::new(s).map_err(|_| AttachError::Failed {
        program: program.to_string(),
        target: target.to_string(),
        reason: "the name holds a NUL byte".to_string(),
    })
}

/// The file offset of `symbol` in `binary`, from its ELF symbol table.
fn symbol_offset(
    binary: &Path,
    symbol: &str,
    program: &str,
    target: &str,
) -> Result<u64, AttachError> {
    let failed = |reason: String| AttachError::Failed {
        program: program.to_string(),
        target: target.to_string(),
        reason,
    };
    let bytes = std::fs::read(binary).map_err(|e| failed(e.to_string()))?;
    let elf = rstap_compiler::elf::parse(&binary.to_string_lossy(), &bytes).map_err(failed)?;
    elf.symbols
        .iter()
        .find(|s| s.name == symbol)
        .map(|s| s.file_offset)
        .ok_or_else(|| failed(format!("no function {symbol} in its symbol table")))
}

/// Whether the kernel can create kprobes: the `kprobe` PMU (what rstap uses)
/// or tracefs' `kprobe_events`.
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
    fn sections_say_the_program_type() {
        assert_eq!(
            program_kind("tracepoint/sched/sched_switch").map(|k| k.prog_type),
            Some(prog::BPF_PROG_TYPE_TRACEPOINT)
        );
        assert!(section_returns("kretprobe/vfs_read"));
        assert!(!section_returns("uprobe"));
        assert!(program_kind("fentry/vfs_read").is_none());
        assert!(program_kind("xdp").is_none());
    }

    #[test]
    fn ring_sizes_are_page_multiples_and_powers_of_two() {
        assert_eq!(ring_size(0, 4096), 4096);
        assert_eq!(ring_size(4096, 4096), 4096);
        assert_eq!(ring_size(5000, 4096), 8192);
        assert_eq!(ring_size(1 << 20, 4096), 1 << 20);
    }
}
