//! Globals written from kernel context: `a[k] = v`, with stap's overflow
//! error when the array is full.

use super::stats::E2BIG;
use super::{CodegenError, Gen};
use crate::backend::bpf::insn::{Insn, Jmp, helper};
use crate::mir::Reg;
use rstap_grammar::Span;

impl Gen<'_> {
    /// `g[keys] = src`; a new key in a full array raises stap's overflow error.
    pub(super) fn map_write(
        &mut self,
        g: usize,
        keys: &[Reg],
        src: Reg,
        at: Span,
    ) -> Result<(), CodegenError> {
        let map = self.map(g)?;
        let overflow = self.maps[g]
            .as_ref()
            .filter(|m| !m.wrap)
            .map(|m| m.overflow_message());
        let key = self.key(g, keys)?;
        let value = self.stage_value(src);
        self.emit2(Insn::ld_map(1, map));
        self.ptr(2, key);
        self.ptr(3, value);
        self.emit(Insn::mov_imm(4, 0));
        self.emit(Insn::call(helper::MAP_UPDATE_ELEM));
        if let Some(msg) = overflow {
            let room = self.forward(Insn::jump_imm(Jmp::Jne, 0, E2BIG, 0));
            self.raise(&msg, at);
            self.land(room);
        }
        Ok(())
    }
}
