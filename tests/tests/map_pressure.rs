//! Map pressure over the real binary: far more distinct keys than an array
//! holds, from the kernel on both CPUs at once and from user space. stap
//! (MAXERRORS=0) reports `Array overflow, check size limit (N)` once, stops,
//! runs error probes instead of end probes with what was collected, and exits
//! 1; a `%` array wraps without any error and the run goes on to its end.

use rstap_tests::rstap;
use std::process::{Command, Output};

/// Two processes, one per CPU, each closing 5,000 distinct unopened fds
/// from `base` on: 10,000 distinct keys, inserted from both CPUs at once.
/// The child is not the target, so the scripts filter by fd: each test has
/// a range of its own, as the tests run at the same time.
fn closers(base: u32) -> String {
    format!(
        "import os\ncpus = sorted(os.sched_getaffinity(0))\npid = os.fork()\nos.sched_setaffinity(0, {{cpus[-1] if pid == 0 else cpus[0]}})\nbase = {base} if pid == 0 else {}\nfor i in range(5000):\n    try: os.close(base + i)\n    except OSError: pass\nif pid == 0: os._exit(0)\nos.waitpid(pid, 0)",
        base + 5000
    )
}

fn run(script: &str, workload: Option<&str>) -> Output {
    let mut cmd = Command::new(rstap());
    cmd.args(["-e", script]);
    if let Some(py) = workload {
        cmd.arg("-c").arg(format!("python3 -c '{py}'"));
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"))
}

/// One overflow error at `near`, the summary, status 1, and the error
/// probe's output instead of the end probe's.
fn assert_one_overflow(out: &Output, near: &str, collected: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stap exits 1 after an error:\n{err}"
    );
    assert_eq!(
        err.matches("ERROR:").count(),
        1,
        "the overflow is reported once:\n{err}"
    );
    assert!(
        err.contains(&format!(
            "ERROR: Array overflow, check size limit (64) near {near}"
        )),
        "{err}"
    );
    assert!(
        err.contains("WARNING: Number of errors: 1, skipped probes: 0"),
        "{err}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), collected);
}

#[test]
fn ten_thousand_keys_from_two_cpus_into_64_slots_are_one_overflow() {
    if !rstap_tests::bpf_or_skip() || !rstap_tests::python_or_skip() {
        return;
    }
    let script = r#"global a[64]
probe kernel.trace("syscalls:sys_enter_close") { if ($fd >= 900000 && $fd < 910000) a[$fd] = 1 }
probe end { println("end probe ran") }
probe error { n = 0; foreach (k in a) n++; printf("collected %d\n", n) }"#;
    let out = run(script, Some(&closers(900_000)));
    assert_one_overflow(&out, "identifier 'a' at <input>:2:85", "collected 64\n");
}

#[test]
fn a_hundred_thousand_keys_into_64_slots_in_user_space_are_one_overflow() {
    let script = r#"global a[64]
probe begin { for (i = 0; i < 100000; i++) a[i] = i }
probe end { println("end probe ran") }
probe error { n = 0; foreach (k in a) n++; printf("collected %d\n", n) }"#;
    let out = run(script, None);
    assert_one_overflow(&out, "identifier 'a' at <input>:2:44", "collected 64\n");
}

#[test]
fn a_wrapping_array_takes_ten_thousand_keys_from_two_cpus_without_error() {
    if !rstap_tests::bpf_or_skip() || !rstap_tests::python_or_skip() {
        return;
    }
    let script = r#"global a%[64], hits
probe kernel.trace("syscalls:sys_enter_close") { if ($fd >= 920000 && $fd < 930000) { a[$fd] = 1; hits++ } }
probe end { n = 0; foreach (k in a) n++; printf("hits %d, kept %d\n", hits, n > 0 && n <= 64) }"#;
    let out = run(script, Some(&closers(920_000)));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("ERROR"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hits 10000, kept 1\n");
}
