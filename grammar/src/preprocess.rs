//! Token-level preprocessing, in one streaming pass as stap does it: script arguments
//! (`$1 @1 $# @#`), `@define` macros, and `%( COND %? A %: B %)` conditionals. Only the
//! taken branch is expanded, so a missing `$3` or an unknown macro in an untaken branch
//! is not an error. The output is the token stream the parser reads.

use crate::diag::{Code, Diag};
use crate::facts::{Facts, fnmatch, strverscmp};
use crate::lexer::{Token, lex};
use crate::span::{FileId, Span};
use crate::token::Tok;
use std::cmp::Ordering;
use std::collections::HashMap;

/// How deep macros may expand into each other before we call it recursion.
const MAX_EXPANSION_DEPTH: usize = 64;

/// The most tokens macro expansions may make in one file, counted over every
/// expansion (nested ones too) before it is made. Each level of macros that use
/// the one below twice doubles the output: 40 such lines (1 KB) asked for 2^40
/// tokens, and a macro passing its own arguments twice to itself doubled them at
/// every level of its recursion before the depth limit stopped it (the parse
/// fuzzer ran out of memory on that). The largest tapset file is about 5,000
/// tokens, the whole library about 13,000.
const MAX_EXPANDED_TOKENS: usize = 1_000_000;

#[derive(Clone, Debug)]
pub struct Macro {
    name_span: Span,
    params: Vec<String>,
    body: Vec<Token>,
}

/// Macros by name (without the `@`).
pub type Macros = HashMap<String, Macro>;

/// Expands one file's tokens. Macros defined in the file are local to it; the
/// `library` ones (from `*.stpm` files) are visible everywhere and may be redefined.
pub fn preprocess(
    tokens: Vec<Token>,
    facts: &Facts,
    args: &[String],
    library: &Macros,
) -> Result<Vec<Token>, Diag> {
    // Most scripts use no argument, conditional or macro: nothing to copy.
    if !tokens.iter().any(|t| needs_preprocessing(&t.tok, library)) {
        return Ok(tokens);
    }
    let mut pp = Preprocessor {
        facts,
        args,
        macros: library.clone(),
        expanded: 0,
    };
    let mut tokens = tokens;
    let mut out = Vec::with_capacity(tokens.len());
    pp.run_all(&mut tokens, &mut out, 0)?;
    Ok(out)
}

/// Whether the preprocessor changes or reads past this token: every token it
/// does not copy as it is.
fn needs_preprocessing(tok: &Tok, library: &Macros) -> bool {
    match tok {
        Tok::PpOpen
        | Tok::PpThen
        | Tok::PpElse
        | Tok::PpClose
        | Tok::DollarArg(_)
        | Tok::AtArg(_)
        | Tok::DollarHash
        | Tok::AtHash => true,
        Tok::At(name) => name == "@define" || library.contains_key(&name[1..]),
        _ => false,
    }
}

/// Reads a macro file (`*.stpm`), which may hold nothing but `@define`s, into `library`.
pub fn collect_library(
    tokens: Vec<Token>,
    facts: &Facts,
    library: &mut Macros,
) -> Result<(), Diag> {
    let mut pp = Preprocessor {
        facts,
        args: &[],
        macros: std::mem::take(library),
        expanded: 0,
    };
    let mut tokens = tokens;
    let mut out = Vec::new();
    let result = pp.run_all(&mut tokens, &mut out, 0);
    *library = pp.macros;
    result?;
    match out.first() {
        None => Ok(()),
        Some(t) => Err(
            Diag::new(Code::E0111, t.span, "a macro file may only contain @define")
                .with_label("this is not part of a macro definition"),
        ),
    }
}

struct Preprocessor<'a> {
    facts: &'a Facts,
    args: &'a [String],
    macros: HashMap<String, Macro>,
    /// Tokens made by macro expansions so far (at most [`MAX_EXPANDED_TOKENS`]).
    expanded: usize,
}

/// The parts of one `%( cond %? then %: else %)`, as token index ranges.
struct Conditional {
    cond: std::ops::Range<usize>,
    then: std::ops::Range<usize>,
    otherwise: Option<std::ops::Range<usize>>,
    end: usize,
}

impl Preprocessor<'_> {
    /// Expands a whole token vector into `out`.
    fn run_all(
        &mut self,
        toks: &mut [Token],
        out: &mut Vec<Token>,
        depth: usize,
    ) -> Result<(), Diag> {
        let table = conditionals(toks)?;
        self.run(toks, 0, &table, out, depth)
    }

    /// Expands `toks` (which start at index `base` of the vector `table` describes)
    /// into `out`, moving tokens out of `toks` (they are not read again).
    fn run(
        &mut self,
        toks: &mut [Token],
        base: usize,
        table: &HashMap<usize, Conditional>,
        out: &mut Vec<Token>,
        depth: usize,
    ) -> Result<(), Diag> {
        let mut i = 0;
        while i < toks.len() {
            let span = toks[i].span;
            match &toks[i].tok {
                Tok::PpOpen => {
                    let Some(c) = table.get(&(base + i)) else {
                        return Err(Diag::new(
                            Code::E0110,
                            span,
                            "incomplete conditional: missing `%)`",
                        )
                        .with_label("this `%(` is never closed"));
                    };
                    let local = |r: &std::ops::Range<usize>| r.start - base..r.end - base;
                    let mut cond = Vec::new();
                    self.run(
                        &mut toks[local(&c.cond)],
                        c.cond.start,
                        table,
                        &mut cond,
                        depth,
                    )?;
                    let taken = if eval_condition(&cond, self.facts, span)? {
                        Some(&c.then)
                    } else {
                        c.otherwise.as_ref()
                    };
                    if let Some(range) = taken {
                        self.run(&mut toks[local(range)], range.start, table, out, depth)?;
                    }
                    i = c.end - base + 1;
                    continue;
                }
                Tok::PpThen | Tok::PpElse | Tok::PpClose => {
                    return Err(Diag::new(
                        Code::E0110,
                        span,
                        format!(
                            "`{}` without a matching `%(`",
                            toks[i].tok.fixed_text().unwrap_or("")
                        ),
                    )
                    .with_label("no conditional is open here"));
                }
                Tok::At(name) if name == "@define" => {
                    i = self.define(toks, i)?;
                    continue;
                }
                Tok::At(name) if self.macros.contains_key(&name[1..]) => {
                    if depth >= MAX_EXPANSION_DEPTH {
                        return Err(Diag::new(
                            Code::E0111,
                            span,
                            "macro expansion nests too deeply",
                        )
                        .with_label("this macro keeps expanding into itself"));
                    }
                    let budget = MAX_EXPANDED_TOKENS - self.expanded;
                    let (mut expansion, next) = self.expand(toks, i, budget)?;
                    self.expanded += expansion.len();
                    self.run_all(&mut expansion, out, depth + 1)?;
                    i = next;
                    continue;
                }
                Tok::DollarArg(n) => {
                    // The argument's tokens are preprocessed like the script's own.
                    let mut arg = lex_argument(self.arg(*n, span)?, &toks[i])?;
                    self.run_all(&mut arg, out, depth)?;
                }
                Tok::AtArg(n) => {
                    let tok = Tok::Str(escape_argument(self.arg(*n, span)?));
                    out.push(Token {
                        tok,
                        ..toks[i].take()
                    });
                }
                Tok::DollarHash => {
                    let tok = Tok::Number(self.args.len().to_string());
                    out.push(Token {
                        tok,
                        ..toks[i].take()
                    });
                }
                Tok::AtHash => {
                    let tok = Tok::Str(self.args.len().to_string());
                    out.push(Token {
                        tok,
                        ..toks[i].take()
                    });
                }
                _ => out.push(toks[i].take()),
            }
            i += 1;
        }
        Ok(())
    }

    fn arg(&self, n: u32, span: Span) -> Result<&str, Diag> {
        let found = (n as usize).checked_sub(1).and_then(|k| self.args.get(k));
        found.map(String::as_str).ok_or_else(|| {
            Diag::new(
                Code::E0112,
                span,
                format!("command line argument out of range [1-{}]", self.args.len()),
            )
            .with_label(format!(
                "script argument {n} was not given ({} passed)",
                self.args.len()
            ))
        })
    }

    /// `@define NAME[(p, ...)] %( body %)`; returns the index after it.
    fn define(&mut self, toks: &[Token], at: usize) -> Result<usize, Diag> {
        let def = &toks[at];
        let (name, name_span) = match toks.get(at + 1) {
            Some(Token {
                tok: Tok::Ident(n),
                span,
                ..
            }) => (n.clone(), *span),
            Some(Token { tok, span, .. }) if tok.is_keyword() => {
                (tok.fixed_text().unwrap_or_default().to_string(), *span)
            }
            other => {
                return Err(Diag::new(
                    Code::E0111,
                    other.map_or(def.span, |t| t.span),
                    "expected a macro name after `@define`",
                )
                .with_label("a macro name is an identifier"));
            }
        };
        let mut i = at + 2;
        let mut params = Vec::new();
        if matches!(toks.get(i).map(|t| &t.tok), Some(Tok::LParen)) {
            i += 1;
            loop {
                match toks.get(i).map(|t| &t.tok) {
                    Some(Tok::Ident(p)) => {
                        params.push(p.clone());
                        i += 1;
                    }
                    Some(Tok::RParen) if params.is_empty() => break,
                    _ => {
                        return Err(expected_at(
                            toks,
                            i,
                            def.span,
                            "expected a parameter name in the macro's parameter list",
                        ));
                    }
                }
                match toks.get(i).map(|t| &t.tok) {
                    Some(Tok::Comma) => i += 1,
                    Some(Tok::RParen) => break,
                    _ => {
                        return Err(expected_at(
                            toks,
                            i,
                            def.span,
                            "expected `,` or `)` in the macro's parameter list",
                        ));
                    }
                }
            }
            i += 1;
        }
        if !matches!(toks.get(i).map(|t| &t.tok), Some(Tok::PpOpen)) {
            return Err(expected_at(
                toks,
                i,
                def.span,
                "expected `%(` to open the macro body",
            ));
        }
        let open = i;
        let mut nest = 0usize;
        let close = loop {
            i += 1;
            match toks.get(i).map(|t| &t.tok) {
                Some(Tok::PpOpen) => nest += 1,
                Some(Tok::PpClose) if nest == 0 => break i,
                Some(Tok::PpClose) => nest -= 1,
                Some(_) => {}
                None => {
                    return Err(
                        Diag::new(Code::E0111, toks[open].span, "unterminated macro body")
                            .with_label("this `%(` is never closed with `%)`"),
                    );
                }
            }
        };
        if let Some(previous) = self
            .macros
            .get(&name)
            .filter(|m| m.name_span.file == name_span.file)
        {
            return Err(Diag::new(
                Code::E0111,
                name_span,
                format!("attempt to redefine macro '@{name}' in the same file"),
            )
            .with_label("redefined here")
            .with_secondary(previous.name_span, "first defined here"));
        }
        self.macros.insert(
            name,
            Macro {
                name_span,
                params,
                body: toks[open + 1..close].to_vec(),
            },
        );
        Ok(close + 1)
    }

    /// `@NAME` or `@NAME(a, b)`: returns the substituted body and the index after the use.
    /// A body of more than `budget` tokens is an error, found before it is made.
    fn expand(
        &self,
        toks: &[Token],
        at: usize,
        budget: usize,
    ) -> Result<(Vec<Token>, usize), Diag> {
        let use_tok = &toks[at];
        let name = match &use_tok.tok {
            Tok::At(name) => name.as_str(),
            _ => "",
        };
        let Some(m) = self.macros.get(name.get(1..).unwrap_or_default()) else {
            return Ok((vec![use_tok.clone()], at + 1));
        };
        let mut i = at + 1;
        let mut actuals: Vec<Vec<Token>> = Vec::new();
        if !m.params.is_empty() {
            if !matches!(toks.get(i).map(|t| &t.tok), Some(Tok::LParen)) {
                return Err(Diag::new(
                    Code::E0111,
                    use_tok.span,
                    format!("macro '{name}' takes {} arguments", m.params.len()),
                )
                .with_label("expected `(` and the macro's arguments")
                .with_secondary(m.name_span, "defined here"));
            }
            let open = i;
            let mut nest = 0usize;
            let mut current = Vec::new();
            loop {
                i += 1;
                let Some(t) = toks.get(i) else {
                    return Err(Diag::new(
                        Code::E0111,
                        toks[open].span,
                        "unterminated macro argument list",
                    )
                    .with_label("this `(` is never closed"));
                };
                match t.tok {
                    Tok::LParen | Tok::LBracket | Tok::LBrace => nest += 1,
                    Tok::RParen if nest == 0 => {
                        actuals.push(std::mem::take(&mut current));
                        break;
                    }
                    Tok::RParen | Tok::RBracket | Tok::RBrace => nest = nest.saturating_sub(1),
                    Tok::Comma if nest == 0 => {
                        actuals.push(std::mem::take(&mut current));
                        continue;
                    }
                    _ => {}
                }
                current.push(t.clone());
            }
            i += 1;
            if actuals.len() != m.params.len() {
                return Err(Diag::new(
                    Code::E0111,
                    use_tok.span,
                    format!(
                        "macro '{name}' takes {} argument{} but {} {} given",
                        m.params.len(),
                        if m.params.len() == 1 { "" } else { "s" },
                        actuals.len(),
                        if actuals.len() == 1 { "was" } else { "were" }
                    ),
                )
                .with_label("wrong number of macro arguments")
                .with_secondary(m.name_span, "defined here"));
            }
        }
        let use_span = use_tok.span.to(toks[i - 1].span);
        let param = |t: &Token| match &t.tok {
            Tok::At(p) => m.params.iter().rposition(|q| q == &p[1..]),
            _ => None,
        };
        let size = m
            .body
            .iter()
            .map(|t| param(t).map_or(1, |k| actuals[k].len()))
            .fold(0usize, usize::saturating_add);
        if size > budget {
            return Err(Diag::new(
                Code::E0111,
                use_tok.span,
                format!("macro expansion makes more than {MAX_EXPANDED_TOKENS} tokens"),
            )
            .with_label("expanding this macro makes the script too long"));
        }
        let mut body = Vec::with_capacity(size);
        for t in &m.body {
            let param = param(t);
            // Every token of an expansion takes the span of the whole macro use: an
            // argument may appear twice or out of order in the body, and nodes built
            // from it must still nest inside the code that used the macro.
            match param {
                Some(k) => body.extend(actuals[k].iter().map(|a| Token {
                    span: use_span,
                    ..a.clone()
                })),
                None => body.push(Token {
                    span: use_span,
                    ..t.clone()
                }),
            }
        }
        if let Some(first) = body.first_mut() {
            first.space_before = use_tok.space_before;
        }
        Ok((body, i))
    }
}

fn expected_at(toks: &[Token], i: usize, fallback: Span, msg: &str) -> Diag {
    let span = toks.get(i).map_or(fallback, |t| t.span);
    Diag::new(Code::E0111, span, msg.to_string()).with_label("in this `@define`")
}

/// Every conditional of a token vector, by the index of its `%(`, found in one
/// pass: nested conditionals are not rescanned level by level.
fn conditionals(toks: &[Token]) -> Result<HashMap<usize, Conditional>, Diag> {
    struct Open {
        at: usize,
        then_at: Option<usize>,
        else_at: Option<usize>,
        /// The `%( %)` of a `@define` body, not a conditional.
        macro_body: bool,
    }
    let mut table = HashMap::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut define_pending = false;
    for (i, t) in toks.iter().enumerate() {
        match (&t.tok, stack.last_mut()) {
            (Tok::At(w), _) if w == "@define" => define_pending = true,
            (Tok::PpOpen, _) => {
                let macro_body = std::mem::take(&mut define_pending);
                stack.push(Open {
                    at: i,
                    then_at: None,
                    else_at: None,
                    macro_body,
                });
            }
            (Tok::PpThen | Tok::PpElse, Some(top)) if top.macro_body => {}
            (Tok::PpThen, Some(top)) if top.then_at.is_none() => top.then_at = Some(i),
            (Tok::PpElse, Some(top)) if top.then_at.is_some() && top.else_at.is_none() => {
                top.else_at = Some(i)
            }
            (Tok::PpClose, Some(_)) => {
                let Some(open) = stack.pop() else { continue };
                if open.macro_body {
                    continue;
                }
                let Some(then_at) = open.then_at else {
                    return Err(Diag::new(Code::E0110, t.span, "conditional without `%?`")
                        .with_label("expected `%?` before this `%)`")
                        .with_secondary(toks[open.at].span, "conditional opened here"));
                };
                let c = Conditional {
                    cond: open.at + 1..then_at,
                    then: then_at + 1..open.else_at.unwrap_or(i),
                    otherwise: open.else_at.map(|e| e + 1..i),
                    end: i,
                };
                table.insert(open.at, c);
            }
            _ => {}
        }
    }
    match stack.first() {
        None => Ok(table),
        Some(open) if open.macro_body => {
            Err(
                Diag::new(Code::E0111, toks[open.at].span, "unterminated macro body")
                    .with_label("this `%(` is never closed with `%)`"),
            )
        }
        Some(open) => Err(Diag::new(
            Code::E0110,
            toks[open.at].span,
            "incomplete conditional: missing `%)`",
        )
        .with_label("this `%(` is never closed")),
    }
}

/// A value in a preprocessor condition.
#[derive(Clone, Debug)]
enum Operand {
    Num(i64),
    Str(String),
    /// A version fact: compared with `strverscmp`, or `fnmatch` for `==`/`!=` with wildcards.
    Version(String),
    /// A name fact (`arch`, `CONFIG_*`, ...): `fnmatch` for `==`/`!=`.
    Name(String),
}

fn eval_condition(toks: &[Token], facts: &Facts, whole: Span) -> Result<bool, Diag> {
    let mut i = 0;
    let mut any = false;
    loop {
        let mut all = true;
        loop {
            all &= eval_comparison(toks, &mut i, facts, whole)?;
            if matches!(toks.get(i).map(|t| &t.tok), Some(Tok::AndAnd)) {
                i += 1;
            } else {
                break;
            }
        }
        any |= all;
        match toks.get(i).map(|t| &t.tok) {
            Some(Tok::OrOr) => i += 1,
            None => return Ok(any),
            Some(_) => {
                return Err(Diag::new(
                    Code::E0110,
                    toks[i].span,
                    "expected `&&`, `||` or `%?` in the condition",
                )
                .with_label("the condition should end here"));
            }
        }
    }
}

fn eval_comparison(
    toks: &[Token],
    i: &mut usize,
    facts: &Facts,
    whole: Span,
) -> Result<bool, Diag> {
    let left_tok = toks.get(*i).ok_or_else(|| {
        Diag::new(Code::E0110, whole, "empty preprocessor condition")
            .with_label("expected a comparison such as `kernel_v >= \"5.0\"`")
    })?;
    let left = match &left_tok.tok {
        Tok::Ident(n) => {
            fact_operand(n, facts).ok_or_else(|| bad_condition_start(left_tok.span))?
        }
        Tok::Number(n) => {
            Operand::Num(condition_number(n).ok_or_else(|| bad_number(left_tok.span))?)
        }
        Tok::Str(s) => Operand::Str(s.clone()),
        _ => return Err(bad_condition_start(left_tok.span)),
    };
    *i += 1;
    let op_tok = toks.get(*i).ok_or_else(|| {
        Diag::new(Code::E0110, left_tok.span, "expected a comparison operator")
            .with_label("compare this with `==`, `!=`, `<`, `<=`, `>` or `>=`")
    })?;
    let op = op_tok.tok.clone();
    if !matches!(
        op,
        Tok::EqEq | Tok::NotEq | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge
    ) {
        return Err(
            Diag::new(Code::E0110, op_tok.span, "expected a comparison operator")
                .with_label("expected `==`, `!=`, `<`, `<=`, `>` or `>=`"),
        );
    }
    *i += 1;
    let right_tok = toks.get(*i).ok_or_else(|| {
        Diag::new(
            Code::E0110,
            op_tok.span,
            "expected a literal after the comparison operator",
        )
        .with_label("the right side must be a string or number literal")
    })?;
    *i += 1;
    let mismatch = |what: &str| {
        Diag::new(Code::E0110, right_tok.span, format!("expected {what}"))
            .with_label("the two sides of this comparison have different types")
            .with_secondary(left_tok.span, "compared with this")
    };
    let ord_ok = |o: Ordering| match op {
        Tok::EqEq => o == Ordering::Equal,
        Tok::NotEq => o != Ordering::Equal,
        Tok::Lt => o == Ordering::Less,
        Tok::Le => o != Ordering::Greater,
        Tok::Gt => o == Ordering::Greater,
        _ => o != Ordering::Less,
    };
    let glob = |pattern: &str, value: &str| {
        let m = fnmatch(pattern, value);
        if op == Tok::EqEq { m } else { !m }
    };
    // A fact on the right (`CONFIG_A == CONFIG_B`) compares by its value.
    let right = match &right_tok.tok {
        Tok::Ident(n) => match fact_operand(n, facts) {
            Some(Operand::Num(v)) => Tok::Number(v.to_string()),
            Some(Operand::Str(v) | Operand::Version(v) | Operand::Name(v)) => Tok::Str(v),
            None => right_tok.tok.clone(),
        },
        other => other.clone(),
    };
    match (&left, &right) {
        (Operand::Num(a), Tok::Number(b)) => {
            let b = condition_number(b).ok_or_else(|| bad_number(right_tok.span))?;
            Ok(ord_ok(a.cmp(&b)))
        }
        (Operand::Str(a), Tok::Str(b)) => Ok(ord_ok(a.as_str().cmp(b.as_str()))),
        (Operand::Version(v), Tok::Str(p)) => {
            let wild = p.contains(['*', '?', '[']);
            if wild && matches!(op, Tok::EqEq | Tok::NotEq) {
                Ok(glob(p, v))
            } else {
                Ok(ord_ok(strverscmp(v, p)))
            }
        }
        (Operand::Name(v), Tok::Str(p)) => {
            if matches!(op, Tok::EqEq | Tok::NotEq) {
                Ok(glob(p, v))
            } else {
                Err(
                    Diag::new(Code::E0110, op_tok.span, "expected '==' or '!='").with_label(
                        "names such as `arch` and `CONFIG_*` values compare only for (in)equality",
                    ),
                )
            }
        }
        (Operand::Name(v), Tok::Number(b)) => {
            let b = condition_number(b).ok_or_else(|| bad_number(right_tok.span))?;
            match condition_number(v) {
                Some(a) => Ok(ord_ok(a.cmp(&b))),
                None => Ok(op == Tok::NotEq),
            }
        }
        (Operand::Num(_), _) => Err(mismatch("a number literal")),
        _ => Err(mismatch("a string literal")),
    }
}

fn fact_operand(name: &str, facts: &Facts) -> Option<Operand> {
    Some(match name {
        "kernel_v" => Operand::Version(facts.kernel_v.clone()),
        "kernel_vr" => Operand::Version(facts.kernel_vr.clone()),
        "systemtap_v" => Operand::Version(facts.systemtap_v.clone()),
        "arch" => Operand::Name(facts.arch.clone()),
        "runtime" => Operand::Name(facts.runtime.clone()),
        "systemtap_privilege" => Operand::Name(facts.privilege.clone()),
        "guru_mode" => Operand::Num(i64::from(facts.guru_mode)),
        n if n.starts_with("CONFIG_") => {
            Operand::Name(facts.config.get(n).cloned().unwrap_or_default())
        }
        _ => return None,
    })
}

fn bad_condition_start(span: Span) -> Diag {
    Diag::new(
        Code::E0110,
        span,
        "expected 'arch', 'kernel_v', 'kernel_vr', 'systemtap_v', 'runtime', 'systemtap_privilege', 'guru_mode', 'CONFIG_...', or a comparison between strings or integers",
    )
    .with_label("a preprocessor condition cannot start with this")
}

fn bad_number(span: Span) -> Diag {
    Diag::new(Code::E0104, span, "number invalid or out of range")
        .with_label("not a valid 64-bit number")
}

/// Numbers in conditions are plain decimal in stap (`010` is ten; `0x10` is refused).
fn condition_number(text: &str) -> Option<i64> {
    text.parse().ok()
}

/// stap's number rule: `strtoull(s, 0)` (decimal, `0x` hex, `0` octal), wrapping to i64.
pub fn parse_number(text: &str) -> Option<i64> {
    let (digits, radix) =
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (hex, 16)
        } else if text.len() > 1 && text.starts_with('0') {
            (&text[1..], 8)
        } else {
            (text, 10)
        };
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, radix).ok().map(|v| v as i64)
}

/// Lexes a `$N` argument's text in place of the `$N` token.
fn lex_argument(text: &str, at: &Token) -> Result<Vec<Token>, Diag> {
    let mut toks = lex(FileId(u32::MAX), text).map_err(|e| {
        Diag::new(
            Code::E0112,
            at.span,
            format!("cannot read script argument as tokens: {}", e.message),
        )
        .with_label("in the argument substituted here")
    })?;
    for (k, t) in toks.iter_mut().enumerate() {
        t.span = at.span;
        if k == 0 {
            t.space_before = at.space_before;
        }
    }
    Ok(toks)
}

/// `@N` becomes a string literal: its stored text escapes `\` and anything
/// unprintable (as `\ooo`), so that the literal means exactly the argument.
fn escape_argument(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\{b:03o}")),
        }
    }
    s
}
