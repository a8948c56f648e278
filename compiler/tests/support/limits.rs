//! The code generation target the compiler's codegen tests and the `check`
//! fuzz target compile for (each includes this file by path).

use rstap_compiler::backend::bpf::codegen::Target;

/// stap's limits (MAXMAPENTRIES 2048, MAXACTION 10000, MAXNESTING 10),
/// kprobes rather than fentry.
pub const STAP_LIMITS: Target = Target {
    max_entries: 2048,
    max_action: 10_000,
    max_nesting: 10,
    wall_offset_ns: 0,
    max_string: 0,
    possible_cpus: 2,
    fentry: false,
    tracer_pid: 4242,
};
