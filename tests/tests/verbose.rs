//! `-v`: one line per pass with what it did and how long it took, on stderr.

use rstap_tests::{bpf_or_skip, rstap_output, text};

/// The `Pass N: ...` lines of stderr.
fn pass_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("Pass ")).collect()
}

#[test]
fn each_pass_reports_what_it_did() {
    if !bpf_or_skip() {
        return;
    }
    let out = rstap_output(&[
        "-v",
        "-e",
        r#"global n
probe kernel.trace("syscalls:sys_enter_getppid"), kernel.trace("syscalls:sys_enter_close") { n++ }
probe timer.ms(1) { exit() }"#,
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let passes = pass_lines(&stderr);
    assert_eq!(passes.len(), 5, "{stderr}");
    for (i, line) in passes.iter().enumerate() {
        assert!(line.starts_with(&format!("Pass {}: ", i + 1)), "{line}");
        assert!(line.ends_with(" ms."), "{line}");
    }
    assert!(
        passes[3].contains("compiled 2 BPF programs"),
        "{}",
        passes[3]
    );
    assert!(
        passes[4].contains("attached 2 probes (2 tracepoints)"),
        "{}",
        passes[4]
    );
}

#[test]
fn stopping_after_pass_4_reports_the_four_passes() {
    if !bpf_or_skip() {
        return;
    }
    let out = rstap_output(&[
        "-v",
        "-p4",
        "-e",
        r#"global n; probe kernel.trace("syscalls:sys_enter_getppid") { n++ }"#,
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let passes = pass_lines(&stderr);
    assert_eq!(passes.len(), 4, "{stderr}");
    assert!(
        passes[3].starts_with("Pass 4: compiled 1 BPF programs"),
        "{}",
        passes[3]
    );
}
