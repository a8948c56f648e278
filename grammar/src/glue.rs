//! The last token pass before parsing: adjacent string literals become one
//! (`"ab" "cd"` is `"abcd"`), and in probe heads each component name is glued from
//! the adjacent tokens that spell it (`sched_*`, `**`, `return`), so the grammar sees
//! one `PointName` per component.

use crate::lexer::Token;
use crate::token::Tok;

pub fn glue(tokens: Vec<Token>) -> Vec<Token> {
    let tokens = glue_strings(tokens);
    let mut out = Vec::with_capacity(tokens.len());
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        match t.tok {
            Tok::Probe if depth == 0 => {
                out.push(t.clone());
                i = glue_head(&tokens, i + 1, &mut out);
                continue;
            }
            Tok::LBrace => depth += 1,
            Tok::RBrace => depth = depth.saturating_sub(1),
            _ => {}
        }
        out.push(t.clone());
        i += 1;
    }
    out
}

fn glue_strings(tokens: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    for t in tokens {
        if let (Tok::Str(next), Some(Token { tok: Tok::Str(prev), span, .. })) =
            (&t.tok, out.last_mut())
        {
            prev.push_str(next);
            *span = span.to(t.span);
            continue;
        }
        out.push(t);
    }
    out
}

/// Text a token contributes to a probe-point component name, if it can be part of one.
fn name_part(tok: &Tok) -> Option<String> {
    match tok {
        Tok::Ident(s) | Tok::Number(s) => Some(s.clone()),
        Tok::Star => Some("*".to_string()),
        t if t.is_keyword() => t.fixed_text().map(str::to_string),
        _ => None,
    }
}

/// Copies a probe head starting at `i`; returns the index of the token that ends it
/// (normally the `{` of the body).
fn glue_head(tokens: &[Token], mut i: usize, out: &mut Vec<Token>) -> usize {
    let mut expect_name = true;
    while i < tokens.len() {
        let t = &tokens[i];
        if expect_name {
            expect_name = false;
            if let Some(first) = name_part(&t.tok) {
                let mut name = first;
                let mut span = t.span;
                let mut j = i + 1;
                while let Some(next) = tokens.get(j) {
                    match name_part(&next.tok) {
                        Some(part) if !next.space_before => {
                            name.push_str(&part);
                            span = span.to(next.span);
                            j += 1;
                        }
                        _ => break,
                    }
                }
                out.push(Token { tok: Tok::PointName(name), span, space_before: t.space_before });
                i = j;
                continue;
            }
            if let Some((name, j)) = brace_group(tokens, i) {
                let span = t.span.to(tokens[j - 1].span);
                out.push(Token { tok: Tok::PointName(name), span, space_before: t.space_before });
                i = j;
                continue;
            }
            out.push(t.clone());
            i += 1;
            continue;
        }
        match t.tok {
            Tok::LParen => {
                i = copy_group(tokens, i, out);
                continue;
            }
            Tok::If => {
                out.push(t.clone());
                i += 1;
                if matches!(tokens.get(i).map(|t| &t.tok), Some(Tok::LParen)) {
                    i = copy_group(tokens, i, out);
                }
                continue;
            }
            Tok::Dot | Tok::Comma | Tok::Assign | Tok::AddAssign => expect_name = true,
            Tok::Question | Tok::Bang => {}
            _ => return i,
        }
        out.push(t.clone());
        i += 1;
    }
    i
}

/// Copies a balanced `( ... )` group; returns the index after it.
fn copy_group(tokens: &[Token], mut i: usize, out: &mut Vec<Token>) -> usize {
    let mut depth = 0usize;
    while let Some(t) = tokens.get(i) {
        out.push(t.clone());
        i += 1;
        match t.tok {
            Tok::LParen => depth += 1,
            Tok::RParen => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            Tok::LBrace | Tok::RBrace | Tok::Semi => break,
            _ => {}
        }
    }
    i
}

/// `{a,b.c,{d,e}}` at the start of a component: its text and the index after it.
/// Anything else inside the braces means this `{` is not a brace expansion.
fn brace_group(tokens: &[Token], start: usize) -> Option<(String, usize)> {
    if tokens.get(start)?.tok != Tok::LBrace {
        return None;
    }
    let mut text = String::new();
    let mut depth = 0usize;
    let mut i = start;
    while let Some(t) = tokens.get(i) {
        match &t.tok {
            Tok::LBrace => {
                depth += 1;
                text.push('{');
            }
            Tok::RBrace => {
                depth -= 1;
                text.push('}');
                if depth == 0 {
                    return (text.len() > 2).then_some((text, i + 1));
                }
            }
            Tok::Comma => text.push(','),
            Tok::Dot => text.push('.'),
            tok => text.push_str(&name_part(tok)?),
        }
        i += 1;
    }
    None
}
