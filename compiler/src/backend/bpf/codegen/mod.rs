//! MIR → BPF for kernel-context handlers, in two steps: instructions over
//! stack slots with jumps to block labels, then label resolution ("nothing moves
//! after this point"). Every long MIR register has an 8-byte stack slot; a
//! register used in one block only shares slots with other such registers once
//! its last use is past, so a handler fits the 512-byte stack. The hottest two
//! live in r8 and r9 instead, their slots kept as homes (`regs.rs`). Strings
//! live in a per-CPU scratch map, each register a region sized by its bound.
//! r6 holds the context pointer, r7 the scratch area; r0–r5 are scratch around
//! each instruction, and r8, r9 too within one operation that lends them.
//! Script function calls are inlined first ([`mir::inline`]); a handler that
//! can loop or run long counts its statements for MAXACTION ([`flow`]).

mod attach;
mod caps;
mod counters;
mod extract;
mod flow;
mod iter;
mod output;
mod procargs;
mod prune;
mod regs;
pub mod sampled;
mod slots;
mod spans;
mod stack;
mod stats;
mod strings;
mod task;
mod usdt;

use super::insn::{Alu, Insn, Jmp, Size, helper};
use super::layout::{Col, GlobalMap, MapSpec, Role, Storage, Widths, global_map};
use crate::hir::{BinOp, PointKind};
use crate::kernel::KernelInfo;
use crate::mir::inline::{inline_calls, needs_inlining};
use crate::mir::{self, Body, CmpOp, Context, Inst, Reg, Ty, UnOp};
use crate::tracepoint::TracepointFormat;
pub use attach::from_kprobe_wildcard;
pub use iter::Callback;
use rstap_grammar::Span;
use slots::{assign_slots, inst_name, regions, span_of};
pub use stack::{Deferred, MAX_FRAMES};
use std::borrow::Cow;

/// BPF's stack, less the 8 bytes the kernel takes for a loop's `may_goto`
/// counter.
const STACK: usize = 504;
/// The least stack a callback's frame takes (Linux 6.1 rounds every
/// frame up to 32 bytes, an empty one too).
const CALLBACK_FRAME: usize = 32;
/// Scratch bytes below the register slots: a map key or a fresh aggregate.
const SCRATCH: usize = 64;
/// Keys up to this many bytes are built on the stack, longer ones in the
/// scratch map.
const STACK_KEY: u32 = 32;
/// The largest per-CPU value the kernel accepts (PCPU_MIN_UNIT_SIZE).
const MAX_SCRATCH: u32 = 32 << 10;

/// Why a handler cannot become BPF (yet): a sentence, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodegenError {
    pub msg: String,
    pub at: Option<Span>,
}

impl CodegenError {
    fn new(msg: impl Into<String>, at: Option<Span>) -> CodegenError {
        CodegenError {
            msg: msg.into(),
            at,
        }
    }
}

/// One kernel-context handler as BPF instructions; its `Insn::ld_map`
/// immediates are indexes into [`Compiled::maps`].
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// Its index in the MIR's probes.
    pub probe: usize,
    /// Further probes (other functions of the same wildcard) this very
    /// program serves: attach it to each of them too.
    pub also: Vec<usize>,
    /// Whether it runs as an fentry/fexit trampoline on its kernel function
    /// rather than as a kprobe/kretprobe.
    pub trampoline: bool,
    pub insns: Vec<Insn>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    /// Every map the programs use.
    pub maps: Vec<MapSpec>,
    pub programs: Vec<Program>,
    /// The print calls of kernel-context handlers: a record's first word is
    /// an index here, its arguments follow in their columns.
    pub prints: Vec<PrintSite>,
    /// Runtime errors and warnings the handlers can raise: a record whose
    /// first word is [`ERROR_RECORD`] (or [`WARN_RECORD`]) plus an index here.
    pub errors: Vec<ErrorSite>,
    /// Functions the programs call back into; `ld_imm64` with `PSEUDO_FUNC`
    /// names them by index.
    pub callbacks: Vec<Callback>,
}

/// A print call of a kernel-context handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrintSite {
    pub spec: mir::PrintSpec,
    /// How each argument is laid out in the record.
    pub args: Vec<Col>,
    /// For each argument, whether it is a string user space computes from
    /// the addresses in its column (see `stack`).
    pub deferred: Vec<Option<Deferred>>,
}

/// The first word of an error record is this plus the error's index; the
/// handler stops.
pub const ERROR_RECORD: i64 = 1 << 32;
/// The first word of a `warn()` record is this plus the site's index.
pub const WARN_RECORD: i64 = 2 << 32;
/// A record that is this word alone asks the run to stop (`exit()`).
pub const EXIT_RECORD: i64 = 3 << 32;
/// The word of the `target` map's value that says the run is ending: nonzero after
/// `exit()`, set by the handler that calls it or by the runtime.
pub const EXITING: i32 = 1;
/// The first word of a `system()` record is this plus the site's index (the
/// site's message is the command).
pub const SYSTEM_RECORD: i64 = 4 << 32;

/// A runtime error (or warning) a handler can raise: what it says, and where
/// (`None`: stap's message has no "near" part, as MAXACTION's in the
/// user-space engine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorSite {
    pub msg: ErrorMsg,
    pub at: Option<Span>,
}

/// What an error record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorMsg {
    /// The same text every time.
    Fixed(String),
    /// `error(msg)`, `warn(msg)`: the text follows in the record, in a
    /// string column of this many bytes.
    Text(u32),
    /// Reading memory failed: the address and the helper's error code follow.
    Fault { user: bool, string: bool },
}

impl ErrorMsg {
    /// The message where the record's operands are not at hand (a catch
    /// variable set in the kernel): a fault without its address.
    pub fn without_operands(&self) -> String {
        match self {
            ErrorMsg::Fixed(m) => m.clone(),
            ErrorMsg::Text(_) => String::new(),
            ErrorMsg::Fault {
                user: true,
                string: true,
            } => "user string copy fault -14 [man error::fault]".into(),
            ErrorMsg::Fault { string: true, .. } => {
                "kernel string copy fault [man error::fault]".into()
            }
            ErrorMsg::Fault { .. } => "read fault [man error::fault]".into(),
        }
    }
}

impl ErrorSite {
    /// The message of a record whose words after the first are `payload`.
    pub fn message(&self, payload: &[u8]) -> String {
        let word = |i: usize| {
            payload
                .get(8 * i..8 * i + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, i64::from_le_bytes)
        };
        match &self.msg {
            ErrorMsg::Fixed(m) => m.clone(),
            ErrorMsg::Text(n) => {
                let bytes = payload.get(..*n as usize).unwrap_or(payload);
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                String::from_utf8_lossy(&bytes[..end]).into_owned()
            }
            ErrorMsg::Fault { user, string } => {
                let (addr, code) = (word(0), word(1));
                match (user, string) {
                    (true, true) => {
                        format!("user string copy fault {code} at 0x{addr:x} [man error::fault]")
                    }
                    (false, true) => {
                        format!("kernel string copy fault at 0x{addr:x} [man error::fault]")
                    }
                    (_, false) => format!("read fault [man error::fault] at 0x{addr:x}"),
                }
            }
        }
    }
}

/// What the generated code must know of the machine it will run on, and the
/// limits (`-D NAME=VALUE`, the runtime's `Limits`) it enforces.
#[derive(Clone, Copy, Debug, Default)]
pub struct Target {
    /// MAXMAPENTRIES.
    pub max_entries: u32,
    /// MAXACTION: statements one run of a handler may execute.
    pub max_action: u32,
    /// MAXNESTING: function calls one handler may have in progress.
    pub max_nesting: u32,
    /// Wall-clock time minus the monotonic clock BPF reads, in nanoseconds,
    /// for `gettimeofday_*()`.
    pub wall_offset_ns: i64,
    /// MAXSTRINGLEN: the bytes of a string with its NUL (0: stap's 512).
    pub max_string: u32,
    /// CPU ids an extraction adds up per-CPU shares of: the highest possible
    /// CPU's id plus one (`/sys/devices/system/cpu/possible`).
    pub possible_cpus: u32,
    /// Whether a kernel-function probe may run as an fentry/fexit trampoline
    /// where the kernel has one for its function (else always a kprobe).
    pub fentry: bool,
    /// The process that loads the programs and reads their output:
    /// `stp_pid()`.
    pub tracer_pid: i32,
}

impl Target {
    fn max_string(&self) -> u32 {
        if self.max_string == 0 {
            512
        } else {
            self.max_string
        }
    }
}

/// Compiles every kernel-context probe of `prog`.
pub fn compile(
    prog: &mir::Program,
    kernel: &dyn KernelInfo,
    target: Target,
) -> Result<Compiled, CodegenError> {
    let (inlined, counts) = as_run(prog, target)?;
    let prog = inlined.as_ref();
    let max_string = target.max_string();
    let mut formats = Vec::new();
    for probe in &prog.probes {
        formats.push(match &probe.kind {
            PointKind::Tracepoint(tp) if probe.context == Context::Kernel => Some(
                kernel
                    .tracepoint_format(tp)
                    .map_err(|e| CodegenError::new(e.0, None))?,
            ),
            _ => None,
        });
    }
    let widths = caps::global_widths(prog, &formats, max_string);
    let task = task::offsets_if_needed(prog, kernel);
    let mm = procargs::offsets_if_needed(prog, kernel);
    let bpf_loop = procargs::bpf_loop_if_needed(prog, kernel);
    let walks = prog
        .probes
        .iter()
        .any(|p| p.context == Context::Kernel && (p.body.iters > 0 || strings::searches(&p.body)));
    let may_goto = walks && kernel.may_goto();
    let mut maps: Vec<Option<GlobalMap>> = vec![None; prog.globals.len()];
    let mut prints = Vec::new();
    let mut errors = Vec::new();
    let mut buffers = Vec::new();
    let mut callbacks = Vec::new();
    let mut programs = Vec::new();
    let mut scratch = 0u32;
    for (i, probe) in prog.probes.iter().enumerate() {
        if probe.context != Context::Kernel {
            continue;
        }
        let shared = Shared {
            prog,
            widths: &widths,
            target,
            task,
            mm,
            bpf_loop,
            may_goto,
        };
        // A refusal that knows no better place points at its probe, so the
        // user always gets the script line and a caret.
        let at_probe = |e: CodegenError| CodegenError {
            at: e.at.or(Some(probe.span)),
            ..e
        };
        let mut g = Gen::new(
            shared,
            &probe.body,
            formats[i].as_ref(),
            &mut maps,
            counts[i],
        )
        .map_err(at_probe)?;
        g.prints = std::mem::take(&mut prints);
        g.errors = std::mem::take(&mut errors);
        g.buffers = std::mem::take(&mut buffers);
        g.callbacks = std::mem::take(&mut callbacks);
        g.trampoline = attach::trampoline(prog, i, kernel, target);
        g.marks = usdt::mark_args(probe, kernel)?;
        g.body().map_err(at_probe)?;
        prints = std::mem::take(&mut g.prints);
        errors = std::mem::take(&mut g.errors);
        buffers = std::mem::take(&mut g.buffers);
        callbacks = std::mem::take(&mut g.callbacks);
        if g.scratch_end > MAX_SCRATCH {
            return Err(CodegenError::new(
                format!(
                    "this handler's strings need {} bytes of per-CPU scratch memory, more than the kernel's {MAX_SCRATCH}; lower MAXSTRINGLEN with -D or split the handler",
                    g.scratch_end
                ),
                Some(probe.span),
            ));
        }
        scratch = scratch.max(g.scratch_end);
        programs.push(Program {
            probe: i,
            also: Vec::new(),
            trampoline: g.trampoline,
            insns: g.finish(),
        });
    }
    let mut programs = attach::merge_wildcards(prog, programs);
    // Map ids so far: globals by index, then the output ring, the lost
    // counter, `target` and the scratch area; number the maps the programs
    // use, in that order.
    let globals = prog.globals.len();
    let mut order: Vec<(u32, MapSpec)> = maps
        .into_iter()
        .enumerate()
        .filter_map(|(i, m)| {
            m.map(|m| (u32::try_from(i).unwrap_or(u32::MAX), MapSpec::global(i, m)))
        })
        .collect();
    if !prints.is_empty() || !errors.is_empty() || uses_map(&programs, output_id(globals)) {
        order.push((output_id(globals), MapSpec::output()));
        order.push((output_id(globals) + 1, MapSpec::lost()));
    }
    if uses_map(&programs, output_id(globals) + 2) {
        order.push((output_id(globals) + 2, MapSpec::target()));
    }
    if uses_map(&programs, output_id(globals) + 3) {
        order.push((output_id(globals) + 3, MapSpec::scratch(scratch)));
    }
    if uses_map(&programs, zeroes_id(globals)) {
        let largest = order
            .iter()
            .filter_map(|(_, m)| match &m.role {
                Role::Global(_, g) if g.storage == Storage::StatsArray => Some(g.value_size),
                _ => None,
            })
            .max()
            .unwrap_or(8);
        order.push((zeroes_id(globals), MapSpec::zeroes(largest)));
    }
    if uses_map(&programs, functions_id(globals)) {
        order.push((functions_id(globals), MapSpec::functions()));
    }
    for (k, b) in buffers.into_iter().enumerate() {
        order.push((
            iter::first_buffer_id(globals) + u32::try_from(k).unwrap_or(0),
            b,
        ));
    }
    let code = programs
        .iter_mut()
        .map(|p| &mut p.insns)
        .chain(callbacks.iter_mut().map(|c| &mut c.insns));
    for insns in code {
        for ins in insns.iter_mut() {
            if ins.names_map() {
                let id = ins.imm as u32;
                let index = order.iter().position(|(o, _)| *o == id).unwrap_or(0);
                ins.imm = i32::try_from(index).unwrap_or(0);
            }
        }
    }
    Ok(Compiled {
        maps: order.into_iter().map(|(_, m)| m).collect(),
        programs,
        prints,
        errors,
        callbacks,
    })
}

/// `prog` as the kernel runs it: every kernel-context handler with its
/// function calls inlined and, when it needs one, a register counting its
/// statements for MAXACTION (by probe index).
fn as_run(
    prog: &mir::Program,
    target: Target,
) -> Result<(Cow<'_, mir::Program>, Vec<Option<Reg>>), CodegenError> {
    // Most scripts' handlers are already as they run: then the program is
    // not copied (a copy of a 1,000-statement script's MIR is 2 MiB).
    let changes = |p: &mir::Probe| {
        p.context == Context::Kernel
            && (needs_inlining(&p.body)
                || stack::folds_names(p)
                || !flow::within_max_action(&p.body, target.max_action))
    };
    if !prog.probes.iter().any(changes) {
        return Ok((Cow::Borrowed(prog), vec![None; prog.probes.len()]));
    }
    let nesting = usize::try_from(target.max_nesting).unwrap_or(usize::MAX);
    let mut probes = Vec::with_capacity(prog.probes.len());
    let mut counts = Vec::with_capacity(prog.probes.len());
    for probe in &prog.probes {
        let mut count = None;
        let body = if probe.context == Context::Kernel {
            let mut body = inline_calls(prog, &probe.body, nesting)
                .map_err(|e| CodegenError::new(e.msg, Some(e.at)))?;
            count = flow::count_register(&mut body, target.max_action);
            body
        } else {
            probe.body.clone()
        };
        let mut probe = mir::Probe {
            kind: probe.kind.clone(),
            name: probe.name.clone(),
            written: probe.written.clone(),
            context: probe.context,
            body,
            span: probe.span,
        };
        if probe.context == Context::Kernel {
            stack::fold_probe_names(&mut probe);
        }
        probes.push(probe);
        counts.push(count);
    }
    let prog = mir::Program {
        globals: prog.globals.clone(),
        functions: prog.functions.clone(),
        probes,
        unread: prog.unread.clone(),
    };
    Ok((Cow::Owned(prog), counts))
}

/// Whether a program loads map `id`.
fn uses_map(programs: &[Program], id: u32) -> bool {
    programs
        .iter()
        .any(|p| p.insns.iter().any(|i| i.names_map() && i.imm as u32 == id))
}

/// The internal id of the output ring buffer (the lost counter is the next,
/// then `target`, the scratch area and the map of zeroes).
fn output_id(globals: usize) -> u32 {
    u32::try_from(globals).unwrap_or(u32::MAX - 5)
}

/// The internal id of the map of zeroes new stats-array elements start from.
fn zeroes_id(globals: usize) -> u32 {
    output_id(globals) + 4
}

/// The internal id of the kernel's sorted symbol addresses.
fn functions_id(globals: usize) -> u32 {
    output_id(globals) + 5
}

/// What every program of one compilation shares.
#[derive(Clone, Copy)]
struct Shared<'a> {
    prog: &'a mir::Program,
    widths: &'a [Widths],
    target: Target,
    /// Where `struct task_struct` keeps what ppid() and pexecname() read.
    task: Option<task::TaskOffsets>,
    /// Where `struct task_struct` and `struct mm_struct` keep the argument
    /// and environment areas.
    mm: Option<procargs::MmOffsets>,
    /// Whether the kernel has the `bpf_loop` helper (Linux 5.17).
    bpf_loop: bool,
    /// Whether loops may start with `may_goto` (see `iter`).
    may_goto: bool,
}

/// Where a buffer is: on the stack or in the scratch area, at an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ptr {
    Stack(i16),
    Scratch(u32),
}

struct Gen<'a> {
    shared: Shared<'a>,
    body: &'a Body,
    format: Option<&'a TracepointFormat>,
    maps: &'a mut Vec<Option<GlobalMap>>,
    insns: Vec<Insn>,
    /// Jumps to patch: instruction index and target block.
    fixups: Vec<(usize, usize)>,
    starts: Vec<usize>,
    /// Stack offset (from r10) of each long register: where it lives, or
    /// its home when it lives in a machine register.
    slot: Vec<i16>,
    /// The machine register (r8, r9) a long register lives in, if any.
    machine: Vec<Option<u8>>,
    /// How deeply r8 and r9 are lent to a sequence (see `regs.rs`).
    lent: u32,
    /// Bytes each string register can hold (with the NUL); 0 for longs.
    caps: Vec<u32>,
    /// Offset in the scratch area of each string register's region.
    region: Vec<u32>,
    /// Scratch offsets of a map key and of a map value being built, and of the
    /// buffer concatenation builds its result in.
    key_area: u32,
    value_area: u32,
    concat_area: u32,
    /// Three words per `foreach`: the next index, the entries left to walk
    /// and the key count.
    iter_area: u32,
    /// The bytes of the scratch area this program uses.
    scratch_end: u32,
    /// The block being emitted (its `catch` handles runtime errors).
    block: usize,
    /// Key buffers and callbacks of `foreach` loops of the whole program so far.
    buffers: Vec<MapSpec>,
    callbacks: Vec<Callback>,
    /// What each `foreach` of this handler walks, by iteration id.
    walks: Vec<Option<iter::Walk>>,
    /// The register counting the statements run, for MAXACTION.
    count: Option<Reg>,
    /// Print sites of the whole program so far.
    prints: Vec<PrintSite>,
    /// Error sites of the whole program so far.
    errors: Vec<ErrorSite>,
    /// Increments this body makes atomic.
    fusion: counters::Fusion,
    /// Whether the handler runs as an fentry/fexit trampoline: its context
    /// is the trampoline's frame, not a `struct pt_regs`.
    trampoline: bool,
    /// The string registers holding addresses user space names (`stack`).
    deferred: Vec<Option<Deferred>>,
    /// The handler runs at a user function's entry (see `Gen::get_stack`).
    at_user_entry: bool,
    /// Where `$argN` of the USDT mark the handler runs at is.
    marks: Vec<crate::elf::UsdtArg>,
    /// The lowest stack offset the handler uses: its scratch bytes start
    /// there (see [`STACK`], [`CALLBACK_FRAME`]).
    bottom: i16,
}

impl<'a> Gen<'a> {
    fn new(
        shared: Shared<'a>,
        body: &'a Body,
        format: Option<&'a TracepointFormat>,
        maps: &'a mut Vec<Option<GlobalMap>>,
        count: Option<Reg>,
    ) -> Result<Gen<'a>, CodegenError> {
        let max_string = shared.target.max_string();
        let caps = caps::string_caps(body, format, max_string, max_string, shared.widths);
        // A register in r8 or r9 needs a home slot of its own; when the homes
        // do not fit the stack, every register stays on the stack.
        let machine = regs::allocate(body, count);
        let pinned: Vec<bool> = machine.iter().map(Option::is_some).collect();
        // A callback's frame counts against the stack with the handler's
        // (32 bytes at least, before Linux 6.9): a handler that calls one
        // keeps its own frame that much smaller.
        let stack = if body.iters > 0
            || body
                .blocks
                .iter()
                .flat_map(|b| &b.insts)
                .any(|i| procargs::loops(i) || matches!(i, Inst::Clear { .. }))
        {
            STACK - CALLBACK_FRAME
        } else {
            STACK
        };
        let (slot, machine) = match assign_slots(body, &pinned, stack) {
            Ok(slot) => (slot, machine),
            Err(_) => (assign_slots(body, &[], stack)?, vec![None; machine.len()]),
        };
        // The scratch area: a key, a value, the concatenation buffer, then
        // every string register's region.
        let key_bytes = shared
            .prog
            .globals
            .iter()
            .zip(shared.widths)
            .map(|(g, w)| {
                g.keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| Col::of(*k, w.keys[i]).bytes())
                    .sum::<u32>()
            })
            .max()
            .unwrap_or(0);
        // At least two words: a string search keeps its indexes there.
        let mut value_bytes = next8(max_string).max(16);
        let insts = || body.blocks.iter().flat_map(|b| &b.insts);
        let mut concat_bytes = 0;
        if insts().any(|i| matches!(i, Inst::Concat { .. })) {
            concat_bytes = 2 * next8(max_string);
        }
        if insts().any(procargs::reads_areas) {
            concat_bytes = concat_bytes.max(procargs::area_bytes(max_string));
            value_bytes = value_bytes.max(procargs::step_bytes(max_string));
        }
        let key_area = 0;
        let value_area = key_bytes;
        let concat_area = value_area + value_bytes;
        let iter_area = concat_area + concat_bytes;
        let iter_bytes = 24 * u32::try_from(body.iters).unwrap_or(0);
        let (region, scratch_end) = regions(body, &caps, iter_area + iter_bytes);
        sampled::check_tokens(body)?;
        Ok(Gen {
            shared,
            body,
            format,
            maps,
            insns: Vec::new(),
            fixups: Vec::new(),
            starts: Vec::new(),
            slot,
            machine,
            lent: 0,
            caps,
            region,
            key_area,
            value_area,
            concat_area,
            iter_area,
            scratch_end,
            block: 0,
            buffers: Vec::new(),
            callbacks: Vec::new(),
            walks: Vec::new(),
            fusion: counters::plan(shared.prog, body),
            deferred: stack::deferred_regs(body)?,
            at_user_entry: stack::at_user_entry(shared.prog, body),
            marks: Vec::new(),
            bottom: -i16::try_from(stack).unwrap_or(512),
            count,
            prints: Vec::new(),
            errors: Vec::new(),
            trampoline: false,
        })
    }

    fn emit(&mut self, i: Insn) {
        self.insns.push(i);
    }

    fn emit2(&mut self, pair: [Insn; 2]) {
        self.insns.extend(pair);
    }

    /// `reg` = the address of `ptr`.
    fn ptr(&mut self, reg: u8, ptr: Ptr) {
        match ptr {
            Ptr::Stack(off) => {
                self.emit(Insn::mov_reg(reg, 10));
                self.emit(Insn::alu_imm(Alu::Add, reg, i32::from(off)));
            }
            Ptr::Scratch(off) => {
                self.emit(Insn::mov_reg(reg, 7));
                self.emit(Insn::alu_imm(
                    Alu::Add,
                    reg,
                    i32::try_from(off).unwrap_or(i32::MAX),
                ));
            }
        }
    }

    /// A jump (or conditional jump) to block `target`, patched in `finish`.
    fn jump_to(&mut self, i: Insn, target: usize) {
        self.fixups.push((self.insns.len(), target));
        self.emit(i);
    }

    /// Emits a conditional jump whose offset [`Gen::land`] sets later.
    fn forward(&mut self, i: Insn) -> usize {
        self.emit(i);
        self.insns.len() - 1
    }

    /// Points the forward jump at `at` to the next instruction.
    fn land(&mut self, at: usize) {
        self.insns[at].off = i16::try_from(self.insns.len() - at - 1).unwrap_or(i16::MAX);
    }

    /// Whether the handler needs the scratch area.
    fn uses_scratch(&self) -> bool {
        let wide = |g: &crate::hir::GlobalId| {
            let w = &self.shared.widths[g.index()];
            let keys: u32 = self.shared.prog.globals[g.index()]
                .keys
                .iter()
                .enumerate()
                .map(|(i, k)| Col::of(*k, w.keys[i]).bytes())
                .sum();
            keys > STACK_KEY
        };
        self.body.regs.contains(&Ty::Str)
            || self.body.iters > 0
            || self
                .body
                .blocks
                .iter()
                .flat_map(|b| &b.insts)
                .any(|i| match i {
                    Inst::MapRead { global, .. }
                    | Inst::MapWrite { global, .. }
                    | Inst::MapContains { global, .. }
                    | Inst::MapDelete { global, .. }
                    | Inst::AggAdd { global, .. }
                    | Inst::AggRead { global, .. }
                    | Inst::HistBucket { global, .. } => wide(global),
                    _ => false,
                })
    }

    fn body(&mut self) -> Result<(), CodegenError> {
        self.emit(Insn::mov_reg(6, 1));
        // A handler that does nothing has nothing to hold back after exit().
        if self.body.blocks.iter().any(|b| !b.insts.is_empty()) {
            self.unless_exiting();
        }
        if self.uses_scratch() {
            let key = self.bottom + 32;
            self.emit(Insn::store_imm(Size::W, 10, key, 0));
            self.emit2(Insn::ld_map(
                1,
                output_id(self.shared.prog.globals.len()) + 3,
            ));
            self.ptr(2, Ptr::Stack(key));
            self.emit(Insn::call(helper::MAP_LOOKUP_ELEM));
            self.emit(Insn::jump_imm(Jmp::Jne, 0, 0, 2));
            self.emit(Insn::mov_imm(0, 0));
            self.emit(Insn::exit());
            self.emit(Insn::mov_reg(7, 0));
        }
        // Locals start at 0 (or ""), and the verifier refuses reads of
        // unwritten stack. (A home is written before it is read.)
        let mut words: Vec<i16> = (0..self.slot.len())
            .filter(|&r| self.body.regs[r] == Ty::Long && self.machine[r].is_none())
            .map(|r| self.slot[r])
            .collect();
        words.sort_unstable();
        words.dedup();
        for off in words {
            self.emit(Insn::store_imm(Size::DW, 10, off, 0));
        }
        self.zero_allocated();
        for r in 0..self.body.regs.len() {
            if self.body.regs[r] == Ty::Str {
                self.zero_from(Reg(u32::try_from(r).unwrap_or(0)), 0);
            }
        }
        self.blocks()
    }

    /// Returns at once once the run is ending (`exit()` was called, in a
    /// handler or by the runtime): as in stap, no handler starts after it,
    /// while the one that called it runs to its end. The flag is `target`'s
    /// second slot ([`EXITING`]).
    fn unless_exiting(&mut self) {
        self.target_slot(EXITING);
        let absent = self.forward(Insn::jump_imm(Jmp::Jeq, 0, 0, 0));
        self.emit(Insn::load(Size::DW, 1, 0, 0));
        let running = self.forward(Insn::jump_imm(Jmp::Jeq, 1, 0, 0));
        self.emit(Insn::mov_imm(0, 0));
        self.emit(Insn::exit());
        self.land(absent);
        self.land(running);
    }

    /// r0 = the address of word `key` of the `target` map's value (never 0:
    /// the address is resolved when the program is loaded).
    fn target_slot(&mut self, key: i32) {
        let map = output_id(self.shared.prog.globals.len()) + 2;
        self.emit2(Insn::ld_map_value(0, map, key * 8));
    }

    fn finish(&mut self) -> Vec<Insn> {
        for &(at, target) in &self.fixups {
            let dest = self.starts.get(target).copied().unwrap_or(self.insns.len());
            let off = i64::try_from(dest).unwrap_or(0) - i64::try_from(at).unwrap_or(0) - 1;
            self.insns[at].off = i16::try_from(off).unwrap_or(i16::MAX);
        }
        prune::prune(std::mem::take(&mut self.insns))
    }

    fn unsupported<T>(&self, what: &str, at: Option<Span>) -> Result<T, CodegenError> {
        Err(CodegenError::new(
            format!("{what} is not supported in kernel-context probes yet"),
            at,
        ))
    }

    fn is_str(&self, r: Reg) -> bool {
        self.body.ty(r) == Ty::Str
    }

    fn inst(&mut self, inst: &Inst) -> Result<(), CodegenError> {
        if self.string_inst(inst)? || self.fused(inst)? || self.stack_inst(inst)? {
            return Ok(());
        }
        match inst {
            Inst::Const { dst, value } => self.constant(*dst, *value),
            Inst::Move { dst, src } => {
                self.load(1, *src);
                self.store(*dst, 1);
            }
            Inst::Unary { dst, op, src } => {
                self.load(1, *src);
                match op {
                    UnOp::Neg => self.emit(Insn::alu_imm(Alu::Neg, 1, 0)),
                    UnOp::BitNot => self.emit(Insn::alu_imm(Alu::Xor, 1, -1)),
                    UnOp::Not => {
                        self.emit(Insn::mov_imm(0, 1));
                        self.emit(Insn::jump_imm(Jmp::Jeq, 1, 0, 1));
                        self.emit(Insn::mov_imm(0, 0));
                        self.emit(Insn::mov_reg(1, 0));
                    }
                }
                self.store(*dst, 1);
            }
            Inst::Binary { dst, op, a, b, at } => self.binary(*dst, *op, *a, *b, *at)?,
            Inst::Compare { dst, op, a, b } => {
                self.load(1, *a);
                self.load(2, *b);
                self.emit(Insn::mov_imm(0, 1));
                self.emit(Insn::jump_reg(signed_jump(*op), 1, 2, 1));
                self.emit(Insn::mov_imm(0, 0));
                self.store(*dst, 0);
            }
            Inst::ReadGlobal { dst, global } => {
                if self.scalar_addr(global.index())? {
                    self.read_present(*dst);
                } else {
                    self.lookup(global.index(), &[])?;
                    self.read_value(*dst);
                }
            }
            Inst::WriteGlobal { global, src } => {
                if self.scalar_addr(global.index())? {
                    self.write_present(*src);
                } else {
                    self.lookup(global.index(), &[])?;
                    self.write_value(*src);
                }
            }
            Inst::MapRead { dst, global, keys } => {
                self.lookup(global.index(), keys)?;
                self.read_value(*dst);
            }
            Inst::MapWrite {
                global,
                keys,
                src,
                at,
            } => self.map_write(global.index(), keys, *src, *at)?,
            Inst::AggAdd {
                global,
                keys,
                value,
                at,
            } => self.agg_add(global.index(), keys, *value, *at)?,
            Inst::AggRead {
                dst,
                global,
                keys,
                op,
                at,
                ..
            } => self.agg_read(*dst, global.index(), keys, *op, *at)?,
            Inst::HistBucket {
                dst,
                global,
                keys,
                hist,
                bucket,
            } => self.hist_bucket(*dst, global.index(), keys, hist, *bucket)?,
            Inst::MapContains { dst, global, keys } if keys.iter().all(Option::is_some) => {
                let keys: Vec<Reg> = keys.iter().flatten().copied().collect();
                self.lookup(global.index(), &keys)?;
                self.emit(Insn::mov_imm(1, 1));
                self.emit(Insn::jump_imm(Jmp::Jne, 0, 0, 1));
                self.emit(Insn::mov_imm(1, 0));
                self.store(*dst, 1);
            }
            Inst::MapDelete { global, keys } if keys.iter().all(Option::is_some) => {
                let keys: Vec<Reg> = keys.iter().flatten().copied().collect();
                let map = self.map(global.index())?;
                let key = self.key(global.index(), &keys)?;
                self.emit2(Insn::ld_map(1, map));
                self.ptr(2, key);
                self.emit(Insn::call(helper::MAP_DELETE_ELEM));
            }
            Inst::Context { dst, value } => self.context(*dst, value)?,
            Inst::Builtin {
                dst,
                func,
                args,
                at,
            } => self.builtin(*dst, *func, args, *at)?,
            Inst::Load {
                dst,
                addr,
                size,
                signed,
                user,
                at,
            } => self.read_memory(*dst, *addr, *size, *signed, *user, *at)?,
            Inst::Print {
                dst: None,
                spec,
                args,
            } => self.print(spec, args),
            Inst::Clear { global } => self.clear(global.index())?,
            Inst::IterStart {
                iter,
                source,
                sort,
                limit,
                slice,
            } => self.iter_start(*iter, source, sort.is_some(), *limit, slice.as_ref())?,
            other => return self.unsupported(inst_name(other), span_of(other)),
        }
        Ok(())
    }

    fn constant(&mut self, dst: Reg, value: i64) {
        match i32::try_from(value) {
            Ok(v) => self.store_imm(dst, v),
            Err(_) => {
                self.emit2(Insn::ld_imm64(1, value as u64));
                self.store(dst, 1);
            }
        }
    }

    fn binary(
        &mut self,
        dst: Reg,
        op: BinOp,
        a: Reg,
        b: Reg,
        at: Span,
    ) -> Result<(), CodegenError> {
        self.load(1, a);
        self.load(2, b);
        let alu = match op {
            BinOp::Add => Alu::Add,
            BinOp::Sub => Alu::Sub,
            BinOp::Mul => Alu::Mul,
            BinOp::BitAnd => Alu::And,
            BinOp::BitOr => Alu::Or,
            BinOp::BitXor => Alu::Xor,
            BinOp::Shl | BinOp::Shr | BinOp::UShr => {
                // stap shifts by the low six bits of the count, as x86 does.
                self.emit(Insn::alu_imm(Alu::And, 2, 63));
                match op {
                    BinOp::Shl => Alu::Lsh,
                    BinOp::Shr => Alu::Arsh,
                    _ => Alu::Rsh,
                }
            }
            BinOp::Div | BinOp::Mod => {
                // Division by zero is stap's runtime error; the rest is C's
                // signed division (sdiv/smod).
                let check = self.insns.len();
                self.emit(Insn::jump_imm(Jmp::Jne, 2, 0, 0));
                let start = self.insns.len();
                self.raise("division by 0", at);
                self.insns[check].off = i16::try_from(self.insns.len() - start).unwrap_or(i16::MAX);
                let alu = if op == BinOp::Div { Alu::Div } else { Alu::Mod };
                self.emit(Insn::alu_signed(alu, 1, 2));
                self.store(dst, 1);
                return Ok(());
            }
            _ => return self.unsupported("this operator", Some(at)),
        };
        self.emit(Insn::alu_reg(alu, 1, 2));
        self.store(dst, 1);
        Ok(())
    }

    /// The map index of global `g`, created on first use.
    fn map(&mut self, g: usize) -> Result<u32, CodegenError> {
        if self.maps[g].is_none() {
            let m = global_map(
                self.shared.prog,
                g,
                self.shared.target.max_entries,
                &self.shared.widths[g],
            )
            .map_err(|e| CodegenError::new(e.0, None))?;
            self.maps[g] = Some(m);
        }
        Ok(u32::try_from(g).unwrap_or(u32::MAX))
    }

    /// The key columns of global `g`'s map.
    fn key_cols(&mut self, g: usize) -> Result<Vec<Col>, CodegenError> {
        self.map(g)?;
        Ok(self.maps[g]
            .as_ref()
            .map(|m| m.key_cols.clone())
            .unwrap_or_default())
    }

    /// Packs `keys` into a key of global `g`'s map: on the stack when it is
    /// short (the last 32 bytes of the stack's scratch bytes; the first 32
    /// hold a fresh aggregate or a value to store), else in the scratch area.
    /// A scalar's key is the u32 0.
    fn key(&mut self, g: usize, keys: &[Reg]) -> Result<Ptr, CodegenError> {
        let stack = self.bottom + 32;
        if keys.is_empty() {
            self.emit(Insn::store_imm(Size::W, 10, stack, 0));
            return Ok(Ptr::Stack(stack));
        }
        let cols = self.key_cols(g)?;
        let size: u32 = cols.iter().map(|c| c.bytes()).sum();
        let key = if size <= STACK_KEY {
            Ptr::Stack(stack)
        } else {
            Ptr::Scratch(self.key_area)
        };
        let mut at = 0u32;
        for (&k, col) in keys.iter().zip(&cols) {
            let dst = key.plus(at);
            match col {
                Col::Long => {
                    self.load(1, k);
                    let (base, off) = self.base(dst);
                    self.emit(Insn::store(Size::DW, base, off, 1));
                }
                Col::Str(n) => self.copy_str(dst, k, *n),
            }
            at += col.bytes();
        }
        Ok(key)
    }

    /// r0 = the element of global `g` at `keys`, or 0 when absent.
    fn lookup(&mut self, g: usize, keys: &[Reg]) -> Result<(), CodegenError> {
        if keys.is_empty() && self.scalar_addr(g)? {
            return Ok(());
        }
        let map = self.map(g)?;
        let key = self.key(g, keys)?;
        self.emit_lookup(map, key);
        Ok(())
    }

    /// r0 = the address of scalar global `g`'s value, when `g` is a scalar
    /// (a one-element array map): resolved when the program is loaded, so no
    /// lookup call and never null. False, emitting nothing, for any other
    /// global.
    fn scalar_addr(&mut self, g: usize) -> Result<bool, CodegenError> {
        let map = self.map(g)?;
        let scalar = matches!(
            self.maps[g].as_ref().map(|m| m.storage),
            Some(Storage::Scalar)
        );
        if scalar {
            self.emit2(Insn::ld_map_value(0, map, 0));
        }
        Ok(scalar)
    }

    /// dst = *r0, where r0 is never null.
    fn read_present(&mut self, dst: Reg) {
        if self.is_str(dst) {
            let width = self.value_width();
            self.read_str_from(dst, width);
        } else {
            self.emit(Insn::load(Size::DW, 1, 0, 0));
            self.store(dst, 1);
        }
    }

    /// *r0 = src, where r0 is never null.
    fn write_present(&mut self, src: Reg) {
        if self.is_str(src) {
            let width = self.value_width();
            self.write_str_to(src, width);
        } else {
            self.load(1, src);
            self.emit(Insn::store(Size::DW, 0, 0, 1));
        }
    }

    /// dst = *r0, or 0 (or "") when r0 is null.
    fn read_value(&mut self, dst: Reg) {
        if self.is_str(dst) {
            let width = self.value_width();
            let absent = self.forward(Insn::jump_imm(Jmp::Jeq, 0, 0, 0));
            self.read_str_from(dst, width);
            let done = self.forward(Insn::jump(0));
            self.land(absent);
            self.zero_from(dst, 0);
            self.land(done);
            return;
        }
        self.emit(Insn::mov_imm(1, 0));
        self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 1));
        self.emit(Insn::load(Size::DW, 1, 0, 0));
        self.store(dst, 1);
    }

    /// *r0 = src, when r0 is not null.
    fn write_value(&mut self, src: Reg) {
        let absent = self.forward(Insn::jump_imm(Jmp::Jeq, 0, 0, 0));
        self.write_present(src);
        self.land(absent);
    }

    /// A map value holding `src`, ready for `map_update_elem`.
    fn stage_value(&mut self, src: Reg) -> Ptr {
        if self.is_str(src) {
            let value = Ptr::Scratch(self.value_area);
            let width = self.value_width();
            self.copy_str(value, src, width);
            return value;
        }
        let value = self.bottom + 24;
        self.load(1, src);
        self.emit(Insn::store(Size::DW, 10, value, 1));
        Ptr::Stack(value)
    }

    /// The bytes of a string value in a map.
    fn value_width(&self) -> u32 {
        next8(self.shared.target.max_string())
    }

    /// The base register and offset that address `ptr` in a load or store.
    fn base(&self, ptr: Ptr) -> (u8, i16) {
        match ptr {
            Ptr::Stack(off) => (10, off),
            Ptr::Scratch(off) => (7, i16::try_from(off).unwrap_or(i16::MAX)),
        }
    }
}

impl Ptr {
    fn plus(self, bytes: u32) -> Ptr {
        match self {
            Ptr::Stack(off) => Ptr::Stack(off + i16::try_from(bytes).unwrap_or(0)),
            Ptr::Scratch(off) => Ptr::Scratch(off + bytes),
        }
    }
}

/// `n` rounded up to whole 8-byte words.
fn next8(n: u32) -> u32 {
    n.max(1).next_multiple_of(8)
}

/// The signed conditional jump taken when `a op b`.
fn signed_jump(op: CmpOp) -> Jmp {
    match op {
        CmpOp::Eq => Jmp::Jeq,
        CmpOp::Ne => Jmp::Jne,
        CmpOp::Lt => Jmp::Jslt,
        CmpOp::Le => Jmp::Jsle,
        CmpOp::Gt => Jmp::Jsgt,
        CmpOp::Ge => Jmp::Jsge,
    }
}
