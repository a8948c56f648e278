//! The two user-space engines side by side: every user-context script of the
//! test corpora runs through the real binary once with `RSTAP_ENGINE=interp`
//! and once with `RSTAP_ENGINE=jit`, and stdout, stderr and the exit status
//! must be byte for byte the same. The interpreter is the reference.
//!
//! Each run logs the bodies the JIT compiled or left to the interpreter
//! (`RSTAP_JIT_LOG`): the interpreter's run must log nothing, and nearly every
//! body of the JIT's runs must have been compiled, so the comparison cannot
//! pass by falling back everywhere.
//!
//! Corpora: `tests/user/` (the user tier, runtime errors included),
//! `tests/jit/` (the JIT's own edge cases), the parser's and checker's
//! `ok/` fixtures whose probes all run in user context, each given a last
//! begin probe that calls `exit()`, and kernel-context handlers on the tracefs
//! runtime, which runs them in the user-space engine too. A fixture whose interpreter output differs
//! between two runs (it prints a pid or a time) is left out, and so is one
//! that prints `cpu()`, which two runs on this 2-CPU machine often share.
//!
//! The binary is the default build of rstap-runtime, which has the `jit`
//! feature; so the tests crate needs no feature of its own. Built without it,
//! the JIT runs log nothing and the test says so (and fails in CI).

use rstap_tests::{
    fixture_flags, fixture_options, python_or_skip, rstap, skip_or_fail, stp_files,
    tracefs_or_skip, workspace,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What one script run gave, and what the JIT log said of its bodies.
#[derive(PartialEq, Eq)]
struct Run {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<i32>,
    compiled: usize,
    fallbacks: Vec<String>,
}

fn run(script: &Path, engine: &str, log: &Path) -> Run {
    let text = std::fs::read_to_string(script).unwrap_or_default();
    let (args, guru) = fixture_flags(&text);
    let mut cmd = Command::new(rstap());
    cmd.args(["-T", "10"])
        .args(guru.then_some("-g"))
        .args(fixture_options(&text))
        .arg(script)
        .args(&args);
    run_with(cmd, engine, log)
}

/// Runs `cmd` (an rstap command line) under `engine`, with the JIT log at `log`.
fn run_with(mut cmd: Command, engine: &str, log: &Path) -> Run {
    let _ = std::fs::remove_file(log);
    let out: Output = cmd
        .env("RSTAP_ENGINE", engine)
        // Every body compiled on its first run, loop or not.
        .env("RSTAP_JIT_AFTER", "0")
        .env("RSTAP_JIT_LOG", log)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"));
    let logged = std::fs::read_to_string(log).unwrap_or_default();
    Run {
        stdout: out.stdout,
        stderr: out.stderr,
        status: out.status.code(),
        compiled: logged.lines().filter(|l| l.starts_with("jit\t")).count(),
        fallbacks: logged
            .lines()
            .filter(|l| l.starts_with("interp\t"))
            .map(str::to_string)
            .collect(),
    }
}

/// What differs between the two engines' runs, if anything.
fn differences(interp: &Run, jit: &Run) -> Vec<String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut v = Vec::new();
    if interp.stdout != jit.stdout {
        v.push(format!(
            "--- interp stdout\n{}--- jit stdout\n{}",
            text(&interp.stdout),
            text(&jit.stdout)
        ));
    }
    if interp.stderr != jit.stderr {
        v.push(format!(
            "--- interp stderr\n{}--- jit stderr\n{}",
            text(&interp.stderr),
            text(&jit.stderr)
        ));
    }
    if interp.status != jit.status {
        v.push(format!(
            "exit status {:?} (interp) vs {:?} (jit)",
            interp.status, jit.status
        ));
    }
    v
}

/// Totals over a corpus.
#[derive(Default)]
struct Tally {
    scripts: usize,
    compiled: usize,
    fallbacks: Vec<String>,
    failures: Vec<String>,
    /// Left out: the interpreter alone does not repeat itself.
    unsteady: Vec<PathBuf>,
}

impl Tally {
    fn compare(&mut self, script: &Path, log: &Path, steady: bool) {
        let interp = run(script, "interp", log);
        let jit = run(script, "jit", log);
        let mut problems = differences(&interp, &jit);
        if !problems.is_empty() && !steady && run(script, "interp", log) != interp {
            self.unsteady.push(script.to_path_buf());
            return;
        }
        problems.extend(self.count(&interp, jit));
        if !problems.is_empty() {
            self.failures
                .push(format!("{}:\n{}", script.display(), problems.join("\n")));
        }
    }

    /// Adds one script's runs to the totals; what is wrong with the
    /// interpreter's run, if anything.
    fn count(&mut self, interp: &Run, jit: Run) -> Option<String> {
        self.scripts += 1;
        self.compiled += jit.compiled;
        self.fallbacks.extend(jit.fallbacks);
        (interp.compiled > 0 || !interp.fallbacks.is_empty())
            .then(|| "RSTAP_ENGINE=interp ran JIT-compiled code".to_string())
    }

    /// The engines agreed everywhere, and the JIT compiled nearly every body.
    fn check(&self, corpus: &str) {
        assert!(
            self.failures.is_empty(),
            "{} of {} {corpus} scripts differ between the engines:\n\n{}",
            self.failures.len(),
            self.scripts,
            self.failures.join("\n\n")
        );
        if self.compiled == 0 && self.fallbacks.is_empty() {
            skip_or_fail("the rstap binary has no JIT (built without the `jit` feature)");
            return;
        }
        let total = self.compiled + self.fallbacks.len();
        assert!(
            self.compiled * 10 >= total * 9,
            "{corpus}: the JIT compiled only {} of {total} bodies; it left these to the interpreter:\n{}",
            self.compiled,
            self.fallbacks.join("\n")
        );
        println!(
            "{corpus}: {} scripts identical under both engines; {} of {total} bodies JIT-compiled; {} left out as not repeatable",
            self.scripts,
            self.compiled,
            self.unsteady.len()
        );
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rstap-jit-diff-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

#[test]
fn user_tier_scripts_run_identically_under_both_engines() {
    let dir = scratch("user");
    let log = dir.join("jit.log");
    let mut tally = Tally::default();
    let scripts: Vec<PathBuf> = ["tests/user", "tests/jit"]
        .iter()
        .flat_map(|d| stp_files(&workspace().join(d)))
        .collect();
    assert!(
        scripts.len() >= 100,
        "expected at least 100 user-tier and JIT scripts, found {}",
        scripts.len()
    );
    for script in &scripts {
        tally.compare(script, &log, true);
    }
    let _ = std::fs::remove_dir_all(&dir);
    tally.check("user-tier");
    assert!(
        tally.compiled >= scripts.len(),
        "expected at least one compiled body per script, got {} for {} scripts",
        tally.compiled,
        scripts.len()
    );
}

/// `-p3` lists every probe with its context: `probe NAME (User) {`.
fn user_context_only(script: &Path) -> bool {
    let text = std::fs::read_to_string(script).unwrap_or_default();
    let (args, guru) = fixture_flags(&text);
    let out = Command::new(rstap())
        .args(["-w", "-p3"])
        .args(guru.then_some("-g"))
        .arg(script)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"));
    let mir = String::from_utf8_lossy(&out.stdout);
    out.status.success()
        && mir.lines().any(|l| l.starts_with("probe "))
        && !mir
            .lines()
            .any(|l| l.starts_with("probe ") && !l.ends_with("(User) {"))
}

#[test]
fn parser_and_checker_fixtures_run_identically_under_both_engines() {
    let dir = scratch("fixtures");
    let log = dir.join("jit.log");
    let mut tally = Tally::default();
    for corpus in [
        "grammar/tests/fixtures/ok",
        "compiler/tests/fixtures/check/ok",
    ] {
        for fixture in stp_files(&workspace().join(corpus)) {
            let text = std::fs::read_to_string(&fixture).unwrap_or_default();
            if text.contains("cpu()") || !user_context_only(&fixture) {
                continue;
            }
            // The fixture, ended after its own begin probes.
            let name = fixture.file_name().unwrap_or_default();
            let script = dir.join(name);
            std::fs::write(
                &script,
                format!("{text}\nprobe begin(1000000000) {{ exit() }}\n"),
            )
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", script.display()));
            tally.compare(&script, &log, false);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        tally.scripts >= 150,
        "expected at least 150 user-context fixtures, found {}",
        tally.scripts
    );
    tally.check("fixture");
}

/// 200 getppid calls from python3 itself (not a shim), so every run traces the
/// same events.
const WORKLOAD: &str = "/usr/bin/python3 -c 'import os\nfor i in range(200): os.getppid()'";

/// Kernel-context handlers as the tracefs runtime runs them, each event
/// through the engine: counts and aggregates, strings and arrays, a function
/// with try/catch, a runtime error that ends the session, a sorted foreach.
const TRACEFS_CASES: &[&str] = &[
    r#"global n, h
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target()) { n++; h <<< n * 7 % 50 }
}
probe end { printf("%d %d %d %d\n", n, @count(h), @min(h), @max(h)); print(@hist_log(h)) }"#,
    r#"global seen, last
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target()) {
    s = execname() . "-" . sprint(seen[execname()]++ % 3)
    if (s != last) last = s
  }
}
probe end { foreach (k in seen) printf("%s %d %s\n", k, seen[k], last) }"#,
    r#"function twice(x) { return x * 2 }
global n
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target()) {
    n += twice(1)
    try { if (n % 100 == 0) error(sprintf("at %d", n)) } catch (msg) { printf("caught %s\n", msg) }
  }
}
probe end { printf("n=%d\n", n) }"#,
    r#"global n
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target()) { n++; if (n == 50) printf("%d\n", 1 / (n - 50)) }
}
probe end { printf("n=%d\n", n) }"#,
    r#"global a
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target()) a[a[-1]++ % 7] += 3
}
probe end { foreach (k+ in a) printf("%d:%d ", k, a[k]); println("") }"#,
];

#[test]
fn tracefs_handlers_run_identically_under_both_engines() {
    if !tracefs_or_skip() || !python_or_skip() {
        return;
    }
    let dir = scratch("tracefs");
    let log = dir.join("jit.log");
    let mut tally = Tally::default();
    for script in TRACEFS_CASES {
        let run = |engine| {
            let mut cmd = Command::new(rstap());
            cmd.args(["--runtime=tracefs", "-e", script, "-c", WORKLOAD]);
            run_with(cmd, engine, &log)
        };
        let (interp, jit) = (run("interp"), run("jit"));
        let mut problems = differences(&interp, &jit);
        problems.extend(tally.count(&interp, jit));
        if !problems.is_empty() {
            tally
                .failures
                .push(format!("{script}\n{}", problems.join("\n")));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    tally.check("tracefs");
    assert!(
        tally.compiled >= TRACEFS_CASES.len(),
        "expected every kernel-context handler compiled, got {} bodies for {} scripts",
        tally.compiled,
        TRACEFS_CASES.len()
    );
}
