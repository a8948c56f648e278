//! BPF instructions: the 8-byte encoding the kernel loads, and constructors
//! named after what they do. Registers are r0..r10 (r10 the read-only frame
//! pointer); jump offsets count instructions after the jump.

/// One BPF instruction (`struct bpf_insn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

// Instruction classes.
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const JMP: u8 = 0x05;
const ALU64: u8 = 0x07;
// Sources.
const K: u8 = 0x00;
const X: u8 = 0x08;
// Modes.
const IMM: u8 = 0x00;
const MEM: u8 = 0x60;
const ATOMIC: u8 = 0xc0;

/// Operand sizes of loads and stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    B = 0x10,
    H = 0x08,
    W = 0x00,
    DW = 0x18,
}

impl Size {
    pub fn bytes(self) -> u8 {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }

    /// The size of `n` bytes, if a load can have it.
    pub fn of(n: u8) -> Option<Size> {
        match n {
            1 => Some(Size::B),
            2 => Some(Size::H),
            4 => Some(Size::W),
            8 => Some(Size::DW),
            _ => None,
        }
    }
}

/// 64-bit ALU operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alu {
    Add = 0x00,
    Sub = 0x10,
    Mul = 0x20,
    /// Unsigned; signed division is `off = 1` (kernel ≥ 6.6, cpu v4).
    Div = 0x30,
    Or = 0x40,
    And = 0x50,
    Lsh = 0x60,
    Rsh = 0x70,
    Neg = 0x80,
    Mod = 0x90,
    Xor = 0xa0,
    Mov = 0xb0,
    Arsh = 0xc0,
}

/// Jump conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jmp {
    Ja = 0x00,
    Jeq = 0x10,
    Jgt = 0x20,
    Jge = 0x30,
    Jset = 0x40,
    Jne = 0x50,
    Jsgt = 0x60,
    Jsge = 0x70,
    Jlt = 0xa0,
    Jle = 0xb0,
    Jslt = 0xc0,
    Jsle = 0xd0,
}

/// `src_reg` of a `ld_imm64` whose immediate is a map file descriptor
/// (`BPF_PSEUDO_MAP_FD`): the loader relocates it.
pub const PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of a `ld_imm64` that loads the address of a byte of a one-entry
/// array map's value (`BPF_PSEUDO_MAP_VALUE`): the immediate names the map,
/// the second slot's the offset. A load through it needs no lookup.
pub const PSEUDO_MAP_VALUE: u8 = 2;
/// `src_reg` of a `ld_imm64` whose immediate names a callback function
/// (`BPF_PSEUDO_FUNC`); rstap's objects put the callback's index there.
pub const PSEUDO_FUNC: u8 = 4;

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    pub fn encode(self) -> [u8; 8] {
        let [o0, o1] = self.off.to_le_bytes();
        let [i0, i1, i2, i3] = self.imm.to_le_bytes();
        [
            self.code,
            (self.src << 4) | (self.dst & 0x0f),
            o0,
            o1,
            i0,
            i1,
            i2,
            i3,
        ]
    }

    pub fn alu_imm(op: Alu, dst: u8, imm: i32) -> Insn {
        Insn::new(ALU64 | op as u8 | K, dst, 0, 0, imm)
    }

    pub fn alu_reg(op: Alu, dst: u8, src: u8) -> Insn {
        Insn::new(ALU64 | op as u8 | X, dst, src, 0, 0)
    }

    /// Signed 64-bit division or modulo (`sdiv`/`smod`, BPF cpu v4).
    pub fn alu_signed(op: Alu, dst: u8, src: u8) -> Insn {
        Insn::new(ALU64 | op as u8 | X, dst, src, 1, 0)
    }

    pub fn mov_imm(dst: u8, imm: i32) -> Insn {
        Insn::alu_imm(Alu::Mov, dst, imm)
    }

    pub fn mov_reg(dst: u8, src: u8) -> Insn {
        Insn::alu_reg(Alu::Mov, dst, src)
    }

    /// A 64-bit constant: two instruction slots.
    pub fn ld_imm64(dst: u8, value: u64) -> [Insn; 2] {
        [
            Insn::new(LD | IMM | Size::DW as u8, dst, 0, 0, value as u32 as i32),
            Insn::new(0, 0, 0, 0, (value >> 32) as u32 as i32),
        ]
    }

    /// The address of map `map` (an index the object's relocations name).
    pub fn ld_map(dst: u8, map: u32) -> [Insn; 2] {
        [
            Insn::new(LD | IMM | Size::DW as u8, dst, PSEUDO_MAP_FD, 0, map as i32),
            Insn::new(0, 0, 0, 0, 0),
        ]
    }

    /// Whether this is the first slot of a `ld_imm64` whose immediate names a
    /// map (its address, or an address in its value).
    pub fn names_map(&self) -> bool {
        self.code == LD | IMM | Size::DW as u8
            && matches!(self.src, PSEUDO_MAP_FD | PSEUDO_MAP_VALUE)
    }

    /// The address of byte `offset` of map `map`'s only value.
    pub fn ld_map_value(dst: u8, map: u32, offset: i32) -> [Insn; 2] {
        [
            Insn::new(
                LD | IMM | Size::DW as u8,
                dst,
                PSEUDO_MAP_VALUE,
                0,
                map as i32,
            ),
            Insn::new(0, 0, 0, 0, offset),
        ]
    }

    /// The address of callback `index` (relocated by the loader).
    pub fn ld_callback(dst: u8, index: u32) -> [Insn; 2] {
        [
            Insn::new(LD | IMM | Size::DW as u8, dst, PSEUDO_FUNC, 0, index as i32),
            Insn::new(0, 0, 0, 0, 0),
        ]
    }

    /// `dst = *(size *)(src + off)`.
    pub fn load(size: Size, dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(LDX | MEM | size as u8, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = src`.
    pub fn store(size: Size, dst: u8, off: i16, src: u8) -> Insn {
        Insn::new(STX | MEM | size as u8, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn store_imm(size: Size, dst: u8, off: i16, imm: i32) -> Insn {
        Insn::new(ST | MEM | size as u8, dst, 0, off, imm)
    }

    /// `lock *(u64 *)(dst + off) += src`.
    pub fn atomic_add(dst: u8, off: i16, src: u8) -> Insn {
        Insn::new(
            STX | ATOMIC | Size::DW as u8,
            dst,
            src,
            off,
            Alu::Add as i32,
        )
    }

    /// `dst` as a big-endian 64-bit number (a byte swap here): its bytes then
    /// compare in memory order.
    pub fn to_big_endian(dst: u8) -> Insn {
        // BPF_ALU | BPF_END | BPF_TO_BE, 64 bits.
        Insn::new(0x04 | 0xd0 | 0x08, dst, 0, 0, 64)
    }

    /// `may_goto`: falls through while the kernel's per-program loop budget
    /// lasts, else jumps `off` ahead. With it at a loop's head the verifier
    /// accepts the loop without walking every iteration.
    pub fn may_goto(off: i16) -> Insn {
        // BPF_JMP | BPF_JCOND, src BPF_MAY_GOTO (0).
        Insn::new(JMP | 0xe0, 0, 0, off, 0)
    }

    pub fn jump(off: i16) -> Insn {
        Insn::new(JMP | Jmp::Ja as u8, 0, 0, off, 0)
    }

    pub fn jump_imm(op: Jmp, dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(JMP | op as u8 | K, dst, 0, off, imm)
    }

    pub fn jump_reg(op: Jmp, dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(JMP | op as u8 | X, dst, src, off, 0)
    }

    /// A helper call by number (`BPF_FUNC_*`).
    pub fn call(helper: i32) -> Insn {
        Insn::new(JMP | 0x80, 0, 0, 0, helper)
    }

    pub fn exit() -> Insn {
        Insn::new(JMP | 0x90, 0, 0, 0, 0)
    }
}

/// The kernel helpers rstap calls (`enum bpf_func_id`).
pub mod helper {
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const MAP_DELETE_ELEM: i32 = 3;
    pub const PROBE_READ: i32 = 4;
    pub const KTIME_GET_NS: i32 = 5;
    pub const GET_SMP_PROCESSOR_ID: i32 = 8;
    pub const GET_CURRENT_PID_TGID: i32 = 14;
    pub const GET_CURRENT_UID_GID: i32 = 15;
    pub const GET_CURRENT_COMM: i32 = 16;
    pub const PERF_EVENT_OUTPUT: i32 = 25;
    pub const GET_CURRENT_TASK: i32 = 35;
    pub const GET_STACK: i32 = 67;
    pub const PROBE_READ_STR: i32 = 45;
    pub const KTIME_GET_BOOT_NS: i32 = 125;
    pub const FOR_EACH_MAP_ELEM: i32 = 164;
    pub const LOOP: i32 = 181;
    pub const RINGBUF_OUTPUT: i32 = 130;
    pub const RINGBUF_RESERVE: i32 = 131;
    pub const RINGBUF_SUBMIT: i32 = 132;
    pub const RINGBUF_DISCARD: i32 = 133;
    pub const PROBE_READ_USER: i32 = 112;
    pub const PROBE_READ_KERNEL: i32 = 113;
    pub const PROBE_READ_USER_STR: i32 = 114;
    pub const PROBE_READ_KERNEL_STR: i32 = 115;
    pub const GET_FUNC_ARG: i32 = 183;
    pub const GET_FUNC_RET: i32 = 184;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_the_kernel_abi() {
        // Checked against the kernel's bpf_insn layout: opcode, dst|src<<4, off, imm.
        assert_eq!(Insn::mov_imm(0, 1).encode(), [0xb7, 0x00, 0, 0, 1, 0, 0, 0]);
        assert_eq!(Insn::exit().encode(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Insn::call(14).encode(), [0x85, 0, 0, 0, 14, 0, 0, 0]);
        assert_eq!(
            Insn::alu_reg(Alu::Add, 1, 2).encode(),
            [0x0f, 0x21, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Insn::load(Size::DW, 1, 10, -8).encode(),
            [0x79, 0xa1, 0xf8, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(
            Insn::store(Size::W, 10, -4, 1).encode(),
            [0x63, 0x1a, 0xfc, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(
            Insn::atomic_add(1, 0, 2).encode(),
            [0xdb, 0x21, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Insn::jump_imm(Jmp::Jeq, 0, 0, 3).encode(),
            [0x15, 0, 3, 0, 0, 0, 0, 0]
        );
        let [lo, hi] = Insn::ld_map(1, 0);
        assert_eq!(lo.encode(), [0x18, 0x11, 0, 0, 0, 0, 0, 0]);
        assert_eq!(hi.encode(), [0; 8]);
        let [lo, hi] = Insn::ld_imm64(2, 0x1122_3344_5566_7788);
        assert_eq!(lo.imm, 0x5566_7788);
        assert_eq!(hi.imm, 0x1122_3344);
        assert_eq!(Insn::alu_signed(Alu::Div, 1, 2).off, 1);
    }
}
