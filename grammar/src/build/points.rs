//! Probe and alias declarations: brace expansion of probe points and the checks
//! stap makes on alias names.

use super::{Ctx, PResult, user};
use crate::ast::*;
use crate::diag::{Code, Diag};
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
                    Diag::new(
                        Code::E0140,
                        name.span,
                        "probe point alias name cannot be optional nor sufficient",
                    )
                    .with_label("remove the `?` or `!` from the alias name"),
                );
            }
            if let Some(c) = name.components.iter().find(|c| c.name.starts_with('{')) {
                return user(
                    Diag::new(Code::E0140, c.span, "expected probe point specifier")
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

/// The most probe points one brace-expanded point may stand for. Expansion
/// multiplies: `{a,b}.{a,b}.…` doubles with every six bytes, so without a bound
/// a 100-byte script asked for 2^16 points and a few kilobytes for more than
/// memory holds. Real scripts name a handful (`syscall.{open,close}.return`).
const MAX_EXPANSION: u64 = 1000;

fn expand_all(points: Vec<ProbePoint>) -> PResult<Vec<ProbePoint>> {
    let mut out = Vec::with_capacity(points.len());
    for p in points {
        let last = p.components.len().saturating_sub(1);
        if let Some(c) = p.components[..last]
            .iter()
            .find(|c| c.name.starts_with('{') && c.name.contains(['?', '!']))
        {
            return user(
                Diag::new(
                    Code::E0140,
                    c.span,
                    "'?', '!' or condition must only be specified in suffix",
                )
                .with_label("only the last component of a probe point may carry `?` or `!`"),
            );
        }
        let span = p.span;
        let count = p
            .components
            .iter()
            .filter(|c| c.name.starts_with('{'))
            .fold(1u64, |n, c| n.saturating_mul(count_alternatives(&c.name)));
        if count > MAX_EXPANSION {
            return user(
                Diag::new(
                    Code::E0140,
                    span,
                    format!("brace expansion makes more than {MAX_EXPANSION} probe points"),
                )
                .with_label(if count == u64::MAX {
                    "this expands to more probe points than can be counted".to_string()
                } else {
                    format!("this expands to {count} probe points")
                }),
            );
        }
        let expanded = expand_braces(p);
        if expanded
            .iter()
            .any(|e| e.components.iter().any(|c| c.name.is_empty()))
        {
            return user(
                Diag::new(Code::E0140, span, "expected identifier or '*' or '{'")
                    .with_label("a brace expansion here makes an empty probe point component"),
            );
        }
        out.extend(expanded);
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

/// How many strings [`brace_alternatives`] makes of `s`, without making them
/// (saturating). The text before the first group has no braces and every
/// alternative of a group is balanced, so each alternative followed by the rest
/// makes (its own count) × (the rest's count) strings; each part of `s` is
/// counted once, where expanding takes time exponential in the groups.
fn count_alternatives(s: &str) -> u64 {
    let Some(open) = s.find('{') else {
        return 1;
    };
    let Some((cuts, close)) = group(s, open) else {
        return 1;
    };
    let rest = count_alternatives(&s[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(cuts);
    bounds.push(close);
    bounds.windows(2).fold(0u64, |n, w| {
        n.saturating_add(count_alternatives(&s[w[0] + 1..w[1]]).saturating_mul(rest))
    })
}

/// The group opened at `open`: the offsets of its top-level commas and of its
/// closing brace; `None` if it is not closed.
fn group(s: &str, open: usize) -> Option<(Vec<usize>, usize)> {
    let mut depth = 0usize;
    let mut cuts = Vec::new();
    for (i, ch) in s.char_indices().skip_while(|&(i, _)| i < open) {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((cuts, i));
                }
            }
            ',' if depth == 1 => cuts.push(i),
            _ => {}
        }
    }
    None
}

/// Bash-style brace expansion: `{a,{b,c}}` → `a`, `b`, `c`; `{a.{b,c},d}` → `a.b`,
/// `a.c`, `d`; text without braces stands for itself.
fn brace_alternatives(s: &str) -> Vec<String> {
    let Some(open) = s.find('{') else {
        return vec![s.to_string()];
    };
    let Some((cuts, close)) = group(s, open) else {
        return vec![s.to_string()];
    };
    let (prefix, suffix) = (&s[..open], &s[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(cuts);
    bounds.push(close);
    bounds
        .windows(2)
        .flat_map(|w| brace_alternatives(&format!("{prefix}{}{suffix}", &s[w[0] + 1..w[1]])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParseOptions, SourceMap, parse};

    #[test]
    fn counting_agrees_with_expanding() {
        for s in [
            "a",
            "{a,b}",
            "{a,{b,c}}",
            "{a.{b,c},d}",
            "{a,b}{c,d,e}",
            "{a,{b,c}{d,e}}x{f,g}",
            "{{a,b},{c,{d,e,f}}}",
            "{a,}",
            "{a",
            "{a,b",
            "}{a,b}",
            "{a,b}}{c,d}",
            "x{a,b}y{c,{d,e}}z",
            "{}",
        ] {
            assert_eq!(
                count_alternatives(s),
                brace_alternatives(s).len() as u64,
                "count of {s:?}"
            );
        }
    }

    #[test]
    fn counting_does_not_expand() {
        // 2^400 alternatives: counted at once, and saturated.
        let s = "{a,b}".repeat(400);
        assert_eq!(count_alternatives(&s), u64::MAX);
    }

    fn points(script: &str) -> Result<usize, String> {
        let mut files = SourceMap::new();
        let id = files.add("t.stp", script);
        match parse(&files, id, &ParseOptions::default()) {
            Ok(f) => Ok(f
                .items
                .iter()
                .map(|i| match i {
                    Item::Probe(p) => p.points.len(),
                    _ => 0,
                })
                .sum()),
            Err(d) => Err(d.0.iter().map(|d| d.message.clone()).collect()),
        }
    }

    #[test]
    fn brace_expansion_stops_past_a_thousand_points() {
        let ten = "{a,b,c,d,e,f,g,h,i,j}";
        assert_eq!(
            points(&format!("probe {ten}.{ten}.{ten}.z {{ }}")),
            Ok(1000)
        );
        // 7 × 11 × 13 = 1001.
        let alts = |n: usize| format!("{{{}}}", vec!["x"; n].join(","));
        let script = format!("probe {}.{}.{} {{ }}", alts(7), alts(11), alts(13));
        assert_eq!(
            points(&script),
            Err("brace expansion makes more than 1000 probe points".to_string())
        );
        // Nested groups multiply inside one component too.
        let nested = format!("probe {{{}}} {{ }}", "{a,b}".repeat(64));
        assert_eq!(
            points(&nested),
            Err("brace expansion makes more than 1000 probe points".to_string()),
            "2^64 points from one component"
        );
    }
}
