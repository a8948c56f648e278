//! A `KernelInfo` fed from fixtures, so compiler tests need no kernel: tracepoint
//! formats and kallsyms copied from a real kernel (`fixtures/kernel/`), a small
//! BTF type graph built here (written to BTF bytes and parsed back, so the
//! reader is in the loop), features chosen by the test, and user binaries read
//! from the paths the test names.

use rstap_compiler::btf::{self, Endian};
use rstap_compiler::ctype::{CType, Member, TypeGraph, TypeId};
use rstap_compiler::elf::{self, Binary};
use rstap_compiler::kallsyms;
use rstap_compiler::kernel::{Features, KernelError, KernelInfo, KernelSymbol, TracepointId};
use rstap_compiler::tracepoint::{TracepointFormat, parse_format};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

pub struct FixtureKernel {
    root: PathBuf,
    /// What `features()` answers; every mechanism unless a test says otherwise.
    pub features: Features,
    /// What `may_goto()` answers (true unless a test says otherwise).
    pub may_goto: bool,
    types: OnceLock<TypeGraph>,
}

impl FixtureKernel {
    pub fn new() -> FixtureKernel {
        FixtureKernel {
            root: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kernel"),
            features: Features::ALL,
            may_goto: true,
            types: OnceLock::new(),
        }
    }
}

/// A slice of a real kernel's types: `vfs_read`, `vfs_write`, `ksys_read`,
/// `struct file`, and a `task_struct` with an anonymous union and a bitfield.
pub fn fixture_types() -> TypeGraph {
    let int = |name: &str, size, signed| CType::Int {
        name: name.into(),
        size,
        signed,
    };
    let member = |name: &str, ty, bit_offset| Member {
        name: name.into(),
        ty: TypeId(ty),
        bit_offset,
        bitfield_size: 0,
    };
    let types = vec![
        /* 1 */ int("char", 1, true),
        /* 2 */ int("long int", 8, true),
        /* 3 */ int("long unsigned int", 8, false),
        /* 4 */ int("int", 4, true),
        /* 5 */ int("unsigned int", 4, false),
        /* 6 */
        CType::Typedef {
            name: "size_t".into(),
            ty: TypeId(3),
        },
        /* 7 */
        CType::Typedef {
            name: "ssize_t".into(),
            ty: TypeId(2),
        },
        /* 8 */
        CType::Typedef {
            name: "loff_t".into(),
            ty: TypeId(2),
        },
        /* 9 */
        CType::Struct {
            name: "file".into(),
            size: 184,
            members: vec![member("f_mode", 5, 0), member("f_pos", 8, 64)],
        },
        /* 10 */ CType::Ptr(TypeId(9)),
        /* 11 */ CType::Ptr(TypeId(1)),
        /* 12 */ CType::Const(TypeId(1)),
        /* 13 */ CType::Ptr(TypeId(12)),
        /* 14 */ CType::Ptr(TypeId(8)),
        /* 15 */
        CType::FuncProto {
            ret: TypeId(7),
            params: vec![
                ("file".into(), TypeId(10)),
                ("buf".into(), TypeId(11)),
                ("count".into(), TypeId(6)),
                ("pos".into(), TypeId(14)),
            ],
            variadic: false,
        },
        /* 16 */
        CType::Func {
            name: "vfs_read".into(),
            proto: TypeId(15),
        },
        /* 17 */
        CType::FuncProto {
            ret: TypeId(7),
            params: vec![
                ("file".into(), TypeId(10)),
                ("buf".into(), TypeId(13)),
                ("count".into(), TypeId(6)),
                ("pos".into(), TypeId(14)),
            ],
            variadic: false,
        },
        /* 18 */
        CType::Func {
            name: "vfs_write".into(),
            proto: TypeId(17),
        },
        /* 19 */
        CType::FuncProto {
            ret: TypeId(7),
            params: vec![
                ("fd".into(), TypeId(5)),
                ("buf".into(), TypeId(11)),
                ("count".into(), TypeId(6)),
            ],
            variadic: false,
        },
        /* 20 */
        CType::Func {
            name: "ksys_read".into(),
            proto: TypeId(19),
        },
        /* 21: the anonymous union inside task_struct */
        CType::Union {
            name: String::new(),
            size: 8,
            members: vec![member("ptraced", 3, 0), member("ptrace_flags", 4, 0)],
        },
        /* 22 */
        CType::Array {
            elem: TypeId(1),
            len: 16,
        },
        /* 23 */
        CType::Struct {
            name: "task_struct".into(),
            size: 64,
            members: vec![
                member("pid", 4, 0),
                member("tgid", 4, 32),
                member("", 21, 64),
                member("comm", 22, 128),
                Member {
                    name: "in_execve".into(),
                    ty: TypeId(5),
                    bit_offset: 259,
                    bitfield_size: 1,
                },
                member("parent", 24, 320),
            ],
        },
        /* 24 */ CType::Ptr(TypeId(23)),
    ];
    TypeGraph::new(types)
}

impl KernelInfo for FixtureKernel {
    fn tracepoints(&self) -> Result<Vec<TracepointId>, KernelError> {
        let text = std::fs::read_to_string(self.root.join("available_events"))
            .map_err(|e| KernelError(e.to_string()))?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(s, n)| TracepointId {
                system: s.into(),
                name: n.into(),
            })
            .collect())
    }

    fn tracepoint_format(&self, tp: &TracepointId) -> Result<TracepointFormat, KernelError> {
        let path = self
            .root
            .join("events")
            .join(&tp.system)
            .join(&tp.name)
            .join("format");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| KernelError(format!("{}: {e}", path.display())))?;
        parse_format(&text).map_err(KernelError)
    }

    fn kernel_functions(&self) -> Result<Vec<KernelSymbol>, KernelError> {
        let text = std::fs::read_to_string(self.root.join("kallsyms"))
            .map_err(|e| KernelError(e.to_string()))?;
        Ok(kallsyms::parse(&text, ""))
    }

    fn kernel_types(&self) -> Result<&TypeGraph, KernelError> {
        Ok(self.types.get_or_init(|| {
            let bytes = btf::write(&fixture_types(), Endian::Little);
            btf::parse(&bytes).unwrap_or_else(|e| panic!("the fixture BTF does not parse: {e}"))
        }))
    }

    fn features(&self) -> Features {
        self.features
    }

    fn may_goto(&self) -> bool {
        self.may_goto
    }

    fn user_binary(&self, path: &str) -> Result<Arc<Binary>, KernelError> {
        if !path.contains('/') {
            return Err(KernelError(format!(
                "the fixture kernel has no $PATH: name `{path}` by a path"
            )));
        }
        let bytes =
            std::fs::read(path).map_err(|e| KernelError(format!("cannot read {path}: {e}")))?;
        elf::parse(path, &bytes).map(Arc::new).map_err(KernelError)
    }
}
