//! Functions implemented by rstap itself rather than in the tapset language: what
//! a script can call that no script could write (the current task's pid, the
//! clock, reading memory, stopping the session). Each has a fixed signature with
//! stap's parameter names, so `-p2` lists it the way stap lists its tapset.

use crate::hir::Type;

macro_rules! builtins {
    ($($variant:ident $name:literal ($($param:ident : $pty:ident),*) -> $ret:ident $(, $flag:ident)*;)*) => {
        /// A built-in function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Builtin {
            $($variant,)*
        }

        const TABLE: &[Signature] = &[
            $(Signature {
                builtin: Builtin::$variant,
                name: $name,
                params: &[$((stringify!($param), Type::$pty)),*],
                ret: Type::$ret,
                stable: builtins!(@stable $($flag)*),
            },)*
        ];
    };
    (@stable stable) => { true };
    (@stable) => { false };
}

/// A built-in's signature.
#[derive(Debug)]
pub struct Signature {
    pub builtin: Builtin,
    pub name: &'static str,
    pub params: &'static [(&'static str, Type)],
    /// `Unknown` for a function that returns nothing.
    pub ret: Type,
    /// The value cannot change during one handler run, so a handler may compute it
    /// once (stap lists such cached values among a probe's locals).
    pub stable: bool,
}

builtins! {
    Exit "exit" () -> Unknown;
    Error "error" (msg: String) -> Unknown;
    Warn "warn" (msg: String) -> Unknown;
    System "system" (cmd: String) -> Unknown;
    Log "log" (msg: String) -> Unknown;
    Abort "abort" () -> Unknown;
    Execname "execname" () -> String, stable;
    Pexecname "pexecname" () -> String, stable;
    Pid "pid" () -> Long;
    Tid "tid" () -> Long;
    Ppid "ppid" () -> Long, stable;
    Pgrp "pgrp" () -> Long, stable;
    Sid "sid" () -> Long, stable;
    Uid "uid" () -> Long, stable;
    Gid "gid" () -> Long, stable;
    Euid "euid" () -> Long, stable;
    Egid "egid" () -> Long, stable;
    Cpu "cpu" () -> Long, stable;
    Target "target" () -> Long;
    StpPid "stp_pid" () -> Long;
    IsReturn "is_return" () -> Long;
    GettimeofdayS "gettimeofday_s" () -> Long;
    GettimeofdayMs "gettimeofday_ms" () -> Long;
    GettimeofdayUs "gettimeofday_us" () -> Long;
    GettimeofdayNs "gettimeofday_ns" () -> Long;
    LocalClockNs "local_clock_ns" () -> Long;
    LocalClockUs "local_clock_us" () -> Long;
    LocalClockMs "local_clock_ms" () -> Long;
    LocalClockS "local_clock_s" () -> Long;
    CpuClockNs "cpu_clock_ns" (cpu: Long) -> Long;
    KtimeGetNs "ktime_get_ns" () -> Long;
    GetCycles "get_cycles" () -> Long;
    Jiffies "jiffies" () -> Long;
    Hz "HZ" () -> Long;
    Randint "randint" (n: Long) -> Long;
    Strlen "strlen" (s: String) -> Long;
    Substr "substr" (str: String, start: Long, length: Long) -> String;
    Stringat "stringat" (str: String, pos: Long) -> Long;
    Isinstr "isinstr" (s1: String, s2: String) -> Long;
    Strpos "strpos" (s1: String, s2: String) -> Long;
    Strtol "strtol" (str: String, base: Long) -> Long;
    StrReplace "str_replace" (prnt_str: String, srch_str: String, rplc_str: String) -> String;
    TextStr "text_str" (input: String) -> String;
    TextStrn "text_strn" (input: String, len: Long, quoted: Long) -> String;
    UserString "user_string" (addr: Long) -> String;
    UserStringOr "user_string" (addr: Long, err_msg: String) -> String;
    UserStringN "user_string_n" (addr: Long, n: Long) -> String;
    UserStringNOr "user_string_n" (addr: Long, n: Long, err_msg: String) -> String;
    KernelString "kernel_string" (addr: Long) -> String;
    KernelStringOr "kernel_string" (addr: Long, err_msg: String) -> String;
    KernelStringN "kernel_string_n" (addr: Long, n: Long) -> String;
    UserLong "user_long_error" (addr: Long) -> Long;
    UserInt "user_int_error" (addr: Long) -> Long;
    UserShort "user_short_error" (addr: Long) -> Long;
    UserChar "user_char_error" (addr: Long) -> Long;
    KernelLong "kernel_long" (addr: Long) -> Long;
    KernelInt "kernel_int" (addr: Long) -> Long;
    KernelShort "kernel_short" (addr: Long) -> Long;
    KernelChar "kernel_char" (addr: Long) -> Long;
    KernelPointer "kernel_pointer" (addr: Long) -> Long;
    TaskCurrent "task_current" () -> Long;
    Pp "pp" () -> String;
    Pn "pn" () -> String;
    Ppfunc "ppfunc" () -> String;
    Probefunc "probefunc" () -> String;
    Probemod "probemod" () -> String;
    PrintBacktrace "print_backtrace" () -> Unknown;
    Backtrace "backtrace" () -> String;
    SprintBacktrace "sprint_backtrace" () -> String;
    PrintUbacktrace "print_ubacktrace" () -> Unknown;
    Ubacktrace "ubacktrace" () -> String;
    SprintUbacktrace "sprint_ubacktrace" () -> String;
    Symname "symname" (addr: Long) -> String;
    Symdata "symdata" (addr: Long) -> String;
    Usymname "usymname" (addr: Long) -> String;
    Umodname "umodname" (addr: Long) -> String;
    Usymdata "usymdata" (addr: Long) -> String;
    ErrnoStr "errno_str" (err: Long) -> String;
    Matched "matched" (n: Long) -> String;
    Ngroups "ngroups" () -> Long;
    UserMode "user_mode" () -> Long;
    NumOnlineCpus "num_online_cpus" () -> Long;
    TzGmtoff "tz_gmtoff" () -> Long;
    TzName "tz_name" () -> String;
    CmdlineArgs "cmdline_args" (n: Long, m: Long, delim: String) -> String;
    EnvVar "env_var" (name: String) -> String;
    StrspnAt "_strspn_at" (str: String, at: Long, set: String) -> Long;
    StrcspnAt "_strcspn_at" (str: String, at: Long, set: String) -> Long;
}

impl Builtin {
    /// `kernel_string*`, `kernel_long` and the other reads of kernel memory.
    pub fn reads_kernel_memory(self) -> bool {
        matches!(
            self,
            Builtin::KernelString
                | Builtin::KernelStringOr
                | Builtin::KernelStringN
                | Builtin::KernelLong
                | Builtin::KernelInt
                | Builtin::KernelShort
                | Builtin::KernelChar
                | Builtin::KernelPointer
        )
    }

    pub fn signature(self) -> &'static Signature {
        // The table lists the variants in declaration order.
        &TABLE[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.signature().name
    }
}

/// The built-in called `name` with `arity` arguments.
pub fn lookup(name: &str, arity: usize) -> Option<&'static Signature> {
    TABLE
        .iter()
        .find(|s| s.name == name && s.params.len() == arity)
}

/// Every built-in's signature, in table order.
pub fn signatures() -> impl Iterator<Item = &'static Signature> {
    TABLE.iter()
}

/// Every built-in's name, for "similar:" suggestions.
pub fn names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|s| s.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_order_matches_the_enum() {
        for (i, sig) in TABLE.iter().enumerate() {
            assert_eq!(sig.builtin as usize, i, "{} is out of order", sig.name);
        }
    }

    #[test]
    fn lookup_respects_arity() {
        assert_eq!(
            lookup("strlen", 1).map(|s| s.builtin),
            Some(Builtin::Strlen)
        );
        assert!(lookup("strlen", 2).is_none());
        assert!(lookup("no_such_function", 0).is_none());
    }
}
