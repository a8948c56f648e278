//! The traced workload: a child process making N getppid() calls in a loop and
//! reporting how long the loop took. The benchmark binary re-runs itself with
//! `FLAG` to be that child, so no second binary has to be built or found.
//!
//! getppid is the cheapest syscall that glibc never caches and that nothing
//! else on an idle machine calls often, so its tracepoint fires almost only
//! for this loop.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The hidden argument that makes the benchmark binary run the loop instead.
pub const FLAG: &str = "--getppid-loop";

/// The loop itself; returns its wall time.
pub fn getppid_loop(calls: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(std::os::unix::process::parent_id());
    }
    start.elapsed()
}

/// Runs the loop in a child process and returns the loop's wall time.
pub fn run_child(calls: u64) -> Result<Duration, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let out = Command::new(exe)
        .args([FLAG, &calls.to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start the getppid loop: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse::<u64>() {
        Ok(ns) if out.status.success() => Ok(Duration::from_nanos(ns)),
        _ => Err(format!(
            "the getppid loop failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// The child's side: runs the loop and prints its wall time in ns.
pub fn child_main(calls: &str) -> Result<(), String> {
    let calls = calls
        .parse::<u64>()
        .map_err(|e| format!("{FLAG} {calls}: {e}"))?;
    println!("{}", getppid_loop(calls).as_nanos());
    Ok(())
}
