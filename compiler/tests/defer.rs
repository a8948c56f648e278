//! Deferred calls (`mir::defer_calls`): in a kernel-context handler, a pure
//! function's call whose value is only printed becomes a print piece the
//! user-space engine evaluates; an unused one disappears; one whose value is
//! used otherwise stays a call.

mod support;

use rstap_compiler::check::{self, Library};
use rstap_compiler::mir;
use rstap_grammar::{ParseOptions, SourceMap, parse};
use support::FixtureKernel;

/// The MIR text of `script`'s first probe.
fn probe_mir(script: &str) -> String {
    let mut files = SourceMap::new();
    let id = files.add("t.stp", script);
    let ast = parse(&files, id, &ParseOptions::default())
        .unwrap_or_else(|d| panic!("does not parse:\n{}", d.render(&files)));
    let checked = check::check(
        &ast,
        &Library::from_files(Vec::new()),
        &FixtureKernel::new(),
        &check::Options {
            unoptimized: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|d| panic!("does not check:\n{}", d.render(&files)));
    let text = mir::lower(&checked.program).to_string();
    text[text.find("probe ").unwrap_or(0)..].to_string()
}

const FUNCS: &str = r#"function show:string (n:long) { return sprintf("<%d>", n) }
global seen
"#;

#[test]
fn a_printed_pure_call_travels_as_its_arguments() {
    let mir = probe_mir(&format!(
        "{FUNCS}probe kernel.trace(\"syscalls:sys_enter_openat\") {{ a = show($dfd); b = a; printf(\"[%5s]\\n\", b); println(a) }}"
    ));
    assert!(
        !mir.contains("call fn0"),
        "the call should be deferred:\n{mir}"
    );
    assert!(
        mir.contains(r#"Printf "[%{fn0/1}s]\n""#) && mir.contains(r#"Printf "%{fn0/1}s\n""#),
        "both prints should carry the deferred call:\n{mir}"
    );
}

#[test]
fn an_unused_pure_call_is_dropped_and_a_key_keeps_its_call() {
    let mir = probe_mir(&format!(
        "{FUNCS}probe kernel.trace(\"syscalls:sys_enter_openat\") {{ unused = show(1); seen[show($dfd)]++ }}"
    ));
    assert_eq!(
        mir.matches("call fn0").count(),
        1,
        "only the map key's call should stay:\n{mir}"
    );
}

#[test]
fn a_value_assigned_on_one_path_only_is_not_deferred() {
    let mir = probe_mir(&format!(
        "{FUNCS}probe kernel.trace(\"syscalls:sys_enter_openat\") {{ if ($dfd) a = show($dfd); println(a) }}"
    ));
    assert!(
        mir.contains("call fn0"),
        "a call that does not run before every print of its value must stay:\n{mir}"
    );
}
