//! rstap-compiler: a parsed script in, a loadable artifact out (AST → HIR → MIR →
//! BPF object or tracefs events, plus the manifest the runtime needs).
//!
//! This crate is pure: it never makes a syscall and never depends on aya, libc or
//! nix; kernel facts reach it through the [`kernel::KernelInfo`] trait. Today it
//! holds the kernel-facts interface, tracepoint layouts and probe-point listing
//! (`-l`/`-L`); elaboration and the backends come next.

pub mod btf;
pub mod ctype;
pub mod elf;
pub mod kallsyms;
pub mod kernel;
pub mod listing;
pub mod tracepoint;

pub use rstap_grammar as grammar;
pub use rstap_stdlib as stdlib;
