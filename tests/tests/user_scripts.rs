//! The user-context tier: every `tests/user/NAME.stp` runs through the real
//! binary (begin, end, error and timer probes only: no kernel needed) and its
//! stdout must equal `NAME.expected` byte for byte. A `NAME.status` file holds the
//! expected exit status when it is not 0, and `NAME.stderr` lines that stderr
//! must contain. Header lines `# args: A B` give script arguments, `# rstap: -x`
//! extra options.

use rstap_tests::{fixture_flags, fixture_options, rstap, workspace};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scripts() -> Vec<PathBuf> {
    let mut v = rstap_tests::stp_files(&workspace().join("tests/user"));
    v.retain(|p| {
        std::env::var("SCRIPT").map_or(true, |want| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(want.as_str()))
        })
    });
    v
}

fn sibling(script: &Path, ext: &str) -> Option<String> {
    std::fs::read_to_string(script.with_extension(ext)).ok()
}

/// Runs one script; a description of what differs, if anything.
fn check(script: &Path) -> Option<String> {
    let text = std::fs::read_to_string(script).unwrap_or_default();
    let (args, _) = fixture_flags(&text);
    let extra = fixture_options(&text);
    let Some(expected) = sibling(script, "expected") else {
        return Some(format!("{}: no .expected file", script.display()));
    };
    let status: i32 = sibling(script, "status")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let out = Command::new(rstap())
        .args(["-T", "10"])
        .args(&extra)
        .arg(script)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    if stdout != expected {
        problems.push(format!(
            "--- expected stdout\n{expected}--- actual stdout\n{stdout}"
        ));
    }
    if out.status.code() != Some(status) {
        problems.push(format!(
            "exit status {:?}, expected {status}",
            out.status.code()
        ));
    }
    if let Some(want) = sibling(script, "stderr") {
        for line in want.lines().filter(|l| !l.is_empty()) {
            if !stderr.contains(line) {
                problems.push(format!("stderr lacks `{line}`"));
            }
        }
    }
    (!problems.is_empty()).then(|| {
        format!(
            "{}:\n{}\n--- stderr\n{stderr}",
            script.display(),
            problems.join("\n")
        )
    })
}

#[test]
fn user_context_scripts_print_exactly_what_stap_prints() {
    let all = scripts();
    if std::env::var_os("SCRIPT").is_none() {
        assert!(
            all.len() >= 60,
            "expected at least 60 user-tier scripts, found {}",
            all.len()
        );
    }
    let failures: Vec<String> = all.iter().filter_map(|s| check(s)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} user-tier scripts differ:\n\n{}",
        failures.len(),
        all.len(),
        failures.join("\n\n")
    );
}
