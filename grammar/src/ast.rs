//! The abstract syntax tree. Every node carries a [`Span`]; nothing here is ever
//! mutated by later passes (the compiler builds its own HIR).
//!
//! The tree keeps what `stap -p1` prints (a `while` stays a `while`; the printer
//! writes it as `for`), and literals keep their source spelling where stap does.

use crate::span::{FileId, Span, Spanned};

pub type Ident = Spanned<String>;

/// One parsed file: its items in source order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub file: FileId,
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
/// Items are boxed: the parser moves values of its largest type on every
/// reduction, so no node it handles should be large.
pub enum Item {
    Global(Box<Global>),
    Probe(Box<Probe>),
    Alias(Box<Alias>),
    Function(Box<Function>),
    /// Top-level `%{ ... %}`.
    Embedded(Spanned<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Literal {
    Num(i64),
    /// The source spelling between the quotes, escapes kept.
    Str(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Global {
    pub name: Ident,
    pub private: bool,
    /// `global a%`: the oldest element is replaced when full.
    pub wrap: bool,
    /// `global a[N]`.
    pub size: Option<i64>,
    pub init: Option<Spanned<Literal>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub points: Vec<ProbePoint>,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasKind {
    /// `probe name = points { prologue }`
    Prologue,
    /// `probe name += points { epilogue }`
    Epilogue,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    /// `probe a = b = pp` names the same alias twice.
    pub names: Vec<ProbePoint>,
    pub kind: AliasKind,
    pub points: Vec<ProbePoint>,
    pub body: Block,
    /// The second block of `probe name = points { prologue }, { epilogue }`.
    pub epilogue: Option<Block>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbePoint {
    pub components: Vec<Component>,
    /// `?`: no error when nothing matches.
    pub optional: bool,
    /// `!`: optional, and later alternatives are skipped when this one resolves.
    pub sufficient: bool,
    /// `PP if (cond)`: an arming condition (a brace expansion copies it to
    /// every point it makes).
    pub condition: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    /// The name as written, wildcards included (`sys_*`, `**`).
    pub name: String,
    pub arg: Option<Spanned<Literal>>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Long,
    String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: Ident,
    pub ty: Option<Spanned<Type>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub name: Ident,
    pub private: bool,
    pub ret: Option<Spanned<Type>>,
    pub params: Vec<Param>,
    /// `:PRIO` for runtime overloading.
    pub priority: Option<Spanned<i64>>,
    pub body: FunctionBody,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FunctionBody {
    Script(Block),
    Embedded(Spanned<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

pub type Stmt = Spanned<StmtKind>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StmtKind {
    Block(Block),
    /// A bare `;`.
    Null,
    Expr(Expr),
    If {
        cond: Expr,
        then: Box<Stmt>,
        otherwise: Option<Box<Stmt>>,
    },
    While {
        cond: Expr,
        body: Box<Stmt>,
    },
    For {
        init: Option<Box<Expr>>,
        cond: Option<Box<Expr>>,
        step: Option<Box<Expr>>,
        body: Box<Stmt>,
    },
    Foreach(Box<Foreach>),
    Delete(Expr),
    Next,
    Break,
    Continue,
    Return(Option<Expr>),
    Try(Box<Try>),
}

/// `try { body } catch (var) { catch }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Try {
    pub body: Block,
    pub var: Option<Ident>,
    pub catch: Block,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortDir {
    Ascending,
    Descending,
}

/// What a sorted `foreach` orders by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    /// The key column with this index.
    Key(usize),
    /// The element value (`a-`, or a sort mark on the value variable).
    Value,
    /// A statistic of an aggregate array (`a @sum-`).
    Aggregate(StatOp),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub by: SortBy,
    pub dir: SortDir,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Foreach {
    /// `v` in `foreach (v = [k] in a)`.
    pub value: Option<Ident>,
    pub keys: Vec<Ident>,
    /// The keys were written in brackets.
    pub bracketed: bool,
    pub array: Indexable,
    /// `in a[*, "x"]`: `None` is a `*` wildcard.
    pub slice: Option<Vec<Option<Expr>>>,
    pub sort: Option<Sort>,
    pub limit: Option<Expr>,
    pub body: Stmt,
}

/// What `in`, `foreach` and indexing can name: an array, or a histogram's buckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Indexable {
    Array(Ident),
    Hist(Box<Expr>),
}

pub type Expr = Spanned<ExprKind>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Plus,
    Not,
    BitNot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Shl,
    Shr,
    UShr,
    BitAnd,
    BitOr,
    BitXor,
    And,
    Or,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    Assign,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Shl,
    Shr,
    BitAnd,
    BitXor,
    BitOr,
    Concat,
    /// `<<<`: add a value to a statistics aggregate.
    Aggregate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrementOp {
    Incr,
    Decr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatOp {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    Variance,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrintKind {
    Print,
    Println,
    Printf,
    Printd,
    Printdln,
    Sprint,
    Sprintln,
    Sprintf,
    Sprintd,
    Sprintdln,
}

impl PrintKind {
    /// `sprint` and its kin: the output is the call's value, not printed.
    pub fn returns_string(self) -> bool {
        matches!(
            self,
            PrintKind::Sprint
                | PrintKind::Sprintln
                | PrintKind::Sprintf
                | PrintKind::Sprintd
                | PrintKind::Sprintdln
        )
    }
}

/// One step of a target-variable chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Member {
    /// `->name` (stap uses `->` for both `.` and `->`).
    Field(String),
    /// `[expr]`
    Index(Box<Expr>),
}

/// `$v->a[2]$$`, `@cast(p, "t")->f`, `@var("x")`: a value read through type info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetChain {
    pub members: Vec<Member>,
    /// 1 for `$`, 2 for `$$` (pretty printing).
    pub pretty: u8,
    /// `&$v->a`: the address rather than the value.
    pub addr_of: bool,
}

impl TargetChain {
    pub fn empty() -> TargetChain {
        TargetChain {
            members: Vec::new(),
            pretty: 0,
            addr_of: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Histogram {
    Log,
    /// Bucket parameters are number literals in stap.
    Linear {
        start: i64,
        stop: i64,
        step: i64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprKind {
    Num(i64),
    Str(String),
    /// A local or global variable.
    Var(String),
    /// `a[i, j]`; `None` is a `*` wildcard (in `delete` and slices).
    Index {
        base: Indexable,
        indexes: Vec<Option<Expr>>,
    },
    Call {
        name: Ident,
        args: Vec<Expr>,
    },
    Print(Box<Print>),
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    /// `&x` on something that is not a target variable (rejected at elaboration).
    AddrOf(Box<Expr>),
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Regex {
        expr: Box<Expr>,
        negated: bool,
        pattern: Spanned<String>,
    },
    Assign {
        op: AssignOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    /// `k in a`, `[k1, *] in a`.
    In {
        keys: Vec<Option<Expr>>,
        array: Indexable,
    },
    Crement {
        op: CrementOp,
        post: bool,
        expr: Box<Expr>,
    },
    Stat {
        op: StatOp,
        expr: Box<Expr>,
        shift: Option<Box<Expr>>,
    },
    Hist {
        kind: Histogram,
        expr: Box<Expr>,
    },
    /// `$name` (`$$parms`, `$return`, ...) with its member chain.
    Target {
        name: String,
        chain: TargetChain,
    },
    /// Member access on any other value (`f(x)->a`, `a[1][2]`): stap's autocast.
    Chain {
        base: Box<Expr>,
        chain: TargetChain,
    },
    Cast {
        expr: Box<Expr>,
        ty: Spanned<String>,
        module: Option<Box<Spanned<String>>>,
        chain: TargetChain,
    },
    AtVar {
        name: Spanned<String>,
        module: Option<Box<Spanned<String>>>,
        chain: TargetChain,
    },
    Entry(Box<Expr>),
    Defined(Box<Expr>),
    Probewrite(Box<Expr>),
    /// `@kregister(n)` / `@uregister(n)`.
    Register {
        user: bool,
        number: Box<Expr>,
    },
    /// `@kderef(size, addr)` / `@uderef(size, addr)`.
    Deref {
        user: bool,
        size: Box<Expr>,
        addr: Box<Expr>,
    },
    /// `@const("NAME")`: a C constant (guru mode).
    Const(Spanned<String>),
    Perf(Spanned<String>),
    Embedded(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Print {
    pub kind: PrintKind,
    /// The format (printf family) or delimiter (printd family), as written.
    pub format: Option<Spanned<String>>,
    pub args: Vec<Expr>,
}
