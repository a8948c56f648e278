//! `probefunc()` in a sampling probe (`timer.profile`, `perf.*`): the function
//! the sample interrupted, which stap names with `symname(addr())` or, in
//! user mode, `usymname(uaddr())`. The kernel cannot name it, so the handler
//! writes a *symbol token* — a short string that carries the sampled pc (and
//! the process, for a user pc) — and user space replaces each token by its
//! name wherever a string reaches it: print records, map keys and values.
//!
//! Unlike a deferred string (see `stack.rs`) a token is an ordinary string to
//! the kernel, so it can be a map key: `p[probefunc()] <<< 1`. Two pcs of one
//! function are two keys there; user space merges the aggregates of keys that
//! name the same function when it reads the map. Its bytes hold no NUL:
//! `\x01`, `k` or `u`, then lowercase hex digits — for `k` the 16 of the
//! kernel pc, for `u` the 8 of the pid then the 16 of the user pc.
//!
//! A kernel pc is first rounded down to the start of its symbol, by a
//! binary search over the kernel's sorted symbol addresses (the `functions`
//! map, which the runtime fills): all the samples of one kernel function are
//! one key in the kernel's map, so a system-wide profile keeps as many
//! entries as functions, not as sampled addresses, as stap's would.

use super::{CodegenError, Gen};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, Size, helper};
use crate::backend::bpf::layout::FUNCTION_SLOTS;
use crate::builtins::Builtin;
use crate::mir::{Body, Inst, Reg};
use rstap_grammar::Span;

/// The byte a token starts with.
pub const MARK: u8 = 0x01;
/// A token's bytes with its NUL, at most (a user pc's).
pub const TOKEN_BYTES: u32 = 2 + 8 + 16 + 1;

/// Where x86-64's `struct pt_regs` (a perf event program's context starts
/// with the interrupted task's) keeps the pc and the code segment.
const PT_REGS_IP: i16 = 128;
const PT_REGS_CS: i16 = 136;

/// What a token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    Kernel { pc: u64 },
    User { pid: u32, pc: u64 },
}

impl Token {
    /// The token's text.
    pub fn encode(self) -> Vec<u8> {
        match self {
            Token::Kernel { pc } => format!("\x01k{pc:016x}").into_bytes(),
            Token::User { pid, pc } => format!("\x01u{pid:08x}{pc:016x}").into_bytes(),
        }
    }

    /// The token at the start of `s` and its length, if one is there.
    pub fn decode(s: &[u8]) -> Option<(Token, usize)> {
        let hex = |from: usize, n: usize| {
            let digits = s.get(from..from + n)?;
            if !digits
                .iter()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return None;
            }
            u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
        };
        match s {
            [MARK, b'k', ..] => Some((Token::Kernel { pc: hex(2, 16)? }, 18)),
            [MARK, b'u', ..] => {
                let pid = u32::try_from(hex(2, 8)?).ok()?;
                Some((
                    Token::User {
                        pid,
                        pc: hex(10, 16)?,
                    },
                    26,
                ))
            }
            _ => None,
        }
    }
}

/// Refuses what the kernel would get wrong with a token in `body`: a
/// comparison, a regular expression or a string built-in of it would see the
/// token's bytes, not the function's name. Tokens are moved, concatenated,
/// printed and stored (as array keys or values); user space names them there.
pub(super) fn check_tokens(body: &Body) -> Result<(), CodegenError> {
    let mut token: Vec<Option<Span>> = vec![None; body.regs.len()];
    let insts = || body.blocks.iter().flat_map(|b| &b.insts);
    loop {
        let mut changed = false;
        for inst in insts() {
            let (dst, at) = match inst {
                Inst::Builtin {
                    dst: Some(dst),
                    func: Builtin::Probefunc,
                    at,
                    ..
                } => (*dst, Some(*at)),
                Inst::Move { dst, src } => (*dst, token[src.index()]),
                Inst::Concat { dst, a, b } => (*dst, token[a.index()].or(token[b.index()])),
                _ => continue,
            };
            if at.is_some() && token[dst.index()].is_none() {
                token[dst.index()] = at;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    for inst in insts() {
        let used = match inst {
            Inst::StrCompare { a, b, .. } => vec![*a, *b],
            Inst::Regex { src, .. } => vec![*src],
            Inst::Builtin { func, args, .. } if *func != Builtin::Probefunc => args.clone(),
            _ => continue,
        };
        if let Some(at) = used.iter().find_map(|r| token[r.index()]) {
            return Err(CodegenError::new(
                "in a sampling probe, probefunc() can only be printed or stored (an array key, a value): the kernel records the address and rstap names it after the event"
                    .to_string(),
                Some(at),
            ));
        }
    }
    Ok(())
}

impl Gen<'_> {
    /// String register `d` = the token of the sampled pc.
    pub(super) fn sampled_function(&mut self, d: Reg) {
        self.zero_from(d, 0);
        let (base, off) = self.base(self.region_of(d));
        self.emit(Insn::store_imm(Size::B, base, off, i32::from(MARK)));
        // The code segment's privilege level is 3 in user mode.
        self.emit(Insn::load(Size::DW, 0, 6, PT_REGS_CS));
        self.emit(Insn::alu_imm(Alu::And, 0, 3));
        let kernel = self.forward(Insn::jump_imm(Jmp::Jne, 0, 3, 0));
        self.emit(Insn::store_imm(Size::B, base, off + 1, i32::from(b'u')));
        self.emit(Insn::call(helper::GET_CURRENT_PID_TGID));
        self.emit(Insn::alu_imm(Alu::Rsh, 0, 32));
        self.hex_digits(0, 8, base, off + 2);
        self.emit(Insn::load(Size::DW, 2, 6, PT_REGS_IP));
        self.hex_digits(2, 16, base, off + 10);
        let done = self.forward(Insn::jump(0));
        self.land(kernel);
        self.emit(Insn::store_imm(Size::B, base, off + 1, i32::from(b'k')));
        self.emit(Insn::load(Size::DW, 2, 6, PT_REGS_IP));
        self.symbol_start(2);
        self.hex_digits(2, 16, base, off + 2);
        self.land(done);
    }

    /// Rounds kernel address `r` (not r3-r5) down to the start of its
    /// symbol: the greatest entry of the `functions` table not above it,
    /// found without a branch in as many steps as the table's size has bits
    /// (a branch per step would be a path per sample to the verifier). Entry
    /// 0 is 0 and never compared: an address below every symbol (or a table
    /// the runtime could not fill) keeps its value.
    fn symbol_start(&mut self, r: u8) {
        let map = super::functions_id(self.shared.prog.globals.len());
        let last_slot = i32::try_from((FUNCTION_SLOTS - 1) * 8).unwrap_or(i32::MAX);
        self.emit2(Insn::ld_map_value(3, map, 0));
        self.emit(Insn::mov_imm(4, 0));
        for bit in (0..FUNCTION_SLOTS.trailing_zeros()).rev() {
            let step = 1i32 << bit;
            // r5 = table[(r4 + step)]
            self.emit(Insn::mov_reg(5, 4));
            self.emit(Insn::alu_imm(Alu::Add, 5, step));
            self.emit(Insn::alu_imm(Alu::Lsh, 5, 3));
            self.emit(Insn::alu_imm(Alu::And, 5, last_slot));
            self.emit(Insn::alu_reg(Alu::Add, 5, 3));
            self.emit(Insn::load(Size::DW, 5, 5, 0));
            // Kernel addresses lie within 2^63 of each other, as does the
            // padding (u64::MAX) from them: entry - r - 1 is negative exactly
            // when the entry is not above r, and then r4 += step.
            self.emit(Insn::alu_reg(Alu::Sub, 5, r));
            self.emit(Insn::alu_imm(Alu::Add, 5, -1));
            self.emit(Insn::alu_imm(Alu::Rsh, 5, 63));
            self.emit(Insn::alu_imm(Alu::Lsh, 5, i32::try_from(bit).unwrap_or(0)));
            self.emit(Insn::alu_reg(Alu::Add, 4, 5));
        }
        self.emit(Insn::alu_imm(Alu::Lsh, 4, 3));
        self.emit(Insn::alu_imm(Alu::And, 4, last_slot));
        self.emit(Insn::alu_reg(Alu::Add, 4, 3));
        self.emit(Insn::load(Size::DW, 4, 4, 0));
        self.emit(Insn::jump_imm(Jmp::Jeq, 4, 0, 1));
        self.emit(Insn::mov_reg(r, 4));
    }

    /// The low `n` hex digits of register `src` (not r1), most significant
    /// first, as bytes at `base` + `off`.
    fn hex_digits(&mut self, src: u8, n: i16, base: u8, off: i16) {
        for i in 0..n {
            self.emit(Insn::mov_reg(1, src));
            let shift = 4 * i32::from(n - 1 - i);
            if shift > 0 {
                self.emit(Insn::alu_imm(Alu::Rsh, 1, shift));
            }
            self.emit(Insn::alu_imm(Alu::And, 1, 15));
            self.emit(Insn::alu_imm(Alu::Add, 1, i32::from(b'0')));
            self.emit(Insn::jump_imm(Jmp::Jle, 1, i32::from(b'9'), 1));
            self.emit(Insn::alu_imm(Alu::Add, 1, i32::from(b'a' - b'9' - 1)));
            self.emit(Insn::store(Size::B, base, off + i, 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_read_back_and_hold_no_nul() {
        for t in [
            Token::Kernel {
                pc: 0xffffffff811b5e42,
            },
            Token::User {
                pid: 4242,
                pc: 0x55d0c0de1234,
            },
        ] {
            let text = t.encode();
            assert!(!text.contains(&0) && text.len() < TOKEN_BYTES as usize);
            assert_eq!(Token::decode(&text), Some((t, text.len())));
        }
        assert_eq!(Token::decode(b"\x01k0123"), None, "cut short");
        assert_eq!(Token::decode(b"\x01kFFFFFFFF811B5E42"), None, "not ours");
        assert_eq!(Token::decode(b"vfs_read"), None);
    }
}
