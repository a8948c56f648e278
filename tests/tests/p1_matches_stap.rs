//! Differential test: for every parser fixture that `stap -p1` accepts, `rstap -p1`
//! prints the same bytes. Needs SystemTap (CI installs it); without it the test
//! says it was skipped, unless RSTAP_REQUIRE_KERNEL_TESTS=1.

use rstap_tests::{rstap, skip_or_fail, text, workspace};
use std::path::{Path, PathBuf};

fn dump(tool: &Path, fixture: &Path) -> (bool, String) {
    let out = rstap_tests::run_fixture(tool, "-p1", fixture);
    (out.status.success(), text(&out.stdout))
}

#[test]
fn rstap_p1_is_byte_identical_to_stap_p1() {
    if let Err(why) = rstap_tests::stap_runs("-p1", "probe begin { }") {
        skip_or_fail(&why);
        return;
    }
    let dir = workspace().join("grammar/tests/fixtures/ok");
    let fixtures = rstap_tests::stp_files(&dir);
    assert!(
        fixtures.len() >= 150,
        "expected at least 150 ok fixtures, found {}",
        fixtures.len()
    );
    let rstap = rstap().to_path_buf();
    let stap = PathBuf::from("stap");
    // stap takes ~0.3 s per run: compare on every core.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunks: Vec<Vec<PathBuf>> = (0..workers)
        .map(|w| fixtures.iter().skip(w).step_by(workers).cloned().collect())
        .collect();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                let (rstap, stap) = (&rstap, &stap);
                s.spawn(move || {
                    let mut bad = Vec::new();
                    for f in chunk {
                        let (stap_ok, expected) = dump(stap, f);
                        if !stap_ok {
                            bad.push(format!("{}: stap -p1 rejects this ok fixture", f.display()));
                            continue;
                        }
                        let (ok, actual) = dump(rstap, f);
                        if !ok || actual != expected {
                            bad.push(format!(
                                "{}: rstap -p1 differs from stap -p1\n--- stap\n{expected}--- rstap\n{actual}",
                                f.display()
                            ));
                        }
                    }
                    bad
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["a worker panicked".into()])
            })
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}
