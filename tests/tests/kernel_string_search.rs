//! Kernel tier: the string built-ins that take strings apart — `substr`,
//! `stringat`, `isinstr` — and the tapset functions written over them
//! (`strpos`, `isdigit`, `tokenize`) give in a tracepoint handler what the
//! user-space engine gives for the same text in a begin probe, edge cases
//! and runtime errors included.

use rstap_tests::{bpf_or_skip, rstap_output as run, text};

/// Each written once, run in a begin probe and in a tracepoint handler (two
/// handlers: one would need more than BPF's stack for its locals). The
/// searches cover both forms: unrolled (`s` for "wor", 16 starts by 8 needle
/// bytes) and looping (`w` for "d h", `s` for itself).
const BUILTINS: &str = r#"
    s = "hello world"; e = "python3"; n = ""; w = s . " " . s . " " . s . " " . s
    printf("%d %d %d %d %d %d %d %d\n", isinstr(s, "wor"), isinstr(s, "worlds"), isinstr(s, ""),
           isinstr(n, ""), isinstr(n, "a"), isinstr(e, "on3"), isinstr(s, s), isinstr(w, "d h"))
    printf("[%s][%s][%s][%s][%s][%s][%s][%s]\n", substr(s, 0, 4), substr(s, 6, 100),
           substr(s, -1, 3), substr(s, 11, 2), substr(s, 3, 0), substr(s, 2, -1),
           substr(s, 10, 1), substr(w, 40, 30))
    printf("%d %d %d\n", stringat(s, 0), stringat(s, 10), stringat(e, 6))
    try { println(stringat(s, 11)) } catch (m) { println("caught: ", m) }
    try { println(stringat(s, -1)) } catch (m) { println("caught: ", m) }
    try { println(stringat(n, 0)) } catch (m) { println("caught: ", m) }
    t = s; t = substr(t, 1, 4); println(t)
"#;

/// Results of tapset functions go through `+ 0` or `. ""`, so the kernel
/// computes them (a result that is only printed is computed in user space).
const TAPSET: &str = r#"
    s = "hello world"; w = s . " " . s . " " . s . " " . s
    if (substr(s, 0, 5) == "hello" && isinstr(s, "o w") && stringat(s, 4) == 111) println("filters")
    printf("%d %d %d %d\n", strpos(s, "o") + 0, strpos(s, "xyz") + 0, strpos(s, "") + 0, strpos(w, "d h") + 0)
    printf("%d %d %d\n", isdigit("7a") + 0, isdigit("a7") + 0, isdigit("") + 0)
"#;

/// `tokenize()`, whose byte scans are `bpf_loop` callbacks in the kernel:
/// its state (the string and where it is) lives in tapset globals.
const TOKENIZE: &str = r#"
    printf("[%s]", tokenize("  alpha, beta,,gamma ", " ,"))
    printf("[%s]", tokenize(" ,")); printf("[%s]", tokenize(" ,"))
    printf("[%s]\n", tokenize(" ,"))
    printf("[%s][%s]\n", tokenize("k=v=w", "="), tokenize("", ""))
    printf("%d\n", tokenize("x;y", ";") == "x")
"#;

/// The expected output of each body.
const EXPECTED: [&str; 3] = [
    "1 0 1 1 0 1 1 1\n\
     [hell][world][][][][][d][o world]\n\
     104 100 51\n\
     caught: Position out of bounds\n\
     caught: Position out of bounds\n\
     caught: Position out of bounds\n\
     ello\n",
    "filters\n\
     4 -1 0 10\n\
     1 0 0\n",
    "[alpha][beta][gamma][]\n\
     [k][v=w]\n\
     1\n",
];

fn script(body: &str) -> String {
    format!(
        r#"global done
probe begin {{ printf("user\n"); {body} }}
probe kernel.trace("syscalls:sys_enter_getppid") {{
  if (pid() == target() && execname() == "python3" && !done) {{ done = 1; printf("kernel\n"); {body} }}
}}"#
    )
}

const GETPPID: &str = "python3 -c 'import os; os.getppid()'";

/// The begin probe's output and the tracepoint's.
fn halves(out: &str) -> (String, String) {
    let (user, kernel) = out.split_once("kernel\n").unwrap_or((out, ""));
    (
        user.trim_start_matches("user\n").to_string(),
        kernel.to_string(),
    )
}

#[test]
fn substr_stringat_and_isinstr_in_the_kernel_match_the_user_space_engine() {
    if !bpf_or_skip() {
        return;
    }
    for (body, expected) in [BUILTINS, TAPSET, TOKENIZE].into_iter().zip(EXPECTED) {
        let out = run(&["-e", &script(body), "-c", GETPPID]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
        let (user, kernel) = halves(&stdout);
        assert_eq!(user, expected, "the user-space engine:\n{stdout}");
        assert_eq!(user, kernel, "user space vs kernel:\n{stdout}");
    }
}

#[test]
fn maxstringlen_bounds_the_kernels_string_searches_as_it_does_user_spaces() {
    if !bpf_or_skip() {
        return;
    }
    for body in [BUILTINS, TAPSET, TOKENIZE] {
        let out = run(&["-D", "MAXSTRINGLEN=16", "-e", &script(body), "-c", GETPPID]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
        let (user, kernel) = halves(&stdout);
        assert!(user.len() > 20, "{stdout}");
        assert_eq!(user, kernel, "user space vs kernel:\n{stdout}");
    }
}

/// The filters real scripts write, on the event's own strings.
#[test]
fn a_handler_filters_on_parts_of_the_tasks_name_and_a_path() {
    if !bpf_or_skip() {
        return;
    }
    let script = r#"global hits, seen
probe kernel.trace("syscalls:sys_enter_openat") {
  if (pid() != target() || !isinstr(execname(), "ython")) next
  f = user_string($filename, "")
  if (substr(f, 0, 5) == "/etc/" && stringat(f, 5) == 104) { hits++; seen[substr(f, 5, 4)] = 1 }
}
probe end { foreach (k in seen) printf("%s ", k); println(hits) }"#;
    let out = run(&[
        "-e",
        script,
        "-c",
        "python3 -c 'open(\"/etc/hostname\").read(); open(\"/etc/hosts\").read(); open(\"/etc/passwd\").read()'",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "host 2\n");
}
