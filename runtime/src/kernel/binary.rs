//! User binaries: resolve a path as a shell does, read it, parse its ELF facts.

use rstap_compiler::elf::{self, Binary};
use rstap_compiler::kernel::KernelError;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// With a `/`, `path` is used as is; otherwise the first executable regular
/// file of that name in `$PATH`. The result is canonical (symlinks resolved),
/// as stap prints `process("/usr/bin/true")` for `/bin/true`.
pub fn resolve(path: &str) -> Result<PathBuf, KernelError> {
    if path.is_empty() {
        return Err(KernelError("an empty process path names no binary".into()));
    }
    let found = if path.contains('/') {
        PathBuf::from(path)
    } else {
        let search = std::env::var("PATH").unwrap_or_default();
        let mut tried: Vec<PathBuf> = Vec::new();
        for dir in search.split(':') {
            let candidate = Path::new(if dir.is_empty() { "." } else { dir }).join(path);
            if !tried.contains(&candidate) {
                tried.push(candidate);
            }
        }
        match tried.iter().find(|p| is_executable(p)) {
            Some(p) => p.clone(),
            None => {
                let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
                return Err(KernelError(format!(
                    "no executable `{path}` in $PATH (tried {})",
                    if list.is_empty() {
                        "nothing: $PATH is empty".to_string()
                    } else {
                        list.join(", ")
                    }
                )));
            }
        }
    };
    std::fs::canonicalize(&found)
        .map_err(|e| KernelError(format!("cannot open {}: {e}", found.display())))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Reads and parses the binary at the already resolved `path`.
pub fn load(path: &Path) -> Result<Binary, KernelError> {
    let bytes = std::fs::read(path)
        .map_err(|e| KernelError(format!("cannot read {}: {e}", path.display())))?;
    let shown = path.display().to_string();
    elf::parse(&shown, &bytes).map_err(KernelError)
}
