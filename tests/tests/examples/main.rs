//! The example shelf: every script in `examples/` runs here in its tier.
//! User-context examples (no kernel probes) must print their `NAME.expected`
//! byte for byte. Kernel-tier examples run with a workload the test drives
//! (a `-c` child that opens a named file five times, sends seven datagrams to
//! a closed port, calls a function of a C program built here a known number
//! of times...) and their output is checked for those known counts and for
//! its shape. A last test keeps the shelf from rotting: every file in
//! `examples/` is named by a test and opens with a header comment.
//! `tracepoints.rs` holds the scripts over tracepoints and perf events,
//! `programs.rs` those that trace the C programs built here.
//! Kernel tests need root and BPF; elsewhere each says why it was skipped,
//! unless RSTAP_REQUIRE_KERNEL_TESTS=1. The tests whose events no filter can
//! tell apart from another test's (dropped packets, block I/O seen from the
//! whole system) run one at a time (`rstap_tests::serial`).

mod programs;
mod tracepoints;

use rstap_tests::{
    bpf_or_skip, cc, comm_of, python_executable, python_or_skip, rstap, skip_or_fail, text,
    workspace,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// The examples whose output is always the same: each has a `NAME.expected`.
const USER_CONTEXT: &[&str] = &["accesslog.stp", "histograms.stp", "ticker.stp"];

fn example(name: &str) -> PathBuf {
    workspace().join("examples").join(name)
}

/// `rstap OPTIONS examples/NAME ARGS`.
fn run_example(name: &str, options: &[&str], args: &[&str]) -> Output {
    Command::new(rstap())
        .args(options)
        .arg(example(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"))
}

/// The stdout of a run that must have succeeded.
fn stdout_of(name: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{name} failed ({:?}):\n{}\n{}",
        out.status.code(),
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

/// `examples/NAME` run with `-c cmd` and script arguments `args`; its stdout.
fn traced(name: &str, cmd: &str, args: &[&str]) -> String {
    stdout_of(name, &run_example(name, &["-c", cmd], args))
}

/// The numbers that stand as words in `line` (`254:0:` is two, `(3%)` one,
/// `python3` none), in order.
fn numbers(line: &str) -> Vec<i64> {
    line.split(|c: char| c.is_whitespace() || ",:()%".contains(c))
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// The lines of `out` whose whitespace-separated words start with `words`.
fn rows<'a>(out: &'a str, words: &[&str]) -> Vec<&'a str> {
    out.lines()
        .filter(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() >= words.len() && w.iter().zip(words).all(|(a, b)| a == b)
        })
        .collect()
}

/// The one line of `out` that starts with `prefix`.
fn line_starting<'a>(out: &'a str, prefix: &str) -> &'a str {
    let found: Vec<&str> = out.lines().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(
        found.len(),
        1,
        "one line starting {prefix:?} expected in:\n{out}"
    );
    found[0]
}

/// Checks a log2 histogram's shape (the stap header, `value |@@@ count`
/// rows) and returns the sum of its counts.
fn histogram_total(out: &str) -> i64 {
    let mut lines = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("value |"));
    assert!(
        lines.next().is_some_and(|h| h.ends_with(" count")),
        "a histogram header expected in:\n{out}"
    );
    let mut total = 0;
    for row in lines.take_while(|l| !l.is_empty()) {
        // stap elides a run of empty buckets as a `~` line.
        if row.trim() == "~" {
            continue;
        }
        let (value, bar) = row
            .split_once(" |")
            .unwrap_or_else(|| panic!("not a histogram row: {row:?}"));
        assert!(value.trim().parse::<i64>().is_ok(), "bucket value: {row:?}");
        let count = bar.rsplit(' ').next().and_then(|c| c.parse::<i64>().ok());
        total += count.unwrap_or_else(|| panic!("bucket count: {row:?}"));
    }
    total
}

fn kernel_ok() -> bool {
    bpf_or_skip()
}

fn python_ok() -> bool {
    bpf_or_skip() && python_or_skip()
}

/// A python workload as a `-c` command, run by the interpreter itself.
/// (No single quotes in `code`.)
fn python(code: &str) -> String {
    format!("{} -c '{code}'", python_executable())
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rstap-examples-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    dir
}

/// A C program with three nested functions and USDT marks: `demo N` calls
/// `demo_top(i)` for i < N, which calls `demo_middle(i)`, which calls
/// `demo_leaf` twice; each round passes the mark `demo:request(i, 10 i)`;
/// at the end `demo:done(N)` and `demo:noargs`. It prints Σ demo_top(i).
const DEMO: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>
__attribute__((noinline)) long demo_leaf(long x) { asm volatile(""); return x * 3; }
__attribute__((noinline)) long demo_middle(long x) { long r = demo_leaf(x) + demo_leaf(x + 1); asm volatile(""); return r; }
__attribute__((noinline)) long demo_top(long x) { long r = demo_middle(x) + 1; asm volatile(""); return r; }
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 3, s = 0;
  for (long i = 0; i < n; i++) { STAP_PROBE2(demo, request, i, i * 10); s += demo_top(i); }
  STAP_PROBE1(demo, done, n);
  STAP_PROBE(demo, noargs);
  printf("%ld\n", s);
  return 0;
}
"#;

/// A program that keeps one CPU busy in `hot`, called from `main`, for a
/// second; built at -O0, so that even the leaf `hot` sets up a frame pointer
/// and the kernel's frame-pointer walk of its user stack reaches `main`.
const SPIN: &str = r#"#include <time.h>
__attribute__((noinline)) void hot(volatile unsigned long *x) { for (int i = 0; i < 100000; i++) (*x)++; }
int main(void) {
  struct timespec t0, t;
  volatile unsigned long x = 0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do { hot(&x); clock_gettime(CLOCK_MONOTONIC, &t); }
  while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 1000000000L);
  return 0;
}
"#;

/// The built `demo` and `spin`, once per run; None (after the skip line)
/// without a C compiler or <sys/sdt.h>.
fn programs() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = scratch("programs");
            for (file, src) in [("demo.c", DEMO), ("spin.c", SPIN)] {
                std::fs::write(dir.join(file), src).expect("write a C source");
            }
            if !cc(
                &["-O0", "-fno-omit-frame-pointer", "-o", "spin", "spin.c"],
                &dir,
            ) {
                skip_or_fail("a C compiler (cc) is needed to build the traced programs");
                return None;
            }
            if !cc(&["-O1", "-o", "demo", "demo.c"], &dir) {
                skip_or_fail(
                    "<sys/sdt.h> is needed to build the USDT demo program (Debian: systemtap-sdt-dev)",
                );
                return None;
            }
            Some(dir)
        })
        .as_deref()
}

/// The uprobes are on the demo program's file, so one test's probes see
/// every run of it; and `-c` sets target() a moment after the probes attach,
/// so a filter on it cannot keep another test's run out: one at a time.
fn demo_alone() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

fn demo() -> Option<String> {
    if !kernel_ok() {
        return None;
    }
    programs().map(|d| d.join("demo").display().to_string())
}

#[test]
fn user_context_examples_print_exactly_their_expected_output() {
    for name in USER_CONTEXT {
        let out = run_example(name, &["-T", "20"], &[]);
        let expected_file = example(name).with_extension("expected");
        let expected = std::fs::read_to_string(&expected_file)
            .unwrap_or_else(|e| panic!("{} should exist: {e}", expected_file.display()));
        assert_eq!(
            stdout_of(name, &out),
            expected,
            "{name} printed otherwise than {}",
            expected_file.display()
        );
        assert!(
            out.stderr.is_empty(),
            "{name}: nothing on stderr expected:\n{}",
            text(&out.stderr)
        );
    }
}

/// Every file in examples/ is run by some test (a test file names it), and
/// every script opens with a header: what it shows, how to run it, what its
/// output looks like.
#[test]
fn every_example_is_exercised_and_has_a_header() {
    let tests_dir = workspace().join("tests/tests");
    let tests = sources(&tests_dir);
    let dir = workspace().join("examples");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let scripts = files.iter().filter(|f| f.ends_with(".stp")).count();
    assert!(
        scripts >= 20,
        "the shelf holds at least 20 examples: {files:?}"
    );
    for f in &files {
        if let Some(stem) = f.strip_suffix(".expected") {
            assert!(
                USER_CONTEXT.contains(&format!("{stem}.stp").as_str()),
                "{f} belongs to a user-context example listed in USER_CONTEXT"
            );
            continue;
        }
        assert!(
            tests.contains(&format!("{f}\"")),
            "no test runs examples/{f}: add one (tests/tests/examples.rs runs the shelf)"
        );
        if !f.ends_with(".stp") {
            continue;
        }
        let body = std::fs::read_to_string(dir.join(f)).expect("read the example");
        let header: Vec<&str> = body
            .lines()
            .skip_while(|l| l.starts_with("#!"))
            .take_while(|l| l.starts_with("//"))
            .collect();
        assert!(
            header
                .first()
                .is_some_and(|l| l.starts_with(&format!("// {f}: "))),
            "{f} opens with `// {f}: what it shows`"
        );
        for part in ["// Run: rstap ", "// Output:"] {
            assert!(
                header.iter().any(|l| l.starts_with(part)),
                "{f}'s header says `{part}...`"
            );
        }
    }
}

/// The text of every `.rs` file under `dir`.
fn sources(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if path.is_dir() {
            text.push_str(&sources(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
    text
}
