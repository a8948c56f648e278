//! The BTF an object carries when its programs call back into functions of
//! their own (`bpf_for_each_map_elem`): the kernel wants every function's
//! prototype (`.BTF`) and where each starts (`.BTF.ext` func_info).
//!
//! Types: `int`, `void *`, `int (void *ctx)` for programs and
//! `int (void *map, void *key, void *value, void *ctx)` for callbacks, then
//! one FUNC per program (global) and per callback (static).

const MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const LINKAGE_STATIC: u32 = 0;
const LINKAGE_GLOBAL: u32 = 1;
/// `.BTF.ext` func_info record: insn_off (bytes), type_id.
const FUNC_INFO_SIZE: u32 = 8;

/// A function the object defines: its name, the ELF section holding it, and
/// its first byte there.
#[derive(Debug)]
pub struct Func<'a> {
    pub name: &'a str,
    pub section: &'a str,
    pub offset: u32,
    pub callback: bool,
}

/// `.BTF` and `.BTF.ext` for `funcs`.
pub fn encode(funcs: &[Func<'_>]) -> (Vec<u8>, Vec<u8>) {
    let mut strings = Strings::default();
    let mut types = Vec::new();
    let word = |types: &mut Vec<u8>, w: u32| types.extend_from_slice(&w.to_le_bytes());
    // 1: int
    let int = strings.add("int");
    for w in [int, KIND_INT << 24, 4, (1 << 24) | 32] {
        word(&mut types, w);
    }
    // 2: void *
    for w in [0, KIND_PTR << 24, 0] {
        word(&mut types, w);
    }
    // 3: int (void *ctx)
    let ctx = strings.add("ctx");
    for w in [0, (KIND_FUNC_PROTO << 24) | 1, 1, ctx, 2] {
        word(&mut types, w);
    }
    // 4: int (void *map, void *key, void *value, void *ctx)
    word(&mut types, 0);
    word(&mut types, (KIND_FUNC_PROTO << 24) | 4);
    word(&mut types, 1);
    for name in ["map", "key", "value", "ctx"] {
        let n = strings.add(name);
        word(&mut types, n);
        word(&mut types, 2);
    }
    // 5..: one FUNC each.
    let mut ids = Vec::new();
    for (i, f) in funcs.iter().enumerate() {
        let name = strings.add(f.name);
        let (linkage, proto) = if f.callback {
            (LINKAGE_STATIC, 4)
        } else {
            (LINKAGE_GLOBAL, 3)
        };
        for w in [name, (KIND_FUNC << 24) | linkage, proto] {
            word(&mut types, w);
        }
        ids.push(5 + u32::try_from(i).unwrap_or(0));
    }
    // Section names live in the same string table, for .BTF.ext.
    let mut sections: Vec<(&str, Vec<(u32, u32)>)> = Vec::new();
    for (f, id) in funcs.iter().zip(&ids) {
        match sections.iter_mut().find(|(s, _)| *s == f.section) {
            Some((_, recs)) => recs.push((f.offset, *id)),
            None => sections.push((f.section, vec![(f.offset, *id)])),
        }
    }
    let section_names: Vec<u32> = sections.iter().map(|(s, _)| strings.add(s)).collect();

    let mut btf = Vec::new();
    btf.extend_from_slice(&MAGIC.to_le_bytes());
    btf.extend_from_slice(&[1, 0]);
    let type_len = u32::try_from(types.len()).unwrap_or(0);
    let str_len = u32::try_from(strings.bytes.len()).unwrap_or(0);
    for w in [24, 0, type_len, type_len, str_len] {
        btf.extend_from_slice(&w.to_le_bytes());
    }
    btf.extend_from_slice(&types);
    btf.extend_from_slice(&strings.bytes);

    let mut info = FUNC_INFO_SIZE.to_le_bytes().to_vec();
    for ((_, recs), name) in sections.iter().zip(&section_names) {
        info.extend_from_slice(&name.to_le_bytes());
        info.extend_from_slice(&u32::try_from(recs.len()).unwrap_or(0).to_le_bytes());
        for (off, id) in recs {
            info.extend_from_slice(&off.to_le_bytes());
            info.extend_from_slice(&id.to_le_bytes());
        }
    }
    let mut ext = Vec::new();
    ext.extend_from_slice(&MAGIC.to_le_bytes());
    ext.extend_from_slice(&[1, 0]);
    let info_len = u32::try_from(info.len()).unwrap_or(0);
    // hdr_len, func_info_off/len, line_info_off/len (none).
    for w in [24, 0, info_len, info_len, 0] {
        ext.extend_from_slice(&w.to_le_bytes());
    }
    ext.extend_from_slice(&info);
    (btf, ext)
}

/// A BTF string table: NUL-separated, starting with the empty string.
struct Strings {
    bytes: Vec<u8>,
}

impl Default for Strings {
    fn default() -> Strings {
        Strings { bytes: vec![0] }
    }
}

impl Strings {
    fn add(&mut self, s: &str) -> u32 {
        let at = u32::try_from(self.bytes.len()).unwrap_or(0);
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.push(0);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
    }

    #[test]
    fn headers_and_func_info_point_where_they_should() {
        let funcs = [
            Func {
                name: "p0",
                section: "tracepoint/a/b",
                offset: 0,
                callback: false,
            },
            Func {
                name: "cb0",
                section: ".text",
                offset: 0,
                callback: true,
            },
            Func {
                name: "cb1",
                section: ".text",
                offset: 96,
                callback: true,
            },
        ];
        let (btf, ext) = encode(&funcs);
        assert_eq!(u32_at(&btf, 4), 24, "header length");
        let (type_len, str_off, str_len) = (u32_at(&btf, 12), u32_at(&btf, 16), u32_at(&btf, 20));
        assert_eq!(str_off, type_len);
        assert_eq!(btf.len() as u32, 24 + type_len + str_len);
        // func_info: record size, then two sections: one record, two records.
        assert_eq!(u32_at(&ext, 12), 4 + 8 + 8 + 8 + 16);
        assert_eq!(u32_at(&ext, 24), FUNC_INFO_SIZE);
        assert_eq!(u32_at(&ext, 32), 1);
        assert_eq!(u32_at(&ext, 48), 2);
        assert_eq!(
            (u32_at(&ext, 60), u32_at(&ext, 64)),
            (96, 7),
            "cb1 is type 7"
        );
    }
}
