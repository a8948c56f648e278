//! The JIT tier of the user-space engine: MIR bodies compiled by cranelift to
//! native code, which the engine runs instead of interpreting them.
//!
//! The interpreter stays the reference, and the JIT reuses it rather than
//! restating it. Long registers live in cranelift variables, and the
//! instructions on longs (constants, moves, arithmetic with its
//! `division by 0` check, comparisons), control flow, MAXACTION counting and
//! the routing of faults to a `try`'s catch block are native code. Every other
//! instruction — strings, globals, maps, aggregates, printing, built-ins,
//! regular expressions, calls, `foreach`, and the event-context instructions
//! (`Context`, `Load`) — is handed back to the interpreter's own
//! `Engine::exec` through one `extern "C"` helper (`abi.rs`), with the long
//! registers it reads stored where the helper finds them. So the two engines
//! cannot disagree on what an instruction means, and an instruction the
//! interpreter learns (the tracefs runtime's event-context reads) runs under
//! the JIT unchanged.
//!
//! A body with a loop is compiled on its first run, a loop-free one on its
//! second (`driver.rs`): begin and end probes, which run once, are
//! interpreted, and end and error probes even when they loop. A body
//! cranelift cannot compile runs in the interpreter, and
//! [`Engine::jit_stats`] says which bodies ran compiled and which fell back.
//! `RSTAP_ENGINE=interp|jit` chooses the engine at run time;
//! `RSTAP_JIT_AFTER=N` how many runs a loop-free body is interpreted first
//! (0: compile every body at once, as the differential tests do);
//! `RSTAP_JIT_LOG=FILE` appends one line per body as it is compiled or
//! refused (tests and benchmarks read it).

#[cfg(feature = "jit")]
mod abi;
#[cfg(feature = "jit")]
mod codegen;
#[cfg(feature = "jit")]
mod driver;

use super::interp::Flow;
use super::value::Value;
use super::{Engine, Fault};
use rstap_compiler::mir::{Body, FuncId, Reg};
use std::time::Duration;

/// Which engine runs user-context bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// The MIR interpreter, the reference.
    Interp,
    /// Bodies compiled to native code (the interpreter where they cannot be).
    Jit,
}

impl EngineKind {
    /// The JIT when this build has it.
    pub const DEFAULT: EngineKind = if cfg!(feature = "jit") {
        EngineKind::Jit
    } else {
        EngineKind::Interp
    };

    /// `interp` or `jit`.
    pub fn parse(name: &str) -> Option<EngineKind> {
        match name {
            "interp" => Some(EngineKind::Interp),
            "jit" => Some(EngineKind::Jit),
            _ => None,
        }
    }

    /// `RSTAP_ENGINE`, else the default. A build without the `jit` feature
    /// interprets whatever it is asked.
    pub fn from_env() -> EngineKind {
        std::env::var("RSTAP_ENGINE")
            .ok()
            .and_then(|v| EngineKind::parse(&v))
            .unwrap_or(EngineKind::DEFAULT)
    }
}

/// A body the engine runs: a probe handler (by index) or a script function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entry {
    Probe(usize),
    Function(FuncId),
}

/// What the JIT tier did with each body it was asked to run, in order.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub compiled: Vec<CompiledBody>,
    pub fallbacks: Vec<Fallback>,
}

/// A body that runs as native code.
#[derive(Clone, Debug)]
pub struct CompiledBody {
    /// `probe NAME` or `function NAME`.
    pub name: String,
    /// MIR to cranelift IR to finished machine code.
    pub time: Duration,
    /// Instructions compiled inline.
    pub native: usize,
    /// Instructions handed to the interpreter through a helper call.
    pub helpers: usize,
}

/// A body the interpreter runs because the JIT could not compile it.
#[derive(Clone, Debug)]
pub struct Fallback {
    pub name: String,
    pub reason: String,
}

/// The engine's choice and, with the `jit` feature, its compiled code.
#[derive(Debug)]
pub struct Tier<'p> {
    kind: EngineKind,
    stats: Stats,
    #[cfg(feature = "jit")]
    jit: driver::Jit<'p>,
    #[cfg(not(feature = "jit"))]
    _program: std::marker::PhantomData<&'p ()>,
}

impl Tier<'_> {
    pub fn new(kind: EngineKind) -> Self {
        Tier {
            kind,
            stats: Stats::default(),
            #[cfg(feature = "jit")]
            jit: driver::Jit::default(),
            #[cfg(not(feature = "jit"))]
            _program: std::marker::PhantomData,
        }
    }
}

impl<'p> Engine<'p> {
    /// Chooses the engine for the bodies run from now on.
    pub fn set_engine(&mut self, kind: EngineKind) {
        self.jit.kind = kind;
    }

    pub fn engine_kind(&self) -> EngineKind {
        self.jit.kind
    }

    /// Which bodies the JIT compiled and which it left to the interpreter.
    pub fn jit_stats(&self) -> &Stats {
        &self.jit.stats
    }

    /// Runs a probe handler's or function's body: its compiled code under the
    /// JIT when it has some, else the interpreter.
    pub(super) fn enter(
        &mut self,
        entry: Entry,
        body: &'p Body,
        params: &[Reg],
        args: Vec<Value>,
    ) -> Result<Flow, Fault> {
        #[cfg(feature = "jit")]
        if self.jit.kind == EngineKind::Jit
            && let Some(code) = driver::code(self, entry, body)
        {
            return abi::run(self, &code, params, args);
        }
        #[cfg(not(feature = "jit"))]
        let _ = entry;
        self.run_body(body, params, args)
    }
}

#[cfg(all(test, feature = "jit"))]
mod tests;
