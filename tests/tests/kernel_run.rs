//! Kernel tier: scripts with kernel-context probes run for real — compiled to
//! BPF, loaded, attached to tracepoints, their counts read back into end and
//! timer probes. Needs root and BPF (CI has both); elsewhere each test says why
//! it was skipped, unless RSTAP_REQUIRE_KERNEL_TESTS=1.

use rstap_tests::{rstap, skip_or_fail, workspace};
use std::process::{Command, Stdio};
use std::time::Duration;

fn kernel_ok() -> bool {
    rstap_tests::bpf_or_skip()
}

fn python() -> bool {
    let ok = Command::new("python3")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip_or_fail("python3 is needed to drive the traced workload");
    }
    ok
}

#[test]
fn syscalls_of_the_target_are_counted_exactly() {
    if !kernel_ok() || !python() {
        return;
    }
    // close(987654) fails with EBADF, but only after the syscall is entered; no
    // one else closes that descriptor, so the count has no baseline to subtract.
    let script = r#"global n, s, c
probe kernel.trace("syscalls:sys_enter_close") {
  if (pid() == target() && $fd == 987654) { n++; s <<< 1; c[pid()] <<< 2 }
}
probe end { printf("n=%d count=%d sum=%d\n", n, @count(s), @sum(c[target()])) }"#;
    let workload = "python3 -c 'import os\nfor i in range(100000):\n    try: os.close(987654)\n    except OSError: pass'";
    let out = Command::new(rstap())
        .args(["-e", script, "-c", workload])
        .output()
        .expect("run rstap");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "n=100000 count=100000 sum=200000\n");
}

#[test]
fn dropwatch_reports_udp_datagrams_to_a_closed_port() {
    if !kernel_ok() || !python() {
        return;
    }
    let child = Command::new(rstap())
        .args(["-T", "7"])
        .arg(workspace().join("examples/dropwatch.stp"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rstap");
    // Give the probes time to attach, then drop 50 datagrams at port 9.
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Command::new("python3")
        .args([
            "-c",
            "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(50): s.sendto(b'x', ('127.0.0.1', 9))",
        ])
        .status()
        .expect("send datagrams");
    assert!(sent.success());
    let out = child.wait_with_output().expect("rstap output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("Monitoring for dropped packets\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("    50 packets dropped at __udp4_lib_rcv\n"),
        "expected the 50 drops at __udp4_lib_rcv:\n{stdout}"
    );
    assert!(
        stdout.ends_with("Stopping dropped packet monitor\n"),
        "{stdout}"
    );
}

#[test]
fn kernel_function_probes_fail_with_one_sentence_here() {
    if !kernel_ok() {
        return;
    }
    let has_kprobes = std::path::Path::new("/sys/kernel/tracing/kprobe_events").exists()
        || std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    let out = Command::new(rstap())
        .args([
            "-T",
            "1",
            "-e",
            r#"global n; probe kernel.function("vfs_read") { n++ }"#,
        ])
        .output()
        .expect("run rstap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if has_kprobes {
        assert!(out.status.success(), "{stderr}");
    } else {
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr.contains("this kernel has no kprobes"), "{stderr}");
        assert!(stderr.contains("kernel.trace("), "{stderr}");
    }
}

#[test]
fn kernel_histograms_print_like_the_same_values_added_in_user_space() {
    if !kernel_ok() || !python() {
        return;
    }
    let script = r#"global h
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target()) { h <<< 5; h <<< target() - pid() - 3; h <<< 0 }
}
probe end { printf("%d\n", @count(h)); print(@hist_log(h)) }"#;
    let out = Command::new(rstap())
        .args([
            "-e",
            script,
            "-c",
            "python3 -c 'import os\nfor i in range(200): os.getppid()'",
        ])
        .output()
        .expect("run rstap");
    let kernel = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: i64 = kernel
        .lines()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no count in {kernel:?}"));
    assert!(events >= 3 * 200, "{kernel}");
    let calls = events / 3;
    let user = Command::new(rstap())
        .args([
            "-e",
            &format!(
                "global h\nprobe begin {{ for (i = 0; i < {calls}; i++) {{ h <<< 5; h <<< -3; h <<< 0 }}\n printf(\"%d\\n\", @count(h)); print(@hist_log(h)); exit() }}"
            ),
        ])
        .output()
        .expect("run rstap");
    assert_eq!(
        kernel,
        String::from_utf8_lossy(&user.stdout),
        "kernel and user-space histograms differ"
    );
}

#[test]
fn division_by_zero_in_the_kernel_is_stap_runtime_error() {
    if !kernel_ok() || !python() {
        return;
    }
    let script = r#"global n
probe kernel.trace("syscalls:sys_enter_close") {
  if (pid() == target() && $fd == 987654) n += 10 / (n - 3)
}
probe end { println("end ", n) }
probe error { println("error probe ran") }"#;
    // -G starts n at 3, so the first marked close() divides by zero.
    let out = Command::new(rstap())
        .args(["-G", "n=3", "-e", script, "-c"])
        .arg("python3 -c 'import os\ntry: os.close(987654)\nexcept OSError: pass'")
        .output()
        .expect("run rstap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ERROR: division by 0 near "), "{stderr}");
    assert!(
        stderr.contains("WARNING: Number of errors: 1, skipped probes: 0"),
        "{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "error probe ran\n",
        "end probes are skipped after an error"
    );
}

#[test]
fn a_program_the_verifier_refuses_is_a_diagnostic_at_its_probe() {
    if !kernel_ok() {
        return;
    }
    let script = r#"global n; probe kernel.trace("sched:sched_switch") { while (n >= 0) n++ }"#;
    let out = Command::new(rstap())
        .args(["-T", "1", "-e", script])
        .output()
        .expect("run rstap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error[E0501]: the kernel's verifier rejected"),
        "{stderr}"
    );
    assert!(
        stderr.contains("^^^"),
        "a caret under the probe point: {stderr}"
    );
    assert!(
        !stderr.contains("verifier log for"),
        "the log only with -v: {stderr}"
    );
    let verbose = Command::new(rstap())
        .args(["-v", "-T", "1", "-e", script])
        .output()
        .expect("run rstap");
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(stderr.contains("verifier log for probe"), "{stderr}");
}

#[test]
fn loops_and_locals_in_kernel_handlers_compute_what_user_space_computes() {
    if !kernel_ok() || !python() {
        return;
    }
    let script = r#"global t
probe kernel.trace("syscalls:sys_enter_close") {
  if (pid() == target() && $fd == 987654) {
    x = 0
    for (i = 0; i < 5; i++) { y = i * 2; if (y == 4) continue; x += y }
    t += x * 1000 + (x > 10 ? 1 : 0) - (-7 % 3) + (-7 / 2)
  }
}
probe end { println(t) }"#;
    let out = Command::new(rstap())
        .args(["-e", script, "-c"])
        .arg("python3 -c 'import os\nfor i in range(3):\n    try: os.close(987654)\n    except OSError: pass'")
        .output()
        .expect("run rstap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // x = 0+2+6+8 = 16; 16*1000 + 1 - (-1) + (-3) = 15999 per call, three calls.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "47997\n");
}

#[test]
fn string_keys_from_execname_fields_and_literals_reach_user_space() {
    if !kernel_ok() || !python() {
        return;
    }
    let script = r#"global by_comm, marks
probe kernel.trace("syscalls:sys_enter_close") {
  if (pid() == target() && $fd == 987654) {
    by_comm[execname()] <<< 1
    name = "mark"
    marks[name, 7]++
  }
}
probe end {
  foreach (c in by_comm) printf("%s %d\n", c, @count(by_comm[c]))
  foreach ([m, n] in marks) printf("%s/%d %d\n", m, n, marks[m, n])
}"#;
    let out = Command::new(rstap())
        .args(["-e", script, "-c"])
        .arg("python3 -c 'import os\nfor i in range(3):\n    try: os.close(987654)\n    except OSError: pass'")
        .output()
        .expect("run rstap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("python3 3\nmark/7 3\n"), "{stdout}");
}
