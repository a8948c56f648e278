//! Kernel tier: strings in kernel-context handlers — literals, copies,
//! concatenation, comparison, strlen, string globals and string-keyed arrays,
//! strings read from user memory and tracepoint records, string print
//! arguments, error()/warn()/exit(), faults and try/catch — behave as the
//! user-space engine makes the same script text behave in a begin probe.

use rstap_tests::{bpf_or_skip, rstap_output as run, text};

/// String operations, written once and run both in a begin probe (user
/// space) and in a tracepoint handler (BPF); `{p}` names each side's globals.
const BODY: &str = r#"
    s = "hello"; t = s . ", " . "world"
    printf("%s|%d|%d|%d|%d|%d|%d\n", t, strlen(t), s < t, s == "hello", "b" > "abc", s != t, "" < s)
    u = ""
    for (i = 0; i < 6; i++) u = u . "ab"
    printf("[%s] %d %s\n", u, strlen(u), u == "abababababab" ? "same" : "differs")
    {p}g = t
    {p}a[s] = t; {p}a["x"] = u; {p}a[t] = "3"
    printf("%s|%s|%s|%d|%d\n", {p}g, {p}a[s], {p}a["nothing"], ["x"] in {p}a, [u] in {p}a)
    delete {p}a["x"]
    printf("%d %d\n", ["x"] in {p}a, [s] in {p}a)
    v = t . t . t . t
    printf("%d %s\n", strlen(v), substr_ok = "done")
"#;

fn script(body: &str) -> String {
    let user = body.replace("{p}", "u");
    let kernel = body.replace("{p}", "k");
    format!(
        r#"global ug, ua, kg, ka, done
probe begin {{ printf("user\n"); {user} }}
probe kernel.trace("syscalls:sys_enter_getppid") {{
  if (pid() == target() && !done) {{ done = 1; printf("kernel\n"); {kernel} }}
}}
probe end {{ printf("%s %d\n", kg, strlen(ka["hello"])) }}"#
    )
}

fn halves(out: &str) -> (String, String) {
    let user = out
        .split("kernel\n")
        .next()
        .unwrap_or("")
        .trim_start_matches("user\n");
    let kernel = out.split("kernel\n").nth(1).unwrap_or("");
    let kernel = kernel.rsplit_once('\n').map_or(kernel, |(k, _)| k);
    let kernel = kernel.rsplit_once('\n').map_or(kernel, |(k, _)| k);
    (user.to_string(), format!("{kernel}\n"))
}

const GETPPID: &str = "python3 -c 'import os; os.getppid()'";

#[test]
fn string_operations_in_the_kernel_match_the_user_space_engine() {
    if !bpf_or_skip() {
        return;
    }
    let body = BODY.replace("substr_ok = \"done\"", "\"done\"");
    let out = run(&["-e", &script(&body), "-c", GETPPID]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    let (user, kernel) = halves(&stdout);
    assert!(user.contains("hello, world|12|1|1|1|1|1"), "{stdout}");
    assert_eq!(user, kernel, "user space vs kernel:\n{stdout}");
    assert!(
        stdout.ends_with("hello, world 12\n"),
        "end probe reads the kernel's string globals:\n{stdout}"
    );
}

#[test]
fn maxstringlen_cuts_kernel_strings_as_it_cuts_user_space_ones() {
    if !bpf_or_skip() {
        return;
    }
    let body = BODY.replace("substr_ok = \"done\"", "\"done\"");
    let out = run(&["-D", "MAXSTRINGLEN=16", "-e", &script(&body), "-c", GETPPID]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    let (user, kernel) = halves(&stdout);
    assert!(user.contains("hello, world|12"), "{stdout}");
    assert!(user.contains("[abababababab] 12"), "{stdout}");
    assert!(
        user.contains("\n15 done"),
        "four copies cut to 15 bytes:\n{stdout}"
    );
    assert_eq!(user, kernel, "user space vs kernel:\n{stdout}");
}

#[test]
fn strings_from_user_memory_and_tracepoint_records_reach_the_output() {
    if !bpf_or_skip() {
        return;
    }
    let script = r#"global files
probe kernel.trace("syscalls:sys_enter_openat") {
  if (pid() == target()) {
    # The dynamic loader's paths may sit in pages not yet faulted in.
    f = user_string($filename, "<unreadable>"); files[f] <<< 1; printf("open %s by %s\n", f, execname())
    if (f == "/etc/hostname") printf("quoted %s\n", user_string_quoted($filename))
  }
}
probe kernel.trace("sched:sched_process_exec") {
  if (pid() == target()) printf("exec %s as %s\n", $filename, execname())
}
probe end { printf("%d\n", @count(files["/etc/hostname"])) }"#;
    let out = run(&["-e", script, "-c", "/bin/cat /etc/hostname"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    assert!(stdout.contains("exec /bin/cat as cat\n"), "{stdout}");
    assert!(stdout.contains("open /etc/hostname by cat\n"), "{stdout}");
    assert!(stdout.contains("quoted \"/etc/hostname\"\n"), "{stdout}");
    assert!(stdout.ends_with("\n1\n"), "{stdout}");
}

#[test]
fn faults_errors_warnings_and_exit_in_the_kernel_are_reported_as_stap_does() {
    if !bpf_or_skip() {
        return;
    }
    let probe = |body: &str| {
        format!(
            r#"probe kernel.trace("syscalls:sys_enter_getppid") {{
  # The shell calls getppid too, before it becomes python3.
  if (pid() == target() && execname() == "python3") {{ {body} }}
}}
probe end {{ println("end") }}
probe error {{ println("error probe") }}"#
        )
    };
    // A fault is stap's runtime error: the error probe runs instead of end,
    // and the status is 1.
    let out = run(&["-e", &probe("println(user_string(8))"), "-c", GETPPID]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "ERROR: user string copy fault -14 at 0x8 [man error::fault] near identifier 'user_string'"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("ERROR:").count(), 1, "{stderr}");
    assert_eq!(text(&out.stdout), "error probe\n");
    // With a fallback, or in a try block, the handler goes on.
    let out = run(&[
        "-e",
        &probe(
            r#"println(user_string(8, "fallback")); try { println(user_string(8)) } catch (m) { println("caught: ", m) } warn("careful " . execname()); exit()"#,
        ),
        "-c",
        GETPPID,
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        "fallback\ncaught: user string copy fault -14 [man error::fault]\nend\n"
    );
    assert!(stderr.contains("WARNING: careful python3"), "{stderr}");
    // error(): the message, the error count, status 1.
    let out = run(&[
        "-e",
        &probe(r#"error("boom " . execname())"#),
        "-c",
        GETPPID,
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ERROR: boom python3 near identifier 'error'"),
        "{stderr}"
    );
    assert_eq!(text(&out.stdout), "error probe\n");
}

#[test]
fn the_parent_task_is_read_through_the_kernels_btf() {
    if !bpf_or_skip() {
        return;
    }
    // The -c command's parent is rstap itself.
    let script = r#"global p, pe
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && execname() == "python3") { p = ppid(); pe = pexecname() }
}
probe end { printf("%d %s\n", p == stp_pid(), pe) }"#;
    let out = run(&["-e", script, "-c", GETPPID]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1 rstap\n");
}

/// The loop's counter and sums live in r8 and r9 (register allocation); the
/// string reads, their faults, the catch block, concatenation and string
/// prints borrow those registers and must hand the values back intact.
#[test]
fn registers_in_r8_and_r9_survive_string_reads_faults_and_catch_blocks() {
    if !bpf_or_skip() {
        return;
    }
    let script = r#"global done
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && !done) {
    done = 1
    sum = 0; caught = 0; s = ""
    for (i = 0; i < 5; i++) {
      try { x = kernel_long(i); sum += x } catch { caught += 1 }
      s = s . "x"
      t = user_string(i, "fb")
      printf("%d %s %s\n", i, s, t)
      sum += i
    }
    printf("%d %d %d %s\n", i, sum, caught, s)
  }
}"#;
    let out = run(&["-e", script, "-c", GETPPID]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "0 x fb\n1 xx fb\n2 xxx fb\n3 xxxx fb\n4 xxxxx fb\n5 10 5 xxxxx\n",
        "the loop's registers should keep their values across the borrowing sequences"
    );
}

#[test]
fn sprintf_results_printed_by_a_kernel_probe_match_the_user_space_engine() {
    if !bpf_or_skip() {
        return;
    }
    let body = r#"
    x = sprintf("%s[%d] %5d|%-4s|%x|%c|%03d", "ab", -7, 42, "ab", 255, 65, 9)
    y = sprint(1, "a", 2)
    printf("%s / %s / %s", x, y, sprintln("line"))
    println(sprintd(",", 1, 2, "three"))
"#;
    let out = run(&["-e", &script(body), "-c", GETPPID]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    let (user, kernel) = halves(&stdout);
    assert_eq!(
        user, "ab[-7]    42|ab  |ff|A|009 / 1a2 / line\n1,2,three\n",
        "{stdout}"
    );
    assert_eq!(user, kernel, "user space vs kernel:\n{stdout}");
}

#[test]
fn a_sprintf_used_as_a_key_in_the_kernel_is_refused_with_a_sentence() {
    if !bpf_or_skip() {
        return;
    }
    let out = run(&[
        "-e",
        r#"global c; probe kernel.trace("syscalls:sys_enter_getppid") { c[sprintf("%d", pid())]++ }"#,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error[E0501]: a `sprintf` whose result the probe uses itself (not only prints) is not supported in kernel-context probes yet"),
        "{err}"
    );
}

#[test]
fn numbers_read_from_user_memory_by_width_and_a_fault_gives_0_or_an_error() {
    if !bpf_or_skip() {
        return;
    }
    let out = run(&[
        "-c",
        "python3 -c 'for _ in range(3): open(\"/proc/version\").close()'",
        "-e",
        r#"global done
probe kernel.trace("syscalls:sys_enter_openat") {
  // The name's page may not be in memory yet at the first open.
  if (pid() == target() && execname() == "python3" && !done
      && user_string($filename, "") == "/proc/version") {
    done = 1
    printf("%d %d %d %d %d\n", user_uint8($filename), user_char($filename + 1),
           user_int16($filename), user_uint32($filename) & 0xff, user_long(0))
    println(user_long_error(0))
  }
}"#,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // '/' is 47, 'p' 112; the two as a little-endian 16-bit number 28719.
    assert_eq!(text(&out.stdout), "47 112 28719 47 0\n");
    assert!(
        text(&out.stderr).contains(
            "ERROR: read fault [man error::fault] at 0x0 near identifier 'user_long_error'"
        ),
        "{}",
        text(&out.stderr)
    );
}

/// kernel_char/short/int/long/pointer and kernel_string/kernel_string_n/
/// kernel_string2 read the current task's own fields, whose values the test knows: its
/// name (perl), its tgid (pid()) and its parent (task_parent()).
#[test]
fn kernel_memory_reads_by_width_read_the_tasks_own_fields() {
    if !bpf_or_skip() {
        return;
    }
    let script = r#"probe syscall.getppid {
  if (pid() != target() || execname() != "perl") next
  t = task_current(); comm = &@cast(t, "task_struct")->comm
  printf("[%s] [%s] [%s] [%s]\n", kernel_string(comm), kernel_string_n(comm, 2), kernel_string(0, "fallback"),
         kernel_string2(0, "fb2"))
  printf("%d %d %d\n", kernel_char(comm), kernel_short(comm), kernel_int(comm) & 0xffffff)
  parent = &@cast(t, "task_struct")->real_parent
  printf("%d %d %d\n", kernel_pointer(parent) == task_parent(t), kernel_long(parent) == task_parent(t),
         kernel_int(&@cast(t, "task_struct")->tgid) == pid())
  exit()
}"#;
    let out = run(&["-e", script, "-c", "perl -e getppid"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // 'p' = 112, "pe" = 112 + 101 * 256, "per" = 25968 + 114 * 65536.
    assert_eq!(
        text(&out.stdout),
        "[perl] [pe] [fallback] [fb2]\n112 25968 7497072\n1 1 1\n"
    );
}
