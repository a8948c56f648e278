//! The peer: SystemTap's own front end, `stap -p1 FILE`, timed as a whole process.
//!
//! `-p1` stops after parsing and prints the parse tree, so its wall time is process
//! start-up, tapset macro loading, lex, preprocess, parse and printing the tree (sent
//! to /dev/null). Its fixed start-up cost is measured on a one-line script so the
//! reader can tell it apart from the per-byte cost. Its warnings on stderr (missing
//! kernel symbol table) are expected and discarded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Why the peer was not measured.
#[derive(Debug)]
pub enum Skipped {
    /// `--stap-runs 0`.
    NotRequested,
    NotInstalled,
    /// stap ran but rejected the script: its stderr, so the generator can be fixed.
    Failed(String),
}

/// A temporary directory that is removed when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> std::io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("rstap-bench-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub fn stap_version() -> Option<String> {
    let out = Command::new("stap")
        .arg("-V")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(if out.stderr.is_empty() {
        &out.stdout
    } else {
        &out.stderr
    })
    .into_owned();
    text.lines().next().map(str::to_string)
}

/// Runs `stap -p1 script` once and returns the parse tree it prints; this also
/// warms the page cache and stap's tapset scan before timing.
pub fn p1_output(script: &Path) -> Result<String, Skipped> {
    let out = stap_p1(script, Stdio::piped())?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Times `stap -p1 script` `runs` times, its output discarded.
pub fn time_stap_p1(script: &Path, runs: usize) -> Result<Vec<Duration>, Skipped> {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            stap_p1(script, Stdio::null())?;
            Ok(start.elapsed())
        })
        .collect()
}

fn stap_p1(script: &Path, stdout: Stdio) -> Result<std::process::Output, Skipped> {
    let out = Command::new("stap")
        .arg("-p1")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Skipped::NotInstalled),
        Err(e) => Err(Skipped::Failed(format!("could not start stap: {e}"))),
        Ok(out) if !out.status.success() => Err(Skipped::Failed(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )),
        Ok(out) => Ok(out),
    }
}
