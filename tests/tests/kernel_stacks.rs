//! Kernel tier: symbols and stacks. A kernel-context handler records
//! addresses and stacks; rstap names them from /proc/kallsyms after the event
//! and prints them as stap does. Needs root and BPF; elsewhere each test says
//! why it was skipped, unless RSTAP_REQUIRE_KERNEL_TESTS=1.

use rstap_tests::{rstap, text};
use std::process::{Command, Output};

fn kernel_ok() -> bool {
    rstap_tests::bpf_or_skip()
}

/// Runs `script` with a python child that calls getppid() (python itself
/// calls it a few times more while starting).
fn run_with_getppid(script: &str) -> Option<Output> {
    if !rstap_tests::python_or_skip() {
        return None;
    }
    Some(
        Command::new(rstap())
            .args(["-e", script, "-c", "python3 -c 'import os; os.getppid()'"])
            .output()
            .expect("run rstap"),
    )
}

/// The first getppid() of the target, once.
const ONCE: &str = r#"global done
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() != target() || done) next
  done = 1
"#;

/// `name`'s address and size in /proc/kallsyms (the size runs to the next
/// symbol, as rstap and the kernel's `%pS` count it).
fn kallsyms(name: &str) -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/kallsyms").expect("read /proc/kallsyms");
    let addrs: Vec<(u64, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let addr = u64::from_str_radix(f.next()?, 16).ok()?;
            Some((addr, f.nth(1)?))
        })
        .collect();
    let start = addrs
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(a, _)| *a)
        .unwrap_or_else(|| panic!("{name} is not in /proc/kallsyms"));
    let end = addrs
        .iter()
        .map(|(a, _)| *a)
        .filter(|a| *a > start)
        .min()
        .expect("a symbol follows");
    (start, end - start)
}

#[test]
fn print_backtrace_in_a_syscall_tracepoint_shows_the_syscall_entry_frames() {
    if !kernel_ok() {
        return;
    }
    let script = format!("{ONCE}  print_backtrace()\n}}");
    let Some(out) = run_with_getppid(&script) else {
        return;
    };
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let frames: Vec<&str> = stdout.lines().collect();
    assert!(frames.len() >= 2, "a stack of several frames:\n{stdout}");
    for f in &frames {
        // ` 0xADDR : sym+0xoff/0xsize [kernel]`, as stap's print_backtrace.
        let (addr, rest) = f
            .strip_prefix(" 0x")
            .and_then(|f| f.split_once(" : "))
            .unwrap_or_else(|| panic!("frame {f:?} is not ` 0xADDR : ...`"));
        assert!(u64::from_str_radix(addr, 16).is_ok(), "{f}");
        let (sym, module) = rest.split_once(' ').expect("a module follows");
        assert_eq!(module, "[kernel]", "{f}");
        let (name, off_size) = sym.split_once("+0x").expect("sym+0xoff");
        assert!(!name.is_empty() && off_size.contains("/0x"), "{f}");
    }
    assert!(
        stdout.contains(" : do_syscall_64+0x") && stdout.contains(" : entry_SYSCALL_64"),
        "the syscall entry path is on the stack:\n{stdout}"
    );
}

#[test]
fn backtrace_and_sprint_backtrace_give_the_same_frames_as_strings() {
    if !kernel_ok() {
        return;
    }
    let script = format!(
        "{ONCE}  printf(\"[%s]\\n\", backtrace())\n  print(sprint_backtrace())\n  print_backtrace()\n}}"
    );
    let Some(out) = run_with_getppid(&script) else {
        return;
    };
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut lines = stdout.lines();
    let hex = lines.next().expect("the backtrace() line");
    // stap's backtrace(): each address followed by a space.
    let addrs: Vec<&str> = hex
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(" ]"))
        .unwrap_or_else(|| panic!("{hex:?} is not `[0x.. 0x.. ]`"))
        .split(' ')
        .collect();
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest.len(), 2 * addrs.len(), "{stdout}");
    let (simple, full) = rest.split_at(addrs.len());
    for ((addr, s), f) in addrs.iter().zip(simple).zip(full) {
        // sprint_backtrace(): `sym+0xoff [kernel]`; print_backtrace() adds
        // the address and the size.
        let (sym_off, module) = s.split_once(' ').expect("sym+0xoff [module]");
        assert_eq!(module, "[kernel]", "{s}");
        assert!(
            f.starts_with(&format!(" {addr} : {sym_off}/0x")) && f.ends_with(" [kernel]"),
            "{f:?} names {addr} as {s:?} does"
        );
    }
}

#[test]
fn symname_and_symdata_of_a_kallsyms_address_name_its_symbol() {
    if !kernel_ok() {
        return;
    }
    let (addr, size) = kallsyms("vfs_read");
    let script = format!(
        "{ONCE}  printf(\"%s|%s|%s\\n\", symname({a}), symdata({a}), symname(0))\n}}",
        a = addr + 4
    );
    let Some(out) = run_with_getppid(&script) else {
        return;
    };
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("vfs_read|vfs_read+0x4/{size:#x} [kernel]|0x0\n")
    );
    // The same in user context, where the engine names them itself.
    let out = Command::new(rstap())
        .args([
            "-e",
            &format!(
                "probe begin {{ printf(\"%s|%s\\n\", symname({a}), symdata({a})); exit() }}",
                a = addr + 4
            ),
        ])
        .output()
        .expect("run rstap");
    assert_eq!(
        text(&out.stdout),
        format!("vfs_read|vfs_read+0x4/{size:#x} [kernel]\n")
    );
}

#[test]
fn probe_point_names_of_a_tracepoint_are_its_constants() {
    if !kernel_ok() {
        return;
    }
    let script = format!(
        "{ONCE}  printf(\"%s|%s|%s\\n\", pp(), ppfunc(), probefunc())\n}}\nprobe begin {{ printf(\"%s|%s|%s\\n\", pp(), ppfunc(), probefunc()) }}"
    );
    let Some(out) = run_with_getppid(&script) else {
        return;
    };
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "begin||\nkernel.trace(\"syscalls:sys_enter_getppid\")||\n"
    );
}

#[test]
fn probemod_of_a_tracepoint_is_stap_runtime_error() {
    if !kernel_ok() {
        return;
    }
    let script = format!("{ONCE}  println(probemod())\n}}");
    let Some(out) = run_with_getppid(&script) else {
        return;
    };
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ERROR: Cannot determine kernel module name near "),
        "{stderr}"
    );
}

/// Builds a C program calling `work()` from `outer()` from `main()` three
/// times, with frame pointers (what `bpf_get_stack` walks), into a fresh
/// directory; `None` (skipped) without a C compiler. It lingers a little
/// before exiting: rstap names user addresses from the maps of the live
/// process, after the event.
fn build_caller_chain() -> Option<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("rstap-ustack-{}", std::process::id()));
    rstap_tests::build_c(
        &dir,
        "w",
        "__attribute__((noinline)) int work(int x) { return x * 2; }\n\
         __attribute__((noinline)) int outer(int x) { return work(x) + 1; }\n\
         #include <unistd.h>\n\
         int main(void) { int s = 0; for (int i = 0; i < 3; i++) s += outer(i); usleep(300000); return s == 0; }\n",
        &["-O1", "-fno-omit-frame-pointer"],
    )
}

#[test]
fn print_ubacktrace_at_a_uprobe_shows_the_callers_up_to_main() {
    if !kernel_ok() {
        return;
    }
    let Some(bin) = build_caller_chain() else {
        return;
    };
    let path = bin.display().to_string();
    // The first call's stacks only.
    let script = format!(
        "global n\nprobe process(\"{path}\").function(\"work\") {{\n  if (n++) next\n  print_ubacktrace()\n  print(sprint_ubacktrace())\n  printf(\"%s|%s|%s\\n\", probefunc(), usymname(0), usymdata(0))\n  printf(\"u %s\\n\", ubacktrace())\n}}"
    );
    let out = Command::new(rstap())
        .args(["-e", &script, "-c"])
        .arg(&path)
        .output()
        .expect("run rstap");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    let frame = |i: usize, name: &str| {
        let l = lines.get(i).copied().unwrap_or("");
        assert!(
            l.starts_with(" 0x")
                && l.contains(&format!(" : {name}+0x"))
                && l.ends_with(&format!(" [{path}]")),
            "frame {i} is {name} in {path}:\n{stdout}"
        );
    };
    // At the entry the pc is work's first byte, and the caller is there too.
    frame(0, "work");
    assert!(lines[0].contains(" : work+0x0/0x"), "{stdout}");
    frame(1, "outer");
    frame(2, "main");
    let simple = lines
        .iter()
        .position(|l| l.starts_with("work+0x0 [w]"))
        .unwrap_or_else(|| panic!("sprint_ubacktrace's first line:\n{stdout}"));
    assert!(lines[simple + 1].starts_with("outer+0x") && lines[simple + 2].starts_with("main+0x"));
    assert!(
        lines.contains(&"work|0x0|0x0"),
        "probefunc, usymname and usymdata:\n{stdout}"
    );
    // ubacktrace(): the same frames as hex addresses, spaces between.
    let addrs: Vec<&str> = lines
        .iter()
        .find_map(|l| l.strip_prefix("u "))
        .unwrap_or_else(|| panic!("ubacktrace's line:\n{stdout}"))
        .split_whitespace()
        .collect();
    assert!(
        addrs.len() >= 3
            && addrs
                .iter()
                .all(|a| a.starts_with("0x") && u64::from_str_radix(&a[2..], 16).is_ok())
            && lines[0].trim_start().starts_with(addrs[0]),
        "ubacktrace should start at work's frame:\n{stdout}"
    );
    let _ = std::fs::remove_dir_all(bin.parent().expect("dir"));
}
