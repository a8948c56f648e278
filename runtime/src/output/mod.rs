//! What scripts print, byte for byte as SystemTap 4.8 prints it: printf directives,
//! the `print`/`printd` families and the ASCII-art histograms.
//!
//! Pure code: it fills byte buffers and never writes to a file descriptor. Output
//! is bytes, not text, because stap strings need not be UTF-8 and `%b` writes raw
//! binary.
//!
//! Length limits are the caller's: stap truncates one `printf` to 8192 bytes
//! ([`printf::BUFFER_SIZE`]) and every `sprint*` result, histograms included, to
//! MAXSTRINGLEN - 1 bytes, cut at the first NUL.

pub mod hist;
pub mod json;
pub mod printf;

pub use printf::Arg;
use printf::until_nul;

/// `print`, `println`, `printd`, `printdln` and their `sprint*` twins: each long in
/// decimal (`%d`), each string as is up to a NUL (`%s`), `delim` between values
/// (`printd*`), then a newline for the `*ln` forms.
///
/// `delim` is the delimiter literal already decoded by [`decode_escapes`] and cut
/// at a NUL. Histograms are printed by [`hist`] instead.
pub fn print_values(out: &mut Vec<u8>, values: &[Arg<'_>], delim: Option<&[u8]>, newline: bool) {
    for (i, &v) in values.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(delim.unwrap_or_default());
        }
        print_value(out, v);
    }
    if newline {
        out.push(b'\n');
    }
}

/// One value as `print` shows it: a long in decimal, a string up to a NUL.
pub fn print_value(out: &mut Vec<u8>, v: Arg<'_>) {
    match v {
        Arg::Long(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Arg::Str(s) => out.extend_from_slice(until_nul(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstap_compiler::mir::decode_escapes;

    fn printed(values: &[Arg<'_>], delim: Option<&[u8]>, newline: bool) -> String {
        let mut out = Vec::new();
        print_values(&mut out, values, delim, newline);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn print_concatenates_values() {
        let v = [Arg::Long(1), Arg::Str(b"a"), Arg::Long(2)];
        assert_eq!(printed(&v, None, false), "1a2");
        assert_eq!(printed(&v, None, true), "1a2\n");
    }

    #[test]
    fn printd_puts_the_delimiter_between_values_only() {
        let v = [Arg::Str(b"a"), Arg::Long(1), Arg::Str(b"b")];
        assert_eq!(printed(&v, Some(b","), false), "a,1,b");
        assert_eq!(printed(&v, Some(b", "), true), "a, 1, b\n");
        let delim = decode_escapes(r"\t");
        assert_eq!(printed(&v[..2], Some(&delim), true), "a\t1\n");
    }

    #[test]
    fn longs_print_in_signed_decimal() {
        let v = [Arg::Long(i64::MIN), Arg::Str(b" "), Arg::Long(-1)];
        assert_eq!(printed(&v, None, false), "-9223372036854775808 -1");
    }

    #[test]
    fn strings_print_as_bytes_up_to_a_nul() {
        let mut out = Vec::new();
        print_values(
            &mut out,
            &[Arg::Str(b"\xff\x00z"), Arg::Str(b"")],
            None,
            true,
        );
        assert_eq!(out, b"\xff\n");
    }
}
