//! `<<<` into per-CPU aggregates: this CPU's count, sum, min, max, Welford
//! state and histogram buckets, updated in place (reading them back is in
//! `extract`). New elements of stats arrays, and of long arrays for atomic
//! increments, are created here too.

use super::{CodegenError, Gen, Ptr, zeroes_id};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, Size, helper};
use crate::backend::bpf::layout::{GlobalMap, HistLayout, LinearBuckets, StatLayout, Storage};
use crate::hir::Histogram;
use crate::mir::Reg;
use rstap_grammar::Span;

/// `BPF_NOEXIST`: create an element, keep one that exists.
const NOEXIST: i32 = 1;
/// What `bpf_map_update_elem` answers when a hash map is full.
pub(super) const E2BIG: i32 = -7;
/// Bytes at the bottom of the stack (below a stack key) for a small fresh
/// value or the state of an extraction loop.
pub(super) const FRESH_BYTES: u32 = 32;

impl Gen<'_> {
    /// The layout of global `g`'s map (created on first use).
    pub(super) fn global(&mut self, g: usize) -> Result<(u32, GlobalMap), CodegenError> {
        let map = self.map(g)?;
        match &self.maps[g] {
            Some(m) => Ok((map, m.clone())),
            None => self.unsupported("this global", None),
        }
    }

    /// r0 = the element of `m` (map `map`) under the key packed at `key`,
    /// created zeroed when absent. A full array raises stap's overflow error
    /// (an LRU map makes room instead). Returns jumps to land past the use of
    /// r0, taken when there is no element after all.
    pub(super) fn element(&mut self, map: u32, m: &GlobalMap, key: Ptr, at: Span) -> Vec<usize> {
        let mut skips = Vec::new();
        self.emit_lookup(map, key);
        let found = self.forward(Insn::jump_imm(Jmp::Jne, 0, 0, 0));
        let fresh = self.bottom;
        if m.value_size <= FRESH_BYTES {
            for w in 0..m.value_size.div_ceil(8) {
                let off = fresh + 8 * i16::try_from(w).unwrap_or(0);
                self.emit(Insn::store_imm(Size::DW, 10, off, 0));
            }
            self.emit(Insn::mov_reg(3, 10));
            self.emit(Insn::alu_imm(Alu::Add, 3, i32::from(fresh)));
        } else {
            let zeroes = zeroes_id(self.shared.prog.globals.len());
            self.emit(Insn::store_imm(Size::W, 10, fresh, 0));
            self.emit_lookup(zeroes, Ptr::Stack(fresh));
            skips.push(self.forward(Insn::jump_imm(Jmp::Jeq, 0, 0, 0)));
            self.emit(Insn::mov_reg(3, 0));
        }
        self.emit2(Insn::ld_map(1, map));
        self.ptr(2, key);
        self.emit(Insn::mov_imm(4, NOEXIST));
        self.emit(Insn::call(helper::MAP_UPDATE_ELEM));
        if !m.wrap {
            // -EEXIST (another CPU created it meanwhile) is fine.
            let room = self.forward(Insn::jump_imm(Jmp::Jne, 0, E2BIG, 0));
            self.raise(&m.overflow_message(), at);
            self.land(room);
        }
        self.emit_lookup(map, key);
        skips.push(self.forward(Insn::jump_imm(Jmp::Jeq, 0, 0, 0)));
        self.land(found);
        skips
    }

    /// r0 = `bpf_map_lookup_elem(map, key)`.
    pub(super) fn emit_lookup(&mut self, map: u32, key: Ptr) {
        self.emit2(Insn::ld_map(1, map));
        self.ptr(2, key);
        self.emit(Insn::call(helper::MAP_LOOKUP_ELEM));
    }

    /// `g[keys] <<< value` on this CPU's share.
    pub(super) fn agg_add(
        &mut self,
        g: usize,
        keys: &[Reg],
        value: Reg,
        at: Span,
    ) -> Result<(), CodegenError> {
        let (map, m) = self.global(g)?;
        let layout = m.stat.clone().unwrap_or_default();
        let key = self.key(g, keys)?;
        let skips = if m.storage == Storage::StatsArray {
            self.element(map, &m, key, at)
        } else {
            self.emit_lookup(map, key);
            vec![self.forward(Insn::jump_imm(Jmp::Jeq, 0, 0, 0))]
        };
        self.load(1, value);
        self.emit(Insn::load(Size::DW, 2, 0, StatLayout::COUNT));
        let more = self.forward(Insn::jump_imm(Jmp::Jne, 2, 0, 0));
        // The first value sets everything.
        self.emit(Insn::store_imm(Size::DW, 0, StatLayout::COUNT, 1));
        for off in [StatLayout::SUM, StatLayout::MIN, StatLayout::MAX] {
            self.emit(Insn::store(Size::DW, 0, off, 1));
        }
        if let Some(shift) = layout.variance {
            self.emit(Insn::mov_reg(3, 1));
            self.shift_left(3, shift);
            self.emit(Insn::store(Size::DW, 0, StatLayout::AVG, 3));
            self.emit(Insn::store_imm(Size::DW, 0, StatLayout::M2, 0));
        }
        let hists = self.forward(Insn::jump(0));
        self.land(more);
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
        if let Some(shift) = layout.variance {
            self.welford(shift);
        }
        self.land(hists);
        for h in &layout.hists {
            match h.hist {
                Histogram::Log => self.log_bucket(h),
                Histogram::Linear { start, stop, step } => {
                    self.linear_bucket(h, LinearBuckets::new(start, stop, step));
                }
            }
        }
        for s in skips {
            self.land(s);
        }
        Ok(())
    }

    pub(super) fn shift_left(&mut self, r: u8, shift: u32) {
        if shift > 0 {
            self.emit(Insn::alu_imm(
                Alu::Lsh,
                r,
                i32::try_from(shift).unwrap_or(0),
            ));
        }
    }

    /// With the value in r1, the aggregate at r0 and its count already
    /// incremented (at least 2): stap's Welford step, rounding included
    /// (`runtime/src/stats.rs` `Stat::add`).
    fn welford(&mut self, shift: u32) {
        // r3 = v << shift; r5 = (int)(r3 - avg), stap's delta is a C int.
        self.emit(Insn::mov_reg(3, 1));
        self.shift_left(3, shift);
        self.emit(Insn::load(Size::DW, 4, 0, StatLayout::AVG));
        self.emit(Insn::mov_reg(5, 3));
        self.emit(Insn::alu_reg(Alu::Sub, 5, 4));
        self.emit(Insn::alu_imm(Alu::Lsh, 5, 32));
        self.emit(Insn::alu_imm(Alu::Arsh, 5, 32));
        // avg += delta / count
        self.emit(Insn::load(Size::DW, 2, 0, StatLayout::COUNT));
        self.emit(Insn::mov_reg(4, 5));
        self.emit(Insn::alu_signed(Alu::Div, 4, 2));
        self.emit(Insn::load(Size::DW, 2, 0, StatLayout::AVG));
        self.emit(Insn::alu_reg(Alu::Add, 4, 2));
        self.emit(Insn::store(Size::DW, 0, StatLayout::AVG, 4));
        // m2 += delta * (scaled - avg)
        self.emit(Insn::alu_reg(Alu::Sub, 3, 4));
        self.emit(Insn::alu_reg(Alu::Mul, 3, 5));
        self.emit(Insn::load(Size::DW, 2, 0, StatLayout::M2));
        self.emit(Insn::alu_reg(Alu::Add, 2, 3));
        self.emit(Insn::store(Size::DW, 0, StatLayout::M2, 2));
        // variance = m2 / (count - 1)
        self.emit(Insn::load(Size::DW, 3, 0, StatLayout::COUNT));
        self.emit(Insn::alu_imm(Alu::Add, 3, -1));
        self.emit(Insn::alu_signed(Alu::Div, 2, 3));
        self.emit(Insn::store(Size::DW, 0, StatLayout::VARIANCE, 2));
    }

    /// With the value in r1 and the aggregate at r0: one more in its log
    /// bucket, `64 ± bit length of |v|`.
    fn log_bucket(&mut self, h: &HistLayout) {
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
        self.bump_bucket(h);
    }

    /// With the value in r1 and the aggregate at r0: one more in its linear
    /// bucket, `(v - start) / step + 1` clamped to underflow and overflow.
    fn linear_bucket(&mut self, h: &HistLayout, lin: LinearBuckets) {
        self.emit(Insn::mov_reg(3, 1));
        if lin.start != 0 {
            self.emit2(Insn::ld_imm64(2, lin.start as u64));
            self.emit(Insn::alu_reg(Alu::Sub, 3, 2));
        }
        self.emit(Insn::mov_imm(4, 0));
        let under = self.forward(Insn::jump_imm(Jmp::Jslt, 3, 0, 0));
        self.emit2(Insn::ld_imm64(2, lin.step));
        self.emit(Insn::alu_reg(Alu::Div, 3, 2));
        self.emit(Insn::alu_imm(Alu::Add, 3, 1));
        self.emit(Insn::mov_reg(4, 3));
        let last = i32::try_from(h.buckets - 1).unwrap_or(0);
        self.emit(Insn::jump_imm(Jmp::Jle, 4, last, 1));
        self.emit(Insn::mov_imm(4, last));
        self.land(under);
        self.bump_bucket(h);
    }

    /// One more in bucket r4 of `h` (r4 already within its buckets).
    fn bump_bucket(&mut self, h: &HistLayout) {
        let off = i16::try_from(h.offset).unwrap_or(i16::MAX);
        self.emit(Insn::alu_imm(Alu::Lsh, 4, 3));
        self.emit(Insn::mov_reg(5, 0));
        self.emit(Insn::alu_reg(Alu::Add, 5, 4));
        self.emit(Insn::load(Size::DW, 2, 5, off));
        self.emit(Insn::alu_imm(Alu::Add, 2, 1));
        self.emit(Insn::store(Size::DW, 5, off, 2));
    }
}
