//! The tracefs runtime's sustained event rate (see `rstap_benches::tracefs_rate`),
//! printed as a table. `vs_bpftrace` measures and reports the same.
//!
//! `cargo run --release -p rstap-benches --bin tracefs_rate [-- --seconds N
//! --start RATE --rstap PATH]` (as root)

use rstap_benches::rstap_bin;
use rstap_benches::stap_peer::TempDir;
use rstap_benches::tracefs_rate;
use std::path::PathBuf;
use std::process::ExitCode;

struct Args {
    seconds: u64,
    start: u64,
    rstap: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 3,
        start: 50_000,
        rstap: None,
    };
    for (flag, value) in rstap_benches::flags::pairs()? {
        let count = || rstap_benches::flags::count(&flag, &value);
        match flag.as_str() {
            "--seconds" => args.seconds = count()?,
            "--start" => args.start = count()?,
            "--rstap" => args.rstap = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(args)
}

fn run(args: &Args) -> Result<(), String> {
    let rstap = match &args.rstap {
        Some(p) => p.clone(),
        None => rstap_bin::build_release()?,
    };
    let dir = TempDir::new("tracefs-rate").map_err(|e| e.to_string())?;
    let steps = tracefs_rate::measure(&rstap, dir.path(), args.seconds, args.start)?;
    println!(
        "tracefs runtime, getppid counting script, {} s per step:\n",
        args.seconds
    );
    print!("{}", tracefs_rate::markdown(&steps));
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if tracefs_rate::child_main(&argv) {
        return ExitCode::SUCCESS;
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tracefs_rate: {e}");
            eprintln!("usage: tracefs_rate [--seconds N] [--start RATE] [--rstap PATH]");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tracefs_rate: {e}");
            ExitCode::FAILURE
        }
    }
}
