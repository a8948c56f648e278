//! `<<<` into per-CPU aggregates: count, sum, min, max and histogram buckets.

use super::{CodegenError, Gen, STACK};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, Size, helper};
use crate::backend::bpf::layout::{StatLayout, Storage};
use crate::mir::Reg;

impl Gen<'_> {
    pub(super) fn agg_add(
        &mut self,
        g: usize,
        keys: &[Reg],
        value: Reg,
    ) -> Result<(), CodegenError> {
        let map = self.map(g)?;
        let layout = self.maps[g]
            .as_ref()
            .and_then(|m| m.stat)
            .unwrap_or(StatLayout { buckets: 0 });
        let storage = self.maps[g].as_ref().map(|m| m.storage);
        let key = self.key(g, keys)?;
        if storage == Some(Storage::StatsArray) {
            // Create the element (zeroed) unless it exists.
            let fresh = -i16::try_from(STACK).unwrap_or(512);
            if layout.size() > 32 {
                return self.unsupported("an aggregate with a histogram", None);
            }
            for w in 0..layout.size() / 8 {
                let off = fresh + 8 * i16::try_from(w).unwrap_or(0);
                self.emit(Insn::store_imm(Size::DW, 10, off, 0));
            }
            self.emit2(Insn::ld_map(1, map));
            self.ptr(2, key);
            self.emit(Insn::mov_reg(3, 10));
            self.emit(Insn::alu_imm(Alu::Add, 3, i32::from(fresh)));
            // BPF_NOEXIST: an existing element keeps its counts.
            self.emit(Insn::mov_imm(4, 1));
            self.emit(Insn::call(helper::MAP_UPDATE_ELEM));
        }
        self.emit2(Insn::ld_map(1, map));
        self.ptr(2, key);
        self.emit(Insn::call(helper::MAP_LOOKUP_ELEM));
        let skip_at = self.insns.len();
        self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 0));
        let start = self.insns.len();
        self.load(1, value);
        // The first value sets min and max.
        self.emit(Insn::load(Size::DW, 2, 0, StatLayout::COUNT));
        self.emit(Insn::jump_imm(Jmp::Jne, 2, 0, 2));
        self.emit(Insn::store(Size::DW, 0, StatLayout::MIN, 1));
        self.emit(Insn::store(Size::DW, 0, StatLayout::MAX, 1));
        self.emit(Insn::alu_imm(Alu::Add, 2, 1));
        self.emit(Insn::store(Size::DW, 0, StatLayout::COUNT, 2));
        self.emit(Insn::load(Size::DW, 2, 0, StatLayout::SUM));
        self.emit(Insn::alu_reg(Alu::Add, 2, 1));
        self.emit(Insn::store(Size::DW, 0, StatLayout::SUM, 2));
        self.emit(Insn::load(Size::DW, 2, 0, StatLayout::MIN));
        self.emit(Insn::jump_reg(Jmp::Jsge, 1, 2, 1));
        self.emit(Insn::store(Size::DW, 0, StatLayout::MIN, 1));
        self.emit(Insn::load(Size::DW, 2, 0, StatLayout::MAX));
        self.emit(Insn::jump_reg(Jmp::Jsle, 1, 2, 1));
        self.emit(Insn::store(Size::DW, 0, StatLayout::MAX, 1));
        if layout.buckets > 0 {
            self.log_bucket();
        }
        let len = self.insns.len() - start;
        self.insns[skip_at].off = i16::try_from(len).unwrap_or(i16::MAX);
        Ok(())
    }

    /// With the value in r1 and the aggregate at r0: one more in its log
    /// bucket, `64 ± bit length of |v|`.
    pub(super) fn log_bucket(&mut self) {
        // r3 = |v| (i64::MIN stays 2^63 as an unsigned number), r4 = its bit length.
        self.emit(Insn::mov_reg(3, 1));
        self.emit(Insn::jump_imm(Jmp::Jsge, 1, 0, 1));
        self.emit(Insn::alu_imm(Alu::Neg, 3, 0));
        self.emit(Insn::mov_imm(4, 0));
        for k in [32, 16, 8, 4, 2, 1] {
            self.emit(Insn::mov_reg(5, 3));
            self.emit(Insn::alu_imm(Alu::Rsh, 5, k));
            self.emit(Insn::jump_imm(Jmp::Jeq, 5, 0, 2));
            self.emit(Insn::alu_imm(Alu::Add, 4, k));
            self.emit(Insn::mov_reg(3, 5));
        }
        self.emit(Insn::jump_imm(Jmp::Jeq, 3, 0, 1));
        self.emit(Insn::alu_imm(Alu::Add, 4, 1));
        // Negative values count down from bucket 64, the rest up (at most 127).
        self.emit(Insn::jump_imm(Jmp::Jsge, 1, 0, 4));
        self.emit(Insn::mov_imm(5, 64));
        self.emit(Insn::alu_reg(Alu::Sub, 5, 4));
        self.emit(Insn::mov_reg(4, 5));
        self.emit(Insn::jump(3));
        self.emit(Insn::jump_imm(Jmp::Jle, 4, 63, 1));
        self.emit(Insn::mov_imm(4, 63));
        self.emit(Insn::alu_imm(Alu::Add, 4, 64));
        self.emit(Insn::jump_imm(Jmp::Jle, 4, 127, 1));
        self.emit(Insn::mov_imm(4, 127));
        self.emit(Insn::alu_imm(Alu::Lsh, 4, 3));
        self.emit(Insn::mov_reg(5, 0));
        self.emit(Insn::alu_reg(Alu::Add, 5, 4));
        self.emit(Insn::load(Size::DW, 2, 5, StatLayout::BUCKETS));
        self.emit(Insn::alu_imm(Alu::Add, 2, 1));
        self.emit(Insn::store(Size::DW, 5, StatLayout::BUCKETS, 2));
    }
}
