//! rstap-compiler: a parsed script in, a loadable artifact out (AST → HIR → MIR →
//! BPF object or tracefs events, plus the manifest the runtime needs).
//!
//! This crate is pure: it never makes a syscall and never depends on aya, libc or
//! nix; kernel facts reach it through the [`kernel::KernelInfo`] trait. Today it
//! holds the kernel-facts interface (tracepoint layouts, BTF types, kallsyms, user
//! ELF binaries), elaboration into a typed HIR (`check`, `-p2`) and probe-point
//! listing (`-l`/`-L`); the backends come next.

pub mod backend;
pub mod btf;
pub mod builtins;
pub mod check;
pub mod ctype;
pub mod dump;
pub mod dwarf;
pub mod elf;
pub mod hir;
pub mod kallsyms;
pub mod kernel;
pub mod listing;
pub mod mir;
pub mod tracepoint;

pub use rstap_grammar as grammar;
pub use rstap_stdlib as stdlib;
