//! The stap options beyond the basics, over the real binary: `-E`, `-W`, `-I`,
//! `-m`, `--format=json`, `--color`, `-vv`, the `--dump-*` introspection,
//! `--completions`, `--man`, and `--help` as a snapshot.

use rstap_tests::{bpf_or_skip, python_or_skip, rstap, rstap_output, run_rstap, text};
use std::path::PathBuf;
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rstap-options-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "rstap failed ({:?}): {}",
        out.status.code(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn failed(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1; stdout: {} stderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

#[test]
fn help_is_stable() {
    let out = rstap_output(&["--help"]);
    insta::assert_snapshot!("help", ok(&out));
}

#[test]
fn extra_scripts_run_beside_the_main_one() {
    let out = rstap_output(&[
        "-E",
        "probe begin(1) { println(\"second: \", @1) }",
        "-E",
        "probe begin(2) { println(\"third\") }",
        "-e",
        "probe begin { println(\"first\") } probe begin(3) { exit() }",
        "arg",
    ]);
    assert_eq!(ok(&out), "first\nsecond: arg\nthird\n");
}

#[test]
fn an_error_in_an_extra_script_names_it() {
    let err = failed(&rstap_output(&[
        "-E",
        "probe begin { x = }",
        "-e",
        "probe begin { exit() }",
    ]));
    assert!(err.contains("<input2>:1:"), "{err}");
}

#[test]
fn warnings_become_errors_with_capital_w() {
    let script = "global a; probe begin { a = 1; b = 2; exit() }";
    let out = rstap_output(&["-e", script]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    let err = failed(&rstap_output(&["-W", "-e", script]));
    assert!(err.contains("2 warnings treated as errors (-W)"), "{err}");
    // -w and -W together make no sense.
    let err = failed(&rstap_output(&["-w", "-W", "-e", script]));
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn include_dirs_add_tapsets_and_macros() {
    let dir = scratch("tapsets");
    std::fs::create_dir_all(dir.join("sub")).unwrap_or_else(|e| panic!("mkdir: {e}"));
    std::fs::write(
        dir.join("greet.stp"),
        "function greet:string (who:string) { return \"hello, \" . who . @EXCLAIM }\n",
    )
    .unwrap_or_else(|e| panic!("write: {e}"));
    std::fs::write(dir.join("sub/bang.stpm"), "@define EXCLAIM %( \"!\" %)\n")
        .unwrap_or_else(|e| panic!("write: {e}"));
    std::fs::write(
        dir.join("sub/twice.stp"),
        "function twice(n) { return 2 * n }\nprobe my.start = begin { who = \"alias\" }\n",
    )
    .unwrap_or_else(|e| panic!("write: {e}"));
    let d = dir.to_string_lossy();
    let out = rstap_output(&[
        "-I",
        &d,
        "-e",
        "probe my.start { println(greet(who), \" \", twice(21)); exit() }",
    ]);
    assert_eq!(ok(&out), "hello, alias! 42\n");
    // Without -I the names are unknown.
    failed(&rstap_output(&[
        "-e",
        "probe begin { println(greet(\"x\")) }",
    ]));
    // The dumps see the user's tapsets too.
    let functions = ok(&rstap_output(&["-I", &d, "--dump-functions"]));
    assert!(
        functions.lines().any(|l| l == "greet:string (who:string)"),
        "{functions}"
    );
    assert!(
        functions.lines().any(|l| l == "twice:long (n:long)"),
        "{functions}"
    );
    let aliases = ok(&rstap_output(&["-I", &d, "--dump-probe-aliases"]));
    assert!(
        aliases.lines().any(|l| l == "my.start = begin"),
        "{aliases}"
    );
    let err = failed(&rstap_output(&[
        "-I",
        "/no/such/dir",
        "-e",
        "probe begin {}",
    ]));
    assert!(
        err.starts_with("rstap: -I /no/such/dir: cannot read the tapset directory"),
        "{err}"
    );
}

#[test]
fn module_name_names_the_object_file() {
    let dir = scratch("module");
    let out = run_rstap(
        &[
            "-p4",
            "-m",
            "counter_1",
            "-e",
            "global n; probe kernel.trace(\"sched:sched_switch\") { n++ }",
        ],
        &dir,
    );
    if !out.status.success() && !bpf_or_skip() {
        return;
    }
    assert_eq!(ok(&out), "counter_1.bo\n");
    let bytes =
        std::fs::read(dir.join("counter_1.bo")).unwrap_or_else(|e| panic!("no object: {e}"));
    assert_eq!(&bytes[..4], b"\x7fELF");
    for bad in ["has-dash", "", "much_too_long_a_name"] {
        let err = failed(&run_rstap(
            &["-p4", "-m", bad, "-e", "probe begin {}"],
            &dir,
        ));
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("module name"), "{err}");
    }
}

#[test]
fn json_records_printed_output_and_unread_globals() {
    let out = rstap_output(&[
        "--format=json",
        "-e",
        r#"global n, s, c, h, t
probe begin {
  printf("a=%d\n", 1); println("line"); print("\xff")
  n = 7; t = "q\"uote"
  c["x", 1] = 3; c["y", 2] = 5
  s <<< 4; s <<< 6
  h <<< 1; h <<< 9
  exit()
}
probe end { print(@hist_linear(h, 0, 10, 5)) }"#,
    ]);
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], r#"{"type":"printf","data":"a=1\n"}"#);
    assert_eq!(lines[1], r#"{"type":"print","data":"line\n"}"#);
    assert_eq!(lines[2], "{\"type\":\"print\",\"data\":\"\u{fffd}\"}");
    assert!(
        lines[3].starts_with(r#"{"type":"histogram","kind":"linear""#),
        "{}",
        lines[3]
    );
    // h is read by the end probe, so it is not shown; the rest are, in the
    // order the script first uses them, arrays largest value first.
    assert_eq!(
        &lines[4..],
        [
            r#"{"type":"global","name":"n","value":7}"#,
            r#"{"type":"global","name":"t","value":"q\"uote"}"#,
            r#"{"type":"global","name":"c","entries":[{"key":["y",2],"value":5},{"key":["x",1],"value":3}]}"#,
            r#"{"type":"global","name":"s","value":{"count":2,"sum":10,"min":4,"max":6,"avg":5}}"#,
        ]
    );
}

#[test]
fn json_reports_warnings_and_errors_as_records() {
    let out = rstap_output(&[
        "--format=json",
        "-e",
        r#"probe begin {
  warn("careful")
  println(1 / zero())
}
function zero() { return 0 }
probe end { println("not reached") }"#,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"type\":\"warning\",\"message\":\"careful\"}\n\
         {\"type\":\"error\",\"message\":\"division by 0\",\"near\":\"operator '/' at <input>:3:13\"}\n"
    );
    // stderr keeps the human-readable report.
    let err = text(&out.stderr);
    assert!(err.contains("WARNING: careful"), "{err}");
    assert!(
        err.contains("ERROR: division by 0 near operator '/' at <input>:3:13"),
        "{err}"
    );
}

#[test]
fn json_histograms_are_bucket_lists() {
    let out = rstap_output(&[
        "--format=json",
        "-e",
        r#"global lg, ln
probe begin {
  lg <<< 1; lg <<< 2; lg <<< 3; lg <<< 100
  ln <<< -1; ln <<< 12; ln <<< 13; ln <<< 99
  print(@hist_log(lg)); print(@hist_linear(ln, 0, 50, 10))
  exit()
}"#,
    ]);
    assert_eq!(
        ok(&out),
        "{\"type\":\"histogram\",\"kind\":\"log\",\"buckets\":[{\"value\":1,\"count\":1},{\"value\":2,\"count\":2},{\"value\":64,\"count\":1}]}\n\
         {\"type\":\"histogram\",\"kind\":\"linear\",\"start\":0,\"interval\":10,\"underflow\":1,\"buckets\":[{\"value\":10,\"count\":2}],\"overflow\":1}\n"
    );
    // The same histogram as text is stap's ASCII art.
    let out = rstap_output(&[
        "-e",
        "global lg; probe begin { lg <<< 1; lg <<< 2; lg <<< 3; lg <<< 100; print(@hist_log(lg)); exit() }",
    ]);
    assert!(ok(&out).starts_with("value |---"));
}

#[test]
fn json_counts_kernel_events_exactly() {
    if !bpf_or_skip() || !python_or_skip() {
        return;
    }
    let out = rstap_output(&[
        "--format=json",
        "-c",
        "python3 -c 'import os\nfor _ in range(250): os.getppid()'",
        "-e",
        r#"global calls, by_comm
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && execname() == "python3") { calls++; by_comm[execname()] <<< 2 }
}"#,
    ]);
    let stdout = ok(&out);
    assert_eq!(
        stdout,
        "{\"type\":\"global\",\"name\":\"calls\",\"value\":250}\n\
         {\"type\":\"global\",\"name\":\"by_comm\",\"entries\":[{\"key\":[\"python3\"],\"value\":{\"count\":250,\"sum\":500,\"min\":2,\"max\":2,\"avg\":2}}]}\n"
    );
}

#[test]
fn json_lines_parse_with_jq() {
    let Ok(jq) = Command::new("jq").arg("--version").output() else {
        rstap_tests::skip_or_fail("jq is not installed");
        return;
    };
    assert!(jq.status.success());
    let out = rstap_output(&[
        "--format=json",
        "-e",
        r#"global c; probe begin { for (i = 0; i < 5; i++) { printf("%d\n", i); c[i % 2] += i }; exit() }"#,
    ]);
    let stdout = ok(&out);
    let mut child = Command::new("jq")
        .args(["-r", "-s", r#"[.[] | select(.type == "global") | .entries[] | "\(.key[0])=\(.value)"] | join(",")"#])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("jq: {e}"));
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap_or_else(|| panic!("no stdin")),
        stdout.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("write: {e}"));
    let parsed = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("jq: {e}"));
    assert!(parsed.status.success(), "jq refused: {stdout}");
    // 0+2+4 = 6 under key 0, 1+3 = 4 under key 1.
    assert_eq!(text(&parsed.stdout), "0=6,1=4\n");
}

#[test]
fn color_follows_the_option() {
    let bad = ["-e", "probe begin { x = }"];
    let never = failed(&rstap_output(&[&["--color=never"][..], &bad[..]].concat()));
    assert!(!never.contains('\x1b'), "{never}");
    let always = failed(&rstap_output(&[&["--color=always"][..], &bad[..]].concat()));
    assert!(always.contains("\x1b["), "{always}");
    // auto in a pipe: no colour.
    let auto = failed(&rstap_output(&bad));
    assert!(!auto.contains('\x1b'), "{auto}");
    let err = failed(&rstap_output(&[
        "--color=sometimes",
        "-e",
        "probe begin {}",
    ]));
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn double_v_shows_the_verifiers_log() {
    if !bpf_or_skip() {
        return;
    }
    let script = "global n; probe kernel.trace(\"sched:sched_switch\") { n++ } probe timer.ms(20) { exit() }";
    let vv = rstap_output(&["-vv", "-e", script]);
    let err = text(&vv.stderr);
    assert!(vv.status.success(), "{err}");
    assert!(
        err.contains("verifier log of kernel.trace(\"sched:sched_switch\"):"),
        "{err}"
    );
    assert!(err.contains("processed "), "{err}");
    let v = rstap_output(&["-v", "-e", script]);
    assert!(
        !text(&v.stderr).contains("verifier log"),
        "{}",
        text(&v.stderr)
    );
}

#[test]
fn every_dumped_probe_type_resolves() {
    let types = ok(&rstap_output(&["--dump-probe-types"]));
    let mut sorted: Vec<&str> = types.lines().collect();
    sorted.sort_unstable();
    assert_eq!(types.lines().collect::<Vec<_>>(), sorted, "not sorted");
    assert!(types.lines().count() > 40, "{types}");
    for line in types.lines() {
        // Families that need kernel functions, modules or a binary's symbols
        // are checked by their own tests.
        if line.contains("function(") || line.contains("process(") {
            continue;
        }
        let point = line
            .replace("trace(string)", "trace(\"sched:sched_switch\")")
            .replace("randomize(number)", "randomize(1)")
            .replace("(number)", "(10)");
        let script = format!("probe {point} {{ }}");
        let out = rstap_output(&["-u", "-p2", "-e", &script]);
        assert!(out.status.success(), "{point}: {}", text(&out.stderr));
    }
}

#[test]
fn dumped_functions_have_stap_signatures() {
    let functions = ok(&rstap_output(&["--dump-functions"]));
    for want in [
        "execname:string ()",
        "pid:long ()",
        "exit:unknown ()",
        "substr:string (str:string, start:long, length:long)",
    ] {
        assert!(
            functions.lines().any(|l| l == want),
            "{want} missing from:\n{functions}"
        );
    }
    for line in functions.lines() {
        let ok = line
            .split_once(':')
            .is_some_and(|(_, rest)| rest.contains(" (") && rest.ends_with(')'));
        assert!(ok, "not name:type (params): {line}");
    }
}

#[test]
fn dumped_aliases_show_their_expansions() {
    let aliases = ok(&rstap_output(&["--dump-probe-aliases"]));
    assert!(
        aliases
            .lines()
            .any(|l| l == "scheduler.ctxswitch = kernel.trace(\"sched:sched_switch\")"),
        "{aliases}"
    );
    // Generated from this kernel's syscall tracepoints, where they exist.
    if rstap_tests::is_root() {
        assert!(
            aliases
                .lines()
                .any(|l| l.starts_with("syscall.openat = kernel.trace(")),
            "{aliases}"
        );
    }
}

#[test]
fn completions_and_man_page_come_from_the_same_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&rstap_output(&["--completions", shell]));
        assert!(script.contains("format"), "{shell}: {script}");
        assert!(script.contains("runtime"), "{shell}: {script}");
    }
    let err = failed(&rstap_output(&["--completions", "tcsh"]));
    assert_eq!(err.lines().count(), 1, "{err}");
    let man = ok(&rstap_output(&["--man"]));
    assert!(man.contains(".TH rstap 1"), "{man}");
    assert!(man.contains("runtime"), "{man}");
    assert!(man.contains("dump\\-functions"), "{man}");
}

#[test]
fn bad_values_of_new_options_are_one_line() {
    for args in [
        &["--format=xml", "-e", "probe begin {}"][..],
        &["--runtime=kernel", "-e", "probe begin {}"][..],
        &["--dump-functions", "-e", "probe begin {}"][..],
    ] {
        let err = failed(&rstap_output(args));
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("rstap: "), "{err}");
    }
}

#[test]
fn stdin_script_with_arguments() {
    let mut child = Command::new(rstap())
        .args(["-", "7"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"));
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap_or_else(|| panic!("no stdin")),
        b"probe begin { println($1 * 6); exit() }\n",
    )
    .unwrap_or_else(|e| panic!("write: {e}"));
    drop(child.stdin.take());
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait: {e}"));
    assert_eq!(ok(&out), "42\n");
}

#[test]
fn version_and_short_help() {
    let v = ok(&rstap_output(&["-V"]));
    assert_eq!(v, format!("rstap {}\n", env!("CARGO_PKG_VERSION")));
    let h = ok(&rstap_output(&["-h"]));
    assert!(h.starts_with("Run SystemTap scripts with BPF"), "{h}");
    assert!(h.contains("--format <FORMAT>"), "{h}");
}

#[test]
fn dash_x_makes_a_running_process_the_target() {
    // In user context target() is simply the pid given.
    let out = rstap_output(&[
        "-x",
        "4242",
        "-e",
        "probe begin { println(target()); exit() }",
    ]);
    assert_eq!(ok(&out), "4242\n");
    if !bpf_or_skip() || !python_or_skip() {
        return;
    }
    // A process that was already running: only its getppid calls count.
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import os, time\nwhile True:\n    os.getppid()\n    time.sleep(0.001)",
        ])
        .spawn()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    let pid = child.id().to_string();
    let out = rstap_output(&[
        "-x",
        &pid,
        "-T",
        "1",
        "-e",
        r#"global mine, others
probe kernel.trace("syscalls:sys_enter_getppid") { if (pid() == target()) mine++; else others++ }
probe end { printf("%d %d %d\n", mine > 100, target(), others >= 0) }"#,
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ok(&out), format!("1 {pid} 1\n"));
}
