//! The tracefs runtime's sustained event rate: a child makes getppid() calls
//! at a fixed pace for a few seconds while rstap, on the tracefs runtime
//! (`--runtime=tracefs`, handlers in the interpreter), counts them with
//! `kernel.trace("syscalls:sys_enter_getppid") { if (pid() == target()) n++ }`.
//! The pace doubles each step until the child cannot keep it (a traced call
//! costs the kernel time too); the result is the highest rate the child
//! reached in a run that counted every call exactly with no event lost, and
//! rstap's CPU time per event there. A last, unpaced run shows the rate the buffers absorb in a
//! burst (the loop's own speed) and how many events it took to lose some.
//!
//! `cargo run --release -p rstap-benches --bin tracefs_rate [-- --seconds N
//! --start RATE --rstap PATH]` (as root)

use rstap_benches::procstat::Running;
use rstap_benches::rstap_bin;
use rstap_benches::stap_peer::TempDir;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// The hidden argument that makes this binary the paced child.
const CHILD: &str = "--paced-getppid";

const SCRIPT: &str = r#"global n
probe kernel.trace("syscalls:sys_enter_getppid") { if (pid() == target()) n++ }
probe end { printf("n=%d\n", n) }"#;

struct Args {
    seconds: u64,
    start: u64,
    rstap: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 3,
        start: 50_000,
        rstap: None,
    };
    for (flag, value) in rstap_benches::flags::pairs()? {
        let count = || rstap_benches::flags::count(&flag, &value);
        match flag.as_str() {
            "--seconds" => args.seconds = count()?,
            "--start" => args.start = count()?,
            "--rstap" => args.rstap = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(args)
}

/// The child: `calls` getppid() calls spread evenly over `seconds` (all at
/// once when `seconds` is 0), in 1 ms slices; writes how long they took (ns)
/// to `report`. A traced call is slower, so a high pace may not be reached.
fn paced(calls: u64, seconds: u64, report: &str) {
    let start = Instant::now();
    calls_paced(calls, seconds, start);
    let _ = std::fs::write(report, start.elapsed().as_nanos().to_string());
}

fn calls_paced(calls: u64, seconds: u64, start: Instant) {
    let slices = seconds * 1000;
    if slices == 0 {
        for _ in 0..calls {
            std::hint::black_box(std::os::unix::process::parent_id());
        }
        return;
    }
    let mut done = 0;
    for slice in 1..=slices {
        let due = calls * slice / slices;
        while done < due {
            std::hint::black_box(std::os::unix::process::parent_id());
            done += 1;
        }
        let next = start + Duration::from_millis(slice);
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
}

/// One run: how many calls rstap counted, how many events it said were
/// lost, its CPU time, and the child's wall time.
struct Run {
    counted: u64,
    lost: u64,
    cpu: Duration,
    /// Calls per second the child reached.
    rate: f64,
}

fn run_once(rstap: &Path, dir: &Path, calls: u64, seconds: u64) -> Result<Run, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = dir.join("out.txt");
    let took = dir.join("child.txt");
    let _ = std::fs::remove_file(&took);
    let child = format!(
        "{} {CHILD} {calls} {seconds} {}",
        exe.display(),
        took.display()
    );
    let running = Running::spawn(
        Command::new(rstap)
            .args(["--runtime=tracefs", "-o"])
            .arg(&out)
            .args(["-e", SCRIPT, "-c", &child]),
        &dir.join("err.txt"),
    )
    .map_err(|e| format!("cannot start rstap: {e}"))?;
    let usage = running.finish().map_err(|e| e.to_string())?;
    let stderr = running.stderr();
    if !usage.succeeded() {
        return Err(format!("rstap failed: {}", rstap_bin::error_line(&stderr)));
    }
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let counted = text
        .lines()
        .find_map(|l| l.strip_prefix("n="))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("rstap printed no count: {text}"))?;
    let lost = stderr
        .lines()
        .find_map(|l| l.strip_prefix("WARNING: "))
        .and_then(|l| l.split_once(" events were lost"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0);
    let ns: f64 = std::fs::read_to_string(&took)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or("the child did not say how long its calls took")?;
    Ok(Run {
        counted,
        lost,
        cpu: usage.cpu,
        rate: calls as f64 / (ns / 1e9),
    })
}

fn run(args: &Args) -> Result<(), String> {
    let rstap = match &args.rstap {
        Some(p) => p.clone(),
        None => rstap_bin::build_release()?,
    };
    let dir = TempDir::new("tracefs-rate").map_err(|e| e.to_string())?;
    println!(
        "tracefs runtime, getppid counting script, {} s per step:\n",
        args.seconds
    );
    println!("| paced at (events/s) | reached (events/s) | counted | lost | rstap CPU µs/event |");
    println!("|---|---|---|---|---|");
    let mut rate = args.start;
    let mut best = None;
    loop {
        let calls = rate * args.seconds;
        let r = run_once(&rstap, dir.path(), calls, args.seconds)?;
        // The shell that becomes the child calls getppid once itself.
        let exact = r.counted == calls || r.counted == calls + 1;
        println!(
            "| {rate} | {:.0} | {} | {} | {:.2} |",
            r.rate,
            r.counted,
            r.lost,
            r.cpu.as_secs_f64() * 1e6 / calls as f64
        );
        if !exact || r.lost > 0 {
            break;
        }
        best = Some((r.rate, r.cpu.as_secs_f64() * 1e6 / calls as f64));
        // Stop once the child cannot keep the pace: traced calls are as fast
        // as they go.
        if r.rate < 0.9 * rate as f64 {
            break;
        }
        rate *= 2;
    }
    let burst = 2_000_000;
    let r = run_once(&rstap, dir.path(), burst, 0)?;
    println!(
        "| unpaced burst of {burst} | {:.0} | {} | {} | {:.2} |",
        r.rate,
        r.counted,
        r.lost,
        r.cpu.as_secs_f64() * 1e6 / burst as f64
    );
    match best {
        Some((rate, us)) => println!(
            "\nsustained with every event counted and none lost: {rate:.0} events/s ({us:.2} µs of rstap CPU per event)"
        ),
        None => println!("\nno paced rate was sustained without loss"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(CHILD) {
        let n = |i: usize| argv.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
        paced(n(2), n(3), argv.get(4).map_or("/dev/null", String::as_str));
        return ExitCode::SUCCESS;
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tracefs_rate: {e}");
            eprintln!("usage: tracefs_rate [--seconds N] [--start RATE] [--rstap PATH]");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tracefs_rate: {e}");
            ExitCode::FAILURE
        }
    }
}
