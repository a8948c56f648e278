//! rstap-stdlib: the tapset library, written in the SystemTap language.
//!
//! In: the files under `tapset/` (`*.stp` scripts, `*.stpm` macro files),
//! embedded at build time. Out: their names and texts. No logic lives here: the compiler parses and links them like any script
//! (tapsets are privileged: they may hold embedded-C declarations that rstap parses
//! but never runs).

include!(concat!(env!("OUT_DIR"), "/tapsets.rs"));

/// Every embedded tapset script (`*.stp`) as `(file name, text)`, sorted by name.
pub fn scripts() -> impl Iterator<Item = (&'static str, &'static str)> {
    TAPSETS.iter().copied().filter(|(n, _)| n.ends_with(".stp"))
}

/// Every embedded macro file (`*.stpm`: only `@define`s), visible to every script.
pub fn macros() -> impl Iterator<Item = (&'static str, &'static str)> {
    TAPSETS
        .iter()
        .copied()
        .filter(|(n, _)| n.ends_with(".stpm"))
}
