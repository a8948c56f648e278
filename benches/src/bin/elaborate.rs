//! Elaboration cost: `rstap -p2` on a script that uses 20 of this machine's
//! tracepoints (every field of each) with the whole tapset library linked, run
//! end to end; the pass times come from `-v`. There is no peer: `stap -p2`
//! cannot resolve tracepoints without kernel debuginfo, and bpftrace has no
//! separate elaboration step.
//!
//! `cargo run --release -p rstap-benches --bin elaborate [-- --runs N]`

use rstap_benches::report::{Row, table};
use rstap_benches::rstap_bin;
use rstap_benches::stap_peer::TempDir;
use rstap_benches::stats::Summary;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const TRACEPOINTS: usize = 20;

fn main() -> ExitCode {
    let runs = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 21,
        [flag, n] if flag == "--runs" => match n.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return usage(),
        },
        _ => return usage(),
    };
    match run(runs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("elaborate: {e}");
            ExitCode::from(1)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: elaborate [--runs N]");
    ExitCode::from(2)
}

fn run(runs: usize) -> Result<(), String> {
    let rstap = rstap_bin::build_release()?;
    let events = tracepoints()?;
    let script = script_for(&events);
    let dir = TempDir::new("elaborate").map_err(|e| format!("cannot make a temp dir: {e}"))?;
    let path = dir.path().join("twenty_tracepoints.stp");
    std::fs::write(&path, &script).map_err(|e| format!("cannot write the script: {e}"))?;
    let (mut wall, mut pass1, mut pass2) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..=runs {
        let start = Instant::now();
        let out = Command::new(&rstap)
            .args(["-v", "-w", "-p2"])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", rstap.display()))?;
        let elapsed = start.elapsed();
        if !out.status.success() {
            return Err(format!(
                "rstap -p2 failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        wall.push(elapsed);
        pass1.push(pass_time(&stderr, "Pass 1:")?);
        pass2.push(pass_time(&stderr, "Pass 2:")?);
    }
    // The first run warms the page cache and tracefs; drop it.
    let rows = [
        ("rstap -p2 end to end (wall)", &wall[1..]),
        ("  pass 1: parse script + tapsets", &pass1[1..]),
        ("  pass 2: resolve + types + tracefs reads", &pass2[1..]),
    ]
    .into_iter()
    .filter_map(|(label, samples)| {
        Summary::of(samples).map(|summary| Row {
            label: label.to_string(),
            summary,
            bytes: None,
        })
    })
    .collect::<Vec<_>>();
    println!(
        "Elaborating {TRACEPOINTS} tracepoints ({} fields) with the whole tapset library, {runs} runs:",
        events.iter().map(|e| e.1.len()).sum::<usize>()
    );
    print!("{}", table(&rows));
    Ok(())
}

/// Twenty tracepoints of this kernel with their field names, from tracefs.
fn tracepoints() -> Result<Vec<(String, Vec<String>)>, String> {
    let root = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("available_events").exists())
        .ok_or("tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)")?;
    let list = std::fs::read_to_string(root.join("available_events"))
        .map_err(|e| format!("cannot read available_events: {e}"))?;
    let mut out = Vec::new();
    for line in list
        .lines()
        .filter(|l| l.starts_with("sched:") || l.starts_with("syscalls:"))
    {
        let Some((sys, name)) = line.split_once(':') else {
            continue;
        };
        let format =
            std::fs::read_to_string(root.join("events").join(sys).join(name).join("format"))
                .map_err(|e| format!("cannot read the format of {line}: {e}"))?;
        let fields: Vec<String> = format
            .lines()
            .filter_map(|l| l.trim().strip_prefix("field:"))
            .filter_map(|f| f.split(';').next())
            .filter_map(|decl| decl.split_whitespace().last())
            .map(|n| n.split('[').next().unwrap_or(n).to_string())
            .filter(|n| !n.starts_with("common_"))
            .collect();
        out.push((line.to_string(), fields));
        if out.len() == TRACEPOINTS {
            return Ok(out);
        }
    }
    Err(format!(
        "this kernel has fewer than {TRACEPOINTS} sched/syscalls tracepoints"
    ))
}

/// One probe per tracepoint, reading each field into a statistics or string array.
fn script_for(events: &[(String, Vec<String>)]) -> String {
    let mut s = String::from("global hits, last\n");
    for (event, fields) in events {
        s.push_str(&format!(
            "probe kernel.trace(\"{event}\") {{\n  hits[$$name] <<< 1\n"
        ));
        for f in fields {
            s.push_str(&format!("  last[\"{event}\", \"{f}\"] = sprint(${f})\n"));
        }
        s.push_str("}\n");
    }
    s.push_str("probe end { foreach (n in hits) printf(\"%s %d\\n\", n, @count(hits[n])) }\n");
    s
}

/// The time `-v` reports for one pass (`Pass 2: ... in 4.4 ms.`).
fn pass_time(stderr: &str, pass: &str) -> Result<Duration, String> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(pass))
        .ok_or_else(|| format!("rstap -v printed no `{pass}` line"))?;
    let ms = line
        .rsplit(" in ")
        .next()
        .and_then(|t| t.trim_end_matches(" ms.").parse::<f64>().ok())
        .ok_or_else(|| format!("cannot read the time in `{line}`"))?;
    Ok(Duration::from_secs_f64(ms / 1e3))
}
