//! What a privileged tracer must not do: follow a planted symbolic link with
//! `-o`, or fail without saying which privilege it lacks.

use rstap_tests::{is_root, rstap, text};
use std::process::Command;

fn rstap_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(rstap())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"))
}

#[test]
fn output_files_are_not_followed_through_symlinks_as_root() {
    if !is_root() {
        rstap_tests::skip_or_fail("the symlink refusal applies to root");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rstap-security-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    std::fs::write(dir.join("precious"), "keep me\n").unwrap_or_else(|e| panic!("write: {e}"));
    let _ = std::fs::remove_file(dir.join("out"));
    std::os::unix::fs::symlink("precious", dir.join("out")).unwrap_or_else(|e| panic!("ln: {e}"));
    let script = "probe begin { println(\"overwritten\"); exit() }";
    let out = rstap_in(&dir, &["-o", "out", "-e", script]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(
        err,
        "rstap: cannot open output file 'out': it is a symbolic link, which rstap does not follow as root\n"
    );
    let out = rstap_in(
        &dir,
        &[
            "-u",
            "-p4",
            "-o",
            "out",
            "-e",
            "probe kernel.trace(\"sched:sched_switch\") { }",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("symbolic link"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("precious")).unwrap_or_default(),
        "keep me\n"
    );
    // A plain file is written as usual.
    std::fs::remove_file(dir.join("out")).unwrap_or_else(|e| panic!("rm: {e}"));
    let out = rstap_in(&dir, &["-o", "out", "-e", script]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.join("out")).unwrap_or_default(),
        "overwritten\n"
    );
}

/// Whether rstap can be run without its BPF capabilities here (root, and
/// capsh to drop them); otherwise says why the test is skipped.
fn capsh_or_skip() -> bool {
    if !is_root() {
        rstap_tests::skip_or_fail("dropping capabilities with capsh needs root");
        return false;
    }
    if Command::new("capsh").arg("--help").output().is_err() {
        rstap_tests::skip_or_fail("capsh (libcap2-bin) is not installed");
        return false;
    }
    true
}

/// `rstap OPTIONS -e SCRIPT` without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN.
fn without_bpf_caps(options: &str, script: &str) -> std::process::Output {
    without("cap_bpf,cap_perfmon,cap_sys_admin", options, script)
}

/// `rstap OPTIONS -e SCRIPT` with the capabilities in `drop` (capsh's list)
/// taken from the bounding set, so the root process rstap runs as lacks them.
fn without(drop: &str, options: &str, script: &str) -> std::process::Output {
    let cmd = format!("exec {} {options} -e '{script}'", rstap().display());
    Command::new("capsh")
        .args([&format!("--drop={drop}"), "--", "-c", &cmd])
        .output()
        .unwrap_or_else(|e| panic!("capsh: {e}"))
}

#[test]
fn with_cap_bpf_alone_rstap_names_cap_perfmon() {
    if !capsh_or_skip() {
        return;
    }
    // CAP_BPF lets it create maps; loading a tracing program needs CAP_PERFMON
    // too (CAP_SYS_ADMIN would stand in for it).
    let script = "global n; probe kernel.trace(\"sched:sched_switch\") { n++ } probe timer.ms(100) { exit() }";
    let out = without("cap_perfmon,cap_sys_admin", "--runtime=bpf", script);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "rstap: cannot load the BPF object: the kernel refused BPF: it needs root, or CAP_BPF and CAP_PERFMON, and this process lacks CAP_PERFMON\n"
    );
}

#[test]
fn without_bpf_capabilities_rstap_names_the_missing_ones() {
    if !capsh_or_skip() {
        return;
    }
    for script in [
        // A program and no map: the program load is the first refusal.
        "probe kernel.trace(\"sched:sched_switch\") { }",
        // A map first.
        "global n; probe kernel.trace(\"sched:sched_switch\") { n++ }",
    ] {
        // --runtime=bpf: by default rstap would fall back to tracefs (below).
        let out = without_bpf_caps("--runtime=bpf -u", script);
        assert_eq!(out.status.code(), Some(1), "{script}");
        assert_eq!(
            text(&out.stderr),
            "rstap: cannot load the BPF object: the kernel refused BPF: it needs root, or CAP_BPF and CAP_PERFMON, and this process lacks CAP_BPF and CAP_PERFMON\n",
            "{script}"
        );
    }
}

#[test]
fn without_bpf_capabilities_the_default_runtime_falls_back_to_tracefs_and_says_why() {
    if !capsh_or_skip() {
        return;
    }
    let script = r#"global n
probe kernel.trace("sched:sched_switch") { n++ }
probe timer.ms(200) { exit() }
probe end { println(n > 0 ? "switches seen" : "none") }"#;
    let out = without_bpf_caps("", script);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "switches seen\n");
    assert_eq!(
        text(&out.stderr),
        "WARNING: BPF is not available to rstap here (the kernel refused BPF: it needs root, or CAP_BPF and CAP_PERFMON, and this process lacks CAP_BPF and CAP_PERFMON); running on the tracefs runtime\n"
    );
}
