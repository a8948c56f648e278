//! `-I DIR`: the user's own tapset directories, read before the built-in
//! library. Every `*.stp` under a directory (subdirectories too, as stap
//! searches them) is a tapset script, every `*.stpm` a macro file.

use std::path::{Path, PathBuf};

/// The files found, each as (path, text).
#[derive(Debug, Default)]
pub struct Tapsets {
    pub scripts: Vec<(String, String)>,
    pub macros: Vec<(String, String)>,
}

/// Reads every tapset under `dirs`, in the order given, each directory's
/// files by name.
pub fn read(dirs: &[String]) -> Result<Tapsets, String> {
    let mut found = Tapsets::default();
    for dir in dirs {
        let mut paths = Vec::new();
        walk(Path::new(dir), &mut paths)
            .map_err(|e| format!("-I {dir}: cannot read the tapset directory: {e}"))?;
        paths.sort();
        for path in paths {
            let list = match path.extension().and_then(|e| e.to_str()) {
                Some("stp") => &mut found.scripts,
                Some("stpm") => &mut found.macros,
                _ => continue,
            };
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read tapset '{}': {e}", path.display()))?;
            let text = String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            list.push((path.display().to_string(), text));
        }
    }
    Ok(found)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
