//! Probe and alias declarations: brace expansion of probe points and the checks
//! stap makes on alias names.

use super::{Ctx, PResult, user};
use crate::ast::*;
use crate::diag::{Code, SyntaxError};
use crate::preprocess::parse_number;
use crate::span::{Span, Spanned};

impl Ctx<'_> {
    pub fn probe(&self, points: Vec<ProbePoint>, body: Block, l: usize, r: usize) -> PResult<Item> {
        let points = expand_all(points)?;
        Ok(Item::Probe(Box::new(Probe {
            points,
            body,
            span: self.span(l, r),
        })))
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
        Ok(Item::Alias(Box::new(Alias {
            names,
            kind,
            points,
            body,
            epilogue,
            span: self.span(l, r),
        })))
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
