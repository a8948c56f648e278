//! Kernel tier: `rstap -l` / `-L` against this machine's real tracefs.

use rstap_tests::{run_rstap, tracefs_or_skip};

#[test]
fn lists_syscall_tracepoints_by_wildcard() {
    if !tracefs_or_skip() {
        return;
    }
    let out = run_rstap(
        &["-l", r#"kernel.trace("syscalls:sys_enter_open*")"#],
        &std::env::temp_dir(),
    );
    assert!(
        out.status.success(),
        "rstap -l failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l == r#"kernel.trace("syscalls:sys_enter_openat")"#),
        "no openat in:\n{listed}"
    );
    assert!(
        listed
            .lines()
            .all(|l| l.starts_with(r#"kernel.trace("syscalls:sys_enter_open"#)),
        "a line does not match the pattern:\n{listed}"
    );
}

#[test]
fn lists_kfree_skb_fields_as_variables() {
    if !tracefs_or_skip() {
        return;
    }
    let out = run_rstap(
        &["-L", r#"kernel.trace("skb:kfree_skb")"#],
        &std::env::temp_dir(),
    );
    assert!(
        out.status.success(),
        "rstap -L failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.starts_with(r#"kernel.trace("skb:kfree_skb") "#),
        "got: {line}"
    );
    for var in ["$location:long", "$skbaddr:long", "$protocol:long"] {
        assert!(line.contains(var), "{var} missing from: {line}");
    }
}

#[test]
fn no_match_exits_1() {
    if !tracefs_or_skip() {
        return;
    }
    let out = run_rstap(
        &["-l", r#"kernel.trace("no_such_system:*")"#],
        &std::env::temp_dir(),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "nothing matched, so the exit status is 1"
    );
    assert!(out.stdout.is_empty());
}
