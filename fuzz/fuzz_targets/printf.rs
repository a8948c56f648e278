//! Fuzz target `printf`: a format string and argument values from the input,
//! through the format parser (`rstap_grammar::format::parse_format`, which the
//! checker and lowering use) and the runtime's formatter
//! (`rstap_runtime::output::printf::conversion`), the way the user-space engine
//! runs a `printf`; then the same values into log and linear histograms, drawn
//! by `rstap_runtime::output::hist`.
//!
//! Input layout: the bytes before the first NUL are the format (lossy UTF-8, as
//! the `parse` target takes scripts); the rest is read as the values, in order:
//! for each conversion, a `*` width and a `*` precision each take 8 bytes
//! (a little-endian `i64`), then one selector byte says whether the argument has
//! the type the conversion wants (the checker's guarantee) or the other one (which
//! must give `TypeMismatch`, not a panic); a long takes 8 bytes, a string a
//! length byte and that many bytes. Missing bytes read as zero. What is left
//! after the format feeds the histograms.
//!
//! Besides "no panic", it checks what every caller relies on: a conversion of
//! the right type succeeds (except `%m`/`%M`), and no conversion writes more than
//! its clamped width or precision, its string or 22 digits allow, plus a sign
//! or prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rstap_compiler::mir::decode_escapes;
use rstap_grammar::format::{Conversion, Piece, Width, parse_format};
use rstap_runtime::output::hist;
use rstap_runtime::output::printf::{Arg, BUFFER_SIZE, PrintError, conversion, until_nul};
use rstap_runtime::stats::{LinearHist, LogHist};

/// The values part of the input, read front to back; past its end, zeros.
struct Values<'a>(&'a [u8]);

impl<'a> Values<'a> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn long(&mut self) -> i64 {
        let mut b = [0u8; 8];
        let n = self.0.len().min(8);
        b[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        i64::from_le_bytes(b)
    }

    fn bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte()).min(self.0.len());
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        s
    }

    fn star(&mut self, w: Width) -> Option<i64> {
        match w {
            Width::None => None,
            Width::Fixed(n) => Some(i64::from(n)),
            Width::Arg => Some(self.long()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (format, values) = match data.iter().position(|&b| b == 0) {
        Some(n) => (&data[..n], &data[n + 1..]),
        None => (data, &[][..]),
    };
    let mut values = Values(values);
    if let Ok(pieces) = parse_format(&String::from_utf8_lossy(format)) {
        let mut out = Vec::new();
        for p in &pieces {
            match p {
                Piece::Literal(text) => out.extend_from_slice(until_nul(&decode_escapes(text))),
                Piece::Conversion(c) => one(&mut out, c, &mut values),
            }
        }
    }
    histograms(&mut values);
});

/// One conversion with arguments taken from `values`, and the checks on it.
fn one(out: &mut Vec<u8>, c: &Conversion, values: &mut Values<'_>) {
    let width = values.star(c.width);
    let precision = values.star(c.precision);
    let wants_string = c.conv == 's';
    let right_type = values.byte() & 1 == 0;
    let arg = if wants_string == right_type {
        Arg::Str(values.bytes())
    } else {
        Arg::Long(values.long())
    };
    let before = out.len();
    let result = conversion(out, c, width, precision, arg);
    match (c.conv, right_type) {
        ('m' | 'M', _) => assert_eq!(result, Err(PrintError::Unsupported), "%{}", c.conv),
        (_, true) => assert_eq!(result, Ok(()), "{c:?} of {arg:?}"),
        (_, false) => assert_eq!(result, Err(PrintError::TypeMismatch), "{c:?} of {arg:?}"),
    }
    let len = match arg {
        Arg::Str(s) => until_nul(s).len(),
        Arg::Long(_) => 22,
    };
    // Width and precision are clamped to the buffer size; a number's precision
    // counts digits only, so a sign or a `0x` can come on top (`%.8192p` is
    // 8194 bytes), and `%0s` adds a NUL.
    let limit = (BUFFER_SIZE as usize).max(len) + 2;
    let grown = out.len() - before;
    assert!(
        grown <= limit,
        "{c:?} with width {width:?}, precision {precision:?} of {arg:?} wrote {grown} bytes"
    );
}

/// A log histogram and, when its parameters are valid, a linear one, filled from
/// the values left and drawn. Small parameters (from single bytes) most of the
/// time, so that the fuzzer meets valid linear layouts often.
fn histograms(values: &mut Values<'_>) {
    let wide = values.byte() & 1 == 1;
    let mut param = || {
        if wide {
            values.long()
        } else {
            i64::from(values.byte() as i8)
        }
    };
    let (start, stop, interval) = (param(), param(), param());
    let mut linear = LinearHist::new(start, stop, interval).ok();
    let mut log = LogHist::new();
    for _ in 0..64 {
        if values.0.is_empty() {
            break;
        }
        let v = if wide {
            values.long()
        } else {
            i64::from(values.byte() as i8)
        };
        let times = 1 + usize::from(values.byte() % 8);
        for _ in 0..times {
            log.add(v);
            if let Some(h) = linear.as_mut() {
                h.add(v);
            }
        }
    }
    let mut out = Vec::new();
    hist::render_log(&mut out, &log);
    if let Some(h) = &linear {
        hist::render_linear(&mut out, h);
    }
}
