//! `-l`/`-L` of tapset aliases: the names a pattern matches, and with `-L` the
//! variables the alias sets (typed by elaborating it) and the target variables of
//! the tracepoint underneath.

mod support;

use rstap_compiler::check::{Library, list_aliases};
use rstap_grammar::ast::Item;
use rstap_grammar::{ParseOptions, SourceMap, parse};
use support::FixtureKernel;

const TAPSET: &str = r#"
probe sched.switch = kernel.trace("sched:sched_switch") {
    prev = $prev_comm
    next_pid = $next_pid
}
probe sched.exec = kernel.trace("sched:sched_process_exec") { file = "x" }
probe other.thing = begin { }
"#;

fn library(files: &mut SourceMap) -> Library {
    let id = files.add("sched.stp", TAPSET);
    let opts = ParseOptions {
        privileged: true,
        ..ParseOptions::default()
    };
    let ast = parse(files, id, &opts)
        .unwrap_or_else(|d| panic!("test tapset does not parse:\n{}", d.render(files)));
    Library::from_files(vec![ast])
}

fn pattern(files: &mut SourceMap, text: &str) -> rstap_grammar::ast::ProbePoint {
    let id = files.add("<pattern>", format!("probe {text} {{}}"));
    let ast = parse(files, id, &ParseOptions::default())
        .unwrap_or_else(|d| panic!("pattern {text} does not parse:\n{}", d.render(files)));
    match ast.items.into_iter().next() {
        Some(Item::Probe(p)) => p.points.into_iter().next().expect("one point"),
        _ => panic!("pattern {text} is not a probe"),
    }
}

#[test]
fn dash_l_lists_the_alias_names_a_wildcard_matches() {
    let mut files = SourceMap::new();
    let lib = library(&mut files);
    let p = pattern(&mut files, "sched.*");
    assert_eq!(
        list_aliases(&p, &lib, &FixtureKernel::new(), false),
        vec!["sched.exec", "sched.switch"]
    );
    let none = pattern(&mut files, "nosuch.*");
    assert!(list_aliases(&none, &lib, &FixtureKernel::new(), false).is_empty());
}

#[test]
fn dash_capital_l_shows_alias_variables_then_tracepoint_fields() {
    let mut files = SourceMap::new();
    let lib = library(&mut files);
    let p = pattern(&mut files, "sched.switch");
    let lines = list_aliases(&p, &lib, &FixtureKernel::new(), true);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert!(
        line.starts_with("sched.switch prev:string next_pid:long $prev_comm:string $prev_pid:long"),
        "unexpected -L line: {line}"
    );
    assert!(line.contains("$next_comm:string"), "{line}");
}
