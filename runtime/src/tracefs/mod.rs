//! The tracefs runtime: kernel-context probes without BPF. The compiler's
//! tracefs backend turns each probe into an ftrace event (a tracepoint, or a
//! uprobe/kprobe event with fetch arguments); this module defines and enables
//! them in a private instance ([`instance`]), reads the per-CPU binary buffers
//! ([`reader`]), and runs each event's handler in the user-space engine with
//! the decoded record as its context ([`event`]). Globals and aggregates live
//! in the engine, so begin/end/timer handlers share them with no copying.

pub mod event;
pub mod instance;
pub mod reader;

use crate::engine::{Engine, Fault};
use crate::probes::{StartError, fail};
use event::{Event, Layout, TaskEvent};
use instance::{Dynamic, Instance};
use reader::{Batch, CpuReader, PageLayout};
use rstap_compiler::backend::tracefs::{EventDef, Source, TracefsError, plan};
use rstap_compiler::kernel::KernelInfo;
use rstap_compiler::mir;
use rstap_compiler::tracepoint::parse_format;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-CPU buffer size: a burst of about 250,000 small records fits unread.
const BUFFER_KB: u64 = 4096;

/// [`BUFFER_KB`]; in debug builds `RSTAP_TEST_TRACEFS_BUFFER_KB` overrides
/// it, so that a test can overrun the buffer for certain.
fn buffer_kb() -> u64 {
    if cfg!(debug_assertions)
        && let Some(kb) = std::env::var("RSTAP_TEST_TRACEFS_BUFFER_KB")
            .ok()
            .and_then(|v| v.parse().ok())
    {
        return kb;
    }
    BUFFER_KB
}

impl From<TracefsError> for StartError {
    fn from(e: TracefsError) -> StartError {
        StartError {
            msg: e.msg,
            at: Some(e.at),
        }
    }
}

/// The attached probes of one run on tracefs.
#[derive(Debug)]
pub struct Tracefs {
    readers: Vec<CpuReader>,
    page: PageLayout,
    /// Each event id's probes (in probe order), record layout, and what
    /// rstap itself learns from it.
    by_id: HashMap<u16, Handlers>,
    batch: Batch,
    /// Reused for every event, so its task caches live across a batch.
    event: Option<Event>,
    errors: Vec<Fault>,
    failed: bool,
    /// Records handled.
    pub handled: u64,
    /// Declared last: dropped after the readers, so the instance is not busy.
    instance: Instance,
}

/// What one event id means to the run.
#[derive(Debug)]
struct Handlers {
    probes: Vec<usize>,
    layout: Arc<Layout>,
    task: Option<TaskEvent>,
}

/// Checks that every kernel-context probe of `prog` can run on tracefs.
pub fn check(prog: &mir::Program, kernel: &dyn KernelInfo) -> Result<(), StartError> {
    plan(prog, kernel).map(|_| ()).map_err(StartError::from)
}

impl Tracefs {
    /// Plans, defines and enables every kernel-context probe of `prog`.
    pub fn start(
        prog: &mir::Program,
        kernel: &dyn KernelInfo,
        verbose: bool,
        hz: i64,
    ) -> Result<Tracefs, StartError> {
        let started = Instant::now();
        let defs = plan(prog, kernel)?;
        let root = crate::kernel::tracefs::find_or_mount(verbose).map_err(|e| fail(e.0))?;
        let swept = instance::sweep(&root);
        if swept.instances + swept.events > 0 {
            eprintln!(
                "rstap: removed {} tracefs leftovers of rstap runs that are no longer running ({} instances, {} dynamic events)",
                swept.instances + swept.events,
                swept.instances,
                swept.events
            );
        }
        let mut inst = Instance::create(&root, buffer_kb()).map_err(fail)?;
        let mut by_id: HashMap<u16, Handlers> = HashMap::new();
        let mut filters = 0;
        for def in &defs {
            let at = Some(prog.probes[def.probe].span);
            // A filter belongs to the event, so only a probe that has the
            // tracepoint to itself (and not rstap's task following) gets one.
            let alone = match &def.source {
                Source::Tracepoint { tp, .. } => {
                    defs.iter()
                        .filter(
                            |d| matches!(&d.source, Source::Tracepoint { tp: t, .. } if t == tp),
                        )
                        .count()
                        == 1
                        && !TaskEvent::ALL
                            .iter()
                            .any(|(_, sys, name)| tp.system == *sys && tp.name == *name)
                }
                _ => true,
            };
            let (id, layout) = define(&mut inst, &root, def, alone, &mut filters)
                .map_err(|msg| StartError { msg, at })?;
            by_id
                .entry(id)
                .or_insert_with(|| Handlers {
                    probes: Vec::new(),
                    layout: Arc::new(layout),
                    task: None,
                })
                .probes
                .push(def.probe);
        }
        follow_tasks(&mut inst, &root, &mut by_id);
        let page = PageLayout::read(&root);
        let mut readers = Vec::new();
        for cpu in online_cpus(&inst.dir) {
            readers.push(
                CpuReader::open(&inst.dir, cpu, page)
                    .map_err(|e| fail(format!("cannot read CPU {cpu}'s trace buffer ({e})")))?,
            );
        }
        if verbose {
            eprintln!(
                "Pass 5: enabled {} tracefs events ({} filtered) in instance {} in {:.1} ms.",
                defs.len(),
                filters,
                inst.group,
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        let event = Event::new(root, hz, crate::clock::wall_offset_ns());
        Ok(Tracefs {
            readers,
            page,
            by_id,
            batch: Batch::default(),
            event: Some(event),
            errors: Vec::new(),
            failed: false,
            handled: 0,
            instance: inst,
        })
    }

    /// Waits up to `timeout` for events, running the handler of each one
    /// read; with no timeout, handles what is waiting and returns.
    pub fn drain(&mut self, engine: &mut Engine<'_>, timeout: Option<Duration>) {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let got = self.round(engine);
            if engine.exit || self.failed {
                return;
            }
            let Some(deadline) = deadline else {
                if got == 0 {
                    return;
                }
                continue;
            };
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            if got == 0 {
                self.wait(deadline - now);
            }
        }
    }

    /// After [`Tracefs::detach`]: handles every event still buffered. A read
    /// may end early with events left (the kernel answers 0 when it cannot
    /// hand over a page yet), so the buffers count as drained only when
    /// their stats say they are empty.
    pub fn drain_all(&mut self, engine: &mut Engine<'_>) {
        for _ in 0..200 {
            self.drain(engine, None);
            if engine.exit || self.failed || self.stat_sum(&["entries"]) == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sleeps until a buffer has data or `max` has passed (capped, so a
    /// kernel that never wakes pollers still gets read often).
    fn wait(&self, max: Duration) {
        let mut fds: Vec<libc::pollfd> = self
            .readers
            .iter()
            .map(|r| libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&r.fd()),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = max.min(Duration::from_millis(10)).as_millis().max(1) as i32;
        #[expect(unsafe_code, reason = "poll(2) has no safe wrapper in std")]
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures.
        unsafe {
            libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
        }
    }

    /// Reads every CPU's waiting pages and handles their records in time
    /// order; how many records there were.
    fn round(&mut self, engine: &mut Engine<'_>) -> usize {
        self.batch.clear();
        for r in &mut self.readers {
            let _ = r.read_all(self.page, &mut self.batch);
        }
        let n = self.batch.records.len();
        if n == 0 {
            return 0;
        }
        // Each CPU's records are in order; a stable sort by time merges them.
        self.batch.records.sort_by_key(|r| r.time);
        let Some(mut ev) = self.event.take() else {
            return n;
        };
        ev.tasks.forget();
        let records = std::mem::take(&mut self.batch.records);
        for r in &records {
            if engine.exit || self.failed {
                break;
            }
            let data = self.batch.data(r);
            let Some(id) = data.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]])) else {
                continue;
            };
            let Some(h) = self.by_id.get(&id) else {
                continue;
            };
            ev.cpu = r.cpu;
            ev.time_ns = r.time as i64;
            ev.record.clear();
            ev.record.extend_from_slice(data);
            ev.layout = Arc::clone(&h.layout);
            if let Some(t) = h.task {
                ev.learn(t);
            }
            self.handled += 1;
            for &p in &h.probes {
                engine.event = Some(ev);
                let result = engine.run_probe(p);
                ev = engine.event.take().unwrap_or_else(unreachable_event);
                match result {
                    Ok(()) => {}
                    Err(f) if f.abort => {
                        engine.exit = true;
                        break;
                    }
                    Err(f) => {
                        self.errors.push(f);
                        self.failed = true;
                        break;
                    }
                }
            }
        }
        self.batch.records = records;
        self.event = Some(ev);
        n
    }

    /// `target()` is `pid` from now on (`-c`): events from before see the
    /// old value. The `-c` child already exists, held before its exec: what
    /// it is called now (the shell) names its events until its exec event.
    pub fn set_target_now(&mut self, pid: i64) {
        if let (Some(ev), Ok(tid)) = (&mut self.event, i32::try_from(pid))
            && let Ok(comm) = std::fs::read(format!("/proc/{pid}/comm"))
        {
            let comm = comm.strip_suffix(b"\n").unwrap_or(&comm).to_vec();
            ev.tasks.forked(tid, tid, comm, false);
        }
        if let Some(ev) = &mut self.event {
            ev.target_since_ns = crate::clock::now_ns(libc::CLOCK_MONOTONIC);
        }
    }

    /// The runtime errors handlers raised since the last call.
    pub fn take_errors(&mut self) -> Vec<Fault> {
        std::mem::take(&mut self.errors)
    }

    /// Stops every event; what the buffers hold can still be drained.
    pub fn detach(&mut self) {
        self.instance.disable();
    }

    /// Events the ring buffers dropped or overwrote, from each CPU's stats.
    pub fn lost(&self) -> u64 {
        let n = self.stat_sum(&["overrun", "commit overrun", "dropped events"]);
        // Pages flagged as following lost events say so too, for the same
        // events: the larger count, not the sum.
        n.max(self.batch.missed)
    }

    /// The sum over CPUs of the `keys` lines of `per_cpu/cpuN/stats`.
    fn stat_sum(&self, keys: &[&str]) -> u64 {
        let mut n = 0;
        for r in &self.readers {
            let Ok(text) = std::fs::read_to_string(
                self.instance
                    .dir
                    .join(format!("per_cpu/cpu{}/stats", r.cpu)),
            ) else {
                continue;
            };
            for line in text.lines() {
                let Some((key, value)) = line.split_once(':') else {
                    continue;
                };
                if keys.contains(&key.trim()) {
                    n += value.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
        n
    }

    /// Closes the buffers and removes every event and the instance.
    pub fn remove(mut self) {
        self.readers.clear();
        self.instance.remove();
    }
}

/// The event is always given back by the engine; a fresh one if not.
fn unreachable_event() -> Event {
    Event::new(
        std::path::PathBuf::from(crate::kernel::tracefs::TRACEFS),
        250,
        0,
    )
}

/// Defines (for dynamic events), filters and enables one probe's event; its
/// id and record layout.
fn define(
    inst: &mut Instance,
    root: &Path,
    def: &EventDef,
    may_filter: bool,
    filters: &mut usize,
) -> Result<(u16, Layout), String> {
    let name = format!("p{}", def.probe);
    // rstap's own reads of the buffers are events too (syscall.read, ...):
    // a probe that saw them would make more of them, without end. The
    // thread that reads is left out of every event.
    #[expect(unsafe_code, reason = "gettid(2) has no safe wrapper in std")]
    // SAFETY: gettid takes no arguments and cannot fail.
    let reader = unsafe { libc::gettid() };
    let not_rstap = format!("common_pid != {reader}");
    let (system, event, kind) = match &def.source {
        Source::Tracepoint { tp, filter, .. } => {
            match filter.as_ref().filter(|_| may_filter) {
                Some(f) => {
                    inst.filter(&tp.system, &tp.name, &format!("({f}) && {not_rstap}"))?;
                    *filters += 1;
                }
                None => inst.filter(&tp.system, &tp.name, &not_rstap)?,
            }
            inst.enable(&tp.system, &tp.name)?;
            (tp.system.clone(), tp.name.clone(), None)
        }
        Source::Uprobe { .. } => (inst.group.clone(), name.clone(), Some(Dynamic::Uprobe)),
        Source::Kprobe { .. } => (inst.group.clone(), name.clone(), Some(Dynamic::Kprobe)),
    };
    if let Some(kind) = kind {
        let line = def
            .source
            .definition(&inst.group, &name)
            .ok_or("no definition")?;
        let line = absolute_binary(&line, &def.source);
        inst.define(kind, &name, &line)?;
        inst.enable(&system, &event)?;
    }
    let format_path = root
        .join("events")
        .join(&system)
        .join(&event)
        .join("format");
    let text = std::fs::read_to_string(&format_path)
        .map_err(|e| format!("cannot read {} ({e})", format_path.display()))?;
    let format = parse_format(&text).map_err(|e| format!("{}: {e}", format_path.display()))?;
    let id = u16::try_from(format.id).map_err(|_| "an event id above 65535".to_string())?;
    let (args, ret, user) = match &def.source {
        Source::Tracepoint { .. } => (Vec::new(), false, false),
        Source::Uprobe { args, ret, .. } => (
            args.iter().map(|a| (a.role, a.name.clone())).collect(),
            *ret,
            true,
        ),
        Source::Kprobe { args, ret, .. } => (
            args.iter().map(|a| (a.role, a.name.clone())).collect(),
            *ret,
            false,
        ),
    };
    Ok((id, Layout::new(format.fields, &args, ret, user)))
}

/// Enables the task events that keep names and processes as they were at
/// each event (see [`event`]); a script's probe on one of them is never
/// filtered.
fn follow_tasks(inst: &mut Instance, root: &Path, by_id: &mut HashMap<u16, Handlers>) {
    for (kind, system, name) in TaskEvent::ALL {
        let Ok(text) =
            std::fs::read_to_string(root.join("events").join(system).join(name).join("format"))
        else {
            continue;
        };
        let Ok(format) = parse_format(&text) else {
            continue;
        };
        let Ok(id) = u16::try_from(format.id) else {
            continue;
        };
        match by_id.get_mut(&id) {
            Some(h) => h.task = Some(kind),
            None => {
                if inst.enable(system, name).is_ok() {
                    by_id.insert(
                        id,
                        Handlers {
                            probes: Vec::new(),
                            layout: Arc::new(Layout::new(format.fields, &[], false, false)),
                            task: Some(kind),
                        },
                    );
                }
            }
        }
    }
}

/// uprobe_events needs an absolute path; the compiler kept the script's.
fn absolute_binary(line: &str, source: &Source) -> String {
    let Source::Uprobe { binary, .. } = source else {
        return line.to_string();
    };
    match std::fs::canonicalize(binary) {
        Ok(abs)
            if !abs
                .as_os_str()
                .to_string_lossy()
                .contains(char::is_whitespace) =>
        {
            line.replacen(&format!(" {binary}:"), &format!(" {}:", abs.display()), 1)
        }
        _ => line.to_string(),
    }
}

/// The CPUs the instance has buffers for.
fn online_cpus(instance: &Path) -> Vec<u32> {
    let mut cpus: Vec<u32> = std::fs::read_dir(instance.join("per_cpu"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    cpus.sort_unstable();
    cpus
}

/// Whether this process may use BPF at all: a trivial tracepoint program is
/// loaded and closed. `Err` carries the kernel's answer when it is a lack of
/// permission or support (EPERM, EACCES, ENOSYS, EINVAL, EOPNOTSUPP), which
/// is when `--runtime=auto` falls back to tracefs.
pub fn bpf_usable() -> Result<(), std::io::Error> {
    use crate::bpf::sys::{BPF_PROG_LOAD, ProgLoadAttr, bpf};
    // mov r0, 0; exit
    let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
    let license = b"GPL\0";
    let attr = ProgLoadAttr {
        prog_type: 5, // BPF_PROG_TYPE_TRACEPOINT
        insn_cnt: 2,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..ProgLoadAttr::default()
    };
    match bpf(BPF_PROG_LOAD, &attr) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPERM | libc::EACCES | libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP)
            ) =>
        {
            Err(e)
        }
        // Anything else (out of memory...) is not a reason to change runtime.
        Err(_) => Ok(()),
    }
}
