//! Front-end throughput: rstap's `parse` (lex → preprocess → glue → parse →
//! checks) on a generated ~1 MB SystemTap script, beside `stap -p1` on the same file.
//!
//! `cargo run --release -p rstap-benches --bin parse_throughput [-- --size BYTES
//! --seed N --iters N --stap-runs N --emit PATH]`

use rstap_benches::report::{Row, table};
use rstap_benches::stap_peer::{self, Skipped, TempDir};
use rstap_benches::stats::{Summary, mb_per_s, time_runs};
use rstap_benches::{script, stats};
use rstap_grammar::{ParseOptions, SourceMap, ast, dump, lexer, parse};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// rstap's throughput goal for parse, in MB/s.
const TARGET_MB_S: f64 = 20.0;

#[derive(Debug)]
struct Args {
    size: usize,
    seed: u64,
    iters: usize,
    stap_runs: usize,
    emit: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        size: 1_000_000,
        seed: 0x5EED_57A9,
        iters: 21,
        stap_runs: 5,
        emit: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--size" => args.size = number(value()?)? as usize,
            "--seed" => args.seed = number(value()?)?,
            "--iters" => args.iters = (number(value()?)? as usize).max(1),
            "--stap-runs" => args.stap_runs = number(value()?)? as usize,
            "--emit" => args.emit = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("parse_throughput: {e}");
            eprintln!(
                "usage: parse_throughput [--size BYTES] [--seed N] [--iters N] [--stap-runs N] [--emit PATH]"
            );
            return ExitCode::from(2);
        }
    };
    let text = script::generate(args.seed, args.size);
    let bytes = text.len();
    if let Some(path) = &args.emit
        && let Err(e) = std::fs::write(path, &text)
    {
        eprintln!("parse_throughput: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }

    let mut files = SourceMap::new();
    let id = files.add("bench.stp", text.as_str());
    let opts = ParseOptions::default();
    let ast = match parse(&files, id, &opts) {
        Ok(ast) => ast,
        Err(d) => {
            eprintln!(
                "parse_throughput: rstap rejects the generated script (a generator bug):\n{}",
                d.render(&files)
            );
            return ExitCode::FAILURE;
        }
    };
    let tokens = lexer::lex(id, &text).map(|t| t.len()).unwrap_or(0);
    println!(
        "script: {:.2} MB, {} lines, {tokens} tokens, {} top-level items (seed {:#x})",
        bytes as f64 / 1e6,
        text.lines().count(),
        ast.items.len(),
        args.seed
    );

    let lex = time_runs(args.iters, || lexer::lex(id, &text).map(|t| t.len()));
    let full = time_runs(args.iters, || {
        parse(&files, id, &opts).map(|a| a.items.len())
    });
    let with_dump = time_runs(args.iters, || {
        parse(&files, id, &opts).map(|a| dump::dump(&a, "bench.stp").len())
    });
    let mut rows = vec![
        row("rstap lex only", &lex, Some(bytes)),
        row("rstap parse (lex+pp+parse)", &full, Some(bytes)),
        row("rstap parse + dump (-p1)", &with_dump, Some(bytes)),
    ];

    let peer = measure_stap(&text, &ast, args.stap_runs);
    if let Ok(p) = &peer {
        rows.push(row("stap -p1 (whole process)", &p.whole, Some(bytes)));
        rows.push(row("stap -p1 start-up (1-line script)", &p.startup, None));
    }
    println!("{}", table(&rows));
    report_split(&lex, &full, &with_dump);
    report_peer(&peer, &full, bytes);
    report_target(&full, bytes);
    ExitCode::SUCCESS
}

fn row(label: &str, samples: &[Duration], bytes: Option<usize>) -> Row {
    let summary = Summary::of(samples).expect("every measurement takes at least one sample");
    Row {
        label: label.to_string(),
        summary,
        bytes,
    }
}

fn median(samples: &[Duration]) -> Duration {
    Summary::of(samples)
        .expect("every measurement takes at least one sample")
        .median
}

/// What the peer measured.
#[derive(Debug)]
struct Peer {
    /// `stap -p1` on a one-line script: its fixed start-up.
    startup: Vec<Duration>,
    /// `stap -p1` on the generated script.
    whole: Vec<Duration>,
    /// rstap's `-p1` dump equals stap's, byte for byte.
    same_tree: bool,
}

fn measure_stap(text: &str, ast: &ast::File, runs: usize) -> Result<Peer, Skipped> {
    if runs == 0 {
        return Err(Skipped::NotRequested);
    }
    if stap_peer::stap_version().is_none() {
        return Err(Skipped::NotInstalled);
    }
    let dir = TempDir::new("parse").map_err(|e| Skipped::Failed(format!("temp dir: {e}")))?;
    let big = dir.path().join("bench.stp");
    let tiny = dir.path().join("tiny.stp");
    std::fs::write(&big, text)
        .map_err(|e| Skipped::Failed(format!("writing {}: {e}", big.display())))?;
    std::fs::write(&tiny, "probe begin { exit() }\n")
        .map_err(|e| Skipped::Failed(format!("writing {}: {e}", tiny.display())))?;
    // The untimed first runs warm the page cache and stap's tapset scan.
    stap_peer::p1_output(&tiny)?;
    let startup = stap_peer::time_stap_p1(&tiny, runs)?;
    let theirs = stap_peer::p1_output(&big)?;
    let same_tree = theirs == dump::dump(ast, &big.display().to_string());
    let whole = stap_peer::time_stap_p1(&big, runs)?;
    Ok(Peer {
        startup,
        whole,
        same_tree,
    })
}

/// Where rstap's time goes: lexing, and everything after it.
fn report_split(lex: &[Duration], full: &[Duration], with_dump: &[Duration]) {
    let (lex, full, dumped) = (median(lex), median(full), median(with_dump));
    let rest = full.saturating_sub(lex);
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / full.as_secs_f64();
    println!(
        "rstap split (medians): lex {:.2} ms ({:.0}%), preprocess+glue+parse+checks {:.2} ms ({:.0}%); dump adds {:.2} ms",
        stats::ms(lex),
        pct(lex),
        stats::ms(rest),
        pct(rest),
        stats::ms(dumped.saturating_sub(full))
    );
}

fn report_peer(peer: &Result<Peer, Skipped>, full: &[Duration], bytes: usize) {
    let ours = median(full);
    match peer {
        Ok(p) => {
            let stap = median(&p.whole);
            println!(
                "ratio (median wall): stap -p1 / rstap parse = {:.1}x",
                stap.as_secs_f64() / ours.as_secs_f64()
            );
            // Start-up dominates a small script; the difference is stap's per-byte cost.
            let net = stap.saturating_sub(median(&p.startup));
            if net > ours / 10 {
                println!(
                    "  without stap's start-up: {:.1}x ({:.1} MB/s for stap's lex+parse+print)",
                    net.as_secs_f64() / ours.as_secs_f64(),
                    mb_per_s(bytes, net)
                );
            } else {
                println!(
                    "  without stap's start-up: too close to separate at this size (try a larger --size)"
                );
            }
            let verdict = if p.same_tree {
                "identical"
            } else {
                "DIFFERENT"
            };
            println!(
                "differential: rstap's -p1 dump vs stap -p1 on the generated script: {verdict}"
            );
        }
        Err(Skipped::NotRequested) => println!("peer skipped: --stap-runs 0"),
        Err(Skipped::NotInstalled) => {
            println!("peer skipped: stap is not installed; rstap figures only");
        }
        Err(Skipped::Failed(why)) => {
            println!("peer skipped: stap -p1 rejected the generated script:\n{why}");
        }
    }
}

fn report_target(full: &[Duration], bytes: usize) {
    let rate = mb_per_s(bytes, median(full));
    let verdict = if rate >= TARGET_MB_S {
        "met"
    } else {
        "NOT met"
    };
    println!("target: rstap parse >= {TARGET_MB_S} MB/s: {verdict} ({rate:.1} MB/s)");
}
