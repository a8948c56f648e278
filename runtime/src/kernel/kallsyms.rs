//! Reads /proc/kallsyms and, when debugfs happens to be mounted, the kprobe
//! blacklist (rstap does not mount debugfs); `rstap_compiler::kallsyms` decides
//! which symbols are probe-able.

use rstap_compiler::kallsyms;
use rstap_compiler::kernel::{KernelError, KernelSymbol};

const KALLSYMS: &str = "/proc/kallsyms";
const KPROBE_BLACKLIST: &str = "/sys/kernel/debug/kprobes/blacklist";

pub fn functions() -> Result<Vec<KernelSymbol>, KernelError> {
    let text = std::fs::read_to_string(KALLSYMS)
        .map_err(|e| KernelError(format!("cannot read {KALLSYMS}: {e}")))?;
    let blacklist = std::fs::read_to_string(KPROBE_BLACKLIST).unwrap_or_default();
    Ok(kallsyms::parse(&text, &blacklist))
}
