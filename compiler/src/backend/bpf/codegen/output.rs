//! Records to the output ring: print calls and runtime errors.

use super::{ERROR_RECORD, ErrorSite, Gen, STACK, output_id};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, Size, helper};
use crate::mir::{self, Reg};
use rstap_grammar::Span;

impl Gen<'_> {
    /// Reports runtime error `msg` through the output ring and ends the handler.
    pub(super) fn raise(&mut self, msg: &str, at: Span) {
        let site = i64::try_from(self.errors.len()).unwrap_or(0) + ERROR_RECORD;
        self.errors.push(ErrorSite {
            msg: msg.to_string(),
            at,
        });
        let output = output_id(self.prog.globals.len());
        self.emit2(Insn::ld_map(1, output));
        self.emit(Insn::mov_imm(2, 8));
        self.emit(Insn::mov_imm(3, 0));
        self.emit(Insn::call(helper::RINGBUF_RESERVE));
        // Past the record: ld_imm64 (two slots), store, two moves and the call.
        self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 6));
        self.emit2(Insn::ld_imm64(1, site as u64));
        self.emit(Insn::store(Size::DW, 0, 0, 1));
        self.emit(Insn::mov_reg(1, 0));
        self.emit(Insn::mov_imm(2, 0));
        self.emit(Insn::call(helper::RINGBUF_SUBMIT));
        self.emit(Insn::mov_imm(0, 0));
        self.emit(Insn::exit());
    }

    /// A print record into the output ring: the site's index, then each
    /// argument as an 8-byte word. No room counts as a lost record.
    pub(super) fn print(&mut self, spec: &mir::PrintSpec, args: &[Reg]) {
        let site = i32::try_from(self.prints.len()).unwrap_or(i32::MAX);
        self.prints.push(spec.clone());
        let output = output_id(self.prog.globals.len());
        let size = 8 + 8 * i32::try_from(args.len()).unwrap_or(0);
        self.emit2(Insn::ld_map(1, output));
        self.emit(Insn::mov_imm(2, size));
        self.emit(Insn::mov_imm(3, 0));
        self.emit(Insn::call(helper::RINGBUF_RESERVE));
        let lost_at = self.insns.len();
        self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 0));
        let start = self.insns.len();
        self.emit(Insn::store_imm(Size::DW, 0, 0, site));
        for (i, a) in args.iter().enumerate() {
            self.load(1, *a);
            let off = 8 + 8 * i16::try_from(i).unwrap_or(0);
            self.emit(Insn::store(Size::DW, 0, off, 1));
        }
        self.emit(Insn::mov_reg(1, 0));
        self.emit(Insn::mov_imm(2, 0));
        self.emit(Insn::call(helper::RINGBUF_SUBMIT));
        let done_at = self.insns.len();
        self.emit(Insn::jump(0));
        self.insns[lost_at].off = i16::try_from(self.insns.len() - start).unwrap_or(i16::MAX);
        // Count the record the ring had no room for.
        let key = -i16::try_from(STACK).unwrap_or(512) + 32;
        self.emit(Insn::store_imm(Size::W, 10, key, 0));
        self.emit2(Insn::ld_map(1, output + 1));
        self.emit(Insn::mov_reg(2, 10));
        self.emit(Insn::alu_imm(Alu::Add, 2, i32::from(key)));
        self.emit(Insn::call(helper::MAP_LOOKUP_ELEM));
        self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 3));
        self.emit(Insn::load(Size::DW, 1, 0, 0));
        self.emit(Insn::alu_imm(Alu::Add, 1, 1));
        self.emit(Insn::store(Size::DW, 0, 0, 1));
        self.insns[done_at].off = i16::try_from(self.insns.len() - done_at - 1).unwrap_or(i16::MAX);
    }
}
