//! Kernel tier: rstap tracing itself. A probe on `write(2)` that prints for
//! every write rstap makes feeds on its own output; `-x` naming rstap's own
//! pid makes it its own target. Each run must end at its `exit()` with its
//! end probe's line: no recursion in the kernel, no deadlock in the reader.
//! Needs root and BPF; elsewhere each test says why it was skipped, unless
//! RSTAP_REQUIRE_KERNEL_TESTS=1.

use rstap_tests::{bpf_or_skip, rstap, text};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `cmd`, failing the test if it has not ended within a minute (each
/// run here ends after 300 ms when rstap behaves).
fn bounded(mut cmd: Command, case: &str) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{case}: {e}")),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{case}: rstap tracing itself did not end: a deadlock or a runaway");
        }
    }
}

/// Prints a line for each of its own writes: each line is a write, which is
/// the next event. A timer's line starts the chain.
const FEEDBACK: &str = r#"global n, k
probe kernel.trace("syscalls:sys_enter_write") { if (pid() == stp_pid()) { n++; printf("%d\n", n) } }
probe timer.ms(50) { if (!k) { k = 1; println("kick") } }
probe timer.ms(300) { exit() }
probe end { printf("n=%d\n", n) }"#;

/// The numbered lines of a FEEDBACK run and its final count.
fn feedback_lines(stdout: &str) -> (Vec<u64>, u64) {
    let mut numbers = Vec::new();
    let mut last = None;
    for line in stdout.lines() {
        if let Some(n) = line.strip_prefix("n=") {
            last = n.parse().ok();
        } else if line != "kick" {
            numbers.push(line.parse().unwrap_or_else(|_| panic!("odd line {line:?}")));
        }
    }
    (
        numbers,
        last.unwrap_or_else(|| panic!("no end line in:\n{stdout}")),
    )
}

#[test]
fn printing_for_its_own_writes_feeds_on_itself_and_still_stops_at_exit() {
    if !bpf_or_skip() {
        return;
    }
    let mut cmd = Command::new(rstap());
    cmd.args(["--runtime=bpf", "-e", FEEDBACK]);
    let out = bounded(cmd, "bpf feedback");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (numbers, n) = feedback_lines(&stdout);
    // Each printed line is one of the writes counted: 1, 2, 3, ... with none
    // skipped, and the count at the end covers every line printed.
    assert!(
        numbers.len() >= 3,
        "its own output became events: {} lines",
        numbers.len()
    );
    assert!(
        numbers.iter().zip(1..).all(|(a, b)| *a == b),
        "lines numbered 1..: {:?}",
        &numbers[..numbers.len().min(10)]
    );
    assert!(n >= numbers.len() as u64, "n={n} below {}", numbers.len());
    println!("rstap saw {n} of its own writes in 250 ms and stopped at exit()");
}

#[test]
fn the_tracefs_runtime_never_sees_its_own_reads_and_stops_at_exit() {
    if !bpf_or_skip() {
        return;
    }
    // Its handlers and its output run in the thread that reads the buffers,
    // which every tracepoint filters out (or reading one event would make the
    // next): no feedback, and the run ends on time.
    let mut cmd = Command::new(rstap());
    cmd.args(["--runtime=tracefs", "-e", FEEDBACK]);
    let out = bounded(cmd, "tracefs feedback");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (numbers, n) = feedback_lines(&text(&out.stdout));
    assert_eq!((n, numbers.len()), (0, 0), "none of its writes is an event");
}

#[test]
fn rstap_as_its_own_target_counts_its_writes_and_stops_at_exit() {
    if !bpf_or_skip() {
        return;
    }
    // `exec` gives rstap the shell's pid, which `-x $$` named.
    let script = r#"global n, k
probe kernel.trace("syscalls:sys_enter_write") { if (pid() == target()) n++ }
probe timer.ms(50) { if (!k) { k = 1; println("kick") } }
probe timer.ms(300) { exit() }
probe end { printf("n=%d same=%d\n", n, target() == stp_pid()) }"#;
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        &format!("exec {} -x $$ -e \"$0\"", rstap().display()),
        script,
    ]);
    let out = bounded(cmd, "-x own pid");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The kick is one write of its own; the end line is written after the
    // probes stopped.
    assert_eq!(text(&out.stdout), "kick\nn=1 same=1\n");
}
