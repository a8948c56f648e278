//! Kernel tier: what a kernel-context handler knows about its own probe —
//! pn(), the point as the script names it (an alias wildcard expanded), beside
//! pp(), the point it resolved to; user_mode(), whether the event interrupted
//! user code; thread_indent() and indent(), whose state lives in the kernel
//! and whose formatting is done in user space.

use rstap_tests::{bpf_or_skip, rstap_output as run, text};

#[test]
fn pn_names_the_written_point_or_the_alias_it_expanded_to() {
    if !bpf_or_skip() {
        return;
    }
    let script = r#"global seen
probe kernel.trace("sys_enter_getppid"), syscall.getpp*, scheduler.process_exit {
  if (pid() == target() && execname() == "python3" && !seen[pn()]++) printf("%s | %s\n", pn(), pp())
}
probe end { delete seen }"#;
    let out = run(&["-e", script, "-c", "python3 -c 'import os; os.getppid()'"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            r#"kernel.trace("sys_enter_getppid") | kernel.trace("syscalls:sys_enter_getppid")"#,
            r#"scheduler.process_exit | kernel.trace("sched:sched_process_exit")"#,
            r#"syscall.getppid | kernel.trace("syscalls:sys_enter_getppid")"#,
        ]
    );
}

#[test]
fn user_mode_is_1_in_a_uprobe_0_in_a_tracepoint_and_read_from_a_sample() {
    if !bpf_or_skip() {
        return;
    }
    let script = r#"global up, tp, user, kernel
probe process("/usr/lib/x86_64-linux-gnu/libc.so.6").function("getppid") { if (pid() == target()) up[user_mode()]++ }
probe kernel.trace("syscalls:sys_enter_getppid") { if (pid() == target()) tp[user_mode()]++ }
probe timer.profile { if (pid() == target()) { if (user_mode()) user++; else kernel++ } }
probe end {
  foreach (m in up) printf("uprobe %d\n", m)
  foreach (m in tp) printf("tracepoint %d\n", m)
  printf("samples mostly in user mode: %s\n", user > kernel ? "yes" : "no")
}"#;
    // A second of Python arithmetic: nearly every sample in user mode.
    let out = run(&[
        "-e",
        script,
        "-c",
        "python3 -c 'import os, time; os.getppid(); t = time.time()\nwhile time.time() - t < 1: pass'",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "uprobe 1\ntracepoint 0\nsamples mostly in user mode: yes\n"
    );
}

#[test]
fn thread_indent_and_indent_nest_in_kernel_probes() {
    if !bpf_or_skip() {
        return;
    }
    // Four syscalls in a row stand for two nested calls (one handler each:
    // more in one would overflow BPF's stack); getsid's pair for indent().
    let script = r#"function mine() { return pid() == target() && execname() == "python3" }
probe kernel.trace("syscalls:sys_enter_getppid") { if (mine()) printf("%s-> a\n", thread_indent(1)) }
probe kernel.trace("syscalls:sys_exit_getppid") { if (mine()) printf("%s-> b\n", thread_indent(1)) }
probe kernel.trace("syscalls:sys_enter_getpid") { if (mine()) printf("%s<- b\n", thread_indent(-1)) }
probe kernel.trace("syscalls:sys_exit_getpid") { if (mine()) printf("%s<- a %d\n", thread_indent(-1), thread_indent_depth(0)) }
probe kernel.trace("syscalls:sys_enter_getsid") { if (mine()) printf("%s-> c %d\n", indent(2), indent_depth(0)) }
probe kernel.trace("syscalls:sys_exit_getsid") { if (mine()) printf("%s<- c\n", indent(-2)) }"#;
    let out = run(&[
        "-e",
        script,
        "-c",
        "python3 -c 'import os; os.getppid(); os.getpid(); os.getsid(0)'",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The microseconds column varies: each line from its first ':' on, and
    // the name and thread id checked apart.
    let tid = stdout
        .split_once("python3(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map_or("", |(t, _)| t);
    assert!(tid.parse::<u32>().is_ok(), "a thread id: {stdout}");
    let shapes: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_once(':').map_or(l, |(_, rest)| rest))
        .collect();
    assert_eq!(
        shapes,
        ["-> a", " -> b", " <- b", "<- a 0", " -> c 1", " <- c"],
        "{stdout}"
    );
    assert_eq!(
        stdout.matches(&format!("python3({tid}):")).count(),
        4,
        "{stdout}"
    );
    assert!(stdout.starts_with("     0 python3("), "{stdout}");
}
