//! The tracefs backend (`backend::tracefs::plan`): which events a script's
//! kernel-context probes become, which filters a leading `if (...) next`
//! gives, what is refused at the probe, and that a definition is one line.

mod support;

use rstap_compiler::backend::tracefs::{ArgRole, FetchArg, Source, plan};
use rstap_compiler::check::{self, Library};
use rstap_compiler::hir::PointKind;
use rstap_compiler::mir::{self, Body, Context, Probe, Program};
use rstap_grammar::{ParseOptions, SourceMap, Span, parse};
use support::FixtureKernel;

fn program(script: &str) -> (SourceMap, Program) {
    let mut files = SourceMap::new();
    let id = files.add("t.stp", script);
    let ast = parse(&files, id, &ParseOptions::default())
        .unwrap_or_else(|d| panic!("does not parse:\n{}", d.render(&files)));
    let checked = check::check(
        &ast,
        &Library::from_files(Vec::new()),
        &FixtureKernel::new(),
        &check::Options::default(),
    )
    .unwrap_or_else(|d| panic!("does not check:\n{}", d.render(&files)));
    let prog = mir::lower(&checked.program);
    (files, prog)
}

fn filter_of(script: &str) -> Option<String> {
    let (_, prog) = program(script);
    let events = plan(&prog, &FixtureKernel::new()).expect("plans");
    match &events[0].source {
        Source::Tracepoint { filter, .. } => filter.clone(),
        other => panic!("expected a tracepoint, got {other:?}"),
    }
}

#[test]
fn a_leading_field_test_that_ends_the_handler_becomes_the_opposite_filter() {
    let tp = "probe kernel.trace(\"syscalls:sys_enter_openat\")";
    assert_eq!(
        filter_of(&format!("global n {tp} {{ if ($dfd != 5) next; n++ }}")),
        Some("dfd == 5".to_string())
    );
    assert_eq!(
        filter_of(&format!("global n {tp} {{ if (7 == $dfd) next; n++ }}")),
        Some("dfd != 7".to_string())
    );
}

#[test]
fn no_filter_where_the_kernel_would_compare_otherwise_or_the_test_has_effects() {
    let tp = "probe kernel.trace(\"syscalls:sys_enter_openat\")";
    // An unsigned 8-byte field is compared as unsigned by the kernel.
    assert_eq!(
        filter_of(&format!("global n {tp} {{ if ($dfd < 5) next; n++ }}")),
        None
    );
    // A test that is not the whole of the handler's first step.
    assert_eq!(
        filter_of(&format!(
            "global n {tp} {{ n++; if ($dfd != 5) next; n++ }}"
        )),
        None
    );
    assert_eq!(
        filter_of(&format!("global n {tp} {{ if ($dfd == 5) n++ }}")),
        None
    );
}

#[test]
fn kernel_only_builtins_are_refused_at_their_call() {
    let script = "probe kernel.trace(\"syscalls:sys_enter_openat\") {\n  print_backtrace()\n}";
    let (files, prog) = program(script);
    let e = plan(&prog, &FixtureKernel::new()).expect_err("refused");
    assert_eq!(
        e.msg,
        "the tracefs runtime cannot run print_backtrace(), which needs kernel context"
    );
    assert_eq!(files.line_col(e.at.file, e.at.start), (2, 3));
}

fn uprobe(binary: &str) -> Program {
    Program {
        globals: Vec::new(),
        functions: Vec::new(),
        unread: Vec::new(),
        probes: vec![Probe {
            kind: PointKind::Uprobe {
                binary: binary.to_string(),
                symbol: "f".to_string(),
                offset: 0x1139,
                ret: false,
            },
            name: "process(\"x\").function(\"f\")".to_string(),
            written: "process(\"x\").function(\"f\")".to_string(),
            context: Context::Kernel,
            body: Body::default(),
            span: Span::default(),
        }],
    }
}

#[test]
fn a_path_that_would_break_the_definition_line_is_refused() {
    for bad in ["/tmp/a b", "/tmp/a\nb", "/tmp/a:b", ""] {
        let e = plan(&uprobe(bad), &FixtureKernel::new()).expect_err(bad);
        assert!(
            e.msg.starts_with("the tracefs runtime cannot run"),
            "{}",
            e.msg
        );
    }
    assert!(plan(&uprobe("/tmp/ab"), &FixtureKernel::new()).is_ok());
}

#[test]
fn a_uprobe_definition_is_one_line_with_its_fetch_arguments() {
    let s = Source::Uprobe {
        binary: "/bin/x".to_string(),
        offset: 0x1139,
        ret: true,
        args: vec![
            FetchArg {
                name: "a0".to_string(),
                role: ArgRole::Arg(0),
            },
            FetchArg {
                name: "s1".to_string(),
                role: ArgRole::UserString(1),
            },
            FetchArg {
                name: "ret".to_string(),
                role: ArgRole::Return,
            },
        ],
    };
    assert_eq!(
        s.definition("rstap_7", "p0").as_deref(),
        Some("r:rstap_7/p0 /bin/x:0x1139 a0=%di:u64 s1=+0(%si):ustring ret=%ax:u64")
    );
}
