//! Kernel tier, under load: ten million events from a target's two threads,
//! on both CPUs at once, counted into a scalar, an aggregate and a keyed
//! array. Every total must be exact: no increment lost to a race between
//! CPUs. Needs root, BPF and a C compiler; elsewhere each test says why it
//! was skipped, unless RSTAP_REQUIRE_KERNEL_TESTS=1.

use rstap_tests::{bpf_or_skip, rstap_output, skip_or_fail, text};
use std::path::PathBuf;
use std::process::Command;

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

/// The workload built with `cc`, or why it cannot be.
fn workload() -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rstap-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let source = dir.join("two_threads.c");
    let binary = dir.join("two_threads");
    std::fs::write(&source, WORKLOAD).ok()?;
    let built = Command::new("cc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&binary)
        .arg(&source)
        .output();
    match built {
        Ok(out) if out.status.success() => Some(binary),
        Ok(out) => {
            skip_or_fail(&format!("cc failed: {}", text(&out.stderr)));
            None
        }
        Err(e) => {
            skip_or_fail(&format!(
                "a C compiler (cc) is needed to build the workload: {e}"
            ));
            None
        }
    }
}

#[test]
fn ten_million_events_on_both_cpus_are_counted_exactly() {
    if !bpf_or_skip() {
        return;
    }
    let Some(binary) = workload() else { return };
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
