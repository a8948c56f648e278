//! A `KernelInfo` fed from files copied from a real kernel's tracefs
//! (`fixtures/kernel/`), so compiler tests need no kernel.

use rstap_compiler::kernel::{KernelError, KernelInfo, TracepointId};
use rstap_compiler::tracepoint::{TracepointFormat, parse_format};
use std::path::PathBuf;

pub struct FixtureKernel {
    root: PathBuf,
}

impl FixtureKernel {
    pub fn new() -> FixtureKernel {
        FixtureKernel {
            root: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kernel"),
        }
    }
}

impl KernelInfo for FixtureKernel {
    fn tracepoints(&self) -> Result<Vec<TracepointId>, KernelError> {
        let text = std::fs::read_to_string(self.root.join("available_events"))
            .map_err(|e| KernelError(e.to_string()))?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(s, n)| TracepointId {
                system: s.into(),
                name: n.into(),
            })
            .collect())
    }

    fn tracepoint_format(&self, tp: &TracepointId) -> Result<TracepointFormat, KernelError> {
        let path = self
            .root
            .join("events")
            .join(&tp.system)
            .join(&tp.name)
            .join("format");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| KernelError(format!("{}: {e}", path.display())))?;
        parse_format(&text).map_err(KernelError)
    }
}
