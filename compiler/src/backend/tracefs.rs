//! The tracefs backend: MIR in, ftrace event definitions out. Each
//! kernel-context probe becomes one event — a tracepoint enabled as it is, or
//! a dynamic uprobe/kprobe event whose fetch arguments capture at the event
//! what its handler reads (`$argN`, `$return`, the stack pointer of `@entry`
//! keys, and the strings `user_string($argN)` reads). The handler bodies stay
//! MIR: the runtime runs them in the user-space engine against the decoded
//! record. Probes whose handlers need something only kernel context can give
//! (kernel memory, the task struct, stacks) are refused here, at the script
//! line, so this runtime never prints a wrong answer.
//!
//! Pure: nothing here writes to tracefs; the runtime writes the definitions.

use crate::builtins::Builtin;
use crate::hir::{ContextValue, PointKind};
use crate::kernel::{KernelInfo, TracepointId};
use crate::mir::{Body, CmpOp, Context, FuncId, Inst, Program, Reg, Term};
use crate::tracepoint::{FieldKind, TracepointFormat};
use rstap_grammar::Span;
use std::collections::{HashMap, HashSet};

/// The argument registers of the x86-64 calling convention, as fetch
/// arguments name them.
const ARG_REGS: [&str; 6] = ["%di", "%si", "%dx", "%cx", "%r8", "%r9"];

/// Why a probe cannot run on the tracefs runtime: one sentence, at the script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracefsError {
    pub msg: String,
    pub at: Span,
}

/// What one kernel-context probe becomes.
#[derive(Clone, Debug, PartialEq)]
pub struct EventDef {
    /// The probe's index in the program.
    pub probe: usize,
    pub source: Source,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A static tracepoint, enabled in rstap's instance. `filter` is an ftrace
    /// filter implied by the handler's leading `if (...) next`: events it drops
    /// are events the handler would have ignored.
    Tracepoint {
        tp: TracepointId,
        format: TracepointFormat,
        filter: Option<String>,
    },
    /// A uprobe event (`p:`/`r:` in `uprobe_events`).
    Uprobe {
        binary: String,
        offset: u64,
        ret: bool,
        args: Vec<FetchArg>,
    },
    /// A kprobe event (`p:`/`r:` in `kprobe_events`).
    Kprobe {
        function: String,
        ret: bool,
        args: Vec<FetchArg>,
    },
}

/// One fetch argument of a dynamic event: its field name in the record, and
/// what it holds for the handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchArg {
    pub name: String,
    pub role: ArgRole,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgRole {
    /// `$argN` (0-based register index).
    Arg(usize),
    Return,
    StackPointer,
    /// The NUL-terminated user string argument `n` points to, read at the event.
    UserString(usize),
}

impl FetchArg {
    /// The `name=fetch:type` text of the definition.
    fn spec(&self) -> String {
        let fetch = match self.role {
            ArgRole::Arg(n) => format!("{}:u64", ARG_REGS[n]),
            ArgRole::Return => "%ax:u64".to_string(),
            ArgRole::StackPointer => "%sp:u64".to_string(),
            ArgRole::UserString(n) => format!("+0({}):ustring", ARG_REGS[n]),
        };
        format!("{}={fetch}", self.name)
    }
}

impl Source {
    /// The line written to `uprobe_events` or `kprobe_events` to define this
    /// event as `group/event`; `None` for a tracepoint. Group and event names
    /// are rstap's own (`rstap_PID`, `pN`); the binary path and function name
    /// were checked by [`plan`] to hold no whitespace or control characters,
    /// so one definition is always exactly one line.
    pub fn definition(&self, group: &str, event: &str) -> Option<String> {
        let (kind, place, args) = match self {
            Source::Tracepoint { .. } => return None,
            Source::Uprobe {
                binary,
                offset,
                ret,
                args,
            } => (
                if *ret { 'r' } else { 'p' },
                format!("{binary}:{offset:#x}"),
                args,
            ),
            Source::Kprobe {
                function,
                ret,
                args,
            } => (if *ret { 'r' } else { 'p' }, function.clone(), args),
        };
        let mut line = format!("{kind}:{group}/{event} {place}");
        for a in args {
            line.push(' ');
            line.push_str(&a.spec());
        }
        Some(line)
    }
}

/// The events of every kernel-context probe of `prog`, or the first reason
/// one cannot run on tracefs.
pub fn plan(prog: &Program, kernel: &dyn KernelInfo) -> Result<Vec<EventDef>, TracefsError> {
    let mut events = Vec::new();
    for (i, p) in prog.probes.iter().enumerate() {
        if p.context != Context::Kernel {
            continue;
        }
        let refuse = |what: &str| TracefsError {
            msg: format!("the tracefs runtime cannot run {what}"),
            at: p.span,
        };
        check_body(prog, &p.body, p.span, None, &mut HashSet::new())?;
        let source = match &p.kind {
            PointKind::Tracepoint(tp) => {
                if !name_ok(&tp.system) || !name_ok(&tp.name) {
                    return Err(refuse("a tracepoint with this name"));
                }
                let format = kernel.tracepoint_format(tp).map_err(|e| TracefsError {
                    msg: e.0,
                    at: p.span,
                })?;
                check_fields(&p.body, &format, p.span)?;
                let filter = leading_filter(&p.body, &format);
                Source::Tracepoint {
                    tp: tp.clone(),
                    format,
                    filter,
                }
            }
            PointKind::Uprobe {
                binary,
                offset,
                ret,
                ..
            } => {
                if !path_ok(binary) {
                    return Err(refuse(
                        "a probe on a path with spaces or control characters (a dynamic event definition is one line of words)",
                    ));
                }
                Source::Uprobe {
                    binary: binary.clone(),
                    offset: *offset,
                    ret: *ret,
                    args: fetch_args(prog, &p.body, p.span)?,
                }
            }
            PointKind::Kprobe {
                function,
                module: None,
                ret,
            } if function
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') =>
            {
                Source::Kprobe {
                    function: function.clone(),
                    ret: *ret,
                    args: fetch_args(prog, &p.body, p.span)?,
                }
            }
            PointKind::Kprobe { .. } => {
                return Err(refuse(
                    "this kernel function probe (a module or a wildcard)",
                ));
            }
            PointKind::Usdt { .. } => {
                return Err(refuse(
                    "USDT marks (their arguments are not in registers a fetch argument can name); use --runtime=bpf",
                ));
            }
            PointKind::Process { .. } => {
                return Err(refuse(
                    "process.begin/end probes; probe kernel.trace(\"sched:sched_process_exec\") or sched_process_exit instead",
                ));
            }
            PointKind::Perf { .. } | PointKind::Profile => {
                return Err(refuse(
                    "perf-event or timer.profile probes (ftrace has no sampling events); use --runtime=bpf",
                ));
            }
            PointKind::Begin(_)
            | PointKind::End(_)
            | PointKind::Error(_)
            | PointKind::Never
            | PointKind::Timer { .. } => continue,
        };
        events.push(EventDef { probe: i, source });
    }
    Ok(events)
}

/// `[A-Za-z0-9_]+`: what tracefs accepts as a group or event name.
pub fn name_ok(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A path that stays one word of one line in a definition.
fn path_ok(path: &str) -> bool {
    !path.is_empty()
        && !path
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':')
}

/// Refuses what a handler (or a function it calls) needs of kernel context,
/// at the handler's own line: inside a function, at the handler's call of it
/// (`via`: that call, and the function's name).
fn check_body(
    prog: &Program,
    body: &Body,
    span: Span,
    via: Option<(Span, &str)>,
    seen: &mut HashSet<FuncId>,
) -> Result<(), TracefsError> {
    let refuse = |what: &str, at: Span| match via {
        Some((call, name)) => TracefsError {
            msg: format!(
                "the tracefs runtime cannot run {name}(), which needs kernel context for {what}"
            ),
            at: call,
        },
        None => TracefsError {
            msg: format!("the tracefs runtime cannot run {what}, which needs kernel context"),
            at,
        },
    };
    for inst in body.blocks.iter().flat_map(|b| &b.insts) {
        match inst {
            Inst::Load {
                user: false, at, ..
            }
            | Inst::LoadStr {
                user: false, at, ..
            } => return Err(refuse("a read of kernel memory", *at)),
            Inst::Builtin { func, at, .. } if kernel_only(*func) => {
                return Err(refuse(&format!("{}()", func.name()), *at));
            }
            Inst::Context {
                value: ContextValue::MarkArg(_),
                ..
            } => return Err(refuse("a USDT mark argument", span)),
            Inst::Call { func, at, .. } => {
                if seen.insert(*func)
                    && let Some(f) = prog.functions.get(func.index())
                {
                    let via = via.or(Some((*at, f.name.as_str())));
                    check_body(prog, &f.body, span, via, seen)?;
                    if let Some(n) = f.next {
                        seen.insert(n);
                        if let Some(g) = prog.functions.get(n.index()) {
                            check_body(prog, &g.body, span, via, seen)?;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Built-ins only a handler running in the kernel can answer.
fn kernel_only(b: Builtin) -> bool {
    b.reads_kernel_memory()
        || matches!(
            b,
            Builtin::TaskCurrent
                | Builtin::CmdlineArgs
                | Builtin::EnvVar
                | Builtin::PrintBacktrace
                | Builtin::Backtrace
                | Builtin::SprintBacktrace
                | Builtin::PrintUbacktrace
                | Builtin::Ubacktrace
                | Builtin::SprintUbacktrace
        )
}

/// Tracepoint fields the decoder cannot give as a value.
fn check_fields(body: &Body, format: &TracepointFormat, span: Span) -> Result<(), TracefsError> {
    for inst in body.blocks.iter().flat_map(|b| &b.insts) {
        if let Inst::Context {
            value: ContextValue::TracepointField(i),
            ..
        } = inst
        {
            let Some(f) = format.fields.get(*i) else {
                continue;
            };
            let fits = match f.kind {
                FieldKind::Scalar | FieldKind::Array => matches!(f.size, 1 | 2 | 4 | 8),
                FieldKind::CharArray | FieldKind::DataLocString => true,
            };
            if !fits {
                return Err(TracefsError {
                    msg: format!(
                        "the tracefs runtime cannot read the {}-byte field ${}",
                        f.size, f.name
                    ),
                    at: span,
                });
            }
        }
    }
    Ok(())
}

/// The fetch arguments a uprobe or kprobe handler reads.
fn fetch_args(prog: &Program, body: &Body, span: Span) -> Result<Vec<FetchArg>, TracefsError> {
    let mut roles: Vec<ArgRole> = Vec::new();
    let mut add = |r: ArgRole| {
        if !roles.contains(&r) {
            roles.push(r);
        }
    };
    let mut bodies = vec![body];
    let mut seen = HashSet::new();
    while let Some(b) = bodies.pop() {
        for inst in b.blocks.iter().flat_map(|b| &b.insts) {
            if let Inst::Call { func, .. } = inst
                && seen.insert(*func)
                && let Some(f) = prog.functions.get(func.index())
            {
                bodies.push(&f.body);
            }
        }
        let args = arg_regs(b);
        for inst in b.blocks.iter().flat_map(|b| &b.insts) {
            match inst {
                Inst::Context { value, .. } => match value {
                    ContextValue::FunctionArg(n) if *n < ARG_REGS.len() => add(ArgRole::Arg(*n)),
                    ContextValue::FunctionArg(n) => {
                        return Err(TracefsError {
                            msg: format!(
                                "the tracefs runtime reads only the first {} arguments from registers, not argument {}",
                                ARG_REGS.len(),
                                n + 1
                            ),
                            at: span,
                        });
                    }
                    ContextValue::ReturnValue => add(ArgRole::Return),
                    ContextValue::CallFrame { .. } => add(ArgRole::StackPointer),
                    _ => {}
                },
                Inst::Builtin {
                    func:
                        Builtin::UserString
                        | Builtin::UserStringOr
                        | Builtin::UserStringN
                        | Builtin::UserStringNOr,
                    args: a,
                    ..
                } => {
                    if let Some(n) = a.first().and_then(|r| args.get(r)) {
                        add(ArgRole::UserString(*n));
                    }
                }
                Inst::LoadStr {
                    addr, user: true, ..
                } => {
                    if let Some(n) = args.get(addr) {
                        add(ArgRole::UserString(*n));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(roles
        .into_iter()
        .map(|role| FetchArg {
            name: match role {
                ArgRole::Arg(n) => format!("a{n}"),
                ArgRole::Return => "ret".to_string(),
                ArgRole::StackPointer => "sp".to_string(),
                ArgRole::UserString(n) => format!("s{n}"),
            },
            role,
        })
        .collect())
}

/// Registers that hold `$argN` unchanged (from its context read, through moves).
fn arg_regs(body: &Body) -> HashMap<Reg, usize> {
    let mut defs: HashMap<Reg, Vec<&Inst>> = HashMap::new();
    for inst in body.blocks.iter().flat_map(|b| &b.insts) {
        if let Some(d) = inst.def() {
            defs.entry(d).or_default().push(inst);
        }
    }
    let mut out = HashMap::new();
    // A register qualifies only when every write to it is the same argument.
    for _ in 0..4 {
        for (reg, ds) in &defs {
            let mut which = None;
            let mut ok = true;
            for d in ds {
                let n = match d {
                    Inst::Context {
                        value: ContextValue::FunctionArg(n),
                        ..
                    } => Some(*n),
                    Inst::Move { src, .. } => out.get(src).copied(),
                    _ => None,
                };
                match (n, which) {
                    (Some(n), None) => which = Some(n),
                    (Some(n), Some(w)) if n == w => {}
                    _ => ok = false,
                }
            }
            if ok && let Some(n) = which {
                out.insert(*reg, n);
            }
        }
    }
    out
}

/// An ftrace filter for a handler that starts `if (FIELD OP CONST) next` (or
/// the negated form): the events the filter drops are exactly those the
/// handler would end at once. Only scalar fields compared with constants are
/// expressed; anything else leaves the tracepoint unfiltered.
fn leading_filter(body: &Body, format: &TracepointFormat) -> Option<String> {
    let entry = body.blocks.first()?;
    let Term::Branch {
        cond,
        then,
        otherwise,
    } = &entry.term
    else {
        return None;
    };
    let mut field = HashMap::new();
    let mut consts = HashMap::new();
    let mut compare = None;
    for inst in &entry.insts {
        match inst {
            Inst::Context {
                dst,
                value: ContextValue::TracepointField(i),
            } => {
                field.insert(*dst, *i);
            }
            Inst::Const { dst, value } => {
                consts.insert(*dst, *value);
            }
            Inst::Compare { dst, op, a, b } if dst == cond => compare = Some((*op, *a, *b)),
            // Anything else in the entry block may have an effect the filter
            // would skip (a global written, a call): no filter.
            _ => return None,
        }
    }
    let (op, a, b) = compare?;
    let (f, op, value) = match (field.get(&a), consts.get(&b), field.get(&b), consts.get(&a)) {
        (Some(f), Some(v), _, _) => (*f, op, *v),
        (_, _, Some(f), Some(v)) => (*f, flip(op), *v),
        _ => return None,
    };
    let fmt = format.fields.get(f)?;
    if fmt.kind != FieldKind::Scalar || !matches!(fmt.size, 1 | 2 | 4 | 8) {
        return None;
    }
    // The value must survive the field's own width and signedness, or the
    // kernel would compare something else than the handler does.
    if fmt.size < 8 {
        let bits = 8 * fmt.size;
        let (lo, hi) = if fmt.signed {
            (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
        } else {
            (0, (1i64 << bits) - 1)
        };
        if value < lo || value > hi {
            return None;
        }
    } else if !fmt.signed && (value < 0 || !matches!(op, CmpOp::Eq | CmpOp::Ne)) {
        // The handler sees a u64 above i64::MAX as negative; the kernel does not.
        return None;
    }
    // Which branch ends the handler at once decides whether the filter keeps
    // the condition or its negation.
    let ends = |blk: crate::mir::BlockId| {
        let b = body.block(blk);
        b.insts.is_empty() && matches!(b.term, Term::Next | Term::Return(None))
    };
    let keep = if ends(*then) {
        negate(op)
    } else if ends(*otherwise) {
        op
    } else {
        return None;
    };
    Some(format!("{} {} {value}", fmt.name, op_text(keep)))
}

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        o => o,
    }
}

fn negate(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Eq => CmpOp::Ne,
        CmpOp::Ne => CmpOp::Eq,
        CmpOp::Lt => CmpOp::Ge,
        CmpOp::Le => CmpOp::Gt,
        CmpOp::Gt => CmpOp::Le,
        CmpOp::Ge => CmpOp::Lt,
    }
}

fn op_text(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}
