//! The peer: bpftrace, found on PATH or installed with apt-get, and run the
//! way this machine needs.
//!
//! bpftrace prints `couldn't set RLIMIT_MEMLOCK` on every run here (memory is
//! memcg-accounted, the limit cannot be raised and is not needed); that line is
//! noise and never taken as the reason for a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Clone, Debug)]
pub struct Bpftrace {
    pub path: PathBuf,
    pub version: String,
    /// Set on every run when this bpftrace looks for kernel headers it cannot
    /// find; empty otherwise.
    env: Vec<(&'static str, &'static str)>,
}

impl Bpftrace {
    /// Finds bpftrace, installing the distribution's package if it is missing,
    /// and checks that it can run a script.
    pub fn locate_or_install() -> Result<Bpftrace, String> {
        let path = match which("bpftrace") {
            Some(p) => p,
            None => {
                install()?;
                which("bpftrace").ok_or("apt-get installed bpftrace but it is not on PATH")?
            }
        };
        let version = first_line(&output(Command::new(&path).arg("--version")));
        let mut peer = Bpftrace {
            path,
            version,
            env: Vec::new(),
        };
        let probe = output(peer.command().args(["-e", "BEGIN { exit(); }"]));
        if probe.contains("kernel headers") {
            peer.env = vec![
                ("BPFTRACE_KERNEL_SOURCE", ""),
                ("BPFTRACE_KERNEL_BUILD", ""),
            ];
        }
        Ok(peer)
    }

    /// A command running this bpftrace, with the environment it needs here.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.envs(self.env.iter().copied());
        cmd
    }
}

/// The line of bpftrace's stderr that says why it failed.
pub fn error_line(stderr: &str) -> String {
    let useful = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("RLIMIT_MEMLOCK"));
    let lines: Vec<&str> = useful.collect();
    lines
        .iter()
        .find(|l| l.to_ascii_lowercase().contains("error"))
        .or(lines.first())
        .map_or_else(|| "no message".to_string(), |l| l.to_string())
}

fn install() -> Result<(), String> {
    eprintln!("vs_bpftrace: bpftrace is missing; installing it with apt-get");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // A fresh machine's package lists may be stale: update only when needed.
    if apt(&["install", "-y", "bpftrace"])
        || (apt(&["update"]) && apt(&["install", "-y", "bpftrace"]))
    {
        Ok(())
    } else {
        Err("bpftrace is not installed and `apt-get install -y bpftrace` failed".into())
    }
}

/// `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn output(cmd: &mut Command) -> String {
    cmd.stdin(Stdio::null())
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s
        })
        .unwrap_or_default()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("unknown").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memlock_warning_is_not_the_error() {
        let stderr = "ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK for bpftrace.\n\
                      stdin:1:1-10: ERROR: Invalid probe type: tracepont\n";
        assert_eq!(
            error_line(stderr),
            "stdin:1:1-10: ERROR: Invalid probe type: tracepont",
            "the real error is reported"
        );
    }
}
