//! The syscall tapset, generated at elaboration from the kernel's own
//! `syscalls:sys_enter_NAME` / `sys_exit_NAME` tracepoints: one alias pair
//! `syscall.NAME` / `syscall.NAME.return` (and `nd_syscall.*` synonyms) for
//! every syscall this kernel can trace, so the list is never hand-kept.
//!
//! Each entry alias sets `name`, one local per argument under the name stap
//! users know, and `argstr`; each return alias sets `name`, `retval` and
//! `retstr`. The locals follow rules over the tracepoint's fields (a user
//! string becomes a quoted string, another pointer `NAME_uaddr`, a 32-bit
//! integer is narrowed from the record's 64-bit slot), plus, for the syscalls
//! whose stap names differ from the kernel's, the renames in [`STAP_NAMES`].
//! `argstr` calls the tapset function `_syscall_argstr_NAME` when the library
//! has one (its parameters name the locals it takes), else the generic
//! `_syscall_argstr`. Both run in user space when the result is only printed
//! (see `mir::defer_calls`).

use crate::kernel::{KernelError, KernelInfo, TracepointId};
use crate::tracepoint::{Field, TracepointFormat};
use std::fmt::Write;

/// The file name the generated tapset carries in diagnostics.
pub const FILE_NAME: &str = "<syscall tapset from tracefs>";

/// Where stap's locals differ from the kernel's field names:
/// (syscall, field, stap's local).
const STAP_NAMES: &[(&str, &str, &str)] = &[
    ("pread64", "pos", "offset"),
    ("pwrite64", "pos", "offset"),
    ("lseek", "whence", "whence"),
    ("kill", "sig", "sig"),
    ("tkill", "sig", "sig"),
    ("tgkill", "sig", "sig"),
    ("connect", "uservaddr", "serv_addr_uaddr"),
    ("bind", "umyaddr", "my_addr_uaddr"),
    ("accept", "upeer_sockaddr", "addr_uaddr"),
    ("accept4", "upeer_sockaddr", "addr_uaddr"),
    ("accept", "upeer_addrlen", "addrlen_uaddr"),
    ("accept4", "upeer_addrlen", "addrlen_uaddr"),
    ("mmap", "addr", "start"),
    ("mmap", "off", "offset"),
    ("munmap", "addr", "start"),
    ("mprotect", "start", "addr"),
    ("brk", "brk", "brk"),
    ("nanosleep", "rqtp", "req_uaddr"),
    ("nanosleep", "rmtp", "rem_uaddr"),
    ("clock_nanosleep", "rqtp", "req_uaddr"),
    ("clock_nanosleep", "rmtp", "rem_uaddr"),
    ("clock_nanosleep", "which_clock", "clk_id"),
    ("execve", "argv", "args_uaddr"),
    ("execve", "envp", "env_uaddr"),
    ("execveat", "argv", "args_uaddr"),
    ("execveat", "envp", "env_uaddr"),
    ("exit", "error_code", "status"),
    ("exit_group", "error_code", "status"),
    ("socket", "family", "family"),
    ("ioctl", "cmd", "request"),
    ("ioctl", "arg", "argp"),
    ("sendto", "buff", "buf_uaddr"),
    ("sendto", "len", "len"),
    ("recvfrom", "ubuf", "buf_uaddr"),
    ("recvfrom", "size", "len"),
    ("poll", "ufds", "ufds_uaddr"),
    ("epoll_wait", "events", "events_uaddr"),
    ("futex", "uaddr", "futex_uaddr"),
    ("futex", "utime", "timeout_uaddr"),
    ("renameat2", "olddfd", "olddfd"),
];

/// Locals stap offers beyond the arguments, read in the kernel (from user
/// memory) for the argstr functions: (syscall, local, value).
const EXTRA_LOCALS: &[(&str, &str, &str)] = &[
    (
        "write",
        "buf_raw",
        "user_string_n(buf_uaddr, count < 32 ? count : 32, \"\")",
    ),
    (
        "pwrite64",
        "buf_raw",
        "user_string_n(buf_uaddr, count < 32 ? count : 32, \"\")",
    ),
    ("execve", "args", "_syscall_argv(args_uaddr)"),
    ("execveat", "args", "_syscall_argv(args_uaddr)"),
    ("nanosleep", "req_sec", "_syscall_user_long(req_uaddr)"),
    ("nanosleep", "req_nsec", "_syscall_user_long(req_uaddr + 8)"),
    (
        "clock_nanosleep",
        "req_sec",
        "_syscall_user_long(req_uaddr)",
    ),
    (
        "clock_nanosleep",
        "req_nsec",
        "_syscall_user_long(req_uaddr + 8)",
    ),
];

/// Syscalls whose return value is an address, shown in hex.
const RETURNS_ADDRESS: &[&str] = &["mmap", "brk", "mremap", "shmat"];

/// `const char *` fields that are buffers, not NUL-terminated strings.
const NOT_STRINGS: &[&str] = &[
    "buf",
    "ubuf",
    "buff",
    "optval",
    "u_msg_ptr",
    "shmaddr",
    "list",
    "vec",
    "_callout_info",
    "value",
    "_payload",
    "uargs",
];

/// `char *` fields (not const) that are still input strings.
const MUTABLE_STRINGS: &[&str] = &["dev_name", "dir_name", "type", "put_old", "new_root"];

/// How an argument is formatted in the generic `argstr` (the codes of
/// `_syscall_argstr` in the tapset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shown {
    Signed = 1,
    Unsigned = 2,
    Pointer = 3,
    Str = 4,
}

/// One argument as an alias local.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Local {
    name: String,
    /// The tracepoint field, `$name`.
    field: String,
    /// What the alias assigns it.
    value: String,
    shown: Shown,
}

/// One traceable syscall: its name and its entry tracepoint's fields.
#[derive(Clone, Debug)]
pub struct Syscall {
    pub name: String,
    pub enter: TracepointFormat,
    pub has_exit: bool,
}

/// The syscalls the kernel has tracepoints for, sorted by name.
pub fn syscalls(kernel: &dyn KernelInfo) -> Result<Vec<Syscall>, KernelError> {
    let all = kernel.tracepoints()?;
    let has = |name: &str| {
        all.binary_search(&TracepointId {
            system: "syscalls".into(),
            name: name.into(),
        })
        .is_ok()
    };
    let mut out = Vec::new();
    for tp in all.iter().filter(|tp| tp.system == "syscalls") {
        let Some(name) = tp.name.strip_prefix("sys_enter_") else {
            continue;
        };
        out.push(Syscall {
            name: name.to_string(),
            enter: kernel.tracepoint_format(tp)?,
            has_exit: has(&format!("sys_exit_{name}")),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The tapset text for `syscalls`. `argstr_params(name)` gives the parameter
/// names of the library's `_syscall_argstr_NAME`, when it has one.
pub fn tapset(syscalls: &[Syscall], argstr_params: &dyn Fn(&str) -> Option<Vec<String>>) -> String {
    let mut out = String::from(
        "// Generated from this kernel's syscalls:sys_enter_* and sys_exit_* tracepoints.\n",
    );
    for sc in syscalls {
        entry(&mut out, sc, argstr_params(&sc.name));
        if sc.has_exit {
            exit(&mut out, &sc.name);
        }
    }
    out
}

fn entry(out: &mut String, sc: &Syscall, params: Option<Vec<String>>) {
    let name = &sc.name;
    let locals = locals(sc);
    let _ = writeln!(
        out,
        "probe syscall.{name} = nd_syscall.{name} = kernel.trace(\"syscalls:sys_enter_{name}\")\n{{\n\tname = \"{name}\""
    );
    for l in &locals {
        let _ = writeln!(out, "\t{} = {}", l.name, l.value);
        if l.shown == Shown::Str {
            // The bytes as they are, for argstr to quote with escapes.
            let _ = writeln!(
                out,
                "\t{}_unquoted = user_string({}, \"<unknown>\")",
                l.name, l.field
            );
        }
    }
    for (_, local, value) in EXTRA_LOCALS.iter().filter(|(s, _, _)| s == name) {
        let _ = writeln!(out, "\t{local} = {value}");
    }
    let argstr = match params {
        Some(p) => format!("_syscall_argstr_{name}({})", p.join(", ")),
        None => generic_argstr(&locals),
    };
    let _ = writeln!(out, "\targstr = {argstr}\n}}");
}

fn exit(out: &mut String, name: &str) {
    let format = if RETURNS_ADDRESS.contains(&name) {
        2
    } else {
        1
    };
    let _ = writeln!(
        out,
        "probe syscall.{name}.return = nd_syscall.{name}.return = kernel.trace(\"syscalls:sys_exit_{name}\")\n{{\n\tname = \"{name}\"\n\tretval = $ret\n\tretstr = return_str({format}, retval)\n}}"
    );
}

/// `_syscall_argstr(kinds, a1..a6, s1..s6)`: up to six arguments, each a
/// number or a string by its 3-bit code in `kinds`.
fn generic_argstr(locals: &[Local]) -> String {
    let mut kinds = 0i64;
    let mut longs = vec!["0".to_string(); 6];
    let mut strings = vec!["\"\"".to_string(); 6];
    for (i, l) in locals.iter().take(6).enumerate() {
        kinds |= (l.shown as i64) << (3 * i);
        if l.shown == Shown::Str {
            strings[i] = format!("{}_unquoted", l.name);
        } else {
            longs[i] = l.name.clone();
        }
    }
    format!(
        "_syscall_argstr({kinds}, {}, {})",
        longs.join(", "),
        strings.join(", ")
    )
}

fn locals(sc: &Syscall) -> Vec<Local> {
    sc.enter
        .args()
        .filter(|f| f.name != "__syscall_nr")
        .map(|f| local(&sc.name, f))
        .collect()
}

fn local(syscall: &str, f: &Field) -> Local {
    let renamed = STAP_NAMES
        .iter()
        .find(|(s, field, _)| *s == syscall && *field == f.name)
        .map(|(_, _, local)| local.to_string());
    let c = f.c_type.as_str();
    let field = format!("${}", f.name);
    let pointer = c.ends_with('*');
    let string = (c == "const char *" && !NOT_STRINGS.contains(&f.name.as_str()))
        || (c == "char *" && MUTABLE_STRINGS.contains(&f.name.as_str()));
    // `name` is the syscall's name: an argument called so is `name_str`, as in stap.
    let plain = if f.name == "name" {
        "name_str".to_string()
    } else {
        f.name.clone()
    };
    if string {
        return Local {
            name: renamed.unwrap_or(plain),
            value: format!("user_string_quoted({field})"),
            field,
            shown: Shown::Str,
        };
    }
    if pointer {
        return Local {
            name: renamed.unwrap_or_else(|| format!("{plain}_uaddr")),
            value: field.clone(),
            field,
            shown: Shown::Pointer,
        };
    }
    let (value, shown) = match narrow(c) {
        Some((32, true)) => (format!("__int32({field})"), Shown::Signed),
        Some((32, false)) => (format!("__uint32({field})"), Shown::Unsigned),
        Some((16, _)) => (format!("{field} & 65535"), Shown::Unsigned),
        _ if c.starts_with("unsigned") || c == "size_t" || c.starts_with("u64") => {
            (field.clone(), Shown::Unsigned)
        }
        _ => (field.clone(), Shown::Signed),
    };
    Local {
        name: renamed.unwrap_or(plain),
        value,
        field,
        shown,
    }
}

/// The width and signedness of the C integer types narrower than the
/// record's 64-bit slot (the kernel stores every argument as a long).
fn narrow(c_type: &str) -> Option<(u32, bool)> {
    let c = c_type.trim_start_matches("const ");
    Some(match c {
        "int" | "pid_t" | "clockid_t" | "key_serial_t" | "mqd_t" | "timer_t" | "rwf_t"
        | "key_t" | "__s32" | "s32" => (32, true),
        "unsigned int" | "unsigned" | "u32" | "__u32" | "uid_t" | "gid_t" | "qid_t" => (32, false),
        "umode_t" | "unsigned short" | "u16" => (16, false),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracepoint::parse_format;

    fn fixture(name: &str, fields: &str) -> Syscall {
        let mut text = format!(
            "name: sys_enter_{name}\nID: 1\nformat:\n\
             \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
             \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n"
        );
        let mut offset = 16;
        for decl in fields.split(';').filter(|d| !d.is_empty()) {
            text.push_str(&format!(
                "\tfield:{decl};\toffset:{offset};\tsize:8;\tsigned:0;\n"
            ));
            offset += 8;
        }
        Syscall {
            name: name.to_string(),
            enter: parse_format(&text).unwrap_or_else(|e| panic!("fixture should parse: {e}")),
            has_exit: true,
        }
    }

    #[test]
    fn openat_gets_stap_locals_and_its_tapset_argstr() {
        let sc = fixture(
            "openat",
            "int dfd;const char * filename;int flags;umode_t mode",
        );
        let params = |n: &str| {
            (n == "openat").then(|| {
                ["dfd", "filename_unquoted", "flags", "mode"]
                    .map(String::from)
                    .to_vec()
            })
        };
        let text = tapset(&[sc], &params);
        let expected = "\
probe syscall.openat = nd_syscall.openat = kernel.trace(\"syscalls:sys_enter_openat\")
{
\tname = \"openat\"
\tdfd = __int32($dfd)
\tfilename = user_string_quoted($filename)
\tfilename_unquoted = user_string($filename, \"<unknown>\")
\tflags = __int32($flags)
\tmode = $mode & 65535
\targstr = _syscall_argstr_openat(dfd, filename_unquoted, flags, mode)
}
probe syscall.openat.return = nd_syscall.openat.return = kernel.trace(\"syscalls:sys_exit_openat\")
{
\tname = \"openat\"
\tretval = $ret
\tretstr = return_str(1, retval)
}
";
        assert!(
            text.ends_with(expected),
            "generated text differs:\n{text}\nexpected it to end with:\n{expected}"
        );
    }

    #[test]
    fn read_buffers_are_uaddr_and_the_generic_argstr_codes_each_argument() {
        let sc = fixture("read", "unsigned int fd;char * buf;size_t count");
        let text = tapset(&[sc], &|_| None);
        for line in [
            "\tfd = __uint32($fd)",
            "\tbuf_uaddr = $buf",
            "\tcount = $count",
            // fd unsigned (2), buf a pointer (3 << 3), count unsigned (2 << 6).
            "\targstr = _syscall_argstr(154, fd, buf_uaddr, count, 0, 0, 0, \"\", \"\", \"\", \"\", \"\", \"\")",
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
    }

    #[test]
    fn renames_and_address_returns_follow_stap() {
        let text = tapset(
            &[
                fixture(
                    "mmap",
                    "unsigned long addr;unsigned long len;unsigned long off",
                ),
                fixture(
                    "setxattr",
                    "const char * pathname;const char * name;const void * value",
                ),
            ],
            &|_| None,
        );
        for line in [
            "\tstart = $addr",
            "\toffset = $off",
            "\tretstr = return_str(2, retval)",
            "\tname_str = user_string_quoted($name)",
            "\tvalue_uaddr = $value",
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
    }
}
