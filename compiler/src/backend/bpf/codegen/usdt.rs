//! `$argN` of a USDT mark: each argument is where the mark's SDT note says,
//! in x86-64 AT&T terms — a register (`-4@%edi`), memory at a register plus a
//! displacement (`8@-8(%rbp)`), or a constant (`4@$5`) — with its size and
//! signedness. The uprobe at the mark sees the task's `struct pt_regs`.

use super::{CodegenError, Gen};
use crate::backend::bpf::insn::{Alu, Insn, Size, helper};
use crate::elf::{UsdtArg, UsdtLoc};
use crate::hir::PointKind;
use crate::kernel::KernelInfo;
use crate::mir::{self, Reg};

/// The arguments of the mark probe `probe` fires at (none for other probes).
pub(super) fn mark_args(
    probe: &mir::Probe,
    kernel: &dyn KernelInfo,
) -> Result<Vec<UsdtArg>, CodegenError> {
    let PointKind::Usdt {
        binary,
        provider,
        name,
        offset,
        ..
    } = &probe.kind
    else {
        return Ok(Vec::new());
    };
    let bin = kernel
        .user_binary(binary)
        .map_err(|e| CodegenError::new(e.0, Some(probe.span)))?;
    bin.usdt
        .iter()
        .find(|n| n.file_offset == *offset && n.provider == *provider && n.name == *name)
        .map(|n| n.args.clone())
        .ok_or_else(|| {
            CodegenError::new(
                format!("{binary} no longer has the mark {provider}:{name} at offset {offset:#x}"),
                Some(probe.span),
            )
        })
}

/// Where `struct pt_regs` keeps a general-purpose register (any width's
/// name), and how far right its value sits (8 for `%ah`...).
fn pt_regs_slot(name: &str) -> Option<(i16, i32)> {
    const LEGACY: [(&str, i16); 8] = [
        ("ax", 80),
        ("bx", 40),
        ("cx", 88),
        ("dx", 96),
        ("si", 104),
        ("di", 112),
        ("bp", 32),
        ("sp", 152),
    ];
    const NUMBERED: [i16; 8] = [72, 64, 56, 48, 24, 16, 8, 0];
    if name == "rip" {
        return Some((128, 0));
    }
    if let Some(n) = name.strip_prefix('r')
        && let Ok(k) = n.trim_end_matches(['d', 'w', 'b']).parse::<usize>()
    {
        return NUMBERED.get(k.checked_sub(8)?).map(|&off| (off, 0));
    }
    let core = name
        .strip_prefix('r')
        .or_else(|| name.strip_prefix('e'))
        .unwrap_or(name);
    if let Some((_, off)) = LEGACY.iter().find(|(r, _)| *r == core) {
        return Some((*off, 0));
    }
    // Byte registers: `al`, `sil`... the low byte; `ah`... the second.
    let (stem, high) = match core.strip_suffix('l') {
        Some(s) => (s, false),
        None => (core.strip_suffix('h')?, true),
    };
    let full = if stem.len() == 1 {
        format!("{stem}x")
    } else {
        stem.to_string()
    };
    let (_, off) = LEGACY.iter().find(|(r, _)| *r == full)?;
    Some((*off, if high { 8 } else { 0 }))
}

impl Gen<'_> {
    /// `dst` = `$argN` (1-based) of the mark.
    pub(super) fn mark_arg(&mut self, dst: Reg, n: usize) -> Result<(), CodegenError> {
        let Some(arg) = n.checked_sub(1).and_then(|i| self.marks.get(i)).cloned() else {
            return self.unsupported(&format!("$arg{n} of this mark"), None);
        };
        match &arg.loc {
            UsdtLoc::Imm(v) => {
                self.emit2(Insn::ld_imm64(1, *v as u64));
                self.store(dst, 1);
                return Ok(());
            }
            UsdtLoc::Reg(r) => {
                let Some((off, shift)) = pt_regs_slot(r) else {
                    return self.unsupported(&format!("the SDT register %{r}"), None);
                };
                self.emit(Insn::load(Size::DW, 1, 6, off));
                if shift > 0 {
                    self.emit(Insn::alu_imm(Alu::Rsh, 1, shift));
                }
            }
            UsdtLoc::Mem { base, offset } => {
                let Some((off, 0)) = pt_regs_slot(base) else {
                    return self.unsupported(&format!("the SDT base register %{base}"), None);
                };
                let Ok(disp) = i32::try_from(*offset) else {
                    return self.unsupported(&format!("the SDT displacement {offset}"), None);
                };
                // A fault leaves 0, as the zeroed word it reads into.
                let tmp = self.bottom + 24;
                self.emit(Insn::store_imm(Size::DW, 10, tmp, 0));
                self.emit(Insn::load(Size::DW, 3, 6, off));
                self.emit(Insn::alu_imm(Alu::Add, 3, disp));
                self.emit(Insn::mov_reg(1, 10));
                self.emit(Insn::alu_imm(Alu::Add, 1, i32::from(tmp)));
                self.emit(Insn::mov_imm(2, i32::from(arg.size)));
                self.emit(Insn::call(helper::PROBE_READ_USER));
                self.emit(Insn::load(Size::DW, 1, 10, tmp));
            }
        }
        let bits = 8 * i32::from(arg.size);
        if bits < 64 {
            let shift = 64 - bits;
            self.emit(Insn::alu_imm(Alu::Lsh, 1, shift));
            self.emit(Insn::alu_imm(
                if arg.signed { Alu::Arsh } else { Alu::Rsh },
                1,
                shift,
            ));
        }
        self.store(dst, 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::pt_regs_slot;

    #[test]
    fn every_width_of_a_register_is_its_pt_regs_slot() {
        for name in ["rax", "eax", "ax", "al"] {
            assert_eq!(pt_regs_slot(name), Some((80, 0)), "{name}");
        }
        assert_eq!(pt_regs_slot("ah"), Some((80, 8)));
        assert_eq!(pt_regs_slot("sil"), Some((104, 0)));
        assert_eq!(pt_regs_slot("edi"), Some((112, 0)));
        assert_eq!(pt_regs_slot("rbp"), Some((32, 0)));
        assert_eq!(pt_regs_slot("r8"), Some((72, 0)));
        assert_eq!(pt_regs_slot("r12d"), Some((24, 0)));
        assert_eq!(pt_regs_slot("r15b"), Some((0, 0)));
        assert_eq!(pt_regs_slot("r16"), None);
    }
}
