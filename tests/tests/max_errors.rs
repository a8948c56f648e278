//! `-D MAXERRORS=N`: a session survives N uncaught runtime errors, each
//! reported; the next one ends it, with the error probes instead of the end
//! probes, as stap does. The default (0) ends it at the first.

use rstap_tests::{bpf_or_skip, python_or_skip, rstap_output, text};

const TIMER_ERRORS: &str = r#"global n
probe timer.ms(5) { n++; if (n <= 3) error(sprint("e", n)); else exit() }
probe end { println("end ", n) }
probe error { println("error probe ", n) }"#;

fn errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("ERROR: "))
        .collect()
}

#[test]
fn the_first_error_ends_the_session_by_default() {
    let out = rstap_output(&["-e", TIMER_ERRORS]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "error probe 1\n");
    let err = text(&out.stderr);
    assert_eq!(
        errors(&err),
        ["ERROR: e1 near identifier 'error' at <input>:2:38"],
        "{err}"
    );
}

#[test]
fn errors_up_to_maxerrors_are_survived_and_each_is_reported() {
    let out = rstap_output(&["-D", "MAXERRORS=3", "-e", TIMER_ERRORS]);
    // Errors happened, so the status is 1, but the session ran to exit() and
    // its end probe.
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "end 4\n");
    let err = text(&out.stderr);
    assert_eq!(errors(&err).len(), 3, "{err}");
    assert!(
        err.contains("WARNING: Number of errors: 3, skipped probes: 0"),
        "{err}"
    );
}

#[test]
fn the_error_past_maxerrors_ends_the_session() {
    let out = rstap_output(&["-D", "MAXERRORS=1", "-e", TIMER_ERRORS]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "error probe 2\n");
    assert_eq!(errors(&text(&out.stderr)).len(), 2);
}

#[test]
fn kernel_errors_count_toward_maxerrors() {
    if !bpf_or_skip() || !python_or_skip() {
        return;
    }
    // Each of the child's 20 getppid calls raises an error in the kernel.
    let script = r#"global seen
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && execname() == "python3") { seen++; error("from the kernel") }
}
probe end { println("end ", seen) }
probe error { println("error probe") }"#;
    let child = "python3 -c 'import os,time\nfor _ in range(20): os.getppid(); time.sleep(0.02)'";
    let out = rstap_output(&["-D", "MAXERRORS=4", "-c", child, "-e", script]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "error probe\n");
    let err = text(&out.stderr);
    assert_eq!(errors(&err).len(), 5, "{err}");
    assert!(err.contains("WARNING: Number of errors: 5,"), "{err}");
    // Under the limit the session runs to the child's exit and its end probe.
    let out = rstap_output(&["-D", "MAXERRORS=100", "-c", child, "-e", script]);
    assert_eq!(text(&out.stdout), "end 20\n");
    assert_eq!(
        errors(&text(&out.stderr)).len(),
        20,
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_fractional_timeout_stops_the_session() {
    let started = std::time::Instant::now();
    let out = rstap_output(&["-T", "0.25", "-e", "probe end { println(\"stopped\") }"]);
    assert_eq!(text(&out.stdout), "stopped\n");
    assert!(out.status.success());
    // Not a timing assertion: -T 0.25 must not have been read as 0 or 1.
    assert!(started.elapsed() < std::time::Duration::from_millis(900));
    for bad in ["0", "-1", "soon", "nan"] {
        let out = rstap_output(&["-T", bad, "-e", "probe begin { exit() }"]);
        assert_eq!(out.status.code(), Some(1), "-T {bad}");
    }
}
