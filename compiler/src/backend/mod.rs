//! Backends: MIR in, something the runtime loads out.

pub mod bpf;
pub mod tracefs;
