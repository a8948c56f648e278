//! Kernel tier: the task_* accessors of the tapset (`stdlib/tapset/task.stp`),
//! read through the kernel's BTF, agree with the built-ins that answer the
//! same question about the current task, and give a niced task's priority.

use rstap_tests::{bpf_or_skip, rstap_output as run, text};

/// Each accessor beside the built-in it must equal, at the target python3's
/// getppid() (two handlers: one would need more than BPF's stack).
const SCRIPT: &str = r#"global done, done2
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() != target() || execname() != "python3" || done) next
  done = 1; t = task_current(); p = task_parent(t)
  printf("pid %d tid %d ppid %d parent's parent %d\n", task_pid(t) == pid(), task_tid(t) == tid(),
         task_pid(p) == ppid(), task_pid(task_parent(p)) > 0)
  printf("names %s %s %s\n", task_execname(t), task_execname(p), pexecname())
}
probe kernel.trace("syscalls:sys_exit_getppid") {
  if (pid() != target() || execname() != "python3" || done2) next
  done2 = 1; t = task_current()
  printf("ids %d %d %d %d %d\n", task_uid(t) == uid(), task_gid(t) == gid(), task_euid(t) == euid(),
         task_egid(t) == egid(), task_uid(t))
  # Niceness relative to rstap's own (the parent), so a niced test run
  # changes nothing; a normal task's priority is 20 above its nice value.
  printf("state %d cpu %d prio-nice %d nice %+d\n", task_state(t), task_cpu(t) == cpu(),
         task_prio(t) - task_nice(t), task_nice(t) - task_nice(task_parent(t)))
}"#;

#[test]
fn task_accessors_agree_with_the_builtins_for_the_current_task() {
    if !bpf_or_skip() {
        return;
    }
    let out = run(&["-e", SCRIPT, "-c", "python3 -c 'import os; os.getppid()'"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The -c command's parent is rstap; a running task's state is 0.
    let uid = text(&run(&["-e", "probe begin { println(uid()); exit() }"]).stdout);
    assert_eq!(
        text(&out.stdout),
        format!(
            "pid 1 tid 1 ppid 1 parent's parent 1\n\
             names python3 rstap rstap\n\
             ids 1 1 1 1 {}\n\
             state 0 cpu 1 prio-nice 20 nice +0\n",
            uid.trim()
        )
    );
}

#[test]
fn a_niced_tasks_priority_and_nice_value() {
    if !bpf_or_skip() {
        return;
    }
    let out = run(&[
        "-e",
        SCRIPT,
        "-c",
        "nice -n 5 python3 -c 'import os; os.getppid()'",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.ends_with("state 0 cpu 1 prio-nice 20 nice +5\n"),
        "{stdout}"
    );
}
