//! Built-in functions as the user-space engine runs them: begin, end and timer
//! handlers run in rstap's own process, so `pid()` and `execname()` describe
//! rstap (as stap's describe its stapio); strings and clocks behave as stap's.

use super::value::Value;
use super::{Engine, Fault};
use rstap_compiler::backend::bpf::codegen::Deferred;
use rstap_compiler::builtins::Builtin;
use rstap_compiler::hir::PrintKind;
use rstap_grammar::Span;
use std::time::{SystemTime, UNIX_EPOCH};

impl Engine<'_> {
    pub(super) fn builtin(
        &mut self,
        b: Builtin,
        args: &[Value],
        at: Span,
    ) -> Result<Option<Value>, Fault> {
        let long = |i: usize| args.get(i).map_or(0, Value::long);
        let bytes = |i: usize| args.get(i).map_or(&[][..], Value::bytes);
        let n = |v: i64| Ok(Some(Value::Long(v)));
        match b {
            Builtin::Exit => {
                self.exit = true;
                Ok(None)
            }
            Builtin::Error => Err(Fault::new(
                String::from_utf8_lossy(bytes(0)).into_owned(),
                Some(at),
            )),
            Builtin::Warn => {
                self.warnings
                    .push(String::from_utf8_lossy(bytes(0)).into_owned());
                Ok(None)
            }
            Builtin::System => {
                self.commands
                    .push(String::from_utf8_lossy(bytes(0)).into_owned());
                Ok(None)
            }
            Builtin::Log => {
                let mut line = bytes(0).to_vec();
                line.push(b'\n');
                self.emit(PrintKind::Print, &line);
                Ok(None)
            }
            Builtin::Abort => {
                self.exit = true;
                Err(Fault::abort())
            }
            Builtin::Execname | Builtin::Pexecname => Ok(Some(Value::Str(self.host.comm.clone()))),
            Builtin::Pid | Builtin::Tid | Builtin::StpPid => n(self.host.pid),
            Builtin::Ppid => n(self.host.ppid),
            Builtin::Pgrp | Builtin::Sid => n(self.host.pid),
            Builtin::Uid | Builtin::Euid => n(self.host.uid),
            Builtin::Gid | Builtin::Egid => n(self.host.gid),
            Builtin::Cpu => n(self.host.cpu()),
            Builtin::Target => n(self.host.target),
            Builtin::IsReturn | Builtin::UserMode => n(0),
            Builtin::GettimeofdayS => n(wall_ns() / 1_000_000_000),
            Builtin::GettimeofdayMs => n(wall_ns() / 1_000_000),
            Builtin::GettimeofdayUs => n(wall_ns() / 1_000),
            Builtin::GettimeofdayNs => n(wall_ns()),
            Builtin::LocalClockNs | Builtin::KtimeGetNs | Builtin::GetCycles => n(mono_ns()),
            Builtin::CpuClockNs => n(mono_ns()),
            Builtin::LocalClockUs => n(mono_ns() / 1_000),
            Builtin::LocalClockMs => n(mono_ns() / 1_000_000),
            Builtin::LocalClockS => n(mono_ns() / 1_000_000_000),
            Builtin::Jiffies => n(mono_ns() / (1_000_000_000 / self.host.hz.max(1))),
            Builtin::Hz => n(self.host.hz),
            Builtin::NumOnlineCpus => n(self.host.cpus),
            Builtin::TzGmtoff => n(-local_zone().0),
            Builtin::TzName => Ok(Some(Value::Str(local_zone().1))),
            // The current process of a user-context handler is rstap: its
            // own argument and environment areas, as the kernel keeps them.
            Builtin::CmdlineArgs => {
                let area = std::fs::read("/proc/self/cmdline").unwrap_or_default();
                let max = self.limits.max_string.saturating_sub(1);
                let text = cmdline_args(&area, long(0), long(1), bytes(2), max);
                Ok(Some(Value::Str(self.clip(text))))
            }
            Builtin::EnvVar => {
                let area = std::fs::read("/proc/self/environ").unwrap_or_default();
                let max = self.limits.max_string.saturating_sub(1);
                Ok(Some(Value::Str(self.clip(env_var(&area, bytes(0), max)))))
            }
            Builtin::Randint => {
                let max = long(0);
                if max <= 0 {
                    return Err(Fault::new("randint: invalid range", Some(at)));
                }
                n(self.random().rem_euclid(max))
            }
            Builtin::Strlen => n(i64::try_from(bytes(0).len()).unwrap_or(i64::MAX)),
            Builtin::Substr => Ok(Some(Value::Str(substr(bytes(0), long(1), long(2))))),
            Builtin::Stringat => {
                let s = bytes(0);
                match usize::try_from(long(1)).ok().and_then(|i| s.get(i)) {
                    Some(&c) => n(i64::from(c)),
                    None => Err(Fault::new("Position out of bounds", Some(at))),
                }
            }
            Builtin::Isinstr => n(i64::from(find(bytes(0), bytes(1)).is_some())),
            Builtin::Strpos => {
                n(find(bytes(0), bytes(1)).map_or(-1, |i| i64::try_from(i).unwrap_or(i64::MAX)))
            }
            Builtin::Strtol => n(strtol(bytes(0), long(1))),
            Builtin::StrspnAt | Builtin::StrcspnAt => {
                let inside = b == Builtin::StrspnAt;
                n(span_at(bytes(0), long(1), bytes(2), inside))
            }
            Builtin::StrReplace => Ok(Some(Value::Str(self.clip(replace(
                bytes(0),
                bytes(1),
                bytes(2),
            ))))),
            Builtin::TextStr => Ok(Some(Value::Str(self.clip(text_strn(
                bytes(0),
                usize::MAX,
                false,
            ))))),
            Builtin::TextStrn => {
                let len = usize::try_from(long(1))
                    .ok()
                    .filter(|&l| l > 0)
                    .unwrap_or(usize::MAX);
                Ok(Some(Value::Str(self.clip(text_strn(
                    bytes(0),
                    len,
                    long(2) != 0,
                )))))
            }
            Builtin::ErrnoStr => Ok(Some(Value::Str(errno_name(long(0)).into_bytes()))),
            Builtin::Matched => {
                let i = usize::try_from(long(0)).ok();
                match i.and_then(|i| self.captures.get(i)) {
                    Some(c) => Ok(Some(Value::Str(c.clone()))),
                    None => Err(Fault::new("matched: no such subexpression", Some(at))),
                }
            }
            Builtin::Ngroups => n(i64::try_from(self.captures.len()).unwrap_or(0)),
            Builtin::Pp
            | Builtin::Pn
            | Builtin::Ppfunc
            | Builtin::Probefunc
            | Builtin::Probemod => self.probe_names(b, at),
            Builtin::UserStringOr | Builtin::KernelStringOr | Builtin::UserStringNOr => {
                // User-space handlers have no traced memory: the fallback text.
                let msg = args.last().map_or(&[][..], Value::bytes).to_vec();
                Ok(Some(Value::Str(msg)))
            }
            Builtin::UserString | Builtin::UserStringN => Err(Fault::new(
                format!(
                    "user string copy fault -14 at 0x{:x} [man error::fault]",
                    long(0)
                ),
                Some(at),
            )),
            Builtin::KernelString | Builtin::KernelStringN => Err(Fault::new(
                format!(
                    "kernel string copy fault at 0x{:x} [man error::fault]",
                    long(0)
                ),
                Some(at),
            )),
            // A user-context handler runs in rstap, with no kernel task address to give.
            Builtin::TaskCurrent => Err(Fault::new(
                "task_current() reads the kernel's task, which only a kernel-context probe can",
                Some(at),
            )),
            Builtin::UserLong
            | Builtin::UserInt
            | Builtin::UserShort
            | Builtin::UserChar
            | Builtin::KernelLong
            | Builtin::KernelInt
            | Builtin::KernelShort
            | Builtin::KernelChar
            | Builtin::KernelPointer => Err(Fault::new(
                format!("read fault [man error::fault] at 0x{:x}", long(0)),
                Some(at),
            )),
            Builtin::Symname => Ok(Some(Value::Str(self.clip(self.symbols.name(long(0)))))),
            Builtin::Symdata => Ok(Some(Value::Str(self.clip(self.symbols.data(long(0)))))),
            // The current process of a user-context handler is rstap.
            Builtin::Usymname | Builtin::Usymdata | Builtin::Umodname => {
                let how = match b {
                    Builtin::Usymname => Deferred::Usymname,
                    Builtin::Umodname => Deferred::Umodname,
                    _ => Deferred::Usymdata,
                };
                let text = self.symbols.user(how, self.host.pid, long(0));
                Ok(Some(Value::Str(self.clip(text))))
            }
            // A user-context handler interrupted no kernel stack.
            Builtin::PrintBacktrace | Builtin::PrintUbacktrace => Ok(None),
            Builtin::Backtrace
            | Builtin::SprintBacktrace
            | Builtin::Ubacktrace
            | Builtin::SprintUbacktrace => Ok(Some(Value::Str(Vec::new()))),
        }
    }

    /// `pp()`, `pn()`, `ppfunc()`, `probefunc()`, `probemod()` of the running probe.
    fn probe_names(&self, b: Builtin, at: Span) -> Result<Option<Value>, Fault> {
        let Some(p) = self.probe else {
            return Ok(Some(Value::Str(Vec::new())));
        };
        let text = match b {
            Builtin::Pp => p.pp(),
            Builtin::Pn => p.pn(),
            Builtin::Ppfunc => p.ppfunc(),
            Builtin::Probefunc => p.probefunc(),
            _ => p
                .probemod()
                .ok_or_else(|| Fault::new(rstap_compiler::mir::NO_MODULE, Some(at)))?,
        };
        Ok(Some(Value::Str(text.as_bytes().to_vec())))
    }

    /// A 64-bit pseudo-random number (xorshift, seeded from the clock).
    fn random(&mut self) -> i64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 1) as i64
    }
}

/// The first index from `at` (0 when negative) whose byte of `s` is not in
/// `set` (`inside`: strspn's end) or is in it (strcspn's end), else the
/// string's length.
pub(crate) fn span_at(s: &[u8], at: i64, set: &[u8], inside: bool) -> i64 {
    let from = usize::try_from(at).unwrap_or(0).min(s.len());
    let end = s[from..]
        .iter()
        .position(|c| set.contains(c) != inside)
        .map_or(s.len(), |i| from + i);
    i64::try_from(end).unwrap_or(i64::MAX)
}

/// The NUL-terminated string at `at` of a process's argument or environment
/// area, cut to `max` bytes, and where the next one starts. (stap's tapset
/// steps by the cut string's length, so a string longer than MAXSTRINGLEN
/// reads as several; rstap steps over it whole.)
fn area_string(area: &[u8], at: usize, max: usize) -> (&[u8], usize) {
    let rest = area.get(at..).unwrap_or_default();
    let len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    (&rest[..len.min(max)], at + len + 1)
}

/// `cmdline_args(n, m, delim)` over a process's argument area, as stap's
/// tapset walks it: arguments `n` to `m` (every one from `n` when `m` is
/// negative) joined by `delim`, an empty argument after the first shown as
/// `""`.
pub(crate) fn cmdline_args(area: &[u8], n: i64, m: i64, delim: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut at, mut nr) = (0usize, 0i64);
    while at < area.len() && (m < 0 || nr <= m) {
        let (arg, next) = area_string(area, at, max);
        at = next;
        if nr == n {
            out = arg.to_vec();
        } else if nr > n {
            out.extend_from_slice(delim);
            out.extend_from_slice(if arg.is_empty() { b"\"\"" } else { arg });
        }
        nr += 1;
    }
    out
}

/// `env_var(name)` over a process's environment area: the text after the
/// `=` of the first entry whose name is `name`, else "".
pub(crate) fn env_var(area: &[u8], name: &[u8], max: usize) -> Vec<u8> {
    if name.is_empty() {
        return Vec::new();
    }
    let mut at = 0;
    while at < area.len() {
        let (entry, next) = area_string(area, at, usize::MAX);
        at = next;
        if let Some(rest) = entry.strip_prefix(name)
            && (rest.is_empty() || rest[0] == b'=')
        {
            let value = rest.get(1..).unwrap_or_default();
            return value[..value.len().min(max)].to_vec();
        }
    }
    Vec::new()
}

fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The local time zone now: seconds east of UTC, and its abbreviation.
fn local_zone() -> (i64, Vec<u8>) {
    let now = libc::time_t::try_from(wall_ns() / 1_000_000_000).unwrap_or(0);
    // SAFETY: an all-zero `tm` is a valid value (its zone pointer is null).
    #[expect(unsafe_code, reason = "tm has no safe constructor")]
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is reentrant.
    #[expect(unsafe_code, reason = "localtime_r has no safe wrapper in std")]
    let done = unsafe { libc::localtime_r(&now, &mut tm) };
    if done.is_null() {
        return (0, b"UTC".to_vec());
    }
    let name = if tm.tm_zone.is_null() {
        Vec::new()
    } else {
        // SAFETY: localtime_r points tm_zone at a NUL-terminated string that
        // lives as long as the process's time zone data.
        #[expect(unsafe_code, reason = "tm_zone is a C string")]
        let zone = unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) };
        zone.to_bytes().to_vec()
    };
    (tm.tm_gmtoff, name)
}

fn mono_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    #[expect(unsafe_code, reason = "clock_gettime has no safe wrapper in std")]
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec)
}

/// stap's substr: `length` bytes from `start` (0-based); out of range gives "".
fn substr(s: &[u8], start: i64, length: i64) -> Vec<u8> {
    let (Ok(start), Ok(length)) = (usize::try_from(start), usize::try_from(length)) else {
        return Vec::new();
    };
    if start >= s.len() {
        return Vec::new();
    }
    let end = start.saturating_add(length).min(s.len());
    s[start..end].to_vec()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn replace(s: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return s.to_vec();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// strtol as C does it: leading space, a sign, an optional 0x/0 prefix for base
/// 16/8 (or base 0), digits until the first that does not belong.
fn strtol(s: &[u8], base: i64) -> i64 {
    let mut i = 0;
    while s.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut base = u32::try_from(base).unwrap_or(10);
    let hex_prefix = s.get(i) == Some(&b'0') && matches!(s.get(i + 1), Some(b'x' | b'X'));
    if (base == 16 || base == 0) && hex_prefix {
        i += 2;
        base = 16;
    } else if base == 0 {
        base = if s.get(i) == Some(&b'0') { 8 } else { 10 };
    }
    if !(2..=36).contains(&base) {
        return 0;
    }
    let mut v: i64 = 0;
    while let Some(d) = s.get(i).and_then(|&c| (c as char).to_digit(base)) {
        v = v
            .saturating_mul(i64::from(base))
            .saturating_add(i64::from(d));
        i += 1;
    }
    if neg { v.wrapping_neg() } else { v }
}

/// One byte as text_str shows it: printable ASCII as is, the rest as C escapes.
fn escaped(c: u8) -> Vec<u8> {
    match c {
        b'\n' => b"\\n".to_vec(),
        b'\t' => b"\\t".to_vec(),
        b'\r' => b"\\r".to_vec(),
        b'"' => b"\\\"".to_vec(),
        b'\\' => b"\\\\".to_vec(),
        0x20..=0x7e => vec![c],
        _ => format!("\\{c:03o}").into_bytes(),
    }
}

/// text_str / text_strn: the escaped text in at most `max` bytes of output. Quoted,
/// the quotes count, and a cut string ends in `"...` within the limit.
fn text_strn(s: &[u8], max: usize, quoted: bool) -> Vec<u8> {
    let pieces: Vec<Vec<u8>> = s.iter().map(|&c| escaped(c)).collect();
    let full: usize = pieces.iter().map(Vec::len).sum();
    let room = if quoted { max.saturating_sub(2) } else { max };
    let cut = full > room;
    // A cut quoted string also needs room for the `...`.
    let budget = if quoted && cut {
        max.saturating_sub(5)
    } else {
        room
    };
    let mut out = Vec::new();
    if quoted {
        out.push(b'"');
    }
    for p in &pieces {
        if out.len() - usize::from(quoted) + p.len() > budget {
            break;
        }
        out.extend_from_slice(p);
    }
    if quoted {
        out.push(b'"');
        if cut {
            out.extend_from_slice(b"...");
        }
    }
    out
}

/// The errno name stap prints (`ENOENT`), or "" for a number that names no
/// error. (stap's manual promises `E#3333` for those; its code gives "".)
/// The names are Linux's generic ones, as x86-64 numbers them.
fn errno_name(n: i64) -> String {
    #[rustfmt::skip]
    const NAMES: &[&str] = &[
        "", "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO", "ENXIO", "E2BIG", "ENOEXEC", "EBADF",
        "ECHILD", "EAGAIN", "ENOMEM", "EACCES", "EFAULT", "ENOTBLK", "EBUSY", "EEXIST", "EXDEV",
        "ENODEV", "ENOTDIR", "EISDIR", "EINVAL", "ENFILE", "EMFILE", "ENOTTY", "ETXTBSY", "EFBIG",
        "ENOSPC", "ESPIPE", "EROFS", "EMLINK", "EPIPE", "EDOM", "ERANGE", "EDEADLK", "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY", "ELOOP", "", "ENOMSG", "EIDRM", "ECHRNG", "EL2NSYNC", "EL3HLT", "EL3RST", "ELNRNG", "EUNATCH", "ENOCSI", "EL2HLT", "EBADE", "EBADR", "EXFULL", "ENOANO", "EBADRQC", "EBADSLT", "", "EBFONT", "ENOSTR", "ENODATA", "ETIME", "ENOSR", "ENONET", "ENOPKG", "EREMOTE", "ENOLINK", "EADV", "ESRMNT", "ECOMM", "EPROTO", "EMULTIHOP", "EDOTDOT", "EBADMSG", "EOVERFLOW", "ENOTUNIQ", "EBADFD", "EREMCHG", "ELIBACC", "ELIBBAD", "ELIBSCN", "ELIBMAX", "ELIBEXEC", "EILSEQ", "ERESTART", "ESTRPIPE", "EUSERS", "ENOTSOCK", "EDESTADDRREQ", "EMSGSIZE", "EPROTOTYPE", "ENOPROTOOPT", "EPROTONOSUPPORT", "ESOCKTNOSUPPORT", "EOPNOTSUPP", "EPFNOSUPPORT", "EAFNOSUPPORT", "EADDRINUSE", "EADDRNOTAVAIL", "ENETDOWN", "ENETUNREACH", "ENETRESET", "ECONNABORTED", "ECONNRESET", "ENOBUFS", "EISCONN", "ENOTCONN", "ESHUTDOWN", "ETOOMANYREFS", "ETIMEDOUT", "ECONNREFUSED", "EHOSTDOWN", "EHOSTUNREACH", "EALREADY", "EINPROGRESS", "ESTALE", "EUCLEAN", "ENOTNAM", "ENAVAIL", "EISNAM", "EREMOTEIO", "EDQUOT", "ENOMEDIUM", "EMEDIUMTYPE", "ECANCELED", "ENOKEY", "EKEYEXPIRED", "EKEYREVOKED", "EKEYREJECTED", "EOWNERDEAD", "ENOTRECOVERABLE",
    ];
    let i = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    NAMES.get(i).copied().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_functions_follow_stap() {
        assert_eq!(substr(b"hello", 1, 3), b"ell");
        assert_eq!(substr(b"hello", 4, 10), b"o");
        assert_eq!(substr(b"hello", 9, 1), b"");
        assert_eq!(substr(b"hello", -1, 1), b"");
        assert_eq!(strtol(b"  -42xyz", 10), -42);
        assert_eq!(strtol(b"0x1f", 16), 31);
        assert_eq!(strtol(b"0x1f", 0), 31);
        assert_eq!(strtol(b"017", 0), 15);
        assert_eq!(replace(b"a-b-c", b"-", b"+="), b"a+=b+=c");
        assert_eq!(text_strn(b"a\n\x01", usize::MAX, false), b"a\\n\\001");
        assert_eq!(text_strn(b"hello world", 8, true), b"\"hel\"...");
        assert_eq!(text_strn(b"hello world", 11, true), b"\"hello \"...");
        assert_eq!(text_strn(b"hi", 10, true), b"\"hi\"");
        assert_eq!(text_strn(b"hello world", 5, false), b"hello");
        assert_eq!(errno_name(2), "ENOENT");
        assert_eq!(errno_name(-2), "ENOENT");
        assert_eq!(errno_name(9999), "");
        assert_eq!(errno_name(41), "");
        assert_eq!(errno_name(-111), "ECONNREFUSED");
        assert_eq!(errno_name(131), "ENOTRECOVERABLE");
    }

    #[test]
    fn cmdline_args_walks_the_argument_area_as_stap_does() {
        let area = b"sh\0-c\0\0echo hi\0";
        assert_eq!(cmdline_args(area, 0, -1, b" ", 511), b"sh -c \"\" echo hi");
        assert_eq!(cmdline_args(area, 1, 1, b"", 511), b"-c");
        assert_eq!(cmdline_args(area, 3, -1, b"|", 511), b"echo hi");
        assert_eq!(cmdline_args(area, 1, 2, b",", 511), b"-c,\"\"");
        // Past the last argument, and m below n: nothing.
        assert_eq!(cmdline_args(area, 4, 4, b"", 511), b"");
        assert_eq!(cmdline_args(area, 2, 1, b" ", 511), b"");
        // The first argument shown is shown as it is, even when empty.
        assert_eq!(cmdline_args(area, 2, 2, b"", 511), b"");
        // An argument cut to MAXSTRINGLEN, and the next one after it.
        assert_eq!(cmdline_args(b"abcdef\0x\0", 0, -1, b" ", 4), b"abcd x");
        assert_eq!(cmdline_args(b"", 0, -1, b" ", 511), b"");
    }

    #[test]
    fn spans_stop_where_strspn_and_strcspn_do() {
        assert_eq!(span_at(b",,a,b", 0, b",", true), 2);
        assert_eq!(span_at(b",,a,b", 2, b",", false), 3);
        assert_eq!(span_at(b",,a,b", 4, b",", false), 5);
        assert_eq!(span_at(b"abc", 9, b",", true), 3);
        assert_eq!(span_at(b"abc", -1, b"", true), 0);
        assert_eq!(span_at(b"abc", 1, b"", false), 3);
    }

    #[test]
    fn env_var_finds_the_named_entry() {
        let area = b"HOME=/root\0X=a=b\0EMPTY=\0XY=no\0";
        assert_eq!(env_var(area, b"X", 511), b"a=b");
        assert_eq!(env_var(area, b"HOME", 511), b"/root");
        assert_eq!(env_var(area, b"EMPTY", 511), b"");
        assert_eq!(env_var(area, b"XY", 511), b"no");
        assert_eq!(env_var(area, b"H", 511), b"");
        assert_eq!(env_var(area, b"", 511), b"");
        // The value is cut to MAXSTRINGLEN, not the entry.
        assert_eq!(env_var(area, b"HOME", 3), b"/ro");
    }
}
