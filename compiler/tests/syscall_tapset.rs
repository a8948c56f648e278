//! The syscall tapset generated from a fixture kernel's syscall tracepoints:
//! one alias per sys_enter_* (and a `.return` per sys_exit_*), with stap's
//! locals, linked with the embedded tapset's argstr functions.

mod support;

use rstap_compiler::check::{Library, list_aliases};
use rstap_grammar::ast::Item;
use rstap_grammar::{ParseOptions, SourceMap, parse};
use support::FixtureKernel;

fn listed(pattern: &str, vars: bool) -> Vec<String> {
    let mut files = SourceMap::new();
    let facts = rstap_grammar::Facts::default();
    let macros: Vec<_> = rstap_stdlib::macros()
        .map(|(n, t)| files.add(n, t))
        .collect();
    let mut library = Library::load(&mut files, &facts, &macros)
        .unwrap_or_else(|d| panic!("the tapsets do not parse:\n{}", d.render(&files)));
    let kernel = FixtureKernel::new();
    library
        .add_syscalls(&mut files, &facts, &macros, &kernel)
        .unwrap_or_else(|d| panic!("the syscall tapset fails:\n{}", d.render(&files)));
    let id = files.add("<pattern>", format!("probe {pattern} {{}}"));
    let ast = parse(&files, id, &ParseOptions::default())
        .unwrap_or_else(|d| panic!("pattern does not parse:\n{}", d.render(&files)));
    let Some(Item::Probe(p)) = ast.items.first() else {
        panic!("no probe in the pattern");
    };
    list_aliases(&p.points[0], &library, &kernel, vars)
}

#[test]
fn every_fixture_syscall_has_an_alias_and_nd_syscall_synonym() {
    assert_eq!(
        listed("syscall.*", false),
        ["syscall.open", "syscall.openat"]
    );
    assert_eq!(
        listed("nd_syscall.open*", false),
        ["nd_syscall.open", "nd_syscall.openat"]
    );
    // sys_exit_open is missing from the fixture: no syscall.open.return.
    assert_eq!(listed("syscall.*.return", false), ["syscall.openat.return"]);
}

#[test]
fn openat_has_stap_locals_and_return_values() {
    assert_eq!(
        listed("syscall.openat", true),
        [
            "syscall.openat name:string dfd:long filename:string filename_unquoted:string \
          flags:long mode:long argstr:string $__syscall_nr:long $dfd:long $filename:long \
          $flags:long $mode:long"
        ]
    );
    assert_eq!(
        listed("syscall.openat.return", true),
        [
            "syscall.openat.return name:string retval:long retstr:string $__syscall_nr:long $ret:long"
        ]
    );
}
