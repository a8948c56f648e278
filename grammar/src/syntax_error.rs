//! LALRPOP errors converted, at the parser's edge, into diagnostics a person reads:
//! what was found, what was expected, and which open construct it would close.

use crate::diag::{Code, Diag};
use crate::lexer::Token;
use crate::source::SourceMap;
use crate::span::Span;
use crate::token::Tok;
use lalrpop_util::ParseError;

/// `toks` are the parsed tokens after the parser took their strings: names are
/// read back from `files` by span.
pub fn convert(e: ParseError<usize, Tok, Diag>, toks: &[Token], files: &SourceMap) -> Diag {
    let restored = restore_names(toks, files);
    let toks = restored.as_slice();
    match e {
        ParseError::User { error } => error,
        ParseError::InvalidToken { location } => {
            let span = toks.get(location).map_or_else(Span::default, |t| t.span);
            Diag::new(Code::E0120, span, "invalid token").with_label("not expected here")
        }
        ParseError::UnrecognizedEof { location, expected } => {
            let last = toks.last().map_or_else(Span::default, |t| t.span);
            let span = Span {
                start: last.end,
                ..last
            };
            let wanted = describe_expected(&expected, toks, location);
            Diag::new(
                Code::E0121,
                span,
                format!("unexpected end of input: {wanted}"),
            )
            .with_label("the script ends here")
            .with_secondary_opt(open_construct(toks, location))
        }
        ParseError::UnrecognizedToken {
            token: (l, tok, _),
            expected,
        } => {
            let span = toks.get(l).map_or_else(Span::default, |t| t.span);
            let wanted = describe_expected(&expected, toks, l);
            Diag::new(Code::E0120, span, wanted)
                .with_label(format!("found {tok}"))
                .with_secondary_opt(open_construct(toks, l))
        }
        ParseError::ExtraToken { token: (l, tok, _) } => {
            let span = toks.get(l).map_or_else(Span::default, |t| t.span);
            Diag::new(Code::E0120, span, format!("unexpected {tok}"))
                .with_label("expected `probe`, `global`, `function`, `private` or `%{` here")
        }
    }
}

/// Names of identifiers and @-words, read from the source text by span.
fn restore_names(toks: &[Token], files: &SourceMap) -> Vec<Token> {
    toks.iter()
        .map(|t| {
            let text = || {
                files
                    .text(t.span.file)
                    .get(t.span.range())
                    .unwrap_or_default()
                    .to_string()
            };
            let tok = match &t.tok {
                Tok::Ident(s) if s.is_empty() => Tok::Ident(text()),
                Tok::At(s) if s.is_empty() => Tok::At(text()),
                Tok::PointName(s) if s.is_empty() => Tok::PointName(text()),
                other => other.clone(),
            };
            Token { tok, ..*t }
        })
        .collect()
}

trait SecondaryOpt {
    fn with_secondary_opt(self, s: Option<(Span, String)>) -> Self;
}

impl SecondaryOpt for Diag {
    fn with_secondary_opt(self, s: Option<(Span, String)>) -> Diag {
        match s {
            Some((span, label)) => self.with_secondary(span, label),
            None => self,
        }
    }
}

/// The innermost bracket still open before token `at`, and what it opened.
fn innermost_open(toks: &[Token], at: usize) -> Option<usize> {
    let mut stack = Vec::new();
    for (i, t) in toks.iter().enumerate().take(at) {
        match t.tok {
            Tok::LParen | Tok::LBracket | Tok::LBrace => stack.push(i),
            Tok::RParen | Tok::RBracket | Tok::RBrace => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack.pop()
}

fn construct_name(toks: &[Token], open: usize) -> String {
    let before = open
        .checked_sub(1)
        .and_then(|i| toks.get(i))
        .map(|t| &t.tok);
    match (&toks[open].tok, before) {
        (Tok::LParen, Some(Tok::Foreach)) => "the foreach header".into(),
        (Tok::LParen, Some(Tok::For)) => "the for header".into(),
        (Tok::LParen, Some(Tok::While)) => "the while condition".into(),
        (Tok::LParen, Some(Tok::If)) => "the if condition".into(),
        (Tok::LParen, Some(Tok::Ident(f))) => format!("the call to `{f}`"),
        (Tok::LParen, Some(Tok::At(f))) => format!("the arguments of `{f}`"),
        (Tok::LParen, Some(Tok::PointName(p))) => {
            format!("the argument of probe point component `{p}`")
        }
        (Tok::LParen, _) => "the parenthesized expression".into(),
        (Tok::LBracket, Some(Tok::Ident(a))) => format!("the index of `{a}`"),
        (Tok::LBracket, _) => "the index list".into(),
        _ => "the block".into(),
    }
}

fn closer(t: &Tok) -> &'static str {
    match t {
        Tok::LParen => "\")\"",
        Tok::LBracket => "\"]\"",
        _ => "\"}\"",
    }
}

fn open_construct(toks: &[Token], at: usize) -> Option<(Span, String)> {
    let open = innermost_open(toks, at)?;
    Some((
        toks[open].span,
        format!("{} starts here", construct_name(toks, open)),
    ))
}

fn describe_expected(expected: &[String], toks: &[Token], at: usize) -> String {
    let has = |name: &str| expected.iter().any(|e| e == name);
    if has("\"catch\"") && has("\"identifier\"") {
        return "expected a member name after `->`".into();
    }
    if has("\"probe\"") && has("\"global\"") {
        return "expected `probe`, `global`, `function`, `private` or `%{`".into();
    }
    if let Some(open) = innermost_open(toks, at) {
        let close = closer(&toks[open].tok);
        if has(close) && expected.len() <= 6 {
            let others: Vec<String> = expected
                .iter()
                .filter(|e| e.as_str() != close)
                .map(|e| show(e))
                .collect();
            let what = construct_name(toks, open);
            let sym = show(close);
            return if others.is_empty() {
                format!("expected {sym} to close {what}")
            } else {
                format!("expected {} or {sym} to close {what}", others.join(", "))
            };
        }
    }
    if has("\"identifier\"") && has("\"number\"") && has("\"if\"") {
        return match innermost_open(toks, at) {
            Some(open) if has("\"}\"") && toks[open].tok == Tok::LBrace => {
                "expected a statement or `}` to close the block".into()
            }
            _ => "expected a statement".into(),
        };
    }
    if has("\"identifier\"") && has("\"number\"") {
        return "expected an expression".into();
    }
    if has("\"pointname\"") {
        return "expected a probe point".into();
    }
    let mut names: Vec<String> = expected.iter().map(|e| show(e)).collect();
    names.sort();
    names.dedup();
    match names.len() {
        0 => "unexpected token".into(),
        1 => format!("expected {}", names[0]),
        n if n <= 8 => format!("expected one of {}", names.join(", ")),
        _ => "unexpected token".into(),
    }
}

/// A grammar terminal name as a person reads it.
fn show(terminal: &str) -> String {
    let inner = terminal.trim_matches('"');
    match inner {
        "identifier" => "an identifier".into(),
        "number" => "a number".into(),
        "string" => "a string literal".into(),
        "target" => "a `$variable`".into(),
        "@word" => "an `@` operator".into(),
        "embedded" => "embedded code".into(),
        "pointname" => "a probe point name".into(),
        "string_kw" => "`string`".into(),
        "long_kw" => "`long`".into(),
        other => format!("`{}`", other.replace("\\\"", "\"")),
    }
}
