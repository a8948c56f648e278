//! The release `rstap` binary under test: built by cargo (a no-op when it is up
//! to date, so a stale binary is never measured) and found in the same target
//! directory as the benchmark binary.

use std::path::PathBuf;
use std::process::Command;

/// `cargo build --release -p rstap-runtime --bin rstap`, then its path.
pub fn build_release() -> Result<PathBuf, String> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the benches crate has no parent directory")?
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "-p",
            "rstap-runtime",
            "--bin",
            "rstap",
        ])
        .status()
        .map_err(|e| format!("cannot run cargo to build rstap: {e}"))?;
    if !status.success() {
        return Err("building rstap failed".into());
    }
    // The benchmark itself may be a debug build: target/{debug,release}/NAME.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let target = exe
        .parent()
        .and_then(|profile| profile.parent())
        .ok_or("the benchmark binary is not in a cargo target directory")?;
    let rstap = target.join("release").join("rstap");
    if rstap.is_file() {
        Ok(rstap)
    } else {
        Err(format!(
            "cargo built rstap but {} is missing",
            rstap.display()
        ))
    }
}

/// The line of rstap's stderr that says why it refused or failed: the first
/// error (a diagnostic's headline, `rstap: ...` or stap's `ERROR: ...`), not a
/// warning printed before it.
pub fn error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find(|l| l.starts_with("error") || l.starts_with("rstap:") || l.starts_with("ERROR"))
        .or(lines.first())
        .map_or_else(|| "no message".to_string(), |l| l.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_before_the_error_is_skipped() {
        let stderr = "warning[E0210]: probe 'x' has been elided\n  ┌─ <input>:1:7\n\
                      error[E0301]: type mismatch\n";
        assert_eq!(
            error_line(stderr),
            "error[E0301]: type mismatch",
            "the error's headline"
        );
    }
}
