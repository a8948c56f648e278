//! The SDT test program, built on demand (only the ELF and listing tests use it;
//! they include this file by path so the other test crates do not carry it).

use std::path::PathBuf;
use std::process::Command;

/// Builds `fixtures/elf/usdt.c` (two functions, two SDT probes) with the
/// system's cc and `flags` into a temporary directory. `None`, after saying why,
/// where there is no cc or no <sys/sdt.h>, unless CI requires the test to run
/// (RSTAP_REQUIRE_KERNEL_TESTS=1).
pub fn usdt_program(name: &str, flags: &[&str]) -> Option<PathBuf> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/elf/usdt.c");
    let dir = std::env::temp_dir().join(format!("rstap-elf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    let out = dir.join(name);
    let built = Command::new("cc")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output();
    match built {
        Ok(o) if o.status.success() => Some(out),
        other => {
            let why = format!(
                "cannot build the SDT test program (needs cc and systemtap-sdt-dev): {other:?}"
            );
            if std::env::var("RSTAP_REQUIRE_KERNEL_TESTS").is_ok_and(|v| v == "1") {
                panic!("required test cannot run: {why}");
            }
            println!("skipped: {why}");
            None
        }
    }
}
