//! The plain-text table a benchmark prints: one row per measured thing.

use crate::stats::{Summary, mb_per_s, ms};
use std::fmt::Write;

#[derive(Debug)]
pub struct Row {
    pub label: String,
    pub summary: Summary,
    /// Bytes of script the row's time covers; `None` for a fixed cost (start-up).
    pub bytes: Option<usize>,
}

pub fn table(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.label.len()).max().unwrap_or(0).max(8);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:>5}  {:>10}  {:>10}  {:>10}  {:>12}",
        "what", "runs", "median ms", "min ms", "max ms", "MB/s (med)"
    );
    for r in rows {
        let rate = r.bytes.map_or_else(
            || "-".to_string(),
            |b| format!("{:.1}", mb_per_s(b, r.summary.median)),
        );
        let s = &r.summary;
        let _ = writeln!(
            out,
            "{:<width$}  {:>5}  {:>10.2}  {:>10.2}  {:>10.2}  {:>12}",
            r.label,
            s.runs,
            ms(s.median),
            ms(s.min),
            ms(s.max),
            rate
        );
    }
    out
}
