//! Statistics aggregates: what `x <<< v` accumulates and what `@count`, `@sum`,
//! `@min`, `@max`, `@avg`, `@variance` and `@hist_*` read back.
//!
//! The arithmetic follows SystemTap 4.8's runtime (`stat-common.c`, `stat.c`,
//! `map.c`) value for value, including its integer rounding, so that scripts print
//! the numbers stap prints. Pure code: no syscalls.
//!
//! Data is kept per CPU, as stap does, and combined when read:
//! * a **scalar** global combines every CPU at once ([`Stat::aggregate`]);
//! * an **array element** folds the CPUs in one at a time ([`Stat::merge`]).
//!
//! The two give different `@variance` results because each rounds differently
//! (stap prints 12 for the variance of 1..5 in a scalar, 7 in an array element);
//! the engine must use the one that matches the variable's kind.

/// Buckets of a log histogram (`HIST_LOG_BUCKETS`).
pub const LOG_BUCKETS: usize = 128;
/// Index of the log bucket that holds 0 (`HIST_LOG_BUCKET0`).
pub const LOG_BUCKET0: usize = 64;
/// Most buckets a linear histogram may have, counting underflow and overflow
/// (`STP_MAX_BUCKETS`).
pub const MAX_LINEAR_BUCKETS: i64 = 128;

/// An extraction that stap turns into a runtime (soft) error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatError {
    /// `@min`, `@max`, `@avg`, `@variance`, a bucket read or a histogram print on an
    /// aggregate with no values.
    Empty,
    /// `@hist_*(s)[i]` with `i` outside `0..buckets`.
    IndexOutOfRange,
}

impl StatError {
    /// The text stap puts after `ERROR: `.
    pub fn message(self) -> &'static str {
        match self {
            StatError::Empty => "empty aggregate",
            StatError::IndexOutOfRange => "histogram index out of range",
        }
    }
}

/// A `@hist_linear` whose parameters stap refuses when it sets the aggregate up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistError {
    ZeroInterval,
    /// `(stop - start) / interval + 3` is outside `3..=128`.
    BucketCount,
}

impl HistError {
    /// stap's warning (it then refuses to start the session).
    pub fn message(self) -> String {
        match self {
            HistError::ZeroInterval => "histogram: interval cannot be zero.".to_string(),
            HistError::BucketCount => format!(
                "histogram: Number of buckets must be between 1 and {}\n\
                 Number_of_buckets = (stop - start) / interval.\n\
                 Please adjust your start, stop, and interval values.",
                MAX_LINEAR_BUCKETS - 2
            ),
        }
    }
}

/// Which histogram an aggregate keeps, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistSpec {
    Log,
    /// `@hist_linear(v, start, stop, interval)`; check it with [`HistSpec::validate`]
    /// before use, as stap does when it sets the aggregate up.
    Linear {
        start: i64,
        stop: i64,
        interval: i64,
    },
}

impl HistSpec {
    /// stap's checks: a non-zero interval and 3..=128 buckets (with underflow and
    /// overflow).
    pub fn validate(self) -> Result<(), HistError> {
        match self {
            HistSpec::Log => Ok(()),
            HistSpec::Linear {
                start,
                stop,
                interval,
            } => linear_buckets(start, stop, interval).map(|_| ()),
        }
    }
}

/// The bucket count of a linear histogram, underflow and overflow included.
fn linear_buckets(start: i64, stop: i64, interval: i64) -> Result<usize, HistError> {
    let (start, stop, interval) = (c_int(start), c_int(stop), c_int(interval));
    if interval == 0 {
        return Err(HistError::ZeroInterval);
    }
    let n = stop
        .wrapping_sub(start)
        .wrapping_div(interval)
        .wrapping_add(3);
    if (3..=MAX_LINEAR_BUCKETS).contains(&i64::from(n)) {
        Ok(n as usize)
    } else {
        Err(HistError::BucketCount)
    }
}

/// stap hands the `@hist_linear` parameters to its runtime as C `int`s: a literal
/// beyond 32 bits keeps its low 32, and the runtime's arithmetic on them is 32-bit.
fn c_int(v: i64) -> i32 {
    v as i32
}

/// What a statistics variable needs to know when it is created; one per global.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatSpec {
    /// The histograms the script reads from it (one aggregate can keep several).
    pub hists: Vec<HistSpec>,
    /// The `b` of `@variance(s, b)` (0..=62). stap applies it while values are added,
    /// so one variable has one shift.
    pub variance_shift: u32,
}

/// stap's `_stp_div64`: truncating division where `/0` gives 0 and `/-1` negates
/// (wrapping), so no input can panic.
fn div64(x: i64, y: i64) -> i64 {
    match y {
        0 => 0,
        -1 => x.wrapping_neg(),
        _ => x / y,
    }
}

/// `x << shift` on an int64 as the kernel's C does it (bits shifted out are lost).
fn shl(x: i64, shift: u32) -> i64 {
    x.wrapping_shl(shift)
}

/// A base-2 histogram over all of int64: 128 buckets, index 64 holds 0, index
/// `64 + n` holds the positive values of bit length `n` (`[2^(n-1), 2^n)`) and
/// index `64 - n` the negative values whose magnitude has bit length `n`
/// (index 0 holds only `i64::MIN`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogHist {
    counts: Box<[i64; LOG_BUCKETS]>,
}

impl Default for LogHist {
    fn default() -> Self {
        LogHist::new()
    }
}

impl LogHist {
    pub fn new() -> LogHist {
        LogHist {
            counts: Box::new([0; LOG_BUCKETS]),
        }
    }

    pub fn add(&mut self, v: i64) {
        self.counts[LogHist::bucket_of(v)] += 1;
    }

    pub fn bucket_of(v: i64) -> usize {
        // unsigned_abs keeps i64::MIN at 2^63: bit length 64, bucket 0.
        let bits = (u64::BITS - v.unsigned_abs().leading_zeros()) as usize;
        if v < 0 {
            LOG_BUCKET0 - bits
        } else {
            LOG_BUCKET0 + bits
        }
    }

    /// The row label of bucket `i`: the value of smallest magnitude it holds
    /// (`... -4 -2 -1 0 1 2 4 ...`).
    pub fn bucket_value(i: usize) -> i64 {
        if i == LOG_BUCKET0 {
            0
        } else if i < LOG_BUCKET0 {
            i64::MIN >> i
        } else {
            1i64 << (i - LOG_BUCKET0 - 1)
        }
    }

    pub fn counts(&self) -> &[i64] {
        &self.counts[..]
    }

    pub fn merge(&mut self, other: &LogHist) {
        add_counts(&mut self.counts[..], other.counts());
    }
}

/// `@hist_linear(v, start, stop, interval)`: bucket 0 is the underflow (`v < start`),
/// bucket `i` in `1..=N` holds `[start + (i-1)*interval, start + i*interval)`, and the
/// last bucket (`N + 1`) is the overflow. `N = (stop - start) / interval + 1`, so
/// the bucket that starts at `stop` is a regular one.
///
/// A negative interval is accepted as stap accepts it (with `stop < start`); the
/// runtime then divides by the interval read as an unsigned 32-bit number, so all
/// values from `start` up land in the first regular bucket or two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearHist {
    start: i32,
    stop: i32,
    interval: i32,
    counts: Vec<i64>,
}

impl LinearHist {
    pub fn new(start: i64, stop: i64, interval: i64) -> Result<LinearHist, HistError> {
        let n = linear_buckets(start, stop, interval)?;
        Ok(LinearHist {
            start: c_int(start),
            stop: c_int(stop),
            interval: c_int(interval),
            counts: vec![0; n],
        })
    }

    /// For a spec that skipped [`HistSpec::validate`]: the nearest valid layout
    /// (a zero interval becomes 1, the bucket count is clamped to 3..=128), so that
    /// nothing downstream can fail.
    fn coerced(start: i64, stop: i64, interval: i64) -> LinearHist {
        let (start, stop) = (c_int(start), c_int(stop));
        let interval = match c_int(interval) {
            0 => 1,
            i => i,
        };
        let n = i64::from(stop.wrapping_sub(start).wrapping_div(interval))
            .saturating_add(3)
            .clamp(3, MAX_LINEAR_BUCKETS);
        LinearHist {
            start,
            stop,
            interval,
            counts: vec![0; n as usize],
        }
    }

    pub fn start(&self) -> i64 {
        i64::from(self.start)
    }

    #[cfg(test)]
    pub fn stop(&self) -> i64 {
        i64::from(self.stop)
    }

    pub fn interval(&self) -> i64 {
        i64::from(self.interval)
    }

    pub fn add(&mut self, v: i64) {
        let i = self.bucket_of(v);
        self.counts[i] += 1;
    }

    pub fn bucket_of(&self, v: i64) -> usize {
        let last = self.counts.len() - 1;
        // stap subtracts in int64 (wrapping) and divides unsigned.
        let off = v.wrapping_sub(i64::from(self.start));
        if off < 0 {
            return 0;
        }
        let i = (off as u64 / u64::from(self.interval as u32)).saturating_add(1);
        usize::try_from(i).map_or(last, |i| i.min(last))
    }

    pub fn counts(&self) -> &[i64] {
        &self.counts
    }

    pub fn merge(&mut self, other: &LinearHist) {
        add_counts(&mut self.counts, &other.counts);
    }
}

fn add_counts(into: &mut [i64], from: &[i64]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a = a.wrapping_add(*b);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Histogram {
    Log(LogHist),
    Linear(LinearHist),
}

impl Histogram {
    fn new(spec: HistSpec) -> Histogram {
        match spec {
            HistSpec::Log => Histogram::Log(LogHist::new()),
            HistSpec::Linear {
                start,
                stop,
                interval,
            } => Histogram::Linear(
                LinearHist::new(start, stop, interval)
                    .unwrap_or_else(|_| LinearHist::coerced(start, stop, interval)),
            ),
        }
    }

    /// Sets the bucket counts from another source (a BPF map's value); extra or
    /// missing buckets are ignored.
    fn set_counts(&mut self, counts: &[i64]) {
        let dst: &mut [i64] = match self {
            Histogram::Log(h) => &mut h.counts[..],
            Histogram::Linear(h) => &mut h.counts,
        };
        for (d, s) in dst.iter_mut().zip(counts) {
            *d = *s;
        }
    }

    pub fn counts(&self) -> &[i64] {
        match self {
            Histogram::Log(h) => h.counts(),
            Histogram::Linear(h) => h.counts(),
        }
    }

    fn add(&mut self, v: i64) {
        match self {
            Histogram::Log(h) => h.add(v),
            Histogram::Linear(h) => h.add(v),
        }
    }

    fn merge(&mut self, other: &Histogram) {
        match (self, other) {
            (Histogram::Log(a), Histogram::Log(b)) => a.merge(b),
            (Histogram::Linear(a), Histogram::Linear(b)) => a.merge(b),
            // Aggregates of one variable share one spec; nothing sensible to do.
            _ => {}
        }
    }
}

/// One statistics aggregate: stap's `stat_data`, either one CPU's share or the
/// combination of all of them.
///
/// Besides count, sum, min and max it keeps stap's Welford state for `@variance`:
/// the running mean and `M2`, both scaled by `2^shift`, and the resulting variance
/// (scaled by `2^(2*shift)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    spec: StatSpec,
    count: i64,
    sum: i64,
    min: i64,
    max: i64,
    shift: u32,
    avg_s: i64,
    m2: i64,
    variance_s: i64,
    /// One per histogram of the spec, in its order.
    hists: Vec<Histogram>,
}

impl Stat {
    pub fn new(spec: StatSpec) -> Stat {
        let hists = spec.hists.iter().map(|h| Histogram::new(*h)).collect();
        Stat {
            count: 0,
            sum: 0,
            min: 0,
            max: 0,
            shift: spec.variance_shift,
            avg_s: 0,
            m2: 0,
            variance_s: 0,
            hists,
            spec,
        }
    }

    /// `s <<< v` on this CPU's share.
    pub fn add(&mut self, v: i64) {
        let scaled = shl(v, self.shift);
        if self.count == 0 {
            self.count = 1;
            self.sum = v;
            self.min = v;
            self.max = v;
            self.avg_s = scaled;
            self.m2 = 0;
        } else {
            self.count = self.count.wrapping_add(1);
            self.sum = self.sum.wrapping_add(v);
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            // Welford's update as stap 4.8 does it. Its `delta` is a C `int`, so the
            // difference is cut to 32 bits: kept for parity (it only matters once a
            // value differs from the running mean by 2^31 or more, after scaling).
            let delta = i64::from(scaled.wrapping_sub(self.avg_s) as i32);
            self.avg_s = self.avg_s.wrapping_add(div64(delta, self.count));
            self.m2 = self
                .m2
                .wrapping_add(delta.wrapping_mul(scaled.wrapping_sub(self.avg_s)));
            self.variance_s = div64(self.m2, self.count - 1);
        }
        for h in &mut self.hists {
            h.add(v);
        }
    }

    /// Folds another CPU's share of the same array element into this one, as stap
    /// does for arrays of aggregates (`_new_map_copy_stat`): the first non-empty
    /// share is copied, later ones are combined with the total-variance formula.
    pub fn merge(&mut self, other: &Stat) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.clone_from(other);
            return;
        }
        let (n1, avg1) = (self.count, self.avg_s);
        self.count = self.count.wrapping_add(other.count);
        self.sum = self.sum.wrapping_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.shift = other.shift;
        self.avg_s = div64(shl(self.sum, self.shift), self.count);
        let spread = |n: i64, avg: i64, var: i64, mean: i64| {
            let d = avg.wrapping_sub(mean);
            n.wrapping_mul(d)
                .wrapping_mul(d)
                .wrapping_add((n - 1).wrapping_mul(var))
        };
        let total = spread(n1, avg1, self.variance_s, self.avg_s).wrapping_add(spread(
            other.count,
            other.avg_s,
            other.variance_s,
            self.avg_s,
        ));
        self.variance_s = div64(total, self.count - 1);
        for (a, b) in self.hists.iter_mut().zip(&other.hists) {
            a.merge(b);
        }
    }

    /// One CPU's share as a BPF program keeps it: count, sum, min and max;
    /// the Welford words (scaled mean, M2, scaled variance) when it keeps
    /// them; and each histogram's bucket counts, in the spec's order.
    pub fn from_totals(
        spec: StatSpec,
        totals: [i64; 4],
        welford: Option<[i64; 3]>,
        buckets: &[Vec<i64>],
    ) -> Stat {
        let [count, sum, min, max] = totals;
        let mut s = Stat::new(spec);
        for (h, counts) in s.hists.iter_mut().zip(buckets) {
            h.set_counts(counts);
        }
        if count > 0 {
            s.count = count;
            s.sum = sum;
            s.min = min;
            s.max = max;
            [s.avg_s, s.m2, s.variance_s] =
                welford.unwrap_or([div64(shl(sum, s.shift), count), 0, 0]);
        }
        s
    }

    /// Combines every CPU's share of a scalar aggregate at once, as stap's
    /// `_stp_stat_get` does.
    pub fn aggregate(spec: &StatSpec, per_cpu: &[Stat]) -> Stat {
        let mut agg = Stat::new(spec.clone());
        for sd in per_cpu.iter().filter(|sd| sd.count != 0) {
            agg.shift = sd.shift;
            if agg.count == 0 {
                agg.min = sd.min;
                agg.max = sd.max;
            }
            agg.count = agg.count.wrapping_add(sd.count);
            agg.sum = agg.sum.wrapping_add(sd.sum);
            agg.min = agg.min.min(sd.min);
            agg.max = agg.max.max(sd.max);
            for (a, b) in agg.hists.iter_mut().zip(&sd.hists) {
                a.merge(b);
            }
        }
        agg.avg_s = div64(shl(agg.sum, agg.shift), agg.count);
        let (mut s1, mut s2) = (0i64, 0i64);
        for sd in per_cpu.iter().filter(|sd| sd.count != 0) {
            let d = sd.avg_s.wrapping_sub(agg.avg_s);
            s1 = s1.wrapping_add(sd.count.wrapping_mul(d).wrapping_mul(d));
            s2 = s2.wrapping_add((sd.count - 1).wrapping_mul(sd.variance_s));
        }
        agg.variance_s = div64(s1.wrapping_add(s2), agg.count.wrapping_sub(1));
        agg
    }

    /// This share read as a scalar global: what stap's `@variance(x)` (and the rest)
    /// sees when every value of `x` was added on one CPU, e.g. in a `begin` probe.
    pub fn scalar(&self) -> Stat {
        Stat::aggregate(&self.spec, std::slice::from_ref(self))
    }

    #[cfg(test)]
    pub fn spec(&self) -> &StatSpec {
        &self.spec
    }

    /// `@count`: 0 for an empty aggregate.
    pub fn count(&self) -> i64 {
        self.count
    }

    /// `@sum`: 0 for an empty aggregate.
    pub fn sum(&self) -> i64 {
        self.sum
    }

    pub fn min(&self) -> Result<i64, StatError> {
        self.non_empty().map(|s| s.min)
    }

    pub fn max(&self) -> Result<i64, StatError> {
        self.non_empty().map(|s| s.max)
    }

    /// `@avg`: `@sum / @count`, truncated toward zero.
    pub fn avg(&self) -> Result<i64, StatError> {
        self.non_empty().map(|s| div64(s.sum, s.count))
    }

    /// `@variance(s, shift)`, with the shift given at construction. A single value
    /// has variance 0.
    pub fn variance(&self) -> Result<i64, StatError> {
        // `>> 2*shift` on x86 uses the count modulo 64 (shifts above 31 wrap).
        self.non_empty()
            .map(|s| s.variance_s.wrapping_shr(2 * s.shift))
    }

    /// Every histogram this aggregate keeps, in its spec's order.
    pub fn histograms(&self) -> &[Histogram] {
        &self.hists
    }

    /// The histogram `h` of this aggregate, if its spec keeps it.
    pub fn histogram(&self, h: HistSpec) -> Option<&Histogram> {
        let i = self.spec.hists.iter().position(|s| *s == h)?;
        self.hists.get(i)
    }

    /// `@hist_*(s)[i]`: the raw bucket count (for a log histogram, index 64 is the
    /// bucket of 0). A histogram the aggregate does not keep has no buckets.
    pub fn bucket(&self, h: HistSpec, i: i64) -> Result<i64, StatError> {
        let s = self.non_empty()?;
        let counts = s.histogram(h).map_or(&[][..], Histogram::counts);
        usize::try_from(i)
            .ok()
            .and_then(|i| counts.get(i).copied())
            .ok_or(StatError::IndexOutOfRange)
    }

    /// `foreach (i in @hist_*(s))` visits `0..bucket_count(h)` in order, empty
    /// buckets included, and does not fail on an empty aggregate.
    pub fn bucket_count(&self, h: HistSpec) -> usize {
        self.histogram(h).map_or(0, |h| h.counts().len())
    }

    fn non_empty(&self) -> Result<&Stat, StatError> {
        if self.count == 0 {
            Err(StatError::Empty)
        } else {
            Ok(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(start: i64, stop: i64, interval: i64) -> Result<HistSpec, HistError> {
        let spec = HistSpec::Linear {
            start,
            stop,
            interval,
        };
        spec.validate().map(|()| spec)
    }

    fn plain(shift: u32) -> StatSpec {
        StatSpec {
            hists: Vec::new(),
            variance_shift: shift,
        }
    }

    fn filled(spec: StatSpec, values: impl IntoIterator<Item = i64>) -> Stat {
        let mut s = Stat::new(spec);
        for v in values {
            s.add(v);
        }
        s
    }

    #[test]
    fn scalar_variance_matches_the_stap_man_page() {
        // man stap: `for(i=1;i<=5;i++) x<<<i` prints 12, and 2 with a shift of 1.
        let cpu = filled(plain(0), 1..=5);
        assert_eq!(Stat::aggregate(&plain(0), &[cpu]).variance(), Ok(12));
        let cpu = filled(plain(1), 1..=5);
        assert_eq!(
            Stat::aggregate(&plain(1), std::slice::from_ref(&cpu)).variance(),
            Ok(2)
        );
        assert_eq!(cpu.scalar().variance(), Ok(2));
        assert_eq!(cpu.scalar().count(), 5);
        assert_eq!(cpu.scalar().spec(), &plain(1));
    }

    #[test]
    fn array_element_variance_keeps_the_per_cpu_welford_result() {
        // One CPU's share is copied as is: M2 = 30 over 4, stap's own rounding.
        let mut agg = Stat::new(plain(0));
        agg.merge(&filled(plain(0), 1..=5));
        agg.merge(&Stat::new(plain(0)));
        assert_eq!(agg.variance(), Ok(7));
        assert_eq!(agg.count(), 5);
    }

    #[test]
    fn merge_combines_two_cpus_with_the_total_variance_formula() {
        let a = filled(plain(0), [1, 2, 3]);
        let b = filled(plain(0), [10, 20]);
        let mut agg = Stat::new(plain(0));
        agg.merge(&a);
        agg.merge(&b);
        assert_eq!(agg.count(), 5);
        assert_eq!(agg.sum(), 36);
        assert_eq!(agg.min(), Ok(1));
        assert_eq!(agg.max(), Ok(20));
        assert_eq!(agg.avg(), Ok(7));
        // Per CPU (stap's integer Welford): a has mean 1 and variance 2, b has mean
        // 15 and variance 50. Combined mean 36/5 = 7:
        // (3*(1-7)^2 + 2*2 + 2*(15-7)^2 + 1*50) / 4 = 290 / 4 = 72.
        assert_eq!(agg.variance(), Ok(72));
        assert_eq!(Stat::aggregate(&plain(0), &[a, b]).variance(), Ok(72));
    }

    #[test]
    fn three_cpus_round_differently_for_scalars_and_arrays() {
        let cpus = [
            filled(plain(0), [0]),
            filled(plain(0), [1]),
            filled(plain(0), [2]),
        ];
        // All at once: mean 1, (1 + 0 + 1) / 2 = 1.
        assert_eq!(Stat::aggregate(&plain(0), &cpus).variance(), Ok(1));
        // One at a time: {0,1} has mean 1/2 = 0 and variance 1; adding 2 gives
        // (2*(0-1)^2 + 1*1 + 1*(2-1)^2) / 2 = 2.
        let mut m = Stat::new(plain(0));
        for c in &cpus {
            m.merge(c);
        }
        assert_eq!(m.variance(), Ok(2));
    }

    #[test]
    fn aggregate_skips_empty_cpus_and_takes_min_max_from_data() {
        let cpus = [
            Stat::new(plain(0)),
            filled(plain(0), [-5, 7]),
            Stat::new(plain(0)),
            filled(plain(0), [3]),
        ];
        let agg = Stat::aggregate(&plain(0), &cpus);
        assert_eq!(
            (agg.count(), agg.sum(), agg.min(), agg.max(), agg.avg()),
            (3, 5, Ok(-5), Ok(7), Ok(1))
        );
    }

    #[test]
    fn empty_aggregates_give_zero_count_and_sum_and_errors_otherwise() {
        let s = Stat::aggregate(&plain(0), &[Stat::new(plain(0))]);
        assert_eq!((s.count(), s.sum()), (0, 0));
        assert_eq!(s.min(), Err(StatError::Empty));
        assert_eq!(s.max(), Err(StatError::Empty));
        assert_eq!(s.avg(), Err(StatError::Empty));
        assert_eq!(s.variance(), Err(StatError::Empty));
        assert_eq!(s.bucket(HistSpec::Log, 0), Err(StatError::Empty));
        assert_eq!(StatError::Empty.message(), "empty aggregate");
    }

    #[test]
    fn one_value_has_variance_zero() {
        let agg = Stat::aggregate(&plain(3), &[filled(plain(3), [42])]);
        assert_eq!(agg.variance(), Ok(0));
        let mut m = Stat::new(plain(3));
        m.merge(&filled(plain(3), [42]));
        assert_eq!(m.variance(), Ok(0));
    }

    #[test]
    fn avg_truncates_toward_zero() {
        let s = filled(plain(0), [-3, -4]);
        assert_eq!(s.avg(), Ok(-3));
        let s = filled(plain(0), [3, 4]);
        assert_eq!(s.avg(), Ok(3));
    }

    #[test]
    fn sums_wrap_like_int64() {
        let s = filled(plain(0), [i64::MAX, 1]);
        assert_eq!(s.sum(), i64::MIN);
        assert_eq!((s.min(), s.max()), (Ok(1), Ok(i64::MAX)));
    }

    #[test]
    fn log_buckets_cover_zero_and_negative_values() {
        assert_eq!(LogHist::bucket_of(0), 64);
        assert_eq!(LogHist::bucket_of(1), 65);
        assert_eq!(LogHist::bucket_of(2), 66);
        assert_eq!(LogHist::bucket_of(3), 66);
        assert_eq!(LogHist::bucket_of(4), 67);
        assert_eq!(LogHist::bucket_of(i64::MAX), 127);
        assert_eq!(LogHist::bucket_of(-1), 63);
        assert_eq!(LogHist::bucket_of(-3), 62);
        assert_eq!(LogHist::bucket_of(-4), 61);
        assert_eq!(LogHist::bucket_of(i64::MIN + 1), 1);
        assert_eq!(LogHist::bucket_of(i64::MIN), 0);
        let labels: Vec<i64> = [0, 1, 61, 62, 63, 64, 65, 66, 67, 127]
            .into_iter()
            .map(LogHist::bucket_value)
            .collect();
        assert_eq!(
            labels,
            [i64::MIN, -(1 << 62), -4, -2, -1, 0, 1, 2, 4, 1 << 62]
        );
    }

    fn linear(start: i64, stop: i64, interval: i64) -> LinearHist {
        LinearHist::new(start, stop, interval).unwrap_or_else(|e| {
            panic!("@hist_linear({start}, {stop}, {interval}) should be valid: {e:?}")
        })
    }

    #[test]
    fn linear_buckets_have_underflow_and_overflow() {
        let mut h = linear(0, 100, 10);
        assert_eq!((h.start(), h.stop(), h.interval()), (0, 100, 10));
        assert_eq!(h.counts().len(), 13);
        for v in [5, 15, 15, 25, 95, -3, 150, 150, 100, 109, 110, i64::MIN] {
            h.add(v);
        }
        assert_eq!(h.counts(), [2, 1, 2, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
    }

    #[test]
    fn linear_offsets_wrap_as_stap_computes_them() {
        // i64::MAX - (-10) wraps negative in stap's int64 arithmetic: underflow.
        let h = linear(-10, 10, 10);
        assert_eq!(h.bucket_of(i64::MAX), 0);
        assert_eq!(h.bucket_of(-10), 1);
        assert_eq!(h.bucket_of(-11), 0);
        assert_eq!(h.bucket_of(10), 3);
        assert_eq!(h.bucket_of(20), 4);
    }

    #[test]
    fn linear_parameters_are_c_ints() {
        // 2^32 + 10 is 10 to stap's runtime.
        let h = linear(0, 100, (1 << 32) + 10);
        assert_eq!((h.interval(), h.counts().len()), (10, 13));
        let h = linear(-(1 << 32), 100, 10);
        assert_eq!(h.start(), 0);
    }

    #[test]
    fn a_negative_interval_divides_as_unsigned() {
        // (0 - 100) / -10 + 3 = 13 buckets; offsets are divided by 2^32 - 10.
        let h = linear(100, 0, -10);
        assert_eq!(h.counts().len(), 13);
        assert_eq!(h.bucket_of(99), 0);
        assert_eq!(h.bucket_of(100), 1);
        assert_eq!(h.bucket_of(100 + 4_294_967_285), 1);
        assert_eq!(h.bucket_of(100 + 4_294_967_286), 2);
    }

    #[test]
    fn linear_parameters_are_checked_like_stap() {
        assert_eq!(checked(0, 10, 0), Err(HistError::ZeroInterval));
        assert_eq!(
            checked(0, 1260, 10),
            Err(HistError::BucketCount),
            "129 buckets"
        );
        assert!(checked(0, 1250, 10).is_ok(), "128 buckets");
        assert_eq!(checked(10, 0, 1), Err(HistError::BucketCount));
        assert!(checked(0, 0, 1).is_ok(), "3 buckets");
        assert!(
            HistError::BucketCount
                .message()
                .starts_with("histogram: Number of buckets must be between 1 and 126\n")
        );
    }

    #[test]
    fn an_unchecked_linear_spec_still_gets_a_usable_histogram() {
        let bad = |start, stop, interval| HistSpec::Linear {
            start,
            stop,
            interval,
        };
        let with = |h| StatSpec {
            hists: vec![h],
            variance_shift: 0,
        };
        let h = bad(0, 10, 0);
        let mut s = Stat::new(with(h));
        s.add(5);
        assert_eq!(s.bucket_count(h), 13);
        let h = bad(0, 100_000, 1);
        let mut s = Stat::new(with(h));
        s.add(i64::MAX);
        assert_eq!(s.bucket_count(h), 128);
        assert_eq!(s.bucket(h, 127), Ok(1));
        let h = bad(0, 100_000, -1);
        let mut s = Stat::new(with(h));
        s.add(7);
        assert_eq!(s.bucket_count(h), 3);
        assert_eq!(s.bucket(h, 1), Ok(1));
        assert_eq!(bad(0, 10, 0).validate(), Err(HistError::ZeroInterval));
    }

    #[test]
    fn bucket_reads_are_raw_indices_with_range_checks() {
        let log = HistSpec::Log;
        let lin = HistSpec::Linear {
            start: 0,
            stop: 100,
            interval: 10,
        };
        let spec = StatSpec {
            hists: vec![log],
            variance_shift: 0,
        };
        let s = filled(spec, [0, 1, 1, -1]);
        assert_eq!(s.bucket_count(log), 128);
        assert_eq!(s.bucket(log, 64), Ok(1));
        assert_eq!(s.bucket(log, 65), Ok(2));
        assert_eq!(s.bucket(log, 63), Ok(1));
        assert_eq!(s.bucket(log, 0), Ok(0));
        assert_eq!(s.bucket(log, 128), Err(StatError::IndexOutOfRange));
        assert_eq!(s.bucket(log, -1), Err(StatError::IndexOutOfRange));
        assert_eq!(s.bucket_count(lin), 0, "a histogram it does not keep");
        assert_eq!(s.bucket(lin, 0), Err(StatError::IndexOutOfRange));
        let both = StatSpec {
            hists: vec![lin, log],
            variance_shift: 0,
        };
        let s = filled(both.clone(), [5]);
        assert_eq!(s.bucket_count(lin), 13);
        assert_eq!(s.bucket(lin, 1), Ok(1));
        assert_eq!(s.bucket(lin, 13), Err(StatError::IndexOutOfRange));
        assert_eq!(s.bucket(log, 67), Ok(1), "5 has bit length 3");
        assert_eq!(
            Stat::new(both).bucket_count(lin),
            13,
            "foreach needs no data"
        );
    }

    #[test]
    fn histograms_merge_across_cpus() {
        let log = HistSpec::Log;
        let spec = StatSpec {
            hists: vec![log],
            variance_shift: 0,
        };
        let cpus = [
            filled(spec.clone(), [1, 2]),
            filled(spec.clone(), [2, 1000]),
        ];
        let agg = Stat::aggregate(&spec, &cpus);
        assert_eq!(
            (
                agg.bucket(log, 65),
                agg.bucket(log, 66),
                agg.bucket(log, 74)
            ),
            (Ok(1), Ok(2), Ok(1))
        );
        let mut m = Stat::new(spec);
        for c in &cpus {
            m.merge(c);
        }
        assert_eq!(m.histogram(log), agg.histogram(log));
    }

    #[test]
    fn welford_delta_is_cut_to_32_bits_as_in_stap() {
        // 0 then 2^32: the C `int` delta is 0, so the mean and M2 never move.
        let s = filled(plain(0), [0, 1 << 32]);
        assert_eq!(s.variance(), Ok(0));
        assert_eq!(s.avg(), Ok(1 << 31));
    }
}
