//! rstap-grammar: SystemTap source text in, a spanned AST out.
//!
//! `parse` is the only door: lex (logos) → preprocess (`%( %)`, `@define`, `$1 @1
//! $# @#`) → glue (adjacent strings, probe-point names) → LALRPOP parser → a few
//! checks stap makes at parse time. Errors come back as [`Diagnostics`] with stable
//! E01xx codes. This crate knows nothing of kernels: the facts `%( %)` conditions
//! need arrive as a plain [`Facts`] value. It never panics on any input, and the
//! generated parser's types never leave it.

pub mod ast;
mod build;
pub mod diag;
pub mod dump;
pub mod facts;
pub mod format;
mod glue;
pub mod lexer;
mod preprocess;
pub mod source;
pub mod span;
pub mod stack;
mod syntax_error;
pub mod token;
mod validate;
pub mod visit;

lalrpop_util::lalrpop_mod!(
    #[expect(clippy::allow_attributes, reason = "the generated parser uses allow")]
    #[allow(
        clippy::all,
        clippy::pedantic,
        clippy::unwrap_used,
        unused_qualifications,
        missing_debug_implementations
    )]
    parser,
    "/stap.rs"
);

pub use diag::{Code, Diag, Diagnostics, Severity};
pub use facts::Facts;
pub use source::SourceMap;
pub use span::{FileId, Span, Spanned};

/// What a parse may depend on besides the text.
#[derive(Clone, Debug, Default)]
pub struct ParseOptions {
    /// Script arguments: `$1`, `@1`, `$#`, `@#`.
    pub args: Vec<String>,
    pub facts: Facts,
    /// Guru mode (`-g`) or a tapset: embedded C and the guru-only @-operators parse.
    pub privileged: bool,
    /// Macro files (`*.stpm`) already in the source map, whose `@define`s every
    /// parsed file sees.
    pub macro_library: Vec<FileId>,
}

/// Parses one file of `files`.
pub fn parse(
    files: &SourceMap,
    file: FileId,
    opts: &ParseOptions,
) -> Result<ast::File, Diagnostics> {
    let text = files.text(file);
    let tokens = lexer::lex(file, text)?;
    if tokens.is_empty() {
        return Err(empty_input(files, file, "is empty"));
    }
    let mut library = preprocess::Macros::new();
    for &m in &opts.macro_library {
        preprocess::collect_library(lexer::lex(m, files.text(m))?, &opts.facts, &mut library)?;
    }
    let tokens = preprocess::preprocess(tokens, &opts.facts, &opts.args, &library)?;
    let tokens = glue::glue(tokens);
    if tokens.is_empty() {
        return Err(empty_input(files, file, "is empty after preprocessing"));
    }
    // The parser takes the tokens' strings; the actions keep only spans, and a
    // diagnostic reads names back from the source by span.
    let mut tokens = tokens;
    let spans: Vec<Span> = tokens.iter().map(|t| t.span).collect();
    let ctx = build::Ctx { spans: &spans };
    let stream = tokens
        .iter_mut()
        .enumerate()
        .map(|(i, t)| Ok::<_, Diag>((i, t.tok.take_payload(), i + 1)));
    let parsed = parser::FileParser::new().parse(&ctx, stream);
    let items = parsed.map_err(|e| syntax_error::convert(e, &tokens, files))?;
    let ast = ast::File { file, items };
    validate::check(&ast, opts.privileged)?;
    Ok(ast)
}

fn empty_input(files: &SourceMap, file: FileId, what: &str) -> Diagnostics {
    let len = files.text(file).len();
    Diagnostics::one(
        Diag::new(
            Code::E0121,
            Span::new(file, len, len),
            format!("input file '{}' {what}", files.name(file)),
        )
        .with_label("a script needs at least one probe, function or global"),
    )
}
