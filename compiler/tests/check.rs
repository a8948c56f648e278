//! Checker fixtures: every `fixtures/check/ok/*.stp` elaborates and its `-p2`
//! listing (then any warnings) is snapshotted; every `fixtures/check/err/*.stp`
//! fails elaboration with snapshotted diagnostics. Kernel facts come from the
//! fixture kernel (`fixtures/kernel/`), so the snapshots do not depend on the
//! machine.

mod support;

use rstap_compiler::check::{self, Checked, Library};
use rstap_compiler::dump::elaboration;
use rstap_grammar::{Diagnostics, Facts, ParseOptions, SourceMap, parse};
use std::path::{Path, PathBuf};
use support::FixtureKernel;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/check")
        .join(kind);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "stp"))
        .filter(|p| selected(p))
        .collect();
    v.sort();
    v
}

/// `FIXTURE=substring` runs only the fixtures whose names contain it.
fn selected(path: &Path) -> bool {
    std::env::var("FIXTURE").map_or(true, |want| {
        path.file_name()
            .is_some_and(|n| n.to_string_lossy().contains(want.as_str()))
    })
}

/// Parses and checks one fixture; the rendered text of what came out.
fn run(path: &Path) -> (Result<Checked, Diagnostics>, SourceMap) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    let unoptimized = text.lines().any(|l| l.trim() == "# unoptimized");
    let mut files = SourceMap::new();
    let facts = Facts::for_release("6.18.44-fc-v657")
        .with_config_text("CONFIG_SMP=y\nCONFIG_64BIT=y\nCONFIG_HZ=250\n");
    let macro_library: Vec<_> = rstap_stdlib::macros()
        .map(|(n, t)| files.add(n, t))
        .collect();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id = files.add(name, text);
    let opts = ParseOptions {
        args: Vec::new(),
        facts: facts.clone(),
        privileged: false,
        macro_library: macro_library.clone(),
    };
    let ast = match parse(&files, id, &opts) {
        Ok(ast) => ast,
        Err(d) => panic!(
            "fixture {} does not parse:\n{}",
            path.display(),
            d.render(&files)
        ),
    };
    let library = Library::load(&mut files, &facts, &macro_library)
        .unwrap_or_else(|d| panic!("the tapset library does not parse:\n{}", d.render(&files)));
    let kernel = FixtureKernel::new();
    let checked = check::check(
        &ast,
        &library,
        &kernel,
        &check::Options {
            unoptimized,
            ..Default::default()
        },
    );
    (checked, files)
}

fn snapshot_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn ok_fixtures_elaborate() {
    let all = fixtures("ok");
    assert!(
        !all.is_empty() || std::env::var_os("FIXTURE").is_some(),
        "no ok fixtures found"
    );
    for path in all {
        let (checked, files) = run(&path);
        let checked = checked.unwrap_or_else(|d| {
            panic!(
                "fixture {} should elaborate, but:\n{}",
                path.display(),
                d.render(&files)
            )
        });
        let mut out = elaboration(&checked.program);
        if !checked.warnings.0.is_empty() {
            out.push_str("--- warnings\n");
            out.push_str(&checked.warnings.render(&files));
        }
        insta::assert_snapshot!(format!("ok__{}", snapshot_name(&path)), out);
    }
}

#[test]
fn err_fixtures_are_rejected() {
    let all = fixtures("err");
    assert!(
        !all.is_empty() || std::env::var_os("FIXTURE").is_some(),
        "no err fixtures found"
    );
    for path in all {
        let (checked, files) = run(&path);
        let diags = match checked {
            Ok(c) => panic!(
                "fixture {} should fail elaboration, but it gave:\n{}",
                path.display(),
                elaboration(&c.program)
            ),
            Err(d) => d,
        };
        assert!(diags.has_errors(), "{}: no error reported", path.display());
        insta::assert_snapshot!(
            format!("err__{}", snapshot_name(&path)),
            diags.render(&files)
        );
    }
}
