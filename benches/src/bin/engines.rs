//! The user-space engine's two tiers side by side: CPU-heavy begin handlers
//! (long arithmetic in loops and function calls, array updates, string
//! operations, and all of them mixed) run by the release binary under
//! `RSTAP_ENGINE=interp` and `RSTAP_ENGINE=jit`, interleaved; each script
//! times its own handler with `gettimeofday_us()`, so start-up is left out
//! and the compile time of the functions it calls is included. Then the JIT's
//! compile time per body (MIR to finished machine code, from
//! `RSTAP_JIT_LOG`): for these handlers, and over every body of the user tier
//! (`tests/user/`).
//!
//! `cargo run --release -p rstap-benches --bin engines [-- --runs N]`

use rstap_benches::stap_peer::TempDir;
use rstap_benches::stats::Spread;
use rstap_benches::{flags, rstap_bin};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// A function of pure long arithmetic: loops, `%`, `/`, `*`, compares.
macro_rules! collatz {
    () => {
        "function collatz(n) {
  steps = 0
  while (n != 1) { if (n % 2) n = 3 * n + 1; else n = n / 2; steps++ }
  return steps
}
"
    };
}

/// The handlers, each printing `handler_us N` at its end. MAXACTION is lifted
/// for them: they execute far more statements than stap's default allows.
const WORKLOADS: [(&str, &str); 4] = [
    (
        "long arithmetic + calls (collatz)",
        concat!(
            collatz!(),
            r#"probe begin {
  t0 = gettimeofday_us()
  acc = 0
  for (i = 1; i <= 30000; i++) acc += collatz(i)
  printf("%d\nhandler_us %d\n", acc, gettimeofday_us() - t0)
  exit()
}"#
        ),
    ),
    (
        "array updates",
        r#"global m, hits
probe begin {
  t0 = gettimeofday_us()
  for (i = 0; i < 200000; i++) {
    m[i % 1000] += i
    if (i % 7 == 0 && [i % 13] in m) hits++
  }
  printf("%d %d\nhandler_us %d\n", m[999], hits, gettimeofday_us() - t0)
  exit()
}"#,
    ),
    (
        "string operations",
        r#"probe begin {
  t0 = gettimeofday_us()
  n = 0
  for (i = 0; i < 100000; i++) {
    s = "key" . sprint(i % 100)
    if (s == "key42") n += strlen(s . "suffix")
    if (substr(s, 0, 3) != "key") n = -1
  }
  printf("%d\nhandler_us %d\n", n, gettimeofday_us() - t0)
  exit()
}"#,
    ),
    (
        "mixed",
        concat!(
            collatz!(),
            r#"global counts, lens
probe begin {
  t0 = gettimeofday_us()
  acc = 0
  for (i = 1; i <= 20000; i++) {
    acc += collatz(i)
    counts[i % 64] += i
    s = sprintf("k%d", i % 100)
    if (s == "k7") lens[s] = strlen(s . "xyz")
  }
  printf("%d %d %d\nhandler_us %d\n", acc, counts[5], lens["k7"], gettimeofday_us() - t0)
  exit()
}"#
        ),
    ),
];

fn main() -> ExitCode {
    let runs = flags::pairs().and_then(|pairs| match pairs.as_slice() {
        [] => Ok(11),
        [(flag, n)] if flag == "--runs" => flags::count(flag, n),
        _ => Err("usage: engines [--runs N]".to_string()),
    });
    match runs.and_then(|runs| run(usize::try_from(runs).unwrap_or(usize::MAX))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engines: {e}");
            ExitCode::from(1)
        }
    }
}

/// What one run printed: its result line(s), the handler's time, and the
/// JIT log's compile times (µs per body).
struct Outcome {
    result: String,
    handler_us: f64,
    compile_us: Vec<f64>,
}

fn run(runs: usize) -> Result<(), String> {
    let rstap = rstap_bin::build_release()?;
    let dir = TempDir::new("engines").map_err(|e| format!("cannot make a temp dir: {e}"))?;
    println!(
        "CPU-heavy begin handlers, interpreter vs JIT (handler time, median of {runs} interleaved runs):"
    );
    println!(
        "{:<36}  {:>12}  {:>12}  {:>8}  {:>16}",
        "handler", "interp ms", "jit ms", "speedup", "jit compile µs"
    );
    for (i, (label, text)) in WORKLOADS.iter().enumerate() {
        let script = dir.path().join(format!("w{i}.stp"));
        std::fs::write(&script, text).map_err(|e| format!("cannot write the script: {e}"))?;
        let (mut interp, mut jit, mut compile) = (Vec::new(), Vec::new(), Vec::new());
        let mut bodies = 0;
        // One warm-up round, dropped.
        for round in 0..=runs {
            let a = once(&rstap, &script, "interp", dir.path())?;
            let b = once(&rstap, &script, "jit", dir.path())?;
            if a.result != b.result {
                return Err(format!(
                    "{label}: the engines disagree:\n{}\n{}",
                    a.result, b.result
                ));
            }
            if round > 0 {
                interp.push(a.handler_us);
                jit.push(b.handler_us);
                compile.push(b.compile_us.iter().sum::<f64>());
            }
            bodies = b.compile_us.len();
        }
        let (Some(i), Some(j), Some(c)) =
            (Spread::of(&interp), Spread::of(&jit), Spread::of(&compile))
        else {
            return Err("no samples".into());
        };
        println!(
            "{:<36}  {:>12.1}  {:>12.1}  {:>7.1}x  {:>9.0} ({} bodies)",
            label,
            i.median / 1e3,
            j.median / 1e3,
            i.median / j.median,
            c.median,
            bodies
        );
    }
    corpus_compile_times(&rstap, dir.path())
}

fn once(rstap: &Path, script: &Path, engine: &str, dir: &Path) -> Result<Outcome, String> {
    let log = dir.join(format!("{engine}.log"));
    let _ = std::fs::remove_file(&log);
    let out = Command::new(rstap)
        .args(["-D", "MAXACTION=1000000000"])
        .arg(script)
        .env("RSTAP_ENGINE", engine)
        .env("RSTAP_JIT_AFTER", "0")
        .env("RSTAP_JIT_LOG", &log)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", rstap.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{} under {engine} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let handler_us = stdout
        .lines()
        .find_map(|l| l.strip_prefix("handler_us "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("no handler_us line in:\n{stdout}"))?;
    let result = stdout
        .lines()
        .filter(|l| !l.starts_with("handler_us"))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Outcome {
        result,
        handler_us,
        compile_us: compile_times(&log),
    })
}

/// The µs of each `jit\tNAME\tNus\t...` line of a JIT log.
fn compile_times(log: &Path) -> Vec<f64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("jit\t"))
        .filter_map(|l| l.split('\t').nth(2))
        .filter_map(|t| t.trim_end_matches("us").parse::<f64>().ok())
        .collect()
}

/// Compile time per body over the user tier: every body of every script.
fn corpus_compile_times(rstap: &Path, dir: &Path) -> Result<(), String> {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/user");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .map_err(|e| format!("cannot list {}: {e}", corpus.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "stp"))
        .collect();
    scripts.sort();
    let log = dir.join("corpus.log");
    let _ = std::fs::remove_file(&log);
    for s in &scripts {
        // Only the log matters; a script's own failure is its test's business.
        let _ = Command::new(rstap)
            .args(["-T", "10"])
            .arg(s)
            .env("RSTAP_ENGINE", "jit")
            .env("RSTAP_JIT_LOG", &log)
            .output();
    }
    let times = compile_times(&log);
    let setups: Vec<f64> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("setup\t"))
        .filter_map(|t| t.trim_end_matches("us").parse::<f64>().ok())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let Some(spread) = Spread::of(&times) else {
        return Err("the JIT compiled nothing: is rstap built without the jit feature?".into());
    };
    let p90 = sorted[(sorted.len() * 9 / 10).min(sorted.len() - 1)];
    println!(
        "JIT compile time per body over tests/user ({} scripts, {} bodies): median {:.0} µs, p90 {:.0} µs, max {:.0} µs, total {:.1} ms",
        scripts.len(),
        spread.runs,
        spread.median,
        p90,
        spread.max,
        times.iter().sum::<f64>() / 1e3
    );
    if let Some(setup) = Spread::of(&setups) {
        println!(
            "JIT set-up (once per run, before the first body): median {:.0} µs over {} runs",
            setup.median, setup.runs
        );
    }
    Ok(())
}
