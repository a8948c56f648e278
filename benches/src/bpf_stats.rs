//! The kernel's own count of time spent in BPF programs, per program.
//!
//! With `kernel.bpf_stats_enabled=1` the kernel accumulates `run_time_ns` and
//! `run_cnt` for every program and shows them in the fdinfo of each program fd.
//! A tracer's programs are the `anon_inode:bpf-prog` fds it holds open (both
//! rstap and bpftrace keep them for the whole run), so reading
//! `/proc/PID/fdinfo` picks exactly that tracer's programs, with no bpftool and
//! no bpf(2) calls.

use std::io;
use std::path::Path;

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Turns BPF run-time statistics on while alive and puts the old setting back
/// when dropped (the statistics cost a few ns per program run).
#[derive(Debug)]
pub struct StatsEnabled {
    previous: String,
}

impl StatsEnabled {
    pub fn new() -> io::Result<StatsEnabled> {
        let previous = std::fs::read_to_string(SYSCTL)?;
        std::fs::write(SYSCTL, "1\n")?;
        Ok(StatsEnabled { previous })
    }
}

impl Drop for StatsEnabled {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, &self.previous);
    }
}

/// One program's counters at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgRun {
    pub id: u32,
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

/// Counters summed over a set of programs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

impl Totals {
    pub fn of(progs: &[ProgRun]) -> Totals {
        progs.iter().fold(Totals::default(), |t, p| Totals {
            run_time_ns: t.run_time_ns + p.run_time_ns,
            run_cnt: t.run_cnt + p.run_cnt,
        })
    }

    /// What happened between `self` (earlier) and `later`.
    pub fn delta(&self, later: &Totals) -> Totals {
        Totals {
            run_time_ns: later.run_time_ns.saturating_sub(self.run_time_ns),
            run_cnt: later.run_cnt.saturating_sub(self.run_cnt),
        }
    }

    /// Mean kernel time per program run; `None` when nothing ran.
    pub fn ns_per_run(&self) -> Option<f64> {
        (self.run_cnt > 0).then(|| self.run_time_ns as f64 / self.run_cnt as f64)
    }
}

/// The BPF programs process `pid` holds open, each program once.
pub fn programs_of(pid: u32) -> io::Result<Vec<ProgRun>> {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let mut out: Vec<ProgRun> = Vec::new();
    for entry in std::fs::read_dir(proc_dir.join("fd"))? {
        let entry = entry?;
        // The fd may close between readdir and readlink: skip it.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if target.as_os_str() != "anon_inode:bpf-prog" {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(proc_dir.join("fdinfo").join(entry.file_name()))
        else {
            continue;
        };
        if let Some(p) = parse_fdinfo(&info)
            && !out.iter().any(|q| q.id == p.id)
        {
            out.push(p);
        }
    }
    out.sort_by_key(|p| p.id);
    Ok(out)
}

/// The counters in one program fd's fdinfo text.
pub fn parse_fdinfo(text: &str) -> Option<ProgRun> {
    let field = |name: &str| {
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == name)
            .and_then(|(_, v)| v.trim().parse::<u64>().ok())
    };
    Some(ProgRun {
        id: u32::try_from(field("prog_id")?).ok()?,
        run_time_ns: field("run_time_ns")?,
        run_cnt: field("run_cnt")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FDINFO: &str = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1039\n\
        prog_type:\t5\nprog_jited:\t1\nprog_tag:\t06ec40ee6a203f27\nmemlock:\t4096\n\
        prog_id:\t127\nrun_time_ns:\t5310\nrun_cnt:\t42\nrecursion_misses:\t0\n\
        verified_insns:\t40\n";

    #[test]
    fn fdinfo_of_a_program_gives_its_id_and_counters() {
        assert_eq!(
            parse_fdinfo(FDINFO),
            Some(ProgRun {
                id: 127,
                run_time_ns: 5310,
                run_cnt: 42
            }),
            "prog_id, run_time_ns and run_cnt read from a 6.18 fdinfo"
        );
    }

    #[test]
    fn fdinfo_of_a_map_is_not_a_program() {
        assert_eq!(
            parse_fdinfo("pos:\t0\nmap_type:\t2\nmap_id:\t5\n"),
            None,
            "a map fd has no run counters"
        );
    }

    #[test]
    fn delta_divides_time_by_runs() {
        let before = Totals {
            run_time_ns: 100,
            run_cnt: 1,
        };
        let after = Totals {
            run_time_ns: 1_100,
            run_cnt: 11,
        };
        assert_eq!(
            before.delta(&after).ns_per_run(),
            Some(100.0),
            "1000 ns over 10 runs"
        );
        assert_eq!(Totals::default().ns_per_run(), None, "no runs, no mean");
    }
}
