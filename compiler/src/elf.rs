//! Facts of a user-space ELF binary, parsed from its bytes: the function symbols a
//! `process("…").function("…")` probe can name, and the SystemTap SDT notes
//! (`.note.stapsdt`) a `process("…").mark("…")` probe can name, each with the file
//! offset a uprobe attaches at.
//!
//! SDT note layout (the "stapsdt" v3 notes `<sys/sdt.h>` emits): three
//! address-sized words — probe pc, the link-time address of `.stapsdt.base`, the
//! semaphore address (0 if none) — then provider, name and argument string, each
//! NUL-terminated. If the binary was prelinked or otherwise moved, the pc and
//! semaphore shift by the distance `.stapsdt.base` moved.

use object::{Object, ObjectKind, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};
use std::collections::HashSet;

/// What rstap needs to know about one user binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binary {
    /// The path it was read from, as the caller resolved it.
    pub path: String,
    /// Defined function symbols of `.symtab` and `.dynsym`, sorted by name.
    pub symbols: Vec<ElfSymbol>,
    /// SDT probes, in note order.
    pub usdt: Vec<UsdtNote>,
    /// Whether it carries DWARF (`.debug_info` with contents).
    pub has_debuginfo: bool,
    /// Its functions' parameters, from DWARF (empty without it).
    pub functions: crate::dwarf::Functions,
    /// The statement rows of its DWARF line table, each with the file
    /// offset a uprobe there is given (empty without DWARF).
    pub lines: Vec<(crate::dwarf::LineRow, u64)>,
    /// ET_DYN: a PIE executable or a shared library, loaded at a chosen base.
    pub is_pie_or_shared: bool,
    /// File offset of the entry point (`e_entry`), where a new process of
    /// this program starts running; `None` when it has none.
    pub entry_offset: Option<u64>,
}

/// A function symbol; `file_offset` is what a uprobe is given.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ElfSymbol {
    pub name: String,
    pub addr: u64,
    pub size: u64,
    pub file_offset: u64,
}

/// One SDT probe site (`STAP_PROBE*` / `DTRACE_PROBE*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsdtNote {
    pub provider: String,
    pub name: String,
    /// The probe address, adjusted for `.stapsdt.base` having moved.
    pub pc: u64,
    /// `.stapsdt.base`'s address as the note recorded it.
    pub base: u64,
    /// The semaphore's address (adjusted like `pc`), 0 when the probe has none.
    pub semaphore: u64,
    pub args: Vec<UsdtArg>,
    /// The argument string as the note spells it (`-4@%edi 8@-8(%rbp)`).
    pub args_text: String,
    /// Why `args_text` could not be read (another architecture's syntax, an
    /// addressing mode rstap does not handle); `args` is empty then.
    pub args_error: Option<String>,
    /// File offset of `pc`: the uprobe's offset.
    pub file_offset: u64,
    /// File offset of the semaphore (the uprobe's `ref_ctr_offset`), 0 when none.
    pub semaphore_offset: u64,
}

/// One probe argument: `size` bytes, sign-extended when `signed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsdtArg {
    pub size: u8,
    pub signed: bool,
    pub loc: UsdtLoc,
}

/// Where an argument lives, in x86-64 AT&T terms; register names lose their `%`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsdtLoc {
    /// `%edi` → `Reg("edi")`.
    Reg(String),
    /// `-8(%rbp)` → `Mem { base: "rbp", offset: -8 }`.
    Mem { base: String, offset: i64 },
    /// `$5` → `Imm(5)`.
    Imm(i64),
}

const SDT_NOTE_OWNER: &[u8] = b"stapsdt";
const SDT_NOTE_TYPE: u32 = 3;

/// Reads the facts of the ELF file `bytes`; `path` is recorded as given.
pub fn parse(path: &str, bytes: &[u8]) -> Result<Binary, String> {
    let file = object::File::parse(bytes).map_err(|e| format!("{path}: not an ELF file: {e}"))?;
    if !matches!(file, object::File::Elf32(_) | object::File::Elf64(_)) {
        return Err(format!("{path}: not an ELF file"));
    }
    let segments: Vec<(u64, u64, u64)> = file
        .segments()
        .map(|s| {
            let (off, filesz) = s.file_range();
            (s.address(), filesz, off)
        })
        .collect();
    let to_offset = |addr: u64| {
        segments
            .iter()
            .find(|(va, filesz, _)| addr >= *va && addr - va < *filesz)
            .map(|(va, _, off)| addr - va + off)
    };
    let mut seen = HashSet::new();
    let mut symbols = Vec::new();
    for sym in file.symbols().chain(file.dynamic_symbols()) {
        if sym.kind() != SymbolKind::Text || !sym.is_definition() {
            continue;
        }
        let Ok(name) = sym.name() else { continue };
        if name.is_empty() || !seen.insert((name.to_string(), sym.address())) {
            continue;
        }
        let Some(file_offset) = to_offset(sym.address()) else {
            continue;
        };
        symbols.push(ElfSymbol {
            name: name.to_string(),
            addr: sym.address(),
            size: sym.size(),
            file_offset,
        });
    }
    symbols.sort();
    let has_debuginfo = file
        .section_by_name(".debug_info")
        .is_some_and(|s| s.file_range().is_some_and(|(_, len)| len > 0));
    let usdt = match file.section_by_name(".note.stapsdt") {
        Some(notes) => {
            let data = notes
                .data()
                .map_err(|e| format!("{path}: cannot read .note.stapsdt: {e}"))?;
            let actual_base = file.section_by_name(".stapsdt.base").map(|s| s.address());
            let layout = NoteLayout {
                big_endian: !file.is_little_endian(),
                word: if file.is_64() { 8 } else { 4 },
            };
            read_sdt_notes(data, layout, actual_base, &to_offset)
                .map_err(|e| format!("{path}: .note.stapsdt: {e}"))?
        }
        None => Vec::new(),
    };
    let (functions, lines) = if has_debuginfo {
        let lines = crate::dwarf::lines(&file)
            .into_iter()
            .filter_map(|row| Some((to_offset(row.addr)?, row)))
            .map(|(offset, row)| (row, offset))
            .collect();
        (crate::dwarf::functions(&file), lines)
    } else {
        (crate::dwarf::Functions::new(), Vec::new())
    };
    Ok(Binary {
        path: path.to_string(),
        symbols,
        usdt,
        has_debuginfo,
        functions,
        lines,
        is_pie_or_shared: file.kind() == ObjectKind::Dynamic,
        entry_offset: Some(file.entry()).filter(|&e| e != 0).and_then(to_offset),
    })
}

#[derive(Clone, Copy)]
struct NoteLayout {
    big_endian: bool,
    word: usize,
}

impl NoteLayout {
    fn uint(&self, b: &[u8]) -> u64 {
        let fold = |acc: u64, x: &u8| acc << 8 | u64::from(*x);
        if self.big_endian {
            b.iter().fold(0, fold)
        } else {
            b.iter().rev().fold(0, fold)
        }
    }
}

fn read_sdt_notes(
    data: &[u8],
    layout: NoteLayout,
    actual_base: Option<u64>,
    to_offset: &dyn Fn(u64) -> Option<u64>,
) -> Result<Vec<UsdtNote>, String> {
    let align4 = |n: usize| n.div_ceil(4) * 4;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 12 <= data.len() {
        let namesz = layout.uint(&data[pos..pos + 4]) as usize;
        let descsz = layout.uint(&data[pos + 4..pos + 8]) as usize;
        let ntype = layout.uint(&data[pos + 8..pos + 12]) as u32;
        let name_start = pos + 12;
        let desc_start = name_start
            .checked_add(align4(namesz))
            .ok_or("note size overflow")?;
        let desc_end = desc_start.checked_add(descsz).ok_or("note size overflow")?;
        let (Some(owner), Some(desc)) = (
            data.get(name_start..name_start + namesz),
            data.get(desc_start..desc_end),
        ) else {
            return Err(format!("a note at byte {pos} runs past the section"));
        };
        pos = desc_start + align4(descsz);
        if owner.strip_suffix(b"\0").unwrap_or(owner) != SDT_NOTE_OWNER || ntype != SDT_NOTE_TYPE {
            continue;
        }
        out.push(read_sdt_note(desc, layout, actual_base, to_offset)?);
    }
    Ok(out)
}

fn read_sdt_note(
    desc: &[u8],
    layout: NoteLayout,
    actual_base: Option<u64>,
    to_offset: &dyn Fn(u64) -> Option<u64>,
) -> Result<UsdtNote, String> {
    let w = layout.word;
    let words = desc
        .get(..3 * w)
        .ok_or("an SDT note is shorter than its three addresses")?;
    let (pc, base, semaphore) = (
        layout.uint(&words[..w]),
        layout.uint(&words[w..2 * w]),
        layout.uint(&words[2 * w..]),
    );
    let mut strings = desc[3 * w..].split(|&b| b == 0);
    let mut next = |what: &str| {
        strings
            .next()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .ok_or_else(|| format!("an SDT note has no {what}"))
    };
    let (provider, name) = (next("provider")?, next("name")?);
    let args_text = next("argument string").unwrap_or_default();
    // Prelink (or any relocation of the file) moves .stapsdt.base; the note's
    // addresses move with it.
    let shift = |addr: u64| match actual_base {
        Some(actual) if base != 0 => addr.wrapping_add(actual.wrapping_sub(base)),
        _ => addr,
    };
    let pc = shift(pc);
    let semaphore = if semaphore == 0 { 0 } else { shift(semaphore) };
    let file_offset = to_offset(pc)
        .ok_or_else(|| format!("probe {provider}:{name} at {pc:#x} is in no loaded segment"))?;
    let semaphore_offset = if semaphore == 0 {
        0
    } else {
        to_offset(semaphore).ok_or_else(|| {
            format!("the semaphore of {provider}:{name} at {semaphore:#x} is in no loaded segment")
        })?
    };
    let (args, args_error) = match parse_usdt_args(&args_text) {
        Ok(a) => (a, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    Ok(UsdtNote {
        provider,
        name,
        pc,
        base,
        semaphore,
        args,
        args_text,
        args_error,
        file_offset,
        semaphore_offset,
    })
}

/// Reads an SDT argument string in x86-64 AT&T syntax:
/// `-4@%edi 8@-8(%rbp) 4@$5 8@%rax`. A missing `N@` means an 8-byte unsigned value.
pub fn parse_usdt_args(text: &str) -> Result<Vec<UsdtArg>, String> {
    text.split_whitespace().map(parse_usdt_arg).collect()
}

fn parse_usdt_arg(arg: &str) -> Result<UsdtArg, String> {
    let bad = |why: &str| format!("SDT argument `{arg}`: {why}");
    let (size, signed, loc) = match arg.split_once('@') {
        Some((n, loc)) => {
            let n: i32 = n.parse().map_err(|_| bad("the size is not a number"))?;
            let size = u8::try_from(n.unsigned_abs()).map_err(|_| bad("the size is too big"))?;
            if ![1, 2, 4, 8].contains(&size) {
                return Err(bad("the size is not 1, 2, 4 or 8"));
            }
            (size, n < 0, loc)
        }
        None => (8, false, arg),
    };
    let loc = if let Some(imm) = loc.strip_prefix('$') {
        UsdtLoc::Imm(parse_int(imm).ok_or_else(|| bad("the immediate is not a number"))?)
    } else if let Some(reg) = loc.strip_prefix('%') {
        UsdtLoc::Reg(register(reg).ok_or_else(|| bad("not an x86-64 register"))?)
    } else if let Some((disp, rest)) = loc.split_once("(%") {
        let base = rest
            .strip_suffix(')')
            .and_then(register)
            .ok_or_else(|| bad("only `disp(%reg)` memory operands are supported"))?;
        let offset = if disp.is_empty() {
            0
        } else {
            parse_int(disp).ok_or_else(|| bad("the displacement is not a number"))?
        };
        UsdtLoc::Mem { base, offset }
    } else {
        return Err(bad("not in x86-64 syntax (`%reg`, `disp(%reg)` or `$imm`)"));
    };
    Ok(UsdtArg { size, signed, loc })
}

/// The general-purpose registers (all widths) and `rip`, which SDT operands use.
fn register(name: &str) -> Option<String> {
    const LEGACY: [&str; 8] = ["ax", "bx", "cx", "dx", "si", "di", "bp", "sp"];
    let legacy = |r: &str| {
        LEGACY.contains(&r)
            || [
                "al", "bl", "cl", "dl", "sil", "dil", "bpl", "spl", "ah", "bh", "ch", "dh",
            ]
            .contains(&r)
    };
    let wide = name
        .strip_prefix('r')
        .or_else(|| name.strip_prefix('e'))
        .is_some_and(|r| LEGACY.contains(&r) || r == "ip" && name.starts_with('r'));
    let numbered = name.strip_prefix('r').is_some_and(|r| {
        let digits = r.trim_end_matches(['d', 'w', 'b']);
        digits.parse::<u8>().is_ok_and(|n| (8..=15).contains(&n)) && r.len() - digits.len() <= 1
    });
    (legacy(name) || wide || numbered).then(|| name.to_string())
}

/// Decimal or `0x` hex, with an optional sign.
fn parse_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok()? as i64,
        None => digits.parse::<u64>().ok()? as i64,
    };
    Some(if neg { v.wrapping_neg() } else { v })
}
