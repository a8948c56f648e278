//! Removes instructions no path reaches (the verifier refuses them): what
//! follows an unconditional runtime error, or a jump to a catch block.

use crate::backend::bpf::insn::Insn;

const LD_IMM64: u8 = 0x18;
const JA: u8 = 0x05;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;

/// The program without its unreachable instructions, jumps re-aimed.
pub(super) fn prune(insns: Vec<Insn>) -> Vec<Insn> {
    let n = insns.len();
    let target = |i: usize| {
        usize::try_from(i64::try_from(i).unwrap_or(0) + 1 + i64::from(insns[i].off)).ok()
    };
    let mut live = vec![false; n];
    let mut work = vec![0usize];
    while let Some(i) = work.pop() {
        if i >= n || std::mem::replace(&mut live[i], true) {
            continue;
        }
        let code = insns[i].code;
        match code {
            LD_IMM64 => {
                if i + 1 < n {
                    live[i + 1] = true;
                }
                work.push(i + 2);
            }
            EXIT => {}
            JA => work.extend(target(i)),
            _ if is_conditional(code) => {
                work.push(i + 1);
                work.extend(target(i));
            }
            _ => work.push(i + 1),
        }
    }
    if live.iter().all(|&l| l) {
        return insns;
    }
    // New index of each kept instruction.
    let mut index = vec![0usize; n + 1];
    let mut next = 0;
    for i in 0..n {
        index[i] = next;
        if live[i] {
            next += 1;
        }
    }
    index[n] = next;
    let mut out = Vec::with_capacity(next);
    for i in 0..n {
        if !live[i] {
            continue;
        }
        let mut ins = insns[i];
        if ins.code == JA || is_conditional(ins.code) {
            let to = target(i).map_or(next, |t| index[t.min(n)]);
            let off = i64::try_from(to).unwrap_or(0) - i64::try_from(index[i]).unwrap_or(0) - 1;
            ins.off = i16::try_from(off).unwrap_or(i16::MAX);
        }
        out.push(ins);
    }
    out
}

/// A conditional jump (class JMP, not call, exit or ja; `may_goto` is one).
fn is_conditional(code: u8) -> bool {
    code & 0x07 == 0x05 && code != JA && code != CALL && code != EXIT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::bpf::insn::Jmp;

    #[test]
    fn dead_code_goes_and_jumps_over_it_are_re_aimed() {
        let insns = vec![
            Insn::mov_imm(0, 0),
            Insn::jump_imm(Jmp::Jeq, 0, 0, 3),
            Insn::mov_imm(0, 1),
            Insn::exit(),
            Insn::mov_imm(0, 2), // dead
            Insn::mov_imm(0, 3),
            Insn::exit(),
        ];
        let out = prune(insns.clone());
        assert_eq!(out.len(), 6);
        assert_eq!(out[1].off, 2, "still lands on `mov r0, 3`");
        assert_eq!(out[4], insns[5]);
        let whole = vec![Insn::mov_imm(0, 0), Insn::exit()];
        assert_eq!(prune(whole.clone()), whole);
    }
}
