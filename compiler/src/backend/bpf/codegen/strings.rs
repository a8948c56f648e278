//! String registers: regions of 8-byte words in the scratch area, always
//! NUL-padded to their end, so copies move whole words and comparisons compare
//! words. A string is at most its region minus one byte, and MAXSTRINGLEN - 1.

use super::{CodegenError, ErrorMsg, Gen, Ptr};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, Size, helper};
use crate::builtins::Builtin;
use crate::hir::ContextValue;
use crate::mir::{CmpOp, Inst, Reg};
use crate::tracepoint::FieldKind;
use rstap_grammar::Span;

/// Copies longer than this many words go through a helper call.
const INLINE_WORDS: u32 = 8;

impl Gen<'_> {
    /// The words of string register `r`'s region.
    pub(super) fn words(&self, r: Reg) -> u32 {
        self.caps[r.index()].max(1).div_ceil(8)
    }

    /// String register `r`'s region.
    pub(super) fn region_of(&self, r: Reg) -> Ptr {
        Ptr::Scratch(self.region[r.index()])
    }

    /// Zeroes words `from..` of string register `r`'s region.
    pub(super) fn zero_from(&mut self, r: Reg, from: u32) {
        let at = self.region_of(r).plus(8 * from);
        let words = self.words(r).saturating_sub(from);
        self.zero(at, words);
    }

    /// Zeroes `words` words at `at`.
    fn zero(&mut self, at: Ptr, words: u32) {
        for w in 0..words {
            let (base, off) = self.base(at.plus(8 * w));
            self.emit(Insn::store_imm(Size::DW, base, off, 0));
        }
    }

    /// Copies `words` words from `src` to `dst`.
    fn copy_words(&mut self, dst: Ptr, src: Ptr, words: u32) {
        if words > INLINE_WORDS {
            self.ptr(1, dst);
            self.emit(Insn::mov_imm(2, i32::try_from(8 * words).unwrap_or(0)));
            self.ptr(3, src);
            self.emit(Insn::call(helper::PROBE_READ_KERNEL));
            return;
        }
        for w in 0..words {
            let (sb, so) = self.base(src.plus(8 * w));
            let (db, doff) = self.base(dst.plus(8 * w));
            self.emit(Insn::load(Size::DW, 1, sb, so));
            self.emit(Insn::store(Size::DW, db, doff, 1));
        }
    }

    /// Writes string `src` into `bytes` bytes at `dst` (a key column or a map
    /// value), NUL-padded; a longer string is cut to fit with its NUL.
    pub(super) fn copy_str(&mut self, dst: Ptr, src: Reg, bytes: u32) {
        let words = bytes / 8;
        let have = self.words(src).min(words);
        let from = self.region_of(src);
        self.copy_words(dst, from, have);
        self.zero(dst.plus(8 * have), words - have);
        if self.words(src) > words && words > 0 {
            let (base, off) = self.base(dst.plus(bytes - 1));
            self.emit(Insn::store_imm(Size::B, base, off, 0));
        }
    }

    /// String register `dst` = the `bytes` bytes at the map value in `r0`.
    pub(super) fn read_str_from(&mut self, dst: Reg, bytes: u32) {
        let words = (bytes / 8).min(self.words(dst));
        self.ptr(1, self.region_of(dst));
        self.emit(Insn::mov_imm(2, i32::try_from(8 * words).unwrap_or(0)));
        self.emit(Insn::mov_reg(3, 0));
        self.emit(Insn::call(helper::PROBE_READ_KERNEL));
        self.zero_from(dst, words);
        let last = self.region_of(dst).plus(8 * self.words(dst) - 1);
        let (base, off) = self.base(last);
        self.emit(Insn::store_imm(Size::B, base, off, 0));
    }

    /// The map value at `r0` (`bytes` long) = string `src`, NUL-padded.
    pub(super) fn write_str_to(&mut self, src: Reg, bytes: u32) {
        let words = bytes / 8;
        let have = self.words(src).min(words);
        for w in have..words {
            let off = i16::try_from(8 * w).unwrap_or(i16::MAX);
            self.emit(Insn::store_imm(Size::DW, 0, off, 0));
        }
        self.emit(Insn::mov_reg(1, 0));
        self.emit(Insn::mov_imm(2, i32::try_from(8 * have).unwrap_or(0)));
        self.ptr(3, self.region_of(src));
        self.emit(Insn::call(helper::PROBE_READ_KERNEL));
    }

    /// String register `dst` = the string literal `bytes`.
    pub(super) fn literal(&mut self, dst: Reg, bytes: &[u8]) {
        let words = self.words(dst);
        let mut padded = bytes.to_vec();
        // Cut to the region, keeping the NUL.
        padded.truncate(8 * words as usize - 1);
        padded.resize(8 * words as usize, 0);
        for (w, chunk) in padded.chunks(8).enumerate() {
            let (base, off) = self.base(self.region_of(dst).plus(8 * w as u32));
            let lo = i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let hi = i32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            self.emit(Insn::store_imm(Size::W, base, off, lo));
            self.emit(Insn::store_imm(Size::W, base, off + 4, hi));
        }
    }

    /// String instructions, and built-ins that make strings. `true` when
    /// `inst` was one of those.
    pub(super) fn string_inst(&mut self, inst: &Inst) -> Result<bool, CodegenError> {
        match inst {
            Inst::Str { dst, bytes } => self.literal(*dst, bytes),
            Inst::Move { dst, src } if self.is_str(*dst) => {
                let words = self.words(*dst);
                self.copy_str(self.region_of(*dst), *src, 8 * words);
            }
            Inst::StrCompare { dst, op, a, b } => self.compare(*dst, *op, *a, *b),
            Inst::Builtin {
                dst: Some(dst),
                func: Builtin::Strlen,
                args,
                ..
            } => {
                // The helper counts the bytes it copies, with the NUL.
                self.ptr(1, Ptr::Scratch(self.value_area));
                let room = 8 * self.words(args[0]);
                self.emit(Insn::mov_imm(2, i32::try_from(room).unwrap_or(0)));
                self.ptr(3, self.region_of(args[0]));
                self.emit(Insn::call(helper::PROBE_READ_KERNEL_STR));
                self.emit(Insn::alu_imm(Alu::Sub, 0, 1));
                self.store(*dst, 0);
            }
            Inst::Concat { dst, a, b } => self.concat(*dst, *a, *b),
            Inst::Builtin {
                dst,
                func: Builtin::Substr,
                args,
                ..
            } => {
                if let Some(dst) = dst {
                    self.substr(*dst, args[0], args[1], args[2]);
                }
            }
            Inst::Builtin {
                dst,
                func: Builtin::Stringat,
                args,
                at,
            } => self.stringat(*dst, args[0], args[1], *at),
            Inst::Builtin {
                dst,
                func: func @ (Builtin::Isinstr | Builtin::Strpos),
                args,
                at,
            } => {
                if let Some(dst) = dst {
                    let position = *func == Builtin::Strpos;
                    self.search(*dst, args[0], args[1], position, *at)?;
                }
            }
            Inst::Builtin {
                dst: Some(dst),
                func: Builtin::Execname,
                ..
            } => {
                self.zero_from(*dst, 0);
                self.ptr(1, self.region_of(*dst));
                self.emit(Insn::mov_imm(2, 16));
                self.emit(Insn::call(helper::GET_CURRENT_COMM));
            }
            Inst::Builtin {
                dst: Some(dst),
                func,
                args,
                at,
            } if read_string(*func).is_some() => {
                let (user, limit, fallback) = read_string(*func).unwrap_or((false, false, false));
                let limit = if limit { args.get(1).copied() } else { None };
                let fallback = if fallback { args.last().copied() } else { None };
                self.load(3, args[0]);
                self.read_str(*dst, user, limit, fallback, *at);
            }
            Inst::LoadStr {
                dst,
                addr,
                len,
                user,
                at,
            } => {
                self.load(3, *addr);
                let cap = self.caps[dst.index()];
                if *len > 0 && *len < cap {
                    self.constant_limit(*len);
                    self.read_str_n(*dst, *user, *at);
                } else {
                    self.read_str(*dst, *user, None, None, *at);
                }
            }
            Inst::Context {
                dst,
                value: ContextValue::TracepointField(i),
            } if self.is_str(*dst) => {
                let Some(field) = self.format.and_then(|f| f.fields.get(*i)) else {
                    return Ok(false);
                };
                let (kind, size, offset) = (field.kind, field.size, field.offset);
                self.zero_from(*dst, 0);
                self.ptr(1, self.region_of(*dst));
                let offset = i32::try_from(offset).unwrap_or(0);
                if kind == FieldKind::DataLocString {
                    // A u32 in the record: the string's offset from the
                    // record's start in its low 16 bits, its length above.
                    let cap = 8 * self.words(*dst) - 1;
                    self.emit(Insn::mov_imm(2, i32::try_from(cap).unwrap_or(0)));
                    self.emit(Insn::load(
                        Size::W,
                        3,
                        6,
                        i16::try_from(offset).unwrap_or(0),
                    ));
                    self.emit(Insn::alu_imm(Alu::And, 3, 0xffff));
                    self.emit(Insn::alu_reg(Alu::Add, 3, 6));
                    self.emit(Insn::call(helper::PROBE_READ_KERNEL_STR));
                } else {
                    let room = (8 * self.words(*dst)).saturating_sub(1).min(size);
                    self.emit(Insn::mov_imm(2, i32::try_from(room).unwrap_or(0)));
                    self.emit(Insn::mov_reg(3, 6));
                    self.emit(Insn::alu_imm(Alu::Add, 3, offset));
                    self.emit(Insn::call(helper::PROBE_READ_KERNEL));
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// r2 = `len` + 1, the size a read of at most `len` bytes needs.
    fn constant_limit(&mut self, len: u32) {
        self.emit(Insn::mov_imm(2, i32::try_from(len + 1).unwrap_or(i32::MAX)));
    }

    /// `dst` = the string at the address in r3 (user or kernel memory), at most
    /// `limit` bytes when given; a fault is the runtime error stap reports, or
    /// gives `fallback` when there is one.
    fn read_str(
        &mut self,
        dst: Reg,
        user: bool,
        limit: Option<Reg>,
        fallback: Option<Reg>,
        at: Span,
    ) {
        let room = 8 * self.words(dst);
        match limit {
            Some(n) => {
                // r2 = clamp(n + 1, 1, room): the verifier needs the bound.
                self.load(2, n);
                self.emit(Insn::alu_imm(Alu::Add, 2, 1));
                self.emit(Insn::jump_imm(Jmp::Jsge, 2, 1, 1));
                self.emit(Insn::mov_imm(2, 1));
                self.emit(Insn::jump_imm(
                    Jmp::Jsle,
                    2,
                    i32::try_from(room).unwrap_or(0),
                    1,
                ));
                self.emit(Insn::mov_imm(2, i32::try_from(room).unwrap_or(0)));
            }
            None => self.emit(Insn::mov_imm(2, i32::try_from(room).unwrap_or(0))),
        }
        match fallback {
            None => self.read_str_n(dst, user, at),
            Some(err) => {
                self.lend();
                self.emit(Insn::mov_reg(9, 3));
                self.zero_from(dst, 0);
                self.ptr(1, self.region_of(dst));
                self.emit(Insn::mov_reg(3, 9));
                self.emit(Insn::call(str_helper(user)));
                let ok = self.forward(Insn::jump_imm(Jmp::Jsge, 0, 0, 0));
                let words = self.words(dst);
                self.copy_str(self.region_of(dst), err, 8 * words);
                self.land(ok);
                self.give_back();
            }
        }
    }

    /// `dst` = the string at r3, r2 bytes with the NUL (r2 bounded by the
    /// region); a fault raises stap's error.
    fn read_str_n(&mut self, dst: Reg, user: bool, at: Span) {
        self.lend();
        self.emit(Insn::mov_reg(8, 2));
        self.emit(Insn::mov_reg(9, 3));
        self.zero_from(dst, 0);
        self.ptr(1, self.region_of(dst));
        self.emit(Insn::mov_reg(2, 8));
        self.emit(Insn::mov_reg(3, 9));
        self.emit(Insn::call(str_helper(user)));
        let ok = self.forward(Insn::jump_imm(Jmp::Jsge, 0, 0, 0));
        self.emit(Insn::mov_reg(1, 9));
        self.emit(Insn::mov_reg(2, 0));
        self.raise_fault(ErrorMsg::Fault { user, string: true }, at);
        self.land(ok);
        self.give_back();
    }

    /// `dst` = `a op b` with strcmp's meaning: the first differing word,
    /// byte-swapped so its bytes compare in memory order, decides.
    fn compare(&mut self, dst: Reg, op: CmpOp, a: Reg, b: Reg) {
        let words = self.words(a).max(self.words(b));
        let mut differ = Vec::new();
        for w in 0..words {
            for (reg, s) in [(1u8, a), (2u8, b)] {
                if w < self.words(s) {
                    let (base, off) = self.base(self.region_of(s).plus(8 * w));
                    self.emit(Insn::load(Size::DW, reg, base, off));
                } else {
                    self.emit(Insn::mov_imm(reg, 0));
                }
            }
            differ.push(self.forward(Insn::jump_reg(Jmp::Jne, 1, 2, 0)));
        }
        self.emit(Insn::mov_imm(0, 0));
        let equal = self.forward(Insn::jump(0));
        for d in differ {
            self.land(d);
        }
        self.emit(Insn::to_big_endian(1));
        self.emit(Insn::to_big_endian(2));
        self.emit(Insn::mov_imm(0, -1));
        self.emit(Insn::jump_reg(Jmp::Jlt, 1, 2, 1));
        self.emit(Insn::mov_imm(0, 1));
        self.land(equal);
        self.emit(Insn::mov_imm(1, 1));
        self.emit(Insn::jump_imm(super::signed_jump(op), 0, 0, 1));
        self.emit(Insn::mov_imm(1, 0));
        self.store(dst, 1);
    }

    /// `dst` = `a . b`, cut to its region: `a` into the concatenation buffer,
    /// then `b` after its last byte, then the buffer into `dst`.
    fn concat(&mut self, dst: Reg, a: Reg, b: Reg) {
        let buf = Ptr::Scratch(self.concat_area);
        let room = 8 * self.words(dst);
        let cap_a = (8 * self.words(a)).min(room);
        self.zero(buf, room / 8);
        self.ptr(1, buf);
        self.emit(Insn::mov_imm(2, i32::try_from(cap_a).unwrap_or(0)));
        self.ptr(3, self.region_of(a));
        self.emit(Insn::call(helper::PROBE_READ_KERNEL_STR));
        // r8 = strlen(a), bounded for the verifier.
        self.lend();
        self.emit(Insn::mov_reg(8, 0));
        self.emit(Insn::alu_imm(Alu::Sub, 8, 1));
        self.emit(Insn::jump_imm(Jmp::Jsge, 8, 0, 1));
        self.emit(Insn::mov_imm(8, 0));
        let most = i32::try_from(cap_a - 1).unwrap_or(0);
        self.emit(Insn::jump_imm(Jmp::Jsle, 8, most, 1));
        self.emit(Insn::mov_imm(8, most));
        self.ptr(1, buf);
        self.emit(Insn::alu_reg(Alu::Add, 1, 8));
        self.emit(Insn::mov_imm(2, i32::try_from(room).unwrap_or(0)));
        self.emit(Insn::alu_reg(Alu::Sub, 2, 8));
        self.ptr(3, self.region_of(b));
        self.emit(Insn::call(helper::PROBE_READ_KERNEL_STR));
        self.give_back();
        self.copy_words(self.region_of(dst), buf, room / 8);
    }
}

impl Gen<'_> {
    /// `dst` = `substr(s, start, length)` as the user-space engine computes
    /// it: "" for a negative start or length or a start past the end, else
    /// at most `length` bytes from `start`. The bytes after a string's NUL are
    /// NULs too, so a start inside the region but past the string reads "".
    /// The copy goes through the value area, since `dst` may be `s`.
    fn substr(&mut self, dst: Reg, s: Reg, start: Reg, length: Reg) {
        let buf = Ptr::Scratch(self.value_area);
        let room = 8 * self.words(dst);
        let from = 8 * self.words(s);
        self.zero(buf, room / 8);
        self.load(1, start);
        self.load(2, length);
        // Unsigned: a negative start is past the region too.
        let past = self.forward(Insn::jump_imm(Jmp::Jge, 1, imm(from), 0));
        let empty = self.forward(Insn::jump_imm(Jmp::Jsle, 2, 0, 0));
        // r2 = min(length, room - 1) + 1: the read's size with its NUL.
        self.emit(Insn::jump_imm(Jmp::Jsle, 2, imm(room - 1), 1));
        self.emit(Insn::mov_imm(2, imm(room - 1)));
        self.emit(Insn::alu_imm(Alu::Add, 2, 1));
        self.ptr(3, self.region_of(s));
        self.emit(Insn::alu_reg(Alu::Add, 3, 1));
        self.ptr(1, buf);
        self.emit(Insn::call(helper::PROBE_READ_KERNEL_STR));
        self.land(past);
        self.land(empty);
        self.copy_words(self.region_of(dst), buf, room / 8);
    }

    /// `dst` = the byte of `s` at `pos`; a position outside the string is
    /// the runtime error the user-space engine raises. Every byte before the
    /// NUL is non-zero, so the byte read is 0 exactly when `pos` is past the
    /// end.
    fn stringat(&mut self, dst: Option<Reg>, s: Reg, pos: Reg, at: Span) {
        let room = 8 * self.words(s);
        self.load(1, pos);
        let past = self.forward(Insn::jump_imm(Jmp::Jge, 1, imm(room), 0));
        self.ptr(2, self.region_of(s));
        self.emit(Insn::alu_reg(Alu::Add, 2, 1));
        self.emit(Insn::load(Size::B, 0, 2, 0));
        let inside = self.forward(Insn::jump_imm(Jmp::Jne, 0, 0, 0));
        self.land(past);
        self.raise("Position out of bounds", at);
        self.land(inside);
        if let Some(d) = dst {
            self.store(d, 0);
        }
    }

    /// `dst` = where `needle` first occurs in `hay`, or -1 (`position`), or
    /// else whether it does (an empty needle occurs at 0): every start in
    /// `hay` against the needle's bytes, in two loops that start with
    /// `may_goto`. Their indexes live in the value area, so each iteration
    /// reads them back as unknown numbers, bounds them, and the verifier sees
    /// one iteration like the next.
    fn search(
        &mut self,
        dst: Reg,
        hay: Reg,
        needle: Reg,
        position: bool,
        at: Span,
    ) -> Result<(), CodegenError> {
        let (h, n) = (8 * self.words(hay), 8 * self.words(needle));
        if h * n <= UNROLLED_PAIRS {
            self.search_unrolled(dst, hay, needle, position);
            return Ok(());
        }
        if !self.shared.may_goto {
            return Err(CodegenError::new(
                "isinstr() and strpos() (and tokenize(), built on them) on strings this long need, in a kernel-context probe, the may_goto instruction of Linux 6.9 or later, which this kernel lacks; search in an end or timer probe, or print the result (printing runs it in user space)",
                Some(at),
            ));
        }
        let i = self.base(Ptr::Scratch(self.value_area));
        let j = self.base(Ptr::Scratch(self.value_area + 8));
        let mut absent = Vec::new();
        let mut present = Vec::new();
        self.emit(Insn::store_imm(Size::DW, i.0, i.1, 0));
        let outer = self.insns.len();
        absent.push(self.forward(Insn::may_goto(0)));
        self.emit(Insn::store_imm(Size::DW, j.0, j.1, 0));
        let inner = self.insns.len();
        absent.push(self.forward(Insn::may_goto(0)));
        // r4 = needle[j]; its end is a match.
        self.emit(Insn::load(Size::DW, 2, j.0, j.1));
        present.push(self.forward(Insn::jump_imm(Jmp::Jge, 2, imm(n), 0)));
        self.ptr(3, self.region_of(needle));
        self.emit(Insn::alu_reg(Alu::Add, 3, 2));
        self.emit(Insn::load(Size::B, 4, 3, 0));
        present.push(self.forward(Insn::jump_imm(Jmp::Jeq, 4, 0, 0)));
        // r5 = hay[i + j]; the hay's end first means no later start matches.
        self.emit(Insn::load(Size::DW, 1, i.0, i.1));
        absent.push(self.forward(Insn::jump_imm(Jmp::Jge, 1, imm(h), 0)));
        self.emit(Insn::alu_reg(Alu::Add, 1, 2));
        absent.push(self.forward(Insn::jump_imm(Jmp::Jge, 1, imm(h), 0)));
        self.ptr(3, self.region_of(hay));
        self.emit(Insn::alu_reg(Alu::Add, 3, 1));
        self.emit(Insn::load(Size::B, 5, 3, 0));
        absent.push(self.forward(Insn::jump_imm(Jmp::Jeq, 5, 0, 0)));
        let differ = self.forward(Insn::jump_reg(Jmp::Jne, 4, 5, 0));
        self.emit(Insn::alu_imm(Alu::Add, 2, 1));
        self.emit(Insn::store(Size::DW, j.0, j.1, 2));
        self.jump_back(inner);
        // The next start.
        self.land(differ);
        self.emit(Insn::load(Size::DW, 1, i.0, i.1));
        self.emit(Insn::alu_imm(Alu::Add, 1, 1));
        self.emit(Insn::store(Size::DW, i.0, i.1, 1));
        self.jump_back(outer);
        for p in present {
            self.land(p);
        }
        if position {
            self.emit(Insn::load(Size::DW, 0, i.0, i.1));
        } else {
            self.emit(Insn::mov_imm(0, 1));
        }
        let done = self.forward(Insn::jump(0));
        for a in absent {
            self.land(a);
        }
        self.emit(Insn::mov_imm(0, if position { -1 } else { 0 }));
        self.land(done);
        self.store(dst, 0);
        Ok(())
    }

    /// [`Gen::search`] for short strings, with no loop: every start against
    /// every needle byte, each a load at a fixed offset.
    fn search_unrolled(&mut self, dst: Reg, hay: Reg, needle: Reg, position: bool) {
        let (h, n) = (8 * self.words(hay), 8 * self.words(needle));
        let mut absent = Vec::new();
        let mut done = Vec::new();
        for i in 0..h {
            let mut found = Vec::new();
            let mut differ = Vec::new();
            for j in 0..n {
                let (nb, no) = self.base(self.region_of(needle).plus(j));
                self.emit(Insn::load(Size::B, 4, nb, no));
                found.push(self.forward(Insn::jump_imm(Jmp::Jeq, 4, 0, 0)));
                if i + j >= h {
                    absent.push(self.forward(Insn::jump(0)));
                    break;
                }
                let (hb, ho) = self.base(self.region_of(hay).plus(i + j));
                self.emit(Insn::load(Size::B, 5, hb, ho));
                absent.push(self.forward(Insn::jump_imm(Jmp::Jeq, 5, 0, 0)));
                differ.push(self.forward(Insn::jump_reg(Jmp::Jne, 4, 5, 0)));
            }
            // The needle's last byte is its NUL: a start gets here only
            // through one of its jumps.
            let next = self.forward(Insn::jump(0));
            for f in found {
                self.land(f);
            }
            self.emit(Insn::mov_imm(0, if position { imm(i) } else { 1 }));
            done.push(self.forward(Insn::jump(0)));
            self.land(next);
            for d in differ {
                self.land(d);
            }
        }
        for a in absent {
            self.land(a);
        }
        self.emit(Insn::mov_imm(0, if position { -1 } else { 0 }));
        for d in done {
            self.land(d);
        }
        self.store(dst, 0);
    }

    /// An unconditional jump back to instruction `top`.
    fn jump_back(&mut self, top: usize) {
        let off =
            i64::try_from(top).unwrap_or(0) - i64::try_from(self.insns.len()).unwrap_or(0) - 1;
        self.emit(Insn::jump(i16::try_from(off).unwrap_or(i16::MIN)));
    }
}

/// Whether `body` searches a string (a loop that needs `may_goto`).
pub(super) fn searches(body: &crate::mir::Body) -> bool {
    body.blocks.iter().flat_map(|b| &b.insts).any(|i| {
        matches!(
            i,
            Inst::Builtin {
                dst: Some(_),
                func: Builtin::Isinstr | Builtin::Strpos,
                ..
            }
        )
    })
}

/// Searches of at most this many (start, needle byte) pairs are unrolled
/// (`isinstr(execname(), "ssh")`: 16 by 8); longer ones loop.
const UNROLLED_PAIRS: u32 = 128;

/// A byte count as an immediate.
fn imm(bytes: u32) -> i32 {
    i32::try_from(bytes).unwrap_or(i32::MAX)
}

/// Built-ins that read a string from memory: (user memory, takes a length,
/// takes a fallback).
fn read_string(func: Builtin) -> Option<(bool, bool, bool)> {
    Some(match func {
        Builtin::UserString => (true, false, false),
        Builtin::UserStringOr => (true, false, true),
        Builtin::UserStringN => (true, true, false),
        Builtin::UserStringNOr => (true, true, true),
        Builtin::KernelString => (false, false, false),
        Builtin::KernelStringOr => (false, false, true),
        Builtin::KernelStringN => (false, true, false),
        _ => return None,
    })
}

/// The helper that copies a NUL-terminated string from user or kernel memory.
fn str_helper(user: bool) -> i32 {
    if user {
        helper::PROBE_READ_USER_STR
    } else {
        helper::PROBE_READ_KERNEL_STR
    }
}
