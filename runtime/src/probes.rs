//! Kernel-context probes in a run: compile them to BPF, load and attach them,
//! carry their print records to the output, and keep the globals they share
//! with user-context handlers in step — a handler sees the maps' current
//! contents, and what it deletes or writes goes back into the maps.

use crate::bpf::{BpfObject, LoadError, RingReader, Update, UprobeLocation};
use crate::engine::store::Slot;
use crate::engine::value::Value;
use crate::engine::{Engine, Limits, import, stat_spec};
use rstap_compiler::backend::bpf::codegen::{
    CodegenError, Compiled, ERROR_RECORD, EXIT_RECORD, Target, WARN_RECORD, compile,
};
use rstap_compiler::backend::bpf::layout::{GlobalMap, Role, Storage};
use rstap_compiler::backend::bpf::object::{CallbackDef, ProgramDef, write_object_with};
use rstap_compiler::hir::PointKind;
use rstap_compiler::kernel::KernelInfo;
use rstap_compiler::mir::{self, GlobalKind};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The loaded programs of one run.
#[derive(Debug)]
pub struct Kernel {
    object: BpfObject,
    compiled: Compiled,
    output: Option<RingReader>,
    /// Runtime errors the programs reported, not yet taken by the session.
    errors: Vec<crate::engine::Fault>,
    /// A program reported an error: the session is ending, and what the
    /// programs did after it (stap's probes stop at the first error) is
    /// dropped.
    failed: bool,
    /// What the last pull saw, per global: a push writes back only what a
    /// handler changed, so it never undoes the probes' updates made meanwhile.
    pulled: HashMap<usize, Pulled>,
}

#[derive(Debug)]
enum Pulled {
    Scalar(Value),
    Array(HashMap<Vec<Value>, Value>),
    Stats(i64),
    Keys(Vec<Vec<Value>>),
}

/// Why kernel-context probes could not start: one sentence, and where in the
/// script when the cause is there.
#[derive(Debug)]
pub struct StartError {
    pub msg: String,
    pub at: Option<rstap_grammar::Span>,
}

impl From<CodegenError> for StartError {
    fn from(e: CodegenError) -> StartError {
        StartError {
            msg: e.msg,
            at: e.at,
        }
    }
}

fn fail(msg: impl Into<String>) -> StartError {
    StartError {
        msg: msg.into(),
        at: None,
    }
}

/// A load failure as a sentence at the probe it concerns; the verifier's log
/// only with `-v`.
fn refused(prog: &mir::Program, compiled: &Compiled, e: LoadError, verbose: bool) -> StartError {
    let LoadError::Program {
        program,
        reason,
        verifier_log,
    } = &e
    else {
        return fail(e.to_string());
    };
    let probe = program
        .strip_prefix('p')
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|i| prog.probes.get(i).map(|p| (i, p)));
    let Some((i, p)) = probe else {
        return fail(e.to_string());
    };
    let size = compiled
        .programs
        .iter()
        .find(|c| c.probe == i)
        .map_or(0, |c| c.insns.len());
    if verbose {
        eprintln!(
            "verifier log for probe {}:\n{}",
            p.name,
            verifier_log.trim_end()
        );
    }
    StartError {
        msg: format!(
            "the kernel's verifier rejected the BPF program of this probe ({size} instructions): {reason}{}",
            if verbose {
                ""
            } else {
                "; run with -v to see the verifier's log"
            }
        ),
        at: Some(p.span),
    }
}

/// Whether probe `i` is a kprobe that one probe point of the script expanded
/// to along with other kprobes (a wildcard such as `kernel.function("vfs_*")`).
fn from_kprobe_wildcard(prog: &mir::Program, i: usize) -> bool {
    let is_kprobe = |k: &PointKind| matches!(k, PointKind::Kprobe { .. });
    let probe = &prog.probes[i];
    is_kprobe(&probe.kind)
        && prog
            .probes
            .iter()
            .enumerate()
            .any(|(j, q)| j != i && q.span == probe.span && is_kprobe(&q.kind))
}

/// What a probe attaches to, for `-v`.
fn kind_name(kind: &PointKind) -> &'static str {
    match kind {
        PointKind::Tracepoint(_) => "tracepoint",
        PointKind::Kprobe { .. } => "kprobe",
        PointKind::Uprobe { .. } => "uprobe",
        _ => "other probe",
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// The aya section of a probe's program.
fn section(kind: &PointKind) -> Result<String, StartError> {
    Ok(match kind {
        PointKind::Tracepoint(tp) => format!("tracepoint/{}/{}", tp.system, tp.name),
        PointKind::Kprobe { function, ret, .. } => {
            format!("{}/{function}", if *ret { "kretprobe" } else { "kprobe" })
        }
        PointKind::Uprobe { ret, .. } => (if *ret { "uretprobe" } else { "uprobe" }).to_string(),
        other => {
            return Err(fail(format!(
                "probes of this kind ({other:?}) cannot be loaded yet"
            )));
        }
    })
}

/// The kernel-context probes of `prog` as an ELF object (what `-p4` shows and
/// writes), with the compiler's description of it.
pub fn build_object(
    prog: &mir::Program,
    kernel: &dyn KernelInfo,
    limits: &Limits,
) -> Result<(Vec<u8>, Compiled), StartError> {
    let possible_cpus = crate::bpf::maps::possible_cpu_ids().map_err(|e| fail(e.to_string()))?;
    let target = Target {
        max_entries: u32::try_from(limits.max_map_entries).unwrap_or(u32::MAX),
        max_action: u32::try_from(limits.max_action).unwrap_or(u32::MAX),
        max_nesting: u32::try_from(limits.max_nesting).unwrap_or(u32::MAX),
        wall_offset_ns: wall_offset_ns(),
        max_string: u32::try_from(limits.max_string).unwrap_or(u32::MAX),
        possible_cpus: u32::try_from(possible_cpus).unwrap_or(u32::MAX),
    };
    let compiled = compile(prog, kernel, target)?;
    let maps: Vec<_> = compiled.maps.iter().map(|m| m.def()).collect();
    let mut programs = Vec::new();
    for p in &compiled.programs {
        programs.push(ProgramDef {
            name: format!("p{}", p.probe),
            section: section(&prog.probes[p.probe].kind)?,
            insns: p.insns.clone(),
        });
    }
    let callbacks: Vec<CallbackDef> = compiled
        .callbacks
        .iter()
        .map(|c| CallbackDef {
            name: c.name.clone(),
            insns: c.insns.clone(),
        })
        .collect();
    let bytes = write_object_with(&maps, &programs, &callbacks).map_err(fail)?;
    Ok((bytes, compiled))
}

/// Pass 4: [`build_object`], and with `verbose` a line saying what it made.
pub fn compile_pass(
    prog: &mir::Program,
    kernel: &dyn KernelInfo,
    limits: &Limits,
    verbose: bool,
) -> Result<(Vec<u8>, Compiled), StartError> {
    let started = Instant::now();
    let (bytes, compiled) = build_object(prog, kernel, limits)?;
    if verbose {
        let insns: usize = compiled.programs.iter().map(|p| p.insns.len()).sum();
        eprintln!(
            "Pass 4: compiled {} BPF programs ({insns} instructions, {} maps, a {} byte object) in {:.1} ms.",
            compiled.programs.len(),
            compiled.maps.len(),
            bytes.len(),
            ms(started)
        );
    }
    Ok((bytes, compiled))
}

/// `-p4`'s summary: each program and map of the object.
pub fn describe(prog: &mir::Program, compiled: &Compiled) -> String {
    let mut out = String::new();
    for p in &compiled.programs {
        out.push_str(&format!(
            "program p{}: {} ({} instructions)\n",
            p.probe,
            prog.probes[p.probe].name,
            p.insns.len()
        ));
    }
    for m in &compiled.maps {
        out.push_str(&format!(
            "map {}: {:?}, key {} bytes, value {} bytes, {} entries\n",
            m.name, m.kind, m.key_size, m.value_size, m.max_entries
        ));
    }
    out
}

impl Kernel {
    /// Compiles, loads and attaches every kernel-context probe of `prog`.
    pub fn start(
        prog: &mir::Program,
        kernel: &dyn KernelInfo,
        limits: &Limits,
        verbose: bool,
    ) -> Result<Kernel, StartError> {
        let (bytes, compiled) = compile_pass(prog, kernel, limits, verbose)?;
        let started = Instant::now();
        let mut object =
            BpfObject::load(&bytes).map_err(|e| refused(prog, &compiled, e, verbose))?;
        let loaded = ms(started);
        let started = Instant::now();
        let mut kinds: Vec<(&str, usize)> = Vec::new();
        let mut skipped: Vec<(&str, String)> = Vec::new();
        for p in &compiled.programs {
            let name = format!("p{}", p.probe);
            let attached = match &prog.probes[p.probe].kind {
                PointKind::Tracepoint(tp) => object.attach_tracepoint(&name, &tp.system, &tp.name),
                PointKind::Kprobe { function, .. } => object.attach_kprobe(&name, function, 0),
                PointKind::Uprobe { binary, offset, .. } => object.attach_uprobe(
                    &name,
                    Path::new(binary),
                    UprobeLocation::FileOffset(*offset),
                    None,
                ),
                _ => Ok(()),
            };
            if let Err(e) = attached {
                // One function of a wildcard the kernel will not probe (not
                // traceable, inlined away): skip it, as stap and bpftrace do.
                if from_kprobe_wildcard(prog, p.probe) {
                    skipped.push((&prog.probes[p.probe].name, e.to_string()));
                    continue;
                }
                return Err(fail(e.to_string()));
            }
            let kind = kind_name(&prog.probes[p.probe].kind);
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => kinds.push((kind, 1)),
            }
        }
        if let Some((_, why)) = skipped.first() {
            if kinds.is_empty() {
                return Err(fail(why.clone()));
            }
            eprintln!(
                "WARNING: {} kernel functions of a wildcard could not be probed and are skipped (the first: {why})",
                skipped.len()
            );
            if verbose {
                for (name, _) in &skipped {
                    eprintln!("skipped: {name}");
                }
            }
        }
        if verbose {
            let kinds: Vec<String> = kinds
                .iter()
                .map(|(k, n)| format!("{n} {k}{}", if *n == 1 { "" } else { "s" }))
                .collect();
            eprintln!(
                "Pass 5: loaded the object in {loaded:.1} ms, attached {} probes ({}) in {:.1} ms.",
                compiled.programs.len() - skipped.len(),
                kinds.join(", "),
                ms(started)
            );
        }
        let output = if compiled.maps.iter().any(|m| m.role == Role::Output) {
            Some(
                object
                    .take_ring_buffer("output")
                    .map_err(|e| fail(e.to_string()))?,
            )
        } else {
            None
        };
        Ok(Kernel {
            object,
            compiled,
            output,
            pulled: HashMap::new(),
            errors: Vec::new(),
            failed: false,
        })
    }

    /// Waits up to `timeout` for print records, then renders every waiting one
    /// into the engine's output.
    pub fn drain(&mut self, engine: &mut Engine<'_>, timeout: Option<Duration>) {
        let Some(ring) = &mut self.output else {
            if let Some(t) = timeout {
                std::thread::sleep(t);
            }
            return;
        };
        if let Some(t) = timeout {
            let _ = ring.wait(Some(t));
        }
        let (prints, sites) = (&self.compiled.prints, &self.compiled.errors);
        let (errors, failed) = (&mut self.errors, &mut self.failed);
        ring.drain(|rec| {
            if *failed {
                return;
            }
            let first = import::word(rec, 0);
            let payload = rec.get(8..).unwrap_or(&[]);
            let site = |base: i64| {
                usize::try_from(first - base)
                    .ok()
                    .and_then(|i| sites.get(i))
            };
            if first == EXIT_RECORD {
                engine.exit = true;
            } else if first >= WARN_RECORD {
                if let Some(site) = site(WARN_RECORD) {
                    engine.warnings.push(site.message(payload));
                }
            } else if first >= ERROR_RECORD {
                if let Some(site) = site(ERROR_RECORD) {
                    errors.push(crate::engine::Fault::new(site.message(payload), site.at));
                    *failed = true;
                }
            } else if let Some(print) = usize::try_from(first).ok().and_then(|i| prints.get(i)) {
                let args = import::record(rec, &print.args);
                if let Ok(bytes) = engine.render(&print.spec, &args) {
                    engine.out.extend_from_slice(&bytes);
                }
            }
        });
    }

    /// The runtime errors reported since the last call.
    pub fn take_errors(&mut self) -> Vec<crate::engine::Fault> {
        std::mem::take(&mut self.errors)
    }

    /// Print records the ring buffer had no room for.
    pub fn lost(&self) -> i64 {
        let Some(map) = self.object.map("lost") else {
            return 0;
        };
        match map.lookup_per_cpu(&0u32.to_le_bytes()) {
            Ok(Some(values)) => values.iter().map(|v| import::word(v, 0)).sum(),
            _ => 0,
        }
    }

    /// Tells the programs `target()`.
    pub fn set_target(&self, pid: i64) {
        if let Some(map) = self.object.map("target") {
            let _ = map.update(&0u32.to_le_bytes(), &pid.to_le_bytes(), Update::Any);
        }
    }

    /// Stops every probe (the maps stay readable).
    pub fn detach(&mut self) {
        self.object.detach_all();
    }

    /// The maps of globals, with their global's index.
    fn globals(compiled: &Compiled) -> impl Iterator<Item = (usize, &GlobalMap)> {
        compiled.maps.iter().filter_map(|m| match &m.role {
            Role::Global(i, g) => Some((*i, g)),
            Role::Output
            | Role::Lost
            | Role::Target
            | Role::Scratch
            | Role::Zeroes
            | Role::Keys => None,
        })
    }

    /// Copies the maps' contents into the engine's globals.
    pub fn pull(&mut self, prog: &mir::Program, engine: &mut Engine<'_>) {
        for (i, g) in Self::globals(&self.compiled) {
            let Some(map) = self.object.map(&g.name) else {
                continue;
            };
            let spec = match &prog.globals[i].kind {
                GlobalKind::Stats(s) => stat_spec(s),
                GlobalKind::Value(_) => Default::default(),
            };
            let layout = g.stat.clone().unwrap_or_default();
            let zero = 0u32.to_le_bytes();
            match (g.storage, &mut engine.store.slots[i]) {
                (Storage::Scalar, Slot::Scalar(v)) => {
                    if let Ok(Some(bytes)) = map.lookup(&zero) {
                        let n = value_of(&bytes, g);
                        *v = n.clone();
                        self.pulled.insert(i, Pulled::Scalar(n));
                    }
                }
                (Storage::Stats, Slot::Stats(s)) => {
                    if let Ok(Some(cpus)) = map.lookup_per_cpu(&zero) {
                        let shares: Vec<&[u8]> = cpus.iter().map(Vec::as_slice).collect();
                        *s = import::stat(&layout, &spec, &shares, true);
                        self.pulled.insert(i, Pulled::Stats(s.count()));
                    }
                }
                (Storage::Array, Slot::Array(a)) => {
                    a.clear();
                    let mut seen = HashMap::new();
                    for key in map.keys().flatten() {
                        if let Ok(Some(v)) = map.lookup(&key) {
                            let (k, n) = (import::keys(&key, &g.key_cols), value_of(&v, g));
                            let _ = a.entry(&k, || n.clone());
                            seen.insert(k, n);
                        }
                    }
                    self.pulled.insert(i, Pulled::Array(seen));
                }
                (Storage::StatsArray, Slot::StatsArray(a)) => {
                    a.clear();
                    let mut seen = Vec::new();
                    for key in map.keys().flatten() {
                        if let Ok(Some(cpus)) = map.lookup_per_cpu(&key) {
                            let shares: Vec<&[u8]> = cpus.iter().map(Vec::as_slice).collect();
                            let stat = import::stat(&layout, &spec, &shares, false);
                            let k = import::keys(&key, &g.key_cols);
                            let _ = a.entry(&k, || stat);
                            seen.push(k);
                        }
                    }
                    self.pulled.insert(i, Pulled::Keys(seen));
                }
                _ => {}
            }
        }
    }

    /// Writes the engine's globals back into the maps: scalars and array values
    /// as they are now, and array entries the handler deleted (or a cleared
    /// aggregate) removed.
    pub fn push(&self, engine: &Engine<'_>) {
        for (i, g) in Self::globals(&self.compiled) {
            let Some(map) = self.object.map(&g.name) else {
                continue;
            };
            let zero = 0u32.to_le_bytes();
            let pulled = self.pulled.get(&i);
            match (g.storage, &engine.store.slots[i]) {
                (Storage::Scalar, Slot::Scalar(v)) => {
                    let changed = !matches!(pulled, Some(Pulled::Scalar(n)) if n == v);
                    if changed {
                        let _ = map.update(&zero, &bytes_of(v, g), Update::Any);
                    }
                }
                (Storage::Stats, Slot::Stats(s))
                    if s.count() == 0 && !matches!(pulled, Some(Pulled::Stats(0))) =>
                {
                    let cpus = crate::bpf::maps::possible_cpus().unwrap_or(1);
                    let empty = vec![0u8; g.value_size as usize];
                    let values: Vec<&[u8]> = (0..cpus).map(|_| empty.as_slice()).collect();
                    let _ = map.update_per_cpu(&zero, &values, Update::Any);
                }
                (Storage::Array, Slot::Array(a)) => {
                    let empty = HashMap::new();
                    let before = match pulled {
                        Some(Pulled::Array(m)) => m,
                        _ => &empty,
                    };
                    let now: HashMap<Vec<Value>, Value> = a.snapshot().into_iter().collect();
                    for k in before.keys().filter(|k| !now.contains_key(*k)) {
                        let _ = map.delete(&import::pack(k, &g.key_cols));
                    }
                    for (k, v) in &now {
                        if before.get(k) != Some(v) {
                            let _ = map.update(
                                &import::pack(k, &g.key_cols),
                                &bytes_of(v, g),
                                Update::Any,
                            );
                        }
                    }
                }
                (Storage::StatsArray, Slot::StatsArray(a)) => {
                    if let Some(Pulled::Keys(before)) = pulled {
                        for k in before {
                            if a.get(k).is_none() {
                                let _ = map.delete(&import::pack(k, &g.key_cols));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// A scalar's or an array element's value as its map holds it.
fn value_of(bytes: &[u8], g: &GlobalMap) -> Value {
    import::keys(bytes, &[g.value])
        .pop()
        .unwrap_or(Value::Long(0))
}

/// The inverse of [`value_of`].
fn bytes_of(v: &Value, g: &GlobalMap) -> Vec<u8> {
    import::pack(std::slice::from_ref(v), &[g.value])
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC (what `bpf_ktime_get_ns` reads), in ns.
fn wall_offset_ns() -> i64 {
    let read = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        #[expect(unsafe_code, reason = "clock_gettime has no safe wrapper in std")]
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
        if rc == 0 {
            ts.tv_sec
                .saturating_mul(1_000_000_000)
                .saturating_add(ts.tv_nsec)
        } else {
            0
        }
    };
    read(libc::CLOCK_REALTIME) - read(libc::CLOCK_MONOTONIC)
}
