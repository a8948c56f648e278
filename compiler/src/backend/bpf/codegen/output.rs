//! Records to the output ring: print calls, `exit()`, warnings and runtime
//! errors (which end the handler, or go to the enclosing `try`'s catch).

use super::stack::Deferred;
use super::{
    ERROR_RECORD, EXIT_RECORD, ErrorMsg, ErrorSite, Gen, PrintSite, SYSTEM_RECORD, WARN_RECORD,
    output_id,
};
use crate::backend::bpf::insn::{Alu, Insn, Jmp, Size, helper};
use crate::backend::bpf::layout::Col;
use crate::hir::PrintKind;
use crate::mir::{self, Reg};
use rstap_grammar::Span;

/// What follows a record's first word.
#[derive(Clone, Copy)]
enum Field {
    /// A script register: a long's word, or a string's region.
    Reg(Reg),
    /// A machine register saved in r8 or r9 before the record was reserved.
    Saved(u8),
    /// The kernel or user stack, taken into the record (`print_backtrace()`).
    Stack(Deferred),
}

impl Gen<'_> {
    /// Reports runtime error `msg` at `at`.
    pub(super) fn raise(&mut self, msg: &str, at: Span) {
        self.fail(ErrorMsg::Fixed(msg.to_string()), &[], Some(at));
    }

    /// Reports runtime error `msg`, which stap gives without a location and
    /// no `catch` sees (MAXACTION).
    pub(super) fn raise_uncatchable(&mut self, msg: &str) {
        self.report_and_stop(ErrorMsg::Fixed(msg.to_string()), &[], None);
    }

    /// Reports a memory fault at `at`: the address in r1, the helper's error
    /// code in r2.
    pub(super) fn raise_fault(&mut self, msg: ErrorMsg, at: Span) {
        self.lend();
        self.emit(Insn::mov_reg(8, 1));
        self.emit(Insn::mov_reg(9, 2));
        self.fail(msg, &[Field::Saved(8), Field::Saved(9)], Some(at));
        self.give_back();
    }

    /// `error(msg)`.
    pub(super) fn script_error(&mut self, msg: Reg, at: Span) {
        let bytes = 8 * self.words(msg);
        self.fail(ErrorMsg::Text(bytes), &[Field::Reg(msg)], Some(at));
    }

    /// A runtime error: in a `try`, its message into the catch variable and
    /// on to the catch block; else an error record, and the handler ends.
    fn fail(&mut self, msg: ErrorMsg, fields: &[Field], at: Option<Span>) {
        if let Some((catch, var)) = self.body.blocks[self.block].catch {
            if let Some(var) = var {
                match (&msg, fields) {
                    (ErrorMsg::Text(_), [Field::Reg(text)]) => {
                        let words = self.words(var);
                        self.copy_str(self.region_of(var), *text, 8 * words);
                    }
                    _ => {
                        let text = msg.without_operands();
                        self.literal(var, text.as_bytes());
                    }
                }
            }
            self.reload_if_lent();
            self.jump_to(Insn::jump(0), catch.index());
            return;
        }
        self.report_and_stop(msg, fields, at);
    }

    /// An error record, and the handler ends.
    fn report_and_stop(&mut self, msg: ErrorMsg, fields: &[Field], at: Option<Span>) {
        let site = index_of(&mut self.errors, ErrorSite { msg, at }) + ERROR_RECORD;
        self.record(site, fields);
        self.emit(Insn::mov_imm(0, 0));
        self.emit(Insn::exit());
    }

    /// `warn(msg)`: a warning record; the handler goes on.
    pub(super) fn warn(&mut self, msg: Reg, at: Span) {
        self.text_record(WARN_RECORD, msg, at);
    }

    /// `system(cmd)`: a record asking user space to run `cmd`; the handler
    /// goes on.
    pub(super) fn system(&mut self, cmd: Reg, at: Span) {
        self.text_record(SYSTEM_RECORD, cmd, at);
    }

    /// A record of one string for user space, under a site of its own kind
    /// (`base` plus the site's index).
    fn text_record(&mut self, base: i64, text: Reg, at: Span) {
        let bytes = 8 * self.words(text);
        let site = ErrorSite {
            msg: ErrorMsg::Text(bytes),
            at: Some(at),
        };
        let site = index_of(&mut self.errors, site) + base;
        self.record(site, &[Field::Reg(text)]);
    }

    /// `exit()`: asks the run to stop; the handler goes on.
    pub(super) fn exit_record(&mut self) {
        self.record(EXIT_RECORD, &[]);
        // No handler starts after this one (see `unless_exiting`).
        self.target_slot(super::EXITING);
        self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 2));
        self.emit(Insn::mov_imm(1, 1));
        self.emit(Insn::store(Size::DW, 0, 0, 1));
    }

    /// A print record: the site's index, then each argument in its column.
    pub(super) fn print(&mut self, spec: &mir::PrintSpec, args: &[Reg]) {
        let cols = args
            .iter()
            .map(|&a| {
                if self.is_str(a) {
                    Col::Str(8 * self.words(a))
                } else {
                    Col::Long
                }
            })
            .collect();
        let site = PrintSite {
            spec: spec.clone(),
            args: cols,
            deferred: args.iter().map(|&a| self.deferred_of(a)).collect(),
        };
        let site = index_of(&mut self.prints, site);
        let fields: Vec<Field> = args.iter().map(|&a| Field::Reg(a)).collect();
        self.record(site, &fields);
    }

    /// `print_backtrace()`: a print record of the kernel stack, which the
    /// runtime renders as stap's lines.
    pub(super) fn print_stack(&mut self, how: Deferred) {
        let site = i64::try_from(self.prints.len()).unwrap_or(i64::MAX);
        self.prints.push(PrintSite {
            spec: mir::PrintSpec {
                kind: PrintKind::Print,
                format: Vec::new(),
            },
            args: vec![Col::Str(how.column())],
            deferred: vec![Some(how)],
        });
        self.record(site, &[Field::Stack(how)]);
    }

    /// A record into the output ring: `first`, then `fields`. No room counts
    /// as a lost record.
    fn record(&mut self, first: i64, fields: &[Field]) {
        let width = |g: &Gen<'_>, f: &Field| match f {
            Field::Reg(r) if g.is_str(*r) => 8 * g.words(*r),
            Field::Stack(how) => how.column(),
            _ => 8,
        };
        let size: u32 = 8 + fields.iter().map(|f| width(self, f)).sum::<u32>();
        let output = output_id(self.shared.prog.globals.len());
        // r8 and r9 may hold saved fields: the record's address goes in r0
        // until the fields are written, and string copies (helper calls) come
        // last, from r8 once the saved fields are in.
        self.emit2(Insn::ld_map(1, output));
        self.emit(Insn::mov_imm(2, i32::try_from(size).unwrap_or(i32::MAX)));
        self.emit(Insn::mov_imm(3, 0));
        self.emit(Insn::call(helper::RINGBUF_RESERVE));
        let lost = self.forward(Insn::jump_imm(Jmp::Jeq, 0, 0, 0));
        self.emit2(Insn::ld_imm64(1, first as u64));
        self.emit(Insn::store(Size::DW, 0, 0, 1));
        let mut at = 8u32;
        let mut strings = Vec::new();
        for f in fields {
            let off = i16::try_from(at).unwrap_or(i16::MAX);
            match *f {
                Field::Saved(reg) => self.emit(Insn::store(Size::DW, 0, off, reg)),
                Field::Reg(r) if self.is_str(r) => strings.push((at, Ok(r))),
                Field::Stack(how) => strings.push((at, Err(how))),
                Field::Reg(r) => {
                    self.load(1, r);
                    self.emit(Insn::store(Size::DW, 0, off, 1));
                }
            }
            at += width(self, f);
        }
        // The record's address must outlive the string copies' helper calls.
        let keep = if strings.is_empty() { 0 } else { 8 };
        if keep == 8 {
            self.lend();
            self.emit(Insn::mov_reg(8, 0));
        }
        for (at, r) in strings {
            let r = match r {
                Ok(r) => r,
                Err(how) => {
                    let mut off = i16::try_from(at).unwrap_or(i16::MAX);
                    let mut words = how.column() / 8;
                    if how.is_user() {
                        self.store_pid(8, off);
                        (off, words) = (off + 8, words - 1);
                    }
                    self.get_stack(8, off, words, how.is_user());
                    continue;
                }
            };
            self.emit(Insn::mov_reg(1, 8));
            self.emit(Insn::alu_imm(Alu::Add, 1, i32::try_from(at).unwrap_or(0)));
            self.emit(Insn::mov_imm(
                2,
                i32::try_from(8 * self.words(r)).unwrap_or(0),
            ));
            self.ptr(3, self.region_of(r));
            self.emit(Insn::call(helper::PROBE_READ_KERNEL));
        }
        self.emit(Insn::mov_reg(1, keep));
        self.emit(Insn::mov_imm(2, 0));
        self.emit(Insn::call(helper::RINGBUF_SUBMIT));
        if keep == 8 {
            self.give_back();
        }
        let done = self.forward(Insn::jump(0));
        self.land(lost);
        // Count the record the ring had no room for.
        let key = self.bottom + 32;
        self.emit(Insn::store_imm(Size::W, 10, key, 0));
        self.emit2(Insn::ld_map(1, output + 1));
        self.emit(Insn::mov_reg(2, 10));
        self.emit(Insn::alu_imm(Alu::Add, 2, i32::from(key)));
        self.emit(Insn::call(helper::MAP_LOOKUP_ELEM));
        self.emit(Insn::jump_imm(Jmp::Jeq, 0, 0, 3));
        self.emit(Insn::load(Size::DW, 1, 0, 0));
        self.emit(Insn::alu_imm(Alu::Add, 1, 1));
        self.emit(Insn::store(Size::DW, 0, 0, 1));
        self.land(done);
    }
}

/// The index of `site` among `sites`, added if new. Handlers that raise the
/// same error or print the same way share one site, so the probes of a
/// wildcard compile to the same instructions and load as one program.
fn index_of<T: PartialEq>(sites: &mut Vec<T>, site: T) -> i64 {
    let index = sites.iter().position(|s| *s == site).unwrap_or_else(|| {
        sites.push(site);
        sites.len() - 1
    });
    i64::try_from(index).unwrap_or(i64::MAX)
}
