//! `--format=json`: one JSON object per line. Pure encoding: the session
//! decides what the records are, this module spells them.
//!
//! Script strings are bytes, not always UTF-8: a byte that is not part of a
//! valid UTF-8 sequence becomes U+FFFD, so every line is valid JSON.

/// A JSON value. Object members keep their order, so records read the same
/// way every time.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Num(i64),
    Str(Vec<u8>),
    Arr(Vec<Json>),
    Obj(Vec<(&'static str, Json)>),
}

impl Json {
    pub fn str(s: impl AsRef<[u8]>) -> Json {
        Json::Str(s.as_ref().to_vec())
    }

    /// Appends the value's text to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Num(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Json::Str(s) => string(out, s),
            Json::Arr(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            Json::Obj(members) => {
                out.push(b'{');
                for (i, (name, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    string(out, name.as_bytes());
                    out.push(b':');
                    value.write(out);
                }
                out.push(b'}');
            }
        }
    }

    /// The value as one line of a JSON-lines stream.
    pub fn line(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out.push(b'\n');
        out
    }
}

/// A record: `{"type":TYPE, members...}`.
pub fn record(kind: &'static str, members: Vec<(&'static str, Json)>) -> Json {
    let mut all = vec![("type", Json::str(kind))];
    all.extend(members);
    Json::Obj(all)
}

/// `bytes` as a JSON string literal.
fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(j: &Json) -> String {
        String::from_utf8(j.line()).unwrap_or_default()
    }

    #[test]
    fn records_put_the_type_first_and_keep_member_order() {
        let r = record(
            "printf",
            vec![("data", Json::str("x=1\n")), ("n", Json::Num(-3))],
        );
        assert_eq!(
            text(&r),
            "{\"type\":\"printf\",\"data\":\"x=1\\n\",\"n\":-3}\n"
        );
    }

    #[test]
    fn control_characters_quotes_and_backslashes_are_escaped() {
        let s = Json::str(b"a\"b\\c\x01\x7f\t");
        assert_eq!(text(&s), "\"a\\\"b\\\\c\\u0001\\u007f\\t\"\n");
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters() {
        let s = Json::str(b"\xff\xc3\xa9");
        assert_eq!(text(&s), "\"\u{fffd}\u{e9}\"\n");
    }

    #[test]
    fn nested_arrays_and_null() {
        let v = Json::Arr(vec![
            Json::Arr(vec![Json::str("k"), Json::Num(1)]),
            Json::Null,
            Json::Obj(Vec::new()),
        ]);
        assert_eq!(text(&v), "[[\"k\",1],null,{}]\n");
    }
}
