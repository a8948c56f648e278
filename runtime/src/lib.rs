//! rstap-runtime: the only crate that talks to the kernel. It reads the live
//! kernel's facts for the compiler ([`kernel`]), runs user-context handlers in the
//! user-space engine ([`engine`]), formats output as stap does ([`output`],
//! [`stats`]) and drives a run ([`session`]). The `rstap` binary is a thin command
//! line over it.

mod attach;
pub mod bpf;
mod child;
pub mod engine;
pub mod host;
pub mod kernel;
pub mod output;
pub mod probes;
pub mod session;
pub mod stats;
pub mod symbols;
pub mod tracefs;
mod usyms;

use codespan_reporting::term::termcolor::{ColorChoice, StandardStream};
use rstap_grammar::{Diagnostics, SourceMap};
use std::io::IsTerminal;

/// Prints diagnostics to stderr, in colour when stderr is a terminal.
pub fn report(files: &SourceMap, diags: &Diagnostics) {
    let choice = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        ColorChoice::Auto
    } else {
        ColorChoice::Never
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
