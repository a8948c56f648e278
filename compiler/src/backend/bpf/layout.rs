//! Where each global lives when kernel-context handlers use it: one BPF map per
//! global, with key and value layouts the runtime reads back. Aggregates are
//! per-CPU (updated in place, merged by the runtime); scalars are one-entry
//! arrays; arrays are hash maps keyed by the packed key tuple.

use super::object::MapDef;
pub use super::object::MapKind;
use crate::hir::Histogram;
use crate::mir::{self, GlobalKind, Ty};

/// Buckets of a log histogram: index 64 holds 0, `64 ± n` the values whose
/// magnitude has bit length `n` (the runtime's `LogHist` layout).
pub const LOG_BUCKETS: u32 = 128;

/// What a map holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A long scalar: an ARRAY of one 8-byte value.
    Scalar,
    /// An array of longs keyed by longs: a HASH, 8 bytes per key column.
    Array,
    /// A statistics scalar: a PERCPU_ARRAY of one [`StatLayout`] value.
    Stats,
    /// An array of statistics keyed by longs: a PERCPU_HASH.
    StatsArray,
}

/// The value layout of an aggregate: count, sum, min and max as u64 words, then
/// the histogram buckets, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatLayout {
    /// Number of histogram buckets after the four fixed words.
    pub buckets: u32,
}

impl StatLayout {
    pub const COUNT: i16 = 0;
    pub const SUM: i16 = 8;
    pub const MIN: i16 = 16;
    pub const MAX: i16 = 24;
    pub const BUCKETS: i16 = 32;

    pub fn size(self) -> u32 {
        32 + 8 * self.buckets
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalMap {
    /// The map's name: `g` and the global's index (BPF names are short).
    pub name: String,
    pub storage: Storage,
    /// The key's columns, packed in order (empty for a scalar).
    pub key_cols: Vec<KeyCol>,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub stat: Option<StatLayout>,
}

/// What a map of the object is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The storage of global `index`.
    Global(usize, GlobalMap),
    /// The ring buffer that carries print records to the runtime.
    Output,
    /// A per-CPU count of print records the ring buffer had no room for.
    Lost,
    /// `target()`: the pid the runtime writes once it knows it.
    Target,
}

/// One map of the object, in the order `ld_map` immediates count them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec {
    pub name: String,
    pub kind: MapKind,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub role: Role,
}

/// The ring buffer's size: 1 MiB of records between two reads.
pub const OUTPUT_BYTES: u32 = 1 << 20;

impl MapSpec {
    pub fn global(index: usize, g: GlobalMap) -> MapSpec {
        let kind = match g.storage {
            Storage::Scalar => MapKind::Array,
            Storage::Array => MapKind::Hash,
            Storage::Stats => MapKind::PerCpuArray,
            Storage::StatsArray => MapKind::PerCpuHash,
        };
        MapSpec {
            name: g.name.clone(),
            kind,
            key_size: g.key_size,
            value_size: g.value_size,
            max_entries: g.max_entries,
            role: Role::Global(index, g),
        }
    }

    pub fn output() -> MapSpec {
        MapSpec {
            name: "output".into(),
            kind: MapKind::RingBuf,
            key_size: 0,
            value_size: 0,
            max_entries: OUTPUT_BYTES,
            role: Role::Output,
        }
    }

    /// The object writer's description of this map.
    pub fn def(&self) -> MapDef {
        MapDef {
            name: self.name.clone(),
            kind: self.kind,
            key_size: self.key_size,
            value_size: self.value_size,
            max_entries: self.max_entries,
            flags: 0,
        }
    }

    pub fn target() -> MapSpec {
        MapSpec {
            name: "target".into(),
            kind: MapKind::Array,
            key_size: 4,
            value_size: 8,
            max_entries: 1,
            role: Role::Target,
        }
    }

    pub fn lost() -> MapSpec {
        MapSpec {
            name: "lost".into(),
            kind: MapKind::PerCpuArray,
            key_size: 4,
            value_size: 8,
            max_entries: 1,
            role: Role::Lost,
        }
    }
}

/// One column of a map key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyCol {
    /// 8 bytes, little-endian.
    Long,
    /// [`STRING_KEY_BYTES`] bytes: the string, NUL-padded.
    Str,
}

/// The bytes a string key column takes: enough for a task's comm. Longer
/// strings are refused as keys in kernel context for now.
pub const STRING_KEY_BYTES: u32 = 16;

impl KeyCol {
    pub fn bytes(self) -> u32 {
        match self {
            KeyCol::Long => 8,
            KeyCol::Str => STRING_KEY_BYTES,
        }
    }
}

/// Why a global cannot live in a BPF map (yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// The map for global `index`, or why kernel context cannot use it yet.
pub fn global_map(
    index: usize,
    g: &mir::Global,
    max_entries: u32,
) -> Result<GlobalMap, Unsupported> {
    let entries = g
        .size
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(max_entries)
        .max(1);
    let key_cols: Vec<KeyCol> = g
        .keys
        .iter()
        .map(|k| match k {
            Ty::Long => KeyCol::Long,
            Ty::Str => KeyCol::Str,
        })
        .collect();
    let key_size: u32 = key_cols.iter().map(|k| k.bytes()).sum();
    let name = format!("g{index}");
    let (storage, value_size, stat) = match &g.kind {
        GlobalKind::Value(Ty::Str) => {
            return Err(Unsupported(format!(
                "global '{}' holds strings, which kernel-context probes cannot use yet",
                g.name
            )));
        }
        GlobalKind::Value(Ty::Long) if g.keys.is_empty() => (Storage::Scalar, 8, None),
        GlobalKind::Value(Ty::Long) => (Storage::Array, 8, None),
        GlobalKind::Stats(spec) => {
            let unsupported = spec.variance_shift > 0
                || spec.hists.len() > 1
                || spec.hists.iter().any(|h| *h != Histogram::Log)
                || (!spec.hists.is_empty() && !g.keys.is_empty());
            if unsupported {
                return Err(Unsupported(format!(
                    "global '{}' keeps @variance, a linear histogram or a histogram per array element, which kernel-context probes cannot fill yet",
                    g.name
                )));
            }
            let buckets = if spec.hists.is_empty() {
                0
            } else {
                LOG_BUCKETS
            };
            let layout = StatLayout { buckets };
            let storage = if g.keys.is_empty() {
                Storage::Stats
            } else {
                Storage::StatsArray
            };
            (storage, layout.size(), Some(layout))
        }
    };
    let (key_size, max_entries) = match storage {
        Storage::Scalar | Storage::Stats => (4, 1),
        Storage::Array | Storage::StatsArray => (key_size, entries),
    };
    Ok(GlobalMap {
        name,
        key_cols,
        storage,
        key_size,
        value_size,
        max_entries,
        stat,
    })
}
