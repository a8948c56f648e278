//! String literals keep their C escapes in the AST (as stap's parse dump shows
//! them); the IR holds the bytes a C compiler would have made of them.

/// A string literal's bytes, from the text the lexer stores (C escapes as written):
/// the escapes are read as gcc reads them when it compiles stap's generated C.
///
/// * `\a \b \f \n \r \t \v \\ \' \" \?` are the usual bytes;
/// * `\ooo` takes up to three octal digits, `\x` every hex digit that follows; both
///   keep the low 8 bits of the value (gcc warns and truncates);
/// * `\x` with no hex digit (a gcc error) and any other escape are kept as written.
///
/// A `\0` yields a NUL byte; C code stops reading a string there, and so must
/// whoever uses the bytes as a C string.
pub fn decode_escapes(stored: &str) -> Vec<u8> {
    let b = stored.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let e = b[i + 1];
        i += 2;
        let simple = match e {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' | b'\'' | b'"' | b'?' => Some(e),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
        } else if (b'0'..=b'7').contains(&e) {
            let mut v = u32::from(e - b'0');
            let mut n = 1;
            while n < 3 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                v = v * 8 + u32::from(b[i] - b'0');
                i += 1;
                n += 1;
            }
            out.push(v as u8);
        } else if e == b'x' && i < b.len() && b[i].is_ascii_hexdigit() {
            let mut v = 0u8;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                let d = (b[i] as char).to_digit(16).unwrap_or(0) as u8;
                v = v.wrapping_shl(4) | d;
                i += 1;
            }
            out.push(v);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::decode_escapes;

    #[test]
    fn c_escapes_become_bytes() {
        assert_eq!(decode_escapes(r"a\tb\n"), b"a\tb\n");
        assert_eq!(decode_escapes(r"\101\x42\0"), b"AB\0");
        assert_eq!(decode_escapes(r"\\ \a\b\f\v\r"), b"\\ \x07\x08\x0c\x0b\r");
        assert_eq!(
            decode_escapes(r"\1012"),
            b"A2",
            "octal stops after three digits"
        );
        assert_eq!(decode_escapes(r"\x4142"), b"B", "hex keeps the low byte");
        assert_eq!(decode_escapes("trailing\\"), b"trailing\\");
        assert_eq!(decode_escapes("é"), "é".as_bytes());
    }

    #[test]
    fn escapes_decode_as_gcc_reads_them() {
        assert_eq!(decode_escapes(r"\x41\101\n"), b"AA\n");
        assert_eq!(decode_escapes(r"\t\\\a\b\f\r\v"), b"\t\\\x07\x08\x0c\r\x0b");
        assert_eq!(decode_escapes("say \"hi\""), b"say \"hi\"");
        assert_eq!(
            decode_escapes(r"\1234"),
            b"S4",
            "three octal digits at most"
        );
        assert_eq!(decode_escapes(r"\08"), b"\x008");
        assert_eq!(decode_escapes(r"\777"), b"\xff", "octal keeps the low byte");
        assert_eq!(
            decode_escapes(r"\x4142|\x0041"),
            b"B|A",
            "hex takes every digit"
        );
        assert_eq!(decode_escapes(r"\xfg"), b"\x0fg");
        assert_eq!(decode_escapes(r"\xg"), b"\\xg");
        assert_eq!(decode_escapes(r"a\\nb"), b"a\\nb", "an escaped backslash");
        assert_eq!(decode_escapes("\\"), b"\\");
        assert_eq!(decode_escapes("héllo"), "héllo".as_bytes());
    }
}
