//! Where each global lives when kernel-context handlers use it: one BPF map per
//! global, with key and value layouts the runtime reads back. Aggregates are
//! per-CPU (updated in place, merged by the runtime); scalars are one-entry
//! arrays; arrays are hash maps keyed by the packed key tuple (LRU hash maps
//! for `global a[N]%`).

use super::object::MapDef;
pub use super::object::MapKind;
use crate::hir::{Histogram, StatOp};
use crate::mir::{self, GlobalKind, Inst, IterSource, SortKey, StatsSpec, Ty};

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

/// The value layout of an aggregate, one per CPU: count, sum, min and max as
/// 8-byte words; then, when the script reads `@variance`, stap's Welford state
/// (the mean and M2 scaled by `2^shift`, and the variance they give); then the
/// buckets of each histogram the script reads, in the order of the MIR's
/// `StatsSpec::hists`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatLayout {
    /// `Some(shift)` when the Welford words are kept.
    pub variance: Option<u32>,
    pub hists: Vec<HistLayout>,
}

/// Where one histogram's buckets sit in an aggregate's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistLayout {
    pub hist: Histogram,
    /// Byte offset of bucket 0.
    pub offset: u32,
    pub buckets: u32,
}

impl StatLayout {
    pub const COUNT: i16 = 0;
    pub const SUM: i16 = 8;
    pub const MIN: i16 = 16;
    pub const MAX: i16 = 24;
    /// The running mean, scaled by `2^shift`.
    pub const AVG: i16 = 32;
    pub const M2: i16 = 40;
    /// `M2 / (count - 1)`, scaled by `2^(2*shift)`.
    pub const VARIANCE: i16 = 48;

    pub fn new(spec: &StatsSpec, variance: bool) -> StatLayout {
        let mut offset = if variance { 56 } else { 32 };
        let hists = spec
            .hists
            .iter()
            .map(|h| {
                let buckets = match h {
                    Histogram::Log => LOG_BUCKETS,
                    Histogram::Linear { start, stop, step } => {
                        LinearBuckets::new(*start, *stop, *step).buckets
                    }
                };
                let l = HistLayout {
                    hist: h.clone(),
                    offset,
                    buckets,
                };
                offset += 8 * buckets;
                l
            })
            .collect();
        StatLayout {
            variance: variance.then_some(spec.variance_shift),
            hists,
        }
    }

    pub fn size(&self) -> u32 {
        self.hists
            .last()
            .map_or(if self.variance.is_some() { 56 } else { 32 }, |h| {
                h.offset + 8 * h.buckets
            })
    }

    /// Where histogram `h` is kept, if it is.
    pub fn hist(&self, h: &Histogram) -> Option<&HistLayout> {
        self.hists.iter().find(|l| l.hist == *h)
    }
}

/// A `@hist_linear(v, start, stop, step)` as stap's runtime computes with it:
/// the parameters are C `int`s, a value goes to bucket `(v - start) / step + 1`
/// (int64 subtraction, unsigned division), bucket 0 below `start`, the last one
/// above. A zero step or a bucket count outside 3..=128, which the runtime
/// refuses before any probe runs, is coerced so nothing can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearBuckets {
    pub start: i64,
    /// The divisor: the step read as an unsigned 32-bit number.
    pub step: u64,
    /// Underflow and overflow included.
    pub buckets: u32,
}

impl LinearBuckets {
    pub fn new(start: i64, stop: i64, step: i64) -> LinearBuckets {
        let (start, stop) = (start as i32, stop as i32);
        let step = match step as i32 {
            0 => 1,
            s => s,
        };
        let n = i64::from(stop.wrapping_sub(start).wrapping_div(step)).saturating_add(3);
        LinearBuckets {
            start: i64::from(start),
            step: u64::from(step as u32),
            buckets: u32::try_from(n.clamp(3, 128)).unwrap_or(3),
        }
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
    /// `global a[N]%`: a full array drops its least recently used entry
    /// (an LRU map) instead of raising an overflow error.
    pub wrap: bool,
    /// `global a[N]`: the overflow error names the size instead of MAXMAPENTRIES.
    pub sized: bool,
}

impl GlobalMap {
    /// stap's runtime error when an insert finds the array full.
    pub fn overflow_message(&self) -> String {
        if self.sized {
            format!("Array overflow, check size limit ({})", self.max_entries)
        } else {
            "Array overflow, check MAXMAPENTRIES".to_string()
        }
    }
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
    /// One zeroed value as large as the largest aggregate element: what a new
    /// element of a stats array starts as (too large for the BPF stack).
    Zeroes,
    /// The kernel's symbol addresses, sorted, that a sampling probe rounds
    /// its pc down to (see `codegen::sampled`); the runtime fills it.
    Functions,
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
/// The addresses the `functions` map holds (2 MiB), more than a kernel has
/// symbols (~120,000 here).
pub const FUNCTION_SLOTS: u32 = 1 << 18;

impl MapSpec {
    pub fn global(index: usize, g: GlobalMap) -> MapSpec {
        let kind = match (g.storage, g.wrap) {
            (Storage::Scalar, _) => MapKind::Array,
            (Storage::Array, false) => MapKind::Hash,
            (Storage::Array, true) => MapKind::LruHash,
            (Storage::Stats, _) => MapKind::PerCpuArray,
            (Storage::StatsArray, false) => MapKind::PerCpuHash,
            (Storage::StatsArray, true) => MapKind::LruPerCpuHash,
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
            // target(), then the flag that the run is ending: one value,
            // which programs address directly (no lookup).
            value_size: 16,
            max_entries: 1,
            role: Role::Target,
        }
    }

    /// One value of [`FUNCTION_SLOTS`] addresses: entry 0 is 0, then the
    /// kernel's symbol addresses in order, then `u64::MAX`.
    pub fn functions() -> MapSpec {
        MapSpec {
            name: "functions".into(),
            kind: MapKind::Array,
            key_size: 4,
            value_size: FUNCTION_SLOTS * 8,
            max_entries: 1,
            role: Role::Functions,
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

    /// The source of zeroes for new stats-array elements of up to `bytes`.
    /// Never written: one shared copy serves every CPU.
    pub fn zeroes(bytes: u32) -> MapSpec {
        MapSpec {
            name: "zeroes".into(),
            kind: MapKind::Array,
            key_size: 4,
            value_size: bytes.max(8),
            max_entries: 1,
            role: Role::Zeroes,
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

/// The largest per-CPU map value the kernel creates (`PCPU_MIN_UNIT_SIZE`);
/// also keeps every word of an aggregate within a BPF load's 16-bit offset.
pub const MAX_STAT_BYTES: u32 = 32 * 1024;

/// Why a global cannot live in a BPF map (yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// The map for global `index` of `prog`, or why kernel context cannot use it
/// yet.
pub fn global_map(
    prog: &mir::Program,
    index: usize,
    max_entries: u32,
    widths: &Widths,
) -> Result<GlobalMap, Unsupported> {
    let g = &prog.globals[index];
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
            let layout = StatLayout::new(spec, reads_variance(prog, index));
            if layout.size() > MAX_STAT_BYTES {
                return Err(Unsupported(format!(
                    "global '{}' keeps {} histograms, {} bytes per CPU: more than the {MAX_STAT_BYTES} a per-CPU map value may have",
                    g.name,
                    layout.hists.len(),
                    layout.size()
                )));
            }
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
        wrap: g.wrap && !g.keys.is_empty(),
        sized: g.size.is_some(),
    })
}

/// Whether any handler reads `@variance` of global `g` (or sorts by it): only
/// then do its aggregates keep the Welford words.
fn reads_variance(prog: &mir::Program, g: usize) -> bool {
    let bodies = prog
        .probes
        .iter()
        .map(|p| &p.body)
        .chain(prog.functions.iter().map(|f| &f.body));
    bodies
        .flat_map(|b| &b.blocks)
        .flat_map(|b| &b.insts)
        .any(|i| match i {
            Inst::AggRead {
                global,
                op: StatOp::Variance,
                ..
            } => global.index() == g,
            Inst::IterStart {
                source,
                sort: Some(sort),
                ..
            } => {
                matches!(&**source, IterSource::Array(global) if global.index() == g)
                    && matches!(**sort, (SortKey::Stat(StatOp::Variance), _))
            }
            _ => false,
        })
}
