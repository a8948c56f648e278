//! The inliner against the user-space engine: a begin handler runs once as
//! written (the engine calls the functions) and once with its calls inlined
//! (`mir::inline::inline_calls`, what the BPF backend compiles); output and
//! runtime error must be the same. This covers what kernel context cannot run
//! yet (strings, try/catch, foreach), so the inliner is right before the
//! backend grows into it. No kernel needed.

use rstap_compiler::check::{self, Library};
use rstap_compiler::mir::{self, inline::inline_calls};
use rstap_grammar::{ParseOptions, SourceMap, parse};
use rstap_runtime::engine::{Engine, Fault, Host, Limits};
use rstap_runtime::kernel::LiveKernel;

/// What one run of a handler leaves: its output and its error.
#[derive(Debug, PartialEq)]
struct Run {
    out: String,
    fault: Option<(String, Option<(u32, u32)>)>,
}

fn lowered(script: &str) -> mir::Program {
    let mut files = SourceMap::new();
    let id = files.add("t.stp", script);
    let ast = parse(&files, id, &ParseOptions::default())
        .unwrap_or_else(|d| panic!("does not parse:\n{}", d.render(&files)));
    let checked = check::check(
        &ast,
        &Library::from_files(Vec::new()),
        &LiveKernel::new(false),
        &check::Options::default(),
    )
    .unwrap_or_else(|d| panic!("does not check:\n{}", d.render(&files)));
    mir::lower(&checked.program)
}

fn run(prog: &mir::Program, limits: Limits) -> Run {
    let host = Host {
        comm: b"test".to_vec(),
        pid: 1,
        ppid: 0,
        uid: 0,
        gid: 0,
        target: 0,
        hz: 100,
        cpus: 1,
    };
    let mut engine = Engine::new(prog, limits, host);
    let fault = engine
        .run_probe(0)
        .err()
        .map(|f: Fault| (f.msg, f.at.map(|s| (s.start, s.end))));
    Run {
        out: String::from_utf8_lossy(&engine.out).into_owned(),
        fault,
    }
}

/// Runs the first probe of `script` called and inlined; both runs, which must
/// agree.
fn both(script: &str, limits: Limits) -> Run {
    let prog = lowered(script);
    let called = run(&prog, limits);
    let mut inlined = prog.clone();
    inlined.probes[0].body = inline_calls(&prog, &prog.probes[0].body, limits.max_nesting)
        .unwrap_or_else(|e| panic!("not inlined: {}", e.msg));
    let has_calls = inlined.probes[0]
        .body
        .blocks
        .iter()
        .flat_map(|b| &b.insts)
        .any(|i| matches!(i, mir::Inst::Call { .. }));
    assert!(!has_calls, "a call is left in\n{inlined}");
    let via_inline = run(&inlined, limits);
    assert_eq!(called, via_inline, "inlining changed what the handler does");
    called
}

#[test]
fn parameters_returns_and_nested_calls_compute_the_same() {
    let r = both(
        r#"function sq(x) { return x * x }
function hyp(a, b) { return sq(a) + sq(b) }
function first_over(lim, step) {
  for (i = 0; ; i += step) if (sq(i) > lim) return i
}
function nothing(x) { if (x) return 7 }
probe begin { println(hyp(3, 4), " ", first_over(50, 3), " ", nothing(0), " ", nothing(1)) }"#,
        Limits::default(),
    );
    assert_eq!(r.out, "25 9 0 7\n");
}

#[test]
fn locals_start_at_zero_on_every_call() {
    let r = both(
        r#"function acc(x) { s += x; return s }
function name(n) { if (n) t = "set"; return t }
probe begin { for (k = 1; k <= 3; k++) print(acc(k), name(k == 2), ",") println() }"#,
        Limits::default(),
    );
    assert_eq!(r.out, "1,2set,3,\n");
}

#[test]
fn next_passes_the_same_arguments_to_the_next_overload() {
    let r = both(
        r#"function f(x) { if (x > 1) next; return x * 2 }
function f(x) { if (x > 3) next; return x + 100 }
function f(x) { return -x }
probe begin { for (i = 0; i < 6; i++) print(f(i), " ") println() }"#,
        Limits::default(),
    );
    assert_eq!(r.out, "0 2 102 103 -4 -5 \n");
}

#[test]
fn next_with_no_overload_left_is_an_error_at_the_call() {
    let script = r#"function f(x) { if (x) next; return 1 }
probe begin { println(f(0)); println(f(1)); println("not reached") }"#;
    let r = both(script, Limits::default());
    assert_eq!(r.out, "1\n");
    let (msg, at) = r.fault.expect("an error");
    assert_eq!(msg, "all functions exhausted");
    let call = script.rfind("f(1)").expect("the call") as u32;
    assert_eq!(at, Some((call, call + 4)));
}

#[test]
fn calls_deeper_than_maxnesting_are_an_error() {
    let script = r#"function a(x) { return b(x) + 1 }
function b(x) { return c(x) + 1 }
function c(x) { return x }
probe begin { println(c(1)); println(b(1)); println(a(1)) }"#;
    let limits = Limits {
        max_nesting: 2,
        ..Limits::default()
    };
    let r = both(script, limits);
    assert_eq!(r.out, "1\n2\n");
    assert_eq!(r.fault.map(|f| f.0).as_deref(), Some("MAXNESTING exceeded"));
}

#[test]
fn errors_in_a_callee_reach_the_callers_catch() {
    let r = both(
        r#"function div(a, b) { return a / b }
function guarded(a, b) { try { return div(a, b) } catch (m) { println("inner: ", m) } return -1 }
function loud(x) { if (x) error("boom") return x }
probe begin {
  println(guarded(6, 3), " ", guarded(1, 0))
  try { loud(0); loud(1); println("not reached") } catch (m) { println("outer: ", m) }
  println(div(1, 0))
}"#,
        Limits::default(),
    );
    assert_eq!(r.out, "inner: division by 0\n2 -1\nouter: boom\n");
    assert_eq!(r.fault.map(|f| f.0).as_deref(), Some("division by 0"));
}

#[test]
fn maxaction_counts_the_statements_of_callees() {
    let limits = Limits {
        max_action: 100,
        ..Limits::default()
    };
    let r = both(
        r#"global n
function step(x) { n++; return x + 1 }
probe begin { i = 0; while (i < 1000) i = step(i) }
probe end { println(n) }"#,
        limits,
    );
    assert_eq!(r.fault.map(|f| f.0).as_deref(), Some("MAXACTION exceeded"));
}

#[test]
fn strings_and_foreach_in_callees() {
    let r = both(
        r#"global a
function greet(who) { return "hi " . who }
function keys() { s = ""; foreach (k+ in a) s .= k; return s }
function fill(n) { for (i = 0; i < n; i++) a[sprint(i)] = i }
probe begin { fill(3); println(greet(keys()), greet(keys())) }"#,
        Limits::default(),
    );
    assert_eq!(r.out, "hi 012hi 012\n");
}

#[test]
fn recursion_is_refused_with_the_function_named_at_the_call() {
    for (script, name) in [
        (
            "function f(n) { return n ? f(n - 1) : 0 } probe begin { println(f(3)) }",
            "f",
        ),
        (
            "function ping(n) { return pong(n) } function pong(n) { return n ? ping(n - 1) : 0 } probe begin { println(ping(3)) }",
            "ping",
        ),
        (
            "function g(x) { return f(x) } function f(x) { if (x) next; return 0 } function f(x) { return g(x - 1) } probe begin { println(g(1)) }",
            "g",
        ),
    ] {
        let prog = lowered(script);
        let err = inline_calls(&prog, &prog.probes[0].body, 10).expect_err("recursion");
        assert_eq!(
            err.msg,
            format!("recursive function '{name}' cannot run in a kernel-context probe")
        );
        let call = &script[err.at.start as usize..err.at.end as usize];
        assert!(call.starts_with(name), "{script}: at {call:?}");
    }
}
