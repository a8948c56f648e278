//! Second kernel tier: the same `rstap` binary inside Debian's 6.1 cloud kernel
//! under QEMU, where kprobes and kretprobes exist (the 6.18 host has neither).
//! One boot runs every case below in order; each test checks its case's output.
//! Without QEMU, a static busybox or the kernel package each test says why it
//! was skipped, unless RSTAP_REQUIRE_KERNEL_TESTS=1.

use rstap_tests::qemu::{self, Case, CaseResult, Problem, VmRun};
use rstap_tests::skip_or_fail;
use std::sync::OnceLock;

/// `/bin/true` is busybox by a symlink: its exec is named "true", while the
/// shell's own `true` would be a builtin and exec nothing.
const THREE_TRUES: &str = "/bin/sh -c '/bin/true; /bin/true; /bin/true'";

/// `do_sys_openat2`'s arguments and return value, read by whichever
/// mechanism attaches the probes.
const ARGUMENTS: &str = r#"probe kernel.function("do_sys_openat2") {
  if (pid() == target()) printf("open %s dfd=%d\n", user_string($filename), $dfd)
}
probe kernel.function("do_sys_openat2").return { if (pid() == target()) printf("fd=%d\n", $return) }"#;

/// The syscall tapset on 6.1's own syscall tracepoints.
const SYSCALLS: &str = r#"probe syscall.openat { if (pid() == target()) printf("%s(%s)\n", name, argstr) }
probe syscall.openat.return { if (pid() == target()) printf("= %s\n", retstr) }"#;

/// The kernel stack and the probe's names where the target opens a file.
const BACKTRACE: &str = r#"probe kernel.function("do_sys_openat2") {
  if (pid() == target()) { printf("%s %s\n", probefunc(), pp()); print_backtrace() }
}"#;

/// A chain of BTF-typed pointers from `vfs_read`'s first argument to the name
/// of the file read.
const MEMBER_CHAIN: &str = r#"probe kernel.function("vfs_read") {
  if (pid() == target()) printf("read %s\n", kernel_string($file->f_path->dentry->d_name->name))
}"#;

/// `@entry` in a kernel function's return probe: `*$pos` (the file position
/// `vfs_read` advances) and the time, both taken when the call began;
/// `kernel_long(@entry($pos))` reads the position where the call left it. (A
/// stream has no position: `$pos` is NULL.)
const ENTRY_VALUES: &str = r#"probe kernel.function("vfs_read").return {
  if (pid() == target() && @entry($pos))
    printf("read %d: pos %d -> %d in %d ns\n", $return, @entry($pos ? kernel_long($pos) : -1),
           kernel_long(@entry($pos)), gettimeofday_ns() - @entry(gettimeofday_ns()))
}"#;

/// Reads /proc/version with read(2), so through `vfs_read` (busybox `cat`
/// copies with sendfile instead).
const READER: &str = "wc -c /proc/version";

/// 20 TCP connections to a closed port: the kernel drops each SYN in
/// `tcp_v4_rcv`. Long enough for dropwatch's 5-second report to come twice.
const DROPS: &str = "/bin/sh -c 'ip link set lo up; for i in $(seq 20); do nc 127.0.0.1 9 </dev/null; done 2>/dev/null; sleep 11'";
/// The exec'd program's command line and environment, read through its
/// `mm_struct` by `bpf_loop` walks (5.17 and later, so 6.1 has them), and
/// tokenize(), whose scans are `bpf_loop` callbacks too.
const PROCESS_AREAS: &str = r#"probe syscall.exit_group {
  if (execname() == "true") {
    printf("[%s] [%s] [%s] [%s]\n", cmdline_str(), cmdline_arg(1), cmdline_arg(3), env_var("RSTAP_X"))
    printf("[%s] [%s]\n", tokenize("on 6.1", " "), tokenize(" "))
    exit()
  }
}"#;
const FIVE_TRUES: &str = "/bin/sh -c 'for i in $(seq 5); do /bin/true; done'";
const TWENTY_TRUES: &str = "/bin/sh -c 'for i in $(seq 20); do /bin/true; done'";

/// `examples/NAME.stp`, run with `-c command`.
fn example(name: &str, command: &str) -> Case {
    let path = rstap_tests::workspace().join(format!("examples/{name}.stp"));
    let script = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Case::new(name, &["-e", &script, "-c", command])
}

fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "begin_arithmetic",
            &["-e", r#"probe begin { printf("%d\n", 6 * 7); exit() }"#],
        ),
        Case::new(
            "tracepoint_exec_count",
            &[
                "-e",
                r#"global n
probe kernel.trace("sched:sched_process_exec") { if (execname() == "true") n++ }
probe end { printf("execs=%d\n", n) }"#,
                "-c",
                THREE_TRUES,
            ],
        ),
        count_target(
            "kprobe_count",
            &["-v"],
            r#"kernel.function("do_sys_openat2")"#,
            "opens",
        ),
        count_target(
            "kretprobe_count",
            &["-v"],
            r#"kernel.function("do_sys_openat2").return"#,
            "returns",
        ),
        count_target(
            "forced_kprobe_count",
            &["-v", "--kprobes"],
            r#"kernel.function("do_sys_openat2")"#,
            "opens",
        ),
        count_target(
            "forced_kretprobe_count",
            &["-v", "--kprobes"],
            r#"kernel.function("do_sys_openat2").return"#,
            "returns",
        ),
        count_target(
            "kprobe_function_count",
            &["-v"],
            r#"kprobe.function("do_sys_openat2")"#,
            "opens",
        ),
        Case::new(
            "fentry_arguments",
            &["-e", ARGUMENTS, "-c", "cat /proc/version"],
        ),
        Case::new(
            "kprobe_arguments",
            &["--kprobes", "-e", ARGUMENTS, "-c", "cat /proc/version"],
        ),
        Case::new(
            "fentry_backtrace",
            &["-e", BACKTRACE, "-c", "cat /proc/version"],
        ),
        Case::new(
            "kprobe_backtrace",
            &["--kprobes", "-e", BACKTRACE, "-c", "cat /proc/version"],
        ),
        Case::new(
            "fexit_entry_values",
            &["-v", "-e", ENTRY_VALUES, "-c", READER],
        ),
        Case::new(
            "kretprobe_entry_values",
            &["-v", "--kprobes", "-e", ENTRY_VALUES, "-c", READER],
        ),
        Case::new("fentry_member_chain", &["-e", MEMBER_CHAIN, "-c", READER]),
        Case::new(
            "kprobe_member_chain",
            &["--kprobes", "-e", MEMBER_CHAIN, "-c", READER],
        ),
        count_target(
            "kprobe_wildcard_count",
            &["-v"],
            r#"kernel.function("vfs_*")"#,
            "vfs_calls_seen",
        ),
        Case::new(
            "syscall_aliases",
            &["-w", "-e", SYSCALLS, "-c", "cat /proc/version"],
        ),
        example("dropwatch", DROPS),
        example("syscalls_by_proc", FIVE_TRUES),
        example("runqueue_latency", "sleep 1"),
        Case::new(
            "exact_counts",
            &[
                "-e",
                r#"global n, s, c
probe kernel.trace("sched:sched_process_exec") {
  if (execname() == "true") { n++; s <<< 1; c[execname()] <<< 2 }
}
probe end { printf("n=%d count=%d sum=%d\n", n, @count(s), @sum(c["true"])) }"#,
                "-c",
                TWENTY_TRUES,
            ],
        ),
        Case::new(
            "process_areas",
            &[
                "-e",
                PROCESS_AREAS,
                "-c",
                "env RSTAP_X=on-6.1 /bin/true a '' 'b c'",
            ],
        ),
        Case::new("list_vfs_read", &["-l", r#"kernel.function("vfs_read")"#]),
        Case::new(
            "list_vars_vfs_read",
            &["-L", r#"kernel.function("vfs_read")"#],
        ),
    ]
}

/// Counts how often `point` fires in the target `cat /proc/version`, and
/// prints `label=N` at the end.
fn count_target(name: &str, flags: &[&str], point: &str, label: &str) -> Case {
    let script = format!(
        "global n\nprobe {point} {{ if (pid() == target()) n++ }}\nprobe end {{ printf(\"{label}=%d\\n\", n) }}"
    );
    let mut args = flags.to_vec();
    args.extend(["-e", &script, "-c", "cat /proc/version"]);
    Case::new(name, &args)
}

/// The one VM boot every test shares.
fn vm() -> Option<&'static VmRun> {
    static RUN: OnceLock<Result<VmRun, Problem>> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        let run = qemu::run_cases(&cases());
        if let Ok(run) = &run {
            println!(
                "second kernel {}: boot {:.1} s, whole VM run {:.1} s, {} cases",
                run.kernel,
                run.boot_seconds,
                run.wall_seconds,
                run.results.len()
            );
        }
        run
    });
    match run {
        Ok(run) => Some(run),
        Err(Problem::Unavailable(why)) => {
            skip_or_fail(&format!("the 6.1 kernel under QEMU: {why}"));
            None
        }
        Err(Problem::Failed(why)) => panic!("the 6.1 kernel VM run failed: {why}"),
    }
}

/// The case's result, after checking it exited 0.
fn succeeded<'a>(run: &'a VmRun, name: &str) -> &'a CaseResult {
    let result = run.case(name);
    println!("{name}: {:.1} s in the VM", result.seconds);
    assert_eq!(
        result.status, 0,
        "{name} should exit 0 inside the VM; stdout:\n{}\nstderr:\n{}",
        result.stdout, result.stderr
    );
    result
}

#[test]
fn the_binary_runs_on_the_6_1_kernel() {
    let Some(run) = vm() else { return };
    assert!(
        run.kernel.starts_with("6.1."),
        "the VM should run a 6.1 kernel, not {}",
        run.kernel
    );
    let result = succeeded(run, "begin_arithmetic");
    assert_eq!(result.stdout, "42\n");
    assert_eq!(result.stderr, "");
}

#[test]
fn tracepoint_counts_the_targets_execs_exactly() {
    let Some(run) = vm() else { return };
    let result = succeeded(run, "tracepoint_exec_count");
    assert_eq!(result.stdout, "execs=3\n", "stderr:\n{}", result.stderr);
}

/// The case ran `cat /proc/version` as its target: its output first, then the
/// script's count line.
fn counted_after_cat<'a>(run: &'a VmRun, name: &str, count: &str) -> &'a CaseResult {
    let result = succeeded(run, name);
    assert!(
        result.stdout.starts_with("Linux version 6.1.")
            && result.stdout.ends_with(&format!("\n{count}\n")),
        "{name}: cat's one line, then {count} (cat opens /proc/version once); got:\n{}",
        result.stdout
    );
    result
}

#[test]
fn kernel_function_runs_as_fentry_and_counts_the_targets_open() {
    let Some(run) = vm() else { return };
    // 6.1 has fentry, and do_sys_openat2 is BTF-typed and traceable.
    attached_as(run, "kprobe_count", "opens=1", "(1 fentry)");
}

/// Checks the case counted `count` and that `-v` named `mechanism`.
fn attached_as(run: &VmRun, name: &str, count: &str, mechanism: &str) {
    let result = counted_after_cat(run, name, count);
    assert!(
        result
            .stderr
            .contains(&format!("attached 1 probes {mechanism}")),
        "{name}: -v should say the probe was attached as {mechanism}: {}",
        result.stderr
    );
}

#[test]
fn a_return_probe_counts_the_targets_return_through_fexit() {
    let Some(run) = vm() else { return };
    attached_as(run, "kretprobe_count", "returns=1", "(1 fexit)");
}

#[test]
fn the_kprobes_switch_keeps_kprobes_and_kretprobes() {
    let Some(run) = vm() else { return };
    attached_as(run, "forced_kprobe_count", "opens=1", "(1 kprobe)");
    attached_as(run, "forced_kretprobe_count", "returns=1", "(1 kretprobe)");
}

#[test]
fn kprobe_function_is_always_a_kprobe() {
    let Some(run) = vm() else { return };
    attached_as(run, "kprobe_function_count", "opens=1", "(1 kprobe)");
}

#[test]
fn arguments_and_return_values_read_the_same_by_fentry_and_kprobe() {
    let Some(run) = vm() else { return };
    for name in ["fentry_arguments", "kprobe_arguments"] {
        let result = succeeded(run, name);
        // `$dfd` is an int: AT_FDCWD, sign-extended from the low half.
        assert!(
            result.stdout.contains("open /proc/version dfd=-100\n"),
            "{name}: {}",
            result.stdout
        );
        assert!(
            result.stdout.contains("fd=3\n"),
            "{name}: {}",
            result.stdout
        );
    }
}

#[test]
fn a_btf_member_chain_reads_the_name_of_the_file_read() {
    let Some(run) = vm() else { return };
    for name in ["fentry_member_chain", "kprobe_member_chain"] {
        let result = succeeded(run, name);
        assert!(
            result.stdout.contains("read version\n"),
            "{name}: {}\n{}",
            result.stdout,
            result.stderr
        );
    }
}

#[test]
fn a_wildcard_attaches_what_the_kernel_lets_it_and_skips_the_rest() {
    let Some(run) = vm() else { return };
    let result = succeeded(run, "kprobe_wildcard_count");
    // cat's open, read and close of /proc/version call vfs_* functions. Freed
    // __init code is not even tried; functions the kernel will not kprobe are
    // skipped with one warning.
    let seen = result
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("vfs_calls_seen="))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        seen.is_some_and(|n| n > 0),
        "{}\n{}",
        result.stdout,
        result.stderr
    );
    assert!(
        !result.stderr.contains("vfs_caches_init"),
        "{}",
        result.stderr
    );
    // The functions share one program, verified once; it is linked to all of
    // them at once through kprobe.multi where the kernel has fprobes, and
    // attached to each as a kprobe where not (Debian's 6.1 is built without).
    assert!(
        result.stderr.contains("compiled 1 BPF programs"),
        "{}",
        result.stderr
    );
    let fprobe = qemu::kernel_config().is_some_and(|c| c.contains("\nCONFIG_FPROBE=y"));
    let marker = if fprobe {
        " kprobes via kprobe.multi"
    } else {
        " kprobes)"
    };
    let linked = result
        .stderr
        .lines()
        .filter(|l| l.contains(marker))
        .find_map(|l| l.split(marker).next()?.rsplit(['(', ' ']).next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        linked.is_some_and(|n| n > 20),
        "-v should report the functions attached as{marker}: {}",
        result.stderr
    );
    println!(
        "vfs_*: {}",
        result
            .stderr
            .lines()
            .find(|l| l.starts_with("Pass 5"))
            .unwrap_or("")
    );
}

#[test]
fn listing_reads_the_6_1_kernels_functions_and_btf() {
    let Some(run) = vm() else { return };
    let listed = succeeded(run, "list_vfs_read");
    assert_eq!(listed.stdout, "kernel.function(\"vfs_read\")\n");
    let vars = succeeded(run, "list_vars_vfs_read");
    assert_eq!(
        vars.stdout,
        "kernel.function(\"vfs_read\") $file:struct file* $buf:char* $count:size_t $pos:loff_t*\n"
    );
}

#[test]
fn dropwatch_sees_the_dropped_syns_on_6_1() {
    let Some(run) = vm() else { return };
    let result = succeeded(run, "dropwatch");
    let out = &result.stdout;
    assert!(out.starts_with("Monitoring for dropped packets\n"), "{out}");
    assert!(out.ends_with("Stopping dropped packet monitor\n"), "{out}");
    // The reports every 5 s split the drops between them; they add up.
    let at_tcp: u64 = out
        .lines()
        .filter_map(|l| l.trim().strip_suffix(" packets dropped at tcp_v4_rcv"))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    assert_eq!(at_tcp, 20, "{out}");
}

#[test]
fn cmdline_env_var_and_tokenize_run_on_6_1() {
    let Some(run) = vm() else { return };
    let result = succeeded(run, "process_areas");
    assert_eq!(
        result.stdout, "[/bin/true a \"\" b c] [a] [b c] [on-6.1]\n[on] [6.1]\n",
        "{}",
        result.stderr
    );
}

#[test]
fn counts_are_exact_on_6_1() {
    let Some(run) = vm() else { return };
    let result = succeeded(run, "exact_counts");
    assert_eq!(result.stdout, "n=20 count=20 sum=40\n", "{}", result.stderr);
}

#[test]
fn the_syscall_and_run_queue_examples_run_on_6_1() {
    let Some(run) = vm() else { return };
    let syscalls = succeeded(run, "syscalls_by_proc");
    let mut lines = syscalls.stdout.lines();
    assert_eq!(
        lines
            .next()
            .map(str::split_whitespace)
            .map(Iterator::collect::<Vec<_>>),
        Some(vec!["PROCESS", "SYSCALLS", "SHARE"]),
        "{}",
        syscalls.stdout
    );
    assert!(
        lines.any(|l| l.starts_with("true ") && l.ends_with('%')),
        "the five trues made syscalls: {}",
        syscalls.stdout
    );
    let latency = succeeded(run, "runqueue_latency");
    assert!(
        latency.stdout.starts_with("run queue latency (us): ")
            && latency.stdout.contains("value |"),
        "{}",
        latency.stdout
    );
}

#[test]
fn print_backtrace_from_fentry_and_kprobe_shows_the_syscall_path() {
    let Some(run) = vm() else { return };
    for name in ["fentry_backtrace", "kprobe_backtrace"] {
        let out = &succeeded(run, name).stdout;
        // A line of its own, before or after the child's output (the two
        // writers race).
        assert!(
            out.lines()
                .any(|l| l == "do_sys_openat2 kernel.function(\"do_sys_openat2\")"),
            "{name}: {out}"
        );
        // ` 0xADDR : symbol+0xoff/0xsize [kernel]`, one frame a line, from the
        // opening syscall down to the system call entry.
        let frames: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with(" 0x") && l.contains(" : "))
            .collect();
        assert!(
            frames.iter().any(|f| f.contains(" : do_syscall_64+0x")),
            "{name}: {out}"
        );
        assert!(
            frames.iter().any(|f| f.contains("_sys_openat")),
            "{name}: the open syscall's own frame: {out}"
        );
        assert!(
            frames.iter().all(|f| f.ends_with(" [kernel]")),
            "{name}: {out}"
        );
    }
}

#[test]
fn syscall_aliases_decode_the_open_on_6_1() {
    let Some(run) = vm() else { return };
    let out = &succeeded(run, "syscall_aliases").stdout;
    // Generated from 6.1's syscalls:sys_enter_openat format: the file name
    // read from user memory and quoted, the flags decoded, then the fd.
    assert!(
        out.contains("openat(AT_FDCWD, \"/proc/version\", O_RDONLY"),
        "{out}"
    );
    assert!(out.contains("\n= 3\n"), "{out}");
}

#[test]
fn entry_values_are_taken_when_the_kernel_function_is_entered() {
    let Some(run) = vm() else { return };
    for (name, mechanisms) in [
        ("fexit_entry_values", ["1 fexit", "1 fentry"]),
        ("kretprobe_entry_values", ["1 kretprobe", "1 kprobe"]),
    ] {
        let result = succeeded(run, name);
        let (out, err) = (&result.stdout, &result.stderr);
        let attached = err.lines().find(|l| l.contains("attached 2 probes ("));
        assert!(
            attached.is_some_and(|l| mechanisms.iter().all(|m| l.contains(m))),
            "{name}: the entry probe @entry adds runs as the return does ({mechanisms:?}): {err}"
        );
        // `read RET: pos FROM -> TO in NS ns`, a line per vfs_read of wc.
        let reads: Vec<[i64; 4]> = out
            .lines()
            .filter_map(|l| {
                let l = l.strip_prefix("read ")?.strip_suffix(" ns")?;
                let (ret, rest) = l.split_once(": pos ")?;
                let (from, rest) = rest.split_once(" -> ")?;
                let (to, ns) = rest.split_once(" in ")?;
                let n = |s: &str| s.parse::<i64>().ok();
                Some([n(ret)?, n(from)?, n(to)?, n(ns)?])
            })
            .collect();
        // wc's first read takes /proc/version from position 0; evaluated at
        // the return, `@entry(kernel_long($pos))` would say where it ended.
        assert!(
            reads.iter().any(|r| r[0] > 0 && r[1] == 0 && r[2] == r[0]),
            "{name}: a read from position 0: {out}\n{err}"
        );
        for [ret, from, to, ns] in &reads {
            if *ret >= 0 {
                assert_eq!(
                    from + ret,
                    *to,
                    "{name}: each read advances by $return: {out}"
                );
            }
            assert!(
                *ns > 0 && *ns < 1_000_000_000,
                "{name}: a call's latency from its @entry time: {out}"
            );
        }
    }
}
