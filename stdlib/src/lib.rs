//! rstap-stdlib: the tapset library, written in the SystemTap language.
//!
//! In: the files under `tapset/`, embedded at build time. Out: their names and
//! texts. No logic lives here: the compiler parses and links them like any script
//! (tapsets are privileged: they may hold embedded-C declarations that rstap parses
//! but never runs).

include!(concat!(env!("OUT_DIR"), "/tapsets.rs"));

/// Every embedded tapset as `(file name, text)`, sorted by name.
pub fn tapsets() -> &'static [(&'static str, &'static str)] {
    TAPSETS
}
