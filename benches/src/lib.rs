//! Benchmark harnesses; run them with `cargo run --release -p rstap-benches --bin NAME`.
//!
//! In: a seed and a size. Out: a deterministic generated SystemTap script, timings,
//! and a table beside the peer (`stap`). The library never measures anything by
//! itself; the binaries in `src/bin` decide what to time and print.

pub mod report;
pub mod rng;
pub mod script;
pub mod stap_peer;
pub mod stats;
