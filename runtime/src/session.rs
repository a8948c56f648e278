//! One run of a script (pass 5): begin probes in priority order, then timers
//! until `exit()`, SIGINT/SIGTERM, `-T`, or the `-c` child's exit; then end probes
//! (error probes instead after a runtime error), unread globals, and the summary.
//! Errors are reported as stap reports them: `ERROR: <msg> near <token> at
//! FILE:LINE:COL`, then `WARNING: Number of errors: N, skipped probes: M`.

use crate::engine::{Engine, Fault, Host, Limits};
use crate::probes::{Kernel, StartError};
use rstap_compiler::hir::{PointKind, TimerUnit};
use rstap_compiler::kernel::KernelInfo;
use rstap_compiler::mir;
use rstap_grammar::{SourceMap, Span};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Which runtime runs kernel-context probes (`--runtime`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Runtime {
    /// BPF programs.
    Bpf,
    /// ftrace events in a tracefs instance, handlers in the user-space engine.
    Tracefs,
    /// BPF, or tracefs (with a warning) when this process may not use BPF.
    #[default]
    Auto,
}

/// What `rstap` was asked to do besides the script.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub limits: Limits,
    /// `-T SECS`.
    pub timeout: Option<Duration>,
    /// `-c CMD`.
    pub command: Option<String>,
    /// `-x PID`.
    pub target: Option<i64>,
    /// `-o FILE`.
    pub output: Option<String>,
    /// `-G VAR=VALUE`.
    pub set_globals: Vec<(String, String)>,
    /// `-v`: the verifier's log when it refuses a program.
    pub verbose: bool,
    /// `--kprobes`: no fentry/fexit trampolines.
    pub kprobes_only: bool,
    /// `-vv`: the verifier's log of every program, accepted or not.
    pub verifier_log: bool,
    /// `--format=json`: script output as JSON records.
    pub json: bool,
    /// `--runtime`.
    pub runtime: Runtime,
}

impl RunOptions {
    /// What building and attaching the kernel side needs of these options.
    pub fn build(&self) -> crate::probes::BuildOptions {
        crate::probes::BuildOptions {
            limits: self.limits,
            verbose: self.verbose,
            kprobes_only: self.kprobes_only,
            verifier_log: self.verifier_log,
        }
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

/// The first SIGINT or SIGTERM asks the run to stop (end probes, output,
/// summary); a second one exits at once. Every BPF program, map and link
/// rstap holds is a file descriptor, so the kernel detaches them on exit.
extern "C" fn on_signal(_: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        const MSG: &[u8] = b"rstap: interrupted again, exiting without running end probes\n";
        #[expect(
            unsafe_code,
            reason = "write(2) and _exit(2) are the async-signal-safe way out of a handler"
        )]
        // SAFETY: MSG is a valid buffer of MSG.len() bytes; _exit never returns.
        unsafe {
            libc::write(2, MSG.as_ptr().cast(), MSG.len());
            libc::_exit(1);
        }
    }
}

fn install_signals() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        #[expect(
            unsafe_code,
            reason = "installing a signal handler has no safe wrapper in std"
        )]
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, handler);
        }
    }
}

/// Creates (or truncates) an output file. Running as root, rstap does not
/// follow a symbolic link there: a link planted by another user would make
/// it overwrite any file on the system.
pub fn create_output(path: &str) -> std::io::Result<std::fs::File> {
    open_output(path, true)
}

/// Writes `bytes` as the whole of output file `path` (symbolic links as
/// [`create_output`]). An existing file is overwritten in place and then cut
/// to length, not first truncated to nothing: on ext4 a file truncated to
/// zero and rewritten is flushed to disk when it is closed, which made
/// writing a 1 KB object cost 0.6 ms. A device or pipe (`/dev/null`) is
/// written as it is.
pub fn write_output(path: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = open_output(path, false)?;
    f.write_all(bytes)?;
    if f.metadata()?.is_file() {
        f.set_len(u64::try_from(bytes.len()).unwrap_or(u64::MAX))?;
    }
    Ok(())
}

fn open_output(path: &str, truncate: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    #[expect(unsafe_code, reason = "geteuid(2) has no safe wrapper in std")]
    // SAFETY: geteuid takes no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(truncate);
    if root {
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map_err(|e| {
        if root && e.raw_os_error() == Some(libc::ELOOP) {
            std::io::Error::other("it is a symbolic link, which rstap does not follow as root")
        } else {
            e
        }
    })
}

/// A run that failed (exit status 1); what went wrong is already on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failed;

/// Runs `prog`.
pub fn run(
    prog: &mir::Program,
    files: &SourceMap,
    kernel: &dyn KernelInfo,
    opts: &RunOptions,
) -> Result<(), Failed> {
    if let Err(msg) = crate::engine::check_histograms(prog) {
        eprintln!("ERROR: {msg}");
        return Err(Failed);
    }
    let mut out: Box<dyn Write> = match &opts.output {
        Some(path) => match create_output(path) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => {
                eprintln!("rstap: cannot open output file '{path}': {e}");
                return Err(Failed);
            }
        },
        None => Box::new(std::io::stdout()),
    };
    install_signals();
    let mut engine = Engine::new(prog, opts.limits, host(opts.target.unwrap_or(0)));
    engine.json = opts.json;
    for (name, value) in &opts.set_globals {
        set_global(prog, &mut engine, name, value)?;
    }
    let mut s = Session {
        engine,
        files,
        errors: 0,
        out: &mut out,
        probes: None,
        commands: Vec::new(),
        tracefs: None,
        closed: false,
    };
    let by_priority = |want: fn(&PointKind) -> Option<i64>| {
        let mut v: Vec<(i64, usize)> = prog
            .probes
            .iter()
            .enumerate()
            .filter_map(|(i, p)| want(&p.kind).map(|prio| (prio, i)))
            .collect();
        v.sort_by_key(|&(prio, _)| prio);
        v.into_iter().map(|(_, i)| i).collect::<Vec<_>>()
    };
    // The -c child exists, held before its exec, before anything runs: its
    // pid is target() for the begin probes and in the kernel's maps before
    // the first probe is attached, so none of its events is missed.
    let mut held = None;
    if let Some(cmd) = &opts.command {
        match crate::child::spawn_held(cmd) {
            Ok(h) => {
                s.engine.host.target = i64::from(h.id());
                held = Some(h);
            }
            Err(e) => {
                eprintln!("rstap: cannot start command '{cmd}': {e}");
                s.errors += 1;
            }
        }
    }
    let begins = by_priority(|k| match k {
        PointKind::Begin(p) => Some(*p),
        _ => None,
    });
    for i in begins {
        if s.stopping() {
            break;
        }
        s.fire(i);
    }
    let in_kernel = prog
        .probes
        .iter()
        .any(|p| p.context == mir::Context::Kernel);
    let runtime = match opts.runtime {
        Runtime::Auto if in_kernel => match crate::tracefs::bpf_usable() {
            Ok(()) => Runtime::Bpf,
            Err(e) => {
                let why = match e.raw_os_error() {
                    Some(libc::EPERM) => crate::privilege::denied(),
                    _ => e.to_string(),
                };
                eprintln!(
                    "WARNING: BPF is not available to rstap here ({why}); running on the tracefs runtime"
                );
                Runtime::Tracefs
            }
        },
        r => r,
    };
    if in_kernel && !s.stopping() && runtime == Runtime::Tracefs {
        match crate::tracefs::Tracefs::start(prog, kernel, opts.verbose, s.engine.host.hz) {
            Ok(mut t) => {
                // The -c child exists already: every event sees target().
                t.set_target_now(s.engine.host.target);
                s.tracefs = Some(t);
            }
            Err(e) => {
                report_start(files, &e);
                return Err(Failed);
            }
        }
    } else if in_kernel && !s.stopping() {
        match Kernel::start(prog, kernel, &opts.build(), &s.engine) {
            Ok(k) => s.probes = Some(k),
            Err(e) => {
                report_start(files, &e);
                return Err(Failed);
            }
        }
    }
    // A held child that is not released gives up when its pipe closes.
    let mut child = held
        .filter(|_| !s.stopping())
        .map(crate::child::Held::release);
    s.run_timers(prog, opts.timeout.map(|t| Instant::now() + t), &mut child);
    let mut lost = 0;
    if let Some(k) = &mut s.probes {
        // What happened after the run began to end is not reported: only
        // the records already made are printed. No handler starts after the
        // flag; one already running (BPF programs run to completion, without
        // sleeping, in microseconds) is given a moment to finish.
        k.set_exiting();
        std::thread::sleep(Duration::from_millis(5));
        k.drain(&mut s.engine, None);
        lost = k.lost();
    }
    let mut lost_events = 0;
    if let Some(t) = &mut s.tracefs {
        t.detach();
        t.drain_all(&mut s.engine);
        lost_events = t.lost();
    }
    if let Some(t) = s.tracefs.take() {
        t.remove();
    }
    s.flush();
    s.kernel_errors();
    let ends = by_priority(|k| match k {
        PointKind::End(p) => Some(*p),
        _ => None,
    });
    let errors = by_priority(|k| match k {
        PointKind::Error(p) => Some(*p),
        _ => None,
    });
    let (last, failed) = if s.fatal() {
        (errors, true)
    } else {
        (ends, false)
    };
    for i in last {
        s.engine.exit = false;
        s.fire(i);
        if s.fatal() && !failed {
            // An error past MAXERRORS in an end probe ends the end phase too.
            break;
        }
    }
    if opts.json {
        // The text format prints these from synthesized end probes.
        if let Some(k) = &mut s.probes {
            k.pull(prog, &mut s.engine);
        }
        let globals = crate::json_report::unread_globals(prog, &s.engine.store);
        s.engine.out.extend_from_slice(&globals);
        if lost > 0 {
            let record = crate::json_report::lost("records", lost);
            s.engine.out.extend_from_slice(&record);
        }
        if lost_events > 0 {
            let events = i64::try_from(lost_events).unwrap_or(i64::MAX);
            let record = crate::json_report::lost("events", events);
            s.engine.out.extend_from_slice(&record);
        }
    }
    s.flush();
    // Detach last: closing a tracepoint's perf event waits for the kernel's
    // RCU grace periods (seconds for the 360 of syscall.*), and the output
    // is out already; the programs have done nothing since the flag. A
    // child process closes the attachments, and rstap exits at once.
    if let Some(k) = &mut s.probes {
        k.detach_soon();
    }
    for mut c in std::mem::take(&mut s.commands) {
        let _ = c.wait();
    }
    if let Some(mut c) = child {
        crate::child::finish_target(&mut c);
    }
    if lost > 0 {
        eprintln!("WARNING: {lost} print records were lost (the output buffer was full)");
    }
    if lost_events > 0 {
        eprintln!(
            "WARNING: {lost_events} events were lost (the tracefs ring buffer was full; see per_cpu/cpuN/stats)"
        );
    }
    if s.errors > 0 {
        eprintln!("WARNING: Number of errors: {}, skipped probes: 0", s.errors);
        return Err(Failed);
    }
    Ok(())
}

struct Session<'p, 'o> {
    engine: Engine<'p>,
    files: &'p SourceMap,
    errors: u64,
    out: &'o mut Box<dyn Write>,
    /// The kernel-context probes, once attached.
    probes: Option<Kernel>,
    /// `system()` commands still running.
    commands: Vec<std::process::Child>,
    /// The kernel-context probes on the tracefs runtime, once enabled.
    tracefs: Option<crate::tracefs::Tracefs>,
    /// The reader of the output went away (`rstap ... | head -1`): stop
    /// quietly, as a program killed by SIGPIPE would, but still clean up.
    closed: bool,
}

impl Session<'_, '_> {
    /// Whether the run is ending: `exit()`, a signal, or an error.
    fn stopping(&self) -> bool {
        self.engine.exit || self.fatal() || self.closed || STOP.load(Ordering::SeqCst)
    }

    /// Whether the errors so far end the session: more than MAXERRORS.
    fn fatal(&self) -> bool {
        self.errors > self.engine.limits.max_errors
    }

    /// Runs one handler, reporting its error and keeping what it printed.
    /// Reports the runtime errors the kernel-context probes raised.
    fn kernel_errors(&mut self) {
        let faults = match (&mut self.probes, &mut self.tracefs) {
            (Some(k), _) => k.take_errors(),
            (None, Some(t)) => t.take_errors(),
            (None, None) => return,
        };
        // The error past MAXERRORS stops the run, as in stap: handlers
        // already under way in the kernel may report more, which stap would
        // not have run.
        for fault in faults {
            if !self.fatal() {
                self.report(&fault);
                self.errors += 1;
            }
        }
    }

    fn fire(&mut self, probe: usize) {
        if let Some(k) = &mut self.probes {
            k.drain(&mut self.engine, None);
            k.pull(self.engine.program(), &mut self.engine);
        }
        if let Some(t) = &mut self.tracefs {
            t.drain(&mut self.engine, None);
        }
        self.kernel_errors();
        let result = self.engine.run_probe(probe);
        if let Some(k) = &self.probes {
            k.push(&self.engine);
        }
        self.flush();
        for w in std::mem::take(&mut self.engine.warnings) {
            eprintln!("WARNING: {w}");
            if self.engine.json {
                let record = crate::json_report::warning(&w);
                self.engine.out.extend_from_slice(&record);
            }
        }
        self.flush();
        match result {
            Err(fault) if fault.abort => {}
            Err(fault) => {
                self.report(&fault);
                self.errors += 1;
            }
            Ok(()) => {}
        }
    }

    /// Starts the commands `system()` asked for, after the output printed
    /// before them.
    fn start_commands(&mut self) {
        for cmd in std::mem::take(&mut self.engine.commands) {
            match crate::child::system(&cmd) {
                Ok(child) => self.commands.push(child),
                Err(e) => eprintln!("WARNING: system(\"{cmd}\") could not start: {e}"),
            }
        }
        // Reap those that are done; the rest are waited for at the end.
        self.commands
            .retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
    }

    fn flush(&mut self) {
        let mut written = Ok(());
        if !self.engine.out.is_empty() && !self.closed {
            written = self.out.write_all(&self.engine.out);
        }
        self.engine.out.clear();
        if !self.closed {
            written = written.and_then(|()| self.out.flush());
        }
        // Rust ignores SIGPIPE, so a closed pipe is this error.
        if written.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
            self.closed = true;
        }
        if !self.engine.commands.is_empty() || !self.commands.is_empty() {
            self.start_commands();
        }
    }

    fn report(&mut self, fault: &Fault) {
        let near = fault.at.map(|at| near(self.files, at));
        match &near {
            Some(near) => eprintln!("ERROR: {} near {near}", fault.msg),
            None => eprintln!("ERROR: {}", fault.msg),
        }
        if self.engine.json {
            let record = crate::json_report::error(&fault.msg, near);
            self.engine.out.extend_from_slice(&record);
            self.flush();
        }
    }

    /// Fires timers until the run should stop.
    fn run_timers(
        &mut self,
        prog: &mir::Program,
        deadline: Option<Instant>,
        child: &mut Option<std::process::Child>,
    ) {
        let start = Instant::now();
        let hz = self.engine.host.hz.max(1);
        let mut timers: Vec<(usize, Duration, Duration, Instant)> = prog
            .probes
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p.kind {
                PointKind::Timer {
                    unit,
                    interval,
                    randomize,
                } => {
                    let ns = |n: i64| match unit {
                        TimerUnit::Ns => n,
                        TimerUnit::Jiffies => n.saturating_mul(1_000_000_000 / hz),
                        TimerUnit::Hz => 1_000_000_000 / n.max(1),
                    };
                    let period =
                        Duration::from_nanos(u64::try_from(ns(interval)).unwrap_or(1).max(1));
                    let spread = Duration::from_nanos(u64::try_from(ns(randomize)).unwrap_or(0));
                    Some((i, period, spread, start + period))
                }
                _ => None,
            })
            .collect();
        loop {
            #[cfg(debug_assertions)]
            panic_if_asked(start);
            if self.stopping() || deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
            if let Some(c) = child
                && matches!(c.try_wait(), Ok(Some(_)))
            {
                return;
            }
            let now = Instant::now();
            let next = timers.iter().map(|t| t.3).min();
            let wake = [next, deadline]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_millis(100));
            // Wake at least every 100 ms to notice signals and the child.
            let nap = wake
                .saturating_duration_since(now)
                .min(Duration::from_millis(100));
            if !nap.is_zero() {
                match (&mut self.probes, &mut self.tracefs) {
                    (Some(k), _) => {
                        k.drain(&mut self.engine, Some(nap));
                        self.flush();
                        self.kernel_errors();
                    }
                    (None, Some(t)) => {
                        t.drain(&mut self.engine, Some(nap));
                        self.flush();
                        self.kernel_errors();
                    }
                    (None, None) => std::thread::sleep(nap),
                }
                continue;
            }
            for t in timers.iter_mut() {
                if t.3 <= Instant::now() && !self.stopping() {
                    self.fire(t.0);
                    let jitter = self.jitter(t.2);
                    t.3 += t.1;
                    t.3 = t.3.checked_add(jitter).unwrap_or(t.3);
                }
            }
        }
    }

    /// A random extra delay within `spread` (timer `.randomize`).
    fn jitter(&mut self, spread: Duration) -> Duration {
        if spread.is_zero() {
            return Duration::ZERO;
        }
        let nanos = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
        let r = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()));
        Duration::from_nanos(r % nanos.max(1))
    }
}

/// Debug builds only: `RSTAP_TEST_PANIC_AFTER_MS=N` panics N ms into the
/// run, with every probe attached, so that the cleanup tests
/// (tests/tests/signals.rs) can see a panic leave nothing behind.
#[cfg(debug_assertions)]
fn panic_if_asked(start: Instant) {
    static AFTER: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let after = AFTER.get_or_init(|| {
        std::env::var("RSTAP_TEST_PANIC_AFTER_MS")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if after.is_some_and(|ms| start.elapsed() >= Duration::from_millis(ms)) {
        panic!("RSTAP_TEST_PANIC_AFTER_MS: a panic with the probes attached");
    }
}

/// `-G name=value`: a scalar global's starting value, as stap takes it.
fn set_global(
    prog: &mir::Program,
    engine: &mut Engine<'_>,
    name: &str,
    value: &str,
) -> Result<(), Failed> {
    let Some(i) = prog.globals.iter().position(|g| g.name == name) else {
        eprintln!("rstap: -G {name}={value}: the script has no global '{name}' (or never uses it)");
        return Err(Failed);
    };
    let g = &prog.globals[i];
    let v = match (&g.kind, g.keys.is_empty()) {
        (mir::GlobalKind::Value(mir::Ty::Long), true) => match value.parse::<i64>() {
            Ok(n) => crate::engine::value::Value::Long(n),
            Err(_) => {
                eprintln!("rstap: -G {name}={value}: '{name}' is a number");
                return Err(Failed);
            }
        },
        (mir::GlobalKind::Value(mir::Ty::Str), true) => {
            crate::engine::value::Value::Str(value.as_bytes().to_vec())
        }
        _ => {
            eprintln!("rstap: -G {name}={value}: only number and string scalars can be set");
            return Err(Failed);
        }
    };
    engine.store.slots[i] = crate::engine::store::Slot::Scalar(v);
    Ok(())
}

/// Why the kernel-context probes could not start, at the script line when known.
pub fn report_start(files: &SourceMap, e: &StartError) {
    match e.at {
        Some(at) => {
            // E0501: what the BPF backend or the kernel refused.
            let d = rstap_grammar::Diag::new(501u16, at, e.msg.clone())
                .with_label("in this kernel-context probe");
            crate::report(files, &rstap_grammar::Diagnostics::one(d));
        }
        None => eprintln!("rstap: {}", e.msg),
    }
}

/// `operator '/' at t.stp:3:12`: stap's description of the token at `at`.
fn near(files: &SourceMap, at: Span) -> String {
    let text = files.text(at.file);
    let spanned = text.get(at.range()).unwrap_or("");
    let token = spanned.trim();
    // A span may start with blanks: a binary operator's is the gap between
    // its operands.
    let skipped = spanned.len() - spanned.trim_start().len();
    let start = at.start + u32::try_from(skipped).unwrap_or(0);
    let first: String = match token.chars().next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$' || c == '@' => token
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '@'))
            .collect(),
        Some(c) if c.is_ascii_digit() => token
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect(),
        Some(_) => token.chars().take(1).collect(),
        None => String::new(),
    };
    let kind = match first.chars().next() {
        Some(c) if c.is_ascii_digit() => "number",
        Some('"') => "string",
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$' || c == '@' => "identifier",
        _ => "operator",
    };
    let (line, col) = files.line_col(at.file, start);
    format!("{kind} '{first}' at {}:{line}:{col}", files.name(at.file))
}

/// The facts built-ins report about rstap's own process.
fn host(target: i64) -> Host {
    #[expect(
        unsafe_code,
        reason = "getppid/getuid/getgid/sysconf have no safe wrappers in std"
    )]
    // SAFETY: these calls take no pointers and cannot fail.
    let (ppid, uid, gid, cpus) = unsafe {
        (
            libc::getppid(),
            libc::getuid(),
            libc::getgid(),
            libc::sysconf(libc::_SC_NPROCESSORS_ONLN),
        )
    };
    let hz = crate::host::config_hz().unwrap_or(250);
    Host {
        comm: b"rstap".to_vec(),
        pid: i64::from(std::process::id()),
        ppid: i64::from(ppid),
        uid: i64::from(uid),
        gid: i64::from(gid),
        target,
        hz,
        cpus: i64::from(cpus as i32),
    }
}
