//! Links `rstap` as a position-dependent executable. As a PIE it carried
//! 17,500 relative relocations that the dynamic loader applied at every
//! start, dirtying 250 KB of pages: a tenth of a tiny script's compile and
//! half a MiB of resident memory. The code stays position-independent;
//! only the executable's own load address is fixed.
//!
//! Also links GCC's unwinder statically. Rust asks for `-lgcc_s`; a linker
//! script of that name found first points the linker at `libgcc_eh.a`
//! instead, so the binary needs no shared library beyond libc, and the
//! dynamic loader neither maps libgcc_s nor runs its constructor, which
//! queries the CPU with `cpuid` (a trap to the hypervisor in a VM): 0.1 ms
//! of every run here.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-link-arg-bins=-no-pie");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = out.join("static-unwinder");
    std::fs::create_dir_all(&dir).expect("OUT_DIR is writable");
    std::fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n").expect("OUT_DIR is writable");
    println!("cargo::rustc-link-search=native={}", dir.display());
    println!("cargo::rerun-if-changed=build.rs");
}
