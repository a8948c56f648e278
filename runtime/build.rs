//! Links `rstap` as a position-dependent executable. As a PIE it carried
//! 17,500 relative relocations that the dynamic loader applied at every
//! start, dirtying 250 KB of pages: a tenth of a tiny script's compile and
//! half a MiB of resident memory. The code stays position-independent;
//! only the executable's own load address is fixed.

fn main() {
    println!("cargo::rustc-link-arg-bins=-no-pie");
}
