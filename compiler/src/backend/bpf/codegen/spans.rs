//! `_strspn_at()` and `_strcspn_at()`, what `tokenize()` is built on: from
//! an index, the bytes of a string that are (or are not) in a set. A
//! `bpf_loop` callback looks at one byte per step (see
//! [`Gen::loop_callback`]), so it runs on any kernel with BPF since 5.17,
//! where a script loop would need `may_goto` (6.9).

use super::{Gen, Ptr};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, Size};
use crate::mir::Reg;

impl Gen<'_> {
    /// `dst` = the first index from `at` (0 when negative) whose byte of
    /// `str` is not in `set` (`inside`) or is in it, else the string's
    /// length. The index walks in the value area's first word.
    pub(super) fn span_at(&mut self, dst: Reg, args: &[Reg], inside: bool) {
        let (s, at, set) = (args[0], args[1], args[2]);
        let room = 8 * self.words(s);
        let index = Ptr::Scratch(self.value_area);
        let (ib, io) = self.base(index);
        self.load(1, at);
        self.emit(Insn::jump_imm(Jmp::Jsge, 1, 0, 1));
        self.emit(Insn::mov_imm(1, 0));
        self.emit(Insn::store(Size::DW, ib, io, 1));
        let text = self.region_of(s);
        let set_bytes = 8 * self.words(set);
        let set_at = self.region_of(set);
        self.loop_callback(i32::try_from(room).unwrap_or(512), |g, stop| {
            // r1 = the index, r3 = its byte; the string's end stops.
            g.emit(Insn::load(Size::DW, 1, ib, io));
            stop.push(g.forward(Insn::jump_imm(
                Jmp::Jge,
                1,
                i32::try_from(room).unwrap_or(0),
                0,
            )));
            g.ptr(2, text);
            g.emit(Insn::alu_reg(Alu::Add, 2, 1));
            g.emit(Insn::load(Size::B, 3, 2, 0));
            stop.push(g.forward(Insn::jump_imm(Jmp::Jeq, 3, 0, 0)));
            // In the set? Each of its bytes until its NUL.
            let mut found = Vec::new();
            let mut absent = Vec::new();
            for j in 0..set_bytes {
                let (sb, so) = g.base(set_at.plus(j));
                g.emit(Insn::load(Size::B, 4, sb, so));
                absent.push(g.forward(Insn::jump_imm(Jmp::Jeq, 4, 0, 0)));
                found.push(g.forward(Insn::jump_reg(Jmp::Jeq, 4, 3, 0)));
            }
            // Not in the set (its NUL reached): strspn's end, or on.
            for a in absent {
                g.land(a);
            }
            let mut on = Vec::new();
            if inside {
                stop.push(g.forward(Insn::jump(0)));
            } else {
                on.push(g.forward(Insn::jump(0)));
            }
            for f in found {
                g.land(f);
            }
            if !inside {
                stop.push(g.forward(Insn::jump(0)));
            }
            for o in on {
                g.land(o);
            }
            g.emit(Insn::alu_imm(Alu::Add, 1, 1));
            g.emit(Insn::store(Size::DW, ib, io, 1));
        });
        self.emit(Insn::load(Size::DW, 1, ib, io));
        self.store(dst, 1);
    }
}
