//! The compile driver and code cache: a body is compiled the first time the
//! engine runs it, and its code (or the reason there is none) kept for every
//! later run. One cranelift JIT module per engine holds the machine code; it
//! lives as long as the engine, so code never outlives it.

#![expect(
    unsafe_code,
    reason = "turning a finished function's address into a callable pointer"
)]

use super::abi::{self, Code, EntryFn};
use super::codegen::{self, Helpers};
use super::{CompiledBody, Entry, Fallback};
use crate::engine::Engine;
use cranelift_codegen::ir::{self, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};
use rstap_compiler::hir::PointKind;
use rstap_compiler::mir::Body;
use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;
use std::time::Instant;

/// The JIT state of one engine.
#[derive(Default)]
pub(super) struct Jit<'p> {
    /// Created on the first compile; `Err`: this host cannot have one.
    module: Option<Result<Backend, String>>,
    cache: HashMap<Entry, Option<Rc<Code<'p>>>>,
    /// Runs of each loop-free body not compiled yet.
    runs: HashMap<Entry, u32>,
    fctx: FunctionBuilderContext,
}

impl std::fmt::Debug for Jit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jit")
            .field("bodies", &self.cache.len())
            .finish_non_exhaustive()
    }
}

/// The JIT module and the helpers declared in it.
struct Backend {
    module: JITModule,
    exec: FuncId,
    iter_next: FuncId,
    catch: FuncId,
    max_action: FuncId,
}

/// How many times a loop-free body is interpreted before it is compiled:
/// `RSTAP_JIT_AFTER`, else 1. A body that runs once (a begin or end probe)
/// gains nothing from compiling: it cost `begin { exit() }` a millisecond
/// and 2 MiB of memory, more than the rest of the run.
fn interpreted_runs() -> u32 {
    jit_after().unwrap_or(1)
}

/// `RSTAP_JIT_AFTER`, when set.
fn jit_after() -> Option<u32> {
    static AFTER: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *AFTER.get_or_init(|| {
        std::env::var("RSTAP_JIT_AFTER")
            .ok()
            .and_then(|v| v.parse().ok())
    })
}

/// An end or error probe runs once, as the run ends: even with a loop (a
/// report walking its arrays) it costs less interpreted than the JIT's
/// setup, which raised the peak memory of a run that prints a keyed array
/// from 7.3 to 8.8 MB. With `RSTAP_JIT_AFTER` set it compiles like any
/// other body.
fn runs_at_the_end(engine: &Engine<'_>, entry: Entry) -> bool {
    jit_after().is_none()
        && matches!(entry, Entry::Probe(i)
            if matches!(engine.prog.probes[i].kind, PointKind::End(_) | PointKind::Error(_)))
}

/// The compiled code for `entry` (`body`), compiling it on its first run
/// when it has a loop, else once it has run [`interpreted_runs`] times;
/// `None`: the interpreter runs it (always for an end or error probe, see
/// [`runs_at_the_end`]).
pub(super) fn code<'p>(
    engine: &mut Engine<'p>,
    entry: Entry,
    body: &'p Body,
) -> Option<Rc<Code<'p>>> {
    if let Some(code) = engine.jit.jit.cache.get(&entry) {
        return code.clone();
    }
    if runs_at_the_end(engine, entry) {
        return None;
    }
    if !body.may_loop() {
        let runs = engine.jit.jit.runs.entry(entry).or_insert(0);
        if *runs < interpreted_runs() {
            *runs += 1;
            return None;
        }
    }
    let name = match entry {
        Entry::Probe(i) => format!("probe {}", engine.prog.probes[i].name),
        Entry::Function(f) => format!("function {}", engine.prog.functions[f.index()].name),
    };
    engine.jit.jit.setup();
    let started = Instant::now();
    let result = engine.jit.jit.compile(body);
    let time = started.elapsed();
    let code = match result {
        Ok((code, built)) => {
            log(format_args!(
                "jit\t{name}\t{}us\t{} native\t{} helper",
                time.as_micros(),
                built.native,
                built.helpers
            ));
            engine.jit.stats.compiled.push(CompiledBody {
                name,
                time,
                native: built.native,
                helpers: built.helpers,
            });
            Some(Rc::new(code))
        }
        Err(reason) => {
            log(format_args!("interp\t{name}\t{reason}"));
            engine.jit.stats.fallbacks.push(Fallback { name, reason });
            None
        }
    };
    engine.jit.jit.cache.insert(entry, code.clone());
    code
}

/// How many instructions went each way in a compiled body.
struct Counts {
    native: usize,
    helpers: usize,
}

impl<'p> Jit<'p> {
    /// The JIT module, made once per engine (its cost is not any body's).
    fn setup(&mut self) {
        if self.module.is_none() {
            let started = Instant::now();
            let backend = Backend::new();
            log(format_args!("setup\t{}us", started.elapsed().as_micros()));
            self.module = Some(backend);
        }
    }

    fn compile(&mut self, body: &'p Body) -> Result<(Code<'p>, Counts), String> {
        let m = match &mut self.module {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(e.clone()),
            None => return Err("the JIT module was not set up".into()),
        };
        let module = &mut m.module;
        let mut sig = module.make_signature();
        codegen::signature(&mut sig, module.target_config().pointer_type());
        let id = module
            .declare_anonymous_function(&sig)
            .map_err(|e| format!("cranelift: {e}"))?;
        let mut ctx = module.make_context();
        ctx.func.signature = sig;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let mut declare = |f: FuncId| module.declare_func_in_func(f, &mut ctx.func);
        let helpers = Helpers {
            exec: declare(m.exec),
            iter_next: declare(m.iter_next),
            catch: declare(m.catch),
            max_action: declare(m.max_action),
        };
        let target = module.target_config();
        let module = &mut m.module;
        let fctx = &mut self.fctx;
        // A bug in code generation (a panic in the IR builder or cranelift)
        // costs this body its compiled code, not the session.
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let built = codegen::build(&mut ctx.func, fctx, helpers, body, target);
            module
                .define_function(id, &mut ctx)
                .map(|()| built)
                .map_err(|e| format!("cranelift: {e:?}"))
        }));
        let built = match built {
            Ok(Ok(built)) => built,
            Ok(Err(e)) => return Err(e),
            Err(panic) => {
                self.fctx = FunctionBuilderContext::new();
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                return Err(format!("code generation panicked: {why}"));
            }
        };
        module.clear_context(&mut ctx);
        module
            .finalize_definitions()
            .map_err(|e| format!("cranelift: {e}"))?;
        let address = module.get_finalized_function(id);
        // SAFETY: `id` was defined just now with the signature `EntryFn` has
        // (`codegen::signature`), and the module keeps its code while the
        // engine lives.
        let entry = unsafe { std::mem::transmute::<*const u8, EntryFn>(address) };
        let counts = Counts {
            native: built.native,
            helpers: built.helpers,
        };
        Ok((
            Code {
                entry,
                body,
                sites: built.sites,
            },
            counts,
        ))
    }
}

impl Backend {
    fn new() -> Result<Backend, String> {
        let mut flags = settings::builder();
        let set = |flags: &mut settings::Builder, k: &str, v: &str| {
            flags
                .set(k, v)
                .map_err(|e| format!("cranelift setting {k}: {e}"))
        };
        set(&mut flags, "opt_level", "speed")?;
        set(&mut flags, "use_colocated_libcalls", "false")?;
        set(&mut flags, "is_pic", "false")?;
        let verify = if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        };
        set(&mut flags, "enable_verifier", verify)?;
        let isa = cranelift_native::builder()
            .map_err(|e| format!("no code generator for this host: {e}"))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| format!("cranelift: {e}"))?;
        let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
        builder.symbol("rstap_jit_exec", abi::rstap_jit_exec as *const u8);
        builder.symbol("rstap_jit_iter_next", abi::rstap_jit_iter_next as *const u8);
        builder.symbol("rstap_jit_catch", abi::rstap_jit_catch as *const u8);
        builder.symbol(
            "rstap_jit_max_action",
            abi::rstap_jit_max_action as *const u8,
        );
        let mut module = JITModule::new(builder);
        let ptr = module.target_config().pointer_type();
        let mut import = |name: &str, params: &[ir::Type], ret: bool| {
            let mut sig = module.make_signature();
            sig.params
                .extend(params.iter().map(|&t| ir::AbiParam::new(t)));
            if ret {
                sig.returns.push(ir::AbiParam::new(ir::types::I64));
            }
            module
                .declare_function(name, Linkage::Import, &sig)
                .map_err(|e| format!("cranelift: {e}"))
        };
        let i64 = ir::types::I64;
        let exec = import("rstap_jit_exec", &[ptr, i64], true)?;
        let iter_next = import("rstap_jit_iter_next", &[ptr, i64], true)?;
        let catch = import("rstap_jit_catch", &[ptr, i64], true)?;
        let max_action = import("rstap_jit_max_action", &[ptr], false)?;
        Ok(Backend {
            module,
            exec,
            iter_next,
            catch,
            max_action,
        })
    }
}

/// One line appended to `RSTAP_JIT_LOG`, when set.
fn log(line: std::fmt::Arguments<'_>) {
    let Some(path) = std::env::var_os("RSTAP_JIT_LOG") else {
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}
