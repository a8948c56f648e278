//! What perf events rstap opens: the hardware and software events of
//! `perf.*` and `timer.profile` probes, how often they sample, and the
//! dynamic `kprobe`/`uprobe` PMUs kernel and user function probes use.

use super::sys::{self, PerfEventAttr};
use std::path::Path;

const PMU_DIR: &str = "/sys/bus/event_source/devices";

/// A perf event a program samples on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerfEventConfig {
    Software(SoftwareEvent),
    Hardware(HardwareEvent),
}

/// The software events rstap's probe points name (`perf.sw.*`, `timer.profile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftwareEvent {
    CpuClock,
    TaskClock,
    PageFaults,
    ContextSwitches,
    CpuMigrations,
    PageFaultsMin,
    PageFaultsMaj,
    AlignmentFaults,
    EmulationFaults,
    /// Any `PERF_COUNT_SW_*` by number.
    Other(u64),
}

/// The hardware events of `perf.hw.*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HardwareEvent {
    CpuCycles,
    Instructions,
    CacheReferences,
    CacheMisses,
    BranchInstructions,
    BranchMisses,
    BusCycles,
    /// Any `PERF_COUNT_HW_*` by number.
    Other(u64),
}

impl PerfEventConfig {
    /// `perf_event_attr`'s type and config.
    pub fn type_and_config(self) -> (u32, u64) {
        match self {
            PerfEventConfig::Software(e) => (
                sys::PERF_TYPE_SOFTWARE,
                match e {
                    SoftwareEvent::CpuClock => 0,
                    SoftwareEvent::TaskClock => 1,
                    SoftwareEvent::PageFaults => 2,
                    SoftwareEvent::ContextSwitches => 3,
                    SoftwareEvent::CpuMigrations => 4,
                    SoftwareEvent::PageFaultsMin => 5,
                    SoftwareEvent::PageFaultsMaj => 6,
                    SoftwareEvent::AlignmentFaults => 7,
                    SoftwareEvent::EmulationFaults => 8,
                    SoftwareEvent::Other(n) => n,
                },
            ),
            PerfEventConfig::Hardware(e) => (
                sys::PERF_TYPE_HARDWARE,
                match e {
                    HardwareEvent::CpuCycles => 0,
                    HardwareEvent::Instructions => 1,
                    HardwareEvent::CacheReferences => 2,
                    HardwareEvent::CacheMisses => 3,
                    HardwareEvent::BranchInstructions => 4,
                    HardwareEvent::BranchMisses => 5,
                    HardwareEvent::BusCycles => 6,
                    HardwareEvent::Other(n) => n,
                },
            ),
        }
    }
}

/// How often a perf event runs its program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplePolicy {
    /// Every N events.
    Period(u64),
    /// N times a second.
    Frequency(u64),
}

/// A dynamic PMU (`kprobe`, `uprobe`): its type, and the config bit that
/// makes a return probe.
#[derive(Debug)]
pub struct Pmu {
    type_: u32,
    retprobe_bit: Option<u32>,
}

impl Pmu {
    pub fn read(name: &str) -> Option<Pmu> {
        let dir = Path::new(PMU_DIR).join(name);
        let type_ = std::fs::read_to_string(dir.join("type"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // `config:0`
        let retprobe_bit = std::fs::read_to_string(dir.join("format/retprobe"))
            .ok()
            .and_then(|f| f.trim().strip_prefix("config:")?.parse().ok());
        Some(Pmu {
            type_,
            retprobe_bit,
        })
    }

    /// The attr of a probe on `name_ptr` (a function name or a file path)
    /// at `offset`.
    pub fn attr(&self, ret: bool, name_ptr: u64, offset: u64) -> PerfEventAttr {
        let config = match (ret, self.retprobe_bit) {
            (true, Some(bit)) => 1u64 << bit,
            _ => 0,
        };
        PerfEventAttr {
            type_: self.type_,
            config,
            sample: 1,
            wakeup_events: 1,
            flags: sys::PERF_ATTR_DISABLED,
            config1: name_ptr,
            config2: offset,
            ..PerfEventAttr::default()
        }
    }
}
