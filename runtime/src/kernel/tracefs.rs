//! Where tracefs is, mounting it at /sys/kernel/tracing when no one has, and the
//! tracepoints it lists.

use rstap_compiler::kernel::{KernelError, TracepointId};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// A tracefs that is already mounted.
pub fn find_mounted() -> Option<PathBuf> {
    [TRACEFS, DEBUGFS_TRACING]
        .into_iter()
        .find(|dir| Path::new(dir).join("events").is_dir())
        .map(PathBuf::from)
}

pub fn find_or_mount(verbose: bool) -> Result<PathBuf, KernelError> {
    if let Some(dir) = find_mounted() {
        return Ok(dir);
    }
    mount().map_err(|e| {
        KernelError(format!(
            "tracefs is not mounted and mounting it at {TRACEFS} failed ({e}); mount it with `mount -t tracefs nodev {TRACEFS}` or run rstap as root"
        ))
    })?;
    if verbose {
        eprintln!("rstap: mounted tracefs at {TRACEFS}");
    }
    Ok(PathBuf::from(TRACEFS))
}

fn mount() -> std::io::Result<()> {
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

/// `available_events` as sorted tracepoint ids.
pub fn tracepoints(tracefs: &Path) -> Result<Vec<TracepointId>, KernelError> {
    let path = tracefs.join("available_events");
    let text = crate::host::read_kernel_file(&path)
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
}

/// The tracepoints `script` names in full, `kernel.trace("system:name")`
/// with no wildcard, in the order they appear, each once. A scan of the
/// text, not a parse: a name in a comment or a dropped conditional counts.
pub fn named_tracepoints(script: &str) -> Vec<TracepointId> {
    let mut seen = HashSet::new();
    script
        .split(".trace(\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"'))
        .filter_map(|(name, _)| name.split_once(':'))
        .filter(|(system, name)| {
            let plain = |s: &str| !s.is_empty() && !s.contains(['*', '?', '[', '\\']);
            plain(system) && plain(name)
        })
        .map(|(system, name)| TracepointId {
            system: system.to_string(),
            name: name.to_string(),
        })
        .filter(|tp| seen.insert(tp.clone()))
        .collect()
}

/// The vmlinux functions in `available_filter_functions`: those ftrace can
/// hook. Lines of module functions (`name [module]`) and notes are left out;
/// an unreadable file (no dynamic ftrace, lockdown) means none.
pub fn ftrace_functions(tracefs: &Path) -> HashSet<String> {
    let Ok(text) = std::fs::read_to_string(tracefs.join("available_filter_functions")) else {
        return HashSet::new();
    };
    vmlinux_functions(&text)
}

fn vmlinux_functions(text: &str) -> HashSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains(char::is_whitespace) && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracepoints_named_in_full_are_found_in_order_once() {
        let script = r#"
            probe kernel.trace("sched:sched_switch") { n++ }
            probe kernel.trace("syscalls:sys_enter_*"), kernel.trace("irq_handler_entry") {}
            probe kernel.trace ("timer:hrtimer_start") {}
            // kernel.trace("block:block_rq_issue")
            probe kernel.trace("sched:sched_switch"), kernel.trace("net:net_dev_xmit") {}
            probe kernel.trace("sched:sched_wak[eu]*"), kernel.trace(":x"), kernel.trace("a\"b:c") {}
        "#;
        let found: Vec<String> = named_tracepoints(script)
            .iter()
            .map(|tp| format!("{}:{}", tp.system, tp.name))
            .collect();
        assert_eq!(
            found,
            [
                "sched:sched_switch",
                "block:block_rq_issue",
                "net:net_dev_xmit"
            ],
            "wildcards, names without a system and a space before the parenthesis are not \
             guessed; a comment's name is"
        );
    }

    #[test]
    fn only_vmlinux_functions_are_kept() {
        let text = "vfs_read\ndo_sys_openat2\nfoo_init [foo]\n__ftrace_invalid_address___64\n\n";
        let got = vmlinux_functions(text);
        assert!(got.contains("vfs_read") && got.contains("do_sys_openat2"));
        assert!(!got.iter().any(|f| f.contains("foo")), "{got:?}");
        assert_eq!(got.len(), 3);
    }
}
