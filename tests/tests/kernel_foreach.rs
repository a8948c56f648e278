//! Kernel tier: `foreach` in kernel-context handlers (over long and string
//! keys, with slices, `limit`, `break` and `continue`, and the element's
//! value) and `delete` of a whole array compute what the same script text
//! computes in a begin probe; sorted foreach is refused with a sentence.

use rstap_tests::{bpf_or_skip, rstap_output as run, text};

/// Walks whose results do not depend on the order of the walk.
const BODY: &str = r#"
    delete {p}a; delete {p}b
    for (i = 1; i <= 40; i++) {p}a[i] = i * i
    {p}b["x", 1] = 5; {p}b["other", 2] = 7; {p}b["x", 3] = 9; {p}b["y", 4] = 11
    s = 0; v = 0; n = 0
    foreach (k in {p}a) { s += k; v += {p}a[k] }
    foreach (k in {p}a limit 7) n++
    foreach ([k] in {p}a) { if (k % 2) continue; n += 1000 }
    t = 0; m = 0
    foreach ([name, x] in {p}b["x", *]) t += x
    foreach ([name, x] in {p}b[*, 2]) m += x
    w = 0
    foreach ([name, x] in {p}b) { if (name == "other") continue; w += x * 100 + strlen(name) }
    f = 0
    foreach ([name, x] in {p}b) { f++; if (f == 2) break }
    delete {p}a; e = 0
    foreach (k in {p}a) e++
    printf("%d %d %d %d %d %d %d %d %d\n", s, v, n, t, m, w, f, e, [1] in {p}a)
"#;

#[test]
fn foreach_in_the_kernel_matches_the_user_space_engine() {
    if !bpf_or_skip() {
        return;
    }
    let user = BODY.replace("{p}", "u");
    let kernel = BODY.replace("{p}", "k");
    let script = format!(
        r#"global ua, ub, ka, kb, done
probe begin {{ {user} }}
probe kernel.trace("syscalls:sys_enter_getppid") {{
  if (pid() == target() && !done) {{ done = 1; {kernel} }}
}}"#
    );
    let out = run(&["-c", "python3 -c 'import os; os.getppid()'", "-e", &script]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().take(2).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(
        lines[0], "820 22140 20007 4 2 803 2 0 0",
        "user space: {stdout}"
    );
    assert_eq!(lines[0], lines[1], "user space vs kernel:\n{stdout}");
}

#[test]
fn sorted_foreach_in_the_kernel_is_refused_with_a_sentence() {
    if !bpf_or_skip() {
        return;
    }
    let out = run(&[
        "-e",
        r#"global a; probe kernel.trace("syscalls:sys_enter_getppid") { a[1] = 1; foreach (k+ in a) println(k) }"#,
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("sorted foreach cannot run in a kernel-context probe"),
        "{stderr}"
    );
}
