//! Kernel tier: the tracefs runtime (`--runtime=tracefs`), where
//! kernel-context handlers run in user space on ftrace events. Exact counts
//! from a getppid child (100,000 calls from one thread) and from a C program's
//! 10,000 calls of a uprobed function (argument and return sums, `@entry`, a
//! user string); no `rstap_*` instance or event group left after SIGINT or
//! SIGTERM; after SIGKILL the next run removes the leftovers and says how
//! many; probes this runtime cannot run are refused at the script line; a
//! leading `if (...) next` becomes a kernel filter; and a run denied bpf(2)
//! (by a seccomp filter) falls back to tracefs with one warning line.
//! Needs root, tracefs and a C compiler. The tests run one at a time
//! (`rstap_tests::serial`): the SIGKILL test counts what the next run sweeps,
//! which another test's run must not sweep first.

use rstap_tests::{rstap, skip_or_fail, text};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const TRACEFS: &str = "/sys/kernel/tracing";
const GETPPIDS: i64 = 100_000;
const CALLS: i64 = 10_000;
const SUM: i64 = CALLS * (CALLS - 1) / 2;

/// One thread making N raw getppid calls: the shell that becomes the target
/// calls getppid itself (for $PPID) before it execs this, so the script
/// counts the thread's calls only.
const GETPPID: &str = r#"#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
static long n;
static void *calls(void *u) { (void)u; for (long i = 0; i < n; i++) syscall(SYS_getppid); return NULL; }
int main(int argc, char **argv) {
  n = argc > 1 ? atol(argv[1]) : 0;
  pthread_t t;
  pthread_create(&t, NULL, calls, NULL);
  pthread_join(t, NULL);
  return 0;
}
"#;

const WORK: &str = r#"#include <stdlib.h>
__attribute__((noinline)) long work(long x) { asm volatile("" ::: "memory"); return x * 2 + 1; }
__attribute__((noinline)) long greet(const char *s) { asm volatile("" ::: "memory"); return s[0]; }
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000, s = 0;
  char hello[] = "hello from work";
  for (long i = 0; i < n; i++) s += work(i);
  s += greet(hello);
  return s == 0;
}
"#;

/// Runs its command with bpf(2) failing with EPERM, as a BPF LSM policy or a
/// container's seccomp profile would make it.
const NOBPF: &str = r#"#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_bpf, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { sizeof f / sizeof f[0], f };
  if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
    perror("nobpf");
    return 126;
  }
  execv(argv[1], argv + 1);
  perror("nobpf: execv");
  return 127;
}
"#;

type Built = rstap_tests::Programs;

fn built() -> Option<&'static Built> {
    static BUILT: OnceLock<Option<Built>> = OnceLock::new();
    Built::once(&BUILT, "tracefs", |dir| {
        for (name, src, flags) in [
            ("getppid", GETPPID, &["-O2", "-pthread"][..]),
            ("work", WORK, &["-O2"][..]),
            ("nobpf", NOBPF, &["-O2"][..]),
        ] {
            rstap_tests::build_c(dir, name, src, flags)?;
        }
        Some(())
    })
}

fn setup() -> Option<&'static Built> {
    if !rstap_tests::is_root() {
        skip_or_fail("the tracefs runtime needs root");
        return None;
    }
    built()
}

fn tracefs_rstap() -> Command {
    let mut c = Command::new(rstap());
    c.arg("--runtime=tracefs");
    c
}

fn run(script: &str, cmd: &str) -> Output {
    tracefs_rstap()
        .args(["-c", cmd, "-e", script])
        .output()
        .expect("run rstap")
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "rstap failed:\n{}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

/// `rstap_PID` entries under `instances/` and `events/`.
fn leftovers_of(pid: u32) -> Vec<PathBuf> {
    let name = format!("rstap_{pid}");
    [
        Path::new(TRACEFS).join("instances").join(&name),
        Path::new(TRACEFS).join("events").join(&name),
    ]
    .into_iter()
    .filter(|p| p.exists())
    .collect()
}

#[test]
fn getppid_calls_are_counted_exactly_with_no_event_lost() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    let script = r#"global n, s, a
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && tid() != pid()) { n++; s <<< 1; a[execname()] <<< 2 }
}
probe end {
  foreach (c in a) printf("%s=%d\n", c, @sum(a[c]))
  printf("n=%d count=%d\n", n, @count(s))
}"#;
    let out = run(script, &format!("{} {GETPPIDS}", b.path("getppid")));
    let stdout = succeeded(&out);
    assert_eq!(
        stdout,
        format!("getppid={}\nn={GETPPIDS} count={GETPPIDS}\n", 2 * GETPPIDS)
    );
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("lost"), "events were lost:\n{stderr}");
}

#[test]
fn uprobe_events_fetch_arguments_returns_entry_values_and_strings() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    let work = b.path("work");
    let script = format!(
        r#"global calls, args, rets, rsum, lat, mismatched, greeting
probe process("{work}").function("work") {{
  if (pid() != target()) next
  calls++; args += $arg1
}}
probe process("{work}").function("work").return {{
  if (pid() != target()) next
  rets++; rsum += $return
  lat <<< ktime_get_ns() - @entry(ktime_get_ns())
  if ($return != 2 * @entry($arg1) + 1) mismatched++
}}
probe process("{work}").function("greet") {{ greeting = user_string($arg1) }}
probe end {{
  printf("calls=%d args=%d rets=%d rsum=%d\n", calls, args, rets, rsum)
  printf("latencies=%d positive=%d mismatched=%d\n", @count(lat), @min(lat) > 0, mismatched)
  printf("%s\n", greeting)
}}"#
    );
    let stdout = succeeded(&run(&script, &work));
    assert_eq!(
        stdout,
        format!(
            "calls={CALLS} args={SUM} rets={CALLS} rsum={}\nlatencies={CALLS} positive=1 mismatched=0\nhello from work\n",
            2 * SUM + CALLS
        )
    );
}

/// Starts a tracefs run with a tracepoint and a uprobe event that prints
/// `ready` once its events are enabled.
fn start_ready(b: &Built) -> (Child, BufReader<std::process::ChildStdout>) {
    let script = format!(
        r#"global n, r
probe kernel.trace("syscalls:sys_enter_getppid") {{ n++ }}
probe process("{}").function("work") {{ n++ }}
probe timer.ms(20) {{ if (!r) {{ r = 1; println("ready") }} }}
probe end {{ println("end") }}"#,
        b.path("work")
    );
    let mut child = tracefs_rstap()
        .args(["-e", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rstap");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read rstap's output");
    assert_eq!(line, "ready\n", "rstap did not start");
    (child, out)
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().expect("wait for rstap") {
            return s;
        }
        assert!(Instant::now() < until, "rstap did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn sigint_and_sigterm_leave_no_instance_or_event_group() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    for sig in ["-INT", "-TERM"] {
        let (mut child, mut out) = start_ready(b);
        let pid = child.id();
        assert_eq!(leftovers_of(pid).len(), 2, "the run's instance and group");
        signal(pid, sig);
        let status = wait_exit(&mut child);
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut rest);
        assert!(status.success(), "{sig}: {status:?}");
        assert!(rest.starts_with("end\n"), "{sig}: end probes run: {rest}");
        assert_eq!(leftovers_of(pid), Vec::<PathBuf>::new(), "{sig}: leftovers");
    }
}

#[test]
fn after_sigkill_the_next_run_removes_the_leftovers_and_says_how_many() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    let (mut child, _out) = start_ready(b);
    let pid = child.id();
    signal(pid, "-KILL");
    let _ = wait_exit(&mut child);
    assert_eq!(
        leftovers_of(pid).len(),
        2,
        "SIGKILL leaves the instance and group"
    );
    let next = tracefs_rstap()
        .args([
            "-e",
            r#"probe kernel.trace("syscalls:sys_enter_getppid") { exit() }"#,
            "-c",
            "true",
        ])
        .output()
        .expect("run rstap");
    let stderr = text(&next.stderr);
    // The instance and the one uprobe event.
    assert!(
        stderr.contains("rstap: removed 2 tracefs leftovers of rstap runs that are no longer running (1 instances, 1 dynamic events)"),
        "{stderr}"
    );
    assert_eq!(leftovers_of(pid), Vec::<PathBuf>::new());
}

#[test]
fn probes_needing_kernel_context_are_refused_at_the_script_line() {
    if setup().is_none() {
        return;
    }
    let _alone = rstap_tests::serial();
    let cases = [
        (
            "print_backtrace()",
            "the tracefs runtime cannot run print_backtrace(), which needs kernel context",
            "<input>:2:3",
        ),
        // Through a tapset function: at the handler's call of it.
        (
            "println(cmdline_str())",
            "the tracefs runtime cannot run cmdline_str(), which needs kernel context for cmdline_args()",
            "<input>:2:11",
        ),
    ];
    for (body, message, at) in cases {
        let script = format!("probe kernel.trace(\"syscalls:sys_enter_getppid\") {{\n  {body}\n}}");
        let out = tracefs_rstap()
            .args(["-e", &script])
            .output()
            .expect("run rstap");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(message) && stderr.contains(at), "{stderr}");
    }
}

#[test]
fn a_leading_field_test_becomes_a_kernel_filter() {
    if setup().is_none() || !rstap_tests::python_or_skip() {
        return;
    }
    let _alone = rstap_tests::serial();
    // close(987654) fails with EBADF: only those calls pass the filter.
    let script = r#"global n
probe kernel.trace("syscalls:sys_enter_close") {
  if ($fd != 987654) next
  if (pid() == target()) n++
}
probe end { printf("n=%d\n", n) }"#;
    let out = tracefs_rstap()
        .args([
            "-v",
            "-e",
            script,
            "-c",
            "python3 -c 'import os\nfor i in range(1000):\n    try: os.close(987654)\n    except OSError: pass'",
        ])
        .output()
        .expect("run rstap");
    assert_eq!(succeeded(&out), "n=1000\n");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("(1 filtered)"), "{stderr}");
}

#[test]
fn a_run_denied_bpf_falls_back_to_tracefs_with_one_warning() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    let script = r#"global n
probe kernel.trace("syscalls:sys_enter_getppid") { if (pid() == target() && tid() != pid()) n++ }
probe end { printf("n=%d\n", n) }"#;
    let out = Command::new(b.path("nobpf"))
        .arg(rstap())
        .args(["-e", script, "-c", &format!("{} 1000", b.path("getppid"))])
        .output()
        .expect("run rstap under nobpf");
    assert_eq!(succeeded(&out), "n=1000\n");
    assert_eq!(
        text(&out.stderr),
        "WARNING: BPF is not available to rstap here (the kernel refused BPF (Operation not permitted) although this process has CAP_BPF and CAP_PERFMON: a seccomp filter or a security module may forbid it); running on the tracefs runtime\n"
    );
}

#[test]
fn events_the_full_buffer_dropped_are_reported_and_account_for_the_rest() {
    let Some(b) = setup() else { return };
    if !cfg!(debug_assertions) {
        // The small buffer is asked for through a hook only debug builds have.
        return;
    }
    let _alone = rstap_tests::serial();
    // A handler slow enough (ten sprint()s each, microseconds,
    // JIT or not) that a burst of a million calls (well under a
    // microsecond each, even on a loaded machine) overruns the 4 MiB per-CPU
    // buffer. A hundred rounds of long arithmetic, which the JIT made fast,
    // let the reader keep up when other builds slowed the child.
    let calls: i64 = 1_000_000;
    let script = r#"global n, x
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && tid() != pid()) { n++; for (i = 0; i < 10; i++) x = sprint(i) }
}
probe end { printf("n=%d\n", n); delete x }"#;
    // And a buffer of 16 KiB a CPU (debug builds only): the reader kept up
    // with the 4 MiB one in some runs (every call counted, none lost).
    let out = tracefs_rstap()
        .env("RSTAP_TEST_TRACEFS_BUFFER_KB", "16")
        .args([
            "-c",
            &format!("{} {calls}", b.path("getppid")),
            "-e",
            script,
        ])
        .output()
        .expect("run rstap");
    let stdout = succeeded(&out);
    let counted: i64 = stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("n="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stdout:?}"));
    let stderr = text(&out.stderr);
    let lost: i64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("WARNING: "))
        .and_then(|l| l.split_once(" events were lost"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| {
            panic!("no lost-events warning (counted {counted} of {calls}) in:\n{stderr}")
        });
    assert!(lost > 0 && counted < calls, "{stdout}{stderr}");
    // Every call was either counted or is among the lost. The lost also
    // include the task events the instance records for execname()
    // (`task_newtask`, `task_rename`, `sched_process_exec`) of every process
    // on the machine: 27,000 of them beside a fuzzer that made a thread per
    // input. Counted twice (overrun and dropped both) they would be 2x.
    assert!(
        counted + lost >= calls && counted + lost <= calls + calls / 10,
        "counted {counted} + lost {lost} should account for {calls} calls"
    );
}

#[test]
fn rstaps_own_reads_of_the_buffers_are_not_traced() {
    if setup().is_none() {
        return;
    }
    // Reading trace_pipe_raw is a read(2): a probe on reads that saw
    // rstap's own would make more of them without end (it ran until the
    // machine ran out of memory). The reading thread is filtered out.
    let out = tracefs_rstap()
        .args([
            "-T",
            "1",
            "-e",
            r#"global n
probe kernel.trace("syscalls:sys_enter_read") { n++ }
probe end { println(n >= 0 ? "done" : "") }"#,
        ])
        .output()
        .expect("run rstap");
    assert_eq!(succeeded(&out), "done\n");
}
