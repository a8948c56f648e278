//! The last token pass before parsing: adjacent string literals become one
//! (`"ab" "cd"` is `"abcd"`), and in probe heads each component name is glued from
//! the adjacent tokens that spell it (`sched_*`, `**`, `return`), so the grammar sees
//! one `PointName` per component.

use crate::lexer::Token;
use crate::span::Span;
use crate::token::Tok;

pub fn glue(mut tokens: Vec<Token>) -> Vec<Token> {
    glue_strings(&mut tokens);
    // Rewritten in place: a glued name replaces the tokens it was made of, so
    // the list only shrinks, and `out` never passes the token being read.
    let mut out = 0;
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].tok {
            Tok::Probe if depth == 0 => {
                keep(&mut tokens, i, &mut out);
                i = glue_head(&mut tokens, i + 1, &mut out);
                continue;
            }
            Tok::LBrace => depth += 1,
            Tok::RBrace => depth = depth.saturating_sub(1),
            _ => {}
        }
        keep(&mut tokens, i, &mut out);
        i += 1;
    }
    tokens.truncate(out);
    split_statements(disambiguate(tokens))
}

/// Moves token `i` to the write position `out` (at or before it) of a list
/// rewritten in place.
fn keep(tokens: &mut [Token], i: usize, out: &mut usize) {
    tokens.swap(*out, i);
    *out += 1;
}

/// Writes a made token at `out`, over one already read.
fn put(tokens: &mut [Token], t: Token, out: &mut usize) {
    tokens[*out] = t;
    *out += 1;
}

/// After `s =~ "re"` or `k in arr`, stap's parser has no rule that continues with
/// `+`, `-` or `[`: the expression statement ends there and a new one begins.
/// (Not in foreach headers, where `in arr-` is a sort mark.)
fn split_statements(mut toks: Vec<Token>) -> Vec<Token> {
    let mut splits = Vec::new();
    let mut foreach_depth: Option<usize> = None;
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::LParen | Tok::CallParen | Tok::LBracket => depth += 1,
            Tok::RParen | Tok::RBracket => {
                depth = depth.saturating_sub(1);
                if foreach_depth == Some(depth) {
                    foreach_depth = None;
                }
            }
            Tok::Foreach => foreach_depth = Some(depth),
            _ => {}
        }
        let continues = matches!(
            toks.get(i + 1).map(|n| &n.tok),
            Some(Tok::Plus | Tok::Minus | Tok::LBracket)
        );
        if !continues || foreach_depth.is_some() || i < 1 {
            continue;
        }
        let ends_regex =
            matches!(t.tok, Tok::Str(_)) && matches!(toks[i - 1].tok, Tok::Match | Tok::NotMatch);
        let ends_in = matches!(t.tok, Tok::Ident(_)) && toks[i - 1].tok == Tok::In;
        if ends_regex || ends_in {
            splits.push(i + 1);
        }
    }
    if splits.is_empty() {
        return toks;
    }
    let mut out = Vec::with_capacity(toks.len() + splits.len());
    let mut next_split = splits.into_iter().peekable();
    for (i, t) in toks.iter_mut().enumerate() {
        if next_split.next_if_eq(&i).is_some() {
            let at = out.last().map_or(t.span, |p: &Token| p.span);
            out.push(Token {
                tok: Tok::Split,
                span: Span {
                    start: at.end,
                    ..at
                },
                space_before: false,
            });
        }
        out.push(t.take());
    }
    out
}

fn glue_strings(tokens: &mut Vec<Token>) {
    tokens.dedup_by(|next, prev| {
        let (Tok::Str(text), Tok::Str(glued)) = (&next.tok, &mut prev.tok) else {
            return false;
        };
        glued.push_str(text);
        prev.span = prev.span.to(next.span);
        true
    });
}

/// Does this token end an operand, so that `++` after it is postfix?
fn ends_operand(toks: &[Token], i: usize) -> bool {
    match &toks[i].tok {
        Tok::Ident(_)
        | Tok::Number(_)
        | Tok::Str(_)
        | Tok::Target(_)
        | Tok::At(_)
        | Tok::Embedded(_) => true,
        Tok::RParen | Tok::RBracket | Tok::Pretty(_) => true,
        t if t.is_keyword() => i > 0 && toks[i - 1].tok == Tok::Arrow,
        _ => false,
    }
}

/// stap decides some tokens' roles by what precedes them; the LR grammar gets
/// distinct tokens: `x++ ++y` is a postfix then a prefix, `++x --y` two prefixes,
/// `f (x)` is a call while `1 (x)` is two statements, and `@cast(p, "t")$`
/// pretty-prints.
fn disambiguate(mut toks: Vec<Token>) -> Vec<Token> {
    // Bracket depth at which a prefix `++`/`--` still waits for its operand to end:
    // stap never gives that operand a postfix operator as well.
    let mut prefix_at: Option<usize> = None;
    let mut depth = 0usize;
    // Open parens, and whether each opens a statement header (`if (`, `while (`...):
    // the `)` closing a header ends no operand, so `if (x) ++y` is a prefix.
    let mut parens: Vec<bool> = Vec::new();
    let mut header_close = false;
    for i in 0..toks.len() {
        let after_operand = i > 0 && ends_operand(&toks, i - 1) && !header_close;
        header_close = false;
        let prev_postfix = i > 0 && matches!(toks[i - 1].tok, Tok::PostIncr | Tok::PostDecr);
        if after_operand && starts_operand(&toks[i].tok) {
            prefix_at = None;
        }
        let new = match &toks[i].tok {
            Tok::Incr | Tok::Decr if after_operand && !prev_postfix && prefix_at != Some(depth) => {
                Some(if toks[i].tok == Tok::Incr {
                    Tok::PostIncr
                } else {
                    Tok::PostDecr
                })
            }
            Tok::Incr | Tok::Decr => {
                prefix_at = Some(depth);
                None
            }
            Tok::LParen if i > 0 && matches!(toks[i - 1].tok, Tok::Ident(_) | Tok::At(_)) => {
                Some(Tok::CallParen)
            }
            Tok::Target(t) if after_operand && (t == "$" || t == "$$") => {
                Some(Tok::Pretty(if t == "$" { 1 } else { 2 }))
            }
            _ => None,
        };
        if let Some(t) = new {
            toks[i].tok = t;
        }
        match toks[i].tok {
            Tok::LParen | Tok::CallParen | Tok::LBracket => {
                depth += 1;
                let header = i > 0
                    && matches!(
                        toks[i - 1].tok,
                        Tok::If | Tok::While | Tok::For | Tok::Foreach | Tok::Catch
                    );
                parens.push(header);
            }
            Tok::RParen | Tok::RBracket => {
                depth = depth.saturating_sub(1);
                header_close = parens.pop().unwrap_or(false);
                if prefix_at.is_some_and(|d| d > depth) {
                    prefix_at = None;
                }
            }
            Tok::Incr | Tok::Decr | Tok::Arrow | Tok::Pretty(_) => {}
            ref t if starts_operand(t) || t.is_keyword() => {}
            _ if prefix_at == Some(depth) => prefix_at = None,
            _ => {}
        }
    }
    toks
}

fn starts_operand(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Ident(_)
            | Tok::Number(_)
            | Tok::Str(_)
            | Tok::Target(_)
            | Tok::At(_)
            | Tok::Embedded(_)
    )
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

/// Rewrites a probe head starting at `i`; returns the index of the token that
/// ends it (normally the `{` of the body).
fn glue_head(tokens: &mut [Token], mut i: usize, out: &mut usize) -> usize {
    let mut expect_name = true;
    while i < tokens.len() {
        let t = tokens[i].clone();
        if expect_name {
            expect_name = false;
            let glued = match name_part(&t.tok) {
                Some(first) => {
                    let mut name = first;
                    let mut j = i + 1;
                    while let Some(part) = tokens
                        .get(j)
                        .filter(|n| !n.space_before)
                        .and_then(|n| name_part(&n.tok))
                    {
                        name.push_str(&part);
                        j += 1;
                    }
                    Some((name, j))
                }
                None => brace_group(tokens, i),
            };
            if let Some((name, j)) = glued {
                let span = t.span.to(tokens[j - 1].span);
                let glued = Token {
                    tok: Tok::PointName(name),
                    span,
                    space_before: t.space_before,
                };
                put(tokens, glued, out);
                i = j;
                continue;
            }
            keep(tokens, i, out);
            i += 1;
            continue;
        }
        match t.tok {
            Tok::LParen => {
                i = copy_group(tokens, i, out);
                continue;
            }
            Tok::If => {
                keep(tokens, i, out);
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
        keep(tokens, i, out);
        i += 1;
    }
    i
}

/// Keeps a balanced `( ... )` group; returns the index after it.
fn copy_group(tokens: &mut [Token], mut i: usize, out: &mut usize) -> usize {
    let mut depth = 0usize;
    while let Some(t) = tokens.get(i) {
        let (opens, closes, stops) = (
            t.tok == Tok::LParen,
            t.tok == Tok::RParen,
            matches!(t.tok, Tok::LBrace | Tok::RBrace | Tok::Semi),
        );
        keep(tokens, i, out);
        i += 1;
        if opens {
            depth += 1;
        } else if closes {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                break;
            }
        } else if stops {
            break;
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
            Tok::Question => text.push('?'),
            Tok::Bang => text.push('!'),
            Tok::LParen => text.push('('),
            Tok::RParen => text.push(')'),
            Tok::Minus => text.push('-'),
            Tok::Str(st) => {
                text.push('"');
                text.push_str(&st.replace('"', "\\\""));
                text.push('"');
            }
            tok => text.push_str(&name_part(tok)?),
        }
        i += 1;
    }
    None
}
