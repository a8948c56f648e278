//! String literals keep their C escapes in the AST (as stap's parse dump shows
//! them); the IR holds the bytes a C compiler would have made of them.

/// The bytes of a literal's stored spelling: `\n \t \r \a \b \f \v \\`, octal
/// `\101` (one to three digits) and hex `\x41` (one or more digits; the low byte
/// is kept, as C truncates). Other text is copied as UTF-8.
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
        i += 1;
        let c = b[i];
        i += 1;
        let simple = match c {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            b'"' => Some(b'"'),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            continue;
        }
        match c {
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match b.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let start = i;
                let mut v: u32 = 0;
                while let Some(d) = b.get(i).and_then(|&d| (d as char).to_digit(16)) {
                    v = v.wrapping_mul(16).wrapping_add(d);
                    i += 1;
                }
                if i == start {
                    // `\x` without digits: C rejects it; keep the text.
                    out.extend_from_slice(b"\\x");
                } else {
                    out.push((v & 0xff) as u8);
                }
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
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
}
