//! Benchmark harnesses; run them with `cargo run --release -p rstap-benches --bin NAME`.
