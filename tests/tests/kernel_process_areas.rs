//! Kernel tier: `cmdline_str()`, `cmdline_arg()`, `cmdline_args()` and
//! `env_var()` in kernel-context probes read the traced process's argument
//! and environment areas (`current->mm`), as stap's tapset does: a `-c`
//! child's exact command line and the variables the test gives it.

use rstap_tests::{bpf_or_skip, rstap_output as run, text};

/// The child: perl (an ELF program, where python3 may be a shell script's
/// shim that calls getppid itself) with an empty argument and one with a
/// space.
const CHILD: &str = "env RSTAP_X=value-1 RSTAP_EMPTY= perl -e getppid '' 'two words' last";

const SCRIPT: &str = r#"global seen
probe syscall.getppid {
  if (pid() != target() || seen++) next
  printf("str [%s]\n", cmdline_str())
  printf("arg [%s] [%s] [%s] [%s] [%s]\n", cmdline_arg(0), cmdline_arg(1), cmdline_arg(3),
         cmdline_arg(4), cmdline_arg(6))
  printf("args [%s] [%s] [%s]\n", cmdline_args(2, 4, "|"), cmdline_args(4, -1, ","),
         cmdline_args(2, 1, " "))
  printf("env [%s] [%s] [%s] [%s] [%s]\n", env_var("RSTAP_X"), env_var("RSTAP_EMPTY"),
         env_var("RSTAP_"), env_var("RSTAP_NOT_SET"), env_var(""))
  names[cmdline_arg(0), env_var("RSTAP_X")]++
}
global names
probe end { foreach ([a, b] in names) printf("key %s %s %d\n", a, b, names[a, b]); delete seen }"#;

#[test]
fn a_childs_command_line_and_environment_read_in_a_syscall_probe() {
    if !bpf_or_skip() {
        return;
    }
    let out = run(&["-e", SCRIPT, "-c", CHILD]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "str [perl -e getppid \"\" two words last]\n\
         arg [perl] [-e] [] [two words] []\n\
         args [getppid|\"\"|two words] [two words,last] []\n\
         env [value-1] [] [] [] []\n\
         key perl value-1 1\n"
    );
}

#[test]
fn maxstringlen_cuts_each_argument_and_the_joined_line() {
    if !bpf_or_skip() {
        return;
    }
    let script = r#"probe syscall.getppid {
  if (pid() != target()) next
  printf("[%s] [%s] [%s]\n", cmdline_str(), cmdline_arg(3), env_var("RSTAP_LONG"))
  exit()
}"#;
    let out = run(&[
        "-D",
        "MAXSTRINGLEN=16",
        "-e",
        script,
        "-c",
        "env RSTAP_LONG=0123456789abcdefghij perl -we getppid abcdefghijklmnopqrstuvwxyz",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // 15 bytes and the NUL, as user_string() cuts them.
    assert_eq!(
        text(&out.stdout),
        "[perl -we getppi] [abcdefghijklmno] [0123456789abcde]\n"
    );
}

#[test]
fn env_var_finds_a_variable_behind_a_hundred_others() {
    if !bpf_or_skip() {
        return;
    }
    let script = r#"probe syscall.getppid {
  if (pid() != target()) next
  printf("[%s] [%s] [%s]\n", env_var("V1"), env_var("V100"), env_var("RSTAP_LAST"))
  exit()
}"#;
    let vars: Vec<String> = (1..=100).map(|i| format!("V{i}=value{i}")).collect();
    let child = format!(
        "env -i {} RSTAP_LAST=found /usr/bin/perl -e getppid",
        vars.join(" ")
    );
    let out = run(&["-e", script, "-c", &child]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[value1] [value100] [found]\n");
}

#[test]
fn a_kernel_thread_has_no_command_line() {
    if !bpf_or_skip() {
        return;
    }
    // kworkers wake up in sched_switch all the time; they have no mm.
    let script = r#"probe kernel.trace("sched:sched_switch") {
  if (substr(execname(), 0, 7) == "kworker") {
    printf("[%s] [%s]\n", cmdline_str(), env_var("PATH"))
    exit()
  }
}"#;
    let out = run(&["-T", "10", "-e", script]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[] []\n");
}
