//! Kernel tier: `rstap -p2` elaborates against this machine's live kernel facts
//! (tracefs formats, kallsyms, BTF, ELF binaries), and refuses what the kernel
//! lacks with a diagnostic pointing at the script.

use rstap_tests::{run_rstap, tracefs_or_skip, workspace};

fn p2(script: &str) -> (bool, String, String) {
    let out = run_rstap(&["-p2", "-e", script], workspace());
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tracepoint_fields_are_typed_from_the_live_format() {
    if !tracefs_or_skip() {
        return;
    }
    let (ok, out, err) = p2(r#"global n
probe kernel.trace("sched:sched_switch") { n[$prev_comm, $next_pid] <<< 1 }
probe end { foreach ([c, p] in n) printf("%s %d %d\n", c, p, @count(n[c, p])) }"#);
    assert!(ok, "rstap -p2 failed:\n{err}");
    assert!(
        out.contains("n:stats [string, long]"),
        "$prev_comm is a string and $next_pid a long:\n{out}"
    );
    assert!(
        out.contains(r#"kernel.trace("sched:sched_switch") /* <- "#),
        "{out}"
    );
}

#[test]
fn a_tracepoint_wildcard_becomes_one_probe_per_event() {
    if !tracefs_or_skip() {
        return;
    }
    let (ok, out, err) =
        p2(r#"probe kernel.trace("syscalls:sys_enter_open*") { println($$name) }"#);
    assert!(ok, "rstap -p2 failed:\n{err}");
    let probes: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("kernel.trace("))
        .collect();
    assert!(
        probes
            .iter()
            .any(|l| l.starts_with(r#"kernel.trace("syscalls:sys_enter_openat")"#)),
        "{out}"
    );
    assert!(
        probes.len() >= 2,
        "open, openat, openat2... expected:\n{out}"
    );
}

#[test]
fn kernel_function_arguments_come_from_btf() {
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        rstap_tests::skip_or_fail("this kernel has no BTF");
        return;
    }
    let (ok, out, err) = p2(
        r#"probe kernel.function("vfs_read") { printf("%d %d\n", $count, $file->f_flags) }
probe kernel.function("vfs_read").return { println($return) }"#,
    );
    assert!(ok, "rstap -p2 failed:\n{err}");
    assert!(
        out.contains(r#"kernel.function("vfs_read").return"#),
        "{out}"
    );
    let (ok, _, err) =
        p2(r#"probe kernel.function("vfs_read") { println($file->no_such_member) }"#);
    assert!(!ok, "an unknown member must be refused");
    assert!(
        err.contains("struct file has no member 'no_such_member'"),
        "{err}"
    );
    assert!(
        err.contains('^'),
        "the diagnostic points at the script:\n{err}"
    );
}

#[test]
fn a_misspelled_kernel_function_suggests_the_real_one() {
    let (ok, _, err) = p2(r#"probe kernel.function("vfs_reed") { }"#);
    assert!(!ok);
    assert!(err.contains("E0402"), "{err}");
    assert!(err.contains("similar: vfs_read"), "{err}");
}

#[test]
fn user_functions_resolve_against_elf_symbols() {
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    let Some(libc) = libc else {
        rstap_tests::skip_or_fail("no libc.so.6 at the Debian path");
        return;
    };
    let (ok, out, err) = p2(&format!(
        r#"probe process("{libc}").function("malloc") {{ println($arg1) }}
probe process("{libc}").function("malloc").return {{ println($return) }}"#
    ));
    assert!(ok, "rstap -p2 failed:\n{err}");
    assert!(out.contains(r#".function("malloc") /* <- "#), "{out}");
    assert!(
        out.contains(r#".function("malloc").return /* <- "#),
        "{out}"
    );
}

#[test]
fn the_examples_elaborate() {
    if !tracefs_or_skip() {
        return;
    }
    let dir = workspace().join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/ is listable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|x| x != "stp") {
            continue;
        }
        let name = entry_name(&path);
        let Some(args) = rstap_tests::example_args(&name) else {
            println!("{name}: nothing here to stand in for what it traces; examples.rs runs it");
            continue;
        };
        // uses_tapset.stp takes its aliases from the shelf's own tapset
        // directory; for the others -I adds names they do not use.
        let tapset = dir.join("tapset").to_string_lossy().into_owned();
        let mut argv = vec![
            "-p2".to_string(),
            "-I".to_string(),
            tapset,
            path.to_string_lossy().into_owned(),
        ];
        argv.extend(args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = run_rstap(&argv, workspace());
        assert!(
            out.status.success(),
            "{} does not elaborate:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} examples found");
}

fn entry_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
