//! Kernel tier: signals and cleanup over the real binary. One SIGINT (or
//! SIGTERM) stops the run, runs end probes and prints everything; a second
//! exits at once; a closed stdout stops it quietly. After each case, and after
//! SIGKILL, none of the BPF programs, maps and links the run held is left, and
//! tracefs holds no `rstap_*` event or instance.
//!
//! The run's own objects are found exactly, by reading its open file
//! descriptors (`/proc/PID/fdinfo`: `prog_id`, `map_id`, `link_id`) once it
//! is attached, so other tracers (or tests) running meanwhile do not matter.

use rstap_tests::rstap;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn kernel_ok() -> bool {
    rstap_tests::bpf_or_skip()
}

const BPFTOOL: &str = "/usr/sbin/bpftool";

/// A run's BPF objects: ids of programs, maps and links.
#[derive(Debug, Default, PartialEq)]
struct Objects {
    progs: BTreeSet<u64>,
    maps: BTreeSet<u64>,
    links: BTreeSet<u64>,
}

/// The objects `pid` holds open, read from its fdinfo.
fn held_by(pid: u32) -> Objects {
    let mut o = Objects::default();
    let dir = format!("/proc/{pid}/fdinfo");
    for e in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .filter_map(Result::ok)
    {
        let info = std::fs::read_to_string(e.path()).unwrap_or_default();
        for line in info.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let Ok(id) = value.trim().parse::<u64>() else {
                continue;
            };
            match key {
                "prog_id" => o.progs.insert(id),
                "map_id" => o.maps.insert(id),
                "link_id" => o.links.insert(id),
                _ => false,
            };
        }
    }
    o
}

/// `(id, name)` of every object `bpftool KIND show` lists.
fn listed(kind: &str) -> Vec<(u64, String)> {
    let out = Command::new(BPFTOOL)
        .args([kind, "show"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BPFTOOL}: {e}"));
    assert!(out.status.success(), "bpftool {kind} show failed");
    // `13548: tracepoint  name p0  tag ...`: the id, then `name N` if any.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (id, rest) = l.split_once(':')?;
            let id = id.trim().parse().ok()?;
            let words: Vec<&str> = rest.split_whitespace().collect();
            let name = words
                .iter()
                .position(|w| *w == "name")
                .and_then(|i| words.get(i + 1))
                .map_or(String::new(), |n| (*n).to_string());
            Some((id, name))
        })
        .collect()
}

/// How rstap names what it loads: programs `p<probe>` and callbacks
/// `cb<N>`; maps `g<global>`, `k<N>` and the fixed runtime maps.
fn named_like_ours(name: &str) -> bool {
    let numbered = |prefix: &str| {
        name.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    numbered("p")
        || numbered("cb")
        || numbered("g")
        || numbered("k")
        || ["output", "lost", "target", "scratch", "zeroes"].contains(&name)
}

/// Nothing of `ours` is listed any more, and tracefs is clean. The kernel
/// frees a closed program or map after an RCU grace period: wait for that,
/// within a bound far above it.
fn assert_all_gone(ours: &Objects, case: &str) {
    let mut left = Vec::new();
    for _ in 0..300 {
        left = [
            ("prog", &ours.progs),
            ("map", &ours.maps),
            ("link", &ours.links),
        ]
        .into_iter()
        .flat_map(|(kind, ids)| {
            listed(kind)
                .into_iter()
                .filter(|(id, _)| ids.contains(id))
                .map(move |(id, name)| format!("{kind} {id} {name}"))
        })
        .collect();
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(left.is_empty(), "{case}: left behind: {left:?}");
    assert_tracefs_clean(case);
}

/// No tracefs instance or event of a finished rstap run: those named
/// `rstap_<pid>` for a process still running belong to another run in
/// progress (another test binary, a tracefs-runtime run) and are its own.
fn assert_tracefs_clean(case: &str) {
    let finished = |name: &str| {
        name.split(|c: char| !c.is_ascii_digit())
            .find(|w| !w.is_empty())
            .is_none_or(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
    };
    let root = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .find(|r| std::path::Path::new(r).join("instances").exists());
    let Some(root) = root else { return };
    let instances: Vec<String> = std::fs::read_dir(format!("{root}/instances"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("rstap") && finished(n))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        instances.is_empty(),
        "{case}: tracefs instances left: {instances:?}"
    );
    for events in ["dynamic_events", "kprobe_events", "uprobe_events"] {
        let text = std::fs::read_to_string(format!("{root}/{events}")).unwrap_or_default();
        assert!(
            !text.lines().any(|l| l.contains("rstap") && finished(l)),
            "{case}: {events} still holds rstap events:\n{text}"
        );
    }
}

/// Sends `sig` (as `kill` names it) to `pid`.
fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid} failed");
}

/// A running rstap, its stdout read line by line (`None` once closed).
struct Run {
    child: Child,
    lines: Option<std::io::Lines<BufReader<ChildStdout>>>,
}

/// Starts `script` and waits until it says `ready` (from a timer probe,
/// which runs only once the kernel-context probes are attached); returns
/// the run and the BPF objects it holds.
fn start(script: &str, extra: &[&str]) -> (Run, Objects) {
    start_with(script, extra, &[])
}

/// [`start`] with environment variables set for rstap.
fn start_with(script: &str, extra: &[&str], env: &[(&str, &str)]) -> (Run, Objects) {
    let mut child = Command::new(rstap())
        .envs(env.iter().copied())
        .args(extra)
        .args(["-e", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    match lines.next() {
        Some(Ok(l)) if l == "ready" => {}
        other => {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("rstap did not get ready: {other:?}\n{err}");
        }
    }
    let ours = held_by(child.id());
    // (On the tracefs runtime a run holds no BPF object.)
    assert!(
        extra.contains(&"--runtime=tracefs") || !ours.progs.is_empty() && !ours.maps.is_empty(),
        "an attached run holds programs and maps: {ours:?}"
    );
    let names: Vec<(u64, String)> = listed("prog")
        .into_iter()
        .chain(listed("map"))
        .filter(|(id, _)| ours.progs.contains(id) || ours.maps.contains(id))
        .collect();
    assert!(
        names.iter().all(|(_, n)| named_like_ours(n)),
        "rstap's programs and maps are named p<N>, g<N>, output...: {names:?}"
    );
    (
        Run {
            child,
            lines: Some(lines),
        },
        ours,
    )
}

/// Waits for the run to end: its status, the rest of stdout, stderr. A run
/// that does not end within a minute is killed and the test fails: every
/// case here ends within a second when rstap behaves.
fn finish(run: Run, case: &str) -> (ExitStatus, String, String) {
    let (status, out, err) = ended(run, case);
    assert!(!err.contains("panicked"), "{case}: rstap panicked:\n{err}");
    (status, out, err)
}

/// [`finish`], whatever stderr says.
fn ended(mut run: Run, case: &str) -> (ExitStatus, String, String) {
    let lines = run.lines.take();
    let mut stderr = run.child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let out: Vec<String> = lines
            .into_iter()
            .flat_map(|l| l.map_while(Result::ok))
            .collect();
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        let _ = tx.send((out.join("\n"), err));
    });
    let (out, err) = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            let _ = run.child.kill();
            panic!("{case}: rstap did not exit");
        });
    let status = run.child.wait().expect("rstap was started");
    (status, out, err)
}

/// Counts getppid calls in the kernel, says `ready` once attached, and prints
/// a line from its end probe.
const COUNTING: &str = r#"global hits, said
probe kernel.trace("syscalls:sys_enter_getppid") { hits++ }
probe timer.ms(10) { if (!said) { said = 1; println("ready") } }
probe end { printf("end ran, hits %s\n", hits >= 0 ? "read" : "lost") }"#;

#[test]
fn one_sigint_or_sigterm_stops_runs_end_probes_and_prints_everything() {
    if !kernel_ok() {
        return;
    }
    for sig in ["INT", "TERM"] {
        let case = format!("SIG{sig}");
        let (run, ours) = start(COUNTING, &[]);
        signal(run.child.id(), sig);
        let (status, out, err) = finish(run, &case);
        assert_eq!(status.code(), Some(0), "{case}: stap exits 0 on ^C:\n{err}");
        assert_eq!(out, "end ran, hits read", "{case}: stderr:\n{err}");
        assert!(err.is_empty(), "{case}: nothing to complain about:\n{err}");
        assert_all_gone(&ours, &case);
    }
}

#[test]
fn a_second_sigint_exits_at_once_without_waiting_for_end_probes() {
    if !kernel_ok() {
        return;
    }
    // The end probe never finishes on its own.
    let script = r#"global hits, said, n
probe kernel.trace("syscalls:sys_enter_getppid") { hits++ }
probe timer.ms(10) { if (!said) { said = 1; println("ready") } }
probe end { while (1) n++ }"#;
    let (run, ours) = start(script, &["-D", "MAXACTION=9000000000000000000"]);
    let pid = run.child.id();
    signal(pid, "INT");
    // Two SIGINTs sent before the first is taken would merge into one.
    while sigint_pending(pid) {
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(pid, "INT");
    let (status, out, err) = finish(run, "second SIGINT");
    assert_eq!(status.code(), Some(1), "stderr:\n{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(
        err.trim_end(),
        "rstap: interrupted again, exiting without running end probes"
    );
    assert_all_gone(&ours, "second SIGINT");
}

/// Whether a SIGINT waits to be delivered to `pid` (its thread or process
/// pending mask has bit 1 set).
fn sigint_pending(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().any(|l| {
        (l.starts_with("SigPnd:") || l.starts_with("ShdPnd:"))
            && l.split_whitespace()
                .nth(1)
                .and_then(|m| u64::from_str_radix(m, 16).ok())
                .is_some_and(|m| m & 2 != 0)
    })
}

#[test]
fn a_closed_stdout_stops_the_run_quietly() {
    if !kernel_ok() {
        return;
    }
    // Prints without end, as `rstap ... | head -1` would meet it.
    let script = r#"global hits, said
probe kernel.trace("syscalls:sys_enter_getppid") { hits++ }
probe timer.ms(10) { if (!said) { said = 1; println("ready") } else println("more") }
probe end { println("end") }"#;
    let (mut run, ours) = start(script, &[]);
    run.lines = None;
    let (status, _, err) = finish(run, "closed stdout");
    assert_eq!(status.code(), Some(0), "stderr:\n{err}");
    assert!(err.is_empty(), "a closed pipe is no error:\n{err}");
    assert_all_gone(&ours, "closed stdout");
}

#[test]
fn a_panic_with_probes_attached_leaves_nothing_behind() {
    if !kernel_ok() {
        return;
    }
    if !cfg!(debug_assertions) {
        // The panic is asked for through a hook that only debug builds have.
        return;
    }
    for runtime in ["--runtime=bpf", "--runtime=tracefs"] {
        let case = format!("panic, {runtime}");
        let env = [("RSTAP_TEST_PANIC_AFTER_MS", "300")];
        let (run, ours) = start_with(COUNTING, &[runtime], &env);
        let (status, _, err) = ended(run, &case);
        assert_eq!(status.code(), Some(1), "{case}: {err}");
        assert!(
            err.contains("panicked") && err.contains("RSTAP_TEST_PANIC_AFTER_MS"),
            "{case}: {err}"
        );
        assert_all_gone(&ours, &case);
        // Its instance and events too: a panic unwinds through their drop.
        assert_tracefs_clean(&case);
    }
}

#[test]
fn sigkill_leaves_nothing_behind() {
    if !kernel_ok() {
        return;
    }
    let (run, ours) = start(COUNTING, &[]);
    signal(run.child.id(), "KILL");
    let (status, _, _) = finish(run, "SIGKILL");
    assert_eq!(status.code(), None, "killed by the signal");
    assert_all_gone(&ours, "SIGKILL");
}

#[test]
fn many_attachments_are_closed_after_rstap_exits_and_none_is_left() {
    if !kernel_ok() {
        return;
    }
    // 360 tracepoints: closing them waits for the kernel's RCU grace periods
    // (about 15 s here), so a child process closes them and rstap exits.
    let script = r#"global hits, said
probe syscall.* { hits++ }
probe timer.ms(10) { if (!said) { said = 1; println("ready") } }
probe end { printf("end ran, hits %s\n", hits > 0 ? "counted" : "lost") }"#;
    let case = "SIGINT with syscall.*";
    let (run, ours) = start(script, &[]);
    assert!(ours.progs.len() > 64, "{case}: {ours:?}");
    signal(run.child.id(), "INT");
    let (status, out, err) = finish(run, case);
    assert_eq!(status.code(), Some(0), "{case}:\n{err}");
    assert_eq!(out, "end ran, hits counted", "{case}: stderr:\n{err}");
    assert!(err.is_empty(), "{case}:\n{err}");
    assert_all_gone(&ours, case);
}
