//! The fuzz targets (`fuzz/`, a workspace of its own that `cargo test
//! --workspace` does not build) still compile against the crates they fuzz.
//! Without this a change to the compiler's API broke the `check` target for a
//! whole session unnoticed. Type-checking is enough (`cargo check`: libFuzzer
//! is not linked), in a target directory of its own.

use rstap_tests::workspace;
use std::process::Command;

#[test]
fn every_fuzz_target_type_checks() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args(["check", "--locked", "--bins", "--manifest-path"])
        .arg(workspace().join("fuzz/Cargo.toml"))
        .arg("--target-dir")
        .arg(workspace().join("target/fuzz-check"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo: {e}"));
    assert!(
        out.status.success(),
        "the fuzz targets do not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
