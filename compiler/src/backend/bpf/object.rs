//! The BPF ELF relocatable object `-p4 -o` writes: maps, programs and license
//! in the layout libbpf loads. Pure: it only builds bytes.
//!
//! - `maps`: one legacy `struct bpf_map_def { type, key_size, value_size,
//!   max_entries, map_flags }` (5 × u32) per map, each named by a global OBJECT
//!   symbol;
//! - `license`: "GPL\0";
//! - one executable section per program, named by its libbpf section
//!   (`tracepoint/syscalls/sys_enter_getppid`, `kprobe/vfs_read`, ...), holding
//!   one global FUNC symbol named after the program;
//! - `.rel<section>`: an `R_BPF_64_64` relocation against the map's symbol for
//!   every `ld_map` instruction, so the loader patches in the map's fd.

use super::btf_out;
use super::insn::{Insn, PSEUDO_FUNC, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};
use object::write::{Object, Relocation, SectionId, Symbol, SymbolId, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags, SymbolKind,
    SymbolScope,
};
use std::collections::HashSet;

/// Kinds of BPF maps rstap creates (`enum bpf_map_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    Hash,
    Array,
    PerCpuHash,
    PerCpuArray,
    LruHash,
    LruPerCpuHash,
    RingBuf,
}

impl MapKind {
    /// The kernel's `BPF_MAP_TYPE_*` number.
    pub fn type_id(self) -> u32 {
        match self {
            MapKind::Hash => 1,
            MapKind::Array => 2,
            MapKind::PerCpuHash => 5,
            MapKind::PerCpuArray => 6,
            MapKind::LruHash => 9,
            MapKind::LruPerCpuHash => 10,
            MapKind::RingBuf => 27,
        }
    }

    /// Whether a lookup from user space returns one value per possible CPU.
    pub fn is_per_cpu(self) -> bool {
        matches!(
            self,
            MapKind::PerCpuHash | MapKind::PerCpuArray | MapKind::LruPerCpuHash
        )
    }
}

/// One map of the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    pub name: String,
    pub kind: MapKind,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
}

/// One program of the object; `ld_map` instructions in it name maps by their
/// index in the `maps` slice given to [`write_object`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramDef {
    pub name: String,
    /// The libbpf section name, which says the program type and attach point:
    /// `tracepoint/CATEGORY/NAME`, `kprobe/FUNC`, `kretprobe/FUNC`,
    /// `uprobe/...`, `perf_event`.
    pub section: String,
    pub insns: Vec<Insn>,
}

/// The size of a legacy `struct bpf_map_def` as rstap writes it.
pub const MAP_DEF_SIZE: u32 = 20;

/// `R_BPF_64_64`: the 64-bit immediate of an `ld_imm64`.
const R_BPF_64_64: u32 = 1;

/// `BPF_LD | BPF_IMM | BPF_DW`: the first slot of a 64-bit immediate load.
const LD_IMM64: u8 = 0x18;

/// A function programs call back into (`bpf_for_each_map_elem`): it lives in
/// `.text`; an `ld_imm64` with `src` [`PSEUDO_FUNC`] and the callback's index
/// as immediate refers to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackDef {
    pub name: String,
    pub insns: Vec<Insn>,
}

/// Builds the ELF object for `maps` and `programs`, or says which name or
/// instruction is invalid.
pub fn write_object(maps: &[MapDef], programs: &[ProgramDef]) -> Result<Vec<u8>, String> {
    write_object_with(maps, programs, &[])
}

/// [`write_object`] with callbacks; then the object carries the BTF of every
/// function, as the kernel requires for programs with callbacks.
pub fn write_object_with(
    maps: &[MapDef],
    programs: &[ProgramDef],
    callbacks: &[CallbackDef],
) -> Result<Vec<u8>, String> {
    check_names("map", maps.iter().map(|m| m.name.as_str()))?;
    check_names(
        "program",
        programs
            .iter()
            .map(|p| p.name.as_str())
            .chain(callbacks.iter().map(|c| c.name.as_str())),
    )?;
    for map in maps {
        check_map(map)?;
    }

    let mut obj = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);

    let license = obj.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
    obj.append_section_data(license, b"GPL\0", 1);

    let map_symbols = if maps.is_empty() {
        Vec::new()
    } else {
        let section = obj.add_section(Vec::new(), b"maps".to_vec(), SectionKind::Data);
        maps.iter()
            .map(|map| add_map(&mut obj, section, map))
            .collect()
    };

    // Callbacks first, so programs can name their symbols.
    let mut callback_symbols = Vec::new();
    let mut funcs = Vec::new();
    let mut text_code = Vec::new();
    if !callbacks.is_empty() {
        let text = obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
        let mut pending = Vec::new();
        for cb in callbacks {
            let (code, relocations) = encode_code(&cb.name, &cb.insns, &map_symbols, &[])?;
            let offset = obj.append_section_data(text, &code, 8);
            callback_symbols.push(obj.add_symbol(Symbol {
                name: cb.name.as_bytes().to_vec(),
                value: offset,
                size: code.len() as u64,
                kind: SymbolKind::Text,
                scope: SymbolScope::Compilation,
                weak: false,
                section: SymbolSection::Section(text),
                flags: SymbolFlags::None,
            }));
            pending.extend(relocations.into_iter().map(|(o, s)| (o + offset, s)));
            text_code.push((cb.name.as_str(), u32::try_from(offset).unwrap_or(0)));
        }
        add_relocations(&mut obj, text, ".text", pending)?;
    }
    for program in programs {
        add_program(&mut obj, program, &map_symbols, &callback_symbols)?;
    }
    if !callbacks.is_empty() {
        for p in programs {
            funcs.push(btf_out::Func {
                name: &p.name,
                section: &p.section,
                offset: 0,
                callback: false,
            });
        }
        for (name, offset) in &text_code {
            funcs.push(btf_out::Func {
                name,
                section: ".text",
                offset: *offset,
                callback: true,
            });
        }
        let (btf, ext) = btf_out::encode(&funcs);
        let s = obj.add_section(Vec::new(), b".BTF".to_vec(), SectionKind::Metadata);
        obj.append_section_data(s, &btf, 4);
        let s = obj.add_section(Vec::new(), b".BTF.ext".to_vec(), SectionKind::Metadata);
        obj.append_section_data(s, &ext, 4);
    }

    obj.write()
        .map_err(|e| format!("cannot write the BPF object: {e}"))
}

fn add_map(obj: &mut Object<'_>, section: SectionId, map: &MapDef) -> SymbolId {
    let mut def = Vec::with_capacity(MAP_DEF_SIZE as usize);
    for field in [
        map.kind.type_id(),
        map.key_size,
        map.value_size,
        map.max_entries,
        map.flags,
    ] {
        def.extend_from_slice(&field.to_le_bytes());
    }
    let offset = obj.append_section_data(section, &def, 4);
    obj.add_symbol(Symbol {
        name: map.name.as_bytes().to_vec(),
        value: offset,
        size: u64::from(MAP_DEF_SIZE),
        kind: SymbolKind::Data,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    })
}

fn add_program(
    obj: &mut Object<'_>,
    program: &ProgramDef,
    map_symbols: &[SymbolId],
    callback_symbols: &[SymbolId],
) -> Result<(), String> {
    if program.insns.is_empty() {
        return Err(format!("program `{}` has no instructions", program.name));
    }
    if program.section.is_empty() {
        return Err(format!("program `{}` has no section name", program.name));
    }
    let (code, relocations) =
        encode_code(&program.name, &program.insns, map_symbols, callback_symbols)?;
    let section = obj.add_section(
        Vec::new(),
        program.section.as_bytes().to_vec(),
        SectionKind::Text,
    );
    obj.append_section_data(section, &code, 8);
    obj.add_symbol(Symbol {
        name: program.name.as_bytes().to_vec(),
        value: 0,
        size: code.len() as u64,
        kind: SymbolKind::Text,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    });
    add_relocations(obj, section, &program.name, relocations)
}

/// Where `ld_imm64` instructions need a symbol's address: (byte offset, symbol).
type Relocations = Vec<(u64, SymbolId)>;

/// The bytes of `insns`, and a relocation (offset, symbol) for every
/// `ld_imm64` that names a map or a callback.
fn encode_code(
    name: &str,
    insns: &[Insn],
    map_symbols: &[SymbolId],
    callback_symbols: &[SymbolId],
) -> Result<(Vec<u8>, Relocations), String> {
    let mut code = Vec::with_capacity(insns.len() * 8);
    let mut relocations = Vec::new();
    let mut i = 0;
    while let Some(&first) = insns.get(i) {
        let mut insn = first;
        if insn.code != LD_IMM64 {
            code.extend_from_slice(&insn.encode());
            i += 1;
            continue;
        }
        // A 64-bit immediate takes two slots; the second is never an
        // instruction of its own.
        let Some(second) = insns.get(i + 1) else {
            return Err(format!(
                "program `{name}`: the 64-bit immediate at instruction {i} has no second slot"
            ));
        };
        let targets = match insn.src {
            PSEUDO_MAP_FD | PSEUDO_MAP_VALUE => Some(("map", map_symbols)),
            PSEUDO_FUNC => Some(("callback", callback_symbols)),
            _ => None,
        };
        if let Some((what, symbols)) = targets {
            let symbol = u32::try_from(insn.imm)
                .ok()
                .and_then(|m| symbols.get(m as usize))
                .ok_or_else(|| {
                    format!(
                        "program `{name}`: instruction {i} refers to {what} {} but the object has {} {what}s",
                        insn.imm,
                        symbols.len()
                    )
                })?;
            relocations.push((i as u64 * 8, *symbol));
            insn.imm = 0;
            if insn.src == PSEUDO_FUNC {
                // The loader marks it once it knows where the callback lands.
                insn.src = 0;
            }
        }
        code.extend_from_slice(&insn.encode());
        code.extend_from_slice(&second.encode());
        i += 2;
    }
    Ok((code, relocations))
}

fn add_relocations(
    obj: &mut Object<'_>,
    section: SectionId,
    name: &str,
    relocations: Relocations,
) -> Result<(), String> {
    for (offset, symbol) in relocations {
        obj.add_relocation(
            section,
            Relocation {
                offset,
                symbol,
                addend: 0,
                flags: RelocationFlags::Elf {
                    r_type: R_BPF_64_64,
                },
            },
        )
        .map_err(|e| format!("program `{name}`: {e}"))?;
    }
    Ok(())
}

/// The kernel refuses other names with EINVAL and an empty log, so say it here.
fn check_names<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = HashSet::new();
    for name in names {
        check_name(what, name)?;
        if !seen.insert(name) {
            return Err(format!("two {what}s are named `{name}`"));
        }
    }
    Ok(())
}

/// Checks one program or map name: 1 to 15 bytes of `[A-Za-z0-9_]`.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("a {what} name cannot be empty"));
    }
    if name.len() > 15 {
        return Err(format!(
            "{what} name `{name}` is {} bytes long; the kernel allows at most 15",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(format!(
            "{what} name `{name}` contains {c:?}; only letters, digits and `_` are allowed"
        ));
    }
    Ok(())
}

fn check_map(map: &MapDef) -> Result<(), String> {
    let fail = |why: &str| Err(format!("map `{}`: {why}", map.name));
    if map.max_entries == 0 {
        return fail("max_entries must be at least 1");
    }
    match map.kind {
        MapKind::RingBuf if map.key_size != 0 || map.value_size != 0 => {
            fail("a ring buffer has no keys or values (key_size and value_size must be 0)")
        }
        MapKind::RingBuf => Ok(()),
        MapKind::Array | MapKind::PerCpuArray if map.key_size != 4 => {
            fail("an array map's keys are 4 bytes (key_size must be 4)")
        }
        _ if map.key_size == 0 || map.value_size == 0 => {
            fail("key_size and value_size must be at least 1")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on bad objects")]
mod tests {
    use super::*;
    use crate::backend::bpf::insn::{Alu, Size, helper};
    use object::read::{Object as _, ObjectSection as _, ObjectSymbol as _};
    use object::{RelocationTarget, SectionKind as ReadKind};

    fn counter_map(name: &str) -> MapDef {
        MapDef {
            name: name.to_string(),
            kind: MapKind::PerCpuArray,
            key_size: 4,
            value_size: 8,
            max_entries: 1,
            flags: 0,
        }
    }

    fn lookup_program(name: &str, section: &str, map: u32) -> ProgramDef {
        let mut insns = vec![Insn::store_imm(Size::W, 10, -4, 0)];
        insns.extend(Insn::ld_map(1, map));
        insns.push(Insn::mov_reg(2, 10));
        insns.push(Insn::alu_imm(Alu::Add, 2, -4));
        insns.push(Insn::call(helper::MAP_LOOKUP_ELEM));
        insns.push(Insn::mov_imm(0, 0));
        insns.push(Insn::exit());
        ProgramDef {
            name: name.to_string(),
            section: section.to_string(),
            insns,
        }
    }

    #[test]
    fn sections_symbols_and_relocations_read_back() {
        let maps = [counter_map("counts"), {
            let mut m = counter_map("other");
            m.kind = MapKind::Hash;
            m.key_size = 16;
            m.max_entries = 1024;
            m
        }];
        let programs = [
            lookup_program("probe_0", "tracepoint/syscalls/sys_enter_getppid", 1),
            lookup_program("probe_1", "kprobe/vfs_read", 0),
        ];
        let bytes = write_object(&maps, &programs).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        assert_eq!(file.architecture(), Architecture::Bpf);
        assert!(file.is_little_endian());
        assert_eq!(file.kind(), object::ObjectKind::Relocatable);

        let license = file.section_by_name("license").unwrap();
        assert_eq!(license.data().unwrap(), b"GPL\0");

        let maps_section = file.section_by_name("maps").unwrap();
        let data = maps_section.data().unwrap();
        assert_eq!(data.len(), 40);
        let words: Vec<u32> = data
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(words, [6, 4, 8, 1, 0, 1, 16, 8, 1024, 0]);

        let sym = |name: &str| file.symbols().find(|s| s.name() == Ok(name)).unwrap();
        for (name, value) in [("counts", 0), ("other", 20)] {
            let s = sym(name);
            assert_eq!(s.kind(), SymbolKind::Data);
            assert!(s.is_global(), "map symbol {name} must be global");
            assert_eq!(s.address(), value);
            assert_eq!(s.size(), 20);
            assert_eq!(s.section_index(), Some(maps_section.index()));
        }

        for (prog, section, map) in [
            ("probe_0", "tracepoint/syscalls/sys_enter_getppid", "other"),
            ("probe_1", "kprobe/vfs_read", "counts"),
        ] {
            let text = file.section_by_name(section).unwrap();
            assert_eq!(text.kind(), ReadKind::Text);
            let s = sym(prog);
            assert_eq!(s.kind(), SymbolKind::Text);
            assert!(s.is_global());
            assert_eq!(s.section_index(), Some(text.index()));
            assert_eq!(s.size(), 8 * 8);

            let relocs: Vec<_> = text.relocations().collect();
            assert_eq!(relocs.len(), 1, "one ld_map in {prog}");
            let (offset, rel) = &relocs[0];
            assert_eq!(*offset, 8, "ld_map is the second instruction");
            assert_eq!(rel.flags(), RelocationFlags::Elf { r_type: 1 });
            assert!(!rel.has_implicit_addend() || rel.addend() == 0);
            let RelocationTarget::Symbol(target) = rel.target() else {
                panic!("relocation in {prog} must name a symbol");
            };
            assert_eq!(file.symbol_by_index(target).unwrap().name(), Ok(map));

            // The ld_imm64 keeps its opcode and PSEUDO_MAP_FD, with imm 0.
            let code = text.data().unwrap();
            assert_eq!(&code[8..16], &[0x18, 0x11, 0, 0, 0, 0, 0, 0]);
            assert_eq!(&code[16..24], &[0; 8]);
        }
        assert!(
            file.sections()
                .any(|s| s.name() == Ok(".reltracepoint/syscalls/sys_enter_getppid")),
            "REL (not RELA) relocation sections"
        );
    }

    #[test]
    fn no_maps_means_no_maps_section() {
        let program = ProgramDef {
            name: "p".into(),
            section: "tracepoint/sched/sched_switch".into(),
            insns: vec![Insn::mov_imm(0, 0), Insn::exit()],
        };
        let bytes = write_object(&[], &[program]).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        assert!(file.section_by_name("maps").is_none());
        assert!(
            file.section_by_name("tracepoint/sched/sched_switch")
                .is_some()
        );
    }

    #[test]
    fn bad_names_are_refused_with_a_sentence() {
        let long = write_object(&[counter_map("a_name_of_16_byt")], &[]).unwrap_err();
        assert_eq!(
            long,
            "map name `a_name_of_16_byt` is 16 bytes long; the kernel allows at most 15"
        );
        let dash = write_object(&[], &[lookup_program("probe-0", "kprobe/x", 0)]).unwrap_err();
        assert!(dash.contains("contains '-'"), "{dash}");
        let twice = write_object(&[counter_map("m"), counter_map("m")], &[]).unwrap_err();
        assert_eq!(twice, "two maps are named `m`");
        assert!(write_object(&[counter_map("")], &[]).is_err());
    }

    #[test]
    fn callbacks_live_in_text_with_btf_and_a_relocation_each() {
        let mut program = lookup_program("p", "tracepoint/a/b", 0);
        program.insns.splice(0..0, Insn::ld_callback(2, 0));
        let callback = CallbackDef {
            name: "cb0".into(),
            insns: vec![Insn::mov_imm(0, 0), Insn::exit()],
        };
        let bytes = write_object_with(&[counter_map("m")], &[program], &[callback]).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        for name in [".text", ".BTF", ".BTF.ext"] {
            assert!(file.section_by_name(name).is_some(), "{name}");
        }
        let text = file.section_by_name("tracepoint/a/b").unwrap();
        let targets: Vec<String> = text
            .relocations()
            .map(|(_, r)| match r.target() {
                RelocationTarget::Symbol(i) => {
                    file.symbol_by_index(i).unwrap().name().unwrap().to_string()
                }
                _ => String::new(),
            })
            .collect();
        assert_eq!(targets, ["cb0", "m"]);
        let missing = write_object_with(&[], &[lookup_program("q", "kprobe/x", 0)], &[]);
        assert!(missing.is_err());
    }

    #[test]
    fn a_missing_map_is_refused() {
        let err = write_object(&[], &[lookup_program("p", "kprobe/x", 3)]).unwrap_err();
        assert_eq!(
            err,
            "program `p`: instruction 1 refers to map 3 but the object has 0 maps"
        );
    }

    #[test]
    fn a_truncated_ld_imm64_is_refused() {
        let [lo, _] = Insn::ld_imm64(1, 5);
        let program = ProgramDef {
            name: "p".into(),
            section: "perf_event".into(),
            insns: vec![lo],
        };
        assert!(
            write_object(&[], &[program])
                .unwrap_err()
                .contains("second slot")
        );
    }
}
