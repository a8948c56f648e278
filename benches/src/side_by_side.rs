//! Runs each pair of scripts under rstap and bpftrace, interleaved round by
//! round so that a machine that gets slower or faster during the run moves
//! both columns alike; the order swaps every round (rstap, bpftrace, bpftrace,
//! rstap, ...) so that neither tool always runs on the other's leftovers.
//!
//! A failed measurement never stops the run. A side that cannot run at all
//! keeps the reason (`unsupported: ...` when rstap's compiler refuses the
//! script); a run that fails is counted with its reason, and the side stops
//! only when it fails on its first run or fails `MAX_FAILED_RUNS` times.

use crate::bpf_stats::{self, Totals};
use crate::peer_bpftrace::{self, Bpftrace};
use crate::procstat::{self, Running, Usage};
use crate::rstap_bin;
use crate::vs_scripts::Pair;
use crate::workload;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a tracer may take to attach, and to exit after each SIGINT.
const PATIENCE: Duration = Duration::from_secs(15);
/// Failed runs after which a side is not run again.
const MAX_FAILED_RUNS: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Rstap,
    Bpftrace,
}

impl Tool {
    pub const BOTH: [Tool; 2] = [Tool::Rstap, Tool::Bpftrace];

    /// Who goes first in round `round`.
    fn order(round: usize) -> [Tool; 2] {
        if round.is_multiple_of(2) {
            Tool::BOTH
        } else {
            [Tool::Bpftrace, Tool::Rstap]
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tool::Rstap => "rstap",
            Tool::Bpftrace => "bpftrace",
        }
    }
}

/// The two binaries, and a directory for stderr files and emitted objects.
#[derive(Debug)]
pub struct Tools {
    pub rstap: PathBuf,
    pub bpftrace: Bpftrace,
    pub scratch: PathBuf,
}

impl Tools {
    fn command(&self, tool: Tool, args: &[String]) -> Command {
        let mut cmd = match tool {
            Tool::Rstap => Command::new(&self.rstap),
            Tool::Bpftrace => self.bpftrace.command(),
        };
        cmd.args(args).stdout(Stdio::null());
        cmd
    }

    fn error_line(&self, tool: Tool, stderr: &str) -> String {
        match tool {
            Tool::Rstap => rstap_bin::error_line(stderr),
            Tool::Bpftrace => peer_bpftrace::error_line(stderr),
        }
    }

    fn stderr_file(&self, tool: Tool) -> PathBuf {
        self.scratch.join(format!("{}.stderr", tool.name()))
    }

    /// `Err("unsupported: ...")` when rstap's compiler (`-p4`) refuses the
    /// pair's rstap script.
    fn rstap_compiles(&self, pair: &Pair) -> Result<(), String> {
        let mut args = pair.rstap.clone();
        if !args.iter().any(|a| a == "-p4") {
            args.insert(0, "-p4".to_string());
        }
        match procstat::run(
            &mut self.command(Tool::Rstap, &args),
            &self.stderr_file(Tool::Rstap),
        ) {
            Ok((u, _)) if u.succeeded() => Ok(()),
            Ok((_, stderr)) => Err(format!(
                "unsupported: {}",
                self.error_line(Tool::Rstap, &stderr)
            )),
            Err(e) => Err(format!("cannot run rstap: {e}")),
        }
    }
}

/// One side of a row: the samples of the runs that worked, and why the
/// others did not.
#[derive(Clone, Debug)]
pub struct Side<T> {
    pub samples: Vec<T>,
    /// Why this side was not run at all (`unsupported: ...`).
    pub refused: Option<String>,
    pub failed_runs: usize,
    /// What went wrong in the first failed run.
    pub first_failure: Option<String>,
}

impl<T> Side<T> {
    fn new() -> Side<T> {
        Side {
            samples: Vec::new(),
            refused: None,
            failed_runs: 0,
            first_failure: None,
        }
    }

    pub fn refused(why: String) -> Side<T> {
        Side {
            refused: Some(why),
            ..Side::new()
        }
    }

    /// A failure on the first run is taken as systematic (a script the tool
    /// rejects); later ones as bad luck, up to `MAX_FAILED_RUNS`.
    fn keeps_going(&self) -> bool {
        self.refused.is_none()
            && !(self.samples.is_empty() && self.failed_runs > 0)
            && self.failed_runs < MAX_FAILED_RUNS
    }

    fn record(&mut self, run: Result<T, String>) {
        match run {
            Ok(sample) => self.samples.push(sample),
            Err(e) => {
                self.failed_runs += 1;
                self.first_failure.get_or_insert(e);
            }
        }
    }
}

/// One pair measured on both sides.
#[derive(Clone, Debug)]
pub struct Measured<T> {
    pub label: String,
    pub rstap: Side<T>,
    pub bpftrace: Side<T>,
}

impl<T> Measured<T> {
    fn new(label: &str) -> Measured<T> {
        Measured {
            label: label.to_string(),
            rstap: Side::new(),
            bpftrace: Side::new(),
        }
    }

    pub fn side(&self, tool: Tool) -> &Side<T> {
        match tool {
            Tool::Rstap => &self.rstap,
            Tool::Bpftrace => &self.bpftrace,
        }
    }

    fn side_mut(&mut self, tool: Tool) -> &mut Side<T> {
        match tool {
            Tool::Rstap => &mut self.rstap,
            Tool::Bpftrace => &mut self.bpftrace,
        }
    }

    /// Runs `measure` for each side still worth running, and records it.
    fn round(&mut self, round: usize, mut measure: impl FnMut(Tool) -> Result<T, String>) {
        for tool in Tool::order(round) {
            if self.side(tool).keeps_going() {
                let run = measure(tool);
                self.side_mut(tool).record(run);
            }
        }
    }
}

/// What one whole run of a tool cost.
#[derive(Clone, Copy, Debug)]
pub struct ProcSample {
    pub wall_ms: f64,
    pub cpu_ms: f64,
    pub rss_mib: f64,
}

impl ProcSample {
    fn of(u: &Usage) -> ProcSample {
        ProcSample {
            wall_ms: u.wall.as_secs_f64() * 1e3,
            cpu_ms: u.cpu.as_secs_f64() * 1e3,
            rss_mib: u.max_rss_kib as f64 / 1024.0,
        }
    }
}

/// Runs each pair to completion `rounds` times per tool, after one untimed
/// run each that warms the page cache (bpftrace maps ~100 MB of LLVM).
pub fn whole_process(tools: &Tools, pairs: &[Pair], rounds: usize) -> Vec<Measured<ProcSample>> {
    pairs
        .iter()
        .map(|pair| {
            eprintln!("vs_bpftrace: {} ({rounds} rounds)", pair.label);
            let mut m = Measured::new(&pair.label);
            if let Err(e) = tools.rstap_compiles(pair) {
                m.rstap = Side::refused(e);
            }
            let run = |tool: Tool| {
                let args = match tool {
                    Tool::Rstap => &pair.rstap,
                    Tool::Bpftrace => &pair.bpftrace,
                };
                let (usage, stderr) =
                    procstat::run(&mut tools.command(tool, args), &tools.stderr_file(tool))
                        .map_err(|e| format!("cannot run {}: {e}", tool.name()))?;
                if usage.succeeded() {
                    Ok(ProcSample::of(&usage))
                } else {
                    Err(tools.error_line(tool, &stderr))
                }
            };
            m.round(0, run);
            m.rstap.samples.clear();
            m.bpftrace.samples.clear();
            for round in 0..rounds {
                m.round(round, run);
            }
            m
        })
        .collect()
}

/// One traced run of the getppid loop.
#[derive(Clone, Copy, Debug)]
pub struct EventSample {
    /// Kernel time in the tracer's BPF programs per program run.
    pub ns_per_event: f64,
    /// Program runs counted during the loop (the loop's calls, plus any other
    /// process's getppid calls meanwhile).
    pub events: f64,
    /// Wall time of the loop per getppid call.
    pub wall_ns_per_call: f64,
    /// The tracer's peak RSS over the whole run.
    pub rss_mib: f64,
    /// The tracer's CPU time (user + sys) over the whole run: start-up, the
    /// loop, SIGINT and printing its aggregates.
    pub cpu_ms: f64,
}

/// The per-event rows and the untraced loop's wall time per call.
#[derive(Clone, Debug)]
pub struct EventRuns {
    pub rows: Vec<Measured<EventSample>>,
    pub untraced_ns_per_call: Result<Vec<f64>, String>,
}

/// For each pair, `rounds` times: the loop untraced, then under rstap, then
/// under bpftrace. `stats` is whether BPF run-time statistics could be
/// turned on; without them there are no per-event numbers, only the reason.
pub fn per_event(
    tools: &Tools,
    pairs: &[Pair],
    rounds: usize,
    calls: u64,
    stats: Result<(), String>,
) -> EventRuns {
    let mut untraced: Result<Vec<f64>, String> = Ok(Vec::new());
    let rows = pairs
        .iter()
        .map(|pair| {
            eprintln!("vs_bpftrace: per event: {} ({rounds} rounds)", pair.label);
            let mut m = Measured::new(&pair.label);
            if let Err(e) = &stats {
                m.rstap = Side::refused(e.clone());
                m.bpftrace = Side::refused(e.clone());
                return m;
            }
            if let Err(e) = tools.rstap_compiles(pair) {
                m.rstap = Side::refused(e);
            }
            for round in 0..rounds {
                if let Ok(samples) = &mut untraced {
                    match workload::run_child(calls) {
                        Ok(d) => samples.push(d.as_nanos() as f64 / calls as f64),
                        Err(e) => untraced = Err(e),
                    }
                }
                m.round(round, |tool| {
                    let args = match tool {
                        Tool::Rstap => &pair.rstap,
                        Tool::Bpftrace => &pair.bpftrace,
                    };
                    traced_run(tools, tool, args, calls)
                });
            }
            m
        })
        .collect();
    EventRuns {
        rows,
        untraced_ns_per_call: untraced,
    }
}

/// Starts the tracer, waits until its programs run, runs the loop, reads the
/// programs' counters around the loop, then stops the tracer with SIGINT.
fn traced_run(
    tools: &Tools,
    tool: Tool,
    args: &[String],
    calls: u64,
) -> Result<EventSample, String> {
    let tracer = Running::spawn(&mut tools.command(tool, args), &tools.stderr_file(tool))
        .map_err(|e| format!("cannot run {}: {e}", tool.name()))?;
    let measured = wait_attached(tools, tool, &tracer).and_then(|()| {
        let pid = tracer.pid();
        let before = counters(pid)?;
        let loop_time = workload::run_child(calls)?;
        let after = counters(pid)?;
        let delta = before.delta(&after);
        let ns_per_event = delta
            .ns_per_run()
            .ok_or("the tracer's programs did not run during the loop")?;
        Ok((ns_per_event, delta.run_cnt, loop_time))
    });
    // Stop the tracer whatever happened, so no run leaks into the next one.
    let stopped = stop(tool, &tracer);
    let (ns_per_event, events, loop_time) = measured?;
    let usage = stopped?;
    if !usage.succeeded() {
        return Err(tools.error_line(tool, &tracer.stderr()));
    }
    Ok(EventSample {
        ns_per_event,
        events: events as f64,
        wall_ns_per_call: loop_time.as_nanos() as f64 / calls as f64,
        rss_mib: usage.max_rss_kib as f64 / 1024.0,
        cpu_ms: usage.cpu.as_secs_f64() * 1e3,
    })
}

/// SIGINT, as a person stops a tracer; a second one if the first is not
/// heeded (bpftrace once ran on after a SIGINT here), then SIGKILL.
fn stop(tool: Tool, tracer: &Running) -> Result<Usage, String> {
    let io = |e: std::io::Error| format!("cannot stop {}: {e}", tool.name());
    if let Some(u) = tracer.try_finish().map_err(io)? {
        return Ok(u);
    }
    for attempt in 1..=2 {
        tracer.interrupt().map_err(io)?;
        if let Some(u) = tracer.wait_within(PATIENCE).map_err(io)? {
            if attempt > 1 {
                eprintln!("vs_bpftrace: {} needed a second SIGINT", tool.name());
            }
            return Ok(u);
        }
    }
    tracer.kill().map_err(io)?;
    Err(format!(
        "{} ran on {} s after each of two SIGINTs and was killed",
        tool.name(),
        PATIENCE.as_secs()
    ))
}

/// Returns once the tracer's programs have run at least once, poking the
/// tracepoint with getppid() until they do.
fn wait_attached(tools: &Tools, tool: Tool, tracer: &Running) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(Some(_)) = tracer.try_finish() {
            return Err(tools.error_line(tool, &tracer.stderr()));
        }
        std::hint::black_box(std::os::unix::process::parent_id());
        if counters(tracer.pid())?.run_cnt > 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} did not attach within {} s",
                tool.name(),
                PATIENCE.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn counters(pid: u32) -> Result<Totals, String> {
    bpf_stats::programs_of(pid)
        .map(|p| Totals::of(&p))
        .map_err(|e| format!("cannot read the tracer's BPF programs: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_side_that_fails_its_first_run_is_not_run_again() {
        let mut side: Side<u8> = Side::new();
        side.record(Err("no such tracepoint".to_string()));
        assert!(!side.keeps_going(), "a first-run failure is systematic");
    }

    #[test]
    fn a_side_with_samples_survives_failures_until_the_limit() {
        let mut side: Side<u8> = Side::new();
        side.record(Ok(1));
        for n in 1..MAX_FAILED_RUNS {
            side.record(Err(format!("hang {n}")));
            assert!(side.keeps_going(), "{n} failures after a sample");
        }
        side.record(Err("last".to_string()));
        assert!(!side.keeps_going(), "stops at MAX_FAILED_RUNS failures");
        assert_eq!(
            side.first_failure.as_deref(),
            Some("hang 1"),
            "the first reason is kept"
        );
    }
}
