//! Tracepoint record layouts, read from tracefs `events/SYS/NAME/format` files:
//! each field's C type, offset, size and signedness, and how a script sees it
//! (`$field` as a long, or as a string for `char[]` and `__data_loc char[]`).

use std::fmt;

/// How a field's bytes are stored in the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// An integer or pointer of `size` bytes.
    Scalar,
    /// `char name[N]`: a NUL-padded string inline in the record.
    CharArray,
    /// `__data_loc char[] name`: a u32 (offset | len << 16) locating a string.
    DataLocString,
    /// Any other fixed array, or a `__data_loc` of something else.
    Array,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// The C type as the format file spells it (`const char *`, `pid_t`).
    pub c_type: String,
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
    pub kind: FieldKind,
}

/// The script-level type of a target variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarType {
    Long,
    String,
}

impl fmt::Display for VarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VarType::Long => "long",
            VarType::String => "string",
        })
    }
}

impl Field {
    /// What `$name` evaluates to in a script.
    pub fn var_type(&self) -> VarType {
        match self.kind {
            FieldKind::CharArray | FieldKind::DataLocString => VarType::String,
            FieldKind::Scalar | FieldKind::Array => VarType::Long,
        }
    }

    /// The `common_*` header every record starts with.
    pub fn is_common(&self) -> bool {
        self.name.starts_with("common_")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracepointFormat {
    pub id: u32,
    pub fields: Vec<Field>,
}

impl TracepointFormat {
    /// The fields a script may name as `$field` (the common header excluded).
    pub fn args(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| !f.is_common())
    }
}

/// Reads a tracefs `format` file. Lines other than `ID:` and `field:` are ignored.
pub fn parse_format(text: &str) -> Result<TracepointFormat, String> {
    let mut id = None;
    let mut fields = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("ID:") {
            id = Some(
                rest.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("bad ID line: {line}"))?,
            );
        } else if line.starts_with("field:") {
            fields.push(parse_field(line)?);
        }
    }
    Ok(TracepointFormat {
        id: id.ok_or("no ID line")?,
        fields,
    })
}

/// `field:unsigned short common_type; offset:0; size:2; signed:0;`
fn parse_field(line: &str) -> Result<Field, String> {
    let mut decl = None;
    let (mut offset, mut size, mut signed) = (None, None, false);
    for part in line.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once(':')
            .ok_or_else(|| format!("bad field part `{part}` in: {line}"))?;
        let number = || {
            value
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("bad number in `{part}`: {line}"))
        };
        match key.trim() {
            "field" => decl = Some(value.trim()),
            "offset" => offset = Some(number()?),
            "size" => size = Some(number()?),
            "signed" => signed = value.trim() == "1",
            _ => {}
        }
    }
    let decl = decl.ok_or_else(|| format!("no declaration in: {line}"))?;
    let (c_type, name, array) =
        split_declaration(decl).ok_or_else(|| format!("cannot read the declaration `{decl}`"))?;
    let is_char = matches!(
        c_type.trim_start_matches("const ").trim(),
        "char" | "unsigned char" | "signed char"
    );
    let kind = match (c_type.starts_with("__data_loc"), array) {
        (true, _) if c_type.contains("char") => FieldKind::DataLocString,
        (true, _) => FieldKind::Array,
        (false, Some(_)) if is_char => FieldKind::CharArray,
        (false, Some(_)) => FieldKind::Array,
        (false, None) => FieldKind::Scalar,
    };
    Ok(Field {
        name: name.to_string(),
        c_type: c_type.to_string(),
        offset: offset.ok_or_else(|| format!("no offset in: {line}"))?,
        size: size.ok_or_else(|| format!("no size in: {line}"))?,
        signed,
        kind,
    })
}

/// `const char * filename` → (`const char *`, `filename`, None);
/// `char prev_comm[16]` → (`char`, `prev_comm`, Some("16"));
/// `__data_loc char[] name` → (`__data_loc char[]`, `name`, None).
fn split_declaration(decl: &str) -> Option<(&str, &str, Option<&str>)> {
    let (decl, array) = match decl.strip_suffix(']') {
        Some(d) => {
            let open = d.rfind('[')?;
            (&d[..open], Some(&d[open + 1..]))
        }
        None => (decl, None),
    };
    let decl = decl.trim_end();
    let start = decl.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))? + 1;
    let name = &decl[start..];
    let c_type = decl[..start].trim_end();
    if name.is_empty() || c_type.is_empty() {
        return None;
    }
    Some((c_type, name, array))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KFREE_SKB: &str = "name: kfree_skb\nID: 2310\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
        \tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n\
        \tfield:char comm[16];\toffset:16;\tsize:16;\tsigned:0;\n\
        \tfield:__data_loc char[] name;\toffset:32;\tsize:4;\tsigned:0;\n\
        \tfield:enum skb_drop_reason reason;\toffset:36;\tsize:4;\tsigned:0;\n\n\
        print fmt: \"skbaddr=%p\", REC->skbaddr\n";

    #[test]
    fn reads_fields_offsets_and_kinds() {
        let f = parse_format(KFREE_SKB).unwrap_or_else(|e| panic!("format should parse: {e}"));
        assert_eq!(f.id, 2310);
        let args: Vec<_> = f
            .args()
            .map(|a| {
                (
                    a.name.as_str(),
                    a.c_type.as_str(),
                    a.offset,
                    a.size,
                    a.var_type(),
                )
            })
            .collect();
        assert_eq!(
            args,
            vec![
                ("skbaddr", "void *", 8, 8, VarType::Long),
                ("comm", "char", 16, 16, VarType::String),
                ("name", "__data_loc char[]", 32, 4, VarType::String),
                ("reason", "enum skb_drop_reason", 36, 4, VarType::Long),
            ]
        );
        assert!(f.fields[1].signed && !f.fields[0].signed);
    }

    #[test]
    fn malformed_formats_are_errors_not_panics() {
        for bad in [
            "",
            "ID: x",
            "ID: 1\n\tfield:int;\toffset:0;\tsize:4;\tsigned:1;",
            "ID: 1\n\tfield:int a;\tsize:4;",
        ] {
            assert!(parse_format(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
