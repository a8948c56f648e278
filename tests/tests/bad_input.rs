//! Bad input over the real binary: every malformed script of
//! `tests/bad/scripts/` must be refused with its diagnostic code at its
//! `line:column`, the source line and a caret, and exit status 1; every bad
//! command line of `tests/bad/cmdlines.txt` with one clear line and status 1.
//! Never a panic. Both corpora are files so that a case is one file or one
//! line to add.

use rstap_tests::{run_rstap, stp_files, workspace};
use std::path::{Path, PathBuf};
use std::process::Output;

fn bad() -> PathBuf {
    workspace().join("tests/bad")
}

/// What a corpus script's first line promises: `// expect: E0120 3:5`, and
/// `kernel` when the script needs this machine's tracepoints, symbols or BTF.
struct Expect {
    code: String,
    line: usize,
    col: usize,
    kernel: bool,
}

fn expectation(path: &Path, text: &str) -> Expect {
    let header = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("// expect: "))
        .unwrap_or_else(|| panic!("{} does not start with `// expect: `", path.display()));
    let words: Vec<&str> = header.split_whitespace().collect();
    let (line, col) = words
        .get(1)
        .and_then(|lc| lc.split_once(':'))
        .and_then(|(l, c)| Some((l.parse().ok()?, c.parse().ok()?)))
        .unwrap_or_else(|| panic!("{}: expected `CODE LINE:COL`", path.display()));
    let code = words[0].to_string();
    assert!(
        code.len() == 5 && code.starts_with('E'),
        "{}: `{code}` is not a diagnostic code",
        path.display()
    );
    Expect {
        code,
        line,
        col,
        kernel: words.get(2) == Some(&"kernel"),
    }
}

/// Exit status 1, and neither a panic nor death by a signal.
fn refused_cleanly(out: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{what}: rstap panicked:\n{err}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: expected exit status 1, got {:?}:\n{err}",
        out.status
    );
    err
}

/// Checks one corpus script; the error it was refused with, for the tally.
fn check_script(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = String::from_utf8_lossy(&text);
    let want = expectation(path, &text);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Pass 4 takes a script through every check and the BPF code generator
    // without loading anything.
    let out = run_rstap(&["-p4", &name], path.parent().unwrap_or(Path::new(".")));
    let err = refused_cleanly(&out, &name);
    assert!(
        out.stdout.is_empty(),
        "{name}: a refused script prints nothing on stdout"
    );
    let lines: Vec<&str> = err.lines().collect();
    let header = format!("error[{}]", want.code);
    let at = lines
        .iter()
        .position(|l| l.starts_with(&header))
        .unwrap_or_else(|| panic!("{name}: no `{header}` in:\n{err}"));
    let place = format!("┌─ {name}:{}:{}", want.line, want.col);
    assert_eq!(
        lines.get(at + 1).map(|l| l.trim()),
        Some(place.as_str()),
        "{name}: the first {header} is not at {}:{}:\n{err}",
        want.line,
        want.col
    );
    // codespan shows the line as `N │ text`, then a caret line.
    let source = shown_as(text.lines().nth(want.line - 1).unwrap_or(""));
    let shown = format!("{} │ {}", want.line, source);
    let rest = &lines[at..];
    let shown_at = rest
        .iter()
        .position(|l| l.trim_end() == shown.trim_end())
        .unwrap_or_else(|| panic!("{name}: the source line `{source}` is not shown:\n{err}"));
    assert!(
        rest.get(shown_at + 1).is_some_and(|l| l.contains('^')),
        "{name}: no caret under the source line:\n{err}"
    );
    want.code
}

/// A source line as diagnostics show it: control and zero-width characters
/// replaced by visible ones of the same UTF-8 length, so that they get a
/// caret and cannot drive the terminal.
fn shown_as(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            '\t' => c,
            c if c.is_control() && c.len_utf8() == 1 => '?',
            c if c.is_control() => '\u{bf}',
            '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{feff}' => '\u{fffd}',
            c => c,
        })
        .collect()
}

#[test]
fn every_malformed_script_is_refused_with_its_code_place_and_caret() {
    let dir = bad().join("scripts");
    let paths = stp_files(&dir);
    assert!(
        paths.len() >= 100,
        "the corpus has {} scripts; RELIABILITY.md promises at least 100",
        paths.len()
    );
    let kernel = rstap_tests::tracefs_or_skip();
    let mut by_phase = std::collections::BTreeMap::<String, usize>::new();
    let mut skipped = 0;
    for path in &paths {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
        if expectation(path, &text).kernel && !kernel {
            skipped += 1;
            continue;
        }
        let code = check_script(path);
        *by_phase.entry(format!("{}xx", &code[..3])).or_default() += 1;
    }
    println!(
        "{} malformed scripts refused as expected ({skipped} skipped without kernel facts): {by_phase:?}",
        paths.len() - skipped
    );
}

/// Splits a corpus line into arguments: blanks separate, '...' quotes.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                cur.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => {
                out.extend(cur.take());
            }
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(cur);
    out
}

#[test]
fn every_bad_command_line_is_one_clear_line_and_status_1() {
    let table = bad().join("cmdlines.txt");
    let text = std::fs::read_to_string(&table)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", table.display()));
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let Some((args, want)) = line.split_once("=>") else {
            continue;
        };
        let args = words(args);
        let want = want.trim();
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let what = format!("rstap {argv:?}");
        let out = run_rstap(&argv, &bad());
        let err = refused_cleanly(&out, &what);
        assert!(out.stdout.is_empty(), "{what}: nothing may go to stdout");
        let said: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(said.len(), 1, "{what}: one line expected, got:\n{err}");
        assert!(
            said[0].starts_with("rstap: ") && said[0].contains(want),
            "{what}: expected `rstap: ...{want}...`, got:\n{err}"
        );
        n += 1;
    }
    assert!(
        n >= 30,
        "{} has {n} command lines; RELIABILITY.md promises at least 30",
        table.display()
    );
    println!("{n} bad command lines refused with one line");
}

#[test]
fn the_corpus_line_splitter_keeps_quoted_blanks() {
    assert_eq!(
        words(" -e 'probe begin { }' -p1 ''"),
        ["-e", "probe begin { }", "-p1", ""]
    );
}
