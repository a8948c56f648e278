//! Reading aggregates in kernel context: `@count(g[k])`, `@sum`, `@min`,
//! `@max`, `@avg`, `@variance` and `@hist_*(g[k])[i]` add up every possible
//! CPU's share with `bpf_map_lookup_percpu_elem` in a bounded loop, combining
//! them as the runtime does when it imports them (`runtime/src/stats.rs`): a
//! scalar's shares all at once, an array element's one CPU after another.

use super::{CodegenError, Gen, Ptr};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, Size};
use crate::backend::bpf::layout::StatLayout;
use crate::hir::{Histogram, StatOp};
use crate::mir::Reg;
use rstap_grammar::Span;

/// `bpf_map_lookup_percpu_elem` (Linux 5.19).
const MAP_LOOKUP_PERCPU_ELEM: i32 = 195;

/// What an extraction adds up over the CPUs besides the count.
#[derive(Clone, Copy)]
enum Fold {
    Count,
    Sum,
    Min,
    Max,
    /// One bucket of a histogram (its offset and bucket count, if the
    /// aggregate keeps it), at the index in a register.
    Bucket(Option<(i16, u32)>, Reg),
}

/// Stack words of an extraction, in the stack's fresh bytes.
#[derive(Clone, Copy)]
struct Acc {
    count: i16,
    sum: i16,
    /// The fold's value (min, max, a bucket's count), or the combined mean.
    value: i16,
    /// The combined variance.
    variance: i16,
}

impl Acc {
    fn new(bottom: i16) -> Acc {
        let w = |i: i16| bottom + 8 * i;
        Acc {
            count: w(0),
            sum: w(1),
            value: w(2),
            variance: w(3),
        }
    }
}

impl Gen<'_> {
    /// `@count(g[keys])` and the rest. An empty aggregate is stap's `empty
    /// aggregate` error except for @count and @sum.
    pub(super) fn agg_read(
        &mut self,
        dst: Reg,
        g: usize,
        keys: &[Reg],
        op: StatOp,
        at: Span,
    ) -> Result<(), CodegenError> {
        let fold = match op {
            StatOp::Count => Fold::Count,
            StatOp::Sum | StatOp::Avg => Fold::Sum,
            StatOp::Min => Fold::Min,
            StatOp::Max => Fold::Max,
            StatOp::Variance => return self.variance(dst, g, keys, at),
        };
        let acc = self.fold_cpus(g, keys, fold)?;
        match op {
            StatOp::Count => self.emit(Insn::load(Size::DW, 1, 10, acc.count)),
            StatOp::Sum => self.emit(Insn::load(Size::DW, 1, 10, acc.sum)),
            _ => {
                self.emit(Insn::load(Size::DW, 2, 10, acc.count));
                self.non_empty(at);
                let value = if op == StatOp::Avg {
                    acc.sum
                } else {
                    acc.value
                };
                self.emit(Insn::load(Size::DW, 1, 10, value));
                if op == StatOp::Avg {
                    self.emit(Insn::alu_signed(Alu::Div, 1, 2));
                }
            }
        }
        self.store(dst, 1);
        Ok(())
    }

    /// `@hist_*(g[keys])[bucket]`: one bucket's count over every CPU. Errors
    /// as stap's: an empty aggregate, then an index past the buckets.
    pub(super) fn hist_bucket(
        &mut self,
        dst: Reg,
        g: usize,
        keys: &[Reg],
        hist: &Histogram,
        bucket: Reg,
    ) -> Result<(), CodegenError> {
        let (_, m) = self.global(g)?;
        let kept = m.stat.as_ref().and_then(|s| s.hist(hist)).map(|h| {
            let off = i16::try_from(h.offset).unwrap_or(i16::MAX);
            (off, h.buckets)
        });
        let buckets = kept.map_or(0, |(_, n)| n);
        let acc = self.fold_cpus(g, keys, Fold::Bucket(kept, bucket))?;
        // The interpreter has no location for these either.
        let at = Span::default();
        self.emit(Insn::load(Size::DW, 2, 10, acc.count));
        self.non_empty(at);
        self.load(4, bucket);
        let inside = i32::try_from(buckets).unwrap_or(0);
        let ok = self.forward(Insn::jump_imm(Jmp::Jlt, 4, inside, 0));
        self.raise("histogram index out of range", at);
        self.land(ok);
        self.emit(Insn::load(Size::DW, 1, 10, acc.value));
        self.store(dst, 1);
        Ok(())
    }

    /// Raises `empty aggregate` unless r2 (a count) is non-zero.
    fn non_empty(&mut self, at: Span) {
        let ok = self.forward(Insn::jump_imm(Jmp::Jne, 2, 0, 0));
        self.raise("empty aggregate", at);
        self.land(ok);
    }

    /// The map of `g`, and its key packed into the scratch area, for an
    /// extraction; the words of its state zeroed.
    fn extraction(&mut self, g: usize, keys: &[Reg]) -> Result<(u32, Ptr, Acc), CodegenError> {
        let (map, m) = self.global(g)?;
        if m.stat.is_none() {
            return self.unsupported("an aggregate of this global", None);
        }
        let key = self.key(g, keys)?;
        let acc = Acc::new(self.bottom);
        for w in [acc.count, acc.sum, acc.value, acc.variance] {
            self.emit(Insn::store_imm(Size::DW, 10, w, 0));
        }
        Ok((map, key, acc))
    }

    /// Adds up the counts of every CPU's share of `g[keys]` and what `fold`
    /// asks for (the variance word counts the CPUs).
    fn fold_cpus(&mut self, g: usize, keys: &[Reg], fold: Fold) -> Result<Acc, CodegenError> {
        let (map, key, acc) = self.extraction(g, keys)?;
        self.each_cpu(map, key, acc.variance, |s| {
            match fold {
                Fold::Count => {}
                Fold::Sum => s.add_word(acc.sum, StatLayout::SUM),
                Fold::Min | Fold::Max => {
                    let (off, keep) = if matches!(fold, Fold::Min) {
                        (StatLayout::MIN, Jmp::Jsge)
                    } else {
                        (StatLayout::MAX, Jmp::Jsle)
                    };
                    s.emit(Insn::load(Size::DW, 2, 0, off));
                    s.emit(Insn::load(Size::DW, 3, 10, acc.count));
                    let first = s.forward(Insn::jump_imm(Jmp::Jeq, 3, 0, 0));
                    s.emit(Insn::load(Size::DW, 3, 10, acc.value));
                    let kept = s.forward(Insn::jump_reg(keep, 2, 3, 0));
                    s.land(first);
                    s.emit(Insn::store(Size::DW, 10, acc.value, 2));
                    s.land(kept);
                }
                Fold::Bucket(Some((off, buckets)), bucket) => {
                    s.load(4, bucket);
                    let inside = i32::try_from(buckets).unwrap_or(0);
                    let outside = s.forward(Insn::jump_imm(Jmp::Jge, 4, inside, 0));
                    s.emit(Insn::alu_imm(Alu::Lsh, 4, 3));
                    s.emit(Insn::alu_reg(Alu::Add, 0, 4));
                    s.add_word(acc.value, off);
                    s.land(outside);
                }
                Fold::Bucket(None, _) => {}
            }
            s.add_count(acc);
        });
        Ok(acc)
    }

    /// `@variance(g[keys])`: a scalar's shares combined at once (stap's
    /// `_stp_stat_get`), an element's folded in CPU order (`_new_map_copy_stat`),
    /// from each share's Welford words.
    fn variance(&mut self, dst: Reg, g: usize, keys: &[Reg], at: Span) -> Result<(), CodegenError> {
        let (map, key, acc) = self.extraction(g, keys)?;
        let shift = self.maps[g]
            .as_ref()
            .and_then(|m| m.stat.as_ref())
            .and_then(|s| s.variance)
            .unwrap_or(0);
        // Four words of state: `dst`'s slot (written last; the key is packed
        // already) counts the CPUs.
        let cpu = self.slot[dst.index()];
        if keys.is_empty() {
            self.each_cpu(map, key, cpu, |s| {
                s.add_word(acc.sum, StatLayout::SUM);
                s.add_count(acc);
            });
            self.emit(Insn::load(Size::DW, 2, 10, acc.count));
            self.non_empty(at);
            // The combined mean, scaled.
            self.emit(Insn::load(Size::DW, 1, 10, acc.sum));
            self.shift_left(1, shift);
            self.emit(Insn::alu_signed(Alu::Div, 1, 2));
            self.emit(Insn::store(Size::DW, 10, acc.value, 1));
            self.each_cpu(map, key, cpu, |s| {
                s.emit(Insn::load(Size::DW, 5, 10, acc.value));
                s.emit(Insn::load(Size::DW, 3, 10, acc.variance));
                s.spread(3);
                s.emit(Insn::store(Size::DW, 10, acc.variance, 3));
            });
            self.emit(Insn::load(Size::DW, 1, 10, acc.variance));
            self.emit(Insn::load(Size::DW, 2, 10, acc.count));
            self.emit(Insn::alu_imm(Alu::Add, 2, -1));
            // BPF's x / 0 is 0, as stap's _stp_div64 (one value: variance 0).
            self.emit(Insn::alu_signed(Alu::Div, 1, 2));
        } else {
            self.each_cpu(map, key, cpu, |s| s.merge_share(acc, shift));
            self.emit(Insn::load(Size::DW, 2, 10, acc.count));
            self.non_empty(at);
            self.emit(Insn::load(Size::DW, 1, 10, acc.variance));
        }
        // `>> 2*shift` as stap's int64 arithmetic shift does it (modulo 64).
        let down = i32::try_from((2 * shift) % 64).unwrap_or(0);
        if down > 0 {
            self.emit(Insn::alu_imm(Alu::Arsh, 1, down));
        }
        self.store(dst, 1);
        Ok(())
    }

    /// With a share at r0, its count in r1 and the combined mean in r5:
    /// `r += n*(mean_i - mean)^2 + (n-1)*variance_i` (stap's total variance
    /// terms). Uses r2 and r4.
    fn spread(&mut self, r: u8) {
        self.emit(Insn::load(Size::DW, 2, 0, StatLayout::AVG));
        self.emit(Insn::alu_reg(Alu::Sub, 2, 5));
        self.emit(Insn::alu_reg(Alu::Mul, 2, 2));
        self.emit(Insn::alu_reg(Alu::Mul, 2, 1));
        self.emit(Insn::alu_reg(Alu::Add, r, 2));
        self.emit(Insn::mov_reg(2, 1));
        self.emit(Insn::alu_imm(Alu::Add, 2, -1));
        self.emit(Insn::load(Size::DW, 4, 0, StatLayout::VARIANCE));
        self.emit(Insn::alu_reg(Alu::Mul, 2, 4));
        self.emit(Insn::alu_reg(Alu::Add, r, 2));
    }

    /// Folds the share at r0 (count in r1) into the element's running
    /// combination, as the runtime's `Stat::merge`: the first share is copied,
    /// later ones combined with the total-variance formula.
    fn merge_share(&mut self, acc: Acc, shift: u32) {
        self.emit(Insn::load(Size::DW, 2, 10, acc.count));
        let more = self.forward(Insn::jump_imm(Jmp::Jne, 2, 0, 0));
        self.emit(Insn::store(Size::DW, 10, acc.count, 1));
        for (from, to) in [
            (StatLayout::SUM, acc.sum),
            (StatLayout::AVG, acc.value),
            (StatLayout::VARIANCE, acc.variance),
        ] {
            self.emit(Insn::load(Size::DW, 3, 0, from));
            self.emit(Insn::store(Size::DW, 10, to, 3));
        }
        let done = self.forward(Insn::jump(0));
        self.land(more);
        // The new count, sum and mean (r5); r3 = the old mean.
        self.emit(Insn::alu_reg(Alu::Add, 2, 1));
        self.emit(Insn::store(Size::DW, 10, acc.count, 2));
        self.add_word(acc.sum, StatLayout::SUM);
        self.emit(Insn::load(Size::DW, 5, 10, acc.sum));
        self.shift_left(5, shift);
        self.emit(Insn::load(Size::DW, 4, 10, acc.count));
        self.emit(Insn::alu_signed(Alu::Div, 5, 4));
        self.emit(Insn::load(Size::DW, 3, 10, acc.value));
        self.emit(Insn::store(Size::DW, 10, acc.value, 5));
        // The old combination's terms: n1*(mean1 - mean)^2 + (n1-1)*variance1.
        self.emit(Insn::load(Size::DW, 2, 10, acc.count));
        self.emit(Insn::alu_reg(Alu::Sub, 2, 1));
        self.emit(Insn::alu_reg(Alu::Sub, 3, 5));
        self.emit(Insn::alu_reg(Alu::Mul, 3, 3));
        self.emit(Insn::alu_reg(Alu::Mul, 3, 2));
        self.emit(Insn::alu_imm(Alu::Add, 2, -1));
        self.emit(Insn::load(Size::DW, 4, 10, acc.variance));
        self.emit(Insn::alu_reg(Alu::Mul, 2, 4));
        self.emit(Insn::alu_reg(Alu::Add, 3, 2));
        // The share's, then the sum over the new count - 1.
        self.spread(3);
        self.emit(Insn::load(Size::DW, 4, 10, acc.count));
        self.emit(Insn::alu_imm(Alu::Add, 4, -1));
        self.emit(Insn::alu_signed(Alu::Div, 3, 4));
        self.emit(Insn::store(Size::DW, 10, acc.variance, 3));
        self.land(done);
    }

    /// Loops over every possible CPU's share of the element under the key at
    /// `key` in map `map`, counting CPUs in the stack word at `cpu`. `body`
    /// runs for each non-empty share, with the share at r0 and its count in
    /// r1; it may use r2–r5.
    fn each_cpu(&mut self, map: u32, key: Ptr, cpu: i16, body: impl FnOnce(&mut Self)) {
        self.emit(Insn::store_imm(Size::DW, 10, cpu, 0));
        let top = self.insns.len();
        self.emit2(Insn::ld_map(1, map));
        self.ptr(2, key);
        self.emit(Insn::load(Size::DW, 3, 10, cpu));
        self.emit(Insn::call(MAP_LOOKUP_PERCPU_ELEM));
        let absent = self.forward(Insn::jump_imm(Jmp::Jeq, 0, 0, 0));
        self.emit(Insn::load(Size::DW, 1, 0, StatLayout::COUNT));
        let empty = self.forward(Insn::jump_imm(Jmp::Jeq, 1, 0, 0));
        body(self);
        self.land(absent);
        self.land(empty);
        self.emit(Insn::load(Size::DW, 3, 10, cpu));
        self.emit(Insn::alu_imm(Alu::Add, 3, 1));
        self.emit(Insn::store(Size::DW, 10, cpu, 3));
        let cpus = i32::try_from(self.shared.target.possible_cpus.max(1)).unwrap_or(i32::MAX);
        let back =
            i64::try_from(top).unwrap_or(0) - i64::try_from(self.insns.len()).unwrap_or(0) - 1;
        let back = i16::try_from(back).unwrap_or(i16::MIN);
        self.emit(Insn::jump_imm(Jmp::Jlt, 3, cpus, back));
    }

    /// The running count += the share's (in r1).
    fn add_count(&mut self, acc: Acc) {
        self.emit(Insn::load(Size::DW, 2, 10, acc.count));
        self.emit(Insn::alu_reg(Alu::Add, 2, 1));
        self.emit(Insn::store(Size::DW, 10, acc.count, 2));
    }

    /// The stack word at `acc` += the word at `off` of the share at r0.
    fn add_word(&mut self, acc: i16, off: i16) {
        self.emit(Insn::load(Size::DW, 2, 0, off));
        self.emit(Insn::load(Size::DW, 3, 10, acc));
        self.emit(Insn::alu_reg(Alu::Add, 3, 2));
        self.emit(Insn::store(Size::DW, 10, acc, 3));
    }
}
