//! Runs each pair of scripts under rstap and bpftrace, interleaved round by
//! round (rstap, bpftrace, rstap, bpftrace, ...) so that a machine that gets
//! slower or faster during the run moves both columns alike.
//!
//! A failed measurement never stops the run: the side that failed keeps the
//! reason (`unsupported: ...` when rstap's compiler refuses the script,
//! `failed: ...` otherwise) and the other side goes on.

use crate::bpf_stats::{self, Totals};
use crate::peer_bpftrace::{self, Bpftrace};
use crate::procstat::{self, Running, Usage};
use crate::rstap_bin;
use crate::vs_scripts::Pair;
use crate::workload;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a tracer may take to attach, and to exit after SIGINT.
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Rstap,
    Bpftrace,
}

impl Tool {
    pub const BOTH: [Tool; 2] = [Tool::Rstap, Tool::Bpftrace];

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
            Err(e) => Err(format!("failed: cannot run rstap: {e}")),
        }
    }
}

/// One side of a row: its samples, or why there are none.
pub type Side<T> = Result<Vec<T>, String>;

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
            rstap: Ok(Vec::new()),
            bpftrace: Ok(Vec::new()),
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

    /// Runs `measure` for each side still healthy, and records the outcome.
    fn round(&mut self, mut measure: impl FnMut(Tool) -> Result<T, String>) {
        for tool in Tool::BOTH {
            if let Ok(samples) = self.side_mut(tool) {
                match measure(tool) {
                    Ok(s) => samples.push(s),
                    Err(e) => *self.side_mut(tool) = Err(e),
                }
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
                m.rstap = Err(e);
            }
            let run = |tool: Tool| {
                let args = match tool {
                    Tool::Rstap => &pair.rstap,
                    Tool::Bpftrace => &pair.bpftrace,
                };
                let (usage, stderr) =
                    procstat::run(&mut tools.command(tool, args), &tools.stderr_file(tool))
                        .map_err(|e| format!("failed: cannot run {}: {e}", tool.name()))?;
                if usage.succeeded() {
                    Ok(ProcSample::of(&usage))
                } else {
                    Err(format!("failed: {}", tools.error_line(tool, &stderr)))
                }
            };
            m.round(run);
            if let Ok(warm) = &mut m.rstap {
                warm.clear();
            }
            if let Ok(warm) = &mut m.bpftrace {
                warm.clear();
            }
            for _ in 0..rounds {
                m.round(run);
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
                m.rstap = Err(format!("failed: {e}"));
                m.bpftrace = Err(format!("failed: {e}"));
                return m;
            }
            if let Err(e) = tools.rstap_compiles(pair) {
                m.rstap = Err(e);
            }
            for _ in 0..rounds {
                if let Ok(samples) = &mut untraced {
                    match workload::run_child(calls) {
                        Ok(d) => samples.push(d.as_nanos() as f64 / calls as f64),
                        Err(e) => untraced = Err(e),
                    }
                }
                m.round(|tool| {
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
        .map_err(|e| format!("failed: cannot run {}: {e}", tool.name()))?;
    let measured = wait_attached(tools, tool, &tracer).and_then(|()| {
        let pid = tracer.pid();
        let before = counters(pid)?;
        let loop_time = workload::run_child(calls)?;
        let after = counters(pid)?;
        let delta = before.delta(&after);
        let ns_per_event = delta
            .ns_per_run()
            .ok_or("failed: the tracer's programs did not run during the loop")?;
        Ok((ns_per_event, delta.run_cnt, loop_time))
    });
    // Stop the tracer whatever happened, so no run leaks into the next one.
    let stopped = match tracer.try_finish() {
        Ok(Some(u)) => Ok(u),
        _ => tracer
            .interrupt()
            .and_then(|()| tracer.finish_within(PATIENCE)),
    };
    let (ns_per_event, events, loop_time) = measured?;
    let usage = stopped.map_err(|e| format!("failed: {} after SIGINT: {e}", tool.name()))?;
    if !usage.succeeded() {
        return Err(format!(
            "failed: {}",
            tools.error_line(tool, &tracer.stderr())
        ));
    }
    Ok(EventSample {
        ns_per_event,
        events: events as f64,
        wall_ns_per_call: loop_time.as_nanos() as f64 / calls as f64,
        rss_mib: usage.max_rss_kib as f64 / 1024.0,
        cpu_ms: usage.cpu.as_secs_f64() * 1e3,
    })
}

/// Returns once the tracer's programs have run at least once, poking the
/// tracepoint with getppid() until they do.
fn wait_attached(tools: &Tools, tool: Tool, tracer: &Running) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(Some(_)) = tracer.try_finish() {
            return Err(format!(
                "failed: {}",
                tools.error_line(tool, &tracer.stderr())
            ));
        }
        std::hint::black_box(std::os::unix::process::parent_id());
        if counters(tracer.pid())?.run_cnt > 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "failed: {} did not attach within {} s",
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
        .map_err(|e| format!("failed: cannot read the tracer's BPF programs: {e}"))
}
