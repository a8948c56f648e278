//! Kernel tier: scripts with kernel-context probes run for real — compiled to
//! BPF, loaded, attached to tracepoints, their counts read back into end and
//! timer probes. Needs root and BPF (CI has both); elsewhere each test says why
//! it was skipped, unless RSTAP_REQUIRE_KERNEL_TESTS=1.

use rstap_tests::{rstap, rstap_output, workspace};
use std::process::{Command, Stdio};
use std::time::Duration;

fn kernel_ok() -> bool {
    rstap_tests::bpf_or_skip()
}

fn python() -> bool {
    rstap_tests::python_or_skip()
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
    // The second loads an entry program beside the return program (for
    // `@entry`): both pass the verifier before attaching says why not.
    for script in [
        r#"global n; probe kernel.function("vfs_read") { n++ }"#,
        r#"global t; probe kernel.function("vfs_read").return { t <<< gettimeofday_ns() - @entry(gettimeofday_ns()) + $return }"#,
    ] {
        let out = Command::new(rstap())
            .args(["-T", "1", "-e", script])
            .output()
            .expect("run rstap");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if has_kprobes {
            assert!(out.status.success(), "{stderr}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(stderr.contains("this kernel has no kprobes"), "{stderr}");
            assert!(stderr.contains("kernel.trace("), "{stderr}");
            assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
        }
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
    // The MAXACTION count bounds the loop, but at two billion statements no
    // verifier walks it.
    let script = r#"global n; probe kernel.trace("sched:sched_switch") { while (n >= 0) n++ }"#;
    let out = Command::new(rstap())
        .args(["-D", "MAXACTION=2000000000", "-T", "1", "-e", script])
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
        .args(["-v", "-D", "MAXACTION=2000000000", "-T", "1", "-e", script])
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

/// Runs `script` with a python workload as its `-c` command (no single quotes
/// in `python`), plus `extra` options.
fn run_with_python(script: &str, python: &str, extra: &[&str]) -> std::process::Output {
    Command::new(rstap())
        .args(extra)
        .args(["-e", script, "-c"])
        .arg(format!("python3 -c '{python}'"))
        .output()
        .expect("run rstap")
}

/// Runs `report` in an end probe after the close() probe body `kernel` filled
/// `globals` from the workload, and again after `adds` filled them in a begin
/// probe: the two must print the same. Returns what they printed.
fn same_as_user_space(
    globals: &str,
    kernel: &str,
    python: &str,
    adds: &str,
    report: &str,
) -> String {
    let script = format!(
        "global {globals}\nprobe kernel.trace(\"syscalls:sys_enter_close\") {{ {kernel} }}\nprobe end {{ {report} }}"
    );
    let out = run_with_python(&script, python, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let user = Command::new(rstap())
        .args([
            "-e",
            &format!("global {globals}\nprobe begin {{ {adds}\n{report}\nexit() }}"),
        ])
        .output()
        .expect("run rstap");
    assert!(
        user.status.success(),
        "{}",
        String::from_utf8_lossy(&user.stderr)
    );
    let kernel = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        kernel,
        String::from_utf8_lossy(&user.stdout),
        "kernel and user-space aggregates differ"
    );
    kernel
}

#[test]
fn linear_histograms_and_variance_filled_in_the_kernel_print_like_user_space() {
    if !kernel_ok() || !python() {
        return;
    }
    // One CPU, so the kernel's per-CPU Welford state is the one user space keeps.
    let out = same_as_user_space(
        "h, v",
        "if (pid() == target() && $fd >= 990000 && $fd < 991000) { h <<< $fd - 990200; v <<< $fd - 990200 }",
        "import os\nos.sched_setaffinity(0, {0})\nfor i in range(300):\n    try: os.close(990000 + (i * 37) % 1000)\n    except OSError: pass",
        "for (i = 0; i < 300; i++) { x = (i * 37) % 1000 - 200; h <<< x; v <<< x }",
        r#"printf("%d %d %d %d %d %d %d\n", @count(h), @sum(h), @min(h), @max(h), @avg(h), @variance(h), @variance(v, 4))
print(@hist_linear(h, -200, 800, 50)); print(@hist_log(h)); print(@hist_linear(v, 0, 500, 25))"#,
    );
    assert!(out.starts_with("300 92450 -200 799 308 "), "{out}");
}

#[test]
fn per_thread_log_histograms_filled_in_the_kernel_print_like_user_space() {
    if !kernel_ok() || !python() {
        return;
    }
    let out = same_as_user_space(
        "h",
        "if (pid() == target() && $fd >= 990000 && $fd < 992000) h[tid()] <<< $fd % 1000",
        "import os, threading\nos.sched_setaffinity(0, {0})\ndef run(base, n, step):\n    for i in range(n):\n        try: os.close(base + i * step)\n        except OSError: pass\nt = threading.Thread(target=run, args=(991000, 50, 7))\nt.start()\nrun(990000, 100, 3)\nt.join()",
        "for (i = 0; i < 100; i++) h[1] <<< 3 * i\nfor (i = 0; i < 50; i++) h[2] <<< 7 * i",
        r#"foreach (t in h-) {
  printf("%d %d %d %d\n", @count(h[t]), @min(h[t]), @max(h[t]), @variance(h[t]))
  print(@hist_log(h[t]))
}"#,
    );
    assert!(out.starts_with("100 0 297 "), "{out}");
}

#[test]
fn aggregates_read_in_a_kernel_probe_add_up_every_cpu() {
    if !kernel_ok() || !python() {
        return;
    }
    let script = r#"global s, h
probe kernel.trace("syscalls:sys_enter_close") {
  if (pid() == target() && $fd >= 987000 && $fd < 988000) {
    s <<< $fd - 987010; h[$fd % 3] <<< $fd - 987000
    if (@count(s) == 20)
      printf("%d %d %d %d %d|%d %d %d %d %d|%d\n", @count(s), @sum(s), @min(s), @max(s), @avg(s),
             @count(h[1]), @sum(h[1]), @min(h[1]), @max(h[1]), @avg(h[1]), @hist_log(h[2])[66])
  }
}"#;
    let python =
        "import os\nfor i in range(20):\n    try: os.close(987000 + i)\n    except OSError: pass";
    let out = run_with_python(script, python, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // s: -10..9. h[1]: 1, 4, ..., 19. h[2]: 2, 5, ..., 17, one of them (2) in [2, 4).
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "20 -10 -10 9 0|7 70 1 19 10|1\n"
    );

    let empty = r#"global s, e
probe kernel.trace("syscalls:sys_enter_close") {
  if (pid() == target() && $fd >= 987000 && $fd < 988000) { s <<< 1; if (@count(s) == 3) printf("%d %d\n", @count(e), @avg(e)) }
}
probe end { println("end probe ran") }
probe error { println("error probe ran") }"#;
    let out = run_with_python(empty, python, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ERROR: empty aggregate near ") && stderr.matches("ERROR:").count() == 1,
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "error probe ran\n");
}

#[test]
fn a_full_array_in_a_kernel_probe_is_one_overflow_error() {
    if !kernel_ok() || !python() {
        return;
    }
    let python =
        "import os\nfor i in range(20):\n    try: os.close(987000 + i)\n    except OSError: pass";
    for (script, extra, msg, kept) in [
        (
            "global a[5]\nprobe kernel.trace(\"syscalls:sys_enter_close\") { if (pid() == target() && $fd >= 987000 && $fd < 988000) a[$fd]++ }",
            &[][..],
            "Array overflow, check size limit (5)",
            5,
        ),
        (
            "global a\nprobe kernel.trace(\"syscalls:sys_enter_close\") { if (pid() == target() && $fd >= 987000 && $fd < 988000) a[$fd] = 1 }",
            &["-D", "MAXMAPENTRIES=7"][..],
            "Array overflow, check MAXMAPENTRIES",
            7,
        ),
        (
            "global a\nprobe kernel.trace(\"syscalls:sys_enter_close\") { if (pid() == target() && $fd >= 987000 && $fd < 988000) a[$fd] <<< 1 }",
            &["-D", "MAXMAPENTRIES=7"][..],
            "Array overflow, check MAXMAPENTRIES",
            7,
        ),
    ] {
        // stap skips end probes after an error and runs error probes instead.
        let script = format!(
            "{script}\nprobe end {{ println(\"end probe ran\") }}\nprobe error {{ n = 0; foreach (k in a) n++; printf(\"collected %d\\n\", n) }}"
        );
        let out = run_with_python(&script, python, extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.matches("ERROR:").count(), 1, "one error: {stderr}");
        assert!(
            stderr.contains(&format!("ERROR: {msg} near identifier 'a'")),
            "{stderr}"
        );
        assert!(
            stderr.contains("WARNING: Number of errors: 1, skipped probes: 0"),
            "{stderr}"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("collected {kept}\n")
        );
    }
}

#[test]
fn wrapping_arrays_in_a_kernel_probe_drop_old_entries_without_error() {
    if !kernel_ok() || !python() {
        return;
    }
    let script = r#"global a%[5], s%[5]
probe kernel.trace("syscalls:sys_enter_close") {
  if (pid() == target() && $fd >= 987000 && $fd < 988000) { a[$fd]++; s[$fd] <<< 1 }
}
probe end {
  n = 0; foreach (k in a) n++
  m = 0; foreach (k in s) m++
  printf("%d %d %d %d\n", n > 0 && n <= 5, m > 0 && m <= 5, a[987019], @count(s[987019]))
}"#;
    let python =
        "import os\nfor i in range(20):\n    try: os.close(987000 + i)\n    except OSError: pass";
    let out = run_with_python(script, python, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1 1 1 1\n",
        "at most 5 entries each, the newest kept"
    );
}

#[test]
fn increments_from_two_cpus_at_once_are_counted_exactly() {
    if !kernel_ok() || !python() {
        return;
    }
    let script = r#"global n, m, by_pid, by_fd, s
probe kernel.trace("syscalls:sys_enter_close") {
  if ($fd == 987655) { n++; m += 2; by_pid[pid()]++; by_fd[$fd]++; s <<< 1 }
}
probe end {
  printf("n=%d m=%d by_fd=%d s=%d\n", n, m, by_fd[987655], @count(s))
  foreach (p in by_pid) printf("%d\n", by_pid[p])
}"#;
    // A parent and a child on CPUs of their own, 200,000 close() calls each.
    let python = "import os\ncpus = sorted(os.sched_getaffinity(0))\npid = os.fork()\nos.sched_setaffinity(0, {cpus[-1] if pid == 0 else cpus[0]})\nfor i in range(200000):\n    try: os.close(987655)\n    except OSError: pass\nif pid == 0: os._exit(0)\nos.waitpid(pid, 0)";
    let out = run_with_python(script, python, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "n=400000 m=800000 by_fd=400000 s=400000\n200000\n200000\n"
    );
}

#[test]
fn variance_read_in_a_kernel_probe_combines_cpus_as_the_runtime_does() {
    if !kernel_ok() || !python() {
        return;
    }
    // The same line from the last close() and from the end probe (which reads
    // the runtime's import of every CPU's share): one combination, two places.
    let report = r#"printf("%d %d %d %d\n", @variance(s), @variance(h[1]), @variance(v, 3), @variance(h[1]) > 0)"#;
    let script = format!(
        r#"global s, h, v
probe kernel.trace("syscalls:sys_enter_close") {{
  if (pid() == target() && $fd >= 987000 && $fd < 988000) {{
    s <<< $fd - 987050; h[1] <<< $fd - 987050; v <<< ($fd - 987000) * 1000
    if (@count(s) == 200) {report}
  }}
}}
probe end {{ {report} }}"#
    );
    // Every CPU gets a share of the values.
    let python = "import os\ncpus = sorted(os.sched_getaffinity(0))\nfor i in range(200):\n    os.sched_setaffinity(0, {cpus[i % len(cpus)]})\n    try: os.close(987000 + (i * 37) % 200)\n    except OSError: pass";
    let out = run_with_python(&script, python, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0], lines[1], "kernel and runtime combine CPUs alike");
    assert!(lines[0].ends_with(" 1"), "{stdout}");
}

/// Three close(987654) calls from the `-c` child.
const THREE_MARKED_CLOSES: &str = "python3 -c 'import os\nfor i in range(3):\n    try: os.close(987654)\n    except OSError: pass'";

/// Functions a kernel handler and a begin handler both call, with parameters,
/// return values, nested calls, a return from inside a loop, locals that start
/// at 0 on every call, and `next` through three overloads.
const FUNCTIONS: &str = r#"
function sq(x) { return x * x }
function hyp(a, b) { return sq(a) + sq(b) }
function first_over(lim, step) { for (i = 0; ; i += step) if (sq(i) > lim) return i }
function f(x) { if (x > 1) next; return x * 2 }
function f(x) { if (x > 3) next; return x + 100 }
function f(x) { return -x }
function fsum(n) { for (i = 0; i < n; i++) s += f(i); return s }
function nothing(x) { if (x) return 7 }
function all(fd) {
  return hyp(fd % 7, 4) * 1000000 + first_over(fd % 100, 3) * 1000 + fsum(6) + nothing(0) + nothing(fd)
}
"#;

#[test]
fn kernel_handlers_call_functions_as_user_space_does() {
    if !kernel_ok() || !python() {
        return;
    }
    let script = format!(
        r#"global calls, total, last
{FUNCTIONS}
probe begin {{ println("user ", all(987654)) }}
probe kernel.trace("syscalls:sys_enter_close") {{
  if (pid() == target() && $fd == 987654) {{ calls++; last = all($fd); total += last }}
}}
probe end {{ println("kernel ", last, " ", calls, " ", total) }}"#
    );
    let out = rstap_output(&["-e", &script, "-c", THREE_MARKED_CLOSES]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value = |prefix: &str| -> i64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|l| l.split(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix:?} line in {stdout:?}"))
    };
    let user = value("user ");
    assert_eq!(value("kernel "), user, "the kernel computed otherwise");
    // 987654 % 7 = 3: hyp = 25; first square over 54 in steps of 3: 9;
    // f(0..6) = 0 + 2 + 102 + 103 - 4 - 5 = 198; nothing(0) + nothing(fd) = 7.
    assert_eq!(user, 25_009_205, "what the functions compute");
    assert!(
        stdout.contains(&format!("kernel {user} 3 {}\n", 3 * user)),
        "{stdout}"
    );
}

#[test]
fn loops_bounded_by_map_values_pass_the_verifier_thanks_to_the_statement_count() {
    if !kernel_ok() || !python() {
        return;
    }
    // The verifier cannot bound `i < n` with n read from a map on each turn,
    // nor the break; the MAXACTION count bounds them. It walks both sides of
    // the first loop's `if` (it does not follow `%`) on every turn. Walking
    // a loop costs it about MAXACTION turns, so each loop has a handler.
    let loops = [
        "for (i = 0; i < n; i++) { if (i % 3 == 0) t += i }",
        "for (j = 0; ; j++) { if (j >= n) break; u += j }",
        "k = 0; while (k < n) { k++; if (k & 1) continue; v += k }",
    ];
    let mut script = String::from("global n = 50, t, u, v\n");
    for l in loops {
        script.push_str(&format!(
            "probe kernel.trace(\"syscalls:sys_enter_close\") {{ if (pid() == target() && $fd == 987654) {{ {l} }} }}\n"
        ));
    }
    script.push_str(r#"probe end { printf("%d %d %d\n", t, u, v) }"#);
    let body = loops.join("\n");
    let out = rstap_output(&["-e", &script, "-c", THREE_MARKED_CLOSES]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let user = rstap_output(&[
        "-e",
        &format!(
            "global n = 50, t, u, v\nprobe begin {{ for (c = 0; c < 3; c++) {{ {body} }}\n printf(\"%d %d %d\\n\", t, u, v); exit() }}"
        ),
    ]);
    // Sums over 0..50: multiples of 3 (408), all (1225), even numbers (650).
    assert_eq!(String::from_utf8_lossy(&user.stdout), "1224 3675 1950\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&user.stdout),
        "kernel and user space loops differ"
    );
}

#[test]
fn a_kernel_loop_past_maxaction_is_stap_runtime_error() {
    if !kernel_ok() || !python() {
        return;
    }
    // No catch sees MAXACTION, in stap as here.
    let handler = "n++; try { for (i = 0; i < lim; i++) t++ } catch { t = -1 }";
    let script = format!(
        r#"global lim = 1000, n, t
probe kernel.trace("syscalls:sys_enter_close") {{ if (pid() == target() && $fd == 987654) {{ {handler} }} }}
probe end {{ println("end ", n, " ", t) }}
probe error {{ println("error ", n, " ", t) }}"#
    );
    let one_close = "python3 -c 'import os\ntry: os.close(987654)\nexcept OSError: pass'";
    let out = rstap_output(&["-D", "MAXACTION=100", "-e", &script, "-c", one_close]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr, "ERROR: MAXACTION exceeded\nWARNING: Number of errors: 1, skipped probes: 0\n",
        "stap's message, without a location as in user space"
    );
    // The same handler in a begin probe: the count stops it at the same statement.
    let user = rstap_output(&[
        "-D",
        "MAXACTION=100",
        "-e",
        &format!(
            "global lim = 1000, n, t\nprobe begin {{ if (1) {{ {handler} }} }}\nprobe error {{ println(\"error \", n, \" \", t) }}"
        ),
    ]);
    assert_eq!(String::from_utf8_lossy(&user.stderr), stderr);
    let user_stdout = String::from_utf8_lossy(&user.stdout);
    assert!(user_stdout.starts_with("error 1 "), "{user_stdout}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        user_stdout,
        "the handler stops where user space stops it; the error probe runs instead of end"
    );
}

#[test]
fn errors_in_kernel_functions_reach_the_callers_catch_as_in_user_space() {
    if !kernel_ok() || !python() {
        return;
    }
    // A division by 0 in a callee, caught by its caller; `next` with no
    // overload left, raised at a call two functions down and caught there.
    let functions = r#"global caught, r1, r2, why, deep
function div(a, b) { return a / b }
function guarded(a, b) { try { return div(a, b) } catch (m) { caught++; why = m } return -1 }
function f(x) { if (x) next; return 1 }
function g(x) { return f(x) + 1 }
function h(x) { try { return g(x) } catch (m) { deep = m } return 0 }
"#;
    let calls = "r1 = guarded(6, 3); r2 = guarded(1, 0); h(0); h(1)";
    let report = r#"printf("%d %d %d [%s] [%s]\n", r1, r2, caught, why, deep)"#;
    let one_close = "python3 -c 'import os\ntry: os.close(987654)\nexcept OSError: pass'";
    let kernel = rstap_output(&[
        "-e",
        &format!(
            "{functions}probe kernel.trace(\"syscalls:sys_enter_close\") {{ if (pid() == target() && $fd == 987654) {{ {calls} }} }}\nprobe end {{ {report} }}"
        ),
        "-c",
        one_close,
    ]);
    assert!(
        kernel.status.success(),
        "{}",
        String::from_utf8_lossy(&kernel.stderr)
    );
    let user = rstap_output(&[
        "-e",
        &format!("{functions}probe begin {{ {calls}; {report}; exit() }}"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&user.stdout),
        "2 -1 1 [division by 0] [all functions exhausted]\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&kernel.stdout),
        String::from_utf8_lossy(&user.stdout)
    );
}

#[test]
fn the_readme_one_liner_runs_as_written() {
    if !kernel_ok() {
        return;
    }
    // No `global n`, and a tracepoint named without its system.
    let out = rstap_output(&[
        "-T",
        "1",
        "-e",
        r#"probe kernel.trace("sched_switch") { n[execname()] <<< 1 }"#,
    ]);
    let stdout = rstap_tests::text(&out.stdout);
    assert!(out.status.success(), "{}", rstap_tests::text(&out.stderr));
    assert!(
        stdout.lines().count() > 0
            && stdout
                .lines()
                .all(|l| l.starts_with("n[\"") && l.contains("] @count=")),
        "each task's context switches, shown at exit:\n{stdout}"
    );
}

#[test]
fn a_deferred_call_that_fails_is_the_handlers_error() {
    if !kernel_ok() || !python() {
        return;
    }
    // `f` is pure and only printed: the kernel records its argument and user
    // space runs it when printing. Its division by zero must be reported as
    // the same call in a begin probe reports it, not dropped.
    let f = r#"function f(x) { return sprintf("%d", 10 / x) }"#;
    let kernel = rstap_output(&[
        "-e",
        &format!(
            "{f} probe kernel.trace(\"syscalls:sys_enter_getppid\") {{ if (pid() == target()) printf(\"%s\\n\", f(0)) }}"
        ),
        "-c",
        "python3 -c 'import os; os.getppid()'",
    ]);
    let user = rstap_output(&[
        "-e",
        &format!("{f} probe begin {{ printf(\"%s\\n\", f(0)) }}"),
    ]);
    assert_eq!(kernel.status.code(), Some(1));
    assert_eq!(user.status.code(), Some(1));
    let err = rstap_tests::text(&kernel.stderr);
    assert!(err.starts_with("ERROR: division by 0 near "), "{err}");
    assert_eq!(err, rstap_tests::text(&user.stderr));
}

#[test]
fn no_kernel_handler_starts_after_exit_but_the_one_that_called_it_finishes() {
    if !kernel_ok() {
        return;
    }
    // Syscalls come from both CPUs all the time: without the flag the ring
    // kept filling with lines until rstap detached.
    for _ in 0..3 {
        let out = rstap_output(&[
            "-e",
            r#"global n
probe kernel.trace("raw_syscalls:sys_enter") {
  n++
  printf("%d\n", n)
  if (n >= 10) { exit(); printf("the handler that called exit() goes on\n") }
}"#,
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let numbers: Vec<&str> = stdout
            .lines()
            .filter(|l| l.parse::<i64>().is_ok())
            .collect();
        // A handler already running on the other CPU when exit() was called
        // may still print: at most one more line per CPU.
        assert!((10..=12).contains(&numbers.len()), "{stdout}");
        assert!(
            stdout.contains("the handler that called exit() goes on\n"),
            "{stdout}"
        );
    }
}
