//! A child process measured as a whole: wall time from spawn to reap, and the
//! CPU time (user + sys) and peak RSS the kernel accounted to it, read with
//! `wait4(2)` because std's `Child::wait` throws the `rusage` away.
//!
//! The child's stderr goes to a file so a failure can be reported with the
//! tool's own words; its stdout goes wherever the caller's `Command` says.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished child cost.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub wall: Duration,
    /// User + system CPU time of the child and of every descendant it waited for.
    pub cpu: Duration,
    /// Peak resident set size in KiB (`ru_maxrss`).
    pub max_rss_kib: u64,
    /// `Some(code)` for a normal exit, `None` when a signal ended it.
    pub exit_code: Option<i32>,
}

impl Usage {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// A spawned child; killed and reaped on drop if nobody waited for it.
#[derive(Debug)]
pub struct Running {
    pid: libc::pid_t,
    started: Instant,
    stderr: PathBuf,
    /// Set once reaped: the pid may belong to another process after that.
    reaped: Cell<Option<Usage>>,
}

impl Running {
    /// Spawns `cmd` with its stderr written to `stderr_file`. The clock starts
    /// just before the fork, so wall time includes exec and dynamic linking.
    pub fn spawn(cmd: &mut Command, stderr_file: &Path) -> io::Result<Running> {
        let err = File::create(stderr_file)?;
        cmd.stdin(Stdio::null()).stderr(Stdio::from(err));
        let started = Instant::now();
        let child = cmd.spawn()?;
        let pid = libc::pid_t::try_from(child.id())
            .map_err(|_| io::Error::other("child pid does not fit pid_t"))?;
        // Reaped with wait4 below, never through `child`: dropping it neither
        // waits nor kills.
        drop(child);
        Ok(Running {
            pid,
            started,
            stderr: stderr_file.to_path_buf(),
            reaped: Cell::new(None),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// The child's stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// `Some` once the child has exited (and is reaped), `None` while it runs.
    pub fn try_finish(&self) -> io::Result<Option<Usage>> {
        self.reap(libc::WNOHANG)
    }

    /// Waits for the child to exit.
    pub fn finish(&self) -> io::Result<Usage> {
        self.reap(0)?
            .ok_or_else(|| io::Error::other("wait4 returned without a status"))
    }

    fn reap(&self, flags: libc::c_int) -> io::Result<Option<Usage>> {
        if let Some(u) = self.reaped.get() {
            return Ok(Some(u));
        }
        let u = wait4(self.pid, flags, self.started)?;
        self.reaped.set(u);
        Ok(u)
    }

    /// Waits at most `patience` for the child to exit; `None` if it still runs.
    pub fn wait_within(&self, patience: Duration) -> io::Result<Option<Usage>> {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(u) = self.try_finish()? {
                return Ok(Some(u));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(&self) -> io::Result<Usage> {
        self.signal(libc::SIGKILL)?;
        self.finish()
    }

    /// SIGINT: how a person stops both rstap and bpftrace.
    pub fn interrupt(&self) -> io::Result<()> {
        self.signal(libc::SIGINT)
    }

    fn signal(&self, sig: libc::c_int) -> io::Result<()> {
        if self.reaped.get().is_some() {
            return Ok(());
        }
        #[expect(unsafe_code, reason = "kill(2) has no wrapper in std")]
        // SAFETY: plain syscall on a pid this value owns and has not reaped yet.
        let rc = unsafe { libc::kill(self.pid, sig) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.reaped.get().is_none() {
            let _ = self.kill();
        }
    }
}

fn wait4(pid: libc::pid_t, flags: libc::c_int, started: Instant) -> io::Result<Option<Usage>> {
    let mut status: libc::c_int = 0;
    #[expect(unsafe_code, reason = "wait4(2) has no wrapper in std")]
    // SAFETY: rusage is plain old data, so all-zero is a valid value; both
    // pointers are to live locals for the duration of the call.
    let (rc, ru) = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        let rc = libc::wait4(pid, &mut status, flags, &mut ru);
        (rc, ru)
    };
    let wall = started.elapsed();
    match rc {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        _ => Ok(Some(Usage {
            wall,
            cpu: timeval(ru.ru_utime) + timeval(ru.ru_stime),
            max_rss_kib: u64::try_from(ru.ru_maxrss).unwrap_or(0),
            exit_code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        })),
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
}

/// Runs `cmd` to completion (stdout discarded unless the caller set it).
pub fn run(cmd: &mut Command, stderr_file: &Path) -> io::Result<(Usage, String)> {
    let child = Running::spawn(cmd, stderr_file)?;
    let usage = child.finish()?;
    Ok((usage, child.stderr()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_exits_reports_its_code_and_a_resident_set() {
        let dir = std::env::temp_dir().join(format!("procstat-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (usage, stderr) = run(
            Command::new("/bin/sh").args(["-c", "echo oops >&2; exit 3"]),
            &dir.join("err"),
        )
        .expect("/bin/sh runs");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            usage.exit_code,
            Some(3),
            "sh exits with the code it was given"
        );
        assert!(usage.max_rss_kib > 0, "a shell has some resident memory");
        assert_eq!(stderr.trim(), "oops", "stderr is captured to the file");
    }
}
