//! rstap-compiler: a parsed script in, a loadable artifact out (AST → HIR → MIR →
//! BPF object or tracefs events, plus the manifest the runtime needs).
//!
//! This crate is pure: it never makes a syscall and never depends on aya, libc or
//! nix; kernel facts reach it through a trait. Elaboration and the backends are
//! not written yet: today it only offers the front end and the embedded tapsets.

pub use rstap_grammar as grammar;
pub use rstap_stdlib as stdlib;
