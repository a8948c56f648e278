//! The live kernel's answers to the compiler's questions (`KernelInfo`): tracepoints
//! and their layouts from tracefs, which this module mounts when it is missing.

use rstap_compiler::kernel::{KernelError, KernelInfo, TracepointId};
use rstap_compiler::tracepoint::{TracepointFormat, parse_format};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// Kernel facts read lazily, each at most once.
#[derive(Debug, Default)]
pub struct LiveKernel {
    verbose: bool,
    tracefs: OnceLock<Result<PathBuf, KernelError>>,
    tracepoints: OnceLock<Result<Vec<TracepointId>, KernelError>>,
}

impl LiveKernel {
    pub fn new(verbose: bool) -> LiveKernel {
        LiveKernel {
            verbose,
            ..LiveKernel::default()
        }
    }

    /// Where tracefs is, mounting it at /sys/kernel/tracing if no one has.
    fn tracefs(&self) -> Result<&Path, KernelError> {
        self.tracefs
            .get_or_init(|| find_or_mount_tracefs(self.verbose))
            .as_deref()
            .map_err(Clone::clone)
    }
}

fn find_or_mount_tracefs(verbose: bool) -> Result<PathBuf, KernelError> {
    for dir in [TRACEFS, DEBUGFS_TRACING] {
        if Path::new(dir).join("events").is_dir() {
            return Ok(PathBuf::from(dir));
        }
    }
    mount_tracefs().map_err(|e| {
        KernelError(format!(
            "tracefs is not mounted and mounting it at {TRACEFS} failed ({e}); mount it with `mount -t tracefs nodev {TRACEFS}` or run rstap as root"
        ))
    })?;
    if verbose {
        eprintln!("rstap: mounted tracefs at {TRACEFS}");
    }
    Ok(PathBuf::from(TRACEFS))
}

fn mount_tracefs() -> std::io::Result<()> {
    let c = |s: &str| std::ffi::CString::new(s).map_err(std::io::Error::other);
    let (source, target, fstype) = (c("nodev")?, c(TRACEFS)?, c("tracefs")?);
    #[expect(unsafe_code, reason = "mount(2) has no safe wrapper in std")]
    // SAFETY: three valid NUL-terminated strings that outlive the call, no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl KernelInfo for LiveKernel {
    fn tracepoints(&self) -> Result<Vec<TracepointId>, KernelError> {
        self.tracepoints
            .get_or_init(|| {
                let path = self.tracefs()?.join("available_events");
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| KernelError(format!("cannot read {}: {e}", path.display())))?;
                let mut tps: Vec<TracepointId> = text
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .map(|(s, n)| TracepointId {
                        system: s.to_string(),
                        name: n.to_string(),
                    })
                    .collect();
                tps.sort();
                Ok(tps)
            })
            .clone()
    }

    fn tracepoint_format(&self, tp: &TracepointId) -> Result<TracepointFormat, KernelError> {
        let path = self
            .tracefs()?
            .join("events")
            .join(&tp.system)
            .join(&tp.name)
            .join("format");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            KernelError(format!(
                "cannot read the format of tracepoint {tp} ({}): {e}",
                path.display()
            ))
        })?;
        parse_format(&text)
            .map_err(|e| KernelError(format!("cannot read the format of tracepoint {tp}: {e}")))
    }
}
