//! Differential test of the checker fixtures against SystemTap. For every ok
//! fixture, `stap -p2` must accept it and `rstap -p2` must print the same
//! elaboration listing, byte for byte. For every err fixture, stap must reject it
//! too, and the rstap binary must agree. Fixtures that stap cannot elaborate on
//! this machine (kernel.trace, kernel.function, @cast, perf, timer.profile: it
//! has no kernel facts for them) are skipped. Two fixture headers record
//! deliberate differences, each with its reason: `# p2-differs: WHY` (both accept,
//! the listings differ), `# stap-rejects-later: WHY` (stap passes -p2 and
//! rejects the script in a later pass) and `# rstap-accepts: WHY` (the checker
//! rejects it, stap too, but the rstap binary mends it with a warning). Needs SystemTap (CI installs it); without
//! it the test says it was skipped, unless RSTAP_REQUIRE_KERNEL_TESTS=1.

use rstap_tests::{rstap, skip_or_fail, text, workspace};
use std::path::{Path, PathBuf};

/// Fewer comparisons than this means the differential test has stopped testing much.
const MIN_COMPARED: usize = 40;

/// What one tool made of one fixture.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `tool -p2` on `fixture` from the fixture's directory, honouring the
/// fixture's `# args:`, `# guru` and `# unoptimized` header lines.
fn elaborate(tool: &Path, fixture: &Path) -> Run {
    let out = rstap_tests::run_fixture(tool, "-p2", fixture);
    Run {
        ok: out.status.success(),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    }
}

fn fixtures(kind: &str) -> Vec<PathBuf> {
    rstap_tests::stp_files(&workspace().join("compiler/tests/fixtures/check").join(kind))
}

/// stap's messages for probe points it cannot resolve on this machine (no
/// tracepoint data, no kernel debuginfo, no perf or profile-timer support in the
/// kernel it sees). A fixture stap rejects with one of these says nothing about
/// the language.
const STAP_ENVIRONMENT_LIMITS: [&str; 4] = [
    "semantic error: no match",
    "missing x86_64 kernel/module debuginfo",
    "perf probes not available",
    "profiling timer support",
];

fn stap_cannot_resolve_here(stap: &Run) -> bool {
    STAP_ENVIRONMENT_LIMITS
        .iter()
        .any(|m| stap.stderr.contains(m))
}

/// The verdict on one fixture.
enum Outcome {
    /// stap and rstap agree: same listing for an ok fixture, both reject an err fixture.
    Same,
    /// stap cannot elaborate the fixture on this machine, so there is nothing to compare.
    Skipped,
    Differs(String),
}

fn first_lines(s: &str, n: usize) -> String {
    s.lines()
        .filter(|l| !l.contains("Kernel function symbol table missing"))
        .take(n)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The reason a fixture gives on a `# KEY: reason` header line, if it has one.
fn header(fixture: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(fixture).ok()?;
    let prefix = format!("# {key}:");
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&prefix).map(|r| r.trim().to_string()))
        .filter(|r| !r.is_empty())
}

/// An ok fixture: stap must elaborate it (unless it cannot on this machine), and
/// rstap must print the same listing.
fn compare_ok(rstap: &Path, fixture: &Path) -> Outcome {
    let stap = elaborate(Path::new("stap"), fixture);
    if !stap.ok && stap_cannot_resolve_here(&stap) {
        return Outcome::Skipped;
    }
    if !stap.ok {
        return Outcome::Differs(format!(
            "{}: rstap accepts this ok fixture, but stap -p2 rejects it:\n{}",
            fixture.display(),
            first_lines(&stap.stderr, 8)
        ));
    }
    let ours = elaborate(rstap, fixture);
    if !ours.ok {
        return Outcome::Differs(format!(
            "{}: stap -p2 accepts this ok fixture, rstap -p2 rejects it:\n{}",
            fixture.display(),
            first_lines(&ours.stderr, 12)
        ));
    }
    if ours.stdout != stap.stdout && header(fixture, "p2-differs").is_none() {
        return Outcome::Differs(format!(
            "{}: rstap -p2 differs from stap -p2\n--- stap\n{}--- rstap\n{}",
            fixture.display(),
            stap.stdout,
            ours.stdout
        ));
    }
    Outcome::Same
}

/// An err fixture: rstap rejects it (compiler/tests/check.rs checks that with the
/// fixture kernel), so stap must reject it too, and the rstap binary must agree
/// wherever stap's verdict is about the script rather than this machine.
fn compare_err(rstap: &Path, fixture: &Path) -> Outcome {
    let stap = elaborate(Path::new("stap"), fixture);
    if stap.ok && header(fixture, "stap-rejects-later").is_none() {
        return Outcome::Differs(format!(
            "{}: rstap rejects this err fixture, but stap -p2 accepts it:\n{}",
            fixture.display(),
            stap.stdout
        ));
    }
    if stap_cannot_resolve_here(&stap) {
        return Outcome::Skipped;
    }
    let ours = elaborate(rstap, fixture);
    if header(fixture, "rstap-accepts").is_some() {
        if ours.ok {
            return Outcome::Same;
        }
        return Outcome::Differs(format!(
            "{}: marked rstap-accepts, but rstap -p2 rejects it",
            fixture.display()
        ));
    }
    if ours.ok {
        return Outcome::Differs(format!(
            "{}: stap -p2 rejects this err fixture, but rstap -p2 accepts it:\n--- stap\n{}\n--- rstap\n{}",
            fixture.display(),
            first_lines(&stap.stderr, 8),
            ours.stdout
        ));
    }
    Outcome::Same
}

/// Runs `judge` on every fixture, spread over every core (stap takes ~0.3 s a run).
fn judge_all(fixtures: &[PathBuf], judge: &(dyn Fn(&Path) -> Outcome + Sync)) -> Vec<Outcome> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    fixtures
                        .iter()
                        .skip(w)
                        .step_by(workers)
                        .map(|f| judge(f))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Outcome::Differs("a worker panicked".into())])
            })
            .collect()
    })
}

#[test]
fn rstap_p2_is_byte_identical_to_stap_p2() {
    if let Err(why) = rstap_tests::stap_runs("-p2", "probe begin { exit() }") {
        skip_or_fail(&why);
        return;
    }
    let ok = fixtures("ok");
    let err = fixtures("err");
    assert!(
        ok.len() >= 85 && err.len() >= 65,
        "expected at least 85 ok and 65 err checker fixtures, found {} and {}",
        ok.len(),
        err.len()
    );
    let rstap = rstap().to_path_buf();
    let ok_outcomes = judge_all(&ok, &|f| compare_ok(&rstap, f));
    let err_outcomes = judge_all(&err, &|f| compare_err(&rstap, f));

    let compared = ok_outcomes
        .iter()
        .filter(|o| !matches!(o, Outcome::Skipped))
        .count();
    let err_compared = err_outcomes
        .iter()
        .filter(|o| !matches!(o, Outcome::Skipped))
        .count();
    println!(
        "compared {compared} of {} ok and {err_compared} of {} err fixtures with stap -p2 (the rest need kernel facts stap lacks here)",
        ok.len(),
        err.len()
    );
    let failures: Vec<&str> = ok_outcomes
        .iter()
        .chain(&err_outcomes)
        .filter_map(|o| match o {
            Outcome::Differs(why) => Some(why.as_str()),
            Outcome::Same | Outcome::Skipped => None,
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} fixtures diverge from stap:\n{}",
        failures.len(),
        ok.len() + err.len(),
        failures.join("\n")
    );
    assert!(
        compared >= MIN_COMPARED,
        "only {compared} ok fixtures could be compared with stap -p2; expected at least {MIN_COMPARED}"
    );
}
