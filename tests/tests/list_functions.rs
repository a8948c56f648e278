//! Kernel tier: `rstap -l` / `-L` of function and USDT probe points against this
//! machine's real kallsyms, BTF and binaries.

use rstap_tests::{build_c, rstap, run_rstap, skip_or_fail, workspace};
use std::path::PathBuf;
use std::process::{Command, Output};

fn stdout_of(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `fixtures/elf/usdt.c` of the compiler's tests, built with the system's cc.
fn usdt_program(name: &str) -> Option<PathBuf> {
    let path = workspace().join("compiler/tests/fixtures/elf/usdt.c");
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let dir = std::env::temp_dir().join(format!("rstap-list-test-{}", std::process::id()));
    // (Needs systemtap-sdt-dev for <sys/sdt.h>.)
    let out = build_c(&dir, name, &source, &["-O2"])?;
    // Canonical, as rstap prints it (the temporary directory may be a symlink).
    Some(std::fs::canonicalize(&out).unwrap_or(out))
}

fn kallsyms_readable() -> bool {
    let ok = std::fs::read_to_string("/proc/kallsyms").is_ok_and(|t| t.contains(" vfs_read\n"));
    if !ok {
        skip_or_fail("/proc/kallsyms is not readable here or has no vfs_read");
    }
    ok
}

#[test]
fn lists_vfs_read_with_its_btf_prototype() {
    if !kallsyms_readable() {
        return;
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        skip_or_fail("this kernel has no BTF at /sys/kernel/btf/vmlinux");
        return;
    }
    let out = run_rstap(
        &["-L", r#"kernel.function("vfs_read")"#],
        &std::env::temp_dir(),
    );
    let listed = stdout_of(&out, "rstap -L kernel.function");
    // ssize_t vfs_read(struct file *file, char __user *buf, size_t count, loff_t *pos),
    // unchanged since 2.6; stap spells it this way.
    assert_eq!(
        listed,
        "kernel.function(\"vfs_read\") $file:struct file* $buf:char* $count:size_t $pos:loff_t*\n"
    );
    let out = run_rstap(
        &["-L", r#"kernel.function("vfs_read").return"#],
        &std::env::temp_dir(),
    );
    let listed = stdout_of(&out, "rstap -L kernel.function().return");
    assert!(
        listed.starts_with("kernel.function(\"vfs_read\").return $return:ssize_t $file:"),
        "got: {listed}"
    );
}

#[test]
fn lists_kernel_functions_by_wildcard() {
    if !kallsyms_readable() {
        return;
    }
    let out = run_rstap(
        &["-l", r#"kernel.function("vfs_rea*")"#],
        &std::env::temp_dir(),
    );
    let listed = stdout_of(&out, "rstap -l kernel.function");
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let text_symbols: Vec<&str> = kallsyms
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && matches!(f[1], "t" | "T")).then_some(f[2])
        })
        .collect();
    assert!(
        listed
            .lines()
            .any(|l| l == r#"kernel.function("vfs_read")"#),
        "no vfs_read in:\n{listed}"
    );
    for line in listed.lines() {
        let name = line
            .strip_prefix("kernel.function(\"")
            .and_then(|l| l.strip_suffix("\")"))
            .unwrap_or_else(|| panic!("not a kernel.function point: {line}"));
        assert!(
            name.starts_with("vfs_rea"),
            "{name} does not match vfs_rea*"
        );
        assert!(
            text_symbols.contains(&name),
            "{name} is not a text symbol of /proc/kallsyms"
        );
    }
    let mut sorted: Vec<&str> = listed.lines().collect();
    sorted.sort();
    assert_eq!(listed.lines().collect::<Vec<_>>(), sorted, "not sorted");
}

#[test]
fn lists_functions_of_user_binaries() {
    let Some(prog) = usdt_program("functions") else {
        return;
    };
    let path = prog.display().to_string();
    let out = run_rstap(
        &["-l", &format!(r#"process("{path}").function("*")"#)],
        &std::env::temp_dir(),
    );
    let listed = stdout_of(&out, "rstap -l process().function");
    for f in ["main", "add_one", "twice"] {
        let want = format!(r#"process("{path}").function("{f}")"#);
        assert!(listed.lines().any(|l| l == want), "no {want} in:\n{listed}");
    }
    // A name without a slash is looked up in $PATH, and printed resolved.
    let dir = prog
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let out = Command::new(rstap())
        .args(["-l", r#"process("functions").function("main")"#])
        .env("PATH", format!("{dir}:/usr/bin:/bin"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"));
    assert_eq!(
        stdout_of(&out, "rstap -l process(NAME)"),
        format!("process(\"{path}\").function(\"main\")\n")
    );
}

/// The libc this test process runs with: a stripped system library still has
/// its exported functions in .dynsym.
#[test]
fn lists_exported_functions_of_the_system_libc() {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let Some(libc) = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("/libc.so"))
    else {
        skip_or_fail("this test process maps no libc.so");
        return;
    };
    let out = run_rstap(
        &["-l", &format!(r#"process("{libc}").function("malloc")"#)],
        &std::env::temp_dir(),
    );
    let listed = stdout_of(&out, "rstap -l process(libc).function");
    let canonical = std::fs::canonicalize(libc)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| libc.to_string());
    assert_eq!(
        listed,
        format!("process(\"{canonical}\").function(\"malloc\")\n")
    );
}

#[test]
fn lists_usdt_marks_with_their_arguments() {
    let Some(prog) = usdt_program("marks") else {
        return;
    };
    let path = prog.display().to_string();
    let out = run_rstap(
        &["-L", &format!(r#"process("{path}").mark("*")"#)],
        &std::env::temp_dir(),
    );
    assert_eq!(
        stdout_of(&out, "rstap -L process().mark"),
        format!(
            "process(\"{path}\").mark(\"empty\")\nprocess(\"{path}\").mark(\"tick\") $arg1:long $arg2:long\n"
        )
    );
    let out = run_rstap(
        &["-l", &format!(r#"process("{path}").mark("nosuch")"#)],
        &std::env::temp_dir(),
    );
    assert_eq!(out.status.code(), Some(1), "nothing matched");
}

#[test]
fn a_missing_binary_is_named_in_the_error() {
    let out = run_rstap(
        &["-l", r#"process("/no/such/binary").function("*")"#],
        &std::env::temp_dir(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/binary"), "stderr: {err}");
}
