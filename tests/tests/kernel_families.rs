//! Kernel tier: the tapset's probe-alias families (scheduler.*, kprocess.*,
//! signal.*, vm.*, ioblock.*, netdev.*, irq_handler.*, softirq.*, workqueue.*,
//! tcp.*, udp.*) resolve on this kernel with the locals stap users know, and
//! report what a traced child does. Needs root and BPF; elsewhere each test
//! says why it was skipped, unless RSTAP_REQUIRE_KERNEL_TESTS=1.

use rstap_tests::{
    bpf_or_skip, comm_of, python_executable, python_or_skip, rstap_output, text, workspace,
};

/// Runs `script` with `-c workload`, elision warnings off; returns stdout,
/// panicking with stderr when rstap fails.
fn run_with(script: &str, workload: &str) -> String {
    let out = rstap_output(&["-w", "-e", script, "-c", workload]);
    assert!(
        out.status.success(),
        "rstap failed on {script}:\n{}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn python() -> String {
    python_executable()
}

/// The family aliases the tapset files define: `probe NAME =` at a line's start.
fn family_aliases() -> Vec<String> {
    let files = [
        "scheduler.stp",
        "kprocess.stp",
        "signal.stp",
        "memory.stp",
        "ioblock.stp",
        "networking.stp",
        "irq.stp",
        "tcp.stp",
        "udp.stp",
    ];
    let mut names = Vec::new();
    for f in files {
        let path = workspace().join("stdlib/tapset").join(f);
        let body = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("tapset {} should exist: {e}", path.display()));
        for line in body.lines() {
            if let Some(rest) = line.strip_prefix("probe ")
                && let Some((name, _)) = rest.split_once(" =")
            {
                names.push(name.trim().to_string());
            }
        }
    }
    names
}

#[test]
fn every_family_alias_resolves_and_lists_its_locals() {
    if !bpf_or_skip() {
        return;
    }
    let names = family_aliases();
    assert!(
        names.len() >= 35,
        "expected the family aliases, got {names:?}"
    );
    for name in names {
        let out = rstap_output(&["-L", &name]);
        let listed = text(&out.stdout);
        let line = listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "-L {name} should list the alias and its locals; got:\n{listed}{}",
                    text(&out.stderr)
                )
            });
        assert!(
            line.split_whitespace()
                .nth(1)
                .is_some_and(|l| !l.starts_with('$')),
            "-L {name} should list at least one alias local: {line}"
        );
    }
}

#[test]
fn ctxswitch_lists_stap_locals() {
    if !bpf_or_skip() {
        return;
    }
    let out = rstap_output(&["-L", "scheduler.ctxswitch"]);
    assert_eq!(
        text(&out.stdout),
        "scheduler.ctxswitch name:string prev_pid:long prev_tid:long prev_task_name:string \
         prev_priority:long prevtsk_state:long next_pid:long next_tid:long next_task_name:string \
         next_priority:long $prev_comm:string $prev_pid:long $prev_prio:long $prev_state:long \
         $next_comm:string $next_pid:long $next_prio:long\n"
    );
}

#[test]
fn process_exec_sees_the_child_exec_with_its_name() {
    if !bpf_or_skip() || !python_or_skip() {
        return;
    }
    let script = r#"global n
probe scheduler.process_exec {
  if (target() && pid() == target()) { n++; printf("%s %s %s\n", name, filename, execname()) }
}
probe end { printf("n=%d\n", n) }"#;
    let out = run_with(
        script,
        &format!(
            "{} -c \"import os; os.execv('/bin/true', ['true'])\"",
            python()
        ),
    );
    // rstap starts the target by exec'ing the command after the probes attach,
    // so the target's own exec of python comes first.
    let py = python();
    assert_eq!(
        out,
        format!(
            "process_exec {py} {}\nprocess_exec /bin/true true\nn=2\n",
            comm_of(&py)
        )
    );
}

#[test]
fn ctxswitch_sees_the_sleeping_target_switched_out() {
    if !bpf_or_skip() || !python_or_skip() {
        return;
    }
    // A sleep always switches the sleeper out in an interruptible sleep
    // (state 1). The -c child is target() from before its exec, while its
    // shell waits to be let go: those switches are the shell's.
    let comm = comm_of(&python());
    let script = format!(
        r#"global n
probe scheduler.ctxswitch {{
  if (target() && prev_tid == target() && prevtsk_state == 1 && n == 0
      && prev_task_name == "{comm}") {{
    n++
    printf("%s %s %d %d\n", name, prev_task_name, prev_pid == target(), next_tid != prev_tid)
  }}
}}"#
    );
    let out = run_with(
        &script,
        &format!(
            "{} -c \"import time\nfor i in range(5): time.sleep(0.01)\"",
            python()
        ),
    );
    assert_eq!(out, format!("ctxswitch {comm} 1 1\n"));
}

#[test]
fn signal_send_and_deliver_see_each_sigusr1() {
    if !bpf_or_skip() || !python_or_skip() {
        return;
    }
    let script = r#"global sent, got
probe signal.send {
  if (target() && sig_pid == target() && sig_name == "SIGUSR1") sent++
}
probe signal.deliver {
  if (target() && pid() == target() && sig == 10 && sig_name == "SIGUSR1") got++
}
probe end { printf("sent=%d delivered=%d\n", sent, got) }"#;
    let out = run_with(
        script,
        &format!(
            "{} -c \"import os, signal\nsignal.signal(signal.SIGUSR1, lambda *a: None)\nfor i in range(7): os.kill(os.getpid(), signal.SIGUSR1)\"",
            python()
        ),
    );
    assert_eq!(out, "sent=7 delivered=7\n");
}

#[test]
fn kprocess_exit_sees_the_exit_code_and_create_the_fork() {
    if !bpf_or_skip() || !python_or_skip() {
        return;
    }
    let script = r#"global forks
probe kprocess.create { if (target() && pid() == target()) forks++ }
probe kprocess.exit { if (target() && pid() == target()) printf("code=%d\n", code) }
probe end { printf("forks=%d\n", forks) }"#;
    let out = run_with(
        script,
        &format!(
            "{} -c \"import os, sys\nif os.fork() == 0: os._exit(5)\nos.wait()\nsys.exit(3)\"",
            python()
        ),
    );
    // exit(N) is N << 8 in the kernel's exit status; the child is another pid.
    assert_eq!(out, "code=768\nforks=1\n");
}

#[test]
fn netdev_counts_loopback_datagrams_both_ways() {
    if !bpf_or_skip() || !python_or_skip() {
        return;
    }
    // 333 bytes of payload + 8 UDP + 20 IP = 361 received; + 14 Ethernet = 375 sent.
    let script = r#"global tx, rx
probe netdev.transmit { if (dev_name == "lo" && length == 375) tx++ }
probe netdev.receive { if (dev_name == "lo" && length == 361) rx++ }
probe end { printf("tx=%d rx=%d\n", tx, rx) }"#;
    let out = run_with(
        script,
        &format!(
            "{} -c \"import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(20): s.sendto(b'x'*333, ('127.0.0.1', 9))\"",
            python()
        ),
    );
    assert_eq!(out, "tx=20 rx=20\n");
}

#[test]
fn tcp_aliases_compile_and_fail_to_attach_like_kernel_function() {
    if !bpf_or_skip() {
        return;
    }
    let script = "probe tcp.sendmsg, udp.sendmsg { printf(\"%s %d\\n\", name, size) }";
    let out = rstap_output(&["-w", "-p4", "-o", "/dev/null", "-e", script]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let has_kprobes = std::path::Path::new("/sys/kernel/tracing/kprobe_events").exists()
        || std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    if has_kprobes {
        return;
    }
    let out = rstap_output(&["-w", "-T", "1", "-e", script]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("this kernel has no kprobes"), "{stderr}");
}
