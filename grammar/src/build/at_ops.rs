//! The @-operators: statistics, histograms, `@cast`, `@var`, `@entry`,
//! `@defined` and the guru-mode register and memory operators.

use super::MemberTok;
use super::{BExpr, Ctx, PResult, user};
use crate::ast::*;
use crate::diag::{Code, Diag};
use crate::span::{Span, Spanned};

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
    /// `@word`, `@word(args)`, with an optional member chain: every @-operator.
    pub fn at_word(
        &self,
        word: String,
        args: Option<Vec<Option<Expr>>>,
        members: Option<Vec<MemberTok>>,
        l: usize,
        r: usize,
    ) -> PResult<BExpr> {
        let span = self.span(l, r);
        let word_span = self.span(l, l + 1);
        let Some(args) = args else {
            return match word.as_str() {
                _ if is_operator_word(&word) => user(
                    Diag::new(Code::E0120, word_span, format!("expected `(` after {word}"))
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
                    return user(Diag::new(Code::E0120, span, "unexpected `*`").with_label(
                        "`*` is only allowed in array indexes of `delete`, `in` and foreach slices",
                    ));
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
                    Diag::new(
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
            // stap reads the shift as a (signed) number literal.
            let shift = match (plain.len() > 1).then(&mut next) {
                Some(e) => Some(Box::new(Spanned::new(
                    ExprKind::Num(literal_number(&e)?),
                    e.span,
                ))),
                None => None,
            };
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
                        Some(Box::new(literal_string(&next())?))
                    } else {
                        None
                    };
                    ExprKind::Cast {
                        expr,
                        ty,
                        module,
                        chain: TargetChain::empty(),
                    }
                }
                "@var" => {
                    arity(1, 2)?;
                    let name = literal_string(&next())?;
                    let module = if plain.len() > 1 {
                        Some(Box::new(literal_string(&next())?))
                    } else {
                        None
                    };
                    ExprKind::AtVar {
                        name,
                        module,
                        chain: TargetChain::empty(),
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
                            Diag::new(Code::E0120, v.span, "expected identifier")
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
        let e = Box::new(Spanned::new(node, span));
        let Some(members) = members else { return Ok(e) };
        match e.node {
            ExprKind::Cast {
                expr, ty, module, ..
            } => {
                let chain = self.members(members, 0)?;
                Ok(Box::new(Spanned::new(
                    ExprKind::Cast {
                        expr,
                        ty,
                        module,
                        chain,
                    },
                    span,
                )))
            }
            ExprKind::AtVar { name, module, .. } => {
                let chain = self.members(members, 0)?;
                Ok(Box::new(Spanned::new(
                    ExprKind::AtVar {
                        name,
                        module,
                        chain,
                    },
                    span,
                )))
            }
            ExprKind::Hist { .. } => {
                let mut indexes = Vec::new();
                let mut rest = Vec::new();
                for m in members {
                    match m {
                        MemberTok::Index(i) if indexes.is_empty() && rest.is_empty() => {
                            indexes.push(Some(*i))
                        }
                        other => rest.push(other),
                    }
                }
                let index = Box::new(Spanned::new(
                    ExprKind::Index {
                        base: Indexable::Hist(e),
                        indexes,
                    },
                    span,
                ));
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

fn unknown_operator(word: &str, span: Span) -> Diag {
    Diag::new(Code::E0120, span, format!("unknown operator {word}"))
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

fn expected_number(span: Span) -> Diag {
    Diag::new(Code::E0120, span, "expected number")
        .with_label("histogram bounds must be number literals")
}

fn literal_string(e: &Expr) -> PResult<Spanned<String>> {
    match &e.node {
        ExprKind::Str(s) => Ok(Spanned::new(s.clone(), e.span)),
        _ => user(
            Diag::new(Code::E0120, e.span, "expected literal string")
                .with_label("this argument must be a string literal"),
        ),
    }
}
