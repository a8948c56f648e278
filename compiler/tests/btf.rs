//! BTF bytes → type graph, and the queries the compiler asks of it: a blob
//! assembled by hand word by word (so the reader is checked against the format,
//! not against our writer), round trips through the writer in both byte orders,
//! and malformed input that must give `Err`, never a panic.

use rstap_compiler::btf::{self, Endian};
use rstap_compiler::ctype::{CType, FieldRef, Member, TypeGraph, TypeId};

/// Assembles a BTF blob: type records as u32 words, and a string table.
struct Blob {
    words: Vec<u32>,
    strings: Vec<u8>,
}

impl Blob {
    fn new() -> Blob {
        Blob {
            words: Vec::new(),
            strings: vec![0],
        }
    }

    fn s(&mut self, text: &str) -> u32 {
        let off = self.strings.len() as u32;
        self.strings.extend(text.as_bytes());
        self.strings.push(0);
        off
    }

    /// A type record head: name, kind, vlen, kind_flag, size or type.
    fn head(&mut self, name: &str, kind: u32, vlen: u32, flag: bool, size_or_type: u32) {
        let name = if name.is_empty() { 0 } else { self.s(name) };
        self.words.extend([
            name,
            u32::from(flag) << 31 | kind << 24 | vlen,
            size_or_type,
        ]);
    }

    fn bytes(&self, endian: Endian) -> Vec<u8> {
        let word = |v: u32| match endian {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        };
        let mut out = Vec::new();
        out.extend(match endian {
            Endian::Little => 0xeb9f_u16.to_le_bytes(),
            Endian::Big => 0xeb9f_u16.to_be_bytes(),
        });
        out.extend([1, 0]);
        let type_len = self.words.len() as u32 * 4;
        for v in [24, 0, type_len, type_len, self.strings.len() as u32] {
            out.extend(word(v));
        }
        for w in &self.words {
            out.extend(word(*w));
        }
        out.extend(&self.strings);
        out
    }
}

/// 1 int, 2 char, 3 const char, 4 char const*, 5 struct s { int a; int b:3; int c:5; },
/// 6 struct s*, 7 proto long(struct s *p, char const *name, ...), 8 func f,
/// 9 typedef long, 10 enum e { A=-1, B=2 } (signed), 11 long int, 12 TYPE_TAG user → 3.
fn hand_built() -> Blob {
    let mut b = Blob::new();
    b.head("int", 1, 0, false, 4);
    b.words.push(1 << 24 | 32); // signed, 32 bits
    b.head("char", 1, 0, false, 1);
    b.words.push(1 << 24 | 8);
    b.head("", 10, 0, false, 2);
    b.head("", 2, 0, false, 12);
    b.head("s", 4, 3, true, 8);
    for (name, bits, off) in [("a", 0, 0), ("b", 3, 32), ("c", 5, 35)] {
        let n = b.s(name);
        b.words.extend([n, 1, bits << 24 | off]);
    }
    b.head("", 2, 0, false, 5);
    b.head("", 13, 3, false, 9);
    let (p, name) = (b.s("p"), b.s("name"));
    b.words.extend([p, 6, name, 4, 0, 0]);
    b.head("f", 12, 1, false, 7);
    b.head("long", 8, 0, false, 11);
    b.head("e", 6, 2, true, 4);
    let (a, bb) = (b.s("A"), b.s("B"));
    b.words.extend([a, (-1_i32) as u32, bb, 2]);
    b.head("long int", 1, 0, false, 8);
    b.words.push(1 << 24 | 64);
    b.head("user", 18, 0, false, 3);
    b
}

fn parse(bytes: &[u8]) -> TypeGraph {
    btf::parse(bytes).unwrap_or_else(|e| panic!("valid BTF rejected: {e}"))
}

#[test]
fn reads_a_hand_built_blob_in_both_byte_orders() {
    for endian in [Endian::Little, Endian::Big] {
        let g = parse(&hand_built().bytes(endian));
        assert_eq!(g.len(), 13, "void and 12 types");
        assert_eq!(
            g.get(TypeId(1)),
            &CType::Int {
                name: "int".into(),
                size: 4,
                signed: true
            }
        );
        let CType::Struct { name, members, .. } = g.get(TypeId(5)) else {
            panic!("type 5 is not a struct: {:?}", g.get(TypeId(5)));
        };
        assert_eq!(name, "s");
        assert_eq!(
            members[2],
            Member {
                name: "c".into(),
                ty: TypeId(1),
                bit_offset: 35,
                bitfield_size: 5
            }
        );
        let sig = g
            .function("f")
            .unwrap_or_else(|| panic!("no function f in {endian:?}"));
        assert!(sig.variadic);
        assert_eq!(
            sig.params,
            vec![("p".into(), TypeId(6)), ("name".into(), TypeId(4))]
        );
        assert_eq!(g.spell(sig.ret), "long");
        assert_eq!(
            g.get(TypeId(10)),
            &CType::Enum {
                name: "e".into(),
                size: 4,
                signed: true,
                values: vec![("A".into(), -1), ("B".into(), 2)]
            }
        );
        assert_eq!(
            g.spell(TypeId(12)),
            "char const",
            "type tags are transparent"
        );
    }
}

#[test]
fn the_writer_round_trips() {
    let g = parse(&hand_built().bytes(Endian::Little));
    for endian in [Endian::Little, Endian::Big] {
        let again = parse(&btf::write(&g, endian));
        let a: Vec<_> = g.iter().collect();
        let b: Vec<_> = again.iter().collect();
        assert_eq!(a, b, "{endian:?}");
    }
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let good = hand_built().bytes(Endian::Little);
    assert!(btf::parse(&[]).is_err());
    assert!(btf::parse(b"garbage, not BTF at all").is_err());
    for cut in 0..good.len() {
        assert!(
            btf::parse(&good[..cut]).is_err(),
            "a blob cut at {cut} bytes parsed"
        );
    }
    // Every byte flipped in turn: parse may accept or reject, never panic.
    for k in 0..good.len() {
        let mut bad = good.clone();
        bad[k] ^= 0xff;
        let _ = btf::parse(&bad);
    }
    let mut dangling = Blob::new();
    dangling.head("", 2, 0, false, 7);
    let err = btf::parse(&dangling.bytes(Endian::Little)).err();
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("refers to type 7")),
        "a pointer to a missing type: {err:?}"
    );
    let mut unknown = Blob::new();
    unknown.head("", 31, 0, false, 0);
    assert!(btf::parse(&unknown.bytes(Endian::Little)).is_err());
    let mut version2 = good.clone();
    version2[2] = 2;
    assert!(btf::parse(&version2).is_err());
}

#[test]
fn a_typedef_loop_does_not_hang_the_queries() {
    let g = TypeGraph::new(vec![
        CType::Typedef {
            name: "a".into(),
            ty: TypeId(2),
        },
        CType::Typedef {
            name: "b".into(),
            ty: TypeId(1),
        },
        CType::Ptr(TypeId(3)),
    ]);
    assert_eq!(g.size_of(TypeId(1)), None);
    assert_eq!(g.field(TypeId(1), "x"), None);
    assert_eq!(g.struct_named("a"), None);
    assert_eq!(
        g.spell(TypeId(3)),
        "<unknown>",
        "a self-pointer has no spelling"
    );
    assert_eq!(g.spell(TypeId(1)), "a");
    assert_eq!(g.get(TypeId(99)), &CType::Void);
}

/// struct file; struct task_struct { int pid; union { long a; int b; }; char comm[16];
/// unsigned in_execve:1; struct task_struct *parent; }; and friends.
fn kernelish() -> TypeGraph {
    let int = |name: &str, size, signed| CType::Int {
        name: name.into(),
        size,
        signed,
    };
    let m = |name: &str, ty, bit_offset, bitfield_size| Member {
        name: name.into(),
        ty: TypeId(ty),
        bit_offset,
        bitfield_size,
    };
    TypeGraph::new(vec![
        /* 1 */ int("int", 4, true),
        /* 2 */ int("long int", 8, true),
        /* 3 */ int("char", 1, true),
        /* 4 */ int("unsigned int", 4, false),
        /* 5 */
        CType::Union {
            name: String::new(),
            size: 8,
            members: vec![m("a", 2, 0, 0), m("b", 1, 0, 0)],
        },
        /* 6 */
        CType::Array {
            elem: TypeId(3),
            len: 16,
        },
        /* 7 */
        CType::Struct {
            name: "task_struct".into(),
            size: 48,
            members: vec![
                m("pid", 1, 0, 0),
                m("", 5, 64, 0),
                m("comm", 6, 128, 0),
                m("in_execve", 4, 259, 1),
                m("parent", 8, 320, 0),
            ],
        },
        /* 8 */ CType::Ptr(TypeId(7)),
        /* 9 */
        CType::Typedef {
            name: "task_t".into(),
            ty: TypeId(7),
        },
        /* 10 */ CType::Const(TypeId(9)),
        /* 11 */ CType::Ptr(TypeId(10)),
        /* 12 */
        CType::Fwd {
            name: "task_struct".into(),
            union: false,
        },
        /* 13 */ CType::Ptr(TypeId(12)),
        /* 14 */
        CType::Struct {
            name: "__va_list_tag".into(),
            size: 24,
            members: vec![],
        },
        /* 15 */ CType::Ptr(TypeId(14)),
        /* 16 */
        CType::FuncProto {
            ret: TypeId(1),
            params: vec![("".into(), TypeId(8)), ("".into(), TypeId(2))],
            variadic: false,
        },
        /* 17 */ CType::Ptr(TypeId(16)),
        /* 18 */
        CType::FuncProto {
            ret: TypeId(0),
            params: vec![],
            variadic: false,
        },
        /* 19 */ CType::Ptr(TypeId(18)),
        /* 20 */ CType::Ptr(TypeId(0)),
        /* 21 */ CType::Const(TypeId(0)),
        /* 22 */ CType::Ptr(TypeId(21)),
        /* 23 */ CType::Volatile(TypeId(2)),
        /* 24 */
        CType::Enum {
            name: "pid_type".into(),
            size: 4,
            signed: false,
            values: vec![("PIDTYPE_PID".into(), 0), ("PIDTYPE_TGID".into(), 1)],
        },
        /* 25 */ CType::Ptr(TypeId(5)),
        /* 26 */ CType::Array {
            elem: TypeId(8),
            len: 4,
        },
    ])
}

#[test]
fn struct_lookup_by_every_spelling() {
    let g = kernelish();
    assert_eq!(g.struct_named("task_struct"), Some(TypeId(7)));
    assert_eq!(g.struct_named("struct task_struct"), Some(TypeId(7)));
    assert_eq!(
        g.struct_named("task_t"),
        Some(TypeId(7)),
        "through a typedef"
    );
    assert_eq!(g.struct_named("union task_struct"), None);
    assert_eq!(g.struct_named("int"), None);
    assert_eq!(g.enum_named("enum pid_type"), Some(TypeId(24)));
    assert_eq!(g.enumerator("PIDTYPE_TGID"), Some(1));
    assert_eq!(g.typedef_named("task_t"), Some(TypeId(9)));
}

#[test]
fn fields_through_pointers_anonymous_unions_and_bitfields() {
    let g = kernelish();
    let field = |id, name| g.field(TypeId(id), name);
    let plain = |ty, byte_offset| {
        Some(FieldRef {
            ty: TypeId(ty),
            byte_offset,
            bit_shift: 0,
            bitfield_size: 0,
        })
    };
    assert_eq!(field(7, "pid"), plain(1, 0));
    assert_eq!(field(7, "comm"), plain(6, 16));
    assert_eq!(field(7, "b"), plain(1, 8), "inside the anonymous union");
    assert_eq!(
        field(7, "in_execve"),
        Some(FieldRef {
            ty: TypeId(4),
            byte_offset: 32,
            bit_shift: 3,
            bitfield_size: 1
        })
    );
    assert_eq!(field(8, "parent"), plain(8, 40), "through a pointer");
    assert_eq!(
        field(11, "pid"),
        plain(1, 0),
        "through a const typedef pointer"
    );
    assert_eq!(
        field(13, "comm"),
        plain(6, 16),
        "a forward declaration resolves"
    );
    assert_eq!(field(7, "nosuch"), None);
    assert_eq!(field(1, "pid"), None, "an int has no members");
}

#[test]
fn sizes() {
    let g = kernelish();
    assert_eq!(g.size_of(TypeId(7)), Some(48));
    assert_eq!(g.size_of(TypeId(6)), Some(16));
    assert_eq!(g.size_of(TypeId(26)), Some(32), "array of pointers");
    assert_eq!(g.size_of(TypeId(10)), Some(48), "const typedef");
    assert_eq!(g.size_of(TypeId(24)), Some(4));
    assert_eq!(g.size_of(TypeId(0)), None);
    assert_eq!(
        g.size_of(TypeId(12)),
        None,
        "a forward declaration has no size"
    );
    assert_eq!(g.size_of(TypeId(16)), None);
}

#[test]
fn types_are_spelled_the_way_stap_prints_them() {
    let g = kernelish();
    let spell = |id| g.spell(TypeId(id));
    assert_eq!(spell(2), "long int");
    assert_eq!(spell(8), "struct task_struct*");
    assert_eq!(spell(6), "char[]");
    assert_eq!(spell(11), "task_t const*");
    assert_eq!(spell(13), "struct task_struct*");
    assert_eq!(spell(5), "union {...}");
    assert_eq!(spell(15), "va_list");
    assert_eq!(spell(17), "int (*) (struct task_struct*, long int)");
    assert_eq!(spell(19), "void (*) (void)");
    assert_eq!(spell(20), "void*");
    assert_eq!(spell(22), "void const*");
    assert_eq!(spell(23), "long int volatile");
    assert_eq!(spell(24), "enum pid_type");
    assert_eq!(spell(25), "union {...}*");
    assert_eq!(spell(0), "void");
}
