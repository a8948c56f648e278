//! rstap beside bpftrace on the same machine, interleaved round by round:
//! start-up, compile, per-event kernel cost (BPF run-time statistics) and
//! memory. Prints a Markdown report and writes it to BENCHMARKS.md.
//!
//! `cargo run --release -p rstap-benches --bin vs_bpftrace [-- --rounds N
//! --calls N --out PATH]` (as root)

use rstap_benches::bpf_stats::StatsEnabled;
use rstap_benches::footprint;
use rstap_benches::machine::{self, Facts};
use rstap_benches::peer_bpftrace::Bpftrace;
use rstap_benches::rstap_bin;
use rstap_benches::side_by_side::{self, Tools};
use rstap_benches::stap_peer::TempDir;
use rstap_benches::vs_report::{self, Report};
use rstap_benches::{tracefs_rate, vs_scripts, workload};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const COMMAND: &str = "cargo run --release -p rstap-benches --bin vs_bpftrace";
/// The large compile case: statements over probes.
const STATEMENTS: usize = 1_000;
const PROBES: usize = 50;
/// The tracefs runtime's rate ladder: seconds a step, and the first pace.
const TRACEFS_SECONDS: u64 = 3;
const TRACEFS_START: u64 = 50_000;

#[derive(Debug)]
struct Args {
    rounds: usize,
    calls: u64,
    out: PathBuf,
}

fn parse_args(repo: &Path) -> Result<Args, String> {
    let mut args = Args {
        rounds: 10,
        calls: 1_000_000,
        out: repo.join("BENCHMARKS.md"),
    };
    for (flag, value) in rstap_benches::flags::pairs()? {
        let count = || rstap_benches::flags::count(&flag, &value);
        match flag.as_str() {
            "--rounds" => args.rounds = usize::try_from(count()?).unwrap_or(usize::MAX),
            "--calls" => args.calls = count()?,
            "--out" => args.out = PathBuf::from(value),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if tracefs_rate::child_main(&argv) {
        return ExitCode::SUCCESS;
    }
    if let [_, flag, calls] = argv.as_slice()
        && flag == workload::FLAG
    {
        return match workload::child_main(calls) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let args = match parse_args(&repo) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vs_bpftrace: {e}");
            eprintln!("usage: vs_bpftrace [--rounds N] [--calls N] [--out PATH]");
            return ExitCode::from(2);
        }
    };
    match run(&repo, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vs_bpftrace: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Only a missing tool or tracefs stops the run; every measurement that fails
/// is reported in its table cell instead.
fn run(repo: &Path, args: &Args) -> Result<(), String> {
    machine::ensure_tracefs()?;
    let bpftrace = Bpftrace::locate_or_install()?;
    let rstap = rstap_bin::build_release()?;
    let scratch = TempDir::new("vs-bpftrace").map_err(|e| format!("temp dir: {e}"))?;
    let tools = Tools {
        rstap,
        bpftrace,
        scratch: scratch.path().to_path_buf(),
    };
    let facts = Facts::gather(repo);

    let startup = side_by_side::whole_process(&tools, &vs_scripts::startup(), args.rounds);
    let compile_pairs = machine::syscall_tracepoints(PROBES)
        .and_then(|events| {
            vs_scripts::compile(scratch.path(), &events, STATEMENTS)
                .map_err(|e| format!("cannot write the compile scripts: {e}"))
        })
        .unwrap_or_else(|e| {
            eprintln!("vs_bpftrace: only the tiny compile case: {e}");
            Vec::new()
        });
    let compile = side_by_side::whole_process(&tools, &compile_pairs, args.rounds);
    let event_pairs = vs_scripts::per_event();
    let events = {
        let stats =
            StatsEnabled::new().map_err(|e| format!("cannot set kernel.bpf_stats_enabled: {e}"));
        side_by_side::per_event(
            &tools,
            &event_pairs,
            args.rounds,
            args.calls,
            stats.as_ref().map(|_| ()).map_err(Clone::clone),
        )
    };
    let tracefs =
        tracefs_rate::measure(&tools.rstap, scratch.path(), TRACEFS_SECONDS, TRACEFS_START);
    let footprint_of = |binary: &Path| footprint::measure(binary, scratch.path());
    let report = vs_report::markdown(&Report {
        facts: &facts,
        bpftrace_version: &tools.bpftrace.version,
        rounds: args.rounds,
        calls: args.calls,
        command: COMMAND,
        startup: &startup,
        compile: &compile,
        events: &events,
        event_pairs: &event_pairs,
        rstap_footprint: &footprint_of(&tools.rstap),
        bpftrace_footprint: &footprint_of(&tools.bpftrace.path),
        tracefs: &tracefs,
        tracefs_seconds: TRACEFS_SECONDS,
    });
    print!("{report}");
    let old = std::fs::read_to_string(&args.out).unwrap_or_default();
    let report = vs_report::with_kept(&report, &old);
    std::fs::write(&args.out, &report)
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    eprintln!("vs_bpftrace: wrote {}", args.out.display());
    Ok(())
}
