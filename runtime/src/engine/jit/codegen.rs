//! MIR body → cranelift IR. One cranelift block per MIR block, one cranelift
//! variable per long register. The instructions on longs are native code;
//! every other instruction becomes a helper call ([`super::abi`]) that runs it
//! in the interpreter. Each block starts by counting its statements against
//! MAXACTION, as the interpreter does on entering it, and a runtime error in a
//! block goes to its `try`'s catch block or ends the body, as the
//! interpreter's does.
//!
//! Semantics restated here, and only here: stap's long arithmetic (64-bit
//! wrapping, C division with `INT64_MIN / -1` wrapping instead of trapping,
//! shift counts taken mod 64) and comparisons. A division by zero is handed to
//! the interpreter, which raises the error with its own message.

use super::abi::{Ctx, RET_FAULT, RET_NEXT, RET_NONE, Site, SiteKind};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{self, Block, FuncRef, InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use rstap_compiler::hir::BinOp;
use rstap_compiler::mir::{Body, CmpOp, Inst, IterSource, Reg, Term, Ty, UnOp};
use std::mem::offset_of;

/// The helpers, declared in the function being built.
#[derive(Clone, Copy, Debug)]
pub(super) struct Helpers {
    pub exec: FuncRef,
    pub iter_next: FuncRef,
    pub catch: FuncRef,
    pub max_action: FuncRef,
}

/// What was built: the helper calls' sites, and how many instructions went
/// each way.
#[derive(Debug)]
pub(super) struct Built<'p> {
    pub sites: Vec<Site<'p>>,
    pub native: usize,
    pub helpers: usize,
}

/// Builds `body` into `func` (signature: `fn(*mut Ctx) -> i64`).
pub(super) fn build<'p>(
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
    helpers: Helpers,
    body: &'p Body,
    target: TargetFrontendConfig,
) -> Built<'p> {
    let ptr = func.signature.params[0].value_type;
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let ctx = b.block_params(entry)[0];
    let flags = MemFlagsData::trusted();
    let field = |off: usize| i32::try_from(off).unwrap_or(i32::MAX);
    let longs = b
        .ins()
        .load(ptr, flags, ctx, field(offset_of!(Ctx<'_, '_>, longs)));
    let actions = b
        .ins()
        .load(ptr, flags, ctx, field(offset_of!(Ctx<'_, '_>, actions)));
    let max_action = b.ins().load(
        types::I64,
        flags,
        ctx,
        field(offset_of!(Ctx<'_, '_>, max_action)),
    );
    // Long registers start as the runner left them: parameters, else 0.
    let vars: Vec<Option<Variable>> = body
        .regs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (*t == Ty::Long).then(|| {
                let v = b.declare_var(types::I64);
                let init = b.ins().load(types::I64, flags, longs, slot(Reg(i as u32)));
                b.def_var(v, init);
                v
            })
        })
        .collect();
    let blocks: Vec<Block> = body.blocks.iter().map(|_| b.create_block()).collect();
    let fault_exit = b.create_block();
    let max_exit = b.create_block();
    if let Some(first) = blocks.first() {
        b.ins().jump(*first, &[]);
    } else {
        let none = b.ins().iconst(types::I64, RET_NONE);
        b.ins().return_(&[none]);
    }
    let mut g = Gen {
        b,
        vars,
        ctx,
        longs,
        helpers,
        sites: Vec::new(),
        native: 0,
        helper_calls: 0,
    };
    let mut catches = Vec::new();
    for (i, block) in body.blocks.iter().enumerate() {
        g.b.switch_to_block(blocks[i]);
        // Statements counted on entry, as the interpreter counts them.
        let n = g.b.ins().load(types::I64, flags, actions, 0);
        let n = g.b.ins().iadd_imm_s(n, i64::from(block.actions));
        g.b.ins().store(flags, n, actions, 0);
        let over = g.b.ins().icmp(IntCC::UnsignedGreaterThan, n, max_action);
        let go = g.b.create_block();
        g.b.ins().brif(over, max_exit, &[], go, &[]);
        g.b.switch_to_block(go);
        let on_fault = match block.catch {
            Some((handler, msg)) => {
                let catch = g.b.create_block();
                catches.push((catch, handler, msg));
                catch
            }
            None => fault_exit,
        };
        for inst in &block.insts {
            g.inst(inst, on_fault);
        }
        g.term(&block.term, &blocks);
    }
    // A runtime error under a `try`: caught unless no catch may see it.
    for (catch, handler, msg) in catches {
        g.b.switch_to_block(catch);
        let msg =
            g.b.ins()
                .iconst(types::I64, msg.map_or(-1, |r| i64::from(r.0)));
        let call = g.b.ins().call(g.helpers.catch, &[ctx, msg]);
        let uncaught = g.b.inst_results(call)[0];
        g.b.ins()
            .brif(uncaught, fault_exit, &[], blocks[handler.index()], &[]);
    }
    g.b.switch_to_block(max_exit);
    g.b.ins().call(g.helpers.max_action, &[ctx]);
    let fault = g.b.ins().iconst(types::I64, RET_FAULT);
    g.b.ins().return_(&[fault]);
    g.b.switch_to_block(fault_exit);
    let fault = g.b.ins().iconst(types::I64, RET_FAULT);
    g.b.ins().return_(&[fault]);
    g.b.seal_all_blocks();
    g.b.finalize(target);
    Built {
        sites: g.sites,
        native: g.native,
        helpers: g.helper_calls,
    }
}

/// A long register's offset in `Ctx::longs`.
fn slot(r: Reg) -> i32 {
    i32::try_from(r.index() * 8).unwrap_or(i32::MAX)
}

struct Gen<'a, 'p> {
    b: FunctionBuilder<'a>,
    vars: Vec<Option<Variable>>,
    ctx: Value,
    longs: Value,
    helpers: Helpers,
    sites: Vec<Site<'p>>,
    native: usize,
    helper_calls: usize,
}

impl<'p> Gen<'_, 'p> {
    fn long(&self, r: Reg) -> Option<Variable> {
        self.vars.get(r.index()).copied().flatten()
    }

    fn inst(&mut self, inst: &'p Inst, on_fault: Block) {
        let native = match inst {
            Inst::Const { dst, value } => self.long(*dst).map(|d| {
                let v = self.b.ins().iconst(types::I64, *value);
                self.b.def_var(d, v);
            }),
            Inst::Move { dst, src } => self.long(*dst).zip(self.long(*src)).map(|(d, s)| {
                let v = self.b.use_var(s);
                self.b.def_var(d, v);
            }),
            Inst::Unary { dst, op, src } => self.long(*dst).zip(self.long(*src)).map(|(d, s)| {
                let x = self.b.use_var(s);
                let v = match op {
                    UnOp::Neg => self.b.ins().ineg(x),
                    UnOp::BitNot => self.b.ins().bnot(x),
                    UnOp::Not => {
                        let z = self.b.ins().icmp_imm_s(IntCC::Equal, x, 0);
                        self.b.ins().uextend(types::I64, z)
                    }
                };
                self.b.def_var(d, v);
            }),
            Inst::Compare { dst, op, a, b } => self.long3(*dst, *a, *b).map(|(d, x, y)| {
                let x = self.b.use_var(x);
                let y = self.b.use_var(y);
                let c = self.b.ins().icmp(cond(*op), x, y);
                let v = self.b.ins().uextend(types::I64, c);
                self.b.def_var(d, v);
            }),
            Inst::Binary { dst, op, a, b, .. } => match self.long3(*dst, *a, *b) {
                Some((d, x, y)) => self.binary(inst, *op, d, x, y, on_fault),
                None => None,
            },
            _ => None,
        };
        match native {
            Some(()) => self.native += 1,
            None => self.helper(inst, on_fault),
        }
    }

    fn long3(&self, d: Reg, a: Reg, b: Reg) -> Option<(Variable, Variable, Variable)> {
        Some((self.long(d)?, self.long(a)?, self.long(b)?))
    }

    /// stap's integer operators (see the interpreter's `arith`).
    fn binary(
        &mut self,
        inst: &'p Inst,
        op: BinOp,
        d: Variable,
        a: Variable,
        b: Variable,
        on_fault: Block,
    ) -> Option<()> {
        let x = self.b.use_var(a);
        let y = self.b.use_var(b);
        let v = match op {
            BinOp::Add => self.b.ins().iadd(x, y),
            BinOp::Sub => self.b.ins().isub(x, y),
            BinOp::Mul => self.b.ins().imul(x, y),
            BinOp::BitAnd => self.b.ins().band(x, y),
            BinOp::BitOr => self.b.ins().bor(x, y),
            BinOp::BitXor => self.b.ins().bxor(x, y),
            BinOp::Shl | BinOp::Shr | BinOp::UShr => {
                let n = self.b.ins().band_imm_s(y, 63);
                match op {
                    BinOp::Shl => self.b.ins().ishl(x, n),
                    BinOp::Shr => self.b.ins().sshr(x, n),
                    _ => self.b.ins().ushr(x, n),
                }
            }
            BinOp::Div | BinOp::Mod => {
                // A zero divisor: the interpreter raises its error.
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, y, 0);
                let slow = self.b.create_block();
                let fast = self.b.create_block();
                let done = self.b.create_block();
                self.b.ins().brif(zero, slow, &[], fast, &[]);
                self.b.switch_to_block(slow);
                self.helper(inst, on_fault);
                self.b.ins().jump(done, &[]);
                self.b.switch_to_block(fast);
                // x / -1 wraps (x86's idiv would trap on INT64_MIN / -1).
                let minus_one = self.b.ins().icmp_imm_s(IntCC::Equal, y, -1);
                let one = self.b.ins().iconst(types::I64, 1);
                let safe = self.b.ins().select(minus_one, one, y);
                let v = if op == BinOp::Div {
                    let q = self.b.ins().sdiv(x, safe);
                    let neg = self.b.ins().ineg(x);
                    self.b.ins().select(minus_one, neg, q)
                } else {
                    // x % 1 is 0, as x % -1 must be.
                    self.b.ins().srem(x, safe)
                };
                self.b.def_var(d, v);
                self.b.ins().jump(done, &[]);
                self.b.switch_to_block(done);
                return Some(());
            }
            // Lowered to branches and comparisons; never arithmetic.
            _ => return None,
        };
        self.b.def_var(d, v);
        Some(())
    }

    /// `inst` run by the interpreter: the long registers it reads stored, the
    /// helper called, a fault routed, the long it wrote loaded.
    fn helper(&mut self, inst: &'p Inst, on_fault: Block) {
        let mut reads = inst.uses();
        // The keys of a histogram's `foreach` are read, though not listed.
        if let Inst::IterStart { source, .. } = inst
            && let IterSource::Hist { keys, .. } = &**source
        {
            reads.extend(keys.iter().copied());
        }
        let long_in = self.longs_of(reads);
        let long_out = self.longs_of(inst.def());
        for &r in &long_in {
            self.spill(r);
        }
        let site = self.site(SiteKind::Inst(inst), long_in, long_out.clone());
        let call = self.b.ins().call(self.helpers.exec, &[self.ctx, site]);
        let failed = self.b.inst_results(call)[0];
        let ok = self.b.create_block();
        self.b.ins().brif(failed, on_fault, &[], ok, &[]);
        self.b.switch_to_block(ok);
        for r in long_out {
            self.reload(r);
        }
        self.helper_calls += 1;
    }

    fn term(&mut self, term: &'p Term, blocks: &[Block]) {
        match term {
            Term::Jump(to) => {
                self.b.ins().jump(blocks[to.index()], &[]);
            }
            Term::Branch {
                cond,
                then,
                otherwise,
            } => match self.long(*cond) {
                Some(c) => {
                    let c = self.b.use_var(c);
                    self.b
                        .ins()
                        .brif(c, blocks[then.index()], &[], blocks[otherwise.index()], &[]);
                }
                // A string reads as 0, as in the interpreter.
                None => {
                    self.b.ins().jump(blocks[otherwise.index()], &[]);
                }
            },
            Term::Return(r) => {
                let code = match r {
                    Some(r) => {
                        if self.long(*r).is_some() {
                            self.spill(*r);
                        }
                        i64::from(r.0) + 1
                    }
                    None => RET_NONE,
                };
                let code = self.b.ins().iconst(types::I64, code);
                self.b.ins().return_(&[code]);
            }
            Term::Next => {
                let code = self.b.ins().iconst(types::I64, RET_NEXT);
                self.b.ins().return_(&[code]);
            }
            Term::IterNext {
                iter,
                keys,
                value,
                body,
                done,
            } => {
                let written = keys.iter().flatten().chain(value).copied();
                let long_out = self.longs_of(written);
                let kind = SiteKind::IterNext {
                    iter: *iter,
                    keys,
                    value: *value,
                };
                let site = self.site(kind, Vec::new(), long_out.clone());
                let call = self.b.ins().call(self.helpers.iter_next, &[self.ctx, site]);
                let more = self.b.inst_results(call)[0];
                let next = self.b.create_block();
                self.b
                    .ins()
                    .brif(more, next, &[], blocks[done.index()], &[]);
                self.b.switch_to_block(next);
                for r in long_out {
                    self.reload(r);
                }
                self.b.ins().jump(blocks[body.index()], &[]);
                self.helper_calls += 1;
            }
        }
    }

    fn longs_of(&self, regs: impl IntoIterator<Item = Reg>) -> Vec<Reg> {
        let mut v: Vec<Reg> = regs
            .into_iter()
            .filter(|r| self.long(*r).is_some())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    fn site(&mut self, what: SiteKind<'p>, long_in: Vec<Reg>, long_out: Vec<Reg>) -> Value {
        let index = self.sites.len() as i64;
        self.sites.push(Site {
            what,
            long_in,
            long_out,
        });
        self.b.ins().iconst(types::I64, index)
    }

    /// A long register's variable stored where helpers read it.
    fn spill(&mut self, r: Reg) {
        if let Some(v) = self.long(r) {
            let x = self.b.use_var(v);
            self.b
                .ins()
                .store(MemFlagsData::trusted(), x, self.longs, slot(r));
        }
    }

    /// A long register's variable loaded from where a helper left it.
    fn reload(&mut self, r: Reg) {
        if let Some(v) = self.long(r) {
            let x = self
                .b
                .ins()
                .load(types::I64, MemFlagsData::trusted(), self.longs, slot(r));
            self.b.def_var(v, x);
        }
    }
}

fn cond(op: CmpOp) -> IntCC {
    match op {
        CmpOp::Eq => IntCC::Equal,
        CmpOp::Ne => IntCC::NotEqual,
        CmpOp::Lt => IntCC::SignedLessThan,
        CmpOp::Le => IntCC::SignedLessThanOrEqual,
        CmpOp::Gt => IntCC::SignedGreaterThan,
        CmpOp::Ge => IntCC::SignedGreaterThanOrEqual,
    }
}

/// The pointer type of the signature `fn(*mut Ctx) -> i64` on this target.
pub(super) fn signature(sig: &mut ir::Signature, ptr: Type) {
    sig.params.push(ir::AbiParam::new(ptr));
    sig.returns.push(ir::AbiParam::new(types::I64));
}
