//! Fuzz target `parse`: arbitrary bytes in, through `rstap_grammar::parse` under one
//! of the option sets a user can choose; it asserts only that nothing panics.
//!
//! Bytes become text with `from_utf8_lossy`, not by rejecting invalid UTF-8: the
//! mutator breaks UTF-8 in most inputs it makes, and rejecting them would waste those
//! executions, while the lossy form still hands the lexer every input (invalid
//! sequences arrive as U+FFFD, a three-byte character the lexer must also survive).
//! A crash file therefore reproduces as a script after the same lossy conversion;
//! for ASCII and valid UTF-8 crash files it is byte-for-byte the script.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod worker;
use rstap_grammar::{ParseOptions, SourceMap, dump, parse};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // One option set per input, chosen by its length: parsing each input three
    // times made every execution three times as slow, while the mutator changes
    // lengths all the time, so every input shape meets every option set.
    let [a, b, c] = option_sets();
    let opts = match data.len() % 3 {
        0 => a,
        1 => b,
        _ => c,
    };
    // On the stack the binary's passes run on.
    let text = text.into_owned();
    worker::run(move || parse_one(&text, &opts));
});

/// The variations that change what `parse` does: no script arguments; three
/// arguments (a number, a word, a negative number) for `$1 @2 $3 $#` and `%( $# %)`;
/// guru mode, which admits embedded C and the guru-only @-operators.
fn option_sets() -> [ParseOptions; 3] {
    [
        ParseOptions::default(),
        ParseOptions {
            args: vec!["1".into(), "x".into(), "-2".into()],
            ..ParseOptions::default()
        },
        ParseOptions {
            privileged: true,
            ..ParseOptions::default()
        },
    ]
}

/// One parse, then what the driver does with its result: `-p1` dumps the tree, an
/// error is rendered with its source snippet (codespan panics on a span that is out
/// of range or not on a character boundary, so spans are checked here too).
fn parse_one(text: &str, opts: &ParseOptions) {
    let mut files = SourceMap::new();
    let id = files.add("fuzz.stp", text);
    match parse(&files, id, opts) {
        Ok(ast) => {
            let _ = dump::dump(&ast, "fuzz.stp");
        }
        Err(diags) => {
            let _ = diags.render(&files);
        }
    }
}
