//! Benchmark harnesses; run them with `cargo run --release -p rstap-benches --bin NAME`.
//!
//! In: a seed and a size, or pairs of equivalent scripts. Out: a deterministic
//! generated SystemTap script, timings, and a table beside the peer (`stap` for
//! the front end, `bpftrace` for everything from start-up to per-event cost).
//! The binaries in `src/bin` decide what to time and print; the modules here
//! generate, spawn, measure and render.

pub mod bpf_stats;
pub mod flags;
pub mod footprint;
pub mod machine;
pub mod peer_bpftrace;
pub mod procstat;
pub mod report;
pub mod rng;
pub mod rstap_bin;
pub mod script;
pub mod side_by_side;
pub mod stap_peer;
pub mod stats;
pub mod tracefs_rate;
pub mod vs_report;
pub mod vs_scripts;
pub mod workload;
