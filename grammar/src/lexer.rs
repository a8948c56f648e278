//! Source text → tokens (logos). Comments and whitespace are dropped, but each token
//! remembers whether anything separated it from the previous one: probe-point
//! components are glued from adjacent tokens (`sys*call`), as in stap.

use crate::diag::{Code, Diag};
use crate::span::{FileId, Span};
use crate::token::Tok;
use logos::{Lexer, Logos};

/// What went wrong inside one lexeme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LexErrorKind {
    #[default]
    Junk,
    UnclosedString,
    UnclosedEmbedded,
}

#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
#[logos(error = LexErrorKind)]
enum Raw {
    #[regex(r"[ \t\r\n\x0b\x0c]+")]
    Space,
    #[regex(r"#[^\n]*", allow_greedy = true)]
    #[regex(r"//[^\n]*", allow_greedy = true)]
    LineComment,
    #[token("/*", block_comment)]
    BlockComment,
    #[token("\"", string_literal)]
    Str,
    #[token("%{", embedded)]
    Embedded,
    #[regex(r"[A-Za-z_][A-Za-z0-9_$]*")]
    Ident,
    #[regex(r"\$[A-Za-z0-9_$]*")]
    Dollar,
    #[regex(r"@[A-Za-z0-9_$]*")]
    At,
    #[token("$#")]
    DollarHash,
    #[token("@#")]
    AtHash,
    #[regex(r"[0-9][A-Za-z0-9_]*")]
    Number,
    #[token("%(")]
    #[token("%?")]
    #[token("%:")]
    #[token("%)")]
    #[token("<<<")]
    #[token(">>>")]
    #[token("<<=")]
    #[token(">>=")]
    #[token("==")]
    #[token("!=")]
    #[token("<=")]
    #[token(">=")]
    #[token("=~")]
    #[token("!~")]
    #[token("+=")]
    #[token("-=")]
    #[token("*=")]
    #[token("/=")]
    #[token("%=")]
    #[token("&=")]
    #[token("^=")]
    #[token("|=")]
    #[token(".=")]
    #[token("&&")]
    #[token("||")]
    #[token("++")]
    #[token("--")]
    #[token("->")]
    #[token("<<")]
    #[token(">>")]
    #[regex(r"[-+*/%=<>!~&|^.,;:?()\[\]{}]")]
    Op,
}

/// stap reads an unclosed comment as running to the end of the file.
fn block_comment(lex: &mut Lexer<Raw>) {
    let len = lex
        .remainder()
        .find("*/")
        .map_or(lex.remainder().len(), |end| end + 2);
    lex.bump(len);
}

fn embedded(lex: &mut Lexer<Raw>) -> Result<(), LexErrorKind> {
    match lex.remainder().find("%}") {
        Some(end) => {
            lex.bump(end + 2);
            Ok(())
        }
        None => {
            lex.bump(lex.remainder().len());
            Err(LexErrorKind::UnclosedEmbedded)
        }
    }
}

fn string_literal(lex: &mut Lexer<Raw>) -> Result<(), LexErrorKind> {
    let rest = lex.remainder().as_bytes();
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'"' => {
                lex.bump(i + 1);
                return Ok(());
            }
            b'\\' if i + 1 < rest.len() => i += 2,
            b'\n' => break,
            _ => i += 1,
        }
    }
    lex.bump(i);
    Err(LexErrorKind::UnclosedString)
}

/// One token with its place in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
    /// Whitespace or a comment stood between this token and the previous one.
    pub space_before: bool,
}

impl Token {
    /// Moves the token out, leaving a payload-free placeholder: passes over a token
    /// vector move tokens instead of cloning their strings.
    pub fn take(&mut self) -> Token {
        let placeholder = Token {
            tok: Tok::Semi,
            span: self.span,
            space_before: self.space_before,
        };
        std::mem::replace(self, placeholder)
    }
}

/// Splits `text` into tokens. Stops at the first lexical error.
pub fn lex(file: FileId, text: &str) -> Result<Vec<Token>, Diag> {
    // Dense code has about one token per two bytes; reserving that much saves
    // the vector's copies as it grows (the pages never written cost nothing).
    let mut out = Vec::with_capacity(text.len() / 2 + 1);
    let mut lexer = Raw::lexer(text);
    let mut space_before = true;
    while let Some(raw) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(file, range.start, range.end);
        let slice = lexer.slice();
        let raw = match raw {
            Ok(raw) => raw,
            Err(kind) => return Err(lex_error(kind, span, slice)),
        };
        let tok = match raw {
            Raw::Space | Raw::LineComment | Raw::BlockComment => {
                space_before = true;
                continue;
            }
            Raw::Str => Tok::Str(stored_string(&slice[1..slice.len() - 1])),
            Raw::Embedded => Tok::Embedded(slice[2..slice.len() - 2].to_string()),
            Raw::Ident => Tok::keyword(slice).unwrap_or_else(|| Tok::Ident(slice.to_string())),
            Raw::Dollar => script_arg(&slice[1..])
                .map_or_else(|| Tok::Target(slice.to_string()), Tok::DollarArg),
            Raw::At => {
                script_arg(&slice[1..]).map_or_else(|| Tok::At(slice.to_string()), Tok::AtArg)
            }
            Raw::DollarHash => Tok::DollarHash,
            Raw::AtHash => Tok::AtHash,
            Raw::Number => Tok::Number(slice.to_string()),
            Raw::Op => {
                Tok::operator(slice).ok_or_else(|| lex_error(LexErrorKind::Junk, span, slice))?
            }
        };
        out.push(Token {
            tok,
            span,
            space_before,
        });
        space_before = false;
    }
    Ok(out)
}

/// A string literal's text as stap keeps it: C escapes stay as written (`\n`,
/// `\x41`, `\101`, `\\`), `\"` becomes `"`, an unknown escape loses its backslash,
/// and a backslash-newline becomes a newline.
fn stored_string(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('\\' | 'n' | 't' | 'r' | 'a' | 'b' | 'f' | 'v' | 'x' | '0'..='7')) => {
                out.push('\\');
                out.push(e);
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// `$3` / `@3` name script arguments; anything else after `$`/`@` is an identifier.
fn script_arg(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u32::MAX))
}

fn lex_error(kind: LexErrorKind, span: Span, slice: &str) -> Diag {
    match kind {
        LexErrorKind::Junk => {
            let shown = slice
                .chars()
                .next()
                .map_or(String::new(), |c| c.escape_default().to_string());
            Diag::new(Code::E0101, span, format!("unexpected character `{shown}`"))
                .with_label("no SystemTap token starts with this character")
        }
        LexErrorKind::UnclosedString => Diag::new(
            Code::E0102,
            Span {
                end: span.start + 1,
                ..span
            },
            "unclosed string literal",
        )
        .with_label("this string has no closing `\"` on its line"),
        LexErrorKind::UnclosedEmbedded => Diag::new(
            Code::E0103,
            Span {
                end: span.start + 2,
                ..span
            },
            "unclosed embedded code",
        )
        .with_label("this `%{` block is never closed with `%}`"),
    }
}
