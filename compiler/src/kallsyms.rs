//! Probe-able kernel functions from the text of /proc/kallsyms (and, where the
//! kernel exposes one, its kprobe blacklist). The runtime reads the files; this
//! module only reads text.
//!
//! Kept: text symbols (`t`/`T`) of vmlinux and of loaded modules. Dropped: names
//! on the blacklist, the `__pfx_`/`__cfi_` padding and CFI stubs that precede
//! functions on 6.x kernels, compiler-made clones such as `foo.isra.0` or
//! `foo.cold` (stap names functions by their source names), and the pseudo-modules
//! `[bpf]` (loaded BPF programs) and `[__builtin__*]` (ftrace and kprobe
//! trampolines), which are not kernel functions; and vmlinux's `__init`
//! functions (between `_sinittext` and `_einittext`), freed after boot, which
//! no probe can attach to.

use crate::kernel::KernelSymbol;
use std::collections::HashSet;

/// `kallsyms`: lines `ADDR TYPE NAME [\t[MODULE]]`. `blacklist`: lines
/// `0xSTART-0xEND\tNAME`, as /sys/kernel/debug/kprobes/blacklist has them (may be
/// empty). The result is sorted by name, then module, without duplicates.
pub fn parse(kallsyms: &str, blacklist: &str) -> Vec<KernelSymbol> {
    let blacklist: HashSet<&str> = blacklist
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    let init = init_text(kallsyms);
    let mut out: Vec<KernelSymbol> = kallsyms
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (addr, kind, name) = (f.next()?, f.next()?, f.next()?);
            if !matches!(kind, "t" | "T") || !probeable(name) || blacklist.contains(name) {
                return None;
            }
            let freed = init
                .as_ref()
                .zip(u64::from_str_radix(addr, 16).ok())
                .is_some_and(|(range, a)| range.contains(&a));
            let module = match f.next() {
                None if freed => return None,
                Some(m) => {
                    let m = m.strip_prefix('[')?.strip_suffix(']')?;
                    if m == "bpf" || m.starts_with("__builtin") {
                        return None;
                    }
                    Some(m.to_string())
                }
                None => None,
            };
            Some(KernelSymbol {
                name: name.to_string(),
                module,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// vmlinux's init text, when kallsyms shows real addresses (root).
fn init_text(kallsyms: &str) -> Option<std::ops::Range<u64>> {
    let find = |sym: &str| {
        kallsyms.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            let (addr, _, name) = (f.next()?, f.next()?, f.next()?);
            (name == sym && f.next().is_none())
                .then(|| u64::from_str_radix(addr, 16).ok())
                .flatten()
        })
    };
    let range = find("_sinittext")?..find("_einittext")?;
    (range.start > 0 && !range.is_empty()).then_some(range)
}

fn probeable(name: &str) -> bool {
    !(name.starts_with("__pfx_") || name.starts_with("__cfi_") || name.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_text_symbols_sorted_and_drops_the_unprobeable() {
        let text = "ffffffff81000000 T _stext\n\
                    ffffffff816b89e0 t __pfx_vfs_read\n\
                    ffffffff816b89f0 T vfs_read\n\
                    ffffffff81000010 D some_data\n\
                    ffffffff81000020 t helper.isra.0\n\
                    ffffffff81000030 t local_fn\n\
                    ffffffff81000040 t local_fn\n\
                    ffffffffc0000000 t nf_hook\t[nf_tables]\n\
                    ffffffffc0201000 t ftrace_trampoline\t[__builtin__ftrace]\n\
                    ffffffffc0202000 t bpf_prog_6deef7357e7b4530_sd_fw_egress\t[bpf]\n\
                    ffffffff81000050 T do_not_probe\n\
                    ffffffff82000000 T _sinittext\n\
                    ffffffff82000100 t vfs_caches_init\n\
                    ffffffff82001000 T _einittext\n";
        let got = parse(
            text,
            "0xffffffff81000050-0xffffffff81000060\tdo_not_probe\n",
        );
        let names: Vec<(&str, Option<&str>)> = got
            .iter()
            .map(|s| (s.name.as_str(), s.module.as_deref()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("_einittext", None),
                ("_stext", None),
                ("local_fn", None),
                ("nf_hook", Some("nf_tables")),
                ("vfs_read", None)
            ]
        );
    }
}
