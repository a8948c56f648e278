//! The typed high-level IR: a script after elaboration. Every name is resolved to
//! an entity ID, every probe point to a concrete attach point of this kernel, every
//! alias expanded, every tapset function the script uses linked in, and every
//! expression carries its type. Built from the AST by `check`; the AST is never
//! mutated.

use crate::kernel::TracepointId;
use rstap_grammar::Span;
pub use rstap_grammar::ast::{
    AssignOp, BinOp, CrementOp, Histogram, PrintKind, SortDir, StatOp, UnaryOp,
};
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
    /// A global variable or array, an index into [`Program::globals`].
    GlobalId,
    "g"
);
entity!(
    /// A script function, an index into [`Program::functions`].
    FunctionId,
    "fn"
);
entity!(
    /// A local variable of one probe or function, an index into its `locals`.
    LocalId,
    "l"
);

/// A value's type. `Unknown` is a type inference has not decided yet; after
/// checking it remains only as the return type of a function that returns nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Unknown,
    Long,
    String,
    Stats,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Unknown => "unknown",
            Type::Long => "long",
            Type::String => "string",
            Type::Stats => "stats",
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub globals: Vec<Global>,
    pub functions: Vec<Function>,
    pub probes: Vec<Probe>,
    /// Every built-in the program calls, each once, in first-call order.
    pub builtins: Vec<crate::builtins::Builtin>,
    /// The script's globals that are written and never read, which stap shows
    /// at the end of the session (by synthesized `end` probes, unless
    /// [`crate::check::Options::structured_globals`] leaves that to the runtime).
    pub unread: Vec<GlobalId>,
}

impl Program {
    pub fn global(&self, id: GlobalId) -> &Global {
        &self.globals[id.index()]
    }

    pub fn function(&self, id: FunctionId) -> &Function {
        &self.functions[id.index()]
    }
}

/// A global literal initializer (stap allows only literals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Init {
    Long(i64),
    /// The literal's stored spelling (C escapes as written).
    Str(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Global {
    pub name: String,
    /// The value type: of the scalar, or of each array element.
    pub ty: Type,
    /// `Some` for an array: the type of each key column.
    pub keys: Option<Vec<Type>>,
    /// `global a[N]`: the maximum number of entries.
    pub size: Option<i64>,
    /// `global a%`: when full, the oldest entry is replaced.
    pub wrap: bool,
    pub init: Option<Init>,
    /// Declared in a tapset rather than the user's script.
    pub tapset: bool,
    pub span: Span,
}

impl Global {
    pub fn is_array(&self) -> bool {
        self.keys.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    pub name: String,
    pub ty: Type,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub name: String,
    /// The first `params.len()` entries of `locals` are the parameters.
    pub params: usize,
    pub locals: Vec<Local>,
    pub ret: Type,
    pub body: Block,
    /// `function f:long () :PRIO`; the next overload of the same arity to run
    /// when this one executes `next`.
    pub next: Option<FunctionId>,
    pub tapset: bool,
    pub span: Span,
}

impl Function {
    pub fn params(&self) -> &[Local] {
        &self.locals[..self.params]
    }
}

/// Where a probe's handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// In the kernel, as a BPF program.
    Kernel,
    /// In rstap's user-space engine.
    User,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerUnit {
    Jiffies,
    Hz,
    /// Intervals in nanoseconds.
    Ns,
}

/// A concrete attach point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PointKind {
    Begin(i64),
    End(i64),
    Error(i64),
    Never,
    Timer {
        unit: TimerUnit,
        /// In `unit`s (nanoseconds for s/ms/us/ns).
        interval: i64,
        randomize: i64,
    },
    /// Every CPU's profiling tick.
    Profile,
    Tracepoint(TracepointId),
    /// `kernel.function`, `kprobe.function`, `module().function`.
    Kprobe {
        function: String,
        module: Option<String>,
        ret: bool,
    },
    /// `process("PATH").function("NAME")` (or `.statement(ADDR)`).
    Uprobe {
        binary: String,
        symbol: String,
        offset: u64,
        ret: bool,
    },
    /// `process("PATH").mark("NAME")`.
    Usdt {
        binary: String,
        provider: String,
        name: String,
        offset: u64,
        semaphore: u64,
    },
    /// `process.begin|end`, optionally for one binary.
    Process {
        binary: Option<String>,
        end: bool,
    },
    Perf {
        ty: u32,
        config: u64,
        /// Events per sample, or `None` with `hz`.
        sample: Option<u64>,
        hz: Option<u64>,
    },
}

impl PointKind {
    pub fn context(&self) -> Context {
        match self {
            PointKind::Begin(_)
            | PointKind::End(_)
            | PointKind::Error(_)
            | PointKind::Never
            | PointKind::Timer { .. } => Context::User,
            _ => Context::Kernel,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub kind: PointKind,
    /// The point as stap prints it after resolution (`kernel.trace("sched:sched_switch")`).
    pub name: String,
    /// How the point was reached, as `-p2` prints it: the user's points, and any
    /// aliases in between (`begin <- oneshot += begin <- oneshot`).
    pub origin: String,
    /// The point as the script names it, an alias wildcard expanded: `pn()`.
    pub written: String,
    /// `PP if (cond)`: the probe runs only while the condition holds.
    pub condition: Option<Expr>,
    pub locals: Vec<Local>,
    /// Stable built-ins the handler calls: each is computed once per run.
    pub cached: Vec<crate::builtins::Builtin>,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Block {
    pub stmts: Vec<Stmt>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    Block(Block),
    Expr(Expr),
    If {
        cond: Expr,
        then: Box<Stmt>,
        otherwise: Option<Box<Stmt>>,
    },
    /// `while` and `for` alike; `step` runs after the body and after `continue`.
    Loop {
        init: Option<Expr>,
        cond: Option<Expr>,
        step: Option<Expr>,
        body: Box<Stmt>,
    },
    Foreach(Box<Foreach>),
    Delete(Delete),
    Next,
    Break,
    Continue,
    Return(Option<Expr>),
    Try {
        body: Block,
        var: Option<LocalId>,
        catch: Block,
    },
}

/// What a sorted `foreach` orders by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    Key(usize),
    Value,
    Stat(StatOp),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Foreach {
    pub array: Iterable,
    pub value: Option<LocalId>,
    /// `None` for a key column whose variable nothing reads.
    pub keys: Vec<Option<LocalId>>,
    /// `in a[*, "x"]`: `None` matches any key.
    pub slice: Option<Vec<Option<Expr>>>,
    pub sort: Option<(SortBy, SortDir)>,
    pub limit: Option<Expr>,
    pub body: Stmt,
}

/// What `foreach` and `in` walk: a global array, or a histogram's buckets.
#[derive(Clone, Debug, PartialEq)]
pub enum Iterable {
    Array(GlobalId),
    Hist(Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Delete {
    /// `delete x` of a scalar: back to 0, "" or an empty aggregate.
    Local(LocalId),
    Global(GlobalId),
    /// `delete a[k, *]`; `None` keys are wildcards.
    Elements {
        array: GlobalId,
        keys: Vec<Option<Expr>>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Type,
    /// The checker's handle on this expression's type, unique within a program;
    /// [`SYNTHESIZED`] for code the checker wrote itself, already typed.
    pub id: u32,
    pub span: Span,
}

/// The `id` of expressions the checker synthesizes (typed when made).
pub const SYNTHESIZED: u32 = u32::MAX;

/// Something that can be assigned to.
#[derive(Clone, Debug, PartialEq)]
pub enum Place {
    Local(LocalId),
    Global(GlobalId),
    Element { array: GlobalId, keys: Vec<Expr> },
}

/// A value the probe's context provides (`$field`, `$return`, `$$vars`...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContextValue {
    /// A tracepoint record field, by its index in the format's field list.
    TracepointField(usize),
    /// `$$name` / `$$system` of a tracepoint, or `$$name`/`$$provider` of a mark.
    Text(String),
    /// `$argN` of a USDT mark (1-based).
    MarkArg(usize),
    /// Argument `n` (0-based) of the probed function, read from its register.
    FunctionArg(usize),
    /// `$return` of a return probe.
    ReturnValue,
    /// A number naming the probed function's running call, the same at its
    /// entry (`entry`) and at its return (what `@entry` values are keyed
    /// by): the stack pointer where the probe sees the registers (past the
    /// return address at the entry, which the return has popped), the
    /// trampoline's frame in an fentry/fexit program.
    CallFrame { entry: bool },
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Num(i64),
    /// The stored spelling of a literal (C escapes as written).
    Str(String),
    Local(LocalId),
    Global(GlobalId),
    Element {
        array: GlobalId,
        keys: Vec<Expr>,
    },
    Call {
        func: FunctionId,
        args: Vec<Expr>,
    },
    Builtin {
        func: crate::builtins::Builtin,
        args: Vec<Expr>,
    },
    Print {
        kind: PrintKind,
        format: Option<String>,
        args: Vec<Expr>,
    },
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Regex {
        expr: Box<Expr>,
        negated: bool,
        pattern: String,
    },
    Assign {
        op: AssignOp,
        place: Box<Place>,
        value: Box<Expr>,
    },
    Crement {
        op: CrementOp,
        post: bool,
        place: Box<Place>,
    },
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    In {
        array: Iterable,
        keys: Vec<Option<Expr>>,
    },
    Stat {
        op: StatOp,
        /// A stats global, or an element of a stats array.
        of: Box<Expr>,
        /// `@variance(s, shift)`.
        shift: Option<Box<Expr>>,
    },
    Hist {
        kind: Histogram,
        of: Box<Expr>,
    },
    /// `@hist_log(s)[i]`: the count in bucket `i` of a histogram.
    HistBucket {
        hist: Box<Expr>,
        bucket: Box<Expr>,
    },
    Context(ContextValue),
    /// `@entry(e)` in a return probe: `e` evaluated at function entry.
    Entry(Box<Expr>),
    /// `size` bytes (1, 2, 4 or 8) at an address, sign-extended when `signed`:
    /// what `$p->field` becomes. A fault is a runtime error.
    Load {
        addr: Box<Expr>,
        size: u8,
        signed: bool,
        /// In the traced process's memory rather than the kernel's.
        user: bool,
    },
    /// The NUL-terminated string of at most `len` bytes at an address (a
    /// `char[N]` member). A fault is a runtime error.
    LoadString {
        addr: Box<Expr>,
        len: u32,
        user: bool,
    },
}

macro_rules! walkers {
    ($block:ident, $stmt:ident, $place:ident, $iterable:ident, $expr:ident $(, $m:tt)?) => {
        /// Calls `f` on every expression in `block`, children before parents.
        pub fn $block(block: & $($m)? Block, f: &mut dyn FnMut(& $($m)? Expr)) {
            for s in & $($m)? block.stmts {
                $stmt(s, f);
            }
        }

        fn $stmt(s: & $($m)? Stmt, f: &mut dyn FnMut(& $($m)? Expr)) {
            match & $($m)? s.kind {
                StmtKind::Block(b) => $block(b, f),
                StmtKind::Expr(e) | StmtKind::Return(Some(e)) => $expr(e, f),
                StmtKind::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    $expr(cond, f);
                    $stmt(then, f);
                    if let Some(o) = otherwise {
                        $stmt(o, f);
                    }
                }
                StmtKind::Loop {
                    init,
                    cond,
                    step,
                    body,
                } => {
                    for e in [init, cond, step].into_iter().flatten() {
                        $expr(e, f);
                    }
                    $stmt(body, f);
                }
                StmtKind::Foreach(fe) => {
                    $iterable(& $($m)? fe.array, f);
                    if let Some(slice) = & $($m)? fe.slice {
                        for e in slice.into_iter().flatten() {
                            $expr(e, f);
                        }
                    }
                    if let Some(l) = & $($m)? fe.limit {
                        $expr(l, f);
                    }
                    $stmt(& $($m)? fe.body, f);
                }
                StmtKind::Delete(Delete::Elements { keys, .. }) => {
                    for e in keys.into_iter().flatten() {
                        $expr(e, f);
                    }
                }
                StmtKind::Try { body, catch, .. } => {
                    $block(body, f);
                    $block(catch, f);
                }
                StmtKind::Delete(_)
                | StmtKind::Return(None)
                | StmtKind::Next
                | StmtKind::Break
                | StmtKind::Continue => {}
            }
        }

        fn $iterable(i: & $($m)? Iterable, f: &mut dyn FnMut(& $($m)? Expr)) {
            if let Iterable::Hist(h) = i {
                $expr(h, f);
            }
        }

        fn $place(p: & $($m)? Place, f: &mut dyn FnMut(& $($m)? Expr)) {
            if let Place::Element { keys, .. } = p {
                for k in keys {
                    $expr(k, f);
                }
            }
        }

        /// Calls `f` on `e` and every expression inside it, children first.
        pub fn $expr(e: & $($m)? Expr, f: &mut dyn FnMut(& $($m)? Expr)) {
            match & $($m)? e.kind {
                ExprKind::Num(_)
                | ExprKind::Str(_)
                | ExprKind::Local(_)
                | ExprKind::Global(_)
                | ExprKind::Context(_) => {}
                ExprKind::Element { keys: args, .. }
                | ExprKind::Call { args, .. }
                | ExprKind::Builtin { args, .. }
                | ExprKind::Print { args, .. } => {
                    for a in args {
                        $expr(a, f);
                    }
                }
                ExprKind::Unary { expr, .. }
                | ExprKind::Regex { expr, .. }
                | ExprKind::Hist { of: expr, .. }
                | ExprKind::Entry(expr)
                | ExprKind::Load { addr: expr, .. }
                | ExprKind::LoadString { addr: expr, .. } => $expr(expr, f),
                ExprKind::Stat { of, shift, .. } => {
                    $expr(of, f);
                    if let Some(s) = shift {
                        $expr(s, f);
                    }
                }
                ExprKind::Binary { left, right, .. }
                | ExprKind::HistBucket {
                    hist: left,
                    bucket: right,
                } => {
                    $expr(left, f);
                    $expr(right, f);
                }
                ExprKind::Assign { place, value, .. } => {
                    $place(place, f);
                    $expr(value, f);
                }
                ExprKind::Crement { place, .. } => $place(place, f),
                ExprKind::Ternary {
                    cond,
                    then,
                    otherwise,
                } => {
                    $expr(cond, f);
                    $expr(then, f);
                    $expr(otherwise, f);
                }
                ExprKind::In { array, keys } => {
                    $iterable(array, f);
                    for k in keys.into_iter().flatten() {
                        $expr(k, f);
                    }
                }
            }
            f(e);
        }
    };
}

walkers!(
    for_each_expr,
    stmt_exprs,
    place_exprs,
    iterable_exprs,
    expr_ref
);
walkers!(
    for_each_expr_mut,
    stmt_exprs_mut,
    place_exprs_mut,
    iterable_exprs_mut,
    expr_mut,
    mut
);
