//! The tracefs runtime's sustained event rate: a child makes getppid() calls
//! at a fixed pace for a few seconds while rstap, on the tracefs runtime
//! (`--runtime=tracefs`, every handler run in user space), counts them with
//! `kernel.trace("syscalls:sys_enter_getppid") { if (pid() == target()) n++ }`.
//! The pace doubles each step until the child cannot keep it (a traced call
//! costs the kernel time too) or an event is missed; the result is the highest
//! rate the child reached in a run that counted every call exactly with no
//! event lost, and rstap's CPU time per event there. A last, unpaced run shows
//! the rate the buffers absorb in a burst (the loop's own speed) and how many
//! events it took to lose some.
//!
//! The binary that runs [`measure`] is also the paced child: its `main` must
//! hand its arguments to [`child_main`] first.

use crate::procstat::Running;
use crate::rstap_bin;
use std::fmt::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The hidden argument that makes the measuring binary the paced child.
const CHILD: &str = "--paced-getppid";

const SCRIPT: &str = r#"global n
probe kernel.trace("syscalls:sys_enter_getppid") { if (pid() == target()) n++ }
probe end { printf("n=%d\n", n) }"#;

/// Events in the unpaced burst.
const BURST: u64 = 2_000_000;

/// When `argv` asks for the paced child (`--paced-getppid CALLS SECONDS
/// REPORT`): makes the calls, writes how long they took, and says true.
pub fn child_main(argv: &[String]) -> bool {
    if argv.get(1).map(String::as_str) != Some(CHILD) {
        return false;
    }
    let n = |i: usize| argv.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
    paced(n(2), n(3), argv.get(4).map_or("/dev/null", String::as_str));
    true
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

/// One run of the ladder (or the burst, `paced` 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Calls per second asked of the child; 0 for the unpaced burst.
    pub paced: u64,
    pub calls: u64,
    /// Calls per second the child reached.
    pub reached: f64,
    /// Calls rstap counted, and events it said were lost.
    pub counted: u64,
    pub lost: u64,
    /// rstap's CPU time (user + system) per call, µs.
    pub cpu_us: f64,
}

impl Step {
    /// Every call counted (the shell that becomes the child calls getppid
    /// once itself) and no event lost.
    pub fn exact(&self) -> bool {
        (self.counted == self.calls || self.counted == self.calls + 1) && self.lost == 0
    }
}

/// The ladder from `start` events/s, `seconds` a step, then the burst.
pub fn measure(rstap: &Path, dir: &Path, seconds: u64, start: u64) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut rate = start;
    loop {
        let step = run_once(rstap, dir, rate, rate * seconds, seconds)?;
        let (exact, kept_pace) = (step.exact(), step.reached >= 0.9 * rate as f64);
        steps.push(step);
        // Stop at the first miss, or once the child cannot keep the pace:
        // traced calls are as fast as they go.
        if !exact || !kept_pace {
            break;
        }
        rate *= 2;
    }
    steps.push(run_once(rstap, dir, 0, BURST, 0)?);
    Ok(steps)
}

/// The fastest paced step that counted every event and lost none.
pub fn sustained(steps: &[Step]) -> Option<&Step> {
    steps
        .iter()
        .filter(|s| s.paced > 0 && s.exact())
        .max_by(|a, b| a.reached.total_cmp(&b.reached))
}

/// The steps as a Markdown table, then the sustained rate.
pub fn markdown(steps: &[Step]) -> String {
    let mut out = String::from(
        "| paced at (events/s) | reached (events/s) | counted | lost | rstap CPU µs/event |\n|---|---|---|---|---|\n",
    );
    for s in steps {
        let paced = if s.paced == 0 {
            format!("unpaced burst of {}", s.calls)
        } else {
            s.paced.to_string()
        };
        let _ = writeln!(
            out,
            "| {paced} | {:.0} | {} | {} | {:.2} |",
            s.reached, s.counted, s.lost, s.cpu_us
        );
    }
    let _ = match sustained(steps) {
        Some(s) => writeln!(
            out,
            "\nSustained with every event counted and none lost: **{:.0} events/s** ({:.2} µs of rstap CPU per event).",
            s.reached, s.cpu_us
        ),
        None => writeln!(out, "\nNo paced rate was sustained without loss."),
    };
    out
}

fn run_once(
    rstap: &Path,
    dir: &Path,
    paced: u64,
    calls: u64,
    seconds: u64,
) -> Result<Step, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = dir.join("tracefs-rate-out.txt");
    let took = dir.join("tracefs-rate-child.txt");
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
        &dir.join("tracefs-rate-err.txt"),
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
    Ok(Step {
        paced,
        calls,
        reached: calls as f64 / (ns / 1e9),
        counted,
        lost,
        cpu_us: usage.cpu.as_secs_f64() * 1e6 / calls as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(paced: u64, reached: f64, counted: u64, lost: u64) -> Step {
        Step {
            paced,
            calls: 1000,
            reached,
            counted,
            lost,
            cpu_us: 1.0,
        }
    }

    #[test]
    fn the_sustained_rate_is_the_fastest_exact_paced_step() {
        let steps = [
            step(100, 100.0, 1000, 0),
            step(200, 199.0, 1001, 0),
            step(400, 390.0, 999, 0),
            step(0, 5000.0, 1000, 0),
        ];
        assert_eq!(sustained(&steps).map(|s| s.paced), Some(200));
        assert!(!step(400, 400.0, 1000, 3).exact(), "a loss is not exact");
        assert_eq!(sustained(&[step(100, 90.0, 10, 0)]), None);
        let table = markdown(&steps);
        assert!(table.contains("| unpaced burst of 1000 | 5000 | 1000 | 0 | 1.00 |"));
        assert!(table.contains("**199 events/s**"), "{table}");
    }
}
