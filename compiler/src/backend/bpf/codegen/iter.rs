//! `foreach` over an array in kernel context, without sorting: at the start,
//! `bpf_for_each_map_elem` runs a small callback that copies every key into a
//! per-CPU buffer map (up to the array's size); the loop then walks the
//! buffer with ordinary code, so its body runs in the handler's own frame.
//! Each iteration keeps three stack words: the key count, the next index and
//! the limit.

use super::{CodegenError, Gen, Ptr, output_id};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, Size, helper};
use crate::backend::bpf::layout::{Col, MapKind, MapSpec, Role, Storage};
use crate::mir::{IterId, IterSource, Reg};

/// A callback of the whole compilation: its instructions.
#[derive(Clone, Debug, PartialEq)]
pub struct Callback {
    pub name: String,
    pub insns: Vec<Insn>,
}

/// What one `foreach` of a handler walks.
#[derive(Clone, Debug)]
pub(super) struct Walk {
    global: usize,
    /// The internal map id of its key buffer.
    buffer: u32,
    cols: Vec<Col>,
    slice: Option<Vec<Option<Reg>>>,
}

/// The internal id of the first key buffer (after the scratch area and the
/// zeroes).
pub(super) fn first_buffer_id(globals: usize) -> u32 {
    output_id(globals) + 6
}

impl Gen<'_> {
    /// Where `iter` keeps its next index (`k` 0), the entries left to walk
    /// (`k` 1) and the key count (`k` 2).
    fn iter_word(&self, iter: IterId, k: u32) -> Ptr {
        Ptr::Scratch(self.iter_area + 24 * iter.0 + 8 * k)
    }

    /// `IterStart`: fills the iteration's key buffer.
    pub(super) fn iter_start(
        &mut self,
        iter: IterId,
        source: &IterSource,
        sorted: bool,
        limit: Option<Reg>,
        slice: Option<&Vec<Option<Reg>>>,
    ) -> Result<(), CodegenError> {
        let IterSource::Array(g) = source else {
            return self.unsupported("foreach over histogram buckets", None);
        };
        if sorted {
            return Err(CodegenError::new(
                "sorted foreach cannot run in a kernel-context probe: sort in an end or timer probe, or drop the + or - to walk in map order",
                None,
            ));
        }
        if !self.shared.may_goto {
            return Err(CodegenError::new(
                "foreach in a kernel-context probe needs the may_goto instruction of Linux 6.9 or later, which this kernel lacks; walk the array in an end or timer probe instead",
                None,
            ));
        }
        let g = g.index();
        let map = self.map(g)?;
        let (cols, entries) = self.maps[g]
            .as_ref()
            .map(|m| (m.key_cols.clone(), m.max_entries))
            .unwrap_or_default();
        let key_size: u32 = cols.iter().map(|c| c.bytes()).sum();
        let buffer = first_buffer_id(self.shared.prog.globals.len())
            + u32::try_from(self.buffers.len()).unwrap_or(0);
        self.buffers.push(MapSpec {
            name: format!("k{}", self.buffers.len()),
            kind: MapKind::PerCpuArray,
            key_size: 4,
            value_size: key_size.max(8),
            max_entries: entries.max(1),
            role: Role::Keys,
        });
        let callback = self.callbacks.len();
        let Ptr::Scratch(count_at) = self.iter_word(iter, 2) else {
            return self.unsupported("this foreach", None);
        };
        let scratch = output_id(self.shared.prog.globals.len()) + 3;
        self.callbacks.push(Callback {
            name: format!("cb{callback}"),
            insns: collect_keys(buffer, key_size, entries, scratch, count_at),
        });
        let walk = Walk {
            global: g,
            buffer,
            cols,
            slice: slice.cloned(),
        };
        let (index, most, count) = (
            self.base(self.iter_word(iter, 0)),
            self.base(self.iter_word(iter, 1)),
            self.base(self.iter_word(iter, 2)),
        );
        self.emit(Insn::store_imm(Size::DW, count.0, count.1, 0));
        self.emit(Insn::store_imm(Size::DW, index.0, index.1, 0));
        match limit {
            Some(l) => self.load(1, l),
            None => self.emit2(Insn::ld_imm64(1, i64::MAX as u64)),
        }
        self.emit(Insn::store(Size::DW, most.0, most.1, 1));
        self.emit2(Insn::ld_map(1, map));
        self.emit2(Insn::ld_callback(2, u32::try_from(callback).unwrap_or(0)));
        self.emit(Insn::mov_imm(3, 0));
        self.emit(Insn::mov_imm(4, 0));
        self.emit(Insn::call(helper::FOR_EACH_MAP_ELEM));
        let slot = iter.0 as usize;
        if self.walks.len() <= slot {
            self.walks.resize(slot + 1, None);
        }
        self.walks[slot] = Some(walk);
        Ok(())
    }

    /// `IterNext`: the next key into `keys` (and its value) and on to `body`,
    /// or on to `done`.
    pub(super) fn iter_next(
        &mut self,
        iter: IterId,
        keys: &[Option<Reg>],
        value: Option<Reg>,
        body: usize,
        done: usize,
    ) -> Result<(), CodegenError> {
        let Some(walk) = self.walks.get(iter.0 as usize).cloned().flatten() else {
            return self.unsupported("this foreach", None);
        };
        let (index, most, count) = (
            self.base(self.iter_word(iter, 0)),
            self.base(self.iter_word(iter, 1)),
            self.base(self.iter_word(iter, 2)),
        );
        let top = self.insns.len();
        self.jump_to(Insn::may_goto(0), done);
        // Past the keys there are, or the limit: done.
        self.emit(Insn::load(Size::DW, 1, index.0, index.1));
        self.emit(Insn::load(Size::DW, 2, count.0, count.1));
        self.jump_to(Insn::jump_reg(Jmp::Jge, 1, 2, 0), done);
        let cap = self
            .maps
            .get(walk.global)
            .and_then(Option::as_ref)
            .map_or(1, |m| m.max_entries);
        self.jump_to(
            Insn::jump_imm(Jmp::Jge, 1, i32::try_from(cap).unwrap_or(i32::MAX), 0),
            done,
        );
        self.emit(Insn::load(Size::DW, 3, most.0, most.1));
        self.jump_to(Insn::jump_imm(Jmp::Jsle, 3, 0, 0), done);
        let key_slot = self.bottom + 32;
        self.emit(Insn::store(Size::W, 10, key_slot, 1));
        self.emit(Insn::alu_imm(Alu::Add, 1, 1));
        self.emit(Insn::store(Size::DW, index.0, index.1, 1));
        self.emit2(Insn::ld_map(1, walk.buffer));
        self.ptr(2, Ptr::Stack(key_slot));
        self.emit(Insn::call(helper::MAP_LOOKUP_ELEM));
        self.jump_to(Insn::jump_imm(Jmp::Jeq, 0, 0, 0), done);
        // r9 keeps the key while its columns are read into registers.
        self.lend();
        self.emit(Insn::mov_reg(9, 0));
        // A slice keeps only keys equal to its given columns.
        if let Some(slice) = &walk.slice {
            let mut at = 0u32;
            for (col, want) in walk.cols.iter().zip(slice) {
                if let Some(want) = want {
                    self.skip_unless_equal(*col, at, *want, top);
                }
                at += col.bytes();
            }
        }
        // The limit counts the entries walked.
        self.emit(Insn::load(Size::DW, 3, most.0, most.1));
        self.emit(Insn::alu_imm(Alu::Sub, 3, 1));
        self.emit(Insn::store(Size::DW, most.0, most.1, 3));
        if let Some(v) = value {
            let map = self.map(walk.global)?;
            self.emit2(Insn::ld_map(1, map));
            self.emit(Insn::mov_reg(2, 9));
            self.emit(Insn::call(helper::MAP_LOOKUP_ELEM));
            self.read_value(v);
        }
        let mut at = 0u32;
        for (col, k) in walk.cols.iter().zip(keys) {
            if let Some(k) = k {
                self.key_column(*col, at, *k);
            }
            at += col.bytes();
        }
        self.give_back();
        self.jump_to(Insn::jump(0), body);
        Ok(())
    }

    /// Register `k` = the key column at byte `at` of the key in r9.
    fn key_column(&mut self, col: Col, at: u32, k: Reg) {
        let off = i16::try_from(at).unwrap_or(i16::MAX);
        match col {
            Col::Long => {
                self.emit(Insn::load(Size::DW, 1, 9, off));
                self.store(k, 1);
            }
            Col::Str(n) => {
                let words = (n / 8).min(self.words(k));
                for w in 0..words {
                    let o = off + 8 * i16::try_from(w).unwrap_or(0);
                    self.emit(Insn::load(Size::DW, 1, 9, o));
                    let (base, d) = self.base(self.region_of(k).plus(8 * w));
                    self.emit(Insn::store(Size::DW, base, d, 1));
                }
                self.zero_from(k, words);
            }
        }
    }

    /// Back to instruction `top` (the next key) unless the key column at byte
    /// `at` of the key in r9 equals register `want`.
    fn skip_unless_equal(&mut self, col: Col, at: u32, want: Reg, top: usize) {
        let off = i16::try_from(at).unwrap_or(i16::MAX);
        let mut jumps = Vec::new();
        match col {
            Col::Long => {
                self.emit(Insn::load(Size::DW, 1, 9, off));
                self.load(2, want);
                jumps.push(self.forward(Insn::jump_reg(Jmp::Jne, 1, 2, 0)));
            }
            Col::Str(n) => {
                for w in 0..n / 8 {
                    let o = off + 8 * i16::try_from(w).unwrap_or(0);
                    self.emit(Insn::load(Size::DW, 1, 9, o));
                    if w < self.words(want) {
                        let (base, d) = self.base(self.region_of(want).plus(8 * w));
                        self.emit(Insn::load(Size::DW, 2, base, d));
                    } else {
                        self.emit(Insn::mov_imm(2, 0));
                    }
                    jumps.push(self.forward(Insn::jump_reg(Jmp::Jne, 1, 2, 0)));
                }
            }
        }
        let over = self.forward(Insn::jump(0));
        for j in jumps {
            self.land(j);
        }
        // The top is outside the lending.
        self.reload_if_lent();
        let back =
            i64::try_from(top).unwrap_or(0) - i64::try_from(self.insns.len()).unwrap_or(0) - 1;
        self.emit(Insn::jump(i16::try_from(back).unwrap_or(i16::MIN)));
        self.land(over);
    }
}

impl Gen<'_> {
    /// `delete g`: every element of an array removed (a callback deletes each
    /// as the kernel walks the map), a scalar set to 0 or "".
    pub(super) fn clear(&mut self, g: usize) -> Result<(), CodegenError> {
        let map = self.map(g)?;
        let storage = self.maps[g].as_ref().map(|m| m.storage);
        match storage {
            Some(Storage::Array | Storage::StatsArray) => {
                let callback = self.callbacks.len();
                self.callbacks.push(Callback {
                    name: format!("cb{callback}"),
                    insns: vec![
                        Insn::call(helper::MAP_DELETE_ELEM),
                        Insn::mov_imm(0, 0),
                        Insn::exit(),
                    ],
                });
                self.emit2(Insn::ld_map(1, map));
                self.emit2(Insn::ld_callback(2, u32::try_from(callback).unwrap_or(0)));
                self.emit(Insn::mov_imm(3, 0));
                self.emit(Insn::mov_imm(4, 0));
                self.emit(Insn::call(helper::FOR_EACH_MAP_ELEM));
            }
            Some(Storage::Scalar) => {
                let width = self.maps[g].as_ref().map_or(8, |m| m.value_size);
                self.lookup(g, &[])?;
                let absent = self.forward(Insn::jump_imm(Jmp::Jeq, 0, 0, 0));
                for w in 0..width / 8 {
                    let off = 8 * i16::try_from(w).unwrap_or(0);
                    self.emit(Insn::store_imm(Size::DW, 0, off, 0));
                }
                self.land(absent);
            }
            _ => return self.unsupported("deleting a whole aggregate", None),
        }
        Ok(())
    }
}

/// The callback `long (map, key, value, ctx)`: the key into the buffer at
/// the index the scratch area keeps at `count_at`, which then grows by one;
/// stop (1) when the buffer is full.
fn collect_keys(
    buffer: u32,
    key_size: u32,
    entries: u32,
    scratch: u32,
    count_at: u32,
) -> Vec<Insn> {
    let count_at = i16::try_from(count_at).unwrap_or(i16::MAX);
    let mut code = vec![Insn::mov_reg(6, 2), Insn::store_imm(Size::W, 10, -8, 0)];
    code.extend(Insn::ld_map(1, scratch));
    code.push(Insn::mov_reg(2, 10));
    code.push(Insn::alu_imm(Alu::Add, 2, -8));
    code.push(Insn::call(helper::MAP_LOOKUP_ELEM));
    let mut stops = vec![code.len()];
    code.push(Insn::jump_imm(Jmp::Jeq, 0, 0, 0));
    code.push(Insn::mov_reg(7, 0));
    code.push(Insn::load(Size::DW, 1, 7, count_at));
    stops.push(code.len());
    code.push(Insn::jump_imm(
        Jmp::Jge,
        1,
        i32::try_from(entries).unwrap_or(i32::MAX),
        0,
    ));
    code.push(Insn::store(Size::W, 10, -8, 1));
    code.extend(Insn::ld_map(1, buffer));
    code.push(Insn::mov_reg(2, 10));
    code.push(Insn::alu_imm(Alu::Add, 2, -8));
    code.push(Insn::call(helper::MAP_LOOKUP_ELEM));
    stops.push(code.len());
    code.push(Insn::jump_imm(Jmp::Jeq, 0, 0, 0));
    let words = key_size / 8;
    if words > 8 {
        code.push(Insn::mov_reg(1, 0));
        code.push(Insn::mov_imm(2, i32::try_from(key_size).unwrap_or(0)));
        code.push(Insn::mov_reg(3, 6));
        code.push(Insn::call(helper::PROBE_READ_KERNEL));
    } else {
        for w in 0..words {
            let off = 8 * i16::try_from(w).unwrap_or(0);
            code.push(Insn::load(Size::DW, 1, 6, off));
            code.push(Insn::store(Size::DW, 0, off, 1));
        }
    }
    code.push(Insn::load(Size::DW, 1, 7, count_at));
    code.push(Insn::alu_imm(Alu::Add, 1, 1));
    code.push(Insn::store(Size::DW, 7, count_at, 1));
    code.push(Insn::mov_imm(0, 0));
    code.push(Insn::exit());
    let stop = code.len();
    code.push(Insn::mov_imm(0, 1));
    code.push(Insn::exit());
    for at in stops {
        code[at].off = i16::try_from(stop - at - 1).unwrap_or(i16::MAX);
    }
    code
}
