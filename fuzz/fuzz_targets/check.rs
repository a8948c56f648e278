//! Fuzz target `check`: arbitrary bytes in as a script, through every pass that
//! needs no kernel: parse, elaboration against the whole embedded tapset library
//! (`-p2`), lowering to MIR (`-p3`), BPF code generation and the ELF object
//! (`-p4 -o`), and the tracefs runtime's event plan. It asserts that nothing
//! panics; a rejected script has its diagnostics rendered (which also catches
//! spans that are out of range or split a character).
//!
//! The library is parsed once per process ([`OnceLock`]); each input gets a copy
//! of its source map to add the script to. Kernel facts come from the compiler's
//! fixture kernel (`compiler/tests/fixtures/kernel/`), embedded at build time and
//! answered from memory: the target never reads `/sys`, `/proc` or any file an
//! input names (`process("PATH")` probes find no binary).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod worker;
use rstap_compiler::backend::bpf::codegen::Target;
use rstap_compiler::backend::tracefs;
use rstap_compiler::check::{self, Library};
use rstap_compiler::ctype::TypeGraph;
use rstap_compiler::elf::Binary;
use rstap_compiler::kernel::{Features, KernelError, KernelInfo, KernelSymbol, TracepointId};
use rstap_compiler::tracepoint::{TracepointFormat, parse_format};
use rstap_compiler::{dump, kallsyms, mir};
use rstap_grammar::{Facts, FileId, ParseOptions, SourceMap, parse};
use rstap_runtime::probes::build_for;
use std::sync::{Arc, OnceLock};

/// Only `fixture_types` is used: the module's `FixtureKernel` reads its
/// fixtures from disk on every call, which [`MemKernel`] does once.
#[expect(
    dead_code,
    reason = "the fixture kernel of the compiler's tests is not used here"
)]
#[path = "../../compiler/tests/support/mod.rs"]
mod support;

#[path = "../../compiler/tests/support/limits.rs"]
mod limits;

const FIXTURES: &str = "../../compiler/tests/fixtures/kernel";

/// The fixture kernel's tracepoint formats, by `system:name`.
const FORMATS: &[(&str, &str)] = &[
    (
        "sched:sched_process_exec",
        include_str!("../../compiler/tests/fixtures/kernel/events/sched/sched_process_exec/format"),
    ),
    (
        "sched:sched_switch",
        include_str!("../../compiler/tests/fixtures/kernel/events/sched/sched_switch/format"),
    ),
    (
        "skb:kfree_skb",
        include_str!("../../compiler/tests/fixtures/kernel/events/skb/kfree_skb/format"),
    ),
    (
        "syscalls:sys_enter_open",
        include_str!("../../compiler/tests/fixtures/kernel/events/syscalls/sys_enter_open/format"),
    ),
    (
        "syscalls:sys_enter_openat",
        include_str!(
            "../../compiler/tests/fixtures/kernel/events/syscalls/sys_enter_openat/format"
        ),
    ),
    (
        "syscalls:sys_exit_openat",
        include_str!("../../compiler/tests/fixtures/kernel/events/syscalls/sys_exit_openat/format"),
    ),
];

/// The compiler tests' fixture kernel, held in memory.
struct MemKernel {
    tracepoints: Vec<(TracepointId, TracepointFormat)>,
    functions: Vec<KernelSymbol>,
    types: TypeGraph,
}

impl MemKernel {
    fn new() -> MemKernel {
        let tracepoints = FORMATS
            .iter()
            .map(|(id, text)| {
                let (system, name) = id.split_once(':').unwrap_or_default();
                let format = parse_format(text).unwrap_or_else(|e| {
                    panic!("{FIXTURES}: the format of {id} does not parse: {e}")
                });
                let id = TracepointId {
                    system: system.into(),
                    name: name.into(),
                };
                (id, format)
            })
            .collect();
        MemKernel {
            tracepoints,
            functions: kallsyms::parse(
                include_str!("../../compiler/tests/fixtures/kernel/kallsyms"),
                "",
            ),
            types: support::fixture_types(),
        }
    }
}

impl KernelInfo for MemKernel {
    fn tracepoints(&self) -> Result<Vec<TracepointId>, KernelError> {
        Ok(self.tracepoints.iter().map(|(id, _)| id.clone()).collect())
    }

    fn tracepoint_format(&self, tp: &TracepointId) -> Result<TracepointFormat, KernelError> {
        self.tracepoints
            .iter()
            .find(|(id, _)| id == tp)
            .map(|(_, f)| f.clone())
            .ok_or_else(|| KernelError(format!("no tracepoint {tp}")))
    }

    fn kernel_functions(&self) -> Result<Vec<KernelSymbol>, KernelError> {
        Ok(self.functions.clone())
    }

    fn kernel_types(&self) -> Result<&TypeGraph, KernelError> {
        Ok(&self.types)
    }

    fn features(&self) -> Features {
        Features::ALL
    }

    fn user_binary(&self, path: &str) -> Result<Arc<Binary>, KernelError> {
        Err(KernelError(format!(
            "the fuzz kernel reads no files: {path}"
        )))
    }
}

/// Everything an input is checked against, made once per process.
struct World {
    files: SourceMap,
    opts: ParseOptions,
    library: Library,
    kernel: MemKernel,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut files = SourceMap::new();
        let facts = Facts::for_release("6.18.44-fc-v657")
            .with_config_text("CONFIG_SMP=y\nCONFIG_64BIT=y\nCONFIG_HZ=250\n");
        let macro_library: Vec<FileId> = rstap_stdlib::macros()
            .map(|(n, t)| files.add(n, t))
            .collect();
        let kernel = MemKernel::new();
        let mut library = Library::load(&mut files, &facts, &macro_library)
            .unwrap_or_else(|d| panic!("the tapset library does not parse:\n{}", d.render(&files)));
        library
            .add_syscalls(&mut files, &facts, &macro_library, &kernel)
            .unwrap_or_else(|d| panic!("the syscall tapset does not parse:\n{}", d.render(&files)));
        let opts = ParseOptions {
            args: vec!["1".into(), "x".into()],
            facts,
            privileged: false,
            macro_library,
        };
        World {
            files,
            opts,
            library,
            kernel,
        }
    })
}

/// stap's limits, as the compiler's codegen tests use them, with fentry.
const TARGET: Target = Target {
    fentry: true,
    ..limits::STAP_LIMITS
};

fuzz_target!(|data: &[u8]| {
    // On the stack the binary's passes run on.
    let data = data.to_vec();
    worker::run(move || one(&data));
});

/// Every pass over one input.
fn one(data: &[u8]) {
    let w = world();
    let mut files = w.files.clone();
    let id = files.add("fuzz.stp", String::from_utf8_lossy(data));
    let mut ast = match parse(&files, id, &w.opts) {
        Ok(ast) => ast,
        Err(d) => {
            let _ = d.render(&files);
            return;
        }
    };
    let implicit = check::declare_implicit_arrays(&mut ast, &w.library);
    let _ = rstap_grammar::Diagnostics(implicit).render(&files);
    let checked = match check::check(&ast, &w.library, &w.kernel, &check::Options::default()) {
        Ok(c) => c,
        Err(d) => {
            let _ = d.render(&files);
            return;
        }
    };
    let _ = checked.warnings.render(&files);
    let _ = dump::elaboration(&checked.program);
    let mir = mir::lower(&checked.program);
    let _ = mir.to_string();
    let _ = tracefs::plan(&mir, &w.kernel);
    // As `-p4 -o` does: the runtime's own assembly of the object.
    if let Ok(built) = build_for(&mir, &w.kernel, TARGET) {
        let _ = built.elf();
    }
}
