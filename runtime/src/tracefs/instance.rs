//! rstap's private tracefs state and its cleanup: an instance
//! `instances/rstap_PID` (its own ring buffers, clock and enables) and the
//! dynamic events of group `rstap_PID`. Nothing global is changed: dynamic
//! events are added and removed one definition per write, never by
//! truncating `uprobe_events`/`kprobe_events` (that would delete other
//! tools' probes), and tracepoints are enabled only in the instance.
//!
//! Cleanup disables every event rstap enabled, removes the instance, then
//! removes the dynamic events (an enabled event cannot be removed: EBUSY).
//! It runs on drop, so a normal exit, SIGINT/SIGTERM (the session ends
//! normally) and a panic (unwinding) all clean up; after SIGKILL the next
//! run's [`sweep`] removes what a dead rstap left.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The name of rstap `pid`'s instance and dynamic-event group.
pub fn group_name(pid: u32) -> String {
    format!("rstap_{pid}")
}

/// Which file defines a dynamic event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dynamic {
    Uprobe,
    Kprobe,
}

impl Dynamic {
    fn file(self) -> &'static str {
        match self {
            Dynamic::Uprobe => "uprobe_events",
            Dynamic::Kprobe => "kprobe_events",
        }
    }
}

#[derive(Debug)]
pub struct Instance {
    pub tracefs: PathBuf,
    pub group: String,
    pub dir: PathBuf,
    /// `enable` files rstap wrote 1 to, in order.
    enabled: Vec<PathBuf>,
    /// Dynamic events defined, by name.
    defined: Vec<(Dynamic, String)>,
    removed: bool,
}

/// Appends one line to a tracefs control file (never truncating it).
fn append(path: &Path, line: &str) -> std::io::Result<()> {
    debug_assert!(!line.contains('\n'));
    let mut f = OpenOptions::new().append(true).open(path)?;
    f.write_all(format!("{line}\n").as_bytes())
}

/// Replaces the contents of a per-instance or per-event setting file.
fn set(path: &Path, value: &str) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).truncate(true).open(path)?;
    f.write_all(value.as_bytes())
}

impl Instance {
    /// Creates `instances/rstap_PID` with `kb` KiB of buffer per CPU, time
    /// stamps from CLOCK_MONOTONIC, and nothing enabled yet.
    pub fn create(tracefs: &Path, kb: u64) -> Result<Instance, String> {
        let group = group_name(std::process::id());
        let dir = tracefs.join("instances").join(&group);
        std::fs::create_dir(&dir)
            .map_err(|e| format!("cannot create the tracefs instance {} ({e})", dir.display()))?;
        let inst = Instance {
            tracefs: tracefs.to_path_buf(),
            group,
            dir,
            enabled: Vec::new(),
            defined: Vec::new(),
            removed: false,
        };
        let setting = |file: &str, value: &str| {
            set(&inst.dir.join(file), value)
                .map_err(|e| format!("cannot set {file} of the tracefs instance ({e})"))
        };
        setting("buffer_size_kb", &kb.to_string())?;
        setting("trace_clock", "mono")?;
        // A full buffer drops new events (counted in per_cpu stats) instead
        // of overwriting old ones unread.
        setting("options/overwrite", "0")?;
        // The kernel keeps each traced thread's process id (saved_tgids), so
        // pid() is right for a thread that exited before its event was read.
        let _ = set(&inst.dir.join("options/record-tgid"), "1");
        // Readers blocked in poll wake at the first event.
        let _ = set(&inst.dir.join("buffer_percent"), "0");
        Ok(inst)
    }

    /// Defines dynamic event `rstap_PID/name` with one write of `line`.
    pub fn define(&mut self, kind: Dynamic, name: &str, line: &str) -> Result<(), String> {
        let file = self.tracefs.join(kind.file());
        if !file.exists() {
            return Err(match kind {
                Dynamic::Kprobe => "this kernel has no kprobe events (tracefs has no kprobe_events: built without CONFIG_KPROBE_EVENTS); probe a tracepoint with kernel.trace(...) instead".to_string(),
                Dynamic::Uprobe => "this kernel has no uprobe events (tracefs has no uprobe_events: built without CONFIG_UPROBE_EVENTS)".to_string(),
            });
        }
        append(&file, line).map_err(|e| {
            format!(
                "the kernel refused the {} definition `{line}` ({e})",
                kind.file()
            )
        })?;
        self.defined.push((kind, name.to_string()));
        Ok(())
    }

    /// The directory of event `system/name` inside the instance.
    pub fn event_dir(&self, system: &str, name: &str) -> PathBuf {
        self.dir.join("events").join(system).join(name)
    }

    /// Sets an event's filter in the instance.
    pub fn filter(&self, system: &str, name: &str, filter: &str) -> Result<(), String> {
        set(&self.event_dir(system, name).join("filter"), filter)
            .map_err(|e| format!("the kernel refused the filter `{filter}` ({e})"))
    }

    /// Enables an event in the instance.
    pub fn enable(&mut self, system: &str, name: &str) -> Result<(), String> {
        let path = self.event_dir(system, name).join("enable");
        set(&path, "1").map_err(|e| format!("cannot enable the event {system}:{name} ({e})"))?;
        self.enabled.push(path);
        Ok(())
    }

    /// Stops every event (the buffers keep what they hold).
    pub fn disable(&mut self) {
        for path in self.enabled.drain(..).rev() {
            let _ = set(&path, "0");
        }
    }

    /// Disables, removes the instance, then the dynamic events. The readers
    /// of the instance's buffers must be closed first (an open file keeps
    /// the instance busy).
    pub fn remove(&mut self) {
        if self.removed {
            return;
        }
        self.removed = true;
        self.disable();
        let _ = std::fs::remove_dir(&self.dir);
        for (kind, name) in self.defined.drain(..).rev() {
            let _ = append(
                &self.tracefs.join(kind.file()),
                &format!("-:{}/{name}", self.group),
            );
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Whether process `pid` is a running rstap.
fn rstap_alive(pid: u32) -> bool {
    let Ok(pid_t) = i32::try_from(pid) else {
        return false;
    };
    #[expect(unsafe_code, reason = "kill(2) has no safe wrapper in std")]
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid_t, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    // A pid reused by another program leaves rstap's state orphaned too.
    exists
        && std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim_end().starts_with("rstap"))
}

/// The pid of a `rstap_PID` name.
fn pid_of(name: &str) -> Option<u32> {
    name.strip_prefix("rstap_")?.parse().ok()
}

/// What a sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub instances: usize,
    pub events: usize,
}

/// Removes the instances and dynamic events of rstap runs that are no longer
/// running (killed with SIGKILL, or crashed without unwinding).
pub fn sweep(tracefs: &Path) -> Swept {
    let mut swept = Swept::default();
    let me = std::process::id();
    let names = |dir: PathBuf| -> Vec<(String, u32)> {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| {
                        let name = e.file_name().into_string().ok()?;
                        let pid = pid_of(&name)?;
                        Some((name, pid))
                    })
                    .filter(|(_, pid)| *pid != me && !rstap_alive(*pid))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (name, _) in names(tracefs.join("instances")) {
        let dir = tracefs.join("instances").join(&name);
        // Removing an instance disables what is enabled in it.
        let _ = set(&dir.join("events/enable"), "0");
        if std::fs::remove_dir(&dir).is_ok() {
            swept.instances += 1;
        }
    }
    for (group, _) in names(tracefs.join("events")) {
        let Ok(rd) = std::fs::read_dir(tracefs.join("events").join(&group)) else {
            continue;
        };
        let _ = set(&tracefs.join("events").join(&group).join("enable"), "0");
        for e in rd.filter_map(Result::ok) {
            if !e.path().is_dir() {
                continue;
            }
            let Ok(event) = e.file_name().into_string() else {
                continue;
            };
            let line = format!("-:{group}/{event}");
            let gone = ["dynamic_events", "uprobe_events", "kprobe_events"]
                .iter()
                .any(|f| append(&tracefs.join(f), &line).is_ok());
            if gone {
                swept.events += 1;
            }
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rstap_pid_names_are_rstaps() {
        assert_eq!(pid_of("rstap_123"), Some(123));
        assert_eq!(pid_of("rstap_"), None);
        assert_eq!(pid_of("rstap_12x"), None);
        assert_eq!(pid_of("ftrace_123"), None);
    }
}
