//! Embeds every `tapset/*.stp` file: adding a tapset needs no code change.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let dir = Path::new("tapset");
    println!("cargo::rerun-if-changed=tapset");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".stp") || n.ends_with(".stpm"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::from("pub static TAPSETS: &[(&str, &str)] = &[\n");
    for n in &names {
        let _ = writeln!(
            out,
            "    (\"{n}\", include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/tapset/{n}\"))),"
        );
    }
    out.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("tapsets.rs");
    std::fs::write(dest, out).unwrap_or_else(|e| panic!("cannot write the tapset index: {e}"));
}
