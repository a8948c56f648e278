//! The BPF backend: kernel-context handlers of the MIR as BPF programs, maps and
//! callbacks the runtime loads, and the ELF relocatable object `-p4 -o` writes
//! (in libbpf's layout, for bpftool and llvm-objdump).

pub mod btf_out;
pub mod codegen;
pub mod insn;
pub mod layout;
pub mod object;
