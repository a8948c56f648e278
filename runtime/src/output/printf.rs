//! One printf directive at a time, with the semantics of the code stap 4.8 generates
//! for `printf`/`sprintf` (its `number()`, `_stp_vsprint_char`, `_stp_vsprint_memory`
//! and `_stp_vsprint_binary` helpers): every integer conversion sees the full int64,
//! `%p` is `%#x`, `%#x` of 0 is `0x0`, `%.0d` of 0 is `0`, `%b` writes raw bytes.

use rstap_grammar::format::Conversion;

/// The print buffer of one `printf` (`STP_BUFFER_SIZE`). Widths and precisions are
/// clamped to it; the caller truncates a whole `printf` to it and a `sprintf` to
/// MAXSTRINGLEN - 1.
pub const BUFFER_SIZE: i64 = 8192;

/// One printf argument. Strings are bytes, not necessarily UTF-8; like stap's C
/// strings they end at the first NUL, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg<'a> {
    Long(i64),
    Str(&'a [u8]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrintError {
    /// `%m`/`%M`: they read kernel or user memory, which this layer cannot do.
    Unsupported,
    /// A string for a numeric conversion or a number for `%s`. The type checker
    /// rules this out, so it is an internal error.
    TypeMismatch,
}

impl PrintError {
    pub fn message(self) -> &'static str {
        match self {
            PrintError::Unsupported => "printf conversion needs memory access (%m, %M)",
            PrintError::TypeMismatch => "printf argument type does not match its conversion",
        }
    }
}

/// Flag bits as stap's runtime names them (`enum print_flag`).
#[derive(Clone, Copy, Debug, Default)]
struct Flags {
    zeropad: bool,
    sign: bool,
    plus: bool,
    space: bool,
    left: bool,
    special: bool,
    large: bool,
}

impl Flags {
    fn of(conv: &Conversion) -> Flags {
        let f = conv.flag;
        Flags {
            zeropad: f == Some('0'),
            sign: matches!(conv.conv, 'd' | 'i'),
            plus: f == Some('+'),
            space: f == Some(' '),
            left: f == Some('-'),
            special: f == Some('#') || conv.conv == 'p',
            large: conv.conv == 'X',
        }
    }
}

/// A width or precision as the generated code sees it: absent is -1; a given value
/// (also one taken from a `*` argument) is cut to a C `int` and clamped to
/// `0..=BUFFER_SIZE`. So a negative `*` width is 0, not left-justification: that is
/// what stap 4.8's compiled printf does (only its legacy `vsnprintf` path flips it).
fn field(v: Option<i64>) -> i64 {
    v.map_or(-1, |v| i64::from(v as i32).clamp(0, BUFFER_SIZE))
}

/// Appends one conversion. `width` and `precision` are the field values once a `*`
/// has been replaced by its argument, `None` when the directive has none.
pub fn conversion(
    out: &mut Vec<u8>,
    conv: &Conversion,
    width: Option<i64>,
    precision: Option<i64>,
    arg: Arg<'_>,
) -> Result<(), PrintError> {
    let flags = Flags::of(conv);
    let (width, precision) = (field(width), field(precision));
    match (conv.conv, arg) {
        ('m' | 'M', _) => Err(PrintError::Unsupported),
        ('s', Arg::Str(s)) => {
            string(out, s, width, precision, flags);
            Ok(())
        }
        ('c', Arg::Long(v)) => {
            character(out, v as u8, width, flags);
            Ok(())
        }
        ('b', Arg::Long(v)) => {
            binary(out, v, width, precision, flags);
            Ok(())
        }
        (c @ ('d' | 'i' | 'u' | 'o' | 'x' | 'X' | 'p'), Arg::Long(v)) => {
            let base = match c {
                'o' => 8,
                'x' | 'X' | 'p' => 16,
                _ => 10,
            };
            number(out, v as u64, base, width, precision, flags);
            Ok(())
        }
        _ => Err(PrintError::TypeMismatch),
    }
}

/// The part of a C string that C sees: up to the first NUL.
pub fn until_nul(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |n| &s[..n])
}

fn pad(out: &mut Vec<u8>, byte: u8, n: i64) {
    if n > 0 {
        out.resize(out.len() + n as usize, byte);
    }
}

/// Integers: sign (for `d`/`i`), the `0x`/`0` prefix for `#`, precision as a
/// minimum digit count, then padding to the width.
fn number(out: &mut Vec<u8>, num: u64, base: u64, width: i64, precision: i64, mut f: Flags) {
    if f.left {
        f.zeropad = false;
    }
    let mut num = num;
    let mut size = width;
    let mut sign = None;
    if f.sign {
        if (num as i64) < 0 {
            sign = Some(b'-');
            num = (num as i64).wrapping_neg() as u64;
        } else if f.plus {
            sign = Some(b'+');
        } else if f.space {
            sign = Some(b' ');
        }
    }
    if sign.is_some() {
        size -= 1;
    }
    let prefix: &[u8] = match (f.special, base) {
        (true, 16) if f.large => b"0X",
        (true, 16) => b"0x",
        (true, 8) => b"0",
        _ => b"",
    };
    size -= prefix.len() as i64;
    let digits: &[u8; 16] = if f.large {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut tmp = Vec::with_capacity(22);
    loop {
        tmp.push(digits[(num % base) as usize]);
        num /= base;
        if num == 0 {
            break;
        }
    }
    let ndigits = tmp.len() as i64;
    let precision = precision.max(ndigits);
    size -= precision;
    if !f.zeropad && !f.left {
        pad(out, b' ', size);
    }
    out.extend(sign);
    out.extend_from_slice(prefix);
    if f.zeropad {
        pad(out, b'0', size);
    }
    pad(out, b'0', precision - ndigits);
    out.extend(tmp.iter().rev());
    if f.left {
        pad(out, b' ', size);
    }
}

/// `%c`: the low byte of the value; `#` escapes what is not printable ASCII.
fn character(out: &mut Vec<u8>, c: u8, width: i64, f: Flags) {
    let mut buf = [c, 0, 0, 0];
    let shown: &[u8] = if f.special && (!(b' '..=b'~').contains(&c) || c == b'\'' || c == b'\\') {
        let esc = match c {
            0x07 => Some(b'a'),
            0x08 => Some(b'b'),
            0x0c => Some(b'f'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            0x0b => Some(b'v'),
            b'\'' | b'\\' => Some(c),
            _ => None,
        };
        buf[0] = b'\\';
        match esc {
            Some(e) => {
                buf[1] = e;
                &buf[..2]
            }
            None => {
                buf[1] = b'0' + (c >> 6);
                buf[2] = b'0' + ((c >> 3) & 7);
                buf[3] = b'0' + (c & 7);
                &buf[..4]
            }
        }
    } else {
        &buf[..1]
    };
    let fill = width - shown.len() as i64;
    if !f.left {
        pad(out, b' ', fill);
    }
    out.extend_from_slice(shown);
    if f.left {
        pad(out, b' ', fill);
    }
}

/// `%s`: precision caps the length (absent means the buffer size; `.0` or a
/// negative `.*` print nothing). The `0` flag pads with spaces and then, as stap
/// does, appends a NUL byte.
fn string(out: &mut Vec<u8>, s: &[u8], width: i64, precision: i64, f: Flags) {
    let s = until_nul(s);
    let cap = if precision < 0 {
        BUFFER_SIZE
    } else {
        precision
    };
    let s = &s[..s.len().min(cap as usize)];
    let fill = width - s.len() as i64;
    if !f.left {
        pad(out, b' ', fill);
    }
    out.extend_from_slice(s);
    if f.left {
        pad(out, b' ', fill);
    }
    if f.zeropad {
        out.push(0);
    }
}

/// `%b`: the value's low 1, 2, 4 or 8 bytes in little-endian order, padded with NUL
/// bytes to the width. The size is the precision if it is 1, 2, 4 or 8, else the
/// width if it is one of those, else 8.
fn binary(out: &mut Vec<u8>, v: i64, width: i64, precision: i64, f: Flags) {
    let valid = |n: i64| matches!(n, 1 | 2 | 4 | 8).then_some(n);
    let (width, size) = match (width, valid(precision)) {
        (-1, None) => (8, 8),
        (-1, Some(p)) => (p, p),
        (w, Some(p)) => (w, p),
        (w, None) => (w, valid(w).unwrap_or(8)),
    };
    if !f.left {
        pad(out, 0, width - size);
    }
    out.extend_from_slice(&v.to_le_bytes()[..size as usize]);
    if f.left {
        pad(out, 0, width - size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstap_compiler::mir::decode_escapes;
    use rstap_grammar::format::{Piece, Width, parse_format};

    /// One argument of a test printf.
    #[derive(Clone, Copy, Debug)]
    enum A {
        L(i64),
        S(&'static str),
        B(&'static [u8]),
    }
    use A::{B, L, S};

    /// Runs `printf(fmt, args...)` as the engine will: literal text, then each
    /// conversion with its `*` fields taken from the argument list.
    fn printf(fmt: &str, args: &[A]) -> Vec<u8> {
        let pieces = parse_format(fmt)
            .unwrap_or_else(|e| panic!("format {fmt:?} should parse: {}", e.message()));
        let mut args = args.iter();
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Literal(text) => out.extend_from_slice(until_nul(&decode_escapes(&text))),
                Piece::Conversion(c) => {
                    let width = star(c.width, &mut args, fmt);
                    let precision = star(c.precision, &mut args, fmt);
                    let arg = match args.next() {
                        Some(L(v)) => Arg::Long(*v),
                        Some(S(s)) => Arg::Str(s.as_bytes()),
                        Some(B(b)) => Arg::Str(b),
                        None => panic!("{fmt:?}: too few arguments"),
                    };
                    conversion(&mut out, &c, width, precision, arg)
                        .unwrap_or_else(|e| panic!("{fmt:?}: {}", e.message()));
                }
            }
        }
        assert!(args.next().is_none(), "{fmt:?}: too many arguments");
        out
    }

    fn star(w: Width, args: &mut std::slice::Iter<'_, A>, fmt: &str) -> Option<i64> {
        match w {
            Width::None => None,
            Width::Fixed(n) => Some(i64::from(n)),
            Width::Arg => match args.next() {
                Some(L(v)) => Some(*v),
                other => panic!("{fmt:?}: `*` needs a long argument, got {other:?}"),
            },
        }
    }

    #[track_caller]
    fn check(fmt: &str, args: &[A], expected: &str) {
        let got = printf(fmt, args);
        assert_eq!(
            String::from_utf8_lossy(&got),
            expected,
            "printf({fmt:?}, {args:?})"
        );
    }

    #[track_caller]
    fn check_bytes(fmt: &str, args: &[A], expected: &[u8]) {
        assert_eq!(printf(fmt, args), expected, "printf({fmt:?}, {args:?})");
    }

    #[test]
    fn reference_examples_for_the_kernel_runtime() {
        check("%u", &[L(-1)], "18446744073709551615");
        check("%#o", &[L(1)], "01");
        check("%#x", &[L(2)], "0x2");
        check("%#X", &[L(3)], "0X3");
        check("%p", &[L(0x1234abcd)], "0x1234abcd");
        check("%#c %#c %#c", &[L(0), L(9), L(42)], "\\000 \\t *");
        check("%.3s", &[S("abcdef")], "abc");
        check("%d%%", &[L(5)], "5%");
    }

    #[test]
    fn reference_examples_seen_in_stapbpf_hold_in_64_bits() {
        check(
            "d=%d i=%i u=%u x=%x X=%X o=%o p=%p c=%c",
            &[L(-1), L(5), L(-1), L(255), L(255), L(8), L(4096), L(65)],
            "d=-1 i=5 u=18446744073709551615 x=ff X=FF o=10 p=0x1000 c=A",
        );
        check(
            "[%5d][%-5d][%05d][%+d][%10s][%-10s][%#x][%#o][%.3s]",
            &[
                L(42),
                L(42),
                L(42),
                L(42),
                S("hi"),
                S("hi"),
                L(255),
                L(8),
                S("abcdef"),
            ],
            "[   42][42   ][00042][+42][        hi][hi        ][0xff][010][abc]",
        );
        check("%d", &[L(1 << 40)], "1099511627776");
    }

    #[test]
    fn directives_from_real_scripts() {
        check(
            "%-16s %10d %5d %-8s %08x %016lx",
            &[S("swapper"), L(1234), L(-7), S("R"), L(0xbeef), L(-1)],
            "swapper                1234    -7 R        0000beef ffffffffffffffff",
        );
        check(
            "%2d,%1d %.3s %*s|",
            &[L(5), L(17), S("abcd"), L(4), S("x")],
            " 5,17 abc    x|",
        );
    }

    #[test]
    fn int64_extremes() {
        let min = L(i64::MIN);
        check("%d", &[min], "-9223372036854775808");
        check("%i", &[L(i64::MAX)], "9223372036854775807");
        check("%u", &[min], "9223372036854775808");
        check("%x", &[min], "8000000000000000");
        check("%X", &[L(-1)], "FFFFFFFFFFFFFFFF");
        check("%o", &[min], "1000000000000000000000");
        check("%o", &[L(-1)], "1777777777777777777777");
        check("%#o", &[L(-1)], "01777777777777777777777");
        check("%+d", &[min], "-9223372036854775808");
        check("%25d|", &[min], "     -9223372036854775808|");
        check("%025d|", &[min], "-000009223372036854775808|");
        check("%p", &[L(-1)], "0xffffffffffffffff");
    }

    #[test]
    fn flags() {
        check("%+d %+d %+d", &[L(5), L(0), L(-5)], "+5 +0 -5");
        check("% d % d", &[L(5), L(-5)], " 5 -5");
        check("% 5d|%+5d|", &[L(5), L(5)], "    5|   +5|");
        check(
            "%05d|%05d|%05d",
            &[L(-42), L(42), L(0)],
            "-0042|00042|00000",
        );
        check("%-5d|%-5d|", &[L(-42), L(7)], "-42  |7    |");
        check("%#x %#x %#X", &[L(0), L(255), L(255)], "0x0 0xff 0XFF");
        check("%#o %#o", &[L(0), L(8)], "00 010");
        check("%#8x|%#8o|", &[L(255), L(8)], "    0xff|     010|");
        // `+` and space only sign d and i.
        check("%+u|% x|%+x", &[L(5), L(5), L(5)], "5|5|5");
        // `#` on decimal changes nothing.
        check("%#d", &[L(12)], "12");
    }

    #[test]
    fn width_and_precision() {
        check(
            "%.3d|%.3x|%5.3d|%-5.3d|",
            &[L(7), L(14), L(7), L(-7)],
            "007|00e|  007|-007 |",
        );
        check("%.0d|%.0x|", &[L(0), L(0)], "0|0|");
        check("%05.3d|", &[L(7)], "00007|");
        check("%08.3x|", &[L(0x1f)], "0000001f|");
        check("%.10p|", &[L(255)], "0x00000000ff|");
        check(
            "%08p|%-8p|%8p|",
            &[L(12), L(12), L(12)],
            "0x00000c|0xc     |     0xc|",
        );
        check("%*d|%-*d|", &[L(4), L(1), L(4), L(2)], "   1|2   |");
        check("%.*d|", &[L(3), L(5)], "005|");
        check("%*.*d|", &[L(6), L(3), L(5)], "   005|");
    }

    #[test]
    fn star_values_are_int_sized_and_clamped() {
        // stap 4.8's generated code clamps a negative `*` width to 0: no
        // left-justification, unlike C.
        check("%*d|", &[L(-5), L(42)], "42|");
        check("%*s|", &[L(-5), S("ab")], "ab|");
        // A negative `*` precision becomes 0: `%s` then prints nothing.
        check("%.*s|", &[L(-1), S("abc")], "|");
        check("%.*d|", &[L(-1), L(0)], "0|");
        // The value is cut to a C int first: 2^32 + 3 is 3.
        check("%*d|", &[L((1 << 32) + 3), L(1)], "  1|");
        // And clamped to the print buffer.
        assert_eq!(printf("%*d", &[L(1 << 20), L(1)]).len(), 8192);
    }

    #[test]
    fn chars() {
        check("%c", &[L(65)], "A");
        check("%c%c", &[L(0x141), L(0x4242)], "AB");
        check("%3c|%-3c|%03c|", &[L(65), L(66), L(67)], "  A|B  |  C|");
        check(
            "%#c%#c%#c%#c%#c%#c%#c%#c%#c",
            &[L(7), L(8), L(12), L(10), L(13), L(11), L(39), L(92), L(34)],
            "\\a\\b\\f\\n\\r\\v\\'\\\\\"",
        );
        check(
            "%#c|%#c|%#c",
            &[L(0x7f), L(0xff), L(-128)],
            "\\177|\\377|\\200",
        );
        check("%#6c|%-6c|", &[L(10), L(1)], "    \\n|\u{1}     |");
        check_bytes("%c|", &[L(0)], b"\0|");
        check_bytes("%c", &[L(0xe9)], b"\xe9");
    }

    #[test]
    fn strings() {
        check("%-5s|", &[S("ab")], "ab   |");
        check("%5s|", &[S("ab")], "   ab|");
        check("%s|", &[S("")], "|");
        check(
            "%.3s|%.10s|%.0s|",
            &[S("abcdef"), S("abc"), S("abc")],
            "abc|abc||",
        );
        check(
            "%10.3s|%-6.2s|",
            &[S("abcdef"), S("xyz")],
            "       abc|xy    |",
        );
        check("%2s|", &[S("abcdef")], "abcdef|");
        check("%#s|%+s|% s|", &[S("a"), S("b"), S("c")], "a|b|c|");
        // Bytes pass through untouched, and a NUL ends the string as in C.
        check_bytes("%s|", &[B(b"\xff\xfe")], b"\xff\xfe|");
        check_bytes("%4s|", &[B(b"a\0bc")], b"   a|");
        // stap's `%0Ns` pads with spaces, then writes a NUL byte.
        check_bytes("%05s|", &[S("ab")], b"   ab\0|");
    }

    #[test]
    fn binary() {
        check_bytes("%b", &[L(0x0102030405060708)], &[8, 7, 6, 5, 4, 3, 2, 1]);
        check_bytes("%1b", &[L(0x4142)], b"B");
        check_bytes("%2b", &[L(0x4142)], b"BA");
        check_bytes("%4b", &[L(-2)], &[0xfe, 0xff, 0xff, 0xff]);
        check_bytes("%8b", &[L(65)], b"A\0\0\0\0\0\0\0");
        check_bytes("%.2b", &[L(0x4142)], b"BA");
        // A width that is not a size pads the 8 bytes with NULs, when it is wider.
        check_bytes("%3b", &[L(65)], b"A\0\0\0\0\0\0\0");
        check_bytes("%10b", &[L(65)], b"\0\0A\0\0\0\0\0\0\0");
        check_bytes("%-10b|", &[L(65)], b"A\0\0\0\0\0\0\0\0\0|");
        check_bytes("%4.1b|", &[L(65)], b"\0\0\0A|");
        check_bytes("%-4.2b|", &[L(65)], b"A\0\0\0|");
        check_bytes("%.3b|", &[L(65)], b"A\0\0\0\0\0\0\0|");
        check_bytes(
            "%#b%0b",
            &[L(1), L(2)],
            b"\x01\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0",
        );
    }

    #[test]
    fn memory_conversions_and_type_mismatches_are_errors() {
        let conv = Conversion {
            flag: None,
            width: Width::None,
            precision: Width::None,
            conv: 'm',
        };
        let mut out = Vec::new();
        assert_eq!(
            conversion(&mut out, &conv, None, Some(4), Arg::Long(0x1000)),
            Err(PrintError::Unsupported)
        );
        let conv = Conversion { conv: 'M', ..conv };
        assert_eq!(
            conversion(&mut out, &conv, None, None, Arg::Long(0x1000)),
            Err(PrintError::Unsupported)
        );
        let conv = Conversion { conv: 'd', ..conv };
        assert_eq!(
            conversion(&mut out, &conv, None, None, Arg::Str(b"1")),
            Err(PrintError::TypeMismatch)
        );
        let conv = Conversion { conv: 's', ..conv };
        assert_eq!(
            conversion(&mut out, &conv, None, None, Arg::Long(1)),
            Err(PrintError::TypeMismatch)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn escapes_in_format_text() {
        check("%d\\n\\t|", &[L(1)], "1\n\t|");
        check("\\x41\\101%s", &[S("!")], "AA!");
    }
}
