//! Kernel-context probes in a run: compile them to BPF, load and attach them,
//! carry their print records to the output, and keep the globals they share
//! with user-context handlers in step — a handler sees the maps' current
//! contents, and what it deletes or writes goes back into the maps.

use crate::attach;
use crate::bpf::{BpfObject, LoadError, RingReader, Update};
use crate::engine::store::Slot;
use crate::engine::value::Value;
use crate::engine::{Engine, Limits, import, stat_spec};
use crate::symbols::Symbols;
use rstap_compiler::backend::bpf::codegen::{
    CodegenError, Compiled, ERROR_RECORD, EXIT_RECORD, SYSTEM_RECORD, Target, WARN_RECORD, compile,
};
use rstap_compiler::backend::bpf::layout::{GlobalMap, Role, Storage};
use rstap_compiler::backend::bpf::object::{CallbackDef, MapDef, ProgramDef, write_object_with};
use rstap_compiler::hir::PointKind;
use rstap_compiler::kernel::KernelInfo;
use rstap_compiler::mir::{self, GlobalKind};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The loaded programs of one run.
#[derive(Debug)]
pub struct Kernel {
    object: BpfObject,
    compiled: Compiled,
    output: Option<RingReader>,
    /// Runtime errors the programs reported, not yet taken by the session.
    errors: Vec<crate::engine::Fault>,
    /// The programs reported more errors than MAXERRORS: the session is
    /// ending, and what the programs did after that error (stap's probes
    /// stop there) is dropped.
    failed: bool,
    /// Errors reported so far, and how many the session survives.
    reported: u64,
    max_errors: u64,
    /// What the last pull saw, per global: a push writes back only what a
    /// handler changed, so it never undoes the probes' updates made meanwhile.
    pulled: HashMap<usize, Pulled>,
}

#[derive(Debug)]
enum Pulled {
    Scalar(Value),
    Array(HashMap<Vec<Value>, Value>, Raw),
    Stats(i64),
    Keys(Vec<Vec<Value>>, Raw),
}

/// The map's own keys behind each engine key that holds a symbol token's name
/// (see [`Symbols::detokenize`](crate::symbols::Symbols::detokenize)): tokens
/// of one function's pcs are several keys in the map, one in the engine.
type Raw = HashMap<Vec<Value>, Vec<Vec<u8>>>;

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

pub(crate) fn fail(msg: impl Into<String>) -> StartError {
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
    let Some((i, p)) = program_probe(prog, program) else {
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

/// The probe whose BPF program is called `program` (`p<index>`).
fn program_probe<'p>(prog: &'p mir::Program, program: &str) -> Option<(usize, &'p mir::Probe)> {
    program
        .strip_prefix('p')
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|i| prog.probes.get(i).map(|p| (i, p)))
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// How pass 4 builds the kernel side and pass 5 attaches it.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildOptions {
    pub limits: Limits,
    /// Say what each pass did (`-v`).
    pub verbose: bool,
    /// Probe kernel functions with kprobes even where fentry/fexit would do.
    pub kprobes_only: bool,
    /// Show the verifier's log of every program it accepts (`-vv`).
    pub verifier_log: bool,
}

/// The ELF section of a program: its type and attach point, as libbpf names
/// them.
fn section(kind: &PointKind, trampoline: bool) -> Result<String, StartError> {
    Ok(match kind {
        PointKind::Tracepoint(tp) => format!("tracepoint/{}/{}", tp.system, tp.name),
        PointKind::Kprobe { function, ret, .. } if trampoline => {
            format!("{}/{function}", if *ret { "fexit" } else { "fentry" })
        }
        PointKind::Kprobe { function, ret, .. } => {
            format!("{}/{function}", if *ret { "kretprobe" } else { "kprobe" })
        }
        PointKind::Uprobe { ret, .. } => (if *ret { "uretprobe" } else { "uprobe" }).to_string(),
        PointKind::Usdt { .. } => "uprobe".to_string(),
        PointKind::Perf { .. } | PointKind::Profile => "perf_event".to_string(),
        other => {
            return Err(fail(format!(
                "probes of this kind ({other:?}) cannot be loaded yet"
            )));
        }
    })
}

/// The kernel-context probes of `prog`, compiled: the compiler's description
/// and the object's maps, programs and callbacks.
#[derive(Debug)]
pub struct Built {
    pub compiled: Compiled,
    pub maps: Vec<MapDef>,
    pub programs: Vec<ProgramDef>,
    pub callbacks: Vec<CallbackDef>,
}

impl Built {
    /// The ELF object `-p4 -o` writes.
    pub fn elf(&self) -> Result<Vec<u8>, StartError> {
        write_object_with(&self.maps, &self.programs, &self.callbacks).map_err(fail)
    }
}

/// Compiles the kernel-context probes of `prog`.
pub fn build(
    prog: &mir::Program,
    kernel: &dyn KernelInfo,
    opts: &BuildOptions,
) -> Result<Built, StartError> {
    let limits = &opts.limits;
    let possible_cpus = crate::bpf::maps::possible_cpu_ids().map_err(|e| fail(e.to_string()))?;
    let target = Target {
        max_entries: u32::try_from(limits.max_map_entries).unwrap_or(u32::MAX),
        max_action: u32::try_from(limits.max_action).unwrap_or(u32::MAX),
        max_nesting: u32::try_from(limits.max_nesting).unwrap_or(u32::MAX),
        wall_offset_ns: crate::clock::wall_offset_ns(),
        max_string: u32::try_from(limits.max_string).unwrap_or(u32::MAX),
        possible_cpus: u32::try_from(possible_cpus).unwrap_or(u32::MAX),
        fentry: !opts.kprobes_only,
        tracer_pid: i32::try_from(std::process::id()).unwrap_or(0),
    };
    build_for(prog, kernel, target)
}

/// [`build`] for a given target: the compiled programs, named and placed in
/// the sections the loader attaches by.
pub fn build_for(
    prog: &mir::Program,
    kernel: &dyn KernelInfo,
    target: Target,
) -> Result<Built, StartError> {
    let compiled = compile(prog, kernel, target)?;
    let maps: Vec<_> = compiled.maps.iter().map(|m| m.def()).collect();
    let mut programs = Vec::new();
    for p in &compiled.programs {
        programs.push(ProgramDef {
            name: attach::program_name(p),
            section: section(&prog.probes[p.probe].kind, p.trampoline)?,
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
    Ok(Built {
        compiled,
        maps,
        programs,
        callbacks,
    })
}

/// Pass 4: [`build`], and with `verbose` a line saying what it made.
pub fn compile_pass(
    prog: &mir::Program,
    kernel: &dyn KernelInfo,
    opts: &BuildOptions,
) -> Result<Built, StartError> {
    let started = Instant::now();
    let built = build(prog, kernel, opts)?;
    if opts.verbose {
        let compiled = &built.compiled;
        let insns: usize = compiled.programs.iter().map(|p| p.insns.len()).sum();
        eprintln!(
            "Pass 4: compiled {} BPF programs ({insns} instructions, {} maps) in {:.1} ms.",
            compiled.programs.len(),
            compiled.maps.len(),
            ms(started)
        );
    }
    Ok(built)
}

/// `-p4`'s summary: each program and map of the object.
pub fn describe(prog: &mir::Program, compiled: &Compiled) -> String {
    let mut out = String::new();
    for p in &compiled.programs {
        let more = match p.also.len() {
            0 => String::new(),
            n => format!(" and {n} more functions"),
        };
        let how = if p.trampoline { ", a trampoline" } else { "" };
        out.push_str(&format!(
            "program {}: {}{more} ({} instructions{how})\n",
            attach::program_name(p),
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
    /// `target()` and the globals the user-space engine holds (`-G`, what
    /// begin probes set) reach the maps before the first probe is attached.
    pub fn start(
        prog: &mir::Program,
        kernel: &dyn KernelInfo,
        opts: &BuildOptions,
        engine: &Engine<'_>,
    ) -> Result<Kernel, StartError> {
        let verbose = opts.verbose;
        let built = compile_pass(prog, kernel, opts)?;
        let started = Instant::now();
        let compiled = built.compiled;
        let later = attach::loaded_directly(prog, &compiled, kernel);
        let refuse = |e| refused(prog, &compiled, e, verbose);
        let mut object =
            BpfObject::create(&built.maps, &built.programs, &built.callbacks).map_err(refuse)?;
        if opts.verifier_log {
            object.keep_verifier_logs();
        }
        object.load_all_except(&later).map_err(refuse)?;
        let loaded = ms(started);
        let mut k = Kernel {
            object,
            compiled,
            output: None,
            pulled: HashMap::new(),
            errors: Vec::new(),
            failed: false,
            reported: 0,
            max_errors: opts.limits.max_errors,
        };
        k.set_target(engine.host.target);
        k.fill_functions(&engine.symbols);
        k.push(engine);
        let started = Instant::now();
        let refuse = |e| refused(prog, &k.compiled, e, verbose);
        let attached = attach::attach_all(&mut k.object, prog, &k.compiled, kernel, &refuse)?;
        if let Some((_, why)) = attached.skipped.first() {
            eprintln!(
                "WARNING: {} kernel functions of a wildcard could not be probed and are skipped (the first: {why})",
                attached.skipped.len()
            );
            if verbose {
                for (name, _) in &attached.skipped {
                    eprintln!("skipped: {name}");
                }
            }
        }
        // Programs loaded while attaching (fentry/fexit) name the ring
        // buffer too: it leaves the object only now.
        if k.compiled.maps.iter().any(|m| m.role == Role::Output) {
            k.output = Some(
                k.object
                    .take_ring_buffer("output")
                    .map_err(|e| fail(e.to_string()))?,
            );
        }
        for (program, log) in k.object.take_verifier_logs() {
            eprintln!(
                "verifier log of {}:\n{}",
                program_probe(prog, &program).map_or(program.as_str(), |(_, p)| p.name.as_str()),
                log.trim_end()
            );
        }
        if verbose {
            eprintln!(
                "Pass 5: loaded the object in {loaded:.1} ms, attached {} probes ({}) in {:.1} ms.",
                attached.total(),
                attached.summary(),
                ms(started)
            );
        }
        Ok(k)
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
        let (reported, max_errors) = (&mut self.reported, self.max_errors);
        let mut raise = |fault: crate::engine::Fault, failed: &mut bool| {
            errors.push(fault);
            *reported += 1;
            *failed = *reported > max_errors;
        };
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
            } else if first >= SYSTEM_RECORD {
                if let Some(site) = site(SYSTEM_RECORD) {
                    engine.commands.push(site.message(payload));
                }
            } else if first >= WARN_RECORD {
                if let Some(site) = site(WARN_RECORD) {
                    engine.warnings.push(site.message(payload));
                }
            } else if first >= ERROR_RECORD {
                if let Some(site) = site(ERROR_RECORD) {
                    let fault = crate::engine::Fault::new(site.message(payload), site.at);
                    raise(fault, failed);
                }
            } else if let Some(print) = usize::try_from(first).ok().and_then(|i| prints.get(i)) {
                let mut args = import::record(rec, &print.args);
                if print.deferred.iter().any(Option::is_some) {
                    let max = engine.limits.max_string;
                    engine.symbols.fill(print, rec, &mut args, max);
                }
                for arg in &mut args {
                    if let Value::Str(s) = arg
                        && let Some(name) = engine.symbols.detokenize(s)
                    {
                        *s = name;
                    }
                }
                match engine.render(&print.spec, &args) {
                    Ok(bytes) => engine.emit(print.spec.kind, &bytes),
                    // A call deferred to the printing failed: the handler's
                    // error, as if it had run there.
                    Err(fault) => raise(fault, failed),
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

    /// Fills the `functions` map, by which sampling probes round a kernel pc
    /// down to its symbol: 0, the addresses in order, then `u64::MAX`. A
    /// kernel with more symbols than the map holds gets only the padding:
    /// its pcs are not rounded (and its profile's arrays hold more keys).
    fn fill_functions(&self, symbols: &Symbols) {
        let Some(spec) = self
            .compiled
            .maps
            .iter()
            .find(|m| m.role == Role::Functions)
        else {
            return;
        };
        let Some(map) = self.object.map(&spec.name) else {
            return;
        };
        let slots = (spec.value_size / 8) as usize;
        let addresses = symbols.kernel_addresses();
        let known = if addresses.len() < slots {
            addresses
        } else {
            &[]
        };
        let bytes: Vec<u8> = std::iter::once(0)
            .chain(known.iter().copied())
            .chain(std::iter::repeat(u64::MAX))
            .take(slots)
            .flat_map(u64::to_le_bytes)
            .collect();
        let _ = map.update(&0u32.to_le_bytes(), &bytes, Update::Any);
    }

    /// Tells the programs `target()`.
    pub fn set_target(&self, pid: i64) {
        self.set_target_word(0, pid);
    }

    /// Tells the programs the run is ending: from now on no handler starts
    /// (as `exit()` in a handler does).
    pub fn set_exiting(&self) {
        let word = rstap_compiler::backend::bpf::codegen::EXITING;
        self.set_target_word(usize::try_from(word).unwrap_or(1), 1);
    }

    /// Sets one word of the `target` map's only value, keeping the other.
    fn set_target_word(&self, word: usize, value: i64) {
        let Some(map) = self.object.map("target") else {
            return;
        };
        let key = 0u32.to_le_bytes();
        let mut bytes = map.lookup(&key).ok().flatten().unwrap_or_default();
        bytes.resize(16, 0);
        bytes[word * 8..word * 8 + 8].copy_from_slice(&value.to_le_bytes());
        let _ = map.update(&key, &bytes, Update::Any);
    }

    /// Stops every probe (the maps stay readable).
    pub fn detach(&mut self) {
        self.object.detach_all();
    }

    /// Stops every probe, in a child process when there are many (see
    /// [`BpfObject::detach_in_background`]); the programs must be inert
    /// already ([`Kernel::set_exiting`]).
    pub fn detach_soon(&mut self) {
        if !self.object.detach_in_background() {
            self.object.detach_all();
        }
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
            | Role::Functions
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
                        let n = named(value_of(&bytes, g), &engine.symbols);
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
                    let (mut seen, mut raw) = (HashMap::new(), Raw::new());
                    for key in map.keys().flatten() {
                        if let Ok(Some(v)) = map.lookup(&key) {
                            let n = named(value_of(&v, g), &engine.symbols);
                            let k = named_keys(&key, g, &engine.symbols, &mut raw);
                            // One function's pcs: counts and sums add up, as
                            // `p[probefunc()]++` means them to.
                            let n = match seen.get(&k) {
                                Some(Value::Long(m)) => Value::Long(m.wrapping_add(n.long())),
                                Some(first) => first.clone(),
                                None => n,
                            };
                            if let Ok(slot) = a.entry(&k, || n.clone()) {
                                slot.clone_from(&n);
                            }
                            seen.insert(k, n);
                        }
                    }
                    self.pulled.insert(i, Pulled::Array(seen, raw));
                }
                (Storage::StatsArray, Slot::StatsArray(a)) => {
                    a.clear();
                    let (mut seen, mut raw) = (Vec::new(), Raw::new());
                    for key in map.keys().flatten() {
                        if let Ok(Some(cpus)) = map.lookup_per_cpu(&key) {
                            let shares: Vec<&[u8]> = cpus.iter().map(Vec::as_slice).collect();
                            let stat = import::stat(&layout, &spec, &shares, false);
                            let k = named_keys(&key, g, &engine.symbols, &mut raw);
                            let mut fresh = false;
                            if let Ok(slot) = a.entry(&k, || {
                                fresh = true;
                                stat.clone()
                            }) && !fresh
                            {
                                slot.merge(&stat);
                            }
                            if fresh {
                                seen.push(k);
                            }
                        }
                    }
                    self.pulled.insert(i, Pulled::Keys(seen, raw));
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
                    let (empty, no_raw) = (HashMap::new(), Raw::new());
                    let (before, raw) = match pulled {
                        Some(Pulled::Array(m, raw)) => (m, raw),
                        _ => (&empty, &no_raw),
                    };
                    let delete = |k: &Vec<Value>| {
                        for key in raw.get(k).into_iter().flatten() {
                            let _ = map.delete(key);
                        }
                        // The name itself, if a handler wrote it back before.
                        let _ = map.delete(&import::pack(k, &g.key_cols));
                    };
                    let now: HashMap<Vec<Value>, Value> = a.snapshot().into_iter().collect();
                    for k in before.keys().filter(|k| !now.contains_key(*k)) {
                        delete(k);
                    }
                    for (k, v) in &now {
                        if before.get(k) != Some(v) {
                            // A name written back replaces the tokens it was
                            // read from.
                            if raw.contains_key(k) {
                                delete(k);
                            }
                            let _ = map.update(
                                &import::pack(k, &g.key_cols),
                                &bytes_of(v, g),
                                Update::Any,
                            );
                        }
                    }
                }
                (Storage::StatsArray, Slot::StatsArray(a)) => {
                    if let Some(Pulled::Keys(before, raw)) = pulled {
                        for k in before {
                            if a.get(k).is_none() {
                                for key in raw.get(k).into_iter().flatten() {
                                    let _ = map.delete(key);
                                }
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

/// `v` with the symbol tokens of a string named.
fn named(v: Value, symbols: &Symbols) -> Value {
    match &v {
        Value::Str(s) => symbols.detokenize(s).map_or(v, Value::Str),
        Value::Long(_) => v,
    }
}

/// A map key's columns, symbol tokens named; where one was, `raw` records the
/// map's key behind the named one.
fn named_keys(key: &[u8], g: &GlobalMap, symbols: &Symbols, raw: &mut Raw) -> Vec<Value> {
    let mut tokens = false;
    let keys: Vec<Value> = import::keys(key, &g.key_cols)
        .into_iter()
        .map(|k| match &k {
            Value::Str(s) => match symbols.detokenize(s) {
                Some(name) => {
                    tokens = true;
                    Value::Str(name)
                }
                None => k,
            },
            Value::Long(_) => k,
        })
        .collect();
    if tokens {
        raw.entry(keys.clone()).or_default().push(key.to_vec());
    }
    keys
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
