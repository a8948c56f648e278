//! A C type graph, the shape BTF gives it: types live in one vector and refer to
//! each other by [`TypeId`] (0 is `void`, as in BTF). It is filled by
//! [`crate::btf::parse`] from the kernel's BTF, or built directly by tests.
//!
//! Queries never panic and never loop forever: an id outside the graph reads as
//! `void`, and chains through typedefs and qualifiers are followed at most
//! [`MAX_DEPTH`] steps, so malformed input gives `None` or `<unknown>`, not a hang.

use std::collections::HashMap;
use std::fmt;

/// How many typedef/qualifier/pointer steps a query follows before giving up.
pub const MAX_DEPTH: usize = 64;

/// An index into a [`TypeGraph`]; 0 is `void`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeId(pub u32);

impl TypeId {
    pub const VOID: TypeId = TypeId(0);
}

impl fmt::Display for TypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One C type. Names are `""` where C has none (anonymous struct, unnamed parameter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CType {
    Void,
    Int {
        name: String,
        size: u32,
        signed: bool,
    },
    Float {
        name: String,
        size: u32,
    },
    Ptr(TypeId),
    Array {
        elem: TypeId,
        len: u32,
    },
    Struct {
        name: String,
        size: u32,
        members: Vec<Member>,
    },
    Union {
        name: String,
        size: u32,
        members: Vec<Member>,
    },
    Enum {
        name: String,
        size: u32,
        signed: bool,
        values: Vec<(String, i64)>,
    },
    /// `struct x;` / `union x;` declared but not defined here.
    Fwd {
        name: String,
        union: bool,
    },
    Typedef {
        name: String,
        ty: TypeId,
    },
    Const(TypeId),
    Volatile(TypeId),
    Restrict(TypeId),
    FuncProto {
        ret: TypeId,
        params: Vec<(String, TypeId)>,
        variadic: bool,
    },
    Func {
        name: String,
        proto: TypeId,
    },
    /// A global variable (BTF `VAR`); `linkage` 0 static, 1 global, 2 extern.
    Var {
        name: String,
        ty: TypeId,
        linkage: u32,
    },
    /// A data section and the variables placed in it (BTF `DATASEC`).
    Datasec {
        name: String,
        size: u32,
        vars: Vec<DatasecVar>,
    },
    /// An attribute on a type, or on one member/parameter of it when
    /// `component` ≥ 0 (BTF `DECL_TAG`).
    DeclTag {
        name: String,
        ty: TypeId,
        component: i32,
    },
    /// An attribute on a pointee such as `__user` or `__rcu` (BTF `TYPE_TAG`):
    /// transparent to every query here.
    TypeTag {
        name: String,
        ty: TypeId,
    },
}

/// A struct or union member. `bit_offset` counts from the start of the aggregate;
/// `bitfield_size` is 0 for an ordinary member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub ty: TypeId,
    pub bit_offset: u32,
    pub bitfield_size: u32,
}

/// One variable of a [`CType::Datasec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasecVar {
    pub ty: TypeId,
    pub offset: u32,
    pub size: u32,
}

/// A function's parameters (names may be `""`) and return type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncSig {
    pub params: Vec<(String, TypeId)>,
    pub ret: TypeId,
    pub variadic: bool,
}

/// Where a member sits in the aggregate a [`TypeGraph::field`] query started from.
/// For a bitfield, the value is `bitfield_size` bits starting `bit_shift` bits
/// past `byte_offset` (little-endian bit numbering, as BTF counts them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldRef {
    pub ty: TypeId,
    pub byte_offset: u32,
    pub bit_shift: u32,
    pub bitfield_size: u32,
}

/// The types, and name indexes built once when the graph is made.
#[derive(Clone, Debug, Default)]
pub struct TypeGraph {
    types: Vec<CType>,
    funcs: HashMap<String, TypeId>,
    structs: HashMap<String, TypeId>,
    unions: HashMap<String, TypeId>,
    enums: HashMap<String, TypeId>,
    typedefs: HashMap<String, TypeId>,
}

static VOID: CType = CType::Void;

impl TypeGraph {
    /// A graph whose type `k` (from 1) is `types[k - 1]`; id 0 is `void`.
    /// The first definition of a name wins in the indexes, as BTF lookups do.
    pub fn new(types: Vec<CType>) -> TypeGraph {
        let mut all = Vec::with_capacity(types.len() + 1);
        all.push(CType::Void);
        all.extend(types);
        let mut g = TypeGraph {
            types: all,
            ..TypeGraph::default()
        };
        for (k, t) in g.types.iter().enumerate() {
            let id = TypeId(u32::try_from(k).unwrap_or(u32::MAX));
            let (map, name) = match t {
                CType::Func { name, .. } => (&mut g.funcs, name),
                CType::Struct { name, .. } => (&mut g.structs, name),
                CType::Union { name, .. } => (&mut g.unions, name),
                CType::Enum { name, .. } => (&mut g.enums, name),
                CType::Typedef { name, .. } => (&mut g.typedefs, name),
                _ => continue,
            };
            if !name.is_empty() {
                map.entry(name.clone()).or_insert(id);
            }
        }
        g
    }

    /// How many ids the graph has, `void` included.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// True when the graph has nothing but `void`.
    pub fn is_empty(&self) -> bool {
        self.types.len() <= 1
    }

    /// Every type with its id, `void` first.
    pub fn iter(&self) -> impl Iterator<Item = (TypeId, &CType)> {
        self.types
            .iter()
            .enumerate()
            .map(|(k, t)| (TypeId(u32::try_from(k).unwrap_or(u32::MAX)), t))
    }

    /// The type `id` names; `void` for an id outside the graph.
    pub fn get(&self, id: TypeId) -> &CType {
        self.types.get(id.0 as usize).unwrap_or(&VOID)
    }

    /// Through typedefs, qualifiers and type tags to the type underneath.
    pub fn strip(&self, id: TypeId) -> TypeId {
        let mut id = id;
        for _ in 0..MAX_DEPTH {
            match self.get(id) {
                CType::Typedef { ty, .. }
                | CType::TypeTag { ty, .. }
                | CType::Const(ty)
                | CType::Volatile(ty)
                | CType::Restrict(ty) => id = *ty,
                _ => return id,
            }
        }
        id
    }

    /// Through qualifiers and type tags only: typedef names stay.
    fn unqualify(&self, id: TypeId) -> TypeId {
        let mut id = id;
        for _ in 0..MAX_DEPTH {
            match self.get(id) {
                CType::TypeTag { ty, .. }
                | CType::Const(ty)
                | CType::Volatile(ty)
                | CType::Restrict(ty) => id = *ty,
                _ => return id,
            }
        }
        id
    }

    /// The signature of the kernel function `name` (a BTF `FUNC`).
    pub fn function(&self, name: &str) -> Option<FuncSig> {
        let id = *self.funcs.get(name)?;
        let CType::Func { proto, .. } = self.get(id) else {
            return None;
        };
        match self.get(*proto) {
            CType::FuncProto {
                ret,
                params,
                variadic,
            } => Some(FuncSig {
                params: params.clone(),
                ret: *ret,
                variadic: *variadic,
            }),
            _ => None,
        }
    }

    /// The id of the BTF `FUNC` called `name`.
    pub fn function_id(&self, name: &str) -> Option<TypeId> {
        self.funcs.get(name).copied()
    }

    /// A struct or union by name: `task_struct`, `struct task_struct`,
    /// `union x`, or a typedef name whose type is a struct or union.
    pub fn struct_named(&self, name: &str) -> Option<TypeId> {
        let name = name.trim();
        if let Some(n) = name.strip_prefix("struct ") {
            return self.structs.get(n.trim()).copied();
        }
        if let Some(n) = name.strip_prefix("union ") {
            return self.unions.get(n.trim()).copied();
        }
        if let Some(id) = self.structs.get(name).or_else(|| self.unions.get(name)) {
            return Some(*id);
        }
        let id = self.strip(*self.typedefs.get(name)?);
        match self.get(id) {
            CType::Struct { .. } | CType::Union { .. } => Some(id),
            CType::Fwd { name, union } => self.complete(name, *union),
            _ => None,
        }
    }

    /// An enum by name (`pid_type` or `enum pid_type`).
    pub fn enum_named(&self, name: &str) -> Option<TypeId> {
        let name = name.trim();
        let name = name.strip_prefix("enum ").map_or(name, str::trim);
        self.enums.get(name).copied()
    }

    /// The value of an enumerator, searched in every enum (`BPF_TRACE_FENTRY`).
    pub fn enumerator(&self, name: &str) -> Option<i64> {
        self.types.iter().find_map(|t| match t {
            CType::Enum { values, .. } => values.iter().find(|(n, _)| n == name).map(|(_, v)| *v),
            _ => None,
        })
    }

    /// A typedef by name (`size_t`).
    pub fn typedef_named(&self, name: &str) -> Option<TypeId> {
        self.typedefs.get(name).copied()
    }

    fn complete(&self, name: &str, union: bool) -> Option<TypeId> {
        if union {
            self.unions.get(name).copied()
        } else {
            self.structs.get(name).copied()
        }
    }

    /// The size in bytes of a value of type `id`; `None` for void, functions,
    /// forward declarations and anything malformed. Pointers are 8 bytes: BTF
    /// does not say, and rstap targets 64-bit kernels.
    pub fn size_of(&self, id: TypeId) -> Option<u32> {
        self.size_of_depth(id, 0)
    }

    fn size_of_depth(&self, id: TypeId, depth: usize) -> Option<u32> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.get(self.strip(id)) {
            CType::Int { size, .. }
            | CType::Float { size, .. }
            | CType::Struct { size, .. }
            | CType::Union { size, .. }
            | CType::Enum { size, .. } => Some(*size),
            CType::Ptr(_) => Some(8),
            CType::Array { elem, len } => self.size_of_depth(*elem, depth + 1)?.checked_mul(*len),
            _ => None,
        }
    }

    /// Member `name` of the struct or union `id` (or of the one `id` points to),
    /// looking inside anonymous struct and union members as C does.
    pub fn field(&self, id: TypeId, name: &str) -> Option<FieldRef> {
        let mut id = self.strip(id);
        if let CType::Ptr(inner) = self.get(id) {
            id = self.strip(*inner);
        }
        if let CType::Fwd { name, union } = self.get(id) {
            id = self.complete(name, *union)?;
        }
        let bits = self.field_bits(id, name, 0)?;
        Some(FieldRef {
            ty: bits.0,
            byte_offset: bits.1 / 8,
            bit_shift: bits.1 % 8,
            bitfield_size: bits.2,
        })
    }

    /// (type, bit offset, bitfield size) of `name` inside aggregate `id`.
    fn field_bits(&self, id: TypeId, name: &str, depth: usize) -> Option<(TypeId, u32, u32)> {
        if depth > MAX_DEPTH {
            return None;
        }
        let (CType::Struct { members, .. } | CType::Union { members, .. }) = self.get(id) else {
            return None;
        };
        if let Some(m) = members.iter().find(|m| m.name == name) {
            return Some((m.ty, m.bit_offset, m.bitfield_size));
        }
        members.iter().filter(|m| m.name.is_empty()).find_map(|m| {
            let (ty, off, bits) = self.field_bits(self.strip(m.ty), name, depth + 1)?;
            Some((ty, m.bit_offset.checked_add(off)?, bits))
        })
    }

    /// The type as `stap -L` prints it: `struct file*`, `char const*`,
    /// `long unsigned int`, `size_t`, `int (*) (void*, long int)`, and
    /// `<unknown>` where no C spelling exists.
    pub fn spell(&self, id: TypeId) -> String {
        let mut out = String::new();
        let mut proto = None;
        if self.spell_into(id, &mut out, &mut proto, 0) != Some(true) {
            return "<unknown>".into();
        }
        let Some(proto) = proto else { return out };
        // A function pointer: the modifiers gathered so far go in the middle.
        let CType::FuncProto {
            ret,
            params,
            variadic,
        } = self.get(proto)
        else {
            return "<unknown>".into();
        };
        let mut args: Vec<String> = params.iter().map(|(_, t)| self.spell(*t)).collect();
        if *variadic {
            args.push("...".into());
        }
        if args.is_empty() {
            args.push("void".into());
        }
        format!("{} ({out}) ({})", self.spell(*ret), args.join(", "))
    }

    /// Appends the spelling of `id` to `out`: `Some(false)` when `id` has no C
    /// spelling (its referrer then says `void`, as stap does), `None` when the
    /// chain is longer than [`MAX_DEPTH`] (a cycle: the whole spelling is lost).
    fn spell_into(
        &self,
        id: TypeId,
        out: &mut String,
        proto: &mut Option<TypeId>,
        depth: usize,
    ) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        let named = |out: &mut String, kind: &str, name: &str| {
            out.push_str(kind);
            out.push_str(if name.is_empty() { "{...}" } else { name });
            Some(true)
        };
        let (inner, suffix) = match self.get(id) {
            CType::Void => return named(out, "", "void"),
            CType::Int { name, .. } | CType::Float { name, .. } | CType::Typedef { name, .. } => {
                return named(out, "", name);
            }
            CType::Struct { name, .. } => return named(out, "struct ", name),
            CType::Union { name, .. } => return named(out, "union ", name),
            CType::Enum { name, .. } => return named(out, "enum ", name),
            CType::Fwd { name, union } => {
                return named(out, if *union { "union " } else { "struct " }, name);
            }
            CType::FuncProto { .. } => {
                *proto = Some(id);
                return Some(true);
            }
            CType::TypeTag { ty, .. } => return self.spell_into(*ty, out, proto, depth + 1),
            CType::Ptr(t) => {
                // va_list reaches the debuginfo as `struct __va_list_tag*`.
                if matches!(self.get(self.unqualify(*t)), CType::Struct { name, .. } if name == "__va_list_tag")
                {
                    out.push_str("va_list");
                    return Some(true);
                }
                (*t, "*")
            }
            CType::Array { elem, .. } => (*elem, "[]"),
            CType::Const(t) => (*t, " const"),
            CType::Volatile(t) => (*t, " volatile"),
            CType::Restrict(t) => (*t, " restrict"),
            CType::Func { .. }
            | CType::Var { .. }
            | CType::Datasec { .. }
            | CType::DeclTag { .. } => return Some(false),
        };
        let mark = out.len();
        if !self.spell_into(inner, out, proto, depth + 1)? {
            out.truncate(mark);
            out.push_str("void");
        }
        out.push_str(suffix);
        Some(true)
    }
}
