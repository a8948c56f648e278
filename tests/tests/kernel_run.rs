//! Kernel tier: scripts with kernel-context probes run for real — compiled to
//! BPF, loaded, attached to tracepoints, their counts read back into end and
//! timer probes. Needs root and BPF (CI has both); elsewhere each test says why
//! it was skipped, unless RSTAP_REQUIRE_KERNEL_TESTS=1.

use rstap_tests::{is_root, rstap, skip_or_fail, workspace};
use std::process::{Command, Stdio};
use std::time::Duration;

fn kernel_ok() -> bool {
    let ok = is_root() && std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    if !ok {
        skip_or_fail("kernel-context probes need root and a BPF-capable kernel");
    }
    ok
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
fn getppid_calls_of_the_target_are_counted_exactly() {
    if !kernel_ok() || !python() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rstap-kernel-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // A baseline run with no loop tells how many getppid calls python makes itself.
    let script = r#"global n, s, c
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target()) { n++; s <<< 1; c[pid()] <<< 2 }
}
probe end { printf("n=%d count=%d sum=%d\n", n, @count(s), @sum(c[target()])) }"#;
    let run = |calls: u32| -> (i64, i64, i64) {
        let prog = dir.join(format!("calls{calls}.py"));
        std::fs::write(
            &prog,
            format!("import os\nfor i in range({calls}): os.getppid()\n"),
        )
        .expect("write workload");
        let out = Command::new(rstap())
            .args(["-e", script, "-c"])
            .arg(format!("python3 {}", prog.display()))
            .output()
            .expect("run rstap");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "rstap failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let field = |name: &str| -> i64 {
            stdout
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name}= in {stdout:?}"))
        };
        (field("n"), field("count"), field("sum"))
    };
    let (base, _, _) = run(0);
    let (n, count, sum) = run(100_000);
    assert_eq!(n - base, 100_000, "scalar counter");
    assert_eq!(count - base, 100_000, "aggregate count");
    assert_eq!(sum - 2 * base, 200_000, "aggregate array sum");
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
