//! The scripts measured side by side: each rstap script with the bpftrace
//! script that does the same work, as command-line arguments for each tool.
//!
//! Where the two languages differ, the pair is as close as both allow:
//! - rstap runs begin probes before it attaches kernel probes (as stap does),
//!   so `begin { exit() }` would never attach the tracepoint; the rstap side
//!   exits from `timer.ms(1)`, which fires after attaching. bpftrace attaches
//!   every probe before BEGIN fires, so `BEGIN { exit(); }` is its equivalent.
//! - rstap elides a probe that does nothing; `-u` keeps the empty probe.
//! - stap's `<<<` keeps count, sum, min and max (and a log histogram when the
//!   script prints `@hist_log`); bpftrace's `count()` keeps a count,
//!   `stats()` count, sum and average, `hist()` a log histogram.

use crate::rng::Rng;
use std::path::Path;

/// One thing done by both tools.
#[derive(Clone, Debug)]
pub struct Pair {
    pub label: String,
    pub rstap: Vec<String>,
    pub bpftrace: Vec<String>,
}

impl Pair {
    fn new(label: &str, rstap: &[&str], bpftrace: &[&str]) -> Pair {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Pair {
            label: label.to_string(),
            rstap: own(rstap),
            bpftrace: own(bpftrace),
        }
    }
}

/// The tracepoint every per-event script probes and the workload fires.
pub const EVENT: &str = "syscalls:sys_enter_getppid";

fn rstap_tp() -> String {
    format!("kernel.trace(\"{EVENT}\")")
}

fn bpftrace_tp() -> String {
    format!("tracepoint:{EVENT}")
}

/// Start-up: do nothing and exit; attach one tracepoint and exit.
pub fn startup() -> Vec<Pair> {
    let (r, b) = (rstap_tp(), bpftrace_tp());
    vec![
        Pair::new(
            "begin, exit",
            &["-e", "probe begin { exit() }"],
            &["-e", "BEGIN { exit(); }"],
        ),
        Pair::new(
            "one tracepoint attached, exit",
            &[
                "-e",
                &format!("global n; probe {r} {{ n <<< 1 }} probe timer.ms(1) {{ exit() }}"),
            ],
            &[
                "-e",
                &format!("{b} {{ @n = count(); }} BEGIN {{ exit(); }}"),
            ],
        ),
    ]
}

/// The per-event pairs: each probes `EVENT` and counts or aggregates.
pub fn per_event() -> Vec<Pair> {
    let (r, b) = (rstap_tp(), bpftrace_tp());
    let pair = |label: &str, extra: &[&str], stp: String, bt: String| {
        let mut rstap = extra.to_vec();
        rstap.extend(["-e", &stp]);
        Pair::new(label, &rstap, &["-e", &bt])
    };
    vec![
        pair(
            "1 empty probe",
            &["-u"],
            format!("probe {r} {{ }}"),
            format!("{b} {{ }}"),
        ),
        pair(
            "2 n <<< 1 / @ = count()",
            &[],
            format!("global n; probe {r} {{ n <<< 1 }}"),
            format!("{b} {{ @ = count(); }}"),
        ),
        pair(
            "3 c[execname()] <<< 1 / @[comm] = count()",
            &[],
            format!("global c; probe {r} {{ c[execname()] <<< 1 }}"),
            format!("{b} {{ @[comm] = count(); }}"),
        ),
        pair(
            "4 h[tid()] <<< ns & 0xffff, @hist_log / @[tid] = hist(..)",
            &[],
            format!(
                "global h; probe {r} {{ h[tid()] <<< (gettimeofday_ns() & 0xffff) }} \
                 probe end {{ foreach (k in h) print(@hist_log(h[k])) }}"
            ),
            format!("{b} {{ @[tid] = hist(nsecs & 0xffff); }}"),
        ),
        pair(
            "4b h[tid()] <<< ns & 0xffff, no histogram / @[tid] = stats(..)",
            &[],
            format!("global h; probe {r} {{ h[tid()] <<< (gettimeofday_ns() & 0xffff) }}"),
            format!("{b} {{ @[tid] = stats(nsecs & 0xffff); }}"),
        ),
        pair(
            "5 t[tid()] <<< 1 / @[tid] = count()",
            &[],
            format!("global t; probe {r} {{ t[tid()] <<< 1 }}"),
            format!("{b} {{ @[tid] = count(); }}"),
        ),
    ]
}

/// Compile only, to an ELF object: `rstap -p4 -o` and `bpftrace --emit-elf`
/// (neither loads anything into the kernel), on the tiny script and on
/// `statements` statements over one probe per tracepoint in `events`. The
/// scripts are written to `dir`.
pub fn compile(dir: &Path, events: &[String], statements: usize) -> std::io::Result<Vec<Pair>> {
    let big = format!("{statements} statements, {} probes", events.len());
    let cases = [
        ("one probe, one aggregate", tiny()),
        (big.as_str(), many_statements(events, statements)),
    ];
    let mut pairs = Vec::new();
    for (i, (label, (stp, bt))) in cases.into_iter().enumerate() {
        let stp_path = dir.join(format!("compile{i}.stp"));
        let bt_path = dir.join(format!("compile{i}.bt"));
        std::fs::write(&stp_path, stp)?;
        std::fs::write(&bt_path, bt)?;
        let path = |p: &Path| p.display().to_string();
        let obj = |tool: &str| path(&dir.join(format!("{tool}{i}.o")));
        pairs.push(Pair::new(
            label,
            &["-p4", "-o", &obj("rstap"), &path(&stp_path)],
            &["--emit-elf", &obj("bpftrace"), &path(&bt_path)],
        ));
    }
    Ok(pairs)
}

/// The tiny compile case: one probe, one aggregate.
pub fn tiny() -> (String, String) {
    (
        format!("global n\nprobe {} {{ n <<< 1 }}\n", rstap_tp()),
        format!("{} {{ @n = count(); }}\n", bpftrace_tp()),
    )
}

const GLOBALS: usize = 20;

/// The large compile case: `statements` statements spread evenly over one probe
/// per tracepoint in `events`, each a long integer expression over scalar
/// globals stored into a global. Returns the rstap and the bpftrace text.
pub fn many_statements(events: &[String], statements: usize) -> (String, String) {
    let mut rng = Rng::new(0xB7F7_AC3E);
    let names: Vec<String> = (0..GLOBALS).map(|i| format!("g{i}")).collect();
    let mut stp = format!("global {}\n", names.join(", "));
    let mut bt = String::new();
    let per_probe = statements.div_ceil(events.len().max(1));
    let mut left = statements;
    for event in events {
        stp.push_str(&format!("probe kernel.trace(\"{event}\") {{\n"));
        bt.push_str(&format!("tracepoint:{event} {{\n"));
        for _ in 0..per_probe.min(left) {
            let mut g = || rng.below(GLOBALS);
            let (t, a, b, c) = (g(), g(), g(), g());
            let (k1, k2, k3) = (rng.range(2, 97), rng.range(1, 0xffff), rng.range(1, 999));
            let s = rng.range(1, 31);
            let expr = |p: &str| {
                format!(
                    "(({p}g{a} * {k1} + {p}g{b}) ^ ({p}g{c} >> {s})) + (({p}g{b} & {k2}) | ({p}g{a} - {k3}))"
                )
            };
            stp.push_str(&format!("  g{t} = {}\n", expr("")));
            bt.push_str(&format!("  @g{t} = {};\n", expr("@")));
        }
        left -= per_probe.min(left);
        stp.push_str("}\n");
        bt.push_str("}\n");
    }
    (stp, bt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_statements_spreads_every_statement_over_the_probes() {
        let events: Vec<String> = (0..3).map(|i| format!("syscalls:sys_enter_e{i}")).collect();
        let (stp, bt) = many_statements(&events, 10);
        assert_eq!(
            stp.matches("probe ").count(),
            3,
            "one rstap probe per event"
        );
        assert_eq!(stp.matches(" = ((").count(), 10, "ten rstap statements");
        assert_eq!(
            bt.matches("tracepoint:").count(),
            3,
            "one bpftrace probe per event"
        );
        assert_eq!(bt.matches(";\n").count(), 10, "ten bpftrace statements");
    }
}
