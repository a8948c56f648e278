//! Kernel tier: the syscall tapset generated from this kernel's syscall
//! tracepoints — `syscall.NAME` with stap's locals and a decoded `argstr`,
//! `.return` with `retval`/`retstr`, the `syscall.*` wildcard over every
//! syscall, `syscall_any` — run for real against a child the test starts.

use rstap_tests::{bpf_or_skip, rstap_output as run, text};
use std::time::Instant;

/// Runs `script` with `-c cmd`, and returns stdout, failing with stderr when
/// rstap fails.
fn traced(script: &str, cmd: &str) -> String {
    let out = run(&["-w", "-c", cmd, "-e", script]);
    assert!(
        out.status.success(),
        "rstap failed on:\n{script}\nstderr:\n{}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn openat_shows_the_filename_and_a_decoded_argstr() {
    if !bpf_or_skip() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rstap-openat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    let file = dir.join("traced file");
    std::fs::write(&file, "x").unwrap_or_else(|e| panic!("cannot write {file:?}: {e}"));
    let path = file.display().to_string();
    let out = traced(
        &format!(
            r#"probe syscall.openat {{
  if (pid() == target() && filename == "\"{path}\"")
    printf("%s|%s|%d|%s\n", filename, argstr, dfd, name)
}}
probe syscall.openat.return {{
  if (pid() == target()) printf("ret %s\n", retstr)
}}"#
        ),
        &format!("cat '{path}' > /dev/null; cat '{path}.missing' 2>/dev/null; true"),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let expected = format!("\"{path}\"|AT_FDCWD, \"{path}\", O_RDONLY|-100|openat\n");
    assert!(
        out.contains(&expected),
        "expected the openat of {path} as `{expected}`; got:\n{out}"
    );
    assert!(
        out.contains("ret -2 (ENOENT)\n"),
        "expected the failed openat's retstr `-2 (ENOENT)`; got:\n{out}"
    );
}

#[test]
fn read_return_retval_is_the_bytes_read() {
    if !bpf_or_skip() {
        return;
    }
    // head -c 1000 reads its standard input (fd 0), /dev/zero, until it has
    // 1000 bytes; the dynamic loader's reads of other descriptors, and the
    // `-c` shell's read of its go-ahead before it becomes head, are left out.
    let out = traced(
        r#"global stdin, total
probe syscall.read { if (pid() == target()) stdin[tid()] = fd == 0 && execname() == "head" }
probe syscall.read.return {
  if (pid() == target() && stdin[tid()]) { total += retval; printf("read %d (%s)\n", retval, retstr) }
}
probe end { printf("total %d\n", total) }"#,
        "head -c 1000 < /dev/zero > /dev/null",
    );
    assert!(
        out.contains("total 1000\n"),
        "expected the reads' retvals to sum to the 1000 bytes head read; got:\n{out}"
    );
    assert!(
        out.lines().filter(|l| l.starts_with("read ")).all(|l| {
            let mut w = l.split_whitespace();
            let n = w.nth(1).unwrap_or("");
            l.ends_with(&format!("({n})"))
        }),
        "retstr should be retval in decimal; got:\n{out}"
    );
}

#[test]
fn the_syscall_wildcard_attaches_to_every_syscall_tracepoint() {
    if !bpf_or_skip() {
        return;
    }
    let count = std::fs::read_dir("/sys/kernel/tracing/events/syscalls")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("sys_enter_"))
                .count()
        })
        .unwrap_or(0);
    let started = Instant::now();
    let out = run(&[
        "-v",
        "-w",
        "-c",
        "true",
        "-e",
        "global seen probe syscall.* { seen++ }",
    ]);
    let elapsed = started.elapsed();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "rstap failed:\n{stderr}");
    let attach = stderr
        .lines()
        .find(|l| l.starts_with("Pass 5:"))
        .unwrap_or_else(|| panic!("no pass 5 line in:\n{stderr}"));
    println!(
        "syscall.*: {count} syscall tracepoints; {attach}; whole run {:.2} s",
        elapsed.as_secs_f64()
    );
    assert!(
        attach.contains(&format!("attached {count} probes ({count} tracepoints)")),
        "expected one probe on each of the {count} sys_enter_* tracepoints; got: {attach}"
    );
}

#[test]
fn syscall_any_counts_a_childs_syscalls_by_name() {
    if !bpf_or_skip() {
        return;
    }
    // 1000 getppid calls, besides those python makes starting up: syscall_any
    // names them as the getppid tracepoints count them, on entry and return.
    let out = traced(
        r#"global by_name, returned, direct
probe syscall_any { if (pid() == target()) by_name[name]++ }
probe syscall_any.return { if (pid() == target() && name == "getppid") returned++ }
probe syscall.getppid { if (pid() == target()) direct++ }
probe end { printf("%d %d %d\n", by_name["getppid"], returned, direct) }"#,
        "python3 -c 'import os\nfor _ in range(1000): os.getppid()'",
    );
    let counts: Vec<i64> = out
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(-1))
        .collect();
    assert!(
        counts.len() == 3 && counts[0] >= 1000 && counts.iter().all(|&c| c == counts[0]),
        "expected syscall_any, syscall_any.return and syscall.getppid to agree on at least 1000 getppid calls; got:\n{out}"
    );
}

#[test]
fn listing_names_every_syscall_alias_and_its_locals() {
    let out = run(&["-l", "syscall.*"]);
    let listed = text(&out.stdout);
    assert!(
        listed.lines().any(|l| l == "syscall.openat")
            && listed.lines().any(|l| l == "syscall.read"),
        "-l 'syscall.*' should list syscall.openat and syscall.read; got:\n{listed}"
    );
    let out = run(&["-L", "syscall.read"]);
    assert_eq!(
        text(&out.stdout),
        "syscall.read name:string fd:long buf_uaddr:long count:long argstr:string \
         $__syscall_nr:long $fd:long $buf:long $count:long\n"
    );
}
