//! Uprobe per-event cost: the wall time per call of a C loop calling `work()`
//! untraced, traced by rstap (`process(...).function("work") { n++ }`) and
//! traced by bpftrace (`uprobe:...:work { @ = count(); }`), interleaved round
//! by round. The loop times itself, so neither tool's start-up is counted.
//!
//! `cargo run --release -p rstap-benches --bin uprobe_cost [-- --rounds N
//! --calls N --rstap PATH]` (as root; `--rstap` skips building the release
//! binary: the traced cost is the kernel's and the BPF program's, the same
//! whichever build of rstap loaded it)

use rstap_benches::peer_bpftrace::{Bpftrace, error_line};
use rstap_benches::rstap_bin;
use rstap_benches::stap_peer::TempDir;
use rstap_benches::stats::Spread;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const LOOP: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <time.h>
__attribute__((noinline)) long work(long x) { asm volatile(""); return x + 1; }
int main(int argc, char **argv) {
  long n = atol(argv[1]), s = 0;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) s += work(i);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  printf("ns_per_call=%.1f\n", ns / n);
  return s == 0;
}
"#;

struct Args {
    rounds: usize,
    calls: u64,
    rstap: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        rounds: 5,
        calls: 200_000,
        rstap: None,
    };
    for (flag, value) in rstap_benches::flags::pairs()? {
        let count = || rstap_benches::flags::count(&flag, &value);
        match flag.as_str() {
            "--rounds" => args.rounds = usize::try_from(count()?).unwrap_or(usize::MAX),
            "--calls" => args.calls = count()?,
            "--rstap" => args.rstap = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(args)
}

/// The loop's own `ns_per_call=` line in `stdout`.
fn ns_per_call(stdout: &str) -> Option<f64> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("ns_per_call="))
        .and_then(|n| n.trim().parse().ok())
}

fn measure(cmd: &mut Command, what: &str) -> Result<f64, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{what} failed: {}", error_line(&stderr)));
    }
    ns_per_call(&stdout).ok_or_else(|| format!("{what} printed no ns_per_call line:\n{stdout}"))
}

fn run(args: &Args) -> Result<(), String> {
    let rstap = match &args.rstap {
        Some(p) => p.clone(),
        None => rstap_bin::build_release()?,
    };
    let dir = TempDir::new("uprobe-cost").map_err(|e| e.to_string())?;
    let src = dir.path().join("loop.c");
    std::fs::write(&src, LOOP).map_err(|e| e.to_string())?;
    let bin = dir.path().join("loop");
    let built = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        return Err("cc could not build the loop".into());
    }
    let bin_s = bin.display().to_string();
    let child = format!("{bin_s} {}", args.calls);
    let peer = Bpftrace::locate_or_install()
        .map_err(|e| eprintln!("uprobe_cost: no bpftrace peer: {e}"))
        .ok();
    let rstap_script = format!("global n\nprobe process(\"{bin_s}\").function(\"work\") {{ n++ }}");
    let bpftrace_script = format!("uprobe:{bin_s}:work {{ @ = count(); }}");
    let (mut plain, mut traced, mut peer_traced) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        plain.push(measure(
            Command::new(&bin).arg(args.calls.to_string()),
            "the untraced loop",
        )?);
        traced.push(measure(
            Command::new(&rstap).args(["-e", &rstap_script, "-c", &child]),
            "rstap",
        )?);
        if let Some(p) = &peer {
            peer_traced.push(measure(
                p.command().args(["-e", &bpftrace_script, "-c", &child]),
                "bpftrace",
            )?);
        }
    }
    let row = |name: &str, samples: &[f64], base: Option<f64>| {
        if let Some(s) = Spread::of(samples) {
            let extra = base.map_or(String::new(), |b| format!(" | {:.0}", s.median - b));
            println!(
                "| {name} | {:.1} | {:.1}–{:.1}{extra} |",
                s.median, s.min, s.max
            );
        }
    };
    println!(
        "uprobe per-event cost, {} calls of work() per run, {} rounds (median, range):\n",
        args.calls, args.rounds
    );
    println!("| loop | ns/call | range | added ns/call |");
    println!("|---|---|---|---|");
    let base = Spread::of(&plain).map(|s| s.median);
    row("untraced", &plain, None);
    row("rstap", &traced, base);
    if let Some(p) = &peer {
        row(&format!("bpftrace {}", p.version), &peer_traced, base);
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("uprobe_cost: {e}");
            eprintln!("usage: uprobe_cost [--rounds N] [--calls N] [--rstap PATH]");
            return ExitCode::from(2);
        }
    };
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        eprintln!("uprobe_cost: this kernel has no BTF; nothing to measure");
        return ExitCode::FAILURE;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("uprobe_cost: {e}");
            ExitCode::FAILURE
        }
    }
}
