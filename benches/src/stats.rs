//! Samples reduced to median, min and max (durations, or any number with
//! `Spread`), and throughput in MB/s.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub median: Duration,
    pub min: Duration,
    pub max: Duration,
    pub runs: usize,
}

impl Summary {
    /// `None` for no samples.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let (min, max) = (*sorted.first()?, *sorted.last()?);
        let mid = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[mid - 1] + sorted[mid]) / 2
        } else {
            sorted[mid]
        };
        Some(Summary {
            median,
            min,
            max,
            runs: sorted.len(),
        })
    }
}

/// Median, min and max of plain numbers (ns per event, KiB, ms).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Spread {
    /// `None` for no samples; NaNs sort last and are not expected.
    pub fn of(samples: &[f64]) -> Option<Spread> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (min, max) = (*sorted.first()?, *sorted.last()?);
        let mid = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        } else {
            sorted[mid]
        };
        Some(Spread {
            median,
            min,
            max,
            runs: sorted.len(),
        })
    }
}

/// Runs `f` once to warm caches and the allocator, then `runs` times, timing each.
pub fn time_runs<T>(runs: usize, mut f: impl FnMut() -> T) -> Vec<Duration> {
    std::hint::black_box(f());
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect()
}

/// Decimal megabytes (10^6 bytes) per second.
pub fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_count_is_the_mean_of_the_middle_two() {
        let s = Summary::of(&[
            Duration::from_millis(4),
            Duration::from_millis(1),
            Duration::from_millis(2),
            Duration::from_millis(9),
        ])
        .expect("four samples give a summary");
        assert_eq!(s.median, Duration::from_millis(3), "median of 1 2 4 9");
        assert_eq!(
            (s.min, s.max),
            (Duration::from_millis(1), Duration::from_millis(9)),
            "min and max"
        );
    }

    #[test]
    fn spread_of_odd_count_is_the_middle_one() {
        let s = Spread::of(&[3.0, 10.0, 1.0]).expect("three samples give a spread");
        assert_eq!(
            (s.median, s.min, s.max, s.runs),
            (3.0, 1.0, 10.0, 3),
            "median, min, max of 1 3 10"
        );
    }

    #[test]
    fn no_samples_no_summary() {
        assert!(
            Summary::of(&[]).is_none(),
            "an empty sample set has no median"
        );
    }
}
