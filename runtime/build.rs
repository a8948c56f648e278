//! Links `rstap` as a position-dependent, statically linked executable.
//!
//! As a PIE it carried 17,500 relative relocations that the dynamic loader
//! applied at every start, dirtying 250 KB of pages: a tenth of a tiny
//! script's compile and half a MiB of resident memory. The code stays
//! position-independent; only the executable's own load address is fixed.
//!
//! Static: with glibc's archives, no dynamic loader runs at all (mapping and
//! relocating libc, resolving its symbols): a one-probe compile takes 1.27
//! instead of 1.65 ms here, and the binary needs no shared library. Rust asks
//! for `-lgcc_s`, `-lc` and `-lm`; linker scripts of those names, found first,
//! point the linker at `libgcc_eh.a`, `libc.a` and `libm.a` instead. Where
//! the C compiler knows no `libc.a`, the binary links to libc dynamically as
//! before (the unwinder still static). Identical functions are folded
//! (`--icf=all`), which keeps the static binary under 8 MB stripped.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-link-arg-bins=-no-pie");
    println!("cargo::rustc-link-arg-bins=-Wl,--icf=all");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Each directory is made afresh: a linker script left in one by an
    // earlier build would still be found.
    let fresh = |name: &str| {
        let dir = out.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("OUT_DIR is writable");
        dir
    };
    let dir = fresh("static-unwinder");
    std::fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n").expect("OUT_DIR is writable");
    println!("cargo::rustc-link-search=native={}", dir.display());
    // For the binary only: a search path from here would reach every
    // executable that links this library, and those are not linked static.
    if let (Some(libc), Some(libm), Some(libgcc), Some(eh)) = (
        archive("libc.a"),
        archive("libm.a"),
        archive("libgcc.a"),
        archive("libgcc_eh.a"),
    ) {
        let libs = fresh("static-libc");
        let group = format!("GROUP({libc} {eh} {libgcc})\n");
        std::fs::write(libs.join("libc.so"), group).expect("OUT_DIR is writable");
        std::fs::write(libs.join("libm.so"), format!("INPUT({libm})\n"))
            .expect("OUT_DIR is writable");
        println!("cargo::rustc-link-arg-bins=-L{}", libs.display());
        println!("cargo::rustc-link-arg-bins=-static");
    }
    println!("cargo::rerun-if-changed=build.rs");
}

/// Where the C compiler finds a static archive, if it has one.
fn archive(name: &str) -> Option<String> {
    let out = std::process::Command::new("cc")
        .arg(format!("-print-file-name={name}"))
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
    // Not found, cc echoes the bare name back.
    std::path::Path::new(&path)
        .is_absolute()
        .then(|| std::fs::canonicalize(&path).ok())
        .flatten()
        .map(|p| p.display().to_string())
}
