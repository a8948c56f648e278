//! printf-style format strings, split into literal text and conversions exactly as
//! stap accepts them: `%`, at most one flag of `0+- #`, a width (digits or `*`), a
//! precision (`.digits` or `.*`), an optional `l`, and one of `diuoxXpcsbmM`; or `%%`.

/// One piece of a format string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Text copied as is (C escapes not yet interpreted).
    Literal(String),
    Conversion(Conversion),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    None,
    Fixed(u32),
    /// `*`: taken from the next argument.
    Arg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conversion {
    pub flag: Option<char>,
    pub width: Width,
    pub precision: Width,
    /// One of `d i u o x X p c s b m M`.
    pub conv: char,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// stap: `invalid or missing conversion specifier`.
    BadConversion,
    /// stap: `trailing incomplete print format conversion`.
    Incomplete,
}

impl FormatError {
    pub fn message(self) -> &'static str {
        match self {
            FormatError::BadConversion => "invalid or missing conversion specifier",
            FormatError::Incomplete => "trailing incomplete print format conversion",
        }
    }
}

/// Splits a format string (its source spelling) into pieces.
pub fn parse_format(text: &str) -> Result<Vec<Piece>, FormatError> {
    let b = text.as_bytes();
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < b.len() {
        let Some(off) = text[i..].find('%') else {
            lit.push_str(&text[i..]);
            break;
        };
        lit.push_str(&text[i..i + off]);
        let start = i + off;
        i += off + 1;
        match b.get(i) {
            // stap 4.8 rejects a lone `%` at the end.
            None => return Err(FormatError::BadConversion),
            Some(b'%') => {
                lit.push('%');
                i += 1;
                continue;
            }
            Some(_) => {}
        }
        let mut flag = None;
        if let Some(&c) = b.get(i)
            && matches!(c, b'0' | b'+' | b'-' | b' ' | b'#')
        {
            flag = Some(c as char);
            i += 1;
        }
        let width = read_width(b, &mut i)?;
        let mut precision = Width::None;
        if b.get(i) == Some(&b'.') {
            i += 1;
            precision = match read_width(b, &mut i)? {
                Width::None => Width::Fixed(0),
                w => w,
            };
        }
        if b.get(i) == Some(&b'l') {
            i += 1;
        }
        let conv = match b.get(i) {
            // stap lets a bare `%.` or `%l` end the format; anything more is incomplete.
            None if flag.is_none()
                && width == Width::None
                && matches!(precision, Width::None | Width::Fixed(0)) =>
            {
                lit.push_str(&text[start..]);
                break;
            }
            None => return Err(FormatError::Incomplete),
            Some(&c) if b"diuoxXpcsbmM".contains(&c) => c as char,
            Some(_) => return Err(FormatError::BadConversion),
        };
        i += 1;
        if !lit.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut lit)));
        }
        pieces.push(Piece::Conversion(Conversion {
            flag,
            width,
            precision,
            conv,
        }));
    }
    if !lit.is_empty() {
        pieces.push(Piece::Literal(lit));
    }
    Ok(pieces)
}

fn read_width(b: &[u8], i: &mut usize) -> Result<Width, FormatError> {
    if b.get(*i) == Some(&b'*') {
        *i += 1;
        return Ok(Width::Arg);
    }
    let start = *i;
    while b.get(*i).is_some_and(u8::is_ascii_digit) {
        *i += 1;
    }
    if *i == start {
        return Ok(Width::None);
    }
    std::str::from_utf8(&b[start..*i])
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Width::Fixed)
        .ok_or(FormatError::BadConversion)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_directives_real_scripts_use() {
        for f in [
            "%-16s %10d %5d %-8s %08x %016lx",
            "%2d,%1d %.3s %*s",
            "%b %1b %8b %.*M %m",
            "100%%",
            "%%d",
            "%#x %#o %p %c %ld %lu",
        ] {
            assert!(parse_format(f).is_ok(), "{f} should be accepted");
        }
    }

    #[test]
    fn rejects_what_stap_rejects() {
        for f in [
            "%-#10x", "%lld", "%hd", "%zd", "%f", "%e", "%g", "%n", "%2$d",
        ] {
            assert_eq!(parse_format(f), Err(FormatError::BadConversion), "{f}");
        }
        assert_eq!(parse_format("ab %-"), Err(FormatError::Incomplete));
        assert_eq!(parse_format("100%"), Err(FormatError::BadConversion));
        assert_eq!(parse_format("%5."), Err(FormatError::Incomplete));
        assert_eq!(parse_format("%5"), Err(FormatError::Incomplete));
        assert!(parse_format("x%.").is_ok() && parse_format("x%l").is_ok());
    }

    #[test]
    fn splits_text_and_conversions() {
        let p = parse_format("n=%5.2d%%\\n").unwrap_or_default();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], Piece::Literal("n=".into()));
        assert_eq!(
            p[1],
            Piece::Conversion(Conversion {
                flag: None,
                width: Width::Fixed(5),
                precision: Width::Fixed(2),
                conv: 'd'
            })
        );
        assert_eq!(p[2], Piece::Literal("%\\n".into()));
    }
}
