//! The tapset library, parsed once: every embedded `*.stp` file of `rstap-stdlib`,
//! privileged, with the library's macro files visible.

use rstap_grammar::ast;
use rstap_grammar::{Diagnostics, Facts, FileId, ParseOptions, SourceMap};

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

    /// A library of already-parsed files (tests build small ones).
    pub fn from_files(files: Vec<ast::File>) -> Library {
        Library { files }
    }

    pub fn files(&self) -> &[ast::File] {
        &self.files
    }
}
