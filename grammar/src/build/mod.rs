//! Semantic actions of the grammar: build AST nodes, with the checks stap makes at
//! parse time (number ranges, print formats, @-operator arity, sort directives).

use crate::ast::*;
use crate::diag::{Code, Diag};
use crate::preprocess::parse_number;
use crate::span::{Span, Spanned};
use crate::token::Tok;
use lalrpop_util::ParseError;

pub type PResult<T> = Result<T, ParseError<usize, Tok, Diag>>;

/// The parser moves every value it builds on its stack, as a variant of one
/// enum as large as the largest: expressions and statements travel boxed, as
/// does every other value larger than a block, and are unboxed where they land.
pub type BExpr = Box<Expr>;
pub type BStmt = Box<Stmt>;

pub fn unbox<T>(v: Vec<Box<T>>) -> Vec<T> {
    v.into_iter().map(|b| *b).collect()
}

/// Index lists (`*` is `None`), unboxed.
pub fn unbox_keys(v: Vec<Option<BExpr>>) -> Vec<Option<Expr>> {
    v.into_iter().map(|k| k.map(|e| *e)).collect()
}

/// `next`, `break` or `continue`.
#[derive(Clone, Copy, Debug)]
pub enum JumpWord {
    Next,
    Break,
    Continue,
}

impl JumpWord {
    pub fn kind(self) -> StmtKind {
        match self {
            JumpWord::Next => StmtKind::Next,
            JumpWord::Break => StmtKind::Break,
            JumpWord::Continue => StmtKind::Continue,
        }
    }
}

/// What the actions need: the tokens' spans (locations are token indices).
#[derive(Debug)]
pub struct Ctx<'a> {
    pub spans: &'a [Span],
}

/// A foreach variable and the sort mark written after it.
pub type SortedIdent = (Ident, Option<Spanned<SortDir>>);

/// `foreach (...)` header pieces, before sort directives are checked.
#[derive(Debug)]
pub struct ForeachHead {
    pub value: Option<SortedIdent>,
    /// The key variables, and whether they were written in brackets.
    pub keys: (Vec<SortedIdent>, bool),
    pub array: Indexable,
    pub slice: Option<Vec<Option<Expr>>>,
    pub agg: Option<(Spanned<String>, Spanned<SortDir>)>,
    pub array_sort: Option<Spanned<SortDir>>,
    pub limit: Option<Expr>,
}

/// One `->name` or `[index]` after a value, as parsed.
#[derive(Debug)]
pub enum MemberTok {
    Field(String, Span),
    Index(BExpr),
}

pub fn push<T>(mut v: Vec<T>, t: T) -> Vec<T> {
    v.push(t);
    v
}

pub fn prepend<T>(first: T, rest: Vec<T>) -> Vec<T> {
    let mut v = Vec::with_capacity(rest.len() + 1);
    v.push(first);
    v.extend(rest);
    v
}

fn user<T>(e: Diag) -> PResult<T> {
    Err(ParseError::User { error: e })
}

mod at_ops;
mod points;
mod print;

pub use at_ops::stat_op;

impl Ctx<'_> {
    /// The span from token `l` up to (not including) token `r`.
    pub fn span(&self, l: usize, r: usize) -> Span {
        let Some(last) = self.spans.last() else {
            return Span::default();
        };
        let first = self.spans.get(l).copied().unwrap_or(Span {
            start: last.end,
            ..*last
        });
        if r <= l {
            return Span {
                end: first.start,
                ..first
            };
        }
        // A node built partly from a macro body in another file spans what it
        // covers in its first token's file.
        let end = self.spans[l.min(self.spans.len())..r.min(self.spans.len())]
            .iter()
            .rev()
            .find(|s| s.file == first.file)
            .copied()
            .unwrap_or(first);
        first.to(end)
    }

    fn err(
        &self,
        code: Code,
        l: usize,
        r: usize,
        msg: impl Into<String>,
        label: impl Into<String>,
    ) -> Diag {
        Diag::new(code, self.span(l, r), msg).with_label(label)
    }

    pub fn global(
        &self,
        name: Ident,
        wrap: bool,
        size: Option<i64>,
        init: Option<Spanned<Literal>>,
        l: usize,
        r: usize,
    ) -> PResult<Box<Global>> {
        if size.is_some_and(|n| n <= 0) {
            return user(self.err(
                Code::E0140,
                l,
                r,
                "array size out of range",
                "an array holds at least one element",
            ));
        }
        if let (Some(_), Some(init)) = (size, &init) {
            return user(
                Diag::new(
                    Code::E0140,
                    init.span,
                    "only scalar globals can be initialized",
                )
                .with_label("an array global cannot have an initializer"),
            );
        }
        Ok(Box::new(Global {
            name,
            private: false,
            wrap,
            size,
            init,
            span: self.span(l, r),
        }))
    }

    pub fn number(&self, text: &str, l: usize, r: usize) -> PResult<i64> {
        match parse_number(text) {
            Some(n) => Ok(n),
            None => user(self.err(
                Code::E0104,
                l,
                r,
                "number invalid or out of range",
                "numbers are 64-bit: decimal, 0x hex or 0 octal",
            )),
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per piece of the declaration"
    )]
    pub fn function(
        &self,
        name: Ident,
        ret: Option<Spanned<Type>>,
        params: Vec<Param>,
        priority: Option<Spanned<i64>>,
        body: FunctionBody,
        l: usize,
        r: usize,
    ) -> PResult<Box<Function>> {
        if let Some(p) = &priority
            && p.node <= 0
        {
            return user(
                Diag::new(Code::E0140, p.span, "specified priority must be > 0")
                    .with_label("overload priorities start at 1"),
            );
        }
        for (k, p) in params.iter().enumerate() {
            if let Some(first) = params[..k].iter().find(|q| q.name.node == p.name.node) {
                return user(
                    Diag::new(Code::E0140, p.name.span, "duplicate parameter names")
                        .with_label(format!("`{}` is already a parameter", p.name.node))
                        .with_secondary(first.name.span, "first declared here"),
                );
            }
        }
        Ok(Box::new(Function {
            name,
            private: false,
            ret,
            params,
            priority,
            body,
            span: self.span(l, r),
        }))
    }

    pub fn foreach(&self, h: Box<ForeachHead>, body: Stmt, l: usize, r: usize) -> PResult<BStmt> {
        // Every sort mark found in the header, in source order; only one is allowed.
        let (keys, bracketed) = h.keys;
        let mut marks: Vec<(SortBy, Spanned<SortDir>)> = Vec::new();
        let mut names = Vec::with_capacity(keys.len());
        for (k, (name, dir)) in keys.into_iter().enumerate() {
            marks.extend(dir.map(|d| (SortBy::Key(k), d)));
            names.push(name);
        }
        let value = h.value.map(|(v, dir)| {
            marks.extend(dir.map(|d| (SortBy::Value, d)));
            v
        });
        if let Some((op, d)) = h.agg {
            let Some(stat) = stat_op(&op.node) else {
                return user(
                    Diag::new(
                        Code::E0140,
                        op.span,
                        format!("`{}` is not an aggregate operator", op.node),
                    )
                    .with_label("sort by @count, @sum, @min, @max, @avg or @variance"),
                );
            };
            marks.push((SortBy::Aggregate(stat), d));
        } else if let Some(d) = h.array_sort {
            marks.push((SortBy::Value, d));
        }
        if let [(_, first), (_, second), ..] = marks.as_slice() {
            return user(
                Diag::new(Code::E0140, second.span, "multiple sort directives")
                    .with_label("a foreach can sort by one thing only")
                    .with_secondary(first.span, "first sort directive"),
            );
        }
        let sort = marks.first().map(|(by, d)| {
            (
                Sort {
                    by: *by,
                    dir: d.node,
                },
                d.span,
            )
        });
        let f = Foreach {
            value,
            keys: names,
            bracketed,
            array: h.array,
            slice: h.slice,
            sort: sort.map(|(s, _)| s),
            limit: h.limit,
            body,
        };
        Ok(Box::new(Spanned::new(
            StmtKind::Foreach(Box::new(f)),
            self.span(l, r),
        )))
    }

    pub fn hist_indexable(
        &self,
        word: String,
        args: Vec<Option<Expr>>,
        l: usize,
        r: usize,
    ) -> PResult<Indexable> {
        let e = self.at_word(word, Some(args), None, l, r)?;
        match e.node {
            ExprKind::Hist { .. } => Ok(Indexable::Hist(e)),
            _ => user(self.err(
                Code::E0120,
                l,
                r,
                "expected an array or a histogram",
                "only arrays and @hist_log/@hist_linear can be iterated or tested with `in`",
            )),
        }
    }

    pub fn assign(&self, op: AssignOp, a: BExpr, b: BExpr, l: usize, r: usize) -> BExpr {
        Box::new(Spanned::new(
            ExprKind::Assign {
                op,
                left: a,
                right: b,
            },
            self.span(l, r),
        ))
    }

    pub fn ternary(&self, c: BExpr, a: BExpr, b: BExpr, l: usize, r: usize) -> BExpr {
        Box::new(Spanned::new(
            ExprKind::Ternary {
                cond: c,
                then: a,
                otherwise: b,
            },
            self.span(l, r),
        ))
    }

    pub fn binary(&self, op: BinOp, a: BExpr, b: BExpr, l: usize, r: usize) -> BExpr {
        Box::new(Spanned::new(
            ExprKind::Binary {
                op,
                left: a,
                right: b,
            },
            self.span(l, r),
        ))
    }

    pub fn unary(&self, op: UnaryOp, e: BExpr, l: usize, r: usize) -> BExpr {
        Box::new(Spanned::new(
            ExprKind::Unary { op, expr: e },
            self.span(l, r),
        ))
    }

    pub fn crement(&self, op: CrementOp, post: bool, e: BExpr, l: usize, r: usize) -> BExpr {
        Box::new(Spanned::new(
            ExprKind::Crement { op, post, expr: e },
            self.span(l, r),
        ))
    }

    pub fn regex(
        &self,
        e: BExpr,
        negated: bool,
        pattern: Spanned<String>,
        l: usize,
        r: usize,
    ) -> BExpr {
        Box::new(Spanned::new(
            ExprKind::Regex {
                expr: e,
                negated,
                pattern,
            },
            self.span(l, r),
        ))
    }

    pub fn in_expr(&self, keys: Vec<Option<Expr>>, array: Indexable, l: usize, r: usize) -> BExpr {
        Box::new(Spanned::new(ExprKind::In { keys, array }, self.span(l, r)))
    }

    /// Members after a value that is not a target variable: stap's autocast.
    pub fn chain(
        &self,
        base: BExpr,
        members: Vec<MemberTok>,
        l: usize,
        r: usize,
    ) -> PResult<BExpr> {
        let chain = self.members(members, 0)?;
        Ok(Box::new(Spanned::new(
            ExprKind::Chain { base, chain },
            self.span(l, r),
        )))
    }

    fn members(&self, members: Vec<MemberTok>, mut pretty: u8) -> PResult<TargetChain> {
        let n = members.len();
        let mut out = Vec::with_capacity(n);
        for (k, m) in members.into_iter().enumerate() {
            match m {
                MemberTok::Field(name, span) => {
                    let base = name.trim_end_matches('$');
                    let dollars = name.len() - base.len();
                    if dollars > 0 && (k + 1 != n || dollars > 2 || pretty > 0) {
                        return user(
                            Diag::new(Code::E0120, span, "unexpected `$` in a member chain")
                                .with_label(
                                    "`$` and `$$` (pretty printing) may only end the chain",
                                ),
                        );
                    }
                    if dollars > 0 {
                        pretty = u8::try_from(dollars).unwrap_or(2);
                    }
                    if !base.is_empty() {
                        out.push(Member::Field(base.to_string()));
                    }
                }
                MemberTok::Index(e) => {
                    if pretty > 0 {
                        return user(
                            Diag::new(
                                Code::E0120,
                                e.span,
                                "member access after a pretty-print `$`",
                            )
                            .with_label("`$` and `$$` must end the chain"),
                        );
                    }
                    out.push(Member::Index(e));
                }
            }
        }
        Ok(TargetChain {
            members: out,
            pretty,
            addr_of: false,
        })
    }

    pub fn addr_of(&self, mut e: BExpr, l: usize, r: usize) -> PResult<BExpr> {
        match &mut e.node {
            ExprKind::Target { chain, .. }
            | ExprKind::Cast { chain, .. }
            | ExprKind::AtVar { chain, .. } => {
                chain.addr_of = true;
                e.span = self.span(l, r);
                Ok(e)
            }
            _ => Ok(Box::new(Spanned::new(ExprKind::AddrOf(e), self.span(l, r)))),
        }
    }

    pub fn index(
        &self,
        name: Ident,
        indexes: Vec<Option<Expr>>,
        members: Option<Vec<MemberTok>>,
        l: usize,
        r: usize,
    ) -> PResult<BExpr> {
        let e = Box::new(Spanned::new(
            ExprKind::Index {
                base: Indexable::Array(name),
                indexes,
            },
            self.span(l, r),
        ));
        self.maybe_chain(e, members, l, r)
    }

    fn maybe_chain(
        &self,
        e: BExpr,
        members: Option<Vec<MemberTok>>,
        l: usize,
        r: usize,
    ) -> PResult<BExpr> {
        match members {
            Some(m) => self.chain(e, m, l, r),
            None => Ok(e),
        }
    }

    pub fn target(
        &self,
        t: String,
        members: Option<Vec<MemberTok>>,
        l: usize,
        r: usize,
    ) -> PResult<BExpr> {
        let core = t.trim_start_matches('$');
        let leading = t.len() - core.len();
        let name_core = core.trim_end_matches('$');
        let trailing = core.len() - name_core.len();
        let (name, pretty) = if name_core.is_empty() {
            (t.clone(), 0)
        } else {
            (
                t[..leading + name_core.len()].to_string(),
                u8::try_from(trailing).unwrap_or(2),
            )
        };
        if pretty > 2 {
            return user(self.err(
                Code::E0120,
                l,
                r,
                "too many `$` after a target variable",
                "use `$` or `$$` for pretty printing",
            ));
        }
        let chain = match members {
            Some(m) if pretty > 0 => {
                return user(
                    Diag::new(
                        Code::E0120,
                        self.span(l + 1, r),
                        "member access after a pretty-print `$`",
                    )
                    .with_label("`$` and `$$` must end the chain")
                    .with_note(format!("{} members follow here", m.len())),
                );
            }
            Some(m) => self.members(m, 0)?,
            None => TargetChain {
                pretty,
                ..TargetChain::empty()
            },
        };
        Ok(Box::new(Spanned::new(
            ExprKind::Target { name, chain },
            self.span(l, r),
        )))
    }
}
