//! Kernel addresses to symbol names, for `symname()` and `symdata()`: the
//! sorted `/proc/kallsyms`, read once on first use. An address outside every
//! symbol prints as hex, as stap prints what it cannot name.

use std::sync::OnceLock;

#[derive(Debug, Default)]
pub struct Symbols {
    table: OnceLock<Vec<(u64, String)>>,
}

impl Symbols {
    /// The name of the symbol containing `addr`, or `0x...` when none does.
    pub fn name(&self, addr: i64) -> Vec<u8> {
        let addr = addr as u64;
        let table = self.table.get_or_init(load);
        let i = table.partition_point(|(a, _)| *a <= addr);
        match i.checked_sub(1).and_then(|i| table.get(i)) {
            Some((_, name)) if addr != 0 => name.clone().into_bytes(),
            _ => format!("0x{addr:x}").into_bytes(),
        }
    }
}

/// Address-sorted symbols; empty when kallsyms cannot be read (or shows zeros
/// to an unprivileged reader).
fn load() -> Vec<(u64, String)> {
    let Ok(text) = std::fs::read_to_string("/proc/kallsyms") else {
        return Vec::new();
    };
    let mut table: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let addr = u64::from_str_radix(it.next()?, 16).ok()?;
            let _kind = it.next()?;
            let name = it.next()?;
            (addr != 0).then(|| (addr, name.to_string()))
        })
        .collect();
    table.sort_unstable();
    table
}
