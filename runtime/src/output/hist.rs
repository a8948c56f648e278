//! `print(@hist_log(s))` and `print(@hist_linear(s, start, stop, interval))`: the
//! ASCII-art bar chart of stap's runtime (`_stp_stat_print_histogram_buf`), byte
//! for byte.
//!
//! ```text
//! value |-------------------------------------------------- count
//!     0 |                                                   0
//!     1 |@                                                  1
//!     2 |@@                                                 2
//! ```
//!
//! * Rows run from the lowest to the highest non-empty bucket, widened by up to two
//!   empty buckets on each side. A log histogram is not widened below 0; a linear
//!   one drops an empty underflow or overflow row.
//! * A bar is `count / scale` `@`s, where `scale` is 1 up to a count of 50 and
//!   `ceil(max / 50)` above.
//! * A zero row whose neighbours within two rows (inside the printed range) are also
//!   zero is left out; a `~` line stands for each run of left-out rows that is
//!   followed by a printed row.
//! * The chart ends with an empty line.
//!
//! The caller reports `empty aggregate` for an aggregate with no values instead of
//! printing it (stap never renders one); given an empty histogram these functions
//! print only the header and the final empty line.

use crate::stats::{HistSpec, Histogram, LOG_BUCKET0, LinearHist, LogHist, Stat};

/// Characters in the longest bar (`HIST_WIDTH`).
const BAR_WIDTH: i64 = 50;
/// Rows on each side that must be zero for a zero row to be elided (`HIST_ELISION`).
const ELISION: usize = 2;

enum Kind<'a> {
    Log,
    Linear(&'a LinearHist),
}

/// The chart of an aggregate's histogram `h`; nothing if it does not keep it.
pub fn render(out: &mut Vec<u8>, s: &Stat, h: HistSpec) {
    match s.histogram(h) {
        Some(Histogram::Log(h)) => render_log(out, h),
        Some(Histogram::Linear(h)) => render_linear(out, h),
        None => {}
    }
}

pub fn render_log(out: &mut Vec<u8>, h: &LogHist) {
    chart(out, h.counts(), &Kind::Log);
}

pub fn render_linear(out: &mut Vec<u8>, h: &LinearHist) {
    chart(out, h.counts(), &Kind::Linear(h));
}

/// Characters `%lld` takes for `v`.
fn digits(v: i64) -> i64 {
    let sign = i64::from(v < 0);
    sign + i64::from(v.unsigned_abs().checked_ilog10().unwrap_or(0)) + 1
}

/// C's `%*s`: right-aligned in `width`, or left-aligned in `-width` when negative.
fn pad_str(out: &mut Vec<u8>, width: i64, s: &str) {
    let fill = width.unsigned_abs().saturating_sub(s.len() as u64) as usize;
    if width >= 0 {
        out.resize(out.len() + fill, b' ');
        out.extend_from_slice(s.as_bytes());
    } else {
        out.extend_from_slice(s.as_bytes());
        out.resize(out.len() + fill, b' ');
    }
}

fn chart(out: &mut Vec<u8>, counts: &[i64], kind: &Kind<'_>) {
    let last = counts.len() - 1;
    let header = |out: &mut Vec<u8>, val_space: i64| {
        pad_str(out, val_space, "value");
        out.extend_from_slice(b" |");
        out.resize(out.len() + BAR_WIDTH as usize, b'-');
        out.extend_from_slice(b" count\n");
    };
    let (Some(mut low), Some(mut high)) = (
        counts.iter().position(|&c| c > 0),
        counts.iter().rposition(|&c| c > 0),
    ) else {
        header(out, 5);
        out.push(b'\n');
        return;
    };
    let valmax = counts.iter().copied().max().unwrap_or(0);

    for _ in 0..ELISION {
        let may_lower = match kind {
            Kind::Log => low != LOG_BUCKET0,
            Kind::Linear(_) => true,
        };
        if may_lower && low > 0 {
            low -= 1;
        }
        if high < last {
            high += 1;
        }
    }
    let (mut under, mut over) = (false, false);
    if let Kind::Linear(_) = kind {
        if low == 0 && counts[0] == 0 {
            low += 1;
        }
        if high == last && counts[high] == 0 {
            high -= 1;
        }
        under = low == 0;
        over = high == last;
    }

    let scale = if valmax <= BAR_WIDTH {
        1
    } else {
        (valmax as u64).div_ceil(BAR_WIDTH as u64)
    };
    let cnt_space = digits(valmax);
    let val_space = match kind {
        // stap sizes the column from `start + interval * high`, one interval past
        // the last label it prints, in C int arithmetic; kept for identical output.
        Kind::Linear(h) => {
            let past_end =
                (h.start() as i32).wrapping_add((h.interval() as i32).wrapping_mul(high as i32));
            (digits(h.start()) + i64::from(under))
                .max(digits(i64::from(past_end)) + i64::from(over))
        }
        Kind::Log => digits(LogHist::bucket_value(high)).max(digits(LogHist::bucket_value(low))),
    }
    .max(5);

    header(out, val_space);
    let mut eliding = false;
    for i in low..=high {
        let near = i.saturating_sub(ELISION).max(low)..=(i + ELISION).min(high);
        if counts[near].iter().all(|&c| c == 0) {
            eliding = true;
            continue;
        }
        if eliding {
            pad_str(out, val_space, "");
            out.extend_from_slice(b" ~\n");
            eliding = false;
        }
        let (prefix, val) = match kind {
            Kind::Log => ("", LogHist::bucket_value(i)),
            Kind::Linear(h) => {
                let at = |n: usize| {
                    h.start()
                        .wrapping_add((n as i64).wrapping_mul(h.interval()))
                };
                if i == 0 {
                    ("<", h.start())
                } else if i == last {
                    (">", at(i - 2))
                } else {
                    ("", at(i - 1))
                }
            }
        };
        pad_str(out, val_space - digits(val), prefix);
        out.extend_from_slice(format!("{val} |").as_bytes());
        let count = counts[i];
        let bar = (count as u64 / scale) as i64;
        out.resize(out.len() + bar as usize, b'@');
        pad_str(out, BAR_WIDTH - bar + 1 + cnt_space, &count.to_string());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::StatSpec;

    fn log(values: &[(i64, i64)]) -> String {
        let mut h = LogHist::new();
        for &(n, v) in values {
            for _ in 0..n {
                h.add(v);
            }
        }
        let mut out = Vec::new();
        render_log(&mut out, &h);
        String::from_utf8(out).unwrap_or_else(|e| panic!("histograms are ASCII: {e}"))
    }

    fn linear(start: i64, stop: i64, interval: i64, values: &[(i64, i64)]) -> String {
        let mut h = LinearHist::new(start, stop, interval)
            .unwrap_or_else(|e| panic!("bad linear histogram in test: {e:?}"));
        for &(n, v) in values {
            for _ in 0..n {
                h.add(v);
            }
        }
        let mut out = Vec::new();
        render_linear(&mut out, &h);
        String::from_utf8(out).unwrap_or_else(|e| panic!("histograms are ASCII: {e}"))
    }

    fn ones(values: &[i64]) -> Vec<(i64, i64)> {
        values.iter().map(|&v| (1, v)).collect()
    }

    /// Compares line by line first, so a failure names the row that differs.
    #[track_caller]
    fn assert_chart(got: &str, expected: &str) {
        for (n, (g, e)) in got.lines().zip(expected.lines()).enumerate() {
            assert_eq!(g, e, "row {n} differs; whole chart:\n{got}");
        }
        assert_eq!(got, expected, "chart length differs; whole chart:\n{got}");
    }

    #[test]
    fn every_chart_ends_with_an_empty_line() {
        for chart in [log(&ones(&[5])), linear(0, 10, 1, &ones(&[3]))] {
            assert!(chart.ends_with(" 0\n\n"), "{chart}");
        }
    }

    #[test]
    fn an_empty_histogram_prints_only_the_frame() {
        assert_chart(
            &log(&[]),
            "value |-------------------------------------------------- count\n\n",
        );
    }

    #[test]
    fn render_follows_the_histogram_asked_for() {
        let lin = HistSpec::Linear {
            start: 0,
            stop: 100,
            interval: 10,
        };
        let spec = StatSpec {
            hists: vec![HistSpec::Log, lin],
            variance_shift: 0,
        };
        let values = [1, 2, 3, 4, 5, 6, 7, 8, 16, 17, 1000];
        let mut s = Stat::new(spec);
        for v in values {
            s.add(v);
        }
        let chart = |h| {
            let mut out = Vec::new();
            render(&mut out, &s, h);
            String::from_utf8_lossy(&out).into_owned()
        };
        assert_eq!(chart(HistSpec::Log), log(&ones(&values)));
        assert_eq!(chart(lin), linear(0, 100, 10, &ones(&values)));
        let mut out = Vec::new();
        render(&mut out, &Stat::new(StatSpec::default()), HistSpec::Log);
        assert!(out.is_empty(), "no histogram, no chart");
    }

    #[test]
    fn reference_log_example() {
        assert_chart(
            &log(&ones(&[1, 2, 3, 4, 5, 6, 7, 8, 16, 17, 1000])),
            r"value |-------------------------------------------------- count
    0 |                                                   0
    1 |@                                                  1
    2 |@@                                                 2
    4 |@@@@                                               4
    8 |@                                                  1
   16 |@@                                                 2
   32 |                                                   0
   64 |                                                   0
  128 |                                                   0
  256 |                                                   0
  512 |@                                                  1
 1024 |                                                   0
 2048 |                                                   0

",
        );
    }

    #[test]
    fn reference_linear_example() {
        assert_chart(
            &linear(0, 100, 10, &ones(&[5, 15, 15, 25, 95, -3, 150, 150])),
            r"value |-------------------------------------------------- count
   <0 |@                                                  1
    0 |@                                                  1
   10 |@@                                                 2
   20 |@                                                  1
   30 |                                                   0
   40 |                                                   0
      ~
   70 |                                                   0
   80 |                                                   0
   90 |@                                                  1
  100 |                                                   0
 >100 |@@                                                 2

",
        );
    }

    #[test]
    fn reference_scaling_example() {
        assert_chart(
            &log(&[(200, 1), (60, 4), (3, 64)]),
            r"value |-------------------------------------------------- count
    0 |                                                     0
    1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 200
    2 |                                                     0
    4 |@@@@@@@@@@@@@@@                                     60
    8 |                                                     0
   16 |                                                     0
   32 |                                                     0
   64 |                                                     3
  128 |                                                     0
  256 |                                                     0

",
        );
    }

    #[test]
    fn negative_values() {
        assert_chart(
            &log(&ones(&[-20, -5, -1, 0, 3])),
            r"value |-------------------------------------------------- count
  -64 |                                                   0
  -32 |                                                   0
  -16 |@                                                  1
   -8 |                                                   0
   -4 |@                                                  1
   -2 |                                                   0
   -1 |@                                                  1
    0 |@                                                  1
    1 |                                                   0
    2 |@                                                  1
    4 |                                                   0
    8 |                                                   0

",
        );
    }

    #[test]
    fn only_negative_values() {
        assert_chart(
            &log(&[(3, -1)]),
            r"value |-------------------------------------------------- count
   -4 |                                                   0
   -2 |                                                   0
   -1 |@@@                                                3
    0 |                                                   0
    1 |                                                   0

",
        );
    }

    #[test]
    fn single_value() {
        assert_chart(
            &log(&ones(&[7])),
            r"value |-------------------------------------------------- count
    1 |                                                   0
    2 |                                                   0
    4 |@                                                  1
    8 |                                                   0
   16 |                                                   0

",
        );
    }

    #[test]
    fn single_zero() {
        assert_chart(
            &log(&ones(&[0])),
            r"value |-------------------------------------------------- count
    0 |@                                                  1
    1 |                                                   0
    2 |                                                   0

",
        );
    }

    #[test]
    fn wide_counts() {
        assert_chart(
            &log(&[(123456, 5), (7, 1000), (1, 9)]),
            r"value |-------------------------------------------------- count
    1 |                                                        0
    2 |                                                        0
    4 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@  123456
    8 |                                                        1
   16 |                                                        0
   32 |                                                        0
      ~
  128 |                                                        0
  256 |                                                        0
  512 |                                                        7
 1024 |                                                        0
 2048 |                                                        0

",
        );
    }

    #[test]
    fn elided_runs_across_the_whole_range() {
        assert_chart(
            &log(&ones(&[
                1,
                1048576,
                1099511627776,
                i64::MAX,
                -1073741824,
                i64::MIN,
            ])),
            r"               value |-------------------------------------------------- count
-9223372036854775808 |@                                                  1
-4611686018427387904 |                                                   0
-2305843009213693952 |                                                   0
                     ~
         -4294967296 |                                                   0
         -2147483648 |                                                   0
         -1073741824 |@                                                  1
          -536870912 |                                                   0
          -268435456 |                                                   0
                     ~
                  -1 |                                                   0
                   0 |                                                   0
                   1 |@                                                  1
                   2 |                                                   0
                   4 |                                                   0
                     ~
              262144 |                                                   0
              524288 |                                                   0
             1048576 |@                                                  1
             2097152 |                                                   0
             4194304 |                                                   0
                     ~
        274877906944 |                                                   0
        549755813888 |                                                   0
       1099511627776 |@                                                  1
       2199023255552 |                                                   0
       4398046511104 |                                                   0
                     ~
 1152921504606846976 |                                                   0
 2305843009213693952 |                                                   0
 4611686018427387904 |@                                                  1

",
        );
    }

    #[test]
    fn scale_stays_one_up_to_fifty() {
        assert_chart(
            &log(&[(50, 1), (1, 2)]),
            r"value |-------------------------------------------------- count
    0 |                                                    0
    1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 50
    2 |@                                                   1
    4 |                                                    0
    8 |                                                    0

",
        );
    }

    #[test]
    fn scale_rounds_up_above_fifty() {
        assert_chart(
            &log(&[(51, 1), (1, 2)]),
            r"value |-------------------------------------------------- count
    0 |                                                    0
    1 |@@@@@@@@@@@@@@@@@@@@@@@@@                          51
    2 |                                                    1
    4 |                                                    0
    8 |                                                    0

",
        );
    }

    #[test]
    fn linear_negative_start() {
        assert_chart(
            &linear(
                -100,
                100,
                20,
                &[
                    (1, -100),
                    (1, -81),
                    (1, -80),
                    (1, 0),
                    (1, 19),
                    (1, 99),
                    (1, 100),
                    (1, 119),
                    (1, 120),
                    (5, -101),
                ],
            ),
            r"value |-------------------------------------------------- count
<-100 |@@@@@                                              5
 -100 |@@                                                 2
  -80 |@                                                  1
  -60 |                                                   0
  -40 |                                                   0
  -20 |                                                   0
    0 |@@                                                 2
   20 |                                                   0
   40 |                                                   0
   60 |                                                   0
   80 |@                                                  1
  100 |@@                                                 2
 >100 |@                                                  1

",
        );
    }

    #[test]
    fn linear_column_sized_one_interval_past_the_last_label() {
        assert_chart(
            &linear(0, 99000, 1000, &ones(&[99500, 98000, 98000])),
            r" value |-------------------------------------------------- count
 96000 |                                                   0
 97000 |                                                   0
 98000 |@@                                                 2
 99000 |@                                                  1

",
        );
    }

    #[test]
    fn linear_underflow_and_overflow_only() {
        assert_chart(
            &linear(0, 10, 1, &ones(&[-5, -5, 100])),
            r"value |-------------------------------------------------- count
   <0 |@@                                                 2
    0 |                                                   0
    1 |                                                   0
      ~
    9 |                                                   0
   10 |                                                   0
  >10 |@                                                  1

",
        );
    }

    #[test]
    fn linear_three_buckets() {
        assert_chart(
            &linear(0, 0, 1, &ones(&[0, 0, -1])),
            r"value |-------------------------------------------------- count
   <0 |@                                                  1
    0 |@@                                                 2

",
        );
    }

    #[test]
    fn linear_wide_underflow_label() {
        assert_chart(
            &linear(-10000, 0, 5000, &[(1, -20000), (3, -1)]),
            r"  value |-------------------------------------------------- count
<-10000 |@                                                  1
 -10000 |                                                   0
  -5000 |@@@                                                3
      0 |                                                   0

",
        );
    }

    #[test]
    fn linear_negative_interval_counts_down() {
        assert_chart(
            &linear(
                100,
                0,
                -10,
                &[(1, 100), (1, 150), (1, 50), (1, 10000000000), (2, 99)],
            ),
            r"value |-------------------------------------------------- count
 <100 |@@@                                                3
  100 |@@                                                 2
   90 |                                                   0
   80 |@                                                  1
   70 |                                                   0
   60 |                                                   0

",
        );
    }

    #[test]
    fn linear_short_range_elides_nothing() {
        assert_chart(
            &linear(0, 60, 30, &ones(&[-1, 200])),
            r"value |-------------------------------------------------- count
   <0 |@                                                  1
    0 |                                                   0
   30 |                                                   0
   60 |                                                   0
  >60 |@                                                  1

",
        );
    }
}
