//! rstap-runtime: the only crate that talks to the kernel. It reads the live
//! kernel's facts for the compiler ([`kernel`]), runs user-context handlers in the
//! user-space engine ([`engine`]), formats output as stap does ([`output`],
//! [`stats`]) and drives a run ([`session`]). The `rstap` binary is a thin command
//! line over it.

pub mod arena;
mod attach;
pub mod bpf;
mod child;
pub mod cli;
mod clock;
pub mod engine;
pub mod host;
mod json_report;
pub mod kernel;
pub mod output;
mod privilege;
pub mod probes;
pub mod session;
pub mod stats;
pub mod symbols;
pub mod tracefs;
mod usyms;

use codespan_reporting::term::termcolor::{ColorChoice, StandardStream};
use rstap_grammar::{Diagnostics, SourceMap};
use std::io::IsTerminal;

/// When diagnostics are coloured (`--color`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    /// When stderr is a terminal and `NO_COLOR` is not set.
    Auto,
    Always,
    Never,
}

static COLOR: std::sync::OnceLock<Color> = std::sync::OnceLock::new();

/// Sets `--color` for every later [`report`]; the first call wins.
pub fn set_color(color: Color) {
    let _ = COLOR.set(color);
}

/// Prints diagnostics to stderr, in colour as `--color` says (by default when
/// stderr is a terminal and `NO_COLOR` is not set).
pub fn report(files: &SourceMap, diags: &Diagnostics) {
    let color = COLOR.get().copied().unwrap_or(Color::Auto);
    let choice = match color {
        Color::Always => ColorChoice::Always,
        Color::Auto
            if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() =>
        {
            ColorChoice::Auto
        }
        Color::Auto | Color::Never => ColorChoice::Never,
    };
    if choice == ColorChoice::Never {
        eprint!("{}", diags.render(files));
        return;
    }
    let shown = files.printable();
    let files = shown.as_ref().unwrap_or(files);
    let mut stream = StandardStream::stderr(choice);
    let config = codespan_reporting::term::Config::default();
    for d in &diags.0 {
        let _ = codespan_reporting::term::emit_to_write_style(
            &mut stream,
            &config,
            files,
            &d.to_diagnostic(),
        );
    }
}
