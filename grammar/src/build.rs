//! Semantic actions of the grammar: build AST nodes, with the checks stap makes at
//! parse time (number ranges, print formats, @-operator arity, sort directives).

use crate::ast::*;
use crate::diag::{Code, SyntaxError};
use crate::format::parse_format;
use crate::lexer::Token;
use crate::preprocess::parse_number;
use crate::span::{Span, Spanned};
use crate::token::Tok;
use lalrpop_util::ParseError;

pub type PResult<T> = Result<T, ParseError<usize, Tok, SyntaxError>>;

/// What the actions need: the tokens (locations are indices into them).
#[derive(Debug)]
pub struct Ctx<'a> {
    pub toks: &'a [Token],
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
    Index(Expr),
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

fn user<T>(e: SyntaxError) -> PResult<T> {
    Err(ParseError::User { error: e })
}

const PRINT_FAMILY: &[(&str, PrintKind)] = &[
    ("print", PrintKind::Print),
    ("println", PrintKind::Println),
    ("printf", PrintKind::Printf),
    ("printd", PrintKind::Printd),
    ("printdln", PrintKind::Printdln),
    ("sprint", PrintKind::Sprint),
    ("sprintln", PrintKind::Sprintln),
    ("sprintf", PrintKind::Sprintf),
    ("sprintd", PrintKind::Sprintd),
    ("sprintdln", PrintKind::Sprintdln),
];

pub fn stat_op(name: &str) -> Option<StatOp> {
    Some(match name {
        "@count" => StatOp::Count,
        "@sum" => StatOp::Sum,
        "@min" => StatOp::Min,
        "@max" => StatOp::Max,
        "@avg" => StatOp::Avg,
        "@variance" => StatOp::Variance,
        _ => return None,
    })
}

impl Ctx<'_> {
    /// The span from token `l` up to (not including) token `r`.
    pub fn span(&self, l: usize, r: usize) -> Span {
        let Some(last) = self.toks.last() else {
            return Span::default();
        };
        let first = self.toks.get(l).map_or(
            Span {
                start: last.span.end,
                ..last.span
            },
            |t| t.span,
        );
        if r <= l {
            return Span {
                end: first.start,
                ..first
            };
        }
        // A node built partly from a macro body in another file spans what it
        // covers in its first token's file.
        let end = self.toks[l.min(self.toks.len())..r.min(self.toks.len())]
            .iter()
            .rev()
            .find(|t| t.span.file == first.file)
            .map_or(first, |t| t.span);
        first.to(end)
    }

    fn err(
        &self,
        code: Code,
        l: usize,
        r: usize,
        msg: impl Into<String>,
        label: impl Into<String>,
    ) -> SyntaxError {
        SyntaxError::new(code, self.span(l, r), msg).with_label(label)
    }

    pub fn global(
        &self,
        name: Ident,
        wrap: bool,
        size: Option<i64>,
        init: Option<Spanned<Literal>>,
        l: usize,
        r: usize,
    ) -> PResult<Global> {
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
                SyntaxError::new(
                    Code::E0140,
                    init.span,
                    "only scalar globals can be initialized",
                )
                .with_label("an array global cannot have an initializer"),
            );
        }
        Ok(Global {
            name,
            private: false,
            wrap,
            size,
            init,
            span: self.span(l, r),
        })
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
    ) -> PResult<Function> {
        if let Some(p) = &priority
            && p.node <= 0
        {
            return user(
                SyntaxError::new(Code::E0140, p.span, "specified priority must be > 0")
                    .with_label("overload priorities start at 1"),
            );
        }
        for (k, p) in params.iter().enumerate() {
            if let Some(first) = params[..k].iter().find(|q| q.name.node == p.name.node) {
                return user(
                    SyntaxError::new(Code::E0140, p.name.span, "duplicate parameter names")
                        .with_label(format!("`{}` is already a parameter", p.name.node))
                        .with_secondary(first.name.span, "first declared here"),
                );
            }
        }
        Ok(Function {
            name,
            private: false,
            ret,
            params,
            priority,
            body,
            span: self.span(l, r),
        })
    }

    pub fn probe(
        &self,
        points: Vec<ProbePoint>,
        condition: Option<Expr>,
        body: Block,
        l: usize,
        r: usize,
    ) -> PResult<Item> {
        let points = expand_all(points)?;
        Ok(Item::Probe(Probe {
            points,
            condition,
            body,
            span: self.span(l, r),
        }))
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per piece of the declaration"
    )]
    pub fn alias(
        &self,
        names: Vec<ProbePoint>,
        kind: AliasKind,
        points: Vec<ProbePoint>,
        condition: Option<Expr>,
        body: Block,
        epilogue: Option<Block>,
        l: usize,
        r: usize,
    ) -> PResult<Item> {
        for name in &names {
            if name.optional || name.sufficient {
                return user(
                    SyntaxError::new(
                        Code::E0140,
                        name.span,
                        "probe point alias name cannot be optional nor sufficient",
                    )
                    .with_label("remove the `?` or `!` from the alias name"),
                );
            }
            if let Some(c) = name.components.iter().find(|c| c.name.starts_with('{')) {
                return user(
                    SyntaxError::new(Code::E0140, c.span, "expected probe point specifier")
                        .with_label("an alias name cannot use brace expansion"),
                );
            }
        }
        let points = expand_all(points)?;
        Ok(Item::Alias(Alias {
            names,
            kind,
            points,
            condition,
            body,
            epilogue,
            span: self.span(l, r),
        }))
    }

    pub fn foreach(&self, h: ForeachHead, body: Stmt, l: usize, r: usize) -> PResult<Stmt> {
        let mut sort: Option<(Sort, Span)> = None;
        let mut set = |s: Sort, span: Span| -> Result<(), SyntaxError> {
            if let Some((_, first)) = sort {
                return Err(
                    SyntaxError::new(Code::E0140, span, "multiple sort directives")
                        .with_label("a foreach can sort by one thing only")
                        .with_secondary(first, "first sort directive"),
                );
            }
            sort = Some((s, span));
            Ok(())
        };
        let (keys, bracketed) = h.keys;
        let mut names = Vec::with_capacity(keys.len());
        for (k, (name, dir)) in keys.into_iter().enumerate() {
            if let Some(d) = dir {
                set(
                    Sort {
                        by: SortBy::Key(k),
                        dir: d.node,
                    },
                    d.span,
                )
                .or_else(user)?;
            }
            names.push(name);
        }
        let value = match h.value {
            Some((v, dir)) => {
                if let Some(d) = dir {
                    set(
                        Sort {
                            by: SortBy::Value,
                            dir: d.node,
                        },
                        d.span,
                    )
                    .or_else(user)?;
                }
                Some(v)
            }
            None => None,
        };
        if let Some((op, d)) = h.agg {
            let Some(stat) = stat_op(&op.node) else {
                return user(
                    SyntaxError::new(
                        Code::E0140,
                        op.span,
                        format!("`{}` is not an aggregate operator", op.node),
                    )
                    .with_label("sort by @count, @sum, @min, @max, @avg or @variance"),
                );
            };
            set(
                Sort {
                    by: SortBy::Aggregate(stat),
                    dir: d.node,
                },
                d.span,
            )
            .or_else(user)?;
        } else if let Some(d) = h.array_sort {
            set(
                Sort {
                    by: SortBy::Value,
                    dir: d.node,
                },
                d.span,
            )
            .or_else(user)?;
        }
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
        Ok(Spanned::new(
            StmtKind::Foreach(Box::new(f)),
            self.span(l, r),
        ))
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
            ExprKind::Hist { .. } => Ok(Indexable::Hist(Box::new(e))),
            _ => user(self.err(
                Code::E0120,
                l,
                r,
                "expected an array or a histogram",
                "only arrays and @hist_log/@hist_linear can be iterated or tested with `in`",
            )),
        }
    }

    pub fn assign(&self, op: AssignOp, a: Expr, b: Expr, l: usize, r: usize) -> Expr {
        Spanned::new(
            ExprKind::Assign {
                op,
                left: Box::new(a),
                right: Box::new(b),
            },
            self.span(l, r),
        )
    }

    pub fn ternary(&self, c: Expr, a: Expr, b: Expr, l: usize, r: usize) -> Expr {
        Spanned::new(
            ExprKind::Ternary {
                cond: Box::new(c),
                then: Box::new(a),
                otherwise: Box::new(b),
            },
            self.span(l, r),
        )
    }

    pub fn binary(&self, op: BinOp, a: Expr, b: Expr, l: usize, r: usize) -> Expr {
        Spanned::new(
            ExprKind::Binary {
                op,
                left: Box::new(a),
                right: Box::new(b),
            },
            self.span(l, r),
        )
    }

    pub fn unary(&self, op: UnaryOp, e: Expr, l: usize, r: usize) -> Expr {
        Spanned::new(
            ExprKind::Unary {
                op,
                expr: Box::new(e),
            },
            self.span(l, r),
        )
    }

    pub fn crement(&self, op: CrementOp, post: bool, e: Expr, l: usize, r: usize) -> Expr {
        Spanned::new(
            ExprKind::Crement {
                op,
                post,
                expr: Box::new(e),
            },
            self.span(l, r),
        )
    }

    pub fn regex(
        &self,
        e: Expr,
        negated: bool,
        pattern: Spanned<String>,
        l: usize,
        r: usize,
    ) -> Expr {
        Spanned::new(
            ExprKind::Regex {
                expr: Box::new(e),
                negated,
                pattern,
            },
            self.span(l, r),
        )
    }

    pub fn in_expr(&self, keys: Vec<Option<Expr>>, array: Indexable, l: usize, r: usize) -> Expr {
        Spanned::new(ExprKind::In { keys, array }, self.span(l, r))
    }

    /// Members after a value that is not a target variable: stap's autocast.
    pub fn chain(&self, base: Expr, members: Vec<MemberTok>, l: usize, r: usize) -> PResult<Expr> {
        let chain = self.members(members, 0)?;
        Ok(Spanned::new(
            ExprKind::Chain {
                base: Box::new(base),
                chain,
            },
            self.span(l, r),
        ))
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
                            SyntaxError::new(Code::E0120, span, "unexpected `$` in a member chain")
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
                            SyntaxError::new(
                                Code::E0120,
                                e.span,
                                "member access after a pretty-print `$`",
                            )
                            .with_label("`$` and `$$` must end the chain"),
                        );
                    }
                    out.push(Member::Index(Box::new(e)));
                }
            }
        }
        Ok(TargetChain {
            members: out,
            pretty,
            addr_of: false,
        })
    }

    pub fn addr_of(&self, mut e: Expr, l: usize, r: usize) -> PResult<Expr> {
        match &mut e.node {
            ExprKind::Target { chain, .. }
            | ExprKind::Cast { chain, .. }
            | ExprKind::AtVar { chain, .. } => {
                chain.addr_of = true;
                e.span = self.span(l, r);
                Ok(e)
            }
            _ => Ok(Spanned::new(ExprKind::AddrOf(Box::new(e)), self.span(l, r))),
        }
    }

    pub fn index(
        &self,
        name: Ident,
        indexes: Vec<Option<Expr>>,
        members: Option<Vec<MemberTok>>,
        l: usize,
        r: usize,
    ) -> PResult<Expr> {
        let e = Spanned::new(
            ExprKind::Index {
                base: Indexable::Array(name),
                indexes,
            },
            self.span(l, r),
        );
        self.maybe_chain(e, members, l, r)
    }

    fn maybe_chain(
        &self,
        e: Expr,
        members: Option<Vec<MemberTok>>,
        l: usize,
        r: usize,
    ) -> PResult<Expr> {
        match members {
            Some(m) => self.chain(e, m, l, r),
            None => Ok(e),
        }
    }

    pub fn call(
        &self,
        name: Ident,
        args: Vec<Expr>,
        members: Option<Vec<MemberTok>>,
        l: usize,
        r: usize,
    ) -> PResult<Expr> {
        let e = match PRINT_FAMILY.iter().find(|(n, _)| *n == name.node) {
            Some(&(_, kind)) => self.print(kind, args, l, r)?,
            None => Spanned::new(ExprKind::Call { name, args }, self.span(l, r)),
        };
        self.maybe_chain(e, members, l, r)
    }

    fn print(&self, kind: PrintKind, mut args: Vec<Expr>, l: usize, r: usize) -> PResult<Expr> {
        let span = self.span(l, r);
        let needs_format = matches!(kind, PrintKind::Printf | PrintKind::Sprintf);
        let needs_delim = matches!(
            kind,
            PrintKind::Printd | PrintKind::Printdln | PrintKind::Sprintd | PrintKind::Sprintdln
        );
        let mut format = None;
        if needs_format || needs_delim {
            let first = (!args.is_empty()).then(|| args.remove(0));
            match first {
                Some(Spanned {
                    node: ExprKind::Str(s),
                    span,
                }) => {
                    if needs_format && let Err(e) = parse_format(&s) {
                        return user(
                            SyntaxError::new(Code::E0130, span, e.message()).with_label(
                                "see `man 3stap printf` for the directives stap accepts",
                            ),
                        );
                    }
                    format = Some(Spanned::new(s, span));
                }
                other => {
                    let at = other.map_or(span, |e| e.span);
                    let what = if needs_format { "format" } else { "delimiter" };
                    return user(
                        SyntaxError::new(Code::E0130, at, "expected literal string").with_label(
                            format!("the {what} of this print call must be a string literal"),
                        ),
                    );
                }
            }
            if needs_delim && args.len() < 2 {
                return user(
                    SyntaxError::new(
                        Code::E0130,
                        span,
                        "expected at least two values after the delimiter",
                    )
                    .with_label("printd joins two or more values"),
                );
            }
        } else if args.is_empty() && matches!(kind, PrintKind::Print | PrintKind::Sprint) {
            return user(
                SyntaxError::new(Code::E0130, span, "expected literal string or number")
                    .with_label("print needs at least one value"),
            );
        }
        Ok(Spanned::new(
            ExprKind::Print(Box::new(Print { kind, format, args })),
            span,
        ))
    }

    pub fn target(
        &self,
        t: String,
        members: Option<Vec<MemberTok>>,
        l: usize,
        r: usize,
    ) -> PResult<Expr> {
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
                    SyntaxError::new(
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
                members: Vec::new(),
                pretty,
                addr_of: false,
            },
        };
        Ok(Spanned::new(
            ExprKind::Target { name, chain },
            self.span(l, r),
        ))
    }

    /// `@word`, `@word(args)`, with an optional member chain: every @-operator.
    pub fn at_word(
        &self,
        word: String,
        args: Option<Vec<Option<Expr>>>,
        members: Option<Vec<MemberTok>>,
        l: usize,
        r: usize,
    ) -> PResult<Expr> {
        let span = self.span(l, r);
        let word_span = self.span(l, l + 1);
        let Some(args) = args else {
            return match word.as_str() {
                _ if is_operator_word(&word) => user(
                    SyntaxError::new(Code::E0120, word_span, format!("expected `(` after {word}"))
                        .with_label("this operator takes arguments"),
                ),
                _ => user(unknown_operator(&word, word_span)),
            };
        };
        let mut plain = Vec::with_capacity(args.len());
        for a in args {
            match a {
                Some(e) => plain.push(e),
                None => {
                    return user(
                        SyntaxError::new(Code::E0120, span, "unexpected `*`")
                            .with_label("`*` is only allowed in array indexes of `delete`, `in` and foreach slices"),
                    );
                }
            }
        }
        let arity = |lo: usize, hi: usize| -> PResult<()> {
            if plain.len() < lo || plain.len() > hi {
                let want = if lo == hi {
                    format!("{lo}")
                } else {
                    format!("{lo} to {hi}")
                };
                return user(
                    SyntaxError::new(
                        Code::E0120,
                        span,
                        format!(
                            "{word} takes {want} argument{}",
                            if hi == 1 { "" } else { "s" }
                        ),
                    )
                    .with_label(format!("{} given", plain.len())),
                );
            }
            Ok(())
        };
        let mut it = plain.clone().into_iter();
        let mut next = || {
            it.next()
                .map(Box::new)
                .unwrap_or_else(|| Box::new(Spanned::new(ExprKind::Num(0), span)))
        };
        let node = if let Some(op) = stat_op(&word) {
            if op == StatOp::Variance {
                arity(1, 2)?;
            } else {
                arity(1, 1)?;
            }
            let expr = next();
            let shift = (plain.len() > 1).then(&mut next);
            ExprKind::Stat { op, expr, shift }
        } else {
            match word.as_str() {
                "@hist_log" => {
                    arity(1, 1)?;
                    ExprKind::Hist {
                        kind: Histogram::Log,
                        expr: next(),
                    }
                }
                "@hist_linear" => {
                    arity(4, 4)?;
                    let expr = next();
                    let start = literal_number(&next())?;
                    let stop = literal_number(&next())?;
                    let step = literal_number(&next())?;
                    ExprKind::Hist {
                        kind: Histogram::Linear { start, stop, step },
                        expr,
                    }
                }
                "@cast" => {
                    arity(2, 3)?;
                    let expr = next();
                    let ty = literal_string(&next())?;
                    let module = if plain.len() > 2 {
                        Some(literal_string(&next())?)
                    } else {
                        None
                    };
                    ExprKind::Cast {
                        expr,
                        ty,
                        module,
                        chain: TargetChain {
                            members: Vec::new(),
                            pretty: 0,
                            addr_of: false,
                        },
                    }
                }
                "@var" => {
                    arity(1, 2)?;
                    let name = literal_string(&next())?;
                    let module = if plain.len() > 1 {
                        Some(literal_string(&next())?)
                    } else {
                        None
                    };
                    ExprKind::AtVar {
                        name,
                        module,
                        chain: TargetChain {
                            members: Vec::new(),
                            pretty: 0,
                            addr_of: false,
                        },
                    }
                }
                "@entry" => {
                    arity(1, 1)?;
                    ExprKind::Entry(next())
                }
                "@defined" => {
                    arity(1, 1)?;
                    ExprKind::Defined(next())
                }
                "@probewrite" => {
                    arity(1, 1)?;
                    let v = next();
                    if !matches!(v.node, ExprKind::Var(_)) {
                        return user(
                            SyntaxError::new(Code::E0120, v.span, "expected identifier")
                                .with_label("@probewrite takes a variable name"),
                        );
                    }
                    ExprKind::Probewrite(v)
                }
                "@kregister" | "@uregister" => {
                    arity(1, 1)?;
                    ExprKind::Register {
                        user: word == "@uregister",
                        number: next(),
                    }
                }
                "@kderef" | "@uderef" => {
                    arity(2, 2)?;
                    ExprKind::Deref {
                        user: word == "@uderef",
                        size: next(),
                        addr: next(),
                    }
                }
                "@const" => {
                    arity(1, 1)?;
                    ExprKind::Const(literal_string(&next())?)
                }
                "@perf" => {
                    arity(1, 1)?;
                    ExprKind::Perf(literal_string(&next())?)
                }
                _ => return user(unknown_operator(&word, word_span)),
            }
        };
        let e = Spanned::new(node, span);
        let Some(members) = members else { return Ok(e) };
        match e.node {
            ExprKind::Cast {
                expr, ty, module, ..
            } => {
                let chain = self.members(members, 0)?;
                Ok(Spanned::new(
                    ExprKind::Cast {
                        expr,
                        ty,
                        module,
                        chain,
                    },
                    span,
                ))
            }
            ExprKind::AtVar { name, module, .. } => {
                let chain = self.members(members, 0)?;
                Ok(Spanned::new(
                    ExprKind::AtVar {
                        name,
                        module,
                        chain,
                    },
                    span,
                ))
            }
            ExprKind::Hist { .. } => {
                let mut indexes = Vec::new();
                let mut rest = Vec::new();
                for m in members {
                    match m {
                        MemberTok::Index(i) if indexes.is_empty() && rest.is_empty() => {
                            indexes.push(Some(i))
                        }
                        other => rest.push(other),
                    }
                }
                let index = Spanned::new(
                    ExprKind::Index {
                        base: Indexable::Hist(Box::new(e)),
                        indexes,
                    },
                    span,
                );
                if rest.is_empty() {
                    Ok(index)
                } else {
                    self.chain(index, rest, l, r)
                }
            }
            _ => self.chain(e, members, l, r),
        }
    }
}

const OPERATOR_WORDS: &[&str] = &[
    "@cast",
    "@defined",
    "@probewrite",
    "@entry",
    "@perf",
    "@var",
    "@avg",
    "@count",
    "@sum",
    "@min",
    "@max",
    "@hist_linear",
    "@hist_log",
    "@const",
    "@variance",
    "@kregister",
    "@uregister",
    "@kderef",
    "@uderef",
];

fn is_operator_word(w: &str) -> bool {
    OPERATOR_WORDS.contains(&w)
}

fn unknown_operator(word: &str, span: Span) -> SyntaxError {
    SyntaxError::new(Code::E0120, span, format!("unknown operator {word}"))
        .with_label("not an @-operator, and no macro of this name is defined above")
}

fn literal_number(e: &Expr) -> PResult<i64> {
    match &e.node {
        ExprKind::Num(n) => Ok(*n),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            expr,
        } => match expr.node {
            ExprKind::Num(n) => Ok(n.wrapping_neg()),
            _ => user(expected_number(e.span)),
        },
        _ => user(expected_number(e.span)),
    }
}

fn expected_number(span: Span) -> SyntaxError {
    SyntaxError::new(Code::E0120, span, "expected number")
        .with_label("histogram bounds must be number literals")
}

fn literal_string(e: &Expr) -> PResult<Spanned<String>> {
    match &e.node {
        ExprKind::Str(s) => Ok(Spanned::new(s.clone(), e.span)),
        _ => user(
            SyntaxError::new(Code::E0120, e.span, "expected literal string")
                .with_label("this argument must be a string literal"),
        ),
    }
}

fn expand_all(points: Vec<ProbePoint>) -> PResult<Vec<ProbePoint>> {
    let mut out = Vec::with_capacity(points.len());
    for p in points {
        let last = p.components.len().saturating_sub(1);
        if let Some(c) = p.components[..last]
            .iter()
            .find(|c| c.name.starts_with('{') && c.name.contains(['?', '!']))
        {
            return user(
                SyntaxError::new(
                    Code::E0140,
                    c.span,
                    "'?', '!' or condition must only be specified in suffix",
                )
                .with_label("only the last component of a probe point may carry `?` or `!`"),
            );
        }
        out.extend(expand_braces(p));
    }
    Ok(out)
}

/// `foo.{a,b}.c` stands for `foo.a.c, foo.b.c`.
fn expand_braces(p: ProbePoint) -> Vec<ProbePoint> {
    let mut out = vec![(Vec::<Component>::new(), None::<char>)];
    for c in &p.components {
        if !c.name.starts_with('{') {
            for (v, _) in &mut out {
                v.push(c.clone());
            }
            continue;
        }
        let alternatives = brace_alternatives(&c.name);
        let mut next = Vec::with_capacity(out.len() * alternatives.len());
        for v in &out {
            for alt in &alternatives {
                let (mut v, mut flag) = v.clone();
                let text = match alt.strip_suffix(['?', '!']) {
                    Some(t) => {
                        flag = alt.chars().last();
                        t
                    }
                    None => alt.as_str(),
                };
                v.extend(parse_components(text, c.span));
                next.push((v, flag));
            }
        }
        out = next;
    }
    out.into_iter()
        .map(|(components, flag)| ProbePoint {
            components,
            optional: p.optional || flag == Some('?'),
            sufficient: p.sufficient || flag == Some('!'),
            ..p.clone()
        })
        .collect()
}

/// Components spelt out in a brace alternative: `kernel.function("f")`, `begin(-1)`.
fn parse_components(text: &str, span: Span) -> Vec<Component> {
    let mut out = Vec::new();
    let mut name = String::new();
    let mut arg: Option<Spanned<Literal>> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => out.push(Component {
                name: std::mem::take(&mut name),
                arg: arg.take(),
                span,
            }),
            '(' => {
                let mut inner = String::new();
                let mut quoted = false;
                while let Some(d) = chars.next() {
                    match d {
                        '\\' if quoted && chars.peek() == Some(&'"') => {
                            chars.next();
                            inner.push('"');
                        }
                        '"' => quoted = !quoted,
                        ')' if !quoted => break,
                        d => inner.push(d),
                    }
                }
                let lit = if text.contains("(\"") {
                    Literal::Str(inner)
                } else {
                    let (neg, digits) = match inner.strip_prefix('-') {
                        Some(d) => (true, d),
                        None => (false, inner.as_str()),
                    };
                    let n = parse_number(digits).unwrap_or(0);
                    Literal::Num(if neg { n.wrapping_neg() } else { n })
                };
                arg = Some(Spanned::new(lit, span));
            }
            c => name.push(c),
        }
    }
    out.push(Component { name, arg, span });
    out
}

/// `{a,{b,c}}` → `a`, `b`, `c`; `x` → `x`.
fn brace_alternatives(s: &str) -> Vec<String> {
    let Some(inner) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
        return vec![s.to_string()];
    };
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts.into_iter().flat_map(brace_alternatives).collect()
}
