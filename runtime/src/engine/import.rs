//! Values that BPF programs keep in maps, read into the engine's terms: a long
//! from an 8-byte value, an aggregate from every CPU's count/sum/min/max words
//! (the layout of `backend::bpf::layout::StatLayout`), and print records.

use super::value::Value;
use crate::stats::{Stat, StatSpec};
use rstap_compiler::backend::bpf::layout::Col;

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

/// One aggregate from each CPU's share, combined as stap combines a scalar's
/// (`scalar`) or an array element's CPUs.
pub fn stat(spec: &StatSpec, per_cpu: &[&[u8]], scalar: bool) -> Stat {
    let shares: Vec<Stat> = per_cpu
        .iter()
        .map(|v| {
            let buckets: Vec<i64> = v
                .get(32..)
                .unwrap_or(&[])
                .chunks_exact(8)
                .map(|c| word(c, 0))
                .collect();
            Stat::from_totals(
                spec.clone(),
                [word(v, 0), word(v, 8), word(v, 16), word(v, 24)],
                None,
                &[buckets],
            )
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
        for scalar in [true, false] {
            let s = stat(&StatSpec::default(), &[&a, &empty, &b], scalar);
            assert_eq!(s.count(), 3);
            assert_eq!(s.sum(), 6);
            assert_eq!(s.min(), Ok(-4));
            assert_eq!(s.max(), Ok(7));
            assert_eq!(s.avg(), Ok(2));
        }
        let none = stat(&StatSpec::default(), &[&empty], true);
        assert_eq!(none.count(), 0);
        assert!(none.min().is_err(), "an empty aggregate has no min");
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
