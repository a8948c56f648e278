//! `rstap -l PP` / `-L PP`: print the matching probe points, one per line: the
//! tapset aliases the pattern names, else the kernel's and binaries' points.

use rstap_compiler::check::{Library, list_aliases, names_syscalls};
use rstap_compiler::listing::{ListError, list};
use rstap_grammar::ast::Item;
use rstap_grammar::{ParseOptions, SourceMap};
use rstap_runtime::kernel::LiveKernel;
use std::io::Write;

/// Exit status as stap's: success when anything matched.
pub fn run(pattern: &str, vars: bool, verbose: bool) -> Result<(), ()> {
    let mut files = SourceMap::new();
    let id = files.add("<pattern>", format!("probe {pattern} {{}}"));
    let ast = rstap_grammar::parse(&files, id, &ParseOptions::default())
        .map_err(|d| rstap_runtime::report(&files, &d))?;
    let macro_library: Vec<_> = rstap_stdlib::macros()
        .map(|(name, text)| files.add(name, text))
        .collect();
    let facts = rstap_runtime::host::facts(false, pattern);
    let mut library = Library::load(&mut files, &facts, &macro_library)
        .map_err(|d| rstap_runtime::report(&files, &d))?;
    let kernel = LiveKernel::new(verbose);
    if names_syscalls(&ast) {
        library
            .add_syscalls(&mut files, &facts, &macro_library, &kernel)
            .map_err(|d| rstap_runtime::report(&files, &d))?;
    }
    let mut lines = Vec::new();
    for item in &ast.items {
        let Item::Probe(p) = item else { continue };
        for point in &p.points {
            let aliases = list_aliases(point, &library, &kernel, vars);
            if !aliases.is_empty() {
                lines.extend(aliases);
                continue;
            }
            match list(point, &kernel, vars) {
                Ok(found) => lines.extend(found),
                Err(ListError::Kernel(e)) => {
                    eprintln!("rstap: {e}");
                    return Err(());
                }
                Err(ListError::Unsupported(why)) => {
                    eprintln!("rstap: {why}");
                    return Err(());
                }
            }
        }
    }
    lines.sort();
    lines.dedup();
    let mut out = std::io::stdout().lock();
    for l in &lines {
        let _ = writeln!(out, "{l}");
    }
    if lines.is_empty() { Err(()) } else { Ok(()) }
}
