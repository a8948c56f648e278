//! Embeds every `tapset/*.stp` file: adding a tapset needs no code change.

use std::fmt::Write;
use std::path::Path;

#[path = "src/defines.rs"]
mod defines;

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
    let mut out = String::from("pub static TAPSETS: &[Tapset] = &[\n");
    for n in &names {
        let text = std::fs::read_to_string(dir.join(n))
            .unwrap_or_else(|e| panic!("cannot read tapset/{n}: {e}"));
        let _ = writeln!(
            out,
            "    Tapset {{ name: \"{n}\", text: include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/tapset/{n}\")), defines: &{:?} }},",
            defines::defined(&text)
        );
    }
    out.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("tapsets.rs");
    std::fs::write(dest, out).unwrap_or_else(|e| panic!("cannot write the tapset index: {e}"));
}
