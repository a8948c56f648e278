//! The `rstap` command line as users meet it: exit statuses, where output goes,
//! script sources (file, -e, stdin), and diagnostics with the source line and a caret.

use rstap_tests::{run_rstap, workspace};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn tmp() -> std::path::PathBuf {
    std::env::temp_dir()
}

#[test]
fn p1_of_an_inline_script_prints_the_parse_tree() {
    let out = run_rstap(&["-p1", "-e", "probe begin { x = 1 + 2 * 3 }"], &tmp());
    assert!(
        out.status.success(),
        "rstap -p1 -e failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "# parse tree dump\n# file <input>\nprobe begin{\n(x) = ((1) + ((2) * (3)));\n}\n\n"
    );
}

#[test]
fn script_arguments_substitute() {
    let out = run_rstap(
        &[
            "-p1",
            "-e",
            "probe begin { println($1 + 1, @2, $#) }",
            "41",
            "two",
        ],
        &tmp(),
    );
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("println((41) + (1), \"two\", 2);"));
}

#[test]
fn a_script_file_is_named_as_given_and_stdin_is_input() {
    let dir = tmp().join(format!("rstap-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    std::fs::write(dir.join("s.stp"), "probe end { exit() }\n")
        .unwrap_or_else(|e| panic!("cannot write: {e}"));
    let out = run_rstap(&["-p1", "./s.stp"], &dir);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("# parse tree dump\n# file ./s.stp\n")
    );

    let mut child = Command::new(rstap_tests::rstap())
        .args(["-p1", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"));
    child
        .stdin
        .take()
        .map(|mut s| s.write_all(b"probe begin { }"))
        .unwrap_or_else(|| panic!("no stdin pipe"))
        .unwrap_or_else(|e| panic!("cannot write the script to stdin: {e}"));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("rstap did not finish: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "# parse tree dump\n# file <input>\nprobe begin{\n}\n\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_parse_error_shows_the_line_and_a_caret_and_exits_1() {
    let out = run_rstap(&["-p1", "-e", "probe begin {\n  x = (1 + 2\n}"], &tmp());
    assert_eq!(
        out.status.code(),
        Some(1),
        "a parse error must exit with status 1"
    );
    assert!(out.stdout.is_empty(), "nothing may go to stdout on error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error[E0120]"), "no error code in:\n{err}");
    assert!(err.contains("<input>:3:1"), "no file:line:col in:\n{err}");
    assert!(
        err.contains("2 │   x = (1 + 2"),
        "the source line is missing from:\n{err}"
    );
    assert!(err.contains('^'), "no caret in:\n{err}");
    assert!(!err.contains("panicked"), "rstap panicked:\n{err}");
}

#[test]
fn a_missing_argument_is_reported_like_stap() {
    let out = run_rstap(&["-p1", "-e", "probe begin { x = $2 }", "only-one"], &tmp());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("command line argument out of range [1-1]")
    );
}

#[test]
fn bad_options_and_missing_files_exit_1_with_one_clear_line() {
    for args in [
        &["--no-such-option"][..],
        &["-p", "9", "-e", "probe begin {}"],
        &["/no/such/script.stp"],
        &[],
    ] {
        let out = run_rstap(args, &tmp());
        assert_eq!(out.status.code(), Some(1), "rstap {args:?} should exit 1");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.trim().is_empty() && !err.contains("panicked"),
            "rstap {args:?} printed: {err}"
        );
    }
}

#[test]
fn embedded_c_needs_guru_mode() {
    let script = "function f:long () %{ STAP_RETVALUE = 1; %}\nprobe begin { f() }";
    let out = run_rstap(&["-p1", "-e", script], &tmp());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("need -g"));
    let out = run_rstap(&["-g", "-p1", "-e", script], &tmp());
    assert!(
        out.status.success(),
        "with -g embedded C must parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_examples_parse() {
    let dir = workspace().join("examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
    {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.extension().is_some_and(|x| x == "stp") {
            // Parsing needs the arguments a script reads, not what they name.
            let args = rstap_tests::example_args(&name).unwrap_or_else(|| vec!["x".into(); 2]);
            let mut argv = vec!["-p1".to_string(), p.to_string_lossy().into_owned()];
            argv.extend(args);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let out = run_rstap(&argv, &dir);
            assert!(
                out.status.success(),
                "{} does not parse: {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n > 0, "no example scripts found in {}", dir.display());
}

#[test]
fn p4_writes_the_bpf_object_as_an_elf_file() {
    let dir = tmp();
    let object = dir.join("dropwatch.o");
    let script = workspace().join("examples/dropwatch.stp");
    let p4 = |out: &Path| {
        run_rstap(
            &[
                "-p4",
                "-o",
                &out.to_string_lossy(),
                &script.to_string_lossy(),
            ],
            &dir,
        )
    };
    let out = p4(&object);
    if !out.status.success() {
        // -p4 needs the live tracepoint formats (tracefs, as root).
        rstap_tests::skip_or_fail(&format!(
            "rstap -p4 could not read kernel facts: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
        return;
    }
    let bytes = std::fs::read(&object).expect("the object file was written");
    assert_eq!(&bytes[..4], b"\x7fELF", "an ELF file");
    assert_eq!(
        u16::from_le_bytes([bytes[18], bytes[19]]),
        247,
        "e_machine is EM_BPF"
    );
    // Over a longer file (written in place, then cut): exactly the object,
    // the same bytes as before, nothing of the old file after them; and a
    // device is written, not cut to length.
    std::fs::write(&object, vec![b'x'; bytes.len() * 3]).expect("a longer file");
    for target in [object.as_path(), Path::new("/dev/null")] {
        let again = p4(target);
        assert!(
            again.status.success(),
            "{}: {}",
            target.display(),
            String::from_utf8_lossy(&again.stderr)
        );
    }
    assert_eq!(std::fs::read(&object).expect("rewritten"), bytes);
}

#[test]
fn an_undeclared_array_is_taken_as_a_global_with_a_warning() {
    // stap refuses this without `global n`; rstap declares it, as bpftrace
    // does its @maps, and says so.
    let out = run_rstap(
        &[
            "-e",
            r#"probe begin { n["a"] <<< 3; n["a"] <<< 5; exit() }"#,
        ],
        &tmp(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "n[\"a\"] @count=2 @min=3 @max=5 @sum=8 @avg=4\n"
    );
    assert!(
        stderr.contains("warning[E0214]: 'n' is not declared: taken as a global array"),
        "{stderr}"
    );
    let quiet = run_rstap(
        &["-w", "-e", r#"probe begin { n["a"] <<< 3; exit() }"#],
        &tmp(),
    );
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "", "-w silences it");
}
