//! Kernel tier, under load: ten million events from a target's two threads,
//! on both CPUs at once, counted into a scalar, an aggregate and a keyed
//! array. Every total must be exact: no increment lost to a race between
//! CPUs. And a flood: a line printed for every event, far more than the
//! output buffer holds. Needs root, BPF and a C compiler; elsewhere each test
//! says why it was skipped, unless RSTAP_REQUIRE_KERNEL_TESTS=1.

use rstap_tests::{bpf_or_skip, build_c, rstap, rstap_output, text};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const EVENTS: u64 = 10_000_000;

/// Two threads making `EVENTS / 2` getppid system calls each (the raw
/// syscall: nothing in libc may answer from a cache).
const WORKLOAD: &str = r#"
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static long per_thread;

static void *calls(void *unused) {
    (void)unused;
    for (long i = 0; i < per_thread; i++)
        syscall(SYS_getppid);
    return NULL;
}

int main(int argc, char **argv) {
    per_thread = argc > 1 ? atol(argv[1]) : 0;
    pthread_t a, b;
    pthread_create(&a, NULL, calls, NULL);
    pthread_create(&b, NULL, calls, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return 0;
}
"#;

/// The workload built with `cc` in a directory of test `tag`'s own (the
/// tests run at once: one kills its workload by path, and each removes its
/// directory), or why it cannot be.
fn workload(tag: &str) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rstap-load-{}-{tag}", std::process::id()));
    build_c(&dir, "two_threads", WORKLOAD, &["-O2", "-pthread"])
}

#[test]
fn ten_million_events_on_both_cpus_are_counted_exactly() {
    if !bpf_or_skip() {
        return;
    }
    let Some(binary) = workload("exact") else {
        return;
    };
    // The worker threads only: the shell that becomes the target calls
    // getppid once for $PPID before it execs the workload.
    let script = r#"global n, s, a
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && tid() != pid()) { n++; s <<< 1; a[tid()] <<< 2 }
}
probe end {
  foreach (t in a) { total += @sum(a[t]); threads++ }
  printf("n=%d count=%d sum=%d threads=%d\n", n, @count(s), total, threads)
}"#;
    let command = format!("{} {}", binary.display(), EVENTS / 2);
    let out = rstap_output(&["-e", script, "-c", &command]);
    let _ = std::fs::remove_dir_all(binary.parent().unwrap_or(&binary));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("n={EVENTS} count={EVENTS} sum={} threads=2\n", 2 * EVENTS),
        "stderr: {}",
        text(&out.stderr)
    );
}

#[test]
fn an_output_flood_loses_records_counts_every_loss_and_still_stops_on_sigint() {
    if !bpf_or_skip() {
        return;
    }
    let Some(binary) = workload("flood") else {
        return;
    };
    // Both CPUs make getppid calls as fast as they can, for far longer than
    // the test waits; each call prints a line.
    let script = r#"global hits
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && tid() != pid()) { hits++; printf("e\n") }
}
probe end { printf("hits=%d\n", hits) }"#;
    let command = format!("{} 1000000000", binary.display());
    let mut child = Command::new(rstap())
        .args(["-e", script, "-c", &command])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let (flooding, flood) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let (mut printed, mut last) = (0u64, String::new());
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line == "e" {
                printed += 1;
                if printed == 200_000 {
                    let _ = flooding.send(());
                }
            } else {
                last = line;
            }
        }
        (printed, last)
    });
    let started = flood.recv_timeout(Duration::from_secs(60));
    let kill_workload = || {
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &binary.display().to_string()])
            .status();
    };
    if started.is_err() {
        let _ = child.kill();
        kill_workload();
        panic!("no flood of 200,000 lines within a minute");
    }
    let sigint = Instant::now();
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let (done, ended) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    let status = ended.recv_timeout(Duration::from_secs(30));
    let stopped_in = sigint.elapsed();
    kill_workload();
    let _ = std::fs::remove_dir_all(binary.parent().unwrap_or(&binary));
    let Ok(Ok(status)) = status else {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("rstap did not stop within 30 s of SIGINT while flooded");
    };
    let (printed, last) = reader.join().expect("the reader thread");
    let mut err = String::new();
    let _ = stderr.read_to_string(&mut err);
    assert!(status.success(), "{err}");
    let hits: u64 = last
        .strip_prefix("hits=")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no end line, last line {last:?}; stderr {err}"));
    let lost: u64 = err
        .lines()
        .find_map(|l| {
            l.strip_prefix("WARNING: ")?
                .strip_suffix(" print records were lost (the output buffer was full)")?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    println!(
        "flood: {hits} events, {printed} lines printed, {lost} lost; stopped {} ms after SIGINT",
        stopped_in.as_millis()
    );
    assert!(lost > 0, "the flood overflowed the buffer; stderr: {err}");
    assert_eq!(printed + lost, hits, "every event printed or counted lost");
}
