//! `system(cmd)`: the command runs after the handler, through `/bin/sh`, with
//! rstap's output; from a kernel probe too. Under `sudo` it runs as the
//! invoking user, never as root on that user's behalf.

use rstap_tests::{bpf_or_skip, is_root, python_or_skip, rstap, text};
use std::process::Command;

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(rstap())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"))
}

#[test]
fn a_command_runs_after_the_output_printed_before_it() {
    let out = run(
        &[
            "-e",
            r#"probe begin { println("before"); system("echo from the shell: $((6 * 7))"); exit() }"#,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout, "before\nfrom the shell: 42\n");
}

#[test]
fn under_sudo_the_command_runs_as_the_invoking_user() {
    if !is_root() {
        rstap_tests::skip_or_fail("only root can start a command as another user");
        return;
    }
    let out = run(
        &[
            "-e",
            r#"probe begin { system("id -u; id -g; id -G"); exit() }"#,
        ],
        &[("SUDO_UID", "65534"), ("SUDO_GID", "65534")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // No trace of root: not the uid, the gid, or a supplementary group 0.
    assert_eq!(text(&out.stdout), "65534\n65534\n65534\n");
    // Without sudo's variables root's command runs as root.
    let out = run(&["-e", r#"probe begin { system("id -u"); exit() }"#], &[]);
    assert_eq!(text(&out.stdout), "0\n");
}

#[test]
fn a_kernel_probe_asks_for_a_command_in_user_space() {
    if !bpf_or_skip() || !python_or_skip() {
        return;
    }
    let out = run(
        &[
            "-c",
            "python3 -c 'import os\nfor _ in range(3): os.getppid()'",
            "-e",
            r#"probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && execname() == "python3") system("echo saw " . execname())
}"#,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "saw python3\nsaw python3\nsaw python3\n");
}
