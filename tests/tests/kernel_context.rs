//! Kernel tier: what a kernel-context handler knows about its own probe —
//! pn(), the point as the script names it (an alias wildcard expanded), beside
//! pp(), the point it resolved to.

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
