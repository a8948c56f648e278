//! Kernel addresses to symbols, for `symname()`, `symdata()` and the
//! backtraces: the sorted `/proc/kallsyms`, read once on first use, whichever
//! context asks first (a user-context handler, or the drain of a kernel
//! handler's print records, which carry addresses and stacks, never names).
//! Formats follow stap's: an address outside every symbol prints as hex; a
//! symbol's size runs to the next symbol, as the kernel's own `%pS` has it;
//! vmlinux is the module `kernel`.

use crate::engine::value::Value;
use crate::usyms::{UserFound, UserSymbols};
use rstap_compiler::backend::bpf::codegen::sampled::{self, Token};
use rstap_compiler::backend::bpf::codegen::{Deferred, PrintSite};
use std::sync::{Mutex, OnceLock};

#[derive(Debug, Default)]
pub struct Symbols {
    table: OnceLock<Table>,
    user: Mutex<UserSymbols>,
}

/// Address-sorted symbols; empty when kallsyms cannot be read (or shows zeros
/// to an unprivileged reader).
#[derive(Debug, Default)]
struct Table {
    /// Address, name, index into `modules` (vmlinux is 0).
    syms: Vec<(u64, String, u32)>,
    /// The addresses alone, searched: eight bytes an entry instead of forty
    /// keep a lookup's cache misses few (a kernel has ~120,000 symbols).
    addrs: Vec<u64>,
    modules: Vec<String>,
}

/// The symbol an address falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found<'a> {
    pub name: &'a str,
    pub offset: u64,
    pub size: u64,
    pub module: &'a str,
}

impl Symbols {
    /// A table from kallsyms text instead of /proc (tests).
    pub fn from_text(kallsyms: &str) -> Symbols {
        let table = OnceLock::new();
        let _ = table.set(Table::parse(kallsyms));
        Symbols {
            table,
            user: Mutex::default(),
        }
    }

    /// Every kernel symbol's address, in order (aliases repeat one).
    pub fn kernel_addresses(&self) -> &[u64] {
        &self.table.get_or_init(load).addrs
    }

    /// The symbol containing `addr`, if one does.
    pub fn lookup(&self, addr: u64) -> Option<Found<'_>> {
        let t = self.table.get_or_init(load);
        let last = t.addrs.partition_point(|a| *a <= addr).checked_sub(1)?;
        // Of aliases (one address, several names), the first kallsyms lists,
        // as the kernel's own lookup chooses.
        let start = t.addrs[last];
        let first = t.addrs[..last]
            .iter()
            .rposition(|a| *a != start)
            .map_or(0, |i| i + 1);
        let (_, name, module) = &t.syms[first];
        // The last symbol has no known end: past it is no symbol's.
        let end = *t.addrs.get(last + 1)?;
        Some(Found {
            name,
            offset: addr - start,
            size: end - start,
            module: &t.modules[*module as usize],
        })
    }

    /// `symname(addr)`: the name, or `0x...` when no symbol holds `addr`.
    pub fn name(&self, addr: i64) -> Vec<u8> {
        self.shape(Deferred::Symname, None, &[addr as u64])
    }

    /// `symdata(addr)`: `name+0xoff/0xsize [module]`, or `0x...`.
    pub fn data(&self, addr: i64) -> Vec<u8> {
        self.shape(Deferred::Symdata, None, &[addr as u64])
    }

    /// `usymname(addr)` / `usymdata(addr)` in process `pid`.
    pub fn user(&self, how: Deferred, pid: i64, addr: i64) -> Vec<u8> {
        self.shape(how, Some(pid), &[addr as u64])
    }

    /// The text of a deferred string from its record column: the pid for a
    /// user-space one, then an address word, or a stack (a byte count, then
    /// addresses).
    pub fn render(&self, how: Deferred, column: &[u8]) -> Vec<u8> {
        let word = |i: usize| {
            column
                .get(8 * i..8 * i + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes)
        };
        let (pid, first) = if how.is_user() {
            (Some(word(0) as i64), 1)
        } else {
            (None, 0)
        };
        if !how.is_stack() {
            return self.shape(how, pid, &[word(first)]);
        }
        let room = (column.len() / 8).saturating_sub(first + 1);
        let frames = usize::try_from(word(first) as i64 / 8).map_or(0, |n| n.min(room));
        let mut stack: Vec<u64> = (first + 1..=first + frames)
            .map(word)
            .take_while(|&a| a != 0)
            .collect();
        // A user stack at a function's entry repeats its pc where the kernel
        // had the caller already (see the compiler's `get_stack`).
        if how.is_user() && stack.len() > 1 && stack[0] == stack[1] {
            stack.remove(1);
        }
        self.shape(how, pid, &stack)
    }

    /// A stack (or one address) as the function `how` stands for gives it:
    /// kernel addresses, or process `pid`'s.
    pub fn shape(&self, how: Deferred, pid: Option<i64>, addrs: &[u64]) -> Vec<u8> {
        let mut out = String::new();
        for &a in addrs {
            let user = pid.and_then(|pid| self.user_lookup(pid, a));
            let s = match (&user, pid) {
                (Some(u), _) => Some(Found {
                    name: &u.name,
                    offset: u.offset,
                    size: u.size,
                    module: &u.module,
                }),
                (None, Some(_)) => None,
                (None, None) => self.lookup(a),
            };
            let base = |m: &'_ str| m.rsplit('/').next().unwrap_or(m).to_string();
            match (how, s) {
                (Deferred::Symname | Deferred::Usymname, Some(s)) => out += s.name,
                // By the mapping, not a symbol: any address of the object.
                (Deferred::Umodname, _) => {
                    let module = pid.and_then(|pid| self.user_module(pid, a));
                    // stap's text when no object is mapped there.
                    out += module.as_deref().unwrap_or("<unknown>");
                }
                (Deferred::Symdata | Deferred::Usymdata, Some(s)) => {
                    out += &format!("{}+{:#x}/{:#x} [{}]", s.name, s.offset, s.size, s.module);
                }
                (
                    Deferred::Symname | Deferred::Usymname | Deferred::Symdata | Deferred::Usymdata,
                    None,
                ) => out += &format!("{a:#x}"),
                (Deferred::PrintBacktrace | Deferred::PrintUbacktrace, Some(s)) => {
                    out += &format!(
                        " {a:#x} : {}+{:#x}/{:#x} [{}]\n",
                        s.name, s.offset, s.size, s.module
                    );
                }
                (Deferred::PrintBacktrace | Deferred::PrintUbacktrace, None) => {
                    out += &format!(" {a:#x}\n");
                }
                (Deferred::SprintBacktrace | Deferred::SprintUbacktrace, Some(s)) => {
                    out += &format!("{}+{:#x} [{}]\n", s.name, s.offset, base(s.module));
                }
                (Deferred::SprintBacktrace | Deferred::SprintUbacktrace, None) => {
                    out += &format!("{a:#x}\n");
                }
                (Deferred::Backtrace | Deferred::Ubacktrace, _) => out += &format!("{a:#x} "),
            }
        }
        out.into_bytes()
    }

    /// `s` with each symbol token (a sampling probe's `probefunc()`, see
    /// `codegen::sampled`) replaced by the name of the function it carries:
    /// `symname` of a kernel pc, `usymname` of a user one. `None` when `s`
    /// holds no token.
    pub fn detokenize(&self, s: &[u8]) -> Option<Vec<u8>> {
        if !s.contains(&sampled::MARK) {
            return None;
        }
        let mut out = Vec::with_capacity(s.len());
        let mut rest = s;
        let mut found = false;
        while let Some(at) = rest.iter().position(|&b| b == sampled::MARK) {
            out.extend_from_slice(&rest[..at]);
            rest = &rest[at..];
            match Token::decode(rest) {
                Some((token, len)) => {
                    out.extend(match token {
                        Token::Kernel { pc } => self.shape(Deferred::Symname, None, &[pc]),
                        Token::User { pid, pc } => {
                            self.shape(Deferred::Usymname, Some(i64::from(pid)), &[pc])
                        }
                    });
                    rest = &rest[len..];
                    found = true;
                }
                None => {
                    out.push(rest[0]);
                    rest = &rest[1..];
                }
            }
        }
        out.extend_from_slice(rest);
        found.then_some(out)
    }

    fn user_module(&self, pid: i64, addr: u64) -> Option<String> {
        self.user.lock().map_or(None, |mut u| u.module(pid, addr))
    }

    fn user_lookup(&self, pid: i64, addr: u64) -> Option<UserFound> {
        self.user.lock().map_or(None, |mut u| u.lookup(pid, addr))
    }

    /// Replaces each deferred argument of a print record (`rec`, its first
    /// word the site) by its text; a string value is cut to `max_string` - 1
    /// bytes, as stap cuts `backtrace()`, but a print_backtrace is not.
    pub fn fill(&self, site: &PrintSite, rec: &[u8], args: &mut [Value], max_string: usize) {
        let mut off = 8;
        for ((col, how), arg) in site.args.iter().zip(&site.deferred).zip(args) {
            let n = col.bytes() as usize;
            if let Some(how) = how {
                let mut text = self.render(*how, rec.get(off..off + n).unwrap_or(&[]));
                if !matches!(how, Deferred::PrintBacktrace | Deferred::PrintUbacktrace) {
                    text.truncate(max_string.saturating_sub(1));
                }
                *arg = Value::Str(text);
            }
            off += n;
        }
    }
}

fn load() -> Table {
    std::fs::read_to_string("/proc/kallsyms")
        .map(|t| Table::parse(&t))
        .unwrap_or_default()
}

impl Table {
    /// Lines `ADDR TYPE NAME [\t[MODULE]]`.
    fn parse(text: &str) -> Table {
        let mut modules = vec!["kernel".to_string()];
        let mut syms: Vec<(u64, String, u32)> = text
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let addr = u64::from_str_radix(it.next()?, 16).ok()?;
                let _kind = it.next()?;
                let name = it.next()?;
                if addr == 0 {
                    return None;
                }
                let module = match it
                    .next()
                    .and_then(|m| m.strip_prefix('[')?.strip_suffix(']'))
                {
                    None => 0,
                    Some(m) => match modules.iter().position(|k| k == m) {
                        Some(i) => i,
                        None => {
                            modules.push(m.to_string());
                            modules.len() - 1
                        }
                    },
                };
                Some((addr, name.to_string(), u32::try_from(module).unwrap_or(0)))
            })
            .collect();
        // Stable: aliases keep kallsyms' order.
        syms.sort_by_key(|s| s.0);
        let addrs = syms.iter().map(|s| s.0).collect();
        Table {
            syms,
            addrs,
            modules,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KALLSYMS: &str = "ffffffff81000000 T srso_alias_untrain_ret\n\
                            ffffffff81000000 T _stext\n\
                            ffffffff811b5e30 T vfs_read\n\
                            ffffffff811b5fb0 T vfs_write\n\
                            ffffffff81200000 T _etext\n\
                            ffffffffc0001000 t ext4_sync_fs\t[ext4]\n\
                            ffffffffc0001100 t ext4_end\t[ext4]\n";

    #[test]
    fn names_offsets_sizes_and_modules_as_stap_prints_them() {
        let s = Symbols::from_text(KALLSYMS);
        assert_eq!(s.name(0xffffffff811b5e42_u64 as i64), b"vfs_read");
        assert_eq!(
            s.data(0xffffffff811b5e42_u64 as i64),
            b"vfs_read+0x12/0x180 [kernel]"
        );
        assert_eq!(
            s.data(0xffffffffc0001000_u64 as i64),
            b"ext4_sync_fs+0x0/0x100 [ext4]"
        );
        assert_eq!(s.name(0x1234), b"0x1234");
        assert_eq!(
            s.data(0xffffffff81000001_u64 as i64),
            b"srso_alias_untrain_ret+0x1/0x1b5e30 [kernel]",
            "the first of aliases, sized to the next address"
        );
        assert_eq!(s.data(0), b"0x0");
    }

    #[test]
    fn tokens_become_the_names_of_their_functions() {
        let s = Symbols::from_text(KALLSYMS);
        let token = Token::Kernel {
            pc: 0xffffffff811b5e42,
        }
        .encode();
        let mut text = b"in ".to_vec();
        text.extend(&token);
        text.extend(b", \x01 alone, ");
        text.extend(&token);
        assert_eq!(
            s.detokenize(&text).as_deref(),
            Some(&b"in vfs_read, \x01 alone, vfs_read"[..])
        );
        let nowhere = Token::Kernel { pc: 0x42 }.encode();
        assert_eq!(s.detokenize(&nowhere).as_deref(), Some(&b"0x42"[..]));
        assert_eq!(s.detokenize(b"vfs_read"), None);
        assert_eq!(s.detokenize(b"\x01k12"), None, "not a whole token");
    }

    #[test]
    fn stacks_in_the_three_shapes() {
        let s = Symbols::from_text(KALLSYMS);
        let stack = [0xffffffff811b5e42, 0xffffffff811b5fb1, 0x42];
        let text = |how| String::from_utf8_lossy(&s.shape(how, None, &stack)).into_owned();
        assert_eq!(
            text(Deferred::Backtrace),
            "0xffffffff811b5e42 0xffffffff811b5fb1 0x42 "
        );
        assert_eq!(
            text(Deferred::SprintBacktrace),
            "vfs_read+0x12 [kernel]\nvfs_write+0x1 [kernel]\n0x42\n"
        );
        assert_eq!(
            text(Deferred::PrintBacktrace),
            " 0xffffffff811b5e42 : vfs_read+0x12/0x180 [kernel]\n \
             0xffffffff811b5fb1 : vfs_write+0x1/0x4a050 [kernel]\n \
             0x42\n"
        );
        // A record column: the byte count, then the addresses.
        let mut column = 16i64.to_le_bytes().to_vec();
        column.extend(0xffffffff811b5e42_u64.to_le_bytes());
        column.extend(0x42u64.to_le_bytes());
        column.resize(8 * 21, 0);
        assert_eq!(
            s.render(Deferred::Backtrace, &column),
            b"0xffffffff811b5e42 0x42 "
        );
        let failed = (-14i64).to_le_bytes();
        assert_eq!(s.render(Deferred::Backtrace, &failed), b"");
    }
}
