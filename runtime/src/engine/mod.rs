//! The user-space engine: runs the MIR of user-context handlers (begin, end,
//! error, never, timers) over globals it holds itself. The interpreter is in
//! [`interp`], the built-ins in [`builtins`], the globals in [`store`]; the
//! JIT tier, which compiles bodies and runs them instead, in [`jit`].

mod builtins;
pub mod import;
mod interp;
pub mod jit;
pub mod store;
pub mod value;

use crate::output::{self, Arg};
use crate::stats::{HistSpec, Stat, StatError, StatSpec};
use crate::symbols::Symbols;
use interp::Flow;
use rstap_compiler::hir::{Histogram, PrintKind, StatOp};
use rstap_compiler::mir::{self, FmtPiece, PrintSpec};
use rstap_grammar::Span;
use rstap_grammar::format::Width;
use store::Store;
use value::Value;

/// A runtime error: stap's message, and where it happened when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub msg: String,
    pub at: Option<Span>,
    /// `abort()`: the handler stops at once, no `catch` sees it, and it is not
    /// an error: the session ends normally.
    pub abort: bool,
    /// No `catch` sees it (MAXACTION, as in stap).
    pub uncatchable: bool,
}

impl Fault {
    pub fn new(msg: impl Into<String>, at: Option<Span>) -> Fault {
        Fault {
            msg: msg.into(),
            at,
            abort: false,
            uncatchable: false,
        }
    }

    /// An error no `catch` sees.
    pub fn uncatchable(msg: impl Into<String>, at: Option<Span>) -> Fault {
        Fault {
            uncatchable: true,
            ..Fault::new(msg, at)
        }
    }

    fn abort() -> Fault {
        Fault {
            abort: true,
            uncatchable: true,
            ..Fault::new("abort", None)
        }
    }
}

/// stap's limits, changed with `-D NAME=VALUE`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Statements one handler may execute (MAXACTION_INTERRUPTIBLE for user-context handlers).
    pub max_action: u64,
    pub max_nesting: usize,
    pub max_string: usize,
    pub max_map_entries: usize,
    /// Uncaught runtime errors a session survives; the next one ends it.
    pub max_errors: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_action: 10_000,
            max_nesting: 10,
            max_string: 512,
            max_map_entries: 2048,
            max_errors: 0,
        }
    }
}

/// What the built-ins report about the process running the handlers.
#[derive(Clone, Debug)]
pub struct Host {
    pub comm: Vec<u8>,
    pub pid: i64,
    pub ppid: i64,
    pub uid: i64,
    pub gid: i64,
    /// `target()`: the `-c` child or `-x` pid, else 0.
    pub target: i64,
    pub hz: i64,
    pub cpus: i64,
}

impl Host {
    pub fn cpu(&self) -> i64 {
        #[expect(unsafe_code, reason = "sched_getcpu has no safe wrapper in std")]
        // SAFETY: sched_getcpu takes no arguments and only returns a number.
        let c = unsafe { libc::sched_getcpu() };
        i64::from(c.max(0))
    }
}

#[derive(Debug)]
pub struct Engine<'p> {
    prog: &'p mir::Program,
    pub store: Store,
    /// Script output not yet written.
    pub out: Vec<u8>,
    /// `--format=json`: each print-family call goes to `out` as a JSON record.
    pub json: bool,
    /// `exit()` was called.
    pub exit: bool,
    /// `warn()` messages not yet reported.
    pub warnings: Vec<String>,
    /// `system()` commands not yet started.
    pub commands: Vec<String>,
    pub limits: Limits,
    pub host: Host,
    pub symbols: Symbols,
    depth: usize,
    actions: u64,
    captures: Vec<Vec<u8>>,
    regexes: std::collections::HashMap<String, Result<regex::bytes::Regex, String>>,
    /// The probe whose handler runs.
    probe: Option<&'p mir::Probe>,
    rng: u64,
    /// The event a kernel-context handler runs for, on the tracefs runtime.
    pub event: Option<crate::tracefs::event::Event>,
    /// Which engine runs the bodies, and the JIT tier's compiled code.
    jit: jit::Tier<'p>,
}

impl<'p> Engine<'p> {
    pub fn new(prog: &'p mir::Program, limits: Limits, host: Host) -> Engine<'p> {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x2545_f491, |d| d.as_nanos() as u64)
            | 1;
        Engine {
            prog,
            store: Store::new(&prog.globals, limits.max_map_entries),
            out: Vec::new(),
            json: false,
            exit: false,
            warnings: Vec::new(),
            commands: Vec::new(),
            limits,
            host,
            symbols: Symbols::default(),
            depth: 0,
            actions: 0,
            captures: Vec::new(),
            regexes: std::collections::HashMap::new(),
            probe: None,
            rng: seed,
            event: None,
            jit: jit::Tier::new(jit::EngineKind::from_env()),
        }
    }

    /// The program this engine runs.
    pub fn program(&self) -> &'p mir::Program {
        self.prog
    }

    /// Runs probe `index`'s handler once.
    /// The bytes one print-family call produces, running the script
    /// functions of its deferred calls (kernel-context records, see
    /// `mir::defer_calls`) as a handler of their own would.
    pub fn render(&mut self, spec: &PrintSpec, args: &[Value]) -> Result<Vec<u8>, Fault> {
        render_with(spec, args, &mut |func, values, at| {
            let (actions, depth) = (self.actions, self.depth);
            self.actions = 0;
            self.depth = 0;
            let v = self.call(func, values, at);
            self.actions = actions;
            self.depth = depth;
            Ok(v?.unwrap_or(Value::Long(0)))
        })
    }

    pub fn run_probe(&mut self, index: usize) -> Result<(), Fault> {
        let Some(p) = self.prog.probes.get(index) else {
            return Ok(());
        };
        self.actions = 0;
        self.depth = 0;
        self.captures.clear();
        self.probe = Some(p);
        match self.enter(jit::Entry::Probe(index), &p.body, &[], Vec::new())? {
            Flow::Return(_) | Flow::Next => Ok(()),
        }
    }

    /// Adds what one print-family call (`kind`) printed to the output: the
    /// bytes as they are, or with `--format=json` a record holding them.
    pub fn emit(&mut self, kind: PrintKind, bytes: &[u8]) {
        if !self.json {
            self.out.extend_from_slice(bytes);
            return;
        }
        let kind = match kind {
            PrintKind::Printf | PrintKind::Sprintf => "printf",
            _ => "print",
        };
        let record = output::json::record(kind, vec![("data", output::json::Json::str(bytes))]);
        record.write(&mut self.out);
        self.out.push(b'\n');
    }

    /// Prints histogram `hist` of `s`: stap's ASCII art, or with
    /// `--format=json` a `histogram` record of its buckets.
    fn emit_hist(&mut self, s: &Stat, hist: &Histogram) {
        if !self.json {
            render_hist(&mut self.out, s, hist);
            return;
        }
        if let Some(h) = s.histogram(hist_spec(hist)) {
            self.out
                .extend_from_slice(&crate::json_report::histogram_record(h));
        }
    }

    /// Matches `text` against an extended regular expression, keeping the groups
    /// for `matched()`.
    fn regex_match(&mut self, pattern: &str, text: &[u8]) -> Result<bool, Fault> {
        let re = self
            .regexes
            .entry(pattern.to_string())
            .or_insert_with(|| regex::bytes::Regex::new(pattern).map_err(|e| e.to_string()));
        let re = match re {
            Ok(re) => re,
            Err(e) => return Err(Fault::new(format!("invalid regular expression: {e}"), None)),
        };
        match re.captures(text) {
            Some(c) => {
                self.captures = c
                    .iter()
                    .map(|m| m.map_or(Vec::new(), |m| m.as_bytes().to_vec()))
                    .collect();
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// stap's refusal to start with a linear histogram it cannot build.
pub fn check_histograms(prog: &mir::Program) -> Result<(), String> {
    for g in &prog.globals {
        if let mir::GlobalKind::Stats(spec) = &g.kind {
            for h in &spec.hists {
                hist_spec(h).validate().map_err(|e| e.message())?;
            }
        }
    }
    Ok(())
}

/// What an aggregate of a global keeps, from the program's spec.
pub fn stat_spec(spec: &mir::StatsSpec) -> StatSpec {
    StatSpec {
        hists: spec.hists.iter().map(hist_spec).collect(),
        variance_shift: spec.variance_shift,
    }
}

pub(crate) fn hist_spec(h: &Histogram) -> HistSpec {
    match h {
        Histogram::Log => HistSpec::Log,
        Histogram::Linear { start, stop, step } => HistSpec::Linear {
            start: *start,
            stop: *stop,
            interval: *step,
        },
    }
}

fn arg(v: &Value) -> Arg<'_> {
    match v {
        Value::Long(n) => Arg::Long(*n),
        Value::Str(s) => Arg::Str(s),
    }
}

/// `@count(s)` and friends; an empty aggregate is an error except for @count
/// and @sum. A scalar's @variance combines CPUs as stap does for scalars.
fn aggregate(stat: Option<&Stat>, op: StatOp, scalar: bool, at: Span) -> Result<i64, Fault> {
    let Some(s) = stat else {
        return match op {
            StatOp::Count | StatOp::Sum => Ok(0),
            _ => Err(Fault::new("empty aggregate", Some(at))),
        };
    };
    let r = match op {
        StatOp::Count => Ok(s.count()),
        StatOp::Sum => Ok(s.sum()),
        StatOp::Min => s.min(),
        StatOp::Max => s.max(),
        StatOp::Avg => s.avg(),
        StatOp::Variance if scalar => s.scalar().variance(),
        StatOp::Variance => s.variance(),
    };
    r.map_err(|e: StatError| Fault::new(e.message(), Some(at)))
}

/// `@hist_*(s)[i]`: errors for an empty aggregate or an index past the buckets.
fn bucket_count(s: Option<&Stat>, hist: &Histogram, i: i64, at: Span) -> Result<i64, Fault> {
    let Some(s) = s else {
        return Err(Fault::new(StatError::Empty.message(), Some(at)));
    };
    s.bucket(hist_spec(hist), i)
        .map_err(|e| Fault::new(e.message(), Some(at)))
}

/// `foreach (b in @hist_*(s))`: every bucket index with its count.
fn hist_entries(s: &Stat, hist: &Histogram) -> Vec<(i64, i64)> {
    let h = hist_spec(hist);
    (0..s.bucket_count(h))
        .map(|i| {
            let i = i64::try_from(i).unwrap_or(i64::MAX);
            (i, s.bucket(h, i).unwrap_or(0))
        })
        .collect()
}

fn render_hist(out: &mut Vec<u8>, s: &Stat, hist: &Histogram) {
    output::hist::render(out, s, hist_spec(hist));
}

/// The bytes one print-family call produces, for a spec with no deferred
/// call (every user-context print).
pub fn render(spec: &PrintSpec, args: &[Value]) -> Result<Vec<u8>, Fault> {
    render_with(spec, args, &mut |_, _, at| {
        Err(Fault::new("a deferred call needs the engine", Some(at)))
    })
}

/// The bytes one print-family call produces; `call` makes the value of each
/// deferred call (`FmtPiece::Call`) from its arguments.
fn render_with(
    spec: &PrintSpec,
    args: &[Value],
    call: &mut dyn FnMut(mir::FuncId, Vec<Value>, Span) -> Result<Value, Fault>,
) -> Result<Vec<u8>, Fault> {
    let mut out = Vec::new();
    let delimiter = || match spec.format.first() {
        Some(FmtPiece::Lit(d)) => d.as_slice(),
        _ => &[][..],
    };
    let values: Vec<Arg<'_>> = args.iter().map(arg).collect();
    match spec.kind {
        PrintKind::Print | PrintKind::Sprint => {
            output::print_values(&mut out, &values, None, false)
        }
        PrintKind::Println | PrintKind::Sprintln => {
            output::print_values(&mut out, &values, None, true);
        }
        PrintKind::Printd | PrintKind::Sprintd => {
            output::print_values(&mut out, &values, Some(delimiter()), false);
        }
        PrintKind::Printdln | PrintKind::Sprintdln => {
            output::print_values(&mut out, &values, Some(delimiter()), true);
        }
        PrintKind::Printf | PrintKind::Sprintf => {
            let mut next = args.iter();
            for piece in &spec.format {
                match piece {
                    FmtPiece::Lit(b) => out.extend_from_slice(b),
                    FmtPiece::Conv(c) | FmtPiece::Call { conv: c, .. } => {
                        let mut star = || next.next().map(Value::long);
                        let width = match c.width {
                            Width::Arg => star(),
                            Width::Fixed(w) => Some(i64::from(w)),
                            Width::None => None,
                        };
                        let precision = match c.precision {
                            Width::Arg => star(),
                            Width::Fixed(p) => Some(i64::from(p)),
                            Width::None => None,
                        };
                        let made;
                        let a = match piece {
                            FmtPiece::Call { func, args, at, .. } => {
                                let values = next.by_ref().take(*args).cloned().collect();
                                made = call(*func, values, *at)?;
                                arg(&made)
                            }
                            _ => next.next().map_or(Arg::Long(0), arg),
                        };
                        output::printf::conversion(&mut out, c, width, precision, a)
                            .map_err(|e| Fault::new(e.message(), None))?;
                    }
                }
            }
        }
    }
    Ok(out)
}
