//! The boundary between compiled code and the engine: the one argument
//! compiled code receives ([`Ctx`]), the `extern "C"` helpers it calls, what
//! its return value means, and [`run`], which calls it.
//!
//! Compiled code keeps long registers in cranelift variables; before a helper
//! call it stores the long registers the instruction reads at
//! `ctx.longs[reg]`, and after it loads the long the instruction wrote from
//! there. String registers, iterators and everything else live in an
//! interpreter [`Frame`] that only the helpers touch. A helper never unwinds:
//! a runtime error is left in `ctx.fault` and reported by its return value.
//!
//! Kernel-context (tracefs) handlers need nothing more: their event-context
//! instructions are interpreter instructions like any other, reached through
//! [`rstap_jit_exec`].

#![expect(
    unsafe_code,
    reason = "calling generated machine code, and the helpers it calls back with raw pointers"
)]

use super::super::interp::{Flow, Frame, max_action_exceeded};
use super::super::value::Value;
use super::super::{Engine, Fault};
use rstap_compiler::mir::{Body, Inst, IterId, Reg, Ty};

/// The signature of a compiled body.
pub(super) type EntryFn = unsafe extern "C" fn(*mut Ctx<'_, '_>) -> i64;

/// Return values of a compiled body (other than these: `1 + reg`, a return
/// of that register's value).
pub(super) const RET_NONE: i64 = 0;
pub(super) const RET_FAULT: i64 = -1;
pub(super) const RET_NEXT: i64 = -2;

/// What compiled code and its helpers share while one body runs. Compiled code
/// reads the first three fields (their offsets are taken with `offset_of!`).
#[repr(C)]
pub(super) struct Ctx<'p, 'f> {
    /// The body's long registers, as passed to and from helpers.
    pub longs: *mut i64,
    /// The engine's count of executed statements.
    pub actions: *mut u64,
    pub max_action: u64,
    engine: *mut Engine<'p>,
    frame: *mut Frame<'f>,
    code: *const Code<'p>,
    /// The runtime error a helper met, until a catch takes it or the body ends.
    fault: Option<Fault>,
}

/// One compiled body and the instructions its helper calls refer to.
pub(super) struct Code<'p> {
    pub entry: EntryFn,
    pub body: &'p Body,
    pub sites: Vec<Site<'p>>,
}

impl std::fmt::Debug for Code<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Code")
            .field("entry", &(self.entry as *const u8))
            .field("sites", &self.sites.len())
            .finish()
    }
}

/// A helper call of compiled code: the instruction and the long registers
/// that cross with it.
#[derive(Debug)]
pub(super) struct Site<'p> {
    pub what: SiteKind<'p>,
    /// Read by the instruction: compiled code stores them before the call.
    pub long_in: Vec<Reg>,
    /// Written by the instruction: compiled code loads them after the call.
    pub long_out: Vec<Reg>,
}

#[derive(Debug)]
pub(super) enum SiteKind<'p> {
    Inst(&'p Inst),
    /// `Term::IterNext`.
    IterNext {
        iter: IterId,
        keys: &'p [Option<Reg>],
        value: Option<Reg>,
    },
}

/// Runs compiled `code` with `args` in its parameter registers.
pub(super) fn run<'p>(
    engine: &mut Engine<'p>,
    code: &Code<'p>,
    params: &[Reg],
    args: Vec<Value>,
) -> Result<Flow, Fault> {
    let body = code.body;
    let mut frame = Frame::new(body, params, args);
    let mut longs: Vec<i64> = frame.regs.iter().map(Value::long).collect();
    let engine: *mut Engine<'p> = engine;
    let mut ctx = Ctx {
        longs: longs.as_mut_ptr(),
        // SAFETY: `engine` comes from a live `&mut Engine` that is not used
        // again until the compiled code has returned.
        actions: unsafe { &raw mut (*engine).actions },
        max_action: unsafe { (*engine).limits.max_action },
        engine,
        frame: &raw mut frame,
        code,
        fault: None,
    };
    // SAFETY: `entry` was compiled for exactly this signature from `body`,
    // and every pointer in `ctx` outlives the call.
    let ret = unsafe { (code.entry)(&raw mut ctx) };
    match ret {
        RET_NONE => Ok(Flow::Return(None)),
        RET_NEXT => Ok(Flow::Next),
        RET_FAULT => Err(ctx
            .fault
            .take()
            .unwrap_or_else(|| Fault::new("the JIT lost a runtime error", None))),
        r => {
            let reg = usize::try_from(r - 1).unwrap_or(usize::MAX);
            let v = match body.regs.get(reg) {
                Some(Ty::Long) => Value::Long(longs[reg]),
                Some(Ty::Str) => std::mem::replace(&mut frame.regs[reg], Value::Long(0)),
                None => return Err(Fault::new("the JIT returned no register", None)),
            };
            Ok(Flow::Return(Some(v)))
        }
    }
}

/// The parts of `ctx` a helper works on.
///
/// # Safety
/// `ctx` is the pointer [`run`] passed to the compiled code now calling.
unsafe fn parts<'a, 'p, 'f>(
    ctx: *mut Ctx<'p, 'f>,
) -> (
    &'a mut Ctx<'p, 'f>,
    &'a mut Engine<'p>,
    &'a mut Frame<'f>,
    &'a Code<'p>,
) {
    // SAFETY: the caller's promise; `run` keeps the engine, frame and code
    // alive and unaliased while compiled code runs, and compiled code does not
    // run while a helper does.
    unsafe {
        let (engine, frame, code) = ((*ctx).engine, (*ctx).frame, (*ctx).code);
        (&mut *ctx, &mut *engine, &mut *frame, &*code)
    }
}

fn load(ctx: &Ctx<'_, '_>, r: Reg) -> i64 {
    // SAFETY: `longs` has one slot for every register of the body.
    unsafe { ctx.longs.add(r.index()).read() }
}

fn store(ctx: &Ctx<'_, '_>, r: Reg, v: i64) {
    // SAFETY: as for `load`.
    unsafe { ctx.longs.add(r.index()).write(v) }
}

/// Runs instruction `site` in the interpreter. 0: done; 1: a runtime error,
/// left in `ctx.fault`.
pub(super) unsafe extern "C" fn rstap_jit_exec(ctx: *mut Ctx<'_, '_>, site: i64) -> i64 {
    // SAFETY: called only by compiled code, with its own `ctx`.
    let (ctx, engine, frame, code) = unsafe { parts(ctx) };
    let Some(site) = usize::try_from(site).ok().and_then(|i| code.sites.get(i)) else {
        ctx.fault = Some(Fault::new("the JIT called a missing instruction", None));
        return 1;
    };
    let SiteKind::Inst(inst) = site.what else {
        ctx.fault = Some(Fault::new(
            "the JIT called a terminator as an instruction",
            None,
        ));
        return 1;
    };
    for &r in &site.long_in {
        frame.regs[r.index()] = Value::Long(load(ctx, r));
    }
    match engine.exec(frame, inst) {
        Ok(()) => {
            for &r in &site.long_out {
                store(ctx, r, frame.regs[r.index()].long());
            }
            0
        }
        Err(fault) => {
            ctx.fault = Some(fault);
            1
        }
    }
}

/// `Term::IterNext` at `site`: 1 with the next entry in its registers, 0 when
/// the iteration is over.
pub(super) unsafe extern "C" fn rstap_jit_iter_next(ctx: *mut Ctx<'_, '_>, site: i64) -> i64 {
    // SAFETY: called only by compiled code, with its own `ctx`.
    let (ctx, _, frame, code) = unsafe { parts(ctx) };
    let site = usize::try_from(site).ok().and_then(|i| code.sites.get(i));
    let Some(Site {
        what: SiteKind::IterNext { iter, keys, value },
        long_out,
        ..
    }) = site
    else {
        return 0;
    };
    if !frame.iter_next(*iter, keys, *value) {
        return 0;
    }
    for &r in long_out {
        store(ctx, r, frame.regs[r.index()].long());
    }
    1
}

/// The runtime error in `ctx.fault` meets a `try`: 0 when it is caught (its
/// message in register `msg`, unless negative), 1 when no catch may see it.
pub(super) unsafe extern "C" fn rstap_jit_catch(ctx: *mut Ctx<'_, '_>, msg: i64) -> i64 {
    // SAFETY: called only by compiled code, with its own `ctx`.
    let (ctx, engine, frame, _) = unsafe { parts(ctx) };
    let Some(fault) = ctx.fault.take() else {
        return 0;
    };
    if fault.uncatchable {
        ctx.fault = Some(fault);
        return 1;
    }
    let msg = u32::try_from(msg).ok().map(Reg);
    engine.caught(frame, msg, &fault);
    0
}

/// A block took the statement count past MAXACTION.
pub(super) unsafe extern "C" fn rstap_jit_max_action(ctx: *mut Ctx<'_, '_>) {
    // SAFETY: called only by compiled code, with its own `ctx`.
    let (ctx, ..) = unsafe { parts(ctx) };
    ctx.fault = Some(max_action_exceeded());
}
