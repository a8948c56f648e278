//! The BPF backend: kernel-context handlers of the MIR as BPF programs in an ELF
//! relocatable object that aya loads.

pub mod btf_out;
pub mod codegen;
pub mod insn;
pub mod layout;
pub mod object;
