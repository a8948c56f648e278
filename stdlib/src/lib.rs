//! rstap-stdlib: the tapset library, written in the SystemTap language.
//!
//! In: the files under `tapset/` (`*.stp` scripts, `*.stpm` macro files),
//! embedded at build time. Out: their names and texts. No logic lives here: the compiler parses and links them like any script
//! (tapsets are privileged: they may hold embedded-C declarations that rstap parses
//! but never runs).

mod defines;
pub use defines::defined;

/// One embedded file.
#[derive(Clone, Copy, Debug)]
pub struct Tapset {
    pub name: &'static str,
    pub text: &'static str,
    /// What [`defined`] finds in `text`, computed when the crate was built.
    pub defines: &'static [&'static str],
}

include!(concat!(env!("OUT_DIR"), "/tapsets.rs"));

/// Every embedded tapset script (`*.stp`), sorted by name.
pub fn tapsets() -> impl Iterator<Item = &'static Tapset> {
    TAPSETS.iter().filter(|t| t.name.ends_with(".stp"))
}

/// Every embedded tapset script (`*.stp`) as `(file name, text)`, sorted by name.
pub fn scripts() -> impl Iterator<Item = (&'static str, &'static str)> {
    tapsets().map(|t| (t.name, t.text))
}

/// Every embedded macro file (`*.stpm`: only `@define`s), visible to every script.
pub fn macros() -> impl Iterator<Item = (&'static str, &'static str)> {
    TAPSETS
        .iter()
        .filter(|t| t.name.ends_with(".stpm"))
        .map(|t| (t.name, t.text))
}
