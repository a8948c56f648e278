//! `--dump-probe-types`, `--dump-functions`, `--dump-probe-aliases`: what a
//! script can use, one item per line, sorted, as stap lists them.

use crate::tapsets::Tapsets;
use rstap_compiler::check::{self, Library, PROBE_TYPES};
use rstap_grammar::SourceMap;
use rstap_runtime::cli::Cli;
use rstap_runtime::kernel::LiveKernel;
use std::io::Write;

#[derive(Clone, Copy, Debug)]
pub enum What {
    ProbeTypes,
    Functions,
    ProbeAliases,
}

/// Which dump the command line asks for, if any.
pub fn asked(cli: &Cli) -> Option<What> {
    if cli.dump_probe_types {
        Some(What::ProbeTypes)
    } else if cli.dump_functions {
        Some(What::Functions)
    } else if cli.dump_probe_aliases {
        Some(What::ProbeAliases)
    } else {
        None
    }
}

pub fn run(what: What, tapsets: &Tapsets, verbose: bool) -> Result<(), ()> {
    let lines = match what {
        What::ProbeTypes => PROBE_TYPES.iter().map(ToString::to_string).collect(),
        What::Functions | What::ProbeAliases => {
            let mut files = SourceMap::new();
            let mut macros: Vec<_> = tapsets
                .macros
                .iter()
                .map(|(name, text)| files.add(name.clone(), text.clone()))
                .collect();
            macros.extend(rstap_stdlib::macros().map(|(name, text)| files.add(name, text)));
            let facts = rstap_runtime::host::facts(false, "");
            let kernel = LiveKernel::new(verbose);
            let mut library =
                Library::load_with(&mut files, &facts, &macros, None, &tapsets.scripts)
                    .map_err(|d| rstap_runtime::report(&files, &d))?;
            // The syscall aliases come from this kernel's tracepoints; a
            // machine without tracefs lists the rest.
            let _ = library.add_syscalls(&mut files, &facts, &macros, &kernel);
            match what {
                What::Functions => check::signatures(&library, &kernel),
                _ => check::alias_definitions(&library),
            }
        }
    };
    let mut out = std::io::stdout().lock();
    for line in &lines {
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(())
}
