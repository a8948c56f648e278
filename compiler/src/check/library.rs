//! The tapset library, parsed once: every embedded `*.stp` file of `rstap-stdlib`,
//! privileged, with the library's macro files visible.

use super::code::Code;
use super::syscalls;
use crate::kernel::KernelInfo;
use rstap_grammar::ast::{self, Item, ProbePoint};
use rstap_grammar::{Diag, Diagnostics, Facts, FileId, ParseOptions, SourceMap, Span};

#[derive(Debug, Default)]
pub struct Library {
    files: Vec<ast::File>,
}

impl Library {
    /// Parses the embedded tapsets into `files`. `macro_library` are the macro
    /// files already added (the same ones the user's script sees).
    pub fn load(
        files: &mut SourceMap,
        facts: &Facts,
        macro_library: &[FileId],
    ) -> Result<Library, Diagnostics> {
        let opts = ParseOptions {
            args: Vec::new(),
            facts: facts.clone(),
            privileged: true,
            macro_library: macro_library.to_vec(),
        };
        let mut parsed = Vec::new();
        for (name, text) in rstap_stdlib::scripts() {
            let id = files.add(name, text);
            parsed.push(rstap_grammar::parse(files, id, &opts)?);
        }
        Ok(Library { files: parsed })
    }

    /// Adds the syscall tapset generated from `kernel`'s syscall tracepoints
    /// (see [`syscalls`]), parsed as a privileged file of its own.
    pub fn add_syscalls(
        &mut self,
        files: &mut SourceMap,
        facts: &Facts,
        macro_library: &[FileId],
        kernel: &dyn KernelInfo,
    ) -> Result<(), Diagnostics> {
        let found = match syscalls::syscalls(kernel) {
            Ok(found) => found,
            Err(e) => {
                let id = files.add(syscalls::FILE_NAME, String::new());
                return Err(Diagnostics(vec![
                    Diag::new(Code::E0405, Span::new(id, 0, 0), e.0)
                        .with_label("while generating the syscall tapset"),
                ]));
            }
        };
        let text = syscalls::tapset(&found, &|name| {
            self.params(&format!("_syscall_argstr_{name}"))
        });
        let opts = ParseOptions {
            args: Vec::new(),
            facts: facts.clone(),
            privileged: true,
            macro_library: macro_library.to_vec(),
        };
        let id = files.add(syscalls::FILE_NAME, text);
        self.files.push(rstap_grammar::parse(files, id, &opts)?);
        Ok(())
    }

    /// The parameter names of the library function `name`.
    fn params(&self, name: &str) -> Option<Vec<String>> {
        self.files
            .iter()
            .flat_map(|f| &f.items)
            .find_map(|i| match i {
                Item::Function(f) if f.name.node == name => {
                    Some(f.params.iter().map(|p| p.name.node.clone()).collect())
                }
                _ => None,
            })
    }

    /// A library of already-parsed files (tests build small ones).
    pub fn from_files(files: Vec<ast::File>) -> Library {
        Library { files }
    }

    pub fn files(&self) -> &[ast::File] {
        &self.files
    }
}

/// Whether `script` may name a syscall alias (`syscall.*`, `nd_syscall.*`),
/// so the syscall tapset is worth generating: a probe or alias point whose
/// first component matches either name.
pub fn names_syscalls(script: &ast::File) -> bool {
    let points: Vec<&ProbePoint> = script
        .items
        .iter()
        .flat_map(|i| match i {
            Item::Probe(p) => p.points.iter().collect(),
            Item::Alias(a) => a.points.iter().collect(),
            _ => Vec::new(),
        })
        .collect();
    points_name_syscalls(&points)
}

/// Whether any of `points` starts with a component matching `syscall` or `nd_syscall`.
fn points_name_syscalls(points: &[&ProbePoint]) -> bool {
    points.iter().any(|p| {
        p.components.first().is_some_and(|c| {
            ["syscall", "nd_syscall"]
                .iter()
                .any(|n| rstap_grammar::facts::fnmatch(&c.name, n))
        })
    })
}
