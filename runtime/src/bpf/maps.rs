//! Raw access to BPF maps through `bpf(2)`. Typed map wrappers fix key and value
//! sizes at Rust compile time; a script decides them at run time, so this layer
//! works on byte slices whose sizes it checks against the map's own.
//!
//! Per-CPU maps answer a lookup with one value per *possible* CPU, each padded to
//! a multiple of 8 bytes (the kernel's `bpf_percpu_*_copy` layout).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;

const POSSIBLE_CPUS: &str = "/sys/devices/system/cpu/possible";

/// How an update treats an existing entry (`BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// Create the entry or overwrite it.
    Any = 0,
    /// Create the entry; fail if it exists.
    NoExist = 1,
    /// Overwrite the entry; fail if it does not exist.
    Exist = 2,
}

/// What went wrong with a map operation.
#[derive(Debug)]
pub enum MapError {
    /// A key or value buffer does not have the map's size.
    Size {
        map: String,
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// A per-CPU update needs one value per possible CPU.
    CpuCount {
        map: String,
        expected: usize,
        got: usize,
    },
    /// The operation needs a per-CPU map, or must not be used on one.
    PerCpu { map: String, op: &'static str },
    /// The kernel refused the operation.
    Kernel {
        map: String,
        op: &'static str,
        error: io::Error,
    },
    /// `/sys/devices/system/cpu/possible` could not be read or parsed.
    PossibleCpus(String),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::Size {
                map,
                what,
                expected,
                got,
            } => write!(
                f,
                "map `{map}` has {expected}-byte {what}s; the {what} given has {got} bytes"
            ),
            MapError::CpuCount { map, expected, got } => write!(
                f,
                "cannot update map `{map}`: it needs one value for each of the {expected} possible CPUs, not {got}"
            ),
            MapError::PerCpu { map, op } => {
                write!(
                    f,
                    "cannot {op} map `{map}`: wrong call for its per-CPU kind"
                )
            }
            MapError::Kernel { map, op, error } => {
                write!(f, "cannot {op} map `{map}`: {}", explain(error))
            }
            MapError::PossibleCpus(why) => {
                write!(f, "cannot count the possible CPUs ({POSSIBLE_CPUS}): {why}")
            }
        }
    }
}

impl std::error::Error for MapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MapError::Kernel { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The errno, in words that say what it means for a map.
fn explain(error: &io::Error) -> String {
    let meaning = match error.raw_os_error() {
        Some(libc::E2BIG) => "the map is full (max_entries reached)",
        Some(libc::EEXIST) => "the key already exists",
        Some(libc::ENOENT) => "no such key",
        Some(libc::EPERM | libc::EACCES) => "permission denied (needs root or CAP_BPF)",
        Some(libc::EINVAL) => "the kernel rejected the arguments",
        Some(libc::EBADF) => "the map is closed",
        Some(libc::ENOMEM) => "out of memory",
        _ => return error.to_string(),
    };
    format!("{meaning} ({error})")
}

/// One BPF map, by file descriptor, with the sizes the kernel gave it.
#[derive(Debug)]
pub struct RawMap {
    name: String,
    fd: OwnedFd,
    key_size: u32,
    value_size: u32,
    per_cpu: bool,
}

/// The part of `union bpf_attr` the element commands read.
#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    /// `value` for lookup/update, `next_key` for get_next_key.
    value: u64,
    flags: u64,
}

impl RawMap {
    /// The map's descriptor, for programs that load it.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A map known by its fd; the sizes must be the kernel's (from
    /// `BPF_OBJ_GET_INFO_BY_FD` or the object that created it), since buffers
    /// handed to the kernel are sized by them.
    pub fn new(name: &str, fd: OwnedFd, key_size: u32, value_size: u32, per_cpu: bool) -> RawMap {
        RawMap {
            name: name.to_string(),
            fd,
            key_size,
            value_size,
            per_cpu,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_size(&self) -> u32 {
        self.key_size
    }

    pub fn value_size(&self) -> u32 {
        self.value_size
    }

    pub fn is_per_cpu(&self) -> bool {
        self.per_cpu
    }

    /// The value under `key`, or `None` when there is none. Not for per-CPU
    /// maps: use [`RawMap::lookup_per_cpu`].
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        self.not_per_cpu("look up")?;
        let mut value = vec![0; self.value_size as usize];
        match self.elem(BPF_MAP_LOOKUP_ELEM, "look up", key, value.as_mut_ptr(), 0) {
            Ok(()) => Ok(Some(value)),
            Err(e) if is_enoent(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One value per possible CPU under `key`, or `None` when there is none.
    pub fn lookup_per_cpu(&self, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>, MapError> {
        let stride = self.per_cpu_stride("look up")?;
        let cpus = possible_cpus()?;
        let mut values = vec![0u8; stride * cpus];
        match self.elem(BPF_MAP_LOOKUP_ELEM, "look up", key, values.as_mut_ptr(), 0) {
            Ok(()) => Ok(Some(
                values
                    .chunks(stride)
                    .map(|v| v[..self.value_size as usize].to_vec())
                    .collect(),
            )),
            Err(e) if is_enoent(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores `value` under `key`. Not for per-CPU maps: use
    /// [`RawMap::update_per_cpu`].
    pub fn update(&self, key: &[u8], value: &[u8], how: Update) -> Result<(), MapError> {
        self.not_per_cpu("update")?;
        self.check_size("value", self.value_size, value.len())?;
        // The kernel only reads the value on update.
        let value = value.as_ptr().cast_mut();
        self.elem(BPF_MAP_UPDATE_ELEM, "update", key, value, how as u64)
    }

    /// Stores `values[cpu]` under `key` for every possible CPU; there must be
    /// exactly one value per possible CPU.
    pub fn update_per_cpu(
        &self,
        key: &[u8],
        values: &[&[u8]],
        how: Update,
    ) -> Result<(), MapError> {
        let stride = self.per_cpu_stride("update")?;
        let cpus = possible_cpus()?;
        if values.len() != cpus {
            return Err(MapError::CpuCount {
                map: self.name.clone(),
                expected: cpus,
                got: values.len(),
            });
        }
        let mut buffer = vec![0u8; stride * cpus];
        for (slot, value) in buffer.chunks_mut(stride).zip(values) {
            self.check_size("value", self.value_size, value.len())?;
            slot[..value.len()].copy_from_slice(value);
        }
        self.elem(
            BPF_MAP_UPDATE_ELEM,
            "update",
            key,
            buffer.as_mut_ptr(),
            how as u64,
        )
    }

    /// Removes `key`; `false` when it was not there. Array maps cannot delete
    /// (the kernel answers EINVAL): store zeros instead.
    pub fn delete(&self, key: &[u8]) -> Result<bool, MapError> {
        match self.elem(
            BPF_MAP_DELETE_ELEM,
            "delete from",
            key,
            std::ptr::null_mut(),
            0,
        ) {
            Ok(()) => Ok(true),
            Err(e) if is_enoent(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The key after `key` (the first key for `None`), or `None` at the end.
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        let mut next = vec![0; self.key_size as usize];
        let result = match key {
            Some(key) => self.elem(BPF_MAP_GET_NEXT_KEY, "iterate", key, next.as_mut_ptr(), 0),
            None => self.raw_elem(BPF_MAP_GET_NEXT_KEY, "iterate", 0, next.as_mut_ptr(), 0),
        };
        match result {
            Ok(()) => Ok(Some(next)),
            Err(e) if is_enoent(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// All keys, in the kernel's order. A key deleted while iterating may make
    /// the kernel start over (hash maps), as with any `get_next_key` walk.
    pub fn keys(&self) -> Keys<'_> {
        Keys {
            map: self,
            last: None,
            done: false,
        }
    }

    fn not_per_cpu(&self, op: &'static str) -> Result<(), MapError> {
        if self.per_cpu {
            return Err(MapError::PerCpu {
                map: self.name.clone(),
                op,
            });
        }
        Ok(())
    }

    fn per_cpu_stride(&self, op: &'static str) -> Result<usize, MapError> {
        if !self.per_cpu {
            return Err(MapError::PerCpu {
                map: self.name.clone(),
                op,
            });
        }
        Ok((self.value_size as usize).next_multiple_of(8))
    }

    fn check_size(&self, what: &'static str, expected: u32, got: usize) -> Result<(), MapError> {
        if got != expected as usize {
            return Err(MapError::Size {
                map: self.name.clone(),
                what,
                expected: expected as usize,
                got,
            });
        }
        Ok(())
    }

    /// An element command with a key of the map's key size. `value` must point
    /// to a buffer of the size the command writes or reads for this map (the
    /// value size, times the padded per-CPU count for per-CPU maps, the key
    /// size for get_next_key) or be null for delete; every caller above sizes it.
    fn elem(
        &self,
        cmd: libc::c_long,
        op: &'static str,
        key: &[u8],
        value: *mut u8,
        flags: u64,
    ) -> Result<(), MapError> {
        self.check_size("key", self.key_size, key.len())?;
        self.raw_elem(cmd, op, key.as_ptr() as u64, value, flags)
    }

    fn raw_elem(
        &self,
        cmd: libc::c_long,
        op: &'static str,
        key: u64,
        value: *mut u8,
        flags: u64,
    ) -> Result<(), MapError> {
        let mut attr = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            _pad: 0,
            key,
            value: value as u64,
            flags,
        };
        #[expect(
            unsafe_code,
            reason = "bpf(2) has no safe wrapper for run-time-sized maps"
        )]
        // SAFETY: `attr` is a live, initialised prefix of `union bpf_attr` and its
        // size is passed, so the kernel reads no further. The key pointer is null
        // or points to `key_size` readable bytes (checked in `elem`); the value
        // pointer is null or points to a buffer sized for this command and map
        // by the caller, as `elem` documents. Both outlive the call.
        let ret =
            unsafe { libc::syscall(libc::SYS_bpf, cmd, &raw mut attr, size_of::<ElemAttr>()) };
        if ret < 0 {
            return Err(MapError::Kernel {
                map: self.name.clone(),
                op,
                error: io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

fn is_enoent(e: &MapError) -> bool {
    matches!(e, MapError::Kernel { error, .. } if error.raw_os_error() == Some(libc::ENOENT))
}

/// Iterator over a map's keys ([`RawMap::keys`]).
#[derive(Debug)]
pub struct Keys<'a> {
    map: &'a RawMap,
    last: Option<Vec<u8>>,
    done: bool,
}

impl Iterator for Keys<'_> {
    type Item = Result<Vec<u8>, MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.map.next_key(self.last.as_deref()) {
            Ok(Some(key)) => {
                self.last = Some(key.clone());
                Some(Ok(key))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// How many CPUs the kernel sizes per-CPU values for (read once).
pub fn possible_cpus() -> Result<usize, MapError> {
    possible().map(|(count, _)| count)
}

/// The highest possible CPU's id plus one: the CPU numbers a BPF program may
/// ask `bpf_map_lookup_percpu_elem` for.
pub fn possible_cpu_ids() -> Result<usize, MapError> {
    possible().map(|(_, ids)| ids)
}

/// The possible CPUs' count and id bound (read once).
fn possible() -> Result<(usize, usize), MapError> {
    static CPUS: OnceLock<Result<(usize, usize), String>> = OnceLock::new();
    CPUS.get_or_init(|| {
        let text = std::fs::read_to_string(POSSIBLE_CPUS).map_err(|e| e.to_string())?;
        parse_cpu_list(&text).ok_or_else(|| format!("cannot parse {:?}", text.trim()))
    })
    .clone()
    .map_err(MapError::PossibleCpus)
}

/// Every CPU id of a kernel CPU list such as `0-3,8,10-11`.
pub(super) fn cpu_ids(text: &str) -> Option<Vec<usize>> {
    let mut ids = Vec::new();
    for part in text.trim().split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.parse::<usize>().ok()?, hi.parse::<usize>().ok()?),
            None => {
                let n = part.parse::<usize>().ok()?;
                (n, n)
            }
        };
        if hi < lo {
            return None;
        }
        ids.extend(lo..=hi);
    }
    (!ids.is_empty()).then_some(ids)
}

/// The number of CPUs in a kernel CPU list such as `0-3,8,10-11`, and its
/// highest id plus one.
fn parse_cpu_list(text: &str) -> Option<(usize, usize)> {
    let ids = cpu_ids(text)?;
    Some((ids.len(), ids.iter().max()? + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_every_cpu_and_bound_their_ids() {
        assert_eq!(parse_cpu_list("0\n"), Some((1, 1)));
        assert_eq!(parse_cpu_list("0-1\n"), Some((2, 2)));
        assert_eq!(parse_cpu_list("0-3,8,10-11"), Some((7, 12)));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn errors_are_sentences() {
        let e = MapError::Size {
            map: "counts".into(),
            what: "key",
            expected: 4,
            got: 8,
        };
        assert_eq!(
            e.to_string(),
            "map `counts` has 4-byte keys; the key given has 8 bytes"
        );
        let e = MapError::Kernel {
            map: "counts".into(),
            op: "update",
            error: io::Error::from_raw_os_error(libc::E2BIG),
        };
        assert!(
            e.to_string()
                .starts_with("cannot update map `counts`: the map is full (max_entries reached) ("),
            "{e}"
        );
    }
}
