//! Values that BPF programs keep in maps, read into the engine's terms: a long
//! from an 8-byte value, an aggregate from every CPU's share (count, sum, min,
//! max, Welford words and histogram buckets, as `backend::bpf::layout::StatLayout`
//! places them), and print records.

use super::value::Value;
use crate::stats::{Stat, StatSpec};
use rstap_compiler::backend::bpf::layout::{Col, StatLayout};

/// A little-endian i64 at `off`, 0 past the end.
pub fn word(bytes: &[u8], off: usize) -> i64 {
    bytes
        .get(off..off + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, i64::from_le_bytes)
}

/// The columns of a map key, a map value or a record's arguments: 8-byte
/// longs and NUL-padded strings.
pub fn keys(key: &[u8], cols: &[Col]) -> Vec<Value> {
    let mut off = 0;
    cols.iter()
        .map(|c| {
            let n = c.bytes() as usize;
            let bytes = key.get(off..off + n).unwrap_or(&[]);
            off += n;
            match c {
                Col::Long => Value::Long(word(bytes, 0)),
                Col::Str(_) => {
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    Value::Str(bytes[..end].to_vec())
                }
            }
        })
        .collect()
}

/// A key tuple as a hash map's key bytes (the inverse of [`keys`]; a string
/// longer than its column keeps what fits before the NUL).
pub fn pack(keys: &[Value], cols: &[Col]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, c) in keys.iter().zip(cols) {
        match c {
            Col::Long => out.extend_from_slice(&k.long().to_le_bytes()),
            Col::Str(_) => {
                let n = c.bytes() as usize;
                let s = k.bytes();
                let take = s.len().min(n - 1);
                out.extend_from_slice(&s[..take]);
                out.resize(out.len() + n - take, 0);
            }
        }
    }
    out
}

/// One aggregate from each CPU's share laid out as `layout` says, combined as
/// stap combines a scalar's (`scalar`) or an array element's CPUs. The
/// layout's histograms and the spec's are the program's, in the same order.
pub fn stat(layout: &StatLayout, spec: &StatSpec, per_cpu: &[&[u8]], scalar: bool) -> Stat {
    let at = |v: &[u8], off: i16| word(v, usize::try_from(off).unwrap_or(usize::MAX));
    let shares: Vec<Stat> = per_cpu
        .iter()
        .map(|v| {
            let buckets: Vec<Vec<i64>> = layout
                .hists
                .iter()
                .map(|h| {
                    let start = h.offset as usize;
                    (0..h.buckets as usize)
                        .map(|i| word(v, start + 8 * i))
                        .collect()
                })
                .collect();
            let welford = layout.variance.map(|_| {
                [StatLayout::AVG, StatLayout::M2, StatLayout::VARIANCE].map(|off| at(v, off))
            });
            let totals = [
                StatLayout::COUNT,
                StatLayout::SUM,
                StatLayout::MIN,
                StatLayout::MAX,
            ]
            .map(|off| at(v, off));
            Stat::from_totals(spec.clone(), totals, welford, &buckets)
        })
        .collect();
    if scalar {
        return Stat::aggregate(spec, &shares);
    }
    let mut total = Stat::new(spec.clone());
    for s in &shares {
        total.merge(s);
    }
    total
}

/// A print record's arguments: the words after the site's index, in `cols`.
pub fn record(bytes: &[u8], cols: &[Col]) -> Vec<Value> {
    keys(bytes.get(8..).unwrap_or(&[]), cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(count: i64, sum: i64, min: i64, max: i64) -> Vec<u8> {
        [count, sum, min, max]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    #[test]
    fn cpu_shares_combine_into_one_aggregate() {
        let (a, b, empty) = (share(2, 10, 3, 7), share(1, -4, -4, -4), share(0, 0, 0, 0));
        let plain = StatLayout::default();
        for scalar in [true, false] {
            let s = stat(&plain, &StatSpec::default(), &[&a, &empty, &b], scalar);
            assert_eq!(s.count(), 3);
            assert_eq!(s.sum(), 6);
            assert_eq!(s.min(), Ok(-4));
            assert_eq!(s.max(), Ok(7));
            assert_eq!(s.avg(), Ok(2));
        }
        let none = stat(&plain, &StatSpec::default(), &[&empty], true);
        assert_eq!(none.count(), 0);
        assert!(none.min().is_err(), "an empty aggregate has no min");
    }

    #[test]
    fn welford_words_and_every_histogram_are_read_where_the_layout_puts_them() {
        use rstap_compiler::hir::Histogram;
        let hists = vec![
            Histogram::Log,
            Histogram::Linear {
                start: 0,
                stop: 10,
                step: 5,
            },
        ];
        let mir_spec = rstap_compiler::mir::StatsSpec {
            hists,
            variance_shift: 0,
        };
        let layout = StatLayout::new(&mir_spec, true);
        let spec = crate::engine::stat_spec(&mir_spec);
        // 1..=5 on one CPU, as stap's integer Welford leaves it: mean 1, M2 30,
        // variance 30 / 4 = 7.
        let mut v = share(5, 15, 1, 5);
        for w in [1i64, 30, 7] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v.resize(layout.size() as usize, 0);
        let mut bump = |h: usize, bucket: usize, n: i64| {
            let off = layout.hists[h].offset as usize + 8 * bucket;
            v[off..off + 8].copy_from_slice(&n.to_le_bytes());
        };
        bump(0, 65, 1);
        bump(0, 66, 2);
        bump(0, 67, 2);
        bump(1, 1, 4);
        bump(1, 2, 1);
        let empty = vec![0u8; v.len()];
        let element = stat(&layout, &spec, &[&empty, &v], false);
        assert_eq!(
            element.variance(),
            Ok(7),
            "an element keeps its CPU's Welford result"
        );
        let scalar = stat(&layout, &spec, &[&v, &empty], true);
        assert_eq!(scalar.variance(), Ok(12), "man stap's variance of 1..5");
        let [log, lin] = [0, 1].map(|h| crate::engine::hist_spec(&mir_spec.hists[h]));
        assert_eq!(scalar.bucket(log, 66), Ok(2));
        assert_eq!(scalar.bucket(log, 67), Ok(2));
        assert_eq!(scalar.bucket(lin, 1), Ok(4));
        assert_eq!(scalar.bucket(lin, 2), Ok(1));
        assert_eq!(scalar.bucket_count(lin), 5, "(10 - 0) / 5 + 3");
    }

    #[test]
    fn keys_and_records_decode_little_endian_words() {
        let key: Vec<u8> = [7i64, -1].iter().flat_map(|w| w.to_le_bytes()).collect();
        let cols = [Col::Long, Col::Long];
        assert_eq!(keys(&key, &cols), vec![Value::Long(7), Value::Long(-1)]);
        assert_eq!(pack(&keys(&key, &cols), &cols), key);
        let cols = [Col::Str(16), Col::Long];
        let mixed = pack(&[Value::Str(b"bash".to_vec()), Value::Long(3)], &cols);
        assert_eq!(mixed.len(), 24);
        assert_eq!(&mixed[..5], b"bash\0");
        assert_eq!(
            keys(&mixed, &cols),
            vec![Value::Str(b"bash".to_vec()), Value::Long(3)]
        );
        let long = pack(
            &[Value::Str(b"a-very-long-command-name".to_vec())],
            &[Col::Str(16)],
        );
        assert_eq!(
            long,
            b"a-very-long-com\0".to_vec(),
            "cut to 15 bytes and a NUL"
        );
        let rec: Vec<u8> = [2i64, 40, -5]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        assert_eq!(
            record(&rec, &[Col::Long, Col::Long]),
            vec![Value::Long(40), Value::Long(-5)]
        );
        let mut rec = 7i64.to_le_bytes().to_vec();
        rec.extend_from_slice(b"sshd\0\0\0\0");
        rec.extend_from_slice(&9i64.to_le_bytes());
        assert_eq!(
            record(&rec, &[Col::Str(8), Col::Long]),
            vec![Value::Str(b"sshd".to_vec()), Value::Long(9)]
        );
    }
}
