//! Facts about the machine and the source tree that a benchmark report names
//! (date, kernel, CPU, commit), and the tracefs mount that tracing needs.

use std::path::Path;
use std::process::{Command, Stdio};

pub const TRACEFS: &str = "/sys/kernel/tracing";

#[derive(Clone, Debug)]
pub struct Facts {
    /// UTC, `YYYY-MM-DD HH:MM`.
    pub date: String,
    pub kernel: String,
    pub cpu: String,
    pub cores: usize,
    /// Short commit of the rstap tree, `+changes` when it differs from it.
    pub commit: String,
}

impl Facts {
    pub fn gather(repo: &Path) -> Facts {
        let date = stdout(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let mut commit = stdout(Command::new("git").arg("-C").arg(repo).args([
            "rev-parse",
            "--short=12",
            "HEAD",
        ]));
        // The report this run writes is not a change to the code measured.
        let clean = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["diff", "--quiet", "HEAD", "--", ".", ":!BENCHMARKS.md"])
            .status()
            .is_ok_and(|s| s.success());
        if !clean {
            commit.push_str("+changes");
        }
        Facts {
            date,
            kernel,
            cpu,
            cores,
            commit,
        }
    }
}

/// Mounts tracefs at `TRACEFS` unless it is there already (a fresh machine may
/// not mount it; both tools read tracepoint formats from it).
pub fn ensure_tracefs() -> Result<(), String> {
    if Path::new(TRACEFS).join("events").is_dir() {
        return Ok(());
    }
    let ok = Command::new("mount")
        .args(["-t", "tracefs", "nodev", TRACEFS])
        .status()
        .is_ok_and(|s| s.success());
    if ok && Path::new(TRACEFS).join("events").is_dir() {
        eprintln!("vs_bpftrace: mounted tracefs at {TRACEFS}");
        Ok(())
    } else {
        Err(format!(
            "tracefs is not mounted and `mount -t tracefs nodev {TRACEFS}` failed"
        ))
    }
}

/// The first `n` `syscalls:sys_enter_*` tracepoints of this kernel, sorted.
pub fn syscall_tracepoints(n: usize) -> Result<Vec<String>, String> {
    let list = std::fs::read_to_string(Path::new(TRACEFS).join("available_events"))
        .map_err(|e| format!("cannot read available_events: {e}"))?;
    let mut events: Vec<String> = list
        .lines()
        .filter(|l| l.starts_with("syscalls:sys_enter_"))
        .map(str::to_string)
        .collect();
    events.sort();
    events.truncate(n);
    if events.len() == n {
        Ok(events)
    } else {
        Err(format!(
            "this kernel has only {} sys_enter tracepoints",
            events.len()
        ))
    }
}

/// A command's stdout, trimmed; `unknown` when it cannot run.
pub fn stdout(cmd: &mut Command) -> String {
    cmd.stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}
