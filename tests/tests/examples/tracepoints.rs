//! Kernel tier: the examples over tracepoints, syscalls and the tapset families,
//! each with a workload its test drives.

use super::*;

#[test]
fn syscalls_by_proc_counts_a_childs_getppid_calls() {
    if !python_ok() {
        return;
    }
    let py = python_executable();
    let out = traced(
        "syscalls_by_proc.stp",
        &python("import os\nfor i in range(20000): os.getppid()"),
        &[],
    );
    assert!(
        out.starts_with("PROCESS                SYSCALLS  SHARE\n"),
        "{out}"
    );
    let row = rows(&out, &[&comm_of(&py)]);
    assert!(!row.is_empty(), "a row for {py} expected:\n{out}");
    let n = numbers(row[0]);
    assert!(
        n.len() == 2 && n[0] >= 20000 && (0..=100).contains(&n[1]) && row[0].ends_with('%'),
        "at least 20000 calls and a share: {}\n{out}",
        row[0]
    );
}

#[test]
fn dropwatch_reports_datagrams_to_a_closed_port_after_five_seconds() {
    if !python_ok() {
        return;
    }
    let _alone = rstap_tests::serial();
    // The report comes from a five-second timer: the child outlives it.
    let out = traced(
        "dropwatch.stp",
        &python(
            "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(23): s.sendto(b\"x\", (\"127.0.0.1\", 9))\ntime.sleep(5.5)",
        ),
        &[],
    );
    assert!(out.starts_with("Monitoring for dropped packets\n"), "{out}");
    assert!(out.ends_with("Stopping dropped packet monitor\n"), "{out}");
    let udp = out
        .lines()
        .find(|l| l.ends_with(" packets dropped at __udp4_lib_rcv"))
        .unwrap_or_else(|| panic!("the datagrams' drops at __udp4_lib_rcv expected:\n{out}"));
    assert!(numbers(udp)[0] >= 23, "at least the 23 datagrams: {out}");
}

#[test]
fn runqueue_latency_sees_a_sleeping_childs_wakeups() {
    if !python_ok() {
        return;
    }
    let out = traced(
        "runqueue_latency.stp",
        &python("import time\nfor i in range(100): time.sleep(0.001)"),
        &[],
    );
    let head = line_starting(&out, "run queue latency (us): ");
    let n = numbers(head);
    assert!(n.len() == 3 && n[0] >= 100, "at least 100 wakeups: {out}");
    assert_eq!(
        histogram_total(&out),
        n[0],
        "the histogram holds every sample:\n{out}"
    );
}

#[test]
fn opensnoop_shows_each_open_of_a_named_file_with_its_result() {
    if !kernel_ok() {
        return;
    }
    let dir = scratch("opensnoop");
    let file = dir.join("opened five times");
    std::fs::write(&file, "x\n").expect("write the file to open");
    let path = file.display().to_string();
    let missing = dir.join("never there").display().to_string();
    // The shell opens redirections itself: the opens are the target's.
    let out = traced(
        "opensnoop.stp",
        &format!(
            "sh -c 'for i in 1 2 3 4 5; do read x < \"{path}\"; done; read x < \"{missing}\" 2>/dev/null; true'"
        ),
        &[],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.starts_with("    PID COMM             RESULT       PATH\n"),
        "{out}"
    );
    let opened: Vec<&str> = out.lines().filter(|l| l.ends_with(&path)).collect();
    assert_eq!(opened.len(), 5, "five opens of {path}:\n{out}");
    for l in &opened {
        let w: Vec<&str> = l.split_whitespace().collect();
        assert!(
            w[0].parse::<i64>().is_ok()
                && w[1] == "sh"
                && w[2].parse::<i64>().is_ok_and(|fd| fd >= 0),
            "pid, sh and a descriptor: {l}"
        );
    }
    let failed: Vec<&str> = out.lines().filter(|l| l.ends_with(&missing)).collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(
        failed[0].contains(" sh               -2 (ENOENT)  "),
        "{out}"
    );
}

#[test]
fn execsnoop_shows_each_exec_with_its_arguments_and_failures() {
    if !kernel_ok() {
        return;
    }
    let mark = format!("rstap-exec-mark-{}", std::process::id());
    let out = traced(
        "execsnoop.stp",
        &format!(
            "sh -c '/bin/true {mark} 1; /bin/true {mark} 2; /bin/true {mark} 3; /nonexistent/prog {mark} 2>/dev/null; true'"
        ),
        &[],
    );
    assert!(
        out.starts_with("    PID    PPID COMM              RET ARGS\n"),
        "{out}"
    );
    for i in 1..=3 {
        let args = format!("[\"/bin/true\", \"{mark}\", \"{i}\"]");
        let found: Vec<&str> = out.lines().filter(|l| l.ends_with(&args)).collect();
        assert_eq!(found.len(), 1, "one exec of {args}:\n{out}");
        let w: Vec<&str> = found[0].split_whitespace().collect();
        assert!(
            w[2] == "true" && w[3] == "0",
            "named after the new program, 0: {}",
            found[0]
        );
    }
    let args = format!("[\"/nonexistent/prog\", \"{mark}\"]");
    let failed: Vec<&str> = out.lines().filter(|l| l.ends_with(&args)).collect();
    assert_eq!(failed.len(), 1, "{out}");
    let w: Vec<&str> = failed[0].split_whitespace().collect();
    assert!(
        w[2] == "sh" && w[3] == "-2",
        "a failed exec keeps the shell's name: {}",
        failed[0]
    );
}

#[test]
fn readlatency_counts_a_childs_reads_and_their_bytes() {
    if !kernel_ok() {
        return;
    }
    let out = traced(
        "readlatency.stp",
        "dd if=/dev/zero of=/dev/null bs=4096 count=300 status=none",
        &[],
    );
    let head = out
        .lines()
        .find(|l| l.contains(" reads, "))
        .unwrap_or_else(|| panic!("a summary line expected:\n{out}"));
    let n = numbers(head);
    // dd's 300 reads of 4096 bytes and the dynamic loader's few; rstap sets
    // target() a moment after the probes attach, so another process's reads
    // may slip in before it: the bounds say "the child's", not "everyone's".
    assert!(
        n.len() == 4 && n[0] >= 300 && n[0] < 1000 && n[1] >= 300 * 4096 && n[1] < 2 * 300 * 4096,
        "{head}"
    );
    assert!(head.ends_with(" us"), "{head}");
    assert_eq!(
        histogram_total(&out),
        n[0],
        "the histogram holds every read:\n{out}"
    );
}

#[test]
fn biolatency_sees_direct_writes_on_their_device() {
    if !kernel_ok() {
        return;
    }
    let _alone = rstap_tests::serial();
    // Direct I/O goes to the disk at once; the file must be on a block device.
    let dir = workspace()
        .join("target")
        .join(format!("rstap-bio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let file = dir.join("direct");
    let out = traced(
        "biolatency.stp",
        &format!(
            "dd if=/dev/zero of={} bs=4096 count=20 oflag=direct status=none",
            file.display()
        ),
        &[],
    );
    let dev = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&file).map(|m| m.dev()).unwrap_or(0)
    };
    let _ = std::fs::remove_dir_all(&dir);
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    for line in out.lines().filter(|l| l.starts_with("device ")) {
        let n = numbers(line);
        assert!(n.len() == 5 && n[2] > 0 && line.ends_with(" us"), "{line}");
    }
    if major == 0 {
        skip_or_fail(
            "the scratch file is not on a block device: only the output's shape was checked",
        );
        return;
    }
    let line = line_starting(&out, &format!("device {major}:{minor}: "));
    let n = numbers(line);
    assert!(
        n[2] >= 20 && n[3] >= 20 * 4096,
        "the 20 direct writes: {line}"
    );
    let section: String = out
        .split_inclusive('\n')
        .skip_while(|l| !l.starts_with(&format!("device {major}:{minor}: ")))
        .skip(1)
        .take_while(|l| !l.starts_with("device "))
        .collect();
    assert_eq!(histogram_total(&section), n[2], "{out}");
}

#[test]
fn cswitch_counts_a_sleeping_childs_switches() {
    if !python_ok() {
        return;
    }
    let py = python_executable();
    let out = traced(
        "cswitch.stp",
        &python("import time\nfor i in range(50): time.sleep(0.001)"),
        &[],
    );
    assert!(
        out.starts_with("    PID COMM              SWITCHES PREEMPTED\n"),
        "{out}"
    );
    let comm = comm_of(&py);
    let row = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(comm.as_str()))
        .unwrap_or_else(|| panic!("a row for {comm}:\n{out}"));
    let n = numbers(row);
    assert!(
        n[1] >= 50 && n[2] <= n[1],
        "50 sleeps switch it out 50 times: {row}"
    );
}

#[test]
fn sigmon_counts_seven_sigusr1_a_child_sends_itself() {
    if !python_ok() {
        return;
    }
    let comm = comm_of(&python_executable());
    let out = traced(
        "sigmon.stp",
        &python(
            "import os, signal\nsignal.signal(signal.SIGUSR1, lambda *a: None)\nfor i in range(7): os.kill(os.getpid(), signal.SIGUSR1)",
        ),
        &[],
    );
    assert!(
        out.starts_with("SENDER               PID RECEIVER             PID SIGNAL      COUNT\n"),
        "{out}"
    );
    let usr1: Vec<&str> = out.lines().filter(|l| l.contains(" SIGUSR1 ")).collect();
    assert_eq!(usr1.len(), 1, "{out}");
    let w: Vec<&str> = usr1[0].split_whitespace().collect();
    assert!(
        w[0] == comm && w[2] == comm && w[1] == w[3] && w[5] == "7",
        "sent to itself 7 times: {}",
        usr1[0]
    );
}

#[test]
fn tcpstates_walks_a_loopback_connection_through_its_states() {
    if !python_ok() {
        return;
    }
    let out = traced(
        "tcpstates.stp",
        &python(
            "import socket\nl = socket.socket()\nl.bind((\"127.0.0.1\", 0))\nl.listen()\nc = socket.create_connection(l.getsockname())\ns, _ = l.accept()\nc.close()\ns.close()\nl.close()",
        ),
        &[],
    );
    assert!(
        out.starts_with(
            "COMM                 PID LOCAL                 REMOTE                OLD -> NEW\n"
        ),
        "{out}"
    );
    // The listener's port, from its own line; then every line of that connection.
    let comm = comm_of(&python_executable());
    let listen = out
        .lines()
        .find(|l| l.starts_with(&format!("{comm} ")) && l.ends_with(" CLOSE -> LISTEN"))
        .unwrap_or_else(|| panic!("the listener's line:\n{out}"));
    let port = listen
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.strip_prefix("127.0.0.1:"))
        .unwrap_or_else(|| panic!("the listener's address: {listen}"))
        .to_string();
    let mut seen: Vec<String> = out
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .any(|w| w.ends_with(&format!(":{port}")))
        })
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let side = if w[2].ends_with(&format!(":{port}")) {
                "server"
            } else {
                "client"
            };
            format!("{side} {} -> {}", w[4], w[6])
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        "server CLOSE -> LISTEN",
        "client CLOSE -> SYN_SENT",
        "client SYN_SENT -> ESTABLISHED",
        "server LISTEN -> SYN_RECV",
        "server SYN_RECV -> ESTABLISHED",
        "client ESTABLISHED -> FIN_WAIT1",
        "server ESTABLISHED -> CLOSE_WAIT",
        "server CLOSE_WAIT -> LAST_ACK",
        "client FIN_WAIT1 -> FIN_WAIT2",
        "client FIN_WAIT2 -> CLOSE",
        "server LAST_ACK -> CLOSE",
        "server LISTEN -> CLOSE",
    ];
    expected.sort_unstable();
    assert_eq!(seen, expected, "{out}");
    assert!(
        out.lines().skip(1).all(|l| l.contains(" -> ")),
        "every line is a state change:\n{out}"
    );
}

#[test]
fn udpdrops_counts_seven_datagrams_to_a_closed_port_as_no_socket() {
    if !python_ok() {
        return;
    }
    let _alone = rstap_tests::serial();
    let comm = comm_of(&python_executable());
    let out = traced(
        "udpdrops.stp",
        &python(
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(7): s.sendto(b\"x\", (\"127.0.0.1\", 9))",
        ),
        &[],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"COMM                 PID REASON                DROPS"),
        "{out}"
    );
    // The target's drops (another process's may slip in in the moment
    // before rstap sets target(), in rows of their own).
    let ours: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w[0] == comm && w.len() == 4)
        .collect();
    assert!(
        ours.iter().any(|w| w[2] == "NO_SOCKET" && w[3] == "7"),
        "the child's 7 drops, NO_SOCKET:\n{out}"
    );
    assert!(
        lines[1..].iter().all(|l| numbers(l).len() >= 2),
        "rows of comm, pid, reason, count:\n{out}"
    );
}

#[test]
fn syscall_errors_counts_nine_bad_closes_by_errno_name() {
    if !python_ok() {
        return;
    }
    let comm = comm_of(&python_executable());
    let out = traced(
        "syscall_errors.stp",
        &python(
            "import os\nfor i in range(9):\n    try: os.close(987654)\n    except OSError: pass",
        ),
        &[],
    );
    assert!(
        out.starts_with("COMM             SYSCALL          ERRNO         COUNT\n"),
        "{out}"
    );
    let closes = rows(&out, &[&comm, "close"]);
    assert_eq!(closes.len(), 1, "{out}");
    assert_eq!(
        closes[0].split_whitespace().skip(2).collect::<Vec<_>>(),
        ["EBADF", "9"],
        "{out}"
    );
    // errno_str names only the classic errnos (1 to 34) so far: past them,
    // the number.
    assert!(
        out.lines().skip(1).all(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() == 4 && w[3].parse::<i64>().is_ok_and(|n| n > 0)
        }),
        "rows of comm, syscall, errno, count:\n{out}"
    );
}

#[test]
fn pagefaults_counts_a_childs_writes_to_fresh_pages() {
    if !python_ok() {
        return;
    }
    let comm = comm_of(&python_executable());
    let out = traced(
        "pagefaults.stp",
        &python(
            "import mmap\nm = mmap.mmap(-1, 2000 * 4096)\nfor i in range(2000): m[i * 4096] = 1",
        ),
        &[],
    );
    assert!(
        out.starts_with("    PID COMM                FAULTS     READS    WRITES\n"),
        "{out}"
    );
    let row = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(comm.as_str()))
        .unwrap_or_else(|| panic!("a row for {comm}:\n{out}"));
    let n = numbers(row);
    assert!(
        n.len() == 4 && n[1] == n[2] + n[3] && n[3] >= 2000,
        "at least one write fault per page, reads + writes = faults: {row}"
    );
}

#[test]
fn slowcalls_reports_a_named_programs_sleeps_over_the_threshold() {
    if !python_ok() {
        return;
    }
    let comm = comm_of(&python_executable());
    let workload = python("import time\nfor i in range(3): time.sleep(0.123)");
    let out = stdout_of(
        "slowcalls.stp",
        &run_example(
            "slowcalls.stp",
            &["-G", "threshold_us=100000", "-c", &workload],
            &[&comm],
        ),
    );
    assert!(
        out.starts_with("COMM                 TID SYSCALL                 US\n"),
        "{out}"
    );
    // Another program of that name may sleep too: the child's three are the
    // ones of one thread, each over 123 ms.
    let sleeps: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() == 4 && w[0] == comm && w[2] == "clock_nanosleep")
        .filter(|w| {
            w[3].parse::<i64>()
                .is_ok_and(|us| (123_000..1_000_000).contains(&us))
        })
        .collect();
    assert!(
        sleeps.len() >= 3 && sleeps.iter().filter(|w| w[1] == sleeps[0][1]).count() >= 3,
        "three sleeps of 123 ms:\n{out}"
    );
    // Nothing of the child's under the threshold. (rstap writes -G values
    // into the kernel's maps a moment after attaching the probes, so a call
    // of another process returning in that moment may be compared with 0.)
    let child_tid = sleeps[0][1];
    assert!(
        out.lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(child_tid))
            .all(|l| numbers(l).last().is_some_and(|&us| us >= 100_000)),
        "nothing under the -G threshold:\n{out}"
    );
    // Over the default threshold of 10 ms: the same sleeps.
    let out = traced("slowcalls.stp", &workload, &[&comm]);
    assert!(
        out.lines()
            .filter(|l| l.contains(" clock_nanosleep "))
            .count()
            >= 3,
        "{out}"
    );
}

#[test]
fn syscount_json_feeds_jq_exact_counts() {
    if !python_ok() {
        return;
    }
    if Command::new("jq").arg("--version").output().is_err() {
        skip_or_fail("jq is not installed");
        return;
    }
    let out = run_example(
        "syscount_json.stp",
        &[
            "--format=json",
            "-c",
            &python("import os\nfor i in range(321): os.getppid()"),
        ],
        &[],
    );
    let json = stdout_of("syscount_json.stp", &out);
    let comm = comm_of(&python_executable());
    let filter = format!(
        r#"select(.type == "global" and .name == "calls") | .entries[] | select(.key == ["{comm}", "getppid"]) | .value"#
    );
    let mut jq = Command::new("jq")
        .args(["-r", &filter])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("jq: {e}"));
    std::io::Write::write_all(
        jq.stdin
            .as_mut()
            .unwrap_or_else(|| panic!("jq has no stdin")),
        json.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("write to jq: {e}"));
    let picked = jq.wait_with_output().unwrap_or_else(|e| panic!("jq: {e}"));
    assert!(picked.status.success(), "jq refused the output:\n{json}");
    assert_eq!(text(&picked.stdout), "321\n", "{json}");
}

#[test]
fn uses_tapset_takes_its_aliases_and_function_from_an_include_dir() {
    if !python_ok() {
        return;
    }
    let tapset = workspace().join("examples").join("tapset");
    let tapset = tapset.to_string_lossy();
    let cmd = python("import os\nfor i in range(200): os.getppid()");
    let out = run_example("uses_tapset.stp", &["-I", &tapset, "-c", &cmd], &[]);
    let out = stdout_of("uses_tapset.stp", &out);
    let mut total = 0;
    for line in out.lines() {
        let (bucket, n) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("not `bucket: count`: {line}\n{out}"));
        assert!(
            ["under 1us", "under 1ms", "under 1s", "1s or more"].contains(&bucket),
            "{line}"
        );
        total += n.parse::<i64>().unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    // The child's 200 calls, and a few of its shell's before it became python.
    assert!((200..=220).contains(&total), "{out}");
    // Without -I the aliases are unknown.
    let out = run_example("uses_tapset.stp", &["-p2"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("syscall_timed"),
        "{}",
        text(&out.stderr)
    );
}
