//! What a tool costs on disk: its binary stripped of symbols, and the shared
//! libraries it loads beyond the C library and the dynamic loader (every
//! Linux program has those two).

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Debug)]
pub struct Footprint {
    /// Bytes of a stripped copy of the binary.
    pub stripped_bytes: u64,
    /// Shared libraries beyond libc, ld-linux and the vDSO: name and bytes.
    pub extra_libs: Vec<(String, u64)>,
}

impl Footprint {
    pub fn libs_bytes(&self) -> u64 {
        self.extra_libs.iter().map(|(_, b)| b).sum()
    }
}

/// Strips a copy of `binary` in `scratch` and lists its libraries with `ldd`.
pub fn measure(binary: &Path, scratch: &Path) -> Result<Footprint, String> {
    let copy = scratch.join("stripped");
    std::fs::copy(binary, &copy).map_err(|e| format!("cannot copy {}: {e}", binary.display()))?;
    let stripped = Command::new("strip")
        .arg(&copy)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        return Err("`strip` failed or is not installed".into());
    }
    let stripped_bytes = std::fs::metadata(&copy).map_err(|e| e.to_string())?.len();
    let _ = std::fs::remove_file(&copy);
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("cannot run ldd: {e}"))?;
    let extra_libs = parse_ldd(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter(|(name, _)| !is_base_lib(name))
        .map(|(name, path)| {
            let bytes = path
                .and_then(|p| std::fs::metadata(p).ok())
                .map_or(0, |m| m.len());
            (name, bytes)
        })
        .collect();
    Ok(Footprint {
        stripped_bytes,
        extra_libs,
    })
}

/// `(soname, resolved path)` for each line of `ldd` output.
fn parse_ldd(text: &str) -> Vec<(String, Option<PathBuf>)> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (name, rest) = match l.split_once(" => ") {
                Some((n, r)) => (n.trim(), r),
                None => (l.split_whitespace().next()?, l),
            };
            let path = rest
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/'))
                .map(PathBuf::from);
            Some((name.rsplit('/').next().unwrap_or(name).to_string(), path))
        })
        .collect()
}

fn is_base_lib(name: &str) -> bool {
    name.starts_with("libc.so") || name.starts_with("ld-linux") || name.starts_with("linux-vdso")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines_give_sonames_and_paths_without_the_base_libraries() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        let extra: Vec<String> = parse_ldd(text)
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !is_base_lib(n))
            .collect();
        assert_eq!(extra, ["libgcc_s.so.1"], "only libgcc_s is beyond the base");
    }
}
