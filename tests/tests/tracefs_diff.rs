//! Kernel tier, differential: the same scripts on the BPF runtime and on the
//! tracefs runtime (`--runtime=bpf|tracefs`) must print the same thing.
//! The corpus is the kernel tier's kind of script — counts, aggregates and
//! histograms, strings, `foreach`, syscall aliases with `argstr`/`retstr`,
//! runtime errors, `exit()`, tracepoint string fields, task built-ins — run
//! against one deterministic workload whose events the scripts select by
//! `target()` (and, where the shell that becomes the `-c` child could be
//! seen or not depending on when its start-up races the setting of
//! `target()` — on either runtime — by leaving the shell out). Where a
//! script's output order is unspecified (an unsorted
//! `foreach`), lines are compared as sorted lists. A script one runtime
//! refuses is not compared (the count of compared scripts is checked), and the
//! examples, which count system-wide events, are compared by their fixed
//! text (every line without a digit) and exit status.

use rstap_tests::{rstap, text, workspace};
use std::process::{Command, Output};

/// 200 getppid calls, 100 failed close(987654), one open and read of
/// /etc/hostname; python3 itself (not a pyenv shim) so the process is the
/// same every time.
const WORKLOAD: &str = "/usr/bin/python3 -c 'import os\nfor i in range(200): os.getppid()\nfor i in range(100):\n    try: os.close(987654)\n    except OSError: pass\nopen(\"/etc/hostname\").read()'";

#[derive(Clone, Copy, PartialEq)]
enum Order {
    Exact,
    Unordered,
}

const CASES: &[(&str, Order)] = &[
    (
        r#"global n, s, c
probe kernel.trace("syscalls:sys_enter_close") {
  if (pid() == target() && $fd == 987654) { n++; s <<< 1; c[pid()] <<< 2 }
}
probe end { printf("n=%d count=%d sum=%d\n", n, @count(s), @sum(c[target()])) }"#,
        Order::Exact,
    ),
    (
        r#"global h
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && execname() != "sh") { h <<< 5; h <<< target() - pid() - 3; h <<< 0 }
}
probe end { printf("%d %d %d %d\n", @count(h), @min(h), @max(h), @avg(h)); print(@hist_log(h)) }"#,
        Order::Exact,
    ),
    (
        r#"global l
probe kernel.trace("syscalls:sys_enter_close") { if (pid() == target() && execname() == "python3") l <<< $fd % 20 }
probe end { print(@hist_linear(l, 0, 20, 2)) }"#,
        Order::Exact,
    ),
    (
        r#"probe syscall.close { if (pid() == target() && fd == 987654) printf("%s(%s)\n", name, argstr) }
probe syscall.close.return { if (pid() == target() && $ret < 0) printf("= %s\n", retstr) }"#,
        Order::Exact,
    ),
    (
        r#"probe syscall.openat { if (pid() == target() && filename == "/etc/hostname") printf("%s %s\n", name, argstr) }"#,
        Order::Exact,
    ),
    (
        r#"global ug, ua, kg, ka, done
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && !done) {
    done = 1
    s = "hello"; t = s . ", " . "world"
    printf("%s|%d|%d|%d|%d|%d|%d\n", t, strlen(t), s < t, s == "hello", "b" > "abc", s != t, "" < s)
    u = ""
    for (i = 0; i < 6; i++) u = u . "ab"
    printf("[%s] %d %s\n", u, strlen(u), u == "abababababab" ? "same" : "differs")
    kg = t
    ka[s] = t; ka["x"] = u; ka[t] = "3"
    printf("%s|%s|%s|%d|%d\n", kg, ka[s], ka["nothing"], ["x"] in ka, [u] in ka)
    delete ka["x"]
    printf("%d %d\n", ["x"] in ka, [s] in ka)
  }
}
probe end { printf("%s %d\n", kg, strlen(ka["hello"])) }"#,
        Order::Exact,
    ),
    (
        r#"global a
probe kernel.trace("syscalls:sys_enter_close") { if (pid() == target() && execname() != "sh") a[execname(), $fd] <<< 1 }
probe end { foreach ([e, f] in a) printf("%s %d %d\n", e, f, @count(a[e, f])) }"#,
        Order::Unordered,
    ),
    (
        r#"global a, done
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && !done) {
    done = 1
    for (i = 0; i < 5; i++) a[i] = i * i
    foreach (k in a) printf("%d=%d\n", k, a[k])
  }
}"#,
        Order::Unordered,
    ),
    (
        r#"function twice(x) { return x * 2 }
global n
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && execname() != "sh") {
    n += twice(1)
    try { if (n == 10) error("ten") } catch (msg) { printf("caught %s\n", msg) }
  }
}
probe end { printf("n=%d\n", n) }"#,
        Order::Exact,
    ),
    (
        r#"global n
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target()) { n++; if (n == 50) printf("%d\n", 1 / (n - 50)) }
}
probe end { printf("n=%d\n", n) }"#,
        Order::Exact,
    ),
    (
        r#"global n, same, parent, threads
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && execname() != "sh") { n++; same += tid() == pid(); parent += ppid() > 1; threads += cpu() >= 0 }
}
probe end { printf("n=%d same=%d parent=%d cpus=%d\n", n, same, parent, threads) }"#,
        Order::Exact,
    ),
    (
        r#"global last, bad, n
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && execname() != "sh") {
    t = gettimeofday_us(); k = ktime_get_ns()
    if (t < last) bad++
    last = t; n++
    if (k <= 0) bad++
  }
}
probe end { printf("n=%d bad=%d\n", n, bad) }"#,
        Order::Exact,
    ),
    (
        r#"probe kernel.trace("sched:sched_process_exec") {
  if (pid() == target()) printf("%s %s %d\n", execname(), $filename, $old_pid == pid())
}"#,
        Order::Exact,
    ),
    (
        r#"global names
probe kernel.trace("syscalls:sys_enter_getppid") { if (pid() == target() && execname() != "sh") names[execname(), pp()]++ }
probe end { foreach ([e, p] in names) printf("%s %s %d\n", e, p, names[e, p]) }"#,
        Order::Unordered,
    ),
];

fn run(runtime: &str, script: &str) -> Output {
    Command::new(rstap())
        .arg(format!("--runtime={runtime}"))
        .args(["-e", script, "-c", WORKLOAD])
        .output()
        .expect("run rstap")
}

fn normal(out: &str, order: Order) -> String {
    let mut lines: Vec<&str> = out.lines().collect();
    if order == Order::Unordered {
        lines.sort_unstable();
    }
    lines.join("\n")
}

#[test]
fn kernel_tier_scripts_print_the_same_on_both_runtimes() {
    if !rstap_tests::bpf_or_skip() || !rstap_tests::python_or_skip() {
        return;
    }
    let mut compared = 0;
    let mut refused = Vec::new();
    for (script, order) in CASES {
        let bpf = run("bpf", script);
        let tracefs = run("tracefs", script);
        let refusal =
            |o: &Output| o.status.code() == Some(1) && text(&o.stderr).contains("error[E0");
        if refusal(&bpf) || refusal(&tracefs) {
            refused.push(script.lines().next().unwrap_or("").to_string());
            continue;
        }
        compared += 1;
        assert_eq!(
            normal(&text(&bpf.stdout), *order),
            normal(&text(&tracefs.stdout), *order),
            "stdout differs for:\n{script}\nbpf stderr: {}\ntracefs stderr: {}",
            text(&bpf.stderr),
            text(&tracefs.stderr)
        );
        assert_eq!(
            text(&bpf.stderr),
            text(&tracefs.stderr),
            "stderr differs for:\n{script}"
        );
        assert_eq!(bpf.status.code(), tracefs.status.code(), "{script}");
    }
    assert!(
        compared >= CASES.len() - 1,
        "only {compared} of {} scripts ran on both runtimes; refused: {refused:#?}",
        CASES.len()
    );
}

/// The lines of an output that hold no number: what a system-wide script
/// prints the same whatever the system did meanwhile.
fn fixed_text(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| !l.chars().any(|c| c.is_ascii_digit()))
        // A histogram's header shows only when something was added to it:
        // whether a system-wide event happened in the window.
        .filter(|l| !l.trim().is_empty() && !l.starts_with("value |"))
        // A histogram's header is indented by the width of its values.
        .map(|l| l.trim().to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Runs `f` while this process reads a file every 20 ms: an example that
/// traces the whole system (readlatency.stp's reads) then has something to
/// see on either runtime, however quiet the machine is (on a quiet one,
/// nothing else read during one runtime's two seconds and the outputs
/// differed).
fn while_reading<T>(f: impl FnOnce() -> T) -> T {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::read("/etc/hostname");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        let out = f();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    })
}

/// Every example whose probes the tracefs runtime supports runs for two
/// seconds on each runtime, with the stand-in arguments the shelf's
/// elaboration test uses, while the test reads a file now and then; what it
/// prints without numbers must be the same.
/// An example tracefs refuses (USDT marks, perf events, kernel stacks) is
/// skipped, and the test says which.
#[test]
fn the_examples_run_on_both_runtimes_with_the_same_fixed_text() {
    if !rstap_tests::bpf_or_skip() {
        return;
    }
    let dir = workspace().join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples/ is listable")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".stp"))
        .collect();
    names.sort();
    let (mut compared, mut refused) = (0, Vec::new());
    for name in &names {
        let Some(args) = rstap_tests::example_args(name) else {
            continue;
        };
        let path = dir.join(name);
        let go = |runtime: &str| {
            while_reading(|| {
                Command::new(rstap())
                    .arg(format!("--runtime={runtime}"))
                    .args(["-T", "2", "-I"])
                    .arg(dir.join("tapset"))
                    .arg(&path)
                    .args(&args)
                    .output()
                    .expect("run rstap")
            })
        };
        let tracefs = go("tracefs");
        if text(&tracefs.stderr).contains("the tracefs runtime cannot run") {
            refused.push(name.clone());
            continue;
        }
        let bpf = go("bpf");
        compared += 1;
        assert!(bpf.status.success(), "{name} on bpf: {}", text(&bpf.stderr));
        assert!(
            tracefs.status.success(),
            "{name} on tracefs: {}",
            text(&tracefs.stderr)
        );
        assert_eq!(
            fixed_text(&text(&bpf.stdout)),
            fixed_text(&text(&tracefs.stdout)),
            "{name}"
        );
    }
    println!("compared {compared} examples; tracefs refuses {refused:?}");
    // Most of the shelf is tracepoints, syscalls and uprobes: it must run.
    assert!(
        compared >= 15,
        "only {compared} examples ran on both; refused: {refused:?}"
    );
}
