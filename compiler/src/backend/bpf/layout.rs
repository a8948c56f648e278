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
    /// A scalar: an ARRAY of one value.
    Scalar,
    /// An array: a HASH keyed by the packed key columns.
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
    pub key_cols: Vec<Col>,
    /// What a scalar or an array element holds (aggregates: their [`StatLayout`]).
    pub value: Col,
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
    /// The keys a kernel-context `foreach` walks, copied out of its array.
    Keys,
    /// Per-CPU working memory of the programs: string values, map keys and
    /// values being built (the BPF stack has 512 bytes).
    Scratch,
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

    pub fn scratch(bytes: u32) -> MapSpec {
        MapSpec {
            name: "scratch".into(),
            kind: MapKind::PerCpuArray,
            key_size: 4,
            value_size: bytes.max(8),
            max_entries: 1,
            role: Role::Scratch,
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

/// One column of a map key or value, or one argument of an output record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Col {
    /// 8 bytes, little-endian.
    Long,
    /// This many bytes (a multiple of 8): the string, NUL-padded.
    Str(u32),
}

impl Col {
    pub fn bytes(self) -> u32 {
        match self {
            Col::Long => 8,
            Col::Str(n) => n,
        }
    }

    /// The column of a value of type `ty` whose strings need up to `bytes`
    /// bytes with the NUL.
    pub fn of(ty: Ty, bytes: u32) -> Col {
        match ty {
            Ty::Long => Col::Long,
            Ty::Str => Col::Str(bytes.max(1).next_multiple_of(8)),
        }
    }
}

/// The widths of columns: the bytes of every string key column of a global,
/// and of its string values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Widths {
    /// Per key column (longs ignore theirs).
    pub keys: Vec<u32>,
    pub value: u32,
}

/// Why a global cannot live in a BPF map (yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// The map for global `index`, or why kernel context cannot use it yet.
pub fn global_map(
    index: usize,
    g: &mir::Global,
    max_entries: u32,
    widths: &Widths,
) -> Result<GlobalMap, Unsupported> {
    let entries = g
        .size
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(max_entries)
        .max(1);
    let key_cols: Vec<Col> = g
        .keys
        .iter()
        .enumerate()
        .map(|(i, &k)| Col::of(k, widths.keys.get(i).copied().unwrap_or(0)))
        .collect();
    let key_size: u32 = key_cols.iter().map(|k| k.bytes()).sum();
    let name = format!("g{index}");
    let (storage, value_size, stat) = match &g.kind {
        GlobalKind::Value(ty) => {
            let value = Col::of(*ty, widths.value);
            let storage = if g.keys.is_empty() {
                Storage::Scalar
            } else {
                Storage::Array
            };
            (storage, value.bytes(), None)
        }
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
    let value = match &g.kind {
        GlobalKind::Value(ty) => Col::of(*ty, widths.value),
        GlobalKind::Stats(_) => Col::Long,
    };
    Ok(GlobalMap {
        name,
        key_cols,
        value,
        storage,
        key_size,
        value_size,
        max_entries,
        stat,
    })
}
