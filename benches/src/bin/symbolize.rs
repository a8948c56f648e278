//! Symbolization time: how long rstap's user space takes to name 10,000
//! recorded stacks, as `print_backtrace()` and `print_ubacktrace()` print
//! them after the event. Kernel stacks of 12 frames at addresses inside real
//! kernel functions (from /proc/kallsyms, picked pseudo-randomly), then user
//! stacks of 8 frames in this process's own code and libc. The first stack
//! of each kind pays for reading the tables (/proc/kallsyms; /proc/PID/maps
//! and the objects' ELF symbols), which is reported apart.
//!
//! `cargo run --release -p rstap-benches --bin symbolize [-- --stacks N]` (as
//! root, or kallsyms shows zeros)

use rstap_compiler::backend::bpf::codegen::Deferred;
use rstap_runtime::symbols::Symbols;
use std::process::ExitCode;
use std::time::Instant;

const KERNEL_FRAMES: usize = 12;
const USER_FRAMES: usize = 8;

/// A small deterministic generator (the stacks are the same every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Kernel text symbols' addresses, sorted.
fn kernel_text() -> Vec<u64> {
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let mut addrs: Vec<u64> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let addr = u64::from_str_radix(f.next()?, 16).ok()?;
            matches!(f.next()?, "t" | "T").then_some(addr)
        })
        .filter(|a| *a != 0)
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

#[inline(never)]
fn leaf(x: u64) -> u64 {
    x.rotate_left(7) ^ 0x5a
}

#[inline(never)]
fn middle(x: u64) -> u64 {
    leaf(x) + 1
}

/// Addresses in this process's code and libc's.
fn user_code() -> Vec<u64> {
    vec![
        leaf as fn(u64) -> u64 as usize as u64 + 4,
        middle as fn(u64) -> u64 as usize as u64 + 8,
        main as fn() -> ExitCode as usize as u64 + 16,
        kernel_text as fn() -> Vec<u64> as usize as u64 + 2,
        libc::getpid as *const () as usize as u64 + 4,
        libc::malloc as *const () as usize as u64 + 8,
        libc::write as *const () as usize as u64 + 4,
    ]
}

/// Names `stacks`, one at a time as the drain does; the time of the first
/// stack and of the rest, in ms.
fn time(symbols: &Symbols, how: Deferred, pid: Option<i64>, stacks: &[Vec<u64>]) -> (f64, f64) {
    let t0 = Instant::now();
    let mut bytes = symbols.shape(how, pid, &stacks[0]).len();
    let first = t0.elapsed();
    let t1 = Instant::now();
    for s in &stacks[1..] {
        bytes += symbols.shape(how, pid, s).len();
    }
    let rest = t1.elapsed();
    std::hint::black_box(bytes);
    (first.as_secs_f64() * 1e3, rest.as_secs_f64() * 1e3)
}

fn main() -> ExitCode {
    let mut stacks = 10_000usize;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, n] = &args[..]
        && flag == "--stacks"
    {
        stacks = n.parse().unwrap_or(stacks);
    }
    let stacks = stacks.max(2);
    let text = kernel_text();
    if text.len() < 2 {
        eprintln!("symbolize: /proc/kallsyms shows no addresses (run as root)");
        return ExitCode::FAILURE;
    }
    let mut rng = Lcg(42);
    let kernel: Vec<Vec<u64>> = (0..stacks)
        .map(|_| {
            (0..KERNEL_FRAMES)
                .map(|_| {
                    let i = rng.next() as usize % (text.len() - 1);
                    let span = (text[i + 1] - text[i]).max(1);
                    text[i] + rng.next() % span
                })
                .collect()
        })
        .collect();
    let code = user_code();
    let user: Vec<Vec<u64>> = (0..stacks)
        .map(|_| {
            (0..USER_FRAMES)
                .map(|_| code[rng.next() as usize % code.len()])
                .collect()
        })
        .collect();
    let symbols = Symbols::default();
    let (kfirst, krest) = time(&symbols, Deferred::PrintBacktrace, None, &kernel);
    let pid = Some(i64::from(std::process::id()));
    let (ufirst, urest) = time(&symbols, Deferred::PrintUbacktrace, pid, &user);
    let named = String::from_utf8_lossy(&symbols.shape(Deferred::PrintUbacktrace, pid, &code))
        .lines()
        .filter(|l| l.contains(" : "))
        .count();
    println!(
        "{} kernel text symbols; {stacks} stacks of each kind",
        text.len()
    );
    println!(
        "kernel stacks ({KERNEL_FRAMES} frames): first {kfirst:.1} ms (reads kallsyms), the other {} {krest:.1} ms ({:.2} us a stack)",
        stacks - 1,
        krest * 1e3 / (stacks - 1) as f64
    );
    println!(
        "user stacks ({USER_FRAMES} frames): first {ufirst:.1} ms (reads maps and ELF symbols), the other {} {urest:.1} ms ({:.2} us a stack); {named} of {} frames named",
        stacks - 1,
        urest * 1e3 / (stacks - 1) as f64,
        code.len()
    );
    ExitCode::SUCCESS
}
