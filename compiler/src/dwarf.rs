//! The parameters of a user binary's functions, from its DWARF: what a
//! `process("…").function("f")` probe offers as `$name`. At a function's
//! entry the x86-64 calling convention has the first six integer and pointer
//! arguments in registers, so a parameter's position and type are all rstap
//! needs; it reads the register (or, in a `.return` probe, the value saved at
//! the entry) and narrows it to the parameter's type.

use gimli::{AttributeValue, EndianSlice, LittleEndian, UnitOffset, constants};
use object::{Object, ObjectSection};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// One formal parameter of a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub ty: ParamType,
    /// The C type as stap's `-L` spells it (`char const*`, `unsigned char`).
    pub c_type: String,
}

/// What rstap can do with a parameter's type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// An integer (or enum, bool, char) of `size` bytes.
    Int { size: u8, signed: bool },
    /// A pointer; `chars` when it points to `char` (a C string).
    Pointer { chars: bool },
    /// A type that does not fit a register (a struct by value, a float...),
    /// as DWARF names its kind.
    Other(&'static str),
}

/// Every named function's parameters, by name (and by linkage name for C++).
pub type Functions = BTreeMap<String, Vec<Param>>;

/// A statement boundary of the line table: the first address of a source
/// line (rows the compiler marks `is_stmt`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRow {
    /// The source file as DWARF names it (its directory joined in).
    pub file: String,
    pub line: u32,
    pub addr: u64,
}

/// The statement rows of the line table, sorted by file, line and address;
/// empty without DWARF.
pub fn lines(file: &object::File<'_>) -> Vec<LineRow> {
    let mut rows = read_lines(file).unwrap_or_default();
    rows.sort_by(|a, b| (&a.file, a.line, a.addr).cmp(&(&b.file, b.line, b.addr)));
    rows.dedup();
    rows
}

fn read_lines(file: &object::File<'_>) -> Result<Vec<LineRow>, gimli::Error> {
    with_dwarf(file, line_rows)
}

fn line_rows(dwarf: &gimli::Dwarf<Slice<'_>>) -> Result<Vec<LineRow>, gimli::Error> {
    let mut out = Vec::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let Some(program) = unit.line_program.clone() else {
            continue;
        };
        let mut rows = program.rows();
        while let Some((header, row)) = rows.next_row()? {
            if row.end_sequence() || !row.is_stmt() {
                continue;
            }
            let Some(line) = row.line().and_then(|l| u32::try_from(l.get()).ok()) else {
                continue;
            };
            let Some(entry) = row.file(header) else {
                continue;
            };
            let name = dwarf.attr_string(&unit, entry.path_name())?;
            let mut path = name.to_string_lossy().into_owned();
            if !path.starts_with('/')
                && let Some(dir) = entry.directory(header)
            {
                let dir = dwarf.attr_string(&unit, dir)?;
                path = format!("{}/{path}", dir.to_string_lossy());
            }
            out.push(LineRow {
                file: path,
                line,
                addr: row.address(),
            });
        }
    }
    Ok(out)
}

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// The functions of an ELF file's DWARF; empty when it has none or it cannot
/// be read (the probe then offers `$argN` only).
pub fn functions(file: &object::File<'_>) -> Functions {
    read(file).unwrap_or_default()
}

/// Runs `read` over the file's DWARF sections.
fn with_dwarf<T>(
    file: &object::File<'_>,
    read: impl FnOnce(&gimli::Dwarf<Slice<'_>>) -> Result<T, gimli::Error>,
) -> Result<T, gimli::Error> {
    let load = |id: gimli::SectionId| -> Result<Cow<'_, [u8]>, gimli::Error> {
        Ok(file
            .section_by_name(id.name())
            .and_then(|s| s.uncompressed_data().ok())
            .unwrap_or(Cow::Borrowed(&[])))
    };
    let sections = gimli::DwarfSections::load(load)?;
    read(&sections.borrow(|s| EndianSlice::new(s, LittleEndian)))
}

fn read(file: &object::File<'_>) -> Result<Functions, gimli::Error> {
    with_dwarf(file, read_functions)
}

fn read_functions(dwarf: &gimli::Dwarf<Slice<'_>>) -> Result<Functions, gimli::Error> {
    let mut out = Functions::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let mut tree = unit.entries_tree(None)?;
        let root = tree.root()?;
        walk(dwarf, &unit, root, &mut out)?;
    }
    Ok(out)
}

/// Finds subprograms under `node` (in namespaces and classes too).
fn walk(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    unit: &gimli::Unit<Slice<'_>>,
    node: gimli::EntriesTreeNode<'_, '_, Slice<'_>>,
    out: &mut Functions,
) -> Result<(), gimli::Error> {
    let mut children = node.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        if entry.tag() == constants::DW_TAG_subprogram {
            let declaration = matches!(
                entry.attr_value(constants::DW_AT_declaration),
                Some(AttributeValue::Flag(true))
            );
            let names: Vec<String> = [constants::DW_AT_name, constants::DW_AT_linkage_name]
                .into_iter()
                .filter_map(|at| string(dwarf, unit, entry.attr_value(at)?))
                .collect();
            let params = params(dwarf, unit, child)?;
            if !declaration {
                for name in names {
                    out.entry(name).or_insert_with(|| params.clone());
                }
            }
        } else {
            walk(dwarf, unit, child, out)?;
        }
    }
    Ok(())
}

/// The formal parameters directly under a subprogram, in order.
fn params(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    unit: &gimli::Unit<Slice<'_>>,
    node: gimli::EntriesTreeNode<'_, '_, Slice<'_>>,
) -> Result<Vec<Param>, gimli::Error> {
    let mut out = Vec::new();
    let mut children = node.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        if entry.tag() != constants::DW_TAG_formal_parameter {
            continue;
        }
        let name = entry
            .attr_value(constants::DW_AT_name)
            .and_then(|v| string(dwarf, unit, v))
            .unwrap_or_default();
        let (ty, c_type) = match entry.attr_value(constants::DW_AT_type) {
            Some(AttributeValue::UnitRef(at)) => (type_of(unit, at, 0)?, spell(dwarf, unit, at, 0)),
            _ => (ParamType::Other("untyped"), "void".to_string()),
        };
        out.push(Param { name, ty, c_type });
    }
    Ok(out)
}

/// The parameter type at `at`, through typedefs and qualifiers.
fn type_of(
    unit: &gimli::Unit<Slice<'_>>,
    at: UnitOffset,
    depth: u32,
) -> Result<ParamType, gimli::Error> {
    if depth > 16 {
        return Ok(ParamType::Other("type chain too deep"));
    }
    let entry = unit.entry(at)?;
    let size = match entry.attr_value(constants::DW_AT_byte_size) {
        Some(AttributeValue::Udata(n)) => u8::try_from(n).unwrap_or(0),
        Some(AttributeValue::Data1(n)) => n,
        Some(AttributeValue::Data2(n)) => u8::try_from(n).unwrap_or(0),
        _ => 0,
    };
    let next = match entry.attr_value(constants::DW_AT_type) {
        Some(AttributeValue::UnitRef(next)) => Some(next),
        _ => None,
    };
    Ok(match entry.tag() {
        constants::DW_TAG_typedef
        | constants::DW_TAG_const_type
        | constants::DW_TAG_volatile_type
        | constants::DW_TAG_restrict_type
        | constants::DW_TAG_atomic_type => match next {
            Some(next) => type_of(unit, next, depth + 1)?,
            None => ParamType::Other("void"),
        },
        constants::DW_TAG_pointer_type
        | constants::DW_TAG_reference_type
        | constants::DW_TAG_rvalue_reference_type => ParamType::Pointer {
            chars: match next {
                Some(next) => points_to_char(unit, next, 0)?,
                None => false,
            },
        },
        constants::DW_TAG_base_type if (1..=8).contains(&size) && size.is_power_of_two() => {
            let encoding = entry.attr_value(constants::DW_AT_encoding);
            let signed = matches!(
                encoding,
                Some(AttributeValue::Encoding(
                    constants::DW_ATE_signed | constants::DW_ATE_signed_char
                ))
            );
            let float = matches!(
                encoding,
                Some(AttributeValue::Encoding(constants::DW_ATE_float))
            );
            if float {
                ParamType::Other("floating-point")
            } else {
                ParamType::Int { size, signed }
            }
        }
        constants::DW_TAG_enumeration_type if (1..=8).contains(&size) => {
            ParamType::Int { size, signed: true }
        }
        constants::DW_TAG_structure_type | constants::DW_TAG_class_type => {
            ParamType::Other("struct")
        }
        constants::DW_TAG_union_type => ParamType::Other("union"),
        constants::DW_TAG_array_type => ParamType::Other("array"),
        _ => ParamType::Other("unsupported"),
    })
}

/// Whether the type at `at` is (a qualified) `char`.
fn points_to_char(
    unit: &gimli::Unit<Slice<'_>>,
    at: UnitOffset,
    depth: u32,
) -> Result<bool, gimli::Error> {
    if depth > 16 {
        return Ok(false);
    }
    let entry = unit.entry(at)?;
    match entry.tag() {
        constants::DW_TAG_typedef
        | constants::DW_TAG_const_type
        | constants::DW_TAG_volatile_type
        | constants::DW_TAG_restrict_type => match entry.attr_value(constants::DW_AT_type) {
            Some(AttributeValue::UnitRef(next)) => points_to_char(unit, next, depth + 1),
            _ => Ok(false),
        },
        constants::DW_TAG_base_type => Ok(matches!(
            entry.attr_value(constants::DW_AT_encoding),
            Some(AttributeValue::Encoding(
                constants::DW_ATE_signed_char | constants::DW_ATE_unsigned_char
            ))
        )),
        _ => Ok(false),
    }
}

/// The C spelling of the type at `at`: `int`, `const char*`, `struct s*`.
fn spell(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    unit: &gimli::Unit<Slice<'_>>,
    at: UnitOffset,
    depth: u32,
) -> String {
    let Ok(entry) = unit.entry(at) else {
        return "?".into();
    };
    let name = entry
        .attr_value(constants::DW_AT_name)
        .and_then(|v| string(dwarf, unit, v));
    let inner = || match entry.attr_value(constants::DW_AT_type) {
        Some(AttributeValue::UnitRef(next)) if depth < 16 => spell(dwarf, unit, next, depth + 1),
        _ => "void".to_string(),
    };
    let named = |prefix: &str| format!("{prefix}{}", name.clone().unwrap_or_default());
    match entry.tag() {
        constants::DW_TAG_pointer_type => format!("{}*", inner()),
        constants::DW_TAG_reference_type => format!("{}&", inner()),
        constants::DW_TAG_const_type => format!("{} const", inner()),
        constants::DW_TAG_volatile_type => format!("{} volatile", inner()),
        constants::DW_TAG_restrict_type => inner(),
        constants::DW_TAG_structure_type => named("struct "),
        constants::DW_TAG_union_type => named("union "),
        constants::DW_TAG_enumeration_type => named("enum "),
        constants::DW_TAG_class_type => named("class "),
        constants::DW_TAG_array_type => format!("{}[]", inner()),
        _ => name.unwrap_or_else(|| "?".to_string()),
    }
}

fn string(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    unit: &gimli::Unit<Slice<'_>>,
    value: AttributeValue<Slice<'_>>,
) -> Option<String> {
    let s = dwarf.attr_string(unit, value).ok()?;
    Some(s.to_string_lossy().into_owned())
}
