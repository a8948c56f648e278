//! The files a compilation reads, addressed by [`FileId`], readable by codespan.

use crate::span::FileId;
use codespan_reporting::files::{self, Files, SimpleFile};
use std::ops::Range;

/// Every source text of a compilation: the user script, `-E` snippets, tapsets.
/// Clone is for the fuzz target `check`, which parses the tapset library once
/// and gives each input a copy to add its script to.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SimpleFile<String, String>>,
    /// Per file: whether it holds a character [`SourceMap::printable`] must
    /// replace. Found once when the file is added, not on every render: the
    /// tapset library is 150 KB, and a fuzz target renders diagnostics for
    /// every input.
    invisible: Vec<bool>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        let text = text.into();
        self.invisible.push(text.chars().any(invisible));
        self.files.push(SimpleFile::new(name.into(), text));
        id
    }

    pub fn name(&self, id: FileId) -> &str {
        self.files
            .get(id.0 as usize)
            .map_or("", |f| f.name().as_str())
    }

    pub fn text(&self, id: FileId) -> &str {
        self.files
            .get(id.0 as usize)
            .map_or("", |f| f.source().as_str())
    }

    /// 1-based line and column of a byte offset, as stap prints them.
    pub fn line_col(&self, id: FileId, offset: u32) -> (usize, usize) {
        let text = self.text(id);
        let offset = (offset as usize).min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        (line, col)
    }

    /// A copy for showing source lines, when some file holds a control or
    /// zero-width character: each becomes a visible one of the same UTF-8
    /// length, so byte offsets and columns stay, the terminal is not driven
    /// by the script's bytes, and the renderer draws a caret under it (it
    /// draws as many as the character is wide).
    pub fn printable(&self) -> Option<SourceMap> {
        if !self.invisible.contains(&true) {
            return None;
        }
        let files = self
            .files
            .iter()
            .zip(&self.invisible)
            .map(|(f, &invisible)| match invisible {
                true => {
                    let text = f.source().chars().map(visible).collect::<String>();
                    SimpleFile::new(f.name().clone(), text)
                }
                false => f.clone(),
            })
            .collect();
        Some(SourceMap {
            files,
            invisible: vec![false; self.invisible.len()],
        })
    }

    fn get(&self, id: FileId) -> Result<&SimpleFile<String, String>, files::Error> {
        self.files
            .get(id.0 as usize)
            .ok_or(files::Error::FileMissing)
    }
}

impl<'a> Files<'a> for SourceMap {
    type FileId = FileId;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: FileId) -> Result<&'a str, files::Error> {
        Ok(self.get(id)?.name().as_str())
    }

    fn source(&'a self, id: FileId) -> Result<&'a str, files::Error> {
        Ok(self.get(id)?.source().as_str())
    }

    fn line_index(&'a self, id: FileId, byte_index: usize) -> Result<usize, files::Error> {
        self.get(id)?.line_index((), byte_index)
    }

    fn line_range(&'a self, id: FileId, line_index: usize) -> Result<Range<usize>, files::Error> {
        self.get(id)?.line_range((), line_index)
    }
}

/// Takes no columns on a terminal (or moves the cursor), besides the tab and
/// line ends that the renderer handles itself.
fn invisible(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// `c`, or a visible stand-in of its UTF-8 length when it is invisible.
fn visible(c: char) -> char {
    if !invisible(c) {
        return c;
    }
    match c.len_utf8() {
        1 => '?',
        2 => '\u{bf}',
        _ => '\u{fffd}',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_replaces_invisible_characters_in_the_files_that_have_them() {
        let mut files = SourceMap::new();
        let clean = files.add("clean.stp", "probe begin {}\n");
        assert!(files.printable().is_none(), "nothing to replace yet");
        let bell = files.add("bell.stp", "a\u{7}b\u{200b}c\n");
        let shown = files
            .printable()
            .unwrap_or_else(|| panic!("bell.stp holds a BEL and a zero-width space"));
        assert_eq!(shown.text(clean), "probe begin {}\n");
        assert_eq!(shown.text(bell), "a?b\u{fffd}c\n");
        assert_eq!(shown.text(bell).len(), files.text(bell).len());
        assert!(shown.printable().is_none(), "a printable copy is clean");
    }
}
