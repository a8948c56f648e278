//! The names a tapset's text defines, found by scanning its words: shared by
//! the build script (which records them for every embedded tapset, so a run
//! does not rescan the library) and by the compiler (for the user's own
//! tapsets).

/// The word after each `function` and `probe` (an alias's first component),
/// and every word of a `global` line, in the order they appear.
pub fn defined(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    for line in text.lines() {
        let mut words = line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .peekable();
        while let Some(w) = words.next() {
            match w {
                "global" => {
                    names.extend(words.by_ref());
                }
                "function" | "probe" => {
                    if let Some(next) = words.peek() {
                        names.push(*next);
                    }
                }
                _ => {}
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::defined;

    #[test]
    fn every_embedded_tapset_records_what_it_defines() {
        for t in crate::TAPSETS {
            assert_eq!(t.defines, defined(t.text).as_slice(), "{}", t.name);
        }
        let task = crate::tapsets().find(|t| t.name == "task.stp");
        assert!(task.is_some_and(|t| t.defines.contains(&"task_pid")));
    }
}
