//! User-space addresses to symbols, for `usymname()`, `usymdata()` and the
//! user backtraces: the object a process maps at the address
//! (`/proc/PID/maps`, read when a pid is first seen and again when an address
//! falls outside what was read), then that object's ELF function symbols
//! (read once per path). A process gone before its records are drained has no
//! maps left: its addresses print as hex, as stap prints what it cannot name.

use crate::kernel::binary;
use std::collections::HashMap;
use std::path::Path;

/// The symbol an address falls in; the module is the object's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFound {
    pub name: String,
    pub offset: u64,
    pub size: u64,
    pub module: String,
}

#[derive(Debug, Default)]
pub struct UserSymbols {
    maps: HashMap<i64, Vec<Mapping>>,
    /// Function symbols by path, sorted by file offset: (offset, size, name).
    objects: HashMap<String, Vec<(u64, u64, String)>>,
}

/// A mapping of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mapping {
    start: u64,
    end: u64,
    /// The file offset mapped at `start`.
    offset: u64,
    path: String,
    /// Its code (symbols are looked up only there).
    exec: bool,
}

impl UserSymbols {
    /// The path of the file mapped at `addr` in process `pid` (its code,
    /// its data or its read-only data).
    pub fn module(&mut self, pid: i64, addr: u64) -> Option<String> {
        Some(self.mapping(pid, addr)?.path)
    }

    /// The mapping holding `addr` in process `pid`, reading the process's
    /// maps again when the address is in none known.
    fn mapping(&mut self, pid: i64, addr: u64) -> Option<Mapping> {
        let find = |maps: &[Mapping]| {
            maps.iter()
                .find(|m| (m.start..m.end).contains(&addr))
                .cloned()
        };
        if let Some(m) = self.maps.get(&pid).and_then(|m| find(m)) {
            return Some(m);
        }
        let fresh = read_maps(pid);
        let m = find(&fresh);
        if !fresh.is_empty() || !self.maps.contains_key(&pid) {
            self.maps.insert(pid, fresh);
        }
        m
    }

    /// The symbol holding `addr` in process `pid`.
    pub fn lookup(&mut self, pid: i64, addr: u64) -> Option<UserFound> {
        let mapping = self.mapping(pid, addr).filter(|m| m.exec)?;
        let at = addr - mapping.start + mapping.offset;
        let syms = self
            .objects
            .entry(mapping.path.clone())
            .or_insert_with(|| object_symbols(&mapping.path));
        let i = syms.partition_point(|(o, _, _)| *o <= at).checked_sub(1)?;
        let (start, size, name) = &syms[i];
        let offset = at - start;
        (offset < *size).then(|| UserFound {
            name: name.clone(),
            offset,
            size: *size,
            module: mapping.path.clone(),
        })
    }
}

/// The file-backed mappings of `pid` (none when it is gone).
fn read_maps(pid: i64) -> Vec<Mapping> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return Vec::new();
    };
    parse_maps(&text)
}

/// Lines `start-end perms offset dev inode path`.
fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (range, perms, offset) = (f.next()?, f.next()?, f.next()?);
            let path = f.nth(2)?;
            if !path.starts_with('/') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
                path: path.to_string(),
                exec: perms.contains('x'),
            })
        })
        .collect()
}

fn object_symbols(path: &str) -> Vec<(u64, u64, String)> {
    let Ok(bin) = binary::load(Path::new(path)) else {
        return Vec::new();
    };
    let mut syms: Vec<(u64, u64, String)> = bin
        .symbols
        .into_iter()
        .filter(|s| s.size > 0)
        .map(|s| (s.file_offset, s.size, s.name))
        .collect();
    syms.sort_unstable();
    syms.dedup_by_key(|s| s.0);
    syms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keep_file_backed_mappings_and_which_are_code() {
        let text = "55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 131 /tmp/w\n\
                    55d0c0a01000-55d0c0a02000 r-xp 00001000 08:01 131 /tmp/w\n\
                    7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0 [stack]\n\
                    7ffd1c1fe000-7ffd1c200000 r-xp 00000000 00:00 0 [vdso]\n";
        assert_eq!(
            parse_maps(text),
            [
                Mapping {
                    start: 0x55d0c0a00000,
                    end: 0x55d0c0a01000,
                    offset: 0,
                    path: "/tmp/w".into(),
                    exec: false,
                },
                Mapping {
                    start: 0x55d0c0a01000,
                    end: 0x55d0c0a02000,
                    offset: 0x1000,
                    path: "/tmp/w".into(),
                    exec: true,
                }
            ]
        );
    }

    #[test]
    fn this_process_names_its_own_function() {
        // The test binary maps itself; a function of it is found by its address.
        let addr = this_process_names_its_own_function as *const () as u64;
        let mut u = UserSymbols::default();
        let found = u
            .lookup(i64::from(std::process::id()), addr)
            .expect("the test binary's own function");
        assert!(
            found.name.contains("this_process_names_its_own_function") && found.offset == 0,
            "{found:?}"
        );
        assert_eq!(u.lookup(i64::from(std::process::id()), 8), None);
    }
}
