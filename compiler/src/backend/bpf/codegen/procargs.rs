//! The current process's argument and environment areas in a kernel-context
//! handler: `cmdline_args()` and `env_var()`, read from `current->mm`
//! (`arg_start..arg_end`, `env_start..env_end`) one NUL-terminated string at
//! a time, as stap's tapset walks them.
//!
//! stap's versions are script loops, which a BPF program cannot run before
//! `may_goto` (Linux 6.9). The walk is `bpf_loop` (5.17) instead: each call
//! site gets a callback that takes one step, one `bpf_probe_read_user_str`
//! into the value area and a little work, keeping its state in the scratch
//! area, where the verifier tracks nothing, so it checks the callback once
//! (or, on newer kernels, until it sees one step like the next). Arguments
//! are joined in the concatenation buffer; `env_var()` compares each entry
//! with `name=` under a mask, word by word.

use super::{CodegenError, Gen, Ptr, next8, output_id};
use crate::backend::bpf::codegen::iter::Callback;
use crate::backend::bpf::insn::{Alu, Insn, Jmp, Size, helper};
use crate::builtins::Builtin;
use crate::mir::{Inst, Reg};
use rstap_grammar::Span;

/// The most strings one walk takes: far more arguments or environment
/// entries than a process has.
const MAX_STEPS: i32 = 1 << 16;
/// The bytes one step reads: a string longer than this (or than
/// MAXSTRINGLEN, when that is larger) takes more than one step, and its
/// rest reads as the next string, as in stap's tapset, whose steps are
/// MAXSTRINGLEN long. (The user-space engine steps over it whole.)
const STEP_BYTES: u32 = 512;

/// The bytes of the value area a step reads into.
pub(super) fn step_bytes(max_string: u32) -> u32 {
    next8(max_string.max(STEP_BYTES))
}

/// The words of a walk's state, after the buffers in the concatenation area.
#[derive(Clone, Copy)]
enum State {
    /// The next string's address.
    Next = 0,
    /// The area's end.
    End = 8,
    /// `cmdline_args()`: where the joined text ends; `env_var()`: the
    /// name's length.
    Len = 16,
    /// `cmdline_args()`'s n and m.
    First = 24,
    Last = 32,
    /// `env_var()`: an entry matched, and is in the value area.
    Found = 40,
}

const STATE_BYTES: u32 = 48;

/// Byte offsets in `struct task_struct` and `struct mm_struct`, from BTF.
#[derive(Clone, Copy, Debug)]
pub(super) struct MmOffsets {
    mm: u32,
    arg_start: u32,
    arg_end: u32,
    env_start: u32,
    env_end: u32,
}

/// Whether `inst` reads the current process's argument or environment area.
pub(super) fn reads_areas(inst: &Inst) -> bool {
    matches!(
        inst,
        Inst::Builtin {
            func: Builtin::CmdlineArgs | Builtin::EnvVar,
            ..
        }
    )
}

/// Whether `inst` runs a `bpf_loop` callback.
pub(super) fn loops(inst: &Inst) -> bool {
    reads_areas(inst)
        || matches!(
            inst,
            Inst::Builtin {
                func: Builtin::StrspnAt | Builtin::StrcspnAt,
                ..
            }
        )
}

/// Whether the kernel has `bpf_loop` (its BTF lists `BPF_FUNC_loop`), when a
/// kernel-context handler needs it; without BTF to tell, the verifier will.
pub(super) fn bpf_loop_if_needed(
    prog: &crate::mir::Program,
    kernel: &dyn crate::kernel::KernelInfo,
) -> bool {
    let needed = prog.kernel_insts().any(loops);
    !needed
        || kernel
            .kernel_types()
            .map_or(true, |t| t.enumerator("BPF_FUNC_loop").is_some())
}

/// The offsets, when a kernel-context handler calls `cmdline_args()` or
/// `env_var()` (None also without BTF: the call is then refused).
pub(super) fn offsets_if_needed(
    prog: &crate::mir::Program,
    kernel: &dyn crate::kernel::KernelInfo,
) -> Option<MmOffsets> {
    let needed = prog.kernel_insts().any(reads_areas);
    if !needed {
        return None;
    }
    let types = kernel.kernel_types().ok()?;
    let task = types.struct_named("task_struct")?;
    let mm = types.struct_named("mm_struct")?;
    let at = |id, name: &str| types.field(id, name).map(|f| f.byte_offset);
    Some(MmOffsets {
        mm: at(task, "mm")?,
        arg_start: at(mm, "arg_start")?,
        arg_end: at(mm, "arg_end")?,
        env_start: at(mm, "env_start")?,
        env_end: at(mm, "env_end")?,
    })
}

/// The mask that bounds an append's offset for the verifier: all ones up to
/// `last`'s highest bit.
fn end_mask(last: i32) -> i32 {
    let last = u32::try_from(last).unwrap_or(0);
    i32::try_from((last + 1).next_power_of_two() - 1).unwrap_or(i32::MAX)
}

/// The buffers of a walk: the joined arguments (an append may start
/// anywhere the mask allows and write MAXSTRINGLEN bytes), or the pattern
/// and mask `env_var()` compares with.
fn buffer_bytes(max_string: u32) -> u32 {
    let last = i32::try_from(max_string.max(1) - 1).unwrap_or(0);
    let appends = u32::try_from(end_mask(last)).unwrap_or(0) + 1;
    appends.max(next8(max_string)) + next8(max_string)
}

/// The concatenation area a handler that walks an area needs.
pub(super) fn area_bytes(max_string: u32) -> u32 {
    buffer_bytes(max_string) + STATE_BYTES
}

impl Gen<'_> {
    /// `dst` = `cmdline_args(n, m, delim)` or `env_var(name)` of the current
    /// process ("" for a kernel thread, which has no `mm`).
    pub(super) fn process_area(
        &mut self,
        dst: Option<Reg>,
        func: Builtin,
        args: &[Reg],
        at: Span,
    ) -> Result<(), CodegenError> {
        let Some(dst) = dst else { return Ok(()) };
        let Some(off) = self.shared.mm else {
            return self.unsupported(
                &format!("{}() without the kernel's BTF", func.name()),
                Some(at),
            );
        };
        let (start, end) = if func == Builtin::EnvVar {
            (off.env_start, off.env_end)
        } else {
            (off.arg_start, off.arg_end)
        };
        self.lend();
        let mut empty = Vec::new();
        // r8 = current->mm; the area's bounds into the state.
        let word = self.bottom;
        self.emit(Insn::call(helper::GET_CURRENT_TASK));
        self.emit(Insn::mov_reg(3, 0));
        self.emit(Insn::alu_imm(Alu::Add, 3, imm(off.mm)));
        self.emit(Insn::store_imm(Size::DW, 10, word, 0));
        self.emit(Insn::mov_reg(1, 10));
        self.emit(Insn::alu_imm(Alu::Add, 1, i32::from(word)));
        self.emit(Insn::mov_imm(2, 8));
        self.emit(Insn::call(helper::PROBE_READ_KERNEL));
        self.emit(Insn::load(Size::DW, 8, 10, word));
        empty.push(self.forward(Insn::jump_imm(Jmp::Jeq, 8, 0, 0)));
        for (field, at) in [(end, State::End), (start, State::Next)] {
            let (base, o) = self.base(self.state(at));
            self.emit(Insn::store_imm(Size::DW, base, o, 0));
            self.ptr(1, self.state(at));
            self.emit(Insn::mov_imm(2, 8));
            self.emit(Insn::mov_reg(3, 8));
            self.emit(Insn::alu_imm(Alu::Add, 3, imm(field)));
            self.emit(Insn::call(helper::PROBE_READ_KERNEL));
        }
        let (base, o) = self.base(self.state(State::Next));
        self.emit(Insn::load(Size::DW, 1, base, o));
        empty.push(self.forward(Insn::jump_imm(Jmp::Jeq, 1, 0, 0)));
        // `dst` may be an argument's register: it is written last.
        if func == Builtin::EnvVar {
            self.env_var(dst, args[0], &mut empty);
        } else {
            self.cmdline_args(dst, args);
        }
        let written = self.forward(Insn::jump(0));
        for e in empty {
            self.land(e);
        }
        self.zero_from(dst, 0);
        self.land(written);
        self.give_back();
        Ok(())
    }

    /// A word of the walk's state.
    fn state(&self, word: State) -> Ptr {
        let max = self.shared.target.max_string();
        Ptr::Scratch(self.concat_area + buffer_bytes(max) + word as u32)
    }

    /// The bytes a string of the areas may have with its NUL (MAXSTRINGLEN),
    /// and the concatenation buffer's half.
    fn area_sizes(&self) -> (i32, u32) {
        let max = self.shared.target.max_string();
        (i32::try_from(max).unwrap_or(512), next8(max))
    }

    /// Runs the walk: `step` emits one step's work (after the string is in
    /// the value area) in a [`Gen::loop_callback`] that stops when the area
    /// ends. In it r8 is the next string's address.
    fn walk(&mut self, step: impl FnOnce(&mut Self)) {
        self.loop_callback(MAX_STEPS, |g, stop| {
            let (nb, no) = g.base(g.state(State::Next));
            let (eb, eo) = g.base(g.state(State::End));
            g.emit(Insn::load(Size::DW, 8, nb, no));
            g.emit(Insn::load(Size::DW, 1, eb, eo));
            stop.push(g.forward(Insn::jump_reg(Jmp::Jge, 8, 1, 0)));
            // The string; as stap's `user_string(addr, "")`, one that cannot
            // be read is "" and one byte long.
            let bytes = step_bytes(g.shared.target.max_string());
            g.ptr(1, Ptr::Scratch(g.value_area));
            g.emit(Insn::mov_imm(2, i32::try_from(bytes).unwrap_or(512)));
            g.emit(Insn::mov_reg(3, 8));
            g.emit(Insn::call(helper::PROBE_READ_USER_STR));
            g.emit(Insn::jump_imm(Jmp::Jsge, 0, 1, 2));
            g.emit(Insn::mov_imm(0, 1));
            let (tb, to) = g.base(Ptr::Scratch(g.value_area));
            g.emit(Insn::store_imm(Size::B, tb, to, 0));
            g.emit(Insn::alu_reg(Alu::Add, 8, 0));
            g.emit(Insn::store(Size::DW, nb, no, 8));
            g.emit(Insn::mov_imm(0, 0));
            step(g);
        });
    }

    /// `bpf_loop(steps, callback)`, the callback's body emitted by `step`.
    /// In it r6 is the step's number and r7 the scratch area (the context
    /// is the scratch map's key, on the handler's stack: the callback has no
    /// stack of its own); `step` leaves r0 = 0 to go on or 1 to stop, and
    /// may push jumps that stop at once. Its state lives in the scratch
    /// area, where the verifier tracks nothing, so the kernel checks one
    /// step (or, on newer kernels, two that look alike).
    pub(super) fn loop_callback(
        &mut self,
        steps: i32,
        step: impl FnOnce(&mut Self, &mut Vec<usize>),
    ) {
        let main = std::mem::take(&mut self.insns);
        let mut stop = Vec::new();
        self.emit(Insn::mov_reg(6, 1));
        self.emit2(Insn::ld_map(
            1,
            output_id(self.shared.prog.globals.len()) + 3,
        ));
        self.emit(Insn::call(helper::MAP_LOOKUP_ELEM));
        stop.push(self.forward(Insn::jump_imm(Jmp::Jeq, 0, 0, 0)));
        self.emit(Insn::mov_reg(7, 0));
        self.emit(Insn::mov_imm(0, 0));
        step(self, &mut stop);
        self.emit(Insn::exit());
        for s in stop {
            self.land(s);
        }
        self.emit(Insn::mov_imm(0, 1));
        self.emit(Insn::exit());
        let code = std::mem::replace(&mut self.insns, main);
        let callback = self.callbacks.len();
        self.callbacks.push(Callback {
            name: format!("cb{callback}"),
            insns: code,
        });
        let key = self.bottom + 8;
        self.emit(Insn::store_imm(Size::DW, 10, key, 0));
        self.emit(Insn::mov_imm(1, steps));
        self.emit2(Insn::ld_callback(2, u32::try_from(callback).unwrap_or(0)));
        self.emit(Insn::mov_reg(3, 10));
        self.emit(Insn::alu_imm(Alu::Add, 3, i32::from(key)));
        self.emit(Insn::mov_imm(4, 0));
        self.emit(Insn::call(helper::LOOP));
    }

    /// `cmdline_args(n, m, delim)`: each argument numbered `n`.. (to `m`
    /// unless `m` is negative) appended to the concatenation buffer, the
    /// ones after `n` behind `delim` (an empty one as `""`).
    fn cmdline_args(&mut self, dst: Reg, args: &[Reg]) {
        let (n, m, delim) = (args[0], args[1], args[2]);
        let half = self.area_sizes().1;
        let buf = Ptr::Scratch(self.concat_area);
        for w in 0..half / 8 {
            let (base, off) = self.base(buf.plus(8 * w));
            self.emit(Insn::store_imm(Size::DW, base, off, 0));
        }
        for (r, at) in [(n, State::First), (m, State::Last)] {
            self.load(1, r);
            let (base, off) = self.base(self.state(at));
            self.emit(Insn::store(Size::DW, base, off, 1));
        }
        let (jb, jo) = self.base(self.state(State::Len));
        self.emit(Insn::store_imm(Size::DW, jb, jo, 0));
        let delim = self.region_of(delim);
        self.walk(|g| {
            let mut stop = Vec::new();
            let mut go_on = Vec::new();
            // Past argument m (when m >= 0): stop.
            let (lb, lo) = g.base(g.state(State::Last));
            g.emit(Insn::load(Size::DW, 1, lb, lo));
            g.emit(Insn::jump_imm(Jmp::Jslt, 1, 0, 1));
            stop.push(g.forward(Insn::jump_reg(Jmp::Jsgt, 6, 1, 0)));
            // Before argument n: on.
            let (fb, fo) = g.base(g.state(State::First));
            g.emit(Insn::load(Size::DW, 2, fb, fo));
            go_on.push(g.forward(Insn::jump_reg(Jmp::Jslt, 6, 2, 0)));
            let (jb, jo) = g.base(g.state(State::Len));
            g.emit(Insn::load(Size::DW, 9, jb, jo));
            g.emit(Insn::alu_imm(Alu::And, 9, end_mask(g.area_sizes().0 - 1)));
            let first = g.forward(Insn::jump_reg(Jmp::Jeq, 6, 2, 0));
            g.append(delim);
            let (tb, to) = g.base(Ptr::Scratch(g.value_area));
            g.emit(Insn::load(Size::B, 1, tb, to));
            let some = g.forward(Insn::jump_imm(Jmp::Jne, 1, 0, 0));
            g.append_quotes();
            let store = g.forward(Insn::jump(0));
            g.land(some);
            g.land(first);
            g.append(Ptr::Scratch(g.value_area));
            g.land(store);
            g.emit(Insn::store(Size::DW, jb, jo, 9));
            g.emit(Insn::mov_imm(0, 0));
            for j in go_on {
                g.land(j);
            }
            let done = g.forward(Insn::jump(0));
            for s in stop {
                g.land(s);
            }
            g.emit(Insn::mov_imm(0, 1));
            g.land(done);
        });
        // The text, cut to MAXSTRINGLEN with its NUL.
        let (max, _) = self.area_sizes();
        let (base, at) = self.base(buf);
        let cut = i16::try_from(max - 1).unwrap_or(0);
        self.emit(Insn::store_imm(Size::B, base, at + cut, 0));
        self.ptr(3, buf);
        self.read_into(dst);
    }

    /// The string at `src` appended to the concatenation buffer at r9, and
    /// r9 moved past it (at most to the last byte of MAXSTRINGLEN).
    fn append(&mut self, src: Ptr) {
        let half = self.area_sizes().1;
        self.ptr(1, Ptr::Scratch(self.concat_area));
        self.emit(Insn::alu_reg(Alu::Add, 1, 9));
        self.emit(Insn::mov_imm(2, i32::try_from(half).unwrap_or(0)));
        self.ptr(3, src);
        self.emit(Insn::call(helper::PROBE_READ_KERNEL_STR));
        self.emit(Insn::alu_imm(Alu::Sub, 0, 1));
        self.emit(Insn::jump_imm(Jmp::Jsge, 0, 0, 1));
        self.emit(Insn::mov_imm(0, 0));
        self.emit(Insn::alu_reg(Alu::Add, 9, 0));
        self.clamp_end();
    }

    /// `""` appended at r9, for an empty argument.
    fn append_quotes(&mut self) {
        self.ptr(1, Ptr::Scratch(self.concat_area));
        self.emit(Insn::alu_reg(Alu::Add, 1, 9));
        self.emit(Insn::store_imm(Size::B, 1, 0, i32::from(b'"')));
        self.emit(Insn::store_imm(Size::B, 1, 1, i32::from(b'"')));
        self.emit(Insn::store_imm(Size::B, 1, 2, 0));
        self.emit(Insn::alu_imm(Alu::Add, 9, 2));
        self.clamp_end();
    }

    /// r9 = min(r9, the last byte a string may use), bounded for the
    /// verifier by the mask.
    fn clamp_end(&mut self) {
        let last = self.area_sizes().0 - 1;
        self.emit(Insn::jump_imm(Jmp::Jsle, 9, last, 1));
        self.emit(Insn::mov_imm(9, last));
        self.emit(Insn::alu_imm(Alu::And, 9, end_mask(last)));
    }

    /// `dst` = the string at r3 (in rstap's scratch area), NUL-padded.
    /// (Zeroing is stores through r7: r3 survives it.)
    fn read_into(&mut self, dst: Reg) {
        self.zero_from(dst, 0);
        let room = 8 * self.words(dst);
        self.ptr(1, self.region_of(dst));
        self.emit(Insn::mov_imm(2, i32::try_from(room).unwrap_or(0)));
        self.emit(Insn::call(helper::PROBE_READ_KERNEL_STR));
    }

    /// `env_var(name)`: the first entry that starts with `name=` gives
    /// `dst` the rest. The pattern `name=` and a mask of its bytes are
    /// built in the concatenation buffer first; each entry is then compared
    /// word by word under the mask. "" matches nothing.
    fn env_var(&mut self, dst: Reg, name: Reg, empty: &mut Vec<usize>) {
        let half = self.area_sizes().1;
        let words = self.words(name);
        let pattern = Ptr::Scratch(self.concat_area);
        let mask = Ptr::Scratch(self.concat_area + half);
        for w in 0..words {
            let (base, off) = self.base(pattern.plus(8 * w));
            self.emit(Insn::store_imm(Size::DW, base, off, 0));
        }
        // r9 = strlen(name), as the helper counts it.
        self.ptr(1, pattern);
        self.emit(Insn::mov_imm(2, i32::try_from(8 * words).unwrap_or(0)));
        self.ptr(3, self.region_of(name));
        self.emit(Insn::call(helper::PROBE_READ_KERNEL_STR));
        self.emit(Insn::mov_reg(9, 0));
        self.emit(Insn::alu_imm(Alu::Sub, 9, 1));
        empty.push(self.forward(Insn::jump_imm(Jmp::Jsle, 9, 0, 0)));
        let last = i32::try_from(8 * words - 1).unwrap_or(0);
        empty.push(self.forward(Insn::jump_imm(Jmp::Jsgt, 9, last, 0)));
        let (lb, lo) = self.base(self.state(State::Len));
        self.emit(Insn::store(Size::DW, lb, lo, 9));
        let (fb, fo) = self.base(self.state(State::Found));
        self.emit(Insn::store_imm(Size::DW, fb, fo, 0));
        self.ptr(1, pattern);
        self.emit(Insn::alu_reg(Alu::Add, 1, 9));
        self.emit(Insn::store_imm(Size::B, 1, 0, i32::from(b'=')));
        // A byte of the mask is 0xff where the pattern's byte is not 0.
        for w in 0..words {
            let (pb, po) = self.base(pattern.plus(8 * w));
            let (mb, mo) = self.base(mask.plus(8 * w));
            self.emit(Insn::load(Size::DW, 1, pb, po));
            self.emit2(Insn::ld_imm64(2, 0x7f7f_7f7f_7f7f_7f7f));
            self.emit(Insn::mov_reg(3, 1));
            self.emit(Insn::alu_reg(Alu::And, 3, 2));
            self.emit(Insn::alu_reg(Alu::Add, 3, 2));
            self.emit(Insn::alu_reg(Alu::Or, 3, 1));
            self.emit2(Insn::ld_imm64(2, 0x8080_8080_8080_8080));
            self.emit(Insn::alu_reg(Alu::And, 3, 2));
            self.emit(Insn::alu_imm(Alu::Rsh, 3, 7));
            self.emit(Insn::alu_imm(Alu::Mul, 3, 0xff));
            self.emit(Insn::store(Size::DW, mb, mo, 3));
        }
        self.walk(|g| {
            let mut differs = Vec::new();
            for w in 0..words {
                let (tb, to) = g.base(Ptr::Scratch(g.value_area + 8 * w));
                let (pb, po) = g.base(pattern.plus(8 * w));
                let (mb, mo) = g.base(mask.plus(8 * w));
                g.emit(Insn::load(Size::DW, 1, tb, to));
                g.emit(Insn::load(Size::DW, 2, pb, po));
                g.emit(Insn::alu_reg(Alu::Xor, 1, 2));
                g.emit(Insn::load(Size::DW, 2, mb, mo));
                g.emit(Insn::alu_reg(Alu::And, 1, 2));
                differs.push(g.forward(Insn::jump_imm(Jmp::Jne, 1, 0, 0)));
            }
            let (fb, fo) = g.base(g.state(State::Found));
            g.emit(Insn::store_imm(Size::DW, fb, fo, 1));
            g.emit(Insn::mov_imm(0, 1));
            for d in differs {
                g.land(d);
            }
        });
        self.emit(Insn::load(Size::DW, 1, fb, fo));
        empty.push(self.forward(Insn::jump_imm(Jmp::Jeq, 1, 0, 0)));
        // The value follows the pattern, the name's length + 1 bytes into
        // the entry the walk stopped at.
        self.emit(Insn::load(Size::DW, 9, lb, lo));
        self.emit(Insn::alu_imm(Alu::And, 9, end_mask(last)));
        self.ptr(3, Ptr::Scratch(self.value_area));
        self.emit(Insn::alu_reg(Alu::Add, 3, 9));
        self.emit(Insn::alu_imm(Alu::Add, 3, 1));
        self.read_into(dst);
    }
}

fn imm(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
