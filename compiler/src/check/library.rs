//! The tapset library: the embedded `*.stp` files of `rstap-stdlib` a script
//! can use (or all of them), parsed privileged, with the library's macro files
//! visible.

use super::code::Code;
use super::syscalls;
use crate::kernel::KernelInfo;
use rstap_grammar::ast::{self, Item, ProbePoint};
use rstap_grammar::{Diag, Diagnostics, Facts, FileId, ParseOptions, SourceMap, Span};
use std::collections::HashSet;

#[derive(Debug, Default)]
pub struct Library {
    files: Vec<ast::File>,
}

impl Library {
    /// Parses every embedded tapset into `files`. `macro_library` are the
    /// macro files already added (the same ones the user's script sees).
    pub fn load(
        files: &mut SourceMap,
        facts: &Facts,
        macro_library: &[FileId],
    ) -> Result<Library, Diagnostics> {
        Library::load_for(files, facts, macro_library, None)
    }

    /// Parses the embedded tapsets a script whose text is `script` can use
    /// (all of them for `None`): each one defining a name that appears in the
    /// script, or in a tapset taken before, and so on. Parsing all of them
    /// cost a small script two thirds of its compile time.
    pub fn load_for(
        files: &mut SourceMap,
        facts: &Facts,
        macro_library: &[FileId],
        script: Option<&str>,
    ) -> Result<Library, Diagnostics> {
        Library::load_with(files, facts, macro_library, script, &[])
    }

    /// [`Library::load_for`] with the user's own tapsets (`-I DIR`: name and
    /// text of each), which are always parsed and come first, so that their
    /// definitions win over the built-in library's.
    pub fn load_with(
        files: &mut SourceMap,
        facts: &Facts,
        macro_library: &[FileId],
        script: Option<&str>,
        user: &[(String, String)],
    ) -> Result<Library, Diagnostics> {
        let opts = ParseOptions {
            args: Vec::new(),
            facts: facts.clone(),
            privileged: true,
            macro_library: macro_library.to_vec(),
        };
        // Each tapset with the names it defines, scanned once.
        let mut pending: Vec<(&str, &str, &[&str])> = rstap_stdlib::tapsets()
            .map(|t| (t.name, t.text, t.defines))
            .collect();
        let mut wanted: HashSet<&str> = script.map(identifiers).unwrap_or_default();
        let mut parsed = Vec::new();
        for (name, text) in user {
            wanted.extend(identifiers(text));
            let id = files.add(name.clone(), text.clone());
            parsed.push(rstap_grammar::parse(files, id, &opts)?);
        }
        loop {
            let (take, keep): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, _, defs)| {
                script.is_none() || defs.iter().any(|n| wanted.contains(n))
            });
            pending = keep;
            if take.is_empty() {
                break;
            }
            for (name, text, _) in take {
                wanted.extend(identifiers(text));
                let id = files.add(name, text);
                parsed.push(rstap_grammar::parse(files, id, &opts)?);
            }
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

/// The identifiers of `text`, less its `/* */` comments and whole-line `//`
/// comments (the tapsets' documentation), but with the words of its strings
/// and other comments: a superset is harmless.
fn identifiers(text: &str) -> HashSet<&str> {
    let mut words = HashSet::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (code, after) = rest.split_once("/*").unwrap_or((rest, ""));
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            words.extend(
                line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')),
            );
        }
        rest = after.split_once("*/").map_or("", |(_, more)| more);
    }
    words
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

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(script: Option<&str>) -> Vec<String> {
        let mut files = SourceMap::new();
        let macros: Vec<FileId> = rstap_stdlib::macros()
            .map(|(name, text)| files.add(name, text))
            .collect();
        let library = Library::load_for(&mut files, &Facts::default(), &macros, script)
            .unwrap_or_else(|d| panic!("the tapsets parse:\n{}", d.render(&files)));
        let mut names: Vec<String> = library
            .files()
            .iter()
            .map(|f| files.name(f.file).to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_script_takes_the_tapsets_defining_what_it_names_and_what_they_name() {
        assert!(loaded(Some("probe begin { println(1) }")).is_empty());
        let oneshot = loaded(Some("probe oneshot { println(1) }"));
        assert!(
            oneshot.iter().all(|n| n.ends_with("lifecycle.stp")),
            "{oneshot:?}"
        );
        assert_eq!(oneshot.len(), 1);
        let all = loaded(None);
        assert_eq!(all.len(), rstap_stdlib::scripts().count());
    }

    #[test]
    fn definitions_are_the_word_after_function_and_probe_and_a_global_line() {
        let text = "/** sfunction f - x */\nfunction f:long (a) { return g(a) }\n\
                    probe my.alias = begin { }\nprivate global __x, __y\n";
        let names = rstap_stdlib::defined(text);
        for n in ["f", "my", "__x", "__y"] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
        let words = identifiers(text);
        assert!(words.contains("g") && words.contains("a"));
        assert!(!words.contains("sfunction"), "documentation is not code");
    }
}
