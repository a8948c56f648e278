//! The mid-level IR: each probe handler and function as basic blocks of simple
//! instructions over virtual registers, with every map access, aggregate
//! update, helper call, output record and runtime-error check explicit. Both the
//! BPF backend and the user-space engine consume it; `-p3` prints it.
//!
//! Registers are typed (`long` or `string`) and may be assigned many times (not
//! SSA): a local variable is one register. String literals and printf formats
//! are already decoded to bytes.

mod defer;
mod escapes;
pub mod inline;
mod lower;
mod names;
mod print;

pub use defer::defer_calls;
pub use escapes::decode_escapes;
pub use lower::lower;
pub use names::NO_MODULE;

use crate::builtins::Builtin;
use crate::hir::{BinOp, ContextValue, GlobalId, Histogram, PointKind, PrintKind, SortDir, StatOp};
use rstap_grammar::Span;
use rstap_grammar::format::Conversion;
use std::fmt;

macro_rules! entity {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

entity!(
    /// A virtual register of one body.
    Reg,
    "r"
);
entity!(
    /// A basic block of one body.
    BlockId,
    "b"
);
entity!(
    /// A function, the same index as in the HIR.
    FuncId,
    "fn"
);
entity!(
    /// An iteration in progress (`foreach`) within one body.
    IterId,
    "it"
);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Long,
    Str,
}

/// Where a handler runs (DESIGN.md stage 3).
pub use crate::hir::Context;

#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub globals: Vec<Global>,
    pub functions: Vec<Function>,
    pub probes: Vec<Probe>,
    /// The globals shown at the end of the session because the script never
    /// reads them (see [`crate::hir::Program::unread`]).
    pub unread: Vec<GlobalId>,
}

impl Program {
    /// Every instruction of every kernel-context handler.
    pub fn kernel_insts(&self) -> impl Iterator<Item = &Inst> {
        self.probes
            .iter()
            .filter(|p| p.context == Context::Kernel)
            .flat_map(|p| p.body.blocks.iter().flat_map(|b| &b.insts))
    }
}

/// What the backends need to know of a global.
#[derive(Clone, Debug, PartialEq)]
pub struct Global {
    pub name: String,
    pub kind: GlobalKind,
    /// Key column types of an array.
    pub keys: Vec<Ty>,
    /// `global a[N]`: the entry limit (else MAXMAPENTRIES).
    pub size: Option<i64>,
    pub wrap: bool,
    pub init: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobalKind {
    /// A long or string scalar, or an array of them (with keys).
    Value(Ty),
    /// A statistics aggregate (or an array of them).
    Stats(StatsSpec),
}

/// What an aggregate keeps besides count, sum, min and max.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSpec {
    /// The histograms the script reads from it.
    pub hists: Vec<Histogram>,
    /// The `shift` of `@variance(s, shift)` (stap applies it as values arrive).
    pub variance_shift: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Long(i64),
    Str(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub name: String,
    pub params: Vec<Reg>,
    /// `None` for a function that returns nothing.
    pub ret: Option<Ty>,
    /// The next overload to run on `next`.
    pub next: Option<FuncId>,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub kind: PointKind,
    /// The point as `-p2` prints it.
    pub name: String,
    /// The point as the script names it, an alias wildcard expanded (`pn()`).
    pub written: String,
    pub context: Context,
    pub body: Body,
    /// The probe point in the script.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Body {
    pub regs: Vec<Ty>,
    /// The first block is the entry.
    pub blocks: Vec<Block>,
    pub iters: usize,
    /// Names of registers that hold script variables, for dumps and messages.
    pub names: Vec<(Reg, String)>,
}

impl Body {
    pub fn ty(&self, r: Reg) -> Ty {
        self.regs[r.index()]
    }

    pub fn block(&self, b: BlockId) -> &Block {
        &self.blocks[b.index()]
    }

    /// Whether control may come back to a block it left: some edge leads to
    /// a block at or before its own (every cycle has one such edge).
    pub fn may_loop(&self) -> bool {
        self.blocks.iter().enumerate().any(|(b, block)| {
            block.term.successors().any(|t| t.index() <= b)
                || block.catch.is_some_and(|(c, _)| c.index() <= b)
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub insts: Vec<Inst>,
    pub term: Term,
    /// Statements of the script this block executes: what MAXACTION counts.
    pub actions: u32,
    /// Where a runtime error in this block goes: a `try`'s catch block, and the
    /// register that receives the message. `None`: the error ends the handler.
    pub catch: Option<(BlockId, Option<Reg>)>,
}

/// A runtime error's location, for `ERROR: ... near <token>`.
pub type At = Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    BitNot,
    /// Logical not: 1 for 0, else 0.
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A piece of a decoded format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FmtPiece {
    Lit(Vec<u8>),
    Conv(Conversion),
    /// A value made when the output is rendered: `func` called on the next
    /// `args` arguments of the print, shown by `conv` (see [`defer`]).
    Call {
        func: FuncId,
        args: usize,
        conv: Conversion,
        /// The call in the script, for a runtime error it raises.
        at: At,
    },
}

/// One print-family call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrintSpec {
    pub kind: PrintKind,
    /// printf family: the format; printd family: one literal piece, the delimiter.
    pub format: Vec<FmtPiece>,
}

/// Where `foreach` gets its entries.
#[derive(Clone, Debug, PartialEq)]
pub enum IterSource {
    Array(GlobalId),
    /// The buckets of a histogram of a stats global (or element).
    Hist {
        global: GlobalId,
        keys: Vec<Reg>,
        hist: Histogram,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Key(usize),
    Value,
    Stat(StatOp),
}

/// One MIR instruction. Its larger parts are boxed, so that it takes 56 bytes
/// instead of 128: a 1,000-statement script lowers to some 18,000.
#[derive(Clone, Debug, PartialEq)]
pub enum Inst {
    Const {
        dst: Reg,
        value: i64,
    },
    Str {
        dst: Reg,
        bytes: Vec<u8>,
    },
    Move {
        dst: Reg,
        src: Reg,
    },
    Unary {
        dst: Reg,
        op: UnOp,
        src: Reg,
    },
    /// Arithmetic, bitwise and shift operators on longs. Division and modulo by
    /// zero raise `division by 0` at `at`.
    Binary {
        dst: Reg,
        op: BinOp,
        a: Reg,
        b: Reg,
        at: At,
    },
    Compare {
        dst: Reg,
        op: CmpOp,
        a: Reg,
        b: Reg,
    },
    /// strcmp semantics.
    StrCompare {
        dst: Reg,
        op: CmpOp,
        a: Reg,
        b: Reg,
    },
    Concat {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    /// `s =~ "re"`: 1 when it matches (0 with `negated`).
    Regex {
        dst: Reg,
        src: Reg,
        pattern: String,
        negated: bool,
    },
    ReadGlobal {
        dst: Reg,
        global: GlobalId,
    },
    WriteGlobal {
        global: GlobalId,
        src: Reg,
    },
    /// An element's value, 0 or "" when absent.
    MapRead {
        dst: Reg,
        global: GlobalId,
        keys: Vec<Reg>,
    },
    /// Creates or replaces an element; a full array raises its overflow error.
    MapWrite {
        global: GlobalId,
        keys: Vec<Reg>,
        src: Reg,
        at: At,
    },
    /// `[k, *] in a`.
    MapContains {
        dst: Reg,
        global: GlobalId,
        keys: Vec<Option<Reg>>,
    },
    /// `delete a[k, *]`.
    MapDelete {
        global: GlobalId,
        keys: Vec<Option<Reg>>,
    },
    /// `delete g`: an array emptied, a scalar zeroed, an aggregate reset.
    Clear {
        global: GlobalId,
    },
    /// `g <<< v` / `g[k] <<< v`.
    AggAdd {
        global: GlobalId,
        keys: Vec<Reg>,
        value: Reg,
        at: At,
    },
    /// `@count(g[k])` ...; an empty aggregate raises `empty aggregate` (except @count).
    AggRead {
        dst: Reg,
        global: GlobalId,
        keys: Vec<Reg>,
        op: StatOp,
        shift: Option<Reg>,
        at: At,
    },
    /// `@hist_log(g[k])[bucket]`: the count in one bucket.
    HistBucket {
        dst: Reg,
        global: GlobalId,
        keys: Vec<Reg>,
        hist: Box<Histogram>,
        bucket: Reg,
    },
    Call {
        dst: Option<Reg>,
        func: FuncId,
        args: Vec<Reg>,
        at: At,
    },
    Builtin {
        dst: Option<Reg>,
        func: Builtin,
        args: Vec<Reg>,
        at: At,
    },
    Context {
        dst: Reg,
        value: ContextValue,
    },
    /// `size` bytes at `addr`; a fault raises a read-fault error.
    Load {
        dst: Reg,
        addr: Reg,
        size: u8,
        signed: bool,
        user: bool,
        at: At,
    },
    LoadStr {
        dst: Reg,
        addr: Reg,
        len: u32,
        user: bool,
        at: At,
    },
    /// Print (to the output) or format (into `dst`, for `sprint*`).
    Print {
        dst: Option<Reg>,
        spec: Box<PrintSpec>,
        args: Vec<Reg>,
    },
    /// `print(@hist_log(g[k]))`.
    PrintHist {
        global: GlobalId,
        keys: Vec<Reg>,
        hist: Box<Histogram>,
        at: At,
    },
    /// Starts `foreach`: takes the entries (sorted, limited) to walk.
    IterStart {
        iter: IterId,
        source: Box<IterSource>,
        sort: Option<Box<(SortKey, SortDir)>>,
        limit: Option<Reg>,
        /// `in a[k, *]`: only entries whose keys match.
        slice: Option<Vec<Option<Reg>>>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    Jump(BlockId),
    Branch {
        cond: Reg,
        then: BlockId,
        otherwise: BlockId,
    },
    /// The end of a probe handler, or a function's return (`None` falls off the
    /// end: 0 or "").
    Return(Option<Reg>),
    /// `next`: ends the probe handler, or passes a function's call to its next
    /// overload.
    Next,
    /// Takes the next entry of `iter` into `keys` and `value` and goes to `body`,
    /// or goes to `done` when there is none.
    IterNext {
        iter: IterId,
        keys: Vec<Option<Reg>>,
        value: Option<Reg>,
        body: BlockId,
        done: BlockId,
    },
}

impl Inst {
    /// The register the instruction writes, if any (each writes at most one).
    pub fn def(&self) -> Option<Reg> {
        match self {
            Inst::Const { dst, .. }
            | Inst::Str { dst, .. }
            | Inst::Context { dst, .. }
            | Inst::Move { dst, .. }
            | Inst::Unary { dst, .. }
            | Inst::Binary { dst, .. }
            | Inst::Compare { dst, .. }
            | Inst::StrCompare { dst, .. }
            | Inst::Concat { dst, .. }
            | Inst::Regex { dst, .. }
            | Inst::ReadGlobal { dst, .. }
            | Inst::MapRead { dst, .. }
            | Inst::MapContains { dst, .. }
            | Inst::AggRead { dst, .. }
            | Inst::HistBucket { dst, .. }
            | Inst::Load { dst, .. }
            | Inst::LoadStr { dst, .. } => Some(*dst),
            Inst::Call { dst, .. } | Inst::Builtin { dst, .. } | Inst::Print { dst, .. } => *dst,
            Inst::WriteGlobal { .. }
            | Inst::MapWrite { .. }
            | Inst::MapDelete { .. }
            | Inst::Clear { .. }
            | Inst::AggAdd { .. }
            | Inst::PrintHist { .. }
            | Inst::IterStart { .. } => None,
        }
    }

    /// The registers the instruction reads.
    pub fn uses(&self) -> Vec<Reg> {
        match self {
            Inst::Const { .. }
            | Inst::Str { .. }
            | Inst::Context { .. }
            | Inst::Clear { .. }
            | Inst::ReadGlobal { .. } => Vec::new(),
            Inst::Move { src, .. } | Inst::Unary { src, .. } | Inst::Regex { src, .. } => {
                vec![*src]
            }
            Inst::Binary { a, b, .. }
            | Inst::Compare { a, b, .. }
            | Inst::StrCompare { a, b, .. }
            | Inst::Concat { a, b, .. } => vec![*a, *b],
            Inst::WriteGlobal { src, .. } => vec![*src],
            Inst::MapRead { keys, .. } | Inst::PrintHist { keys, .. } => keys.clone(),
            Inst::MapWrite { keys, src, .. } => keys.iter().chain([src]).copied().collect(),
            Inst::MapContains { keys, .. } | Inst::MapDelete { keys, .. } => {
                keys.iter().flatten().copied().collect()
            }
            Inst::AggAdd { keys, value, .. } => keys.iter().chain([value]).copied().collect(),
            Inst::AggRead { keys, shift, .. } => keys.iter().chain(shift).copied().collect(),
            Inst::HistBucket { keys, bucket, .. } => keys.iter().chain([bucket]).copied().collect(),
            Inst::Call { args, .. } | Inst::Builtin { args, .. } | Inst::Print { args, .. } => {
                args.clone()
            }
            Inst::Load { addr, .. } | Inst::LoadStr { addr, .. } => vec![*addr],
            Inst::IterStart { limit, slice, .. } => limit
                .iter()
                .copied()
                .chain(slice.iter().flatten().flatten().copied())
                .collect(),
        }
    }
}

impl Term {
    /// The blocks control may go to next.
    pub fn successors(&self) -> impl Iterator<Item = BlockId> {
        let (a, b) = match self {
            Term::Jump(b) => (Some(*b), None),
            Term::Branch {
                then, otherwise, ..
            } => (Some(*then), Some(*otherwise)),
            Term::IterNext { body, done, .. } => (Some(*body), Some(*done)),
            Term::Return(_) | Term::Next => (None, None),
        };
        a.into_iter().chain(b)
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        print::program(self, f)
    }
}
