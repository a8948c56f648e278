//! The `-c CMD` child: started at once (so its pid is `target()`), but held
//! before it execs the command until the probes know that pid, so not one of
//! its events is missed or miscounted.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// A child waiting at its exec for [`Held::release`].
#[derive(Debug)]
pub struct Held {
    child: Child,
    go: OwnedFd,
}

/// Starts `cmd` through the shell (which `exec`s it, so the pid stays), held.
/// The write end stays with rstap (close-on-exec keeps it from the child).
pub fn spawn_held(cmd: &str) -> io::Result<Held> {
    let mut fds = [0; 2];
    #[expect(unsafe_code, reason = "pipe2(2) has no safe wrapper in std")]
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    #[expect(unsafe_code, reason = "pipe2 just returned these two open descriptors")]
    // SAFETY: both descriptors are open and owned by nothing else.
    let (wait, go) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let wait_fd = wait.as_raw_fd();
    // The shell waits for a line on fd 3 (end of file: rstap is gone, so it
    // gives up), closes it, and becomes the command.
    let mut command = Command::new("/bin/sh");
    command.args([
        "-c",
        &format!("read _ <&3 || exit 127; exec 3<&-; exec {cmd}"),
    ]);
    #[expect(unsafe_code, reason = "the pipe becomes fd 3 between fork and exec")]
    // SAFETY: the closure calls only dup2 and fcntl, which are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            // dup2 onto itself would keep close-on-exec: clear it instead.
            let rc = if wait_fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(wait_fd, 3)
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    drop(wait);
    Ok(Held { child, go })
}

impl Held {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Lets the command run.
    pub fn release(self) -> Child {
        let byte = [b'\n'];
        #[expect(unsafe_code, reason = "write(2) on our own pipe")]
        // SAFETY: `go` is an open descriptor and `byte` a valid 1-byte buffer.
        let _ = unsafe { libc::write(self.go.as_raw_fd(), byte.as_ptr().cast(), 1) };
        self.child
    }
}

/// `system(cmd)`: runs `cmd` with `/bin/sh -c`, in the background, with
/// rstap's standard streams. Run through `sudo`, rstap is root on the
/// invoking user's behalf: the command runs as that user (`SUDO_UID`,
/// `SUDO_GID`), never as root, as stap runs it as the user who started it.
pub fn system(cmd: &str) -> io::Result<Child> {
    let mut command = Command::new("/bin/sh");
    command.args(["-c", cmd]);
    if let Some((uid, gid)) = invoking_user() {
        // std drops root's supplementary groups when it sets the uid.
        command.gid(gid).uid(uid);
    }
    command.spawn()
}

/// The user `sudo` ran rstap for, when rstap is root because of it.
fn invoking_user() -> Option<(u32, u32)> {
    #[expect(unsafe_code, reason = "geteuid(2) has no safe wrapper in std")]
    // SAFETY: geteuid takes no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return None;
    }
    let id = |name: &str| std::env::var(name).ok()?.parse::<u32>().ok();
    Some((id("SUDO_UID")?, id("SUDO_GID")?))
}

/// Ends the `-c` command when the run stopped without it (SIGINT, `exit()`,
/// `-T`): SIGTERM, a second to go, then SIGKILL; and reaps it. The tracer
/// that started a command does not outlive it, nor leave it running on.
pub fn finish_target(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        #[expect(unsafe_code, reason = "kill(2) has no safe wrapper in std")]
        // SAFETY: kill takes plain integers; the child is ours and not yet
        // reaped, so the pid is still its own.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}
