//! `-l` / `-L` against a fixture kernel: patterns, wildcards, variables, and the
//! families this build cannot list yet.

mod support;
#[path = "support/usdt.rs"]
mod usdt;

use rstap_compiler::listing::{ListError, list};
use rstap_grammar::ast::Item;
use rstap_grammar::{ParseOptions, SourceMap, parse};
use support::FixtureKernel;

fn listed(pattern: &str, vars: bool) -> Result<Vec<String>, ListError> {
    let mut files = SourceMap::new();
    let id = files.add("<pattern>", format!("probe {pattern} {{}}"));
    let ast = parse(&files, id, &ParseOptions::default())
        .unwrap_or_else(|d| panic!("{pattern}: {}", d.render(&files)));
    let Some(Item::Probe(p)) = ast.items.first() else {
        panic!("{pattern} did not parse as a probe")
    };
    let mut out = Vec::new();
    for point in &p.points {
        out.extend(list(point, &FixtureKernel::new(), vars)?);
    }
    Ok(out)
}

#[test]
fn tracepoint_wildcards_match_system_and_name() {
    let got = listed(r#"kernel.trace("syscalls:sys_enter_open*")"#, false).unwrap_or_default();
    assert_eq!(
        got,
        vec![
            r#"kernel.trace("syscalls:sys_enter_open")"#,
            r#"kernel.trace("syscalls:sys_enter_openat")"#
        ]
    );
    let got = listed(r#"kernel.trace("sched_switch")"#, false).unwrap_or_default();
    assert_eq!(
        got,
        vec![r#"kernel.trace("sched:sched_switch")"#],
        "a bare name matches in every system"
    );
    assert!(
        listed(r#"kernel.trace("nosuch:*")"#, false)
            .unwrap_or_default()
            .is_empty()
    );
}

#[test]
fn dash_l_uppercase_shows_fields_as_target_variables() {
    let got = listed(r#"kernel.trace("skb:kfree_skb")"#, true).unwrap_or_default();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with(r#"kernel.trace("skb:kfree_skb") $skbaddr:long $location:long"#),
        "got {got:?}"
    );
    assert!(
        !got[0].contains("common_"),
        "the common header is not a script variable: {got:?}"
    );
    let got = listed(r#"kernel.trace("sched:sched_switch")"#, true).unwrap_or_default();
    assert!(
        got[0].contains("$prev_comm:string") && got[0].contains("$next_pid:long"),
        "got {got:?}"
    );
    let got = listed(r#"kernel.trace("sched:sched_process_exec")"#, true).unwrap_or_default();
    assert!(
        got[0].contains("$filename:string"),
        "__data_loc char[] is a string: {got:?}"
    );
}

#[test]
fn brace_expansion_lists_each_alternative() {
    let got = listed(r#"{begin,kernel.trace("skb:kfree_skb")}"#, false).unwrap_or_default();
    assert_eq!(
        got,
        vec![
            "begin".to_string(),
            r#"kernel.trace("skb:kfree_skb")"#.to_string()
        ]
    );
}

#[test]
fn families_not_resolvable_yet_say_so() {
    match listed(r#"kernel.statement("*@fs/read_write.c:100")"#, false) {
        Err(ListError::Unsupported(why)) => assert!(why.contains("not available yet"), "{why}"),
        other => panic!("expected an unsupported-family error, got {other:?}"),
    }
}

#[test]
fn kernel_functions_match_kallsyms_names() {
    let got = listed(r#"kernel.function("vfs_rea*")"#, false).unwrap_or_default();
    assert_eq!(
        got,
        vec![
            r#"kernel.function("vfs_read")"#,
            r#"kernel.function("vfs_readlink")"#,
            r#"kernel.function("vfs_readv")"#,
        ],
        "padding (__pfx_) and clones (.cold) are not functions"
    );
    let got = listed(r#"kernel.function("nft_*")"#, false).unwrap_or_default();
    assert!(
        got.is_empty(),
        "module functions are not kernel.function: {got:?}"
    );
    let got = listed(r#"module("nf_*").function("*")"#, false).unwrap_or_default();
    assert_eq!(got, vec![r#"module("nf_tables").function("nft_do_chain")"#]);
}

#[test]
fn dash_l_uppercase_shows_btf_parameters() {
    let got = listed(
        r#"kernel.function("vfs_read"), kernel.function("vfs_write")"#,
        true,
    )
    .unwrap_or_default();
    assert_eq!(
        got,
        vec![
            r#"kernel.function("vfs_read") $file:struct file* $buf:char* $count:size_t $pos:loff_t*"#,
            r#"kernel.function("vfs_write") $file:struct file* $buf:char const* $count:size_t $pos:loff_t*"#,
        ]
    );
    let got = listed(r#"kernel.function("ksys_read").return"#, true).unwrap_or_default();
    assert_eq!(
        got,
        vec![
            r#"kernel.function("ksys_read").return $return:ssize_t $fd:unsigned int $buf:char* $count:size_t"#
        ]
    );
    let got = listed(r#"kernel.function("do_sys_open")"#, true).unwrap_or_default();
    assert_eq!(
        got,
        vec![r#"kernel.function("do_sys_open")"#],
        "a function without BTF lists without variables"
    );
}

#[test]
fn selecting_functions_by_source_file_is_refused() {
    match listed(r#"kernel.function("vfs_read@fs/read_write.c")"#, false) {
        Err(ListError::Unsupported(why)) => assert!(why.contains("debuginfo"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let got = listed(r#"kernel.function("vfs_read@*")"#, false).unwrap_or_default();
    assert_eq!(got, vec![r#"kernel.function("vfs_read")"#]);
}

#[test]
fn process_functions_and_marks() {
    let Some(prog) = usdt::usdt_program("listing", &["-O2"]) else {
        return;
    };
    let path = prog.display().to_string();
    let got = listed(&format!(r#"process("{path}").function("*_one")"#), false).unwrap_or_default();
    assert_eq!(
        got,
        vec![format!(r#"process("{path}").function("add_one")"#)]
    );
    let got = listed(&format!(r#"process("{path}").mark("*")"#), true).unwrap_or_default();
    assert_eq!(
        got,
        vec![
            format!(r#"process("{path}").mark("empty")"#),
            format!(r#"process("{path}").mark("tick") $arg1:long $arg2:long"#),
        ]
    );
    let got = listed(
        &format!(r#"process("{path}").provider("rstap_test").mark("tick")"#),
        false,
    )
    .unwrap_or_default();
    assert_eq!(
        got,
        vec![format!(
            r#"process("{path}").provider("rstap_test").mark("tick")"#
        )]
    );
    match listed(r#"process("/no/such/binary").function("*")"#, false) {
        Err(ListError::Kernel(e)) => assert!(e.0.contains("/no/such/binary"), "{e}"),
        other => panic!("expected a kernel error, got {other:?}"),
    }
}
