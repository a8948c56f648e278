//! The example shelf: every script in `examples/` runs here in its tier.
//! User-context examples (no kernel probes) must print their `NAME.expected`
//! byte for byte. Kernel-tier examples run with a workload the test drives
//! (a `-c` child that opens a named file five times, sends seven datagrams to
//! a closed port, calls a function of a C program built here a known number
//! of times...) and their output is checked for those known counts and for
//! its shape. A last test keeps the shelf from rotting: every file in
//! `examples/` is run by a test of this file and opens with a header comment.
//! Kernel tests need root and BPF; elsewhere each says why it was skipped,
//! unless RSTAP_REQUIRE_KERNEL_TESTS=1.

use rstap_tests::{
    bpf_or_skip, cc, comm_of, python_executable, python_or_skip, rstap, skip_or_fail, text,
    workspace,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// The examples whose output is always the same: each has a `NAME.expected`.
const USER_CONTEXT: &[&str] = &["accesslog.stp", "histograms.stp", "ticker.stp"];

fn example(name: &str) -> PathBuf {
    workspace().join("examples").join(name)
}

/// `rstap OPTIONS examples/NAME ARGS`.
fn run_example(name: &str, options: &[&str], args: &[&str]) -> Output {
    Command::new(rstap())
        .args(options)
        .arg(example(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"))
}

/// The stdout of a run that must have succeeded.
fn stdout_of(name: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{name} failed ({:?}):\n{}\n{}",
        out.status.code(),
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

/// `examples/NAME` run with `-c cmd` and script arguments `args`; its stdout.
fn traced(name: &str, cmd: &str, args: &[&str]) -> String {
    stdout_of(name, &run_example(name, &["-c", cmd], args))
}

/// The numbers that stand as words in `line` (`254:0:` is two, `(3%)` one,
/// `python3` none), in order.
fn numbers(line: &str) -> Vec<i64> {
    line.split(|c: char| c.is_whitespace() || ",:()%".contains(c))
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// The lines of `out` whose whitespace-separated words start with `words`.
fn rows<'a>(out: &'a str, words: &[&str]) -> Vec<&'a str> {
    out.lines()
        .filter(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() >= words.len() && w.iter().zip(words).all(|(a, b)| a == b)
        })
        .collect()
}

/// The one line of `out` that starts with `prefix`.
fn line_starting<'a>(out: &'a str, prefix: &str) -> &'a str {
    let found: Vec<&str> = out.lines().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(
        found.len(),
        1,
        "one line starting {prefix:?} expected in:\n{out}"
    );
    found[0]
}

/// Checks a log2 histogram's shape (the stap header, `value |@@@ count`
/// rows) and returns the sum of its counts.
fn histogram_total(out: &str) -> i64 {
    let mut lines = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("value |"));
    assert!(
        lines.next().is_some_and(|h| h.ends_with(" count")),
        "a histogram header expected in:\n{out}"
    );
    let mut total = 0;
    for row in lines.take_while(|l| !l.is_empty()) {
        // stap elides a run of empty buckets as a `~` line.
        if row.trim() == "~" {
            continue;
        }
        let (value, bar) = row
            .split_once(" |")
            .unwrap_or_else(|| panic!("not a histogram row: {row:?}"));
        assert!(value.trim().parse::<i64>().is_ok(), "bucket value: {row:?}");
        let count = bar.rsplit(' ').next().and_then(|c| c.parse::<i64>().ok());
        total += count.unwrap_or_else(|| panic!("bucket count: {row:?}"));
    }
    total
}

fn kernel_ok() -> bool {
    bpf_or_skip()
}

fn python_ok() -> bool {
    bpf_or_skip() && python_or_skip()
}

/// A python workload as a `-c` command, run by the interpreter itself.
/// (No single quotes in `code`.)
fn python(code: &str) -> String {
    format!("{} -c '{code}'", python_executable())
}

/// The tests whose events no filter can tell apart from another test's
/// (dropped packets, block I/O seen from the whole system) run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rstap-examples-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    dir
}

/// A C program with three nested functions and USDT marks: `demo N` calls
/// `demo_top(i)` for i < N, which calls `demo_middle(i)`, which calls
/// `demo_leaf` twice; each round passes the mark `demo:request(i, 10 i)`;
/// at the end `demo:done(N)` and `demo:noargs`. It prints Σ demo_top(i).
const DEMO: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>
__attribute__((noinline)) long demo_leaf(long x) { asm volatile(""); return x * 3; }
__attribute__((noinline)) long demo_middle(long x) { long r = demo_leaf(x) + demo_leaf(x + 1); asm volatile(""); return r; }
__attribute__((noinline)) long demo_top(long x) { long r = demo_middle(x) + 1; asm volatile(""); return r; }
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 3, s = 0;
  for (long i = 0; i < n; i++) { STAP_PROBE2(demo, request, i, i * 10); s += demo_top(i); }
  STAP_PROBE1(demo, done, n);
  STAP_PROBE(demo, noargs);
  printf("%ld\n", s);
  return 0;
}
"#;

/// A program that keeps one CPU busy in `hot`, called from `main`, for a
/// second; built at -O0, so that even the leaf `hot` sets up a frame pointer
/// and the kernel's frame-pointer walk of its user stack reaches `main`.
const SPIN: &str = r#"#include <time.h>
__attribute__((noinline)) void hot(volatile unsigned long *x) { for (int i = 0; i < 100000; i++) (*x)++; }
int main(void) {
  struct timespec t0, t;
  volatile unsigned long x = 0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do { hot(&x); clock_gettime(CLOCK_MONOTONIC, &t); }
  while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 1000000000L);
  return 0;
}
"#;

/// The built `demo` and `spin`, once per run; None (after the skip line)
/// without a C compiler or <sys/sdt.h>.
fn programs() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = scratch("programs");
            for (file, src) in [("demo.c", DEMO), ("spin.c", SPIN)] {
                std::fs::write(dir.join(file), src).expect("write a C source");
            }
            if !cc(
                &["-O0", "-fno-omit-frame-pointer", "-o", "spin", "spin.c"],
                &dir,
            ) {
                skip_or_fail("a C compiler (cc) is needed to build the traced programs");
                return None;
            }
            if !cc(&["-O1", "-o", "demo", "demo.c"], &dir) {
                skip_or_fail(
                    "<sys/sdt.h> is needed to build the USDT demo program (Debian: systemtap-sdt-dev)",
                );
                return None;
            }
            Some(dir)
        })
        .as_deref()
}

fn demo() -> Option<String> {
    if !kernel_ok() {
        return None;
    }
    programs().map(|d| d.join("demo").display().to_string())
}

// ---- user context: exact output ----

#[test]
fn user_context_examples_print_exactly_their_expected_output() {
    for name in USER_CONTEXT {
        let out = run_example(name, &["-T", "20"], &[]);
        let expected_file = example(name).with_extension("expected");
        let expected = std::fs::read_to_string(&expected_file)
            .unwrap_or_else(|e| panic!("{} should exist: {e}", expected_file.display()));
        assert_eq!(
            stdout_of(name, &out),
            expected,
            "{name} printed otherwise than {}",
            expected_file.display()
        );
        assert!(
            out.stderr.is_empty(),
            "{name}: nothing on stderr expected:\n{}",
            text(&out.stderr)
        );
    }
}

// ---- kernel tier ----

#[test]
fn syscalls_by_proc_counts_a_childs_getppid_calls() {
    if !python_ok() {
        return;
    }
    let py = python_executable();
    let out = traced(
        "syscalls_by_proc.stp",
        &python("import os\nfor i in range(20000): os.getppid()"),
        &[],
    );
    assert!(
        out.starts_with("PROCESS                SYSCALLS  SHARE\n"),
        "{out}"
    );
    let row = rows(&out, &[&comm_of(&py)]);
    assert!(!row.is_empty(), "a row for {py} expected:\n{out}");
    let n = numbers(row[0]);
    assert!(
        n.len() == 2 && n[0] >= 20000 && (0..=100).contains(&n[1]) && row[0].ends_with('%'),
        "at least 20000 calls and a share: {}\n{out}",
        row[0]
    );
}

#[test]
fn dropwatch_reports_datagrams_to_a_closed_port_after_five_seconds() {
    if !python_ok() {
        return;
    }
    let _alone = serial();
    // The report comes from a five-second timer: the child outlives it.
    let out = traced(
        "dropwatch.stp",
        &python(
            "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(23): s.sendto(b\"x\", (\"127.0.0.1\", 9))\ntime.sleep(5.5)",
        ),
        &[],
    );
    assert!(out.starts_with("Monitoring for dropped packets\n"), "{out}");
    assert!(out.ends_with("Stopping dropped packet monitor\n"), "{out}");
    let udp = out
        .lines()
        .find(|l| l.ends_with(" packets dropped at __udp4_lib_rcv"))
        .unwrap_or_else(|| panic!("the datagrams' drops at __udp4_lib_rcv expected:\n{out}"));
    assert!(numbers(udp)[0] >= 23, "at least the 23 datagrams: {out}");
}

#[test]
fn runqueue_latency_sees_a_sleeping_childs_wakeups() {
    if !python_ok() {
        return;
    }
    let out = traced(
        "runqueue_latency.stp",
        &python("import time\nfor i in range(100): time.sleep(0.001)"),
        &[],
    );
    let head = line_starting(&out, "run queue latency (us): ");
    let n = numbers(head);
    assert!(n.len() == 3 && n[0] >= 100, "at least 100 wakeups: {out}");
    assert_eq!(
        histogram_total(&out),
        n[0],
        "the histogram holds every sample:\n{out}"
    );
}

#[test]
fn opensnoop_shows_each_open_of_a_named_file_with_its_result() {
    if !kernel_ok() {
        return;
    }
    let dir = scratch("opensnoop");
    let file = dir.join("opened five times");
    std::fs::write(&file, "x\n").expect("write the file to open");
    let path = file.display().to_string();
    let missing = dir.join("never there").display().to_string();
    // The shell opens redirections itself: the opens are the target's.
    let out = traced(
        "opensnoop.stp",
        &format!(
            "sh -c 'for i in 1 2 3 4 5; do read x < \"{path}\"; done; read x < \"{missing}\" 2>/dev/null; true'"
        ),
        &[],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.starts_with("    PID COMM             RESULT       PATH\n"),
        "{out}"
    );
    let opened: Vec<&str> = out.lines().filter(|l| l.ends_with(&path)).collect();
    assert_eq!(opened.len(), 5, "five opens of {path}:\n{out}");
    for l in &opened {
        let w: Vec<&str> = l.split_whitespace().collect();
        assert!(
            w[0].parse::<i64>().is_ok()
                && w[1] == "sh"
                && w[2].parse::<i64>().is_ok_and(|fd| fd >= 0),
            "pid, sh and a descriptor: {l}"
        );
    }
    let failed: Vec<&str> = out.lines().filter(|l| l.ends_with(&missing)).collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(
        failed[0].contains(" sh               -2 (ENOENT)  "),
        "{out}"
    );
}

#[test]
fn execsnoop_shows_each_exec_with_its_arguments_and_failures() {
    if !kernel_ok() {
        return;
    }
    let mark = format!("rstap-exec-mark-{}", std::process::id());
    let out = traced(
        "execsnoop.stp",
        &format!(
            "sh -c '/bin/true {mark} 1; /bin/true {mark} 2; /bin/true {mark} 3; /nonexistent/prog {mark} 2>/dev/null; true'"
        ),
        &[],
    );
    assert!(
        out.starts_with("    PID    PPID COMM              RET ARGS\n"),
        "{out}"
    );
    for i in 1..=3 {
        let args = format!("[\"/bin/true\", \"{mark}\", \"{i}\"]");
        let found: Vec<&str> = out.lines().filter(|l| l.ends_with(&args)).collect();
        assert_eq!(found.len(), 1, "one exec of {args}:\n{out}");
        let w: Vec<&str> = found[0].split_whitespace().collect();
        assert!(
            w[2] == "true" && w[3] == "0",
            "named after the new program, 0: {}",
            found[0]
        );
    }
    let args = format!("[\"/nonexistent/prog\", \"{mark}\"]");
    let failed: Vec<&str> = out.lines().filter(|l| l.ends_with(&args)).collect();
    assert_eq!(failed.len(), 1, "{out}");
    let w: Vec<&str> = failed[0].split_whitespace().collect();
    assert!(
        w[2] == "sh" && w[3] == "-2",
        "a failed exec keeps the shell's name: {}",
        failed[0]
    );
}

#[test]
fn readlatency_counts_a_childs_reads_and_their_bytes() {
    if !kernel_ok() {
        return;
    }
    let out = traced(
        "readlatency.stp",
        "dd if=/dev/zero of=/dev/null bs=4096 count=300 status=none",
        &[],
    );
    let head = out
        .lines()
        .find(|l| l.contains(" reads, "))
        .unwrap_or_else(|| panic!("a summary line expected:\n{out}"));
    let n = numbers(head);
    // dd's 300 reads of 4096 bytes and the dynamic loader's few; rstap sets
    // target() a moment after the probes attach, so another process's reads
    // may slip in before it: the bounds say "the child's", not "everyone's".
    assert!(
        n.len() == 4 && n[0] >= 300 && n[0] < 1000 && n[1] >= 300 * 4096 && n[1] < 2 * 300 * 4096,
        "{head}"
    );
    assert!(head.ends_with(" us"), "{head}");
    assert_eq!(
        histogram_total(&out),
        n[0],
        "the histogram holds every read:\n{out}"
    );
}

#[test]
fn biolatency_sees_direct_writes_on_their_device() {
    if !kernel_ok() {
        return;
    }
    let _alone = serial();
    // Direct I/O goes to the disk at once; the file must be on a block device.
    let dir = workspace()
        .join("target")
        .join(format!("rstap-bio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let file = dir.join("direct");
    let out = traced(
        "biolatency.stp",
        &format!(
            "dd if=/dev/zero of={} bs=4096 count=20 oflag=direct status=none",
            file.display()
        ),
        &[],
    );
    let dev = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&file).map(|m| m.dev()).unwrap_or(0)
    };
    let _ = std::fs::remove_dir_all(&dir);
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    for line in out.lines().filter(|l| l.starts_with("device ")) {
        let n = numbers(line);
        assert!(n.len() == 5 && n[2] > 0 && line.ends_with(" us"), "{line}");
    }
    if major == 0 {
        skip_or_fail(
            "the scratch file is not on a block device: only the output's shape was checked",
        );
        return;
    }
    let line = line_starting(&out, &format!("device {major}:{minor}: "));
    let n = numbers(line);
    assert!(
        n[2] >= 20 && n[3] >= 20 * 4096,
        "the 20 direct writes: {line}"
    );
    let section: String = out
        .split_inclusive('\n')
        .skip_while(|l| !l.starts_with(&format!("device {major}:{minor}: ")))
        .skip(1)
        .take_while(|l| !l.starts_with("device "))
        .collect();
    assert_eq!(histogram_total(&section), n[2], "{out}");
}

#[test]
fn cswitch_counts_a_sleeping_childs_switches() {
    if !python_ok() {
        return;
    }
    let py = python_executable();
    let out = traced(
        "cswitch.stp",
        &python("import time\nfor i in range(50): time.sleep(0.001)"),
        &[],
    );
    assert!(
        out.starts_with("    PID COMM              SWITCHES PREEMPTED\n"),
        "{out}"
    );
    let comm = comm_of(&py);
    let row = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(comm.as_str()))
        .unwrap_or_else(|| panic!("a row for {comm}:\n{out}"));
    let n = numbers(row);
    assert!(
        n[1] >= 50 && n[2] <= n[1],
        "50 sleeps switch it out 50 times: {row}"
    );
}

#[test]
fn sigmon_counts_seven_sigusr1_a_child_sends_itself() {
    if !python_ok() {
        return;
    }
    let comm = comm_of(&python_executable());
    let out = traced(
        "sigmon.stp",
        &python(
            "import os, signal\nsignal.signal(signal.SIGUSR1, lambda *a: None)\nfor i in range(7): os.kill(os.getpid(), signal.SIGUSR1)",
        ),
        &[],
    );
    assert!(
        out.starts_with("SENDER               PID RECEIVER             PID SIGNAL      COUNT\n"),
        "{out}"
    );
    let usr1: Vec<&str> = out.lines().filter(|l| l.contains(" SIGUSR1 ")).collect();
    assert_eq!(usr1.len(), 1, "{out}");
    let w: Vec<&str> = usr1[0].split_whitespace().collect();
    assert!(
        w[0] == comm && w[2] == comm && w[1] == w[3] && w[5] == "7",
        "sent to itself 7 times: {}",
        usr1[0]
    );
}

#[test]
fn tcpstates_walks_a_loopback_connection_through_its_states() {
    if !python_ok() {
        return;
    }
    let out = traced(
        "tcpstates.stp",
        &python(
            "import socket\nl = socket.socket()\nl.bind((\"127.0.0.1\", 0))\nl.listen()\nc = socket.create_connection(l.getsockname())\ns, _ = l.accept()\nc.close()\ns.close()\nl.close()",
        ),
        &[],
    );
    assert!(
        out.starts_with(
            "COMM                 PID LOCAL                 REMOTE                OLD -> NEW\n"
        ),
        "{out}"
    );
    // The listener's port, from its own line; then every line of that connection.
    let comm = comm_of(&python_executable());
    let listen = out
        .lines()
        .find(|l| l.starts_with(&format!("{comm} ")) && l.ends_with(" CLOSE -> LISTEN"))
        .unwrap_or_else(|| panic!("the listener's line:\n{out}"));
    let port = listen
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.strip_prefix("127.0.0.1:"))
        .unwrap_or_else(|| panic!("the listener's address: {listen}"))
        .to_string();
    let mut seen: Vec<String> = out
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .any(|w| w.ends_with(&format!(":{port}")))
        })
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let side = if w[2].ends_with(&format!(":{port}")) {
                "server"
            } else {
                "client"
            };
            format!("{side} {} -> {}", w[4], w[6])
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        "server CLOSE -> LISTEN",
        "client CLOSE -> SYN_SENT",
        "client SYN_SENT -> ESTABLISHED",
        "server LISTEN -> SYN_RECV",
        "server SYN_RECV -> ESTABLISHED",
        "client ESTABLISHED -> FIN_WAIT1",
        "server ESTABLISHED -> CLOSE_WAIT",
        "server CLOSE_WAIT -> LAST_ACK",
        "client FIN_WAIT1 -> FIN_WAIT2",
        "client FIN_WAIT2 -> CLOSE",
        "server LAST_ACK -> CLOSE",
        "server LISTEN -> CLOSE",
    ];
    expected.sort_unstable();
    assert_eq!(seen, expected, "{out}");
    assert!(
        out.lines().skip(1).all(|l| l.contains(" -> ")),
        "every line is a state change:\n{out}"
    );
}

#[test]
fn udpdrops_counts_seven_datagrams_to_a_closed_port_as_no_socket() {
    if !python_ok() {
        return;
    }
    let _alone = serial();
    let comm = comm_of(&python_executable());
    let out = traced(
        "udpdrops.stp",
        &python(
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(7): s.sendto(b\"x\", (\"127.0.0.1\", 9))",
        ),
        &[],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"COMM                 PID REASON                DROPS"),
        "{out}"
    );
    // The target's drops (another process's may slip in in the moment
    // before rstap sets target(), in rows of their own).
    let ours: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w[0] == comm && w.len() == 4)
        .collect();
    assert!(
        ours.iter().any(|w| w[2] == "NO_SOCKET" && w[3] == "7"),
        "the child's 7 drops, NO_SOCKET:\n{out}"
    );
    assert!(
        lines[1..].iter().all(|l| numbers(l).len() >= 2),
        "rows of comm, pid, reason, count:\n{out}"
    );
}

#[test]
fn syscall_errors_counts_nine_bad_closes_by_errno_name() {
    if !python_ok() {
        return;
    }
    let comm = comm_of(&python_executable());
    let out = traced(
        "syscall_errors.stp",
        &python(
            "import os\nfor i in range(9):\n    try: os.close(987654)\n    except OSError: pass",
        ),
        &[],
    );
    assert!(
        out.starts_with("COMM             SYSCALL          ERRNO         COUNT\n"),
        "{out}"
    );
    let closes = rows(&out, &[&comm, "close"]);
    assert_eq!(closes.len(), 1, "{out}");
    assert_eq!(
        closes[0].split_whitespace().skip(2).collect::<Vec<_>>(),
        ["EBADF", "9"],
        "{out}"
    );
    // errno_str names only the classic errnos (1 to 34) so far: past them,
    // the number.
    assert!(
        out.lines().skip(1).all(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() == 4 && w[3].parse::<i64>().is_ok_and(|n| n > 0)
        }),
        "rows of comm, syscall, errno, count:\n{out}"
    );
}

#[test]
fn pagefaults_counts_a_childs_writes_to_fresh_pages() {
    if !python_ok() {
        return;
    }
    let comm = comm_of(&python_executable());
    let out = traced(
        "pagefaults.stp",
        &python(
            "import mmap\nm = mmap.mmap(-1, 2000 * 4096)\nfor i in range(2000): m[i * 4096] = 1",
        ),
        &[],
    );
    assert!(
        out.starts_with("    PID COMM                FAULTS     READS    WRITES\n"),
        "{out}"
    );
    let row = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(comm.as_str()))
        .unwrap_or_else(|| panic!("a row for {comm}:\n{out}"));
    let n = numbers(row);
    assert!(
        n.len() == 4 && n[1] == n[2] + n[3] && n[3] >= 2000,
        "at least one write fault per page, reads + writes = faults: {row}"
    );
}

#[test]
fn profile_samples_a_busy_child_and_prints_its_hot_stacks() {
    if !kernel_ok() {
        return;
    }
    let Some(dir) = programs() else { return };
    let spin = dir.join("spin").display().to_string();
    // Every 10th of the child's samples prints its stack ($1 = 10).
    let out = traced("profile.stp", &spin, &["10"]);
    let total = out
        .lines()
        .find(|l| l.ends_with(" samples"))
        .map(numbers)
        .unwrap_or_else(|| panic!("the samples line:\n{out}"));
    assert!(total.len() == 1 && total[0] > 0, "{out}");
    assert!(
        out.contains("    PID COMM              SAMPLES  SHARE\n"),
        "{out}"
    );
    let headers: Vec<&str> = out.lines().filter(|l| l.starts_with("sample ")).collect();
    assert!(!headers.is_empty(), "at least one stack:\n{out}");
    for (i, h) in headers.iter().enumerate() {
        assert!(
            h.starts_with(&format!("sample {} of ", 10 * (i + 1))),
            "every 10th sample: {h}"
        );
    }
    // The child's rows (its shell's before the exec, then spin's) hold all
    // its samples: at least 10 for each stack printed.
    let pid = numbers(headers[0])[1];
    let child: i64 = out
        .lines()
        .filter(|l| l.ends_with('%') && numbers(l).first() == Some(&pid))
        .map(|l| numbers(l)[1])
        .sum();
    assert!(
        child >= 10 * headers.len() as i64 && child < 10 * (headers.len() as i64 + 1),
        "{} stacks for {child} samples:\n{out}",
        headers.len()
    );
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("spin") && l.ends_with('%')),
        "a row for spin:\n{out}"
    );
    assert!(
        out.contains(" : hot+0x") && out.contains(" : main+0x"),
        "the stacks name hot and main:\n{out}"
    );
}

#[test]
fn funclatency_counts_each_function_and_times_every_call() {
    let Some(demo) = demo() else { return };
    let out = traced(
        "funclatency.stp",
        &format!("{demo} 1000"),
        &[&demo, "demo_*"],
    );
    for (name, calls) in [
        ("demo_leaf", 2000),
        ("demo_middle", 1000),
        ("demo_top", 1000),
    ] {
        let line = line_starting(&out, &format!("{name}: {calls} calls, avg "));
        assert!(line.ends_with(" ns"), "{line}");
        let section: String = out
            .split_inclusive('\n')
            .skip_while(|l| !l.starts_with(&format!("{name}: ")))
            .skip(1)
            .take_while(|l| !l.starts_with("demo_"))
            .collect();
        assert_eq!(histogram_total(&section), calls, "{out}");
    }
    // Sorted by calls: the leaf first.
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("demo_leaf: ")),
        "{out}"
    );
}

#[test]
fn usdt_counts_every_mark_and_sums_its_first_argument() {
    let Some(demo) = demo() else { return };
    let out = traced("usdt.stp", &format!("{demo} 100"), &[&demo]);
    let lines: Vec<&str> = out.lines().collect();
    // The program's own line (Σ 6i + 4 for i < 100), then the report.
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(lines[0], "30100");
    assert_eq!(
        lines[1],
        "MARK                                   HITS       SUM(ARG1)"
    );
    assert_eq!(
        lines[2],
        "demo:request                            100            4950"
    );
    let mut rest = vec![lines[3], lines[4]];
    rest.sort_unstable();
    assert_eq!(
        rest,
        [
            "demo:done                                 1             100",
            "demo:noargs                               1               0",
        ]
    );
}

#[test]
fn calltrace_prints_the_call_tree_indented_by_depth() {
    let Some(demo) = demo() else { return };
    let out = traced("calltrace.stp", &format!("{demo} 2"), &[&demo, "demo_*"]);
    let mut lines = out.lines().filter(|l| l.contains("): "));
    let mut times = Vec::new();
    let mut tree = Vec::new();
    let mut pid = String::new();
    for l in lines.by_ref() {
        let (time, rest) = l.trim_start().split_once(' ').expect("time, then the call");
        times.push(
            time.parse::<i64>()
                .unwrap_or_else(|_| panic!("a time: {l}")),
        );
        let (who, call) = rest.split_once(':').expect("who:call");
        if pid.is_empty() {
            pid = who.to_string();
        }
        assert_eq!(who, pid, "one thread: {l}");
        tree.push(call.to_string());
    }
    assert!(
        pid.starts_with("demo(") && pid.ends_with(')'),
        "execname(tid): {out}"
    );
    let round = [
        " -> demo_top",
        "   -> demo_middle",
        "     -> demo_leaf",
        "     <- demo_leaf",
        "     -> demo_leaf",
        "     <- demo_leaf",
        "   <- demo_middle",
        " <- demo_top",
    ];
    let expected: Vec<String> = round.iter().chain(&round).map(|s| s.to_string()).collect();
    assert_eq!(tree, expected, "{out}");
    assert_eq!(times[0], 0, "the first call at 0 us: {out}");
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "time goes forward: {out}"
    );
}

#[test]
fn stopwatch_times_the_inside_of_a_function_against_the_whole_run() {
    let Some(demo) = demo() else { return };
    let out = traced(
        "stopwatch.stp",
        &format!("{demo} 500"),
        &[&demo, "demo_leaf"],
    );
    let line = line_starting(&out, "demo_leaf: ");
    let n = numbers(line);
    assert!(
        line.starts_with("demo_leaf: 1000 calls, ") && n.len() == 4,
        "{line}"
    );
    let (inside, run, share) = (n[1], n[2], n[3]);
    assert!(
        inside > 0 && inside < run && share == inside * 100 / run,
        "{line}"
    );
}

#[test]
fn slowcalls_reports_a_named_programs_sleeps_over_the_threshold() {
    if !python_ok() {
        return;
    }
    let comm = comm_of(&python_executable());
    let workload = python("import time\nfor i in range(3): time.sleep(0.123)");
    let out = stdout_of(
        "slowcalls.stp",
        &run_example(
            "slowcalls.stp",
            &["-G", "threshold_us=100000", "-c", &workload],
            &[&comm],
        ),
    );
    assert!(
        out.starts_with("COMM                 TID SYSCALL                 US\n"),
        "{out}"
    );
    // Another program of that name may sleep too: the child's three are the
    // ones of one thread, each over 123 ms.
    let sleeps: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() == 4 && w[0] == comm && w[2] == "clock_nanosleep")
        .filter(|w| {
            w[3].parse::<i64>()
                .is_ok_and(|us| (123_000..1_000_000).contains(&us))
        })
        .collect();
    assert!(
        sleeps.len() >= 3 && sleeps.iter().filter(|w| w[1] == sleeps[0][1]).count() >= 3,
        "three sleeps of 123 ms:\n{out}"
    );
    // Nothing of the child's under the threshold. (rstap writes -G values
    // into the kernel's maps a moment after attaching the probes, so a call
    // of another process returning in that moment may be compared with 0.)
    let child_tid = sleeps[0][1];
    assert!(
        out.lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(child_tid))
            .all(|l| numbers(l).last().is_some_and(|&us| us >= 100_000)),
        "nothing under the -G threshold:\n{out}"
    );
    // Over the default threshold of 10 ms: the same sleeps.
    let out = traced("slowcalls.stp", &workload, &[&comm]);
    assert!(
        out.lines()
            .filter(|l| l.contains(" clock_nanosleep "))
            .count()
            >= 3,
        "{out}"
    );
}

// ---- the shelf ----

/// Every file in examples/ is run by some test (a test file names it), and
/// every script opens with a header: what it shows, how to run it, what its
/// output looks like.
#[test]
fn every_example_is_exercised_and_has_a_header() {
    let tests_dir = workspace().join("tests/tests");
    let tests: String = std::fs::read_dir(&tests_dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", tests_dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    let dir = workspace().join("examples");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let scripts = files.iter().filter(|f| f.ends_with(".stp")).count();
    assert!(
        scripts >= 20,
        "the shelf holds at least 20 examples: {files:?}"
    );
    for f in &files {
        if let Some(stem) = f.strip_suffix(".expected") {
            assert!(
                USER_CONTEXT.contains(&format!("{stem}.stp").as_str()),
                "{f} belongs to a user-context example listed in USER_CONTEXT"
            );
            continue;
        }
        assert!(
            tests.contains(&format!("{f}\"")),
            "no test runs examples/{f}: add one (tests/tests/examples.rs runs the shelf)"
        );
        if !f.ends_with(".stp") {
            continue;
        }
        let body = std::fs::read_to_string(dir.join(f)).expect("read the example");
        let header: Vec<&str> = body
            .lines()
            .skip_while(|l| l.starts_with("#!"))
            .take_while(|l| l.starts_with("//"))
            .collect();
        assert!(
            header
                .first()
                .is_some_and(|l| l.starts_with(&format!("// {f}: "))),
            "{f} opens with `// {f}: what it shows`"
        );
        for part in ["// Run: rstap ", "// Output:"] {
            assert!(
                header.iter().any(|l| l.starts_with(part)),
                "{f}'s header says `{part}...`"
            );
        }
    }
}
