//! Script function calls inlined into one handler body, for the BPF backend:
//! a kernel-context program cannot call script functions, so every
//! `Inst::Call` becomes a copy of the callee's blocks, with the semantics the
//! user-space engine gives a call:
//!
//! - the callee's registers are fresh ones of the caller, zeroed at each call
//!   (locals start at 0 or "" every time) and its parameters receive the
//!   arguments;
//! - `return r` moves `r` into the call's destination and goes on after the
//!   call; falling off the end gives 0 or "" by the function's type;
//! - `next` runs the next overload (`Function::next`) on the same arguments, at
//!   the same depth; with none left it raises `all functions exhausted` at the
//!   call;
//! - a call deeper than MAXNESTING raises `MAXNESTING exceeded` at the call;
//! - errors the callee does not catch go where errors of the calling block go;
//! - each block keeps its `actions`, so MAXACTION counts what the engine counts.
//!
//! Runtime errors the pass introduces are `error("literal")` in MIR form, so
//! the engine and the backend raise them as they raise the script's own.
//! Recursion cannot be inlined and is refused, naming the function.

use super::{At, Block, BlockId, Body, FuncId, Inst, IterId, IterSource, Program, Reg, Term, Ty};
use crate::builtins::Builtin;

/// Why a body's calls cannot be inlined: a sentence, at the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineError {
    pub msg: String,
    pub at: At,
}

/// `body` with every function call replaced by the callee's code. Calls nested
/// `max_nesting` deep raise MAXNESTING instead of running.
pub fn inline_calls(prog: &Program, body: &Body, max_nesting: usize) -> Result<Body, InlineError> {
    inline_calls_but(prog, body, max_nesting, &|_| false)
}

/// Whether `body` calls a function: [`inline_calls`] would change it.
pub fn needs_inlining(body: &Body) -> bool {
    calls_any(body, &|_| false)
}

fn calls_any(body: &Body, keep: &dyn Fn(FuncId) -> bool) -> bool {
    body.blocks
        .iter()
        .flat_map(|b| &b.insts)
        .any(|i| matches!(i, Inst::Call { func, .. } if !keep(*func)))
}

/// [`inline_calls`], except that calls of the functions `keep` picks stay
/// calls.
pub fn inline_calls_but(
    prog: &Program,
    body: &Body,
    max_nesting: usize,
    keep: &dyn Fn(FuncId) -> bool,
) -> Result<Body, InlineError> {
    // With no call to inline the copy would be the body itself.
    if !calls_any(body, keep) {
        return Ok(body.clone());
    }
    let mut inliner = Inliner {
        prog,
        keep,
        max_nesting,
        out: Body {
            regs: body.regs.clone(),
            blocks: Vec::new(),
            iters: body.iters,
            names: body.names.clone(),
        },
        stack: Vec::new(),
        message: None,
    };
    inliner.placeholders(body.blocks.len());
    let mut handler = Frame {
        body,
        regs: 0,
        blocks: 0,
        iters: 0,
        catch: None,
        depth: 0,
        exit: Exit::Handler,
    };
    inliner.copy(&mut handler)?;
    Ok(inliner.out)
}

struct Inliner<'p> {
    prog: &'p Program,
    keep: &'p dyn Fn(FuncId) -> bool,
    max_nesting: usize,
    out: Body,
    /// The functions being inlined, outermost first: calling one of them again
    /// is recursion.
    stack: Vec<FuncId>,
    /// The register of the pass's error messages, one for the whole body so
    /// the errors cost one stack slot between them.
    message: Option<Reg>,
}

/// Where the copy of one body sits in the output, and where its ends lead.
struct Frame<'b> {
    body: &'b Body,
    /// Offsets of the body's registers, blocks and iterations in the output.
    regs: u32,
    blocks: u32,
    iters: u32,
    /// The calling block's catch: where errors go that the body does not catch.
    catch: Option<(BlockId, Option<Reg>)>,
    /// Function frames active while the body runs: 0 for the handler itself.
    depth: usize,
    exit: Exit,
}

enum Exit {
    /// The handler's own body: `return` and `next` end it.
    Handler,
    /// An inlined call of a function returning `ret`.
    Call {
        site: Site,
        ret: Option<Ty>,
        /// Where `next` goes, once some `next` needed it.
        next: Option<BlockId>,
    },
}

/// One call in the output: an `Inst::Call` and where it sits.
struct Site {
    func: FuncId,
    args: Vec<Reg>,
    dst: Option<Reg>,
    /// The block after the call.
    cont: BlockId,
    /// The calling block's catch.
    catch: Option<(BlockId, Option<Reg>)>,
    at: At,
}

impl Frame<'_> {
    fn reg(&self, r: Reg) -> Reg {
        Reg(self.regs + r.0)
    }

    fn block(&self, b: BlockId) -> BlockId {
        BlockId(self.blocks + b.0)
    }

    /// `inst` in the output's registers and iterations.
    fn rename(&self, inst: &Inst) -> Inst {
        let mut inst = inst.clone();
        for_each_reg(&mut inst, |r| *r = self.reg(*r));
        if let Inst::IterStart { iter, .. } = &mut inst {
            *iter = IterId(self.iters + iter.0);
        }
        inst
    }
}

impl Inliner<'_> {
    fn block_id(&self) -> BlockId {
        BlockId(u32::try_from(self.out.blocks.len()).unwrap_or(u32::MAX))
    }

    fn new_block(&mut self, catch: Option<(BlockId, Option<Reg>)>) -> BlockId {
        let id = self.block_id();
        self.out.blocks.push(Block {
            insts: Vec::new(),
            term: Term::Return(None),
            actions: 0,
            catch,
        });
        id
    }

    /// `n` blocks for a body's copy to fill; the first one's id.
    fn placeholders(&mut self, n: usize) -> u32 {
        let first = self.block_id().0;
        for _ in 0..n {
            self.new_block(None);
        }
        first
    }

    fn new_reg(&mut self, ty: Ty) -> Reg {
        self.out.regs.push(ty);
        Reg(u32::try_from(self.out.regs.len() - 1).unwrap_or(u32::MAX))
    }

    /// Copies `frame`'s body into its placeholder blocks, inlining its calls.
    fn copy(&mut self, frame: &mut Frame<'_>) -> Result<(), InlineError> {
        let body = frame.body;
        for (k, block) in body.blocks.iter().enumerate() {
            let catch = block
                .catch
                .map(|(h, msg)| (frame.block(h), msg.map(|m| frame.reg(m))))
                .or(frame.catch);
            let mut cur = frame.block(BlockId(u32::try_from(k).unwrap_or(u32::MAX)));
            self.out.blocks[cur.index()] = Block {
                insts: Vec::new(),
                term: Term::Return(None),
                actions: block.actions,
                catch,
            };
            for inst in &block.insts {
                match frame.rename(inst) {
                    Inst::Call {
                        dst,
                        func,
                        args,
                        at,
                    } if !(self.keep)(func) => {
                        let site = Site {
                            func,
                            args,
                            dst,
                            cont: self.new_block(catch),
                            catch,
                            at,
                        };
                        let cont = site.cont;
                        let entry = self.call(site, frame.depth)?;
                        self.out.blocks[cur.index()].term = Term::Jump(entry);
                        cur = cont;
                    }
                    inst => self.out.blocks[cur.index()].insts.push(inst),
                }
            }
            let term = self.term(frame, &block.term, cur)?;
            self.out.blocks[cur.index()].term = term;
        }
        Ok(())
    }

    /// A call made by a body `depth` function frames deep; the block that
    /// starts it.
    fn call(&mut self, site: Site, depth: usize) -> Result<BlockId, InlineError> {
        self.refuse_recursion(site.func, site.at)?;
        if depth >= self.max_nesting {
            return Ok(self.error_block("MAXNESTING exceeded", site.at, site.catch));
        }
        self.overload(site, depth + 1)
    }

    fn refuse_recursion(&self, func: FuncId, at: At) -> Result<(), InlineError> {
        if !self.stack.contains(&func) {
            return Ok(());
        }
        let name = self
            .prog
            .functions
            .get(func.index())
            .map_or("?", |f| f.name.as_str());
        Err(InlineError {
            msg: format!("recursive function '{name}' cannot run in a kernel-context probe"),
            at,
        })
    }

    /// The function a call site names (one overload of the call), its body
    /// running `depth` frames deep; the block that starts it.
    fn overload(&mut self, site: Site, depth: usize) -> Result<BlockId, InlineError> {
        let (prog, func) = (self.prog, site.func);
        let Some(f) = prog.functions.get(func.index()) else {
            // The engine treats a call of no function as returning nothing.
            return Ok(site.cont);
        };
        self.refuse_recursion(func, site.at)?;
        self.stack.push(func);
        let regs = u32::try_from(self.out.regs.len()).unwrap_or(u32::MAX);
        self.out.regs.extend_from_slice(&f.body.regs);
        self.out.names.extend(
            f.body
                .names
                .iter()
                .map(|(r, n)| (Reg(regs + r.0), format!("{}.{n}", f.name))),
        );
        let iters = u32::try_from(self.out.iters).unwrap_or(u32::MAX);
        self.out.iters += f.body.iters;
        let entry = self.new_block(site.catch);
        let blocks = self.placeholders(f.body.blocks.len());
        let mut prologue = Vec::new();
        for (r, _) in &f.body.names {
            if !f.params.contains(r) {
                prologue.push(zero(Reg(regs + r.0), f.body.ty(*r)));
            }
        }
        for (p, a) in f.params.iter().zip(&site.args) {
            prologue.push(Inst::Move {
                dst: Reg(regs + p.0),
                src: *a,
            });
        }
        self.out.blocks[entry.index()].insts = prologue;
        self.out.blocks[entry.index()].term = Term::Jump(BlockId(blocks));
        let mut frame = Frame {
            body: &f.body,
            regs,
            blocks,
            iters,
            catch: site.catch,
            depth,
            exit: Exit::Call {
                site,
                ret: f.ret,
                next: None,
            },
        };
        self.copy(&mut frame)?;
        self.stack.pop();
        Ok(entry)
    }

    /// `t` of `frame`'s body in the output; `cur` is the block it ends, which
    /// gets a return value's move.
    fn term(&mut self, frame: &mut Frame<'_>, t: &Term, cur: BlockId) -> Result<Term, InlineError> {
        Ok(match t {
            Term::Jump(b) => Term::Jump(frame.block(*b)),
            Term::Branch {
                cond,
                then,
                otherwise,
            } => Term::Branch {
                cond: frame.reg(*cond),
                then: frame.block(*then),
                otherwise: frame.block(*otherwise),
            },
            Term::IterNext {
                iter,
                keys,
                value,
                body,
                done,
            } => Term::IterNext {
                iter: IterId(frame.iters + iter.0),
                keys: keys.iter().map(|k| k.map(|k| frame.reg(k))).collect(),
                value: value.map(|v| frame.reg(v)),
                body: frame.block(*body),
                done: frame.block(*done),
            },
            Term::Return(r) => match &frame.exit {
                Exit::Handler => Term::Return(r.map(|r| frame.reg(r))),
                Exit::Call { site, ret, .. } => {
                    let value = match (site.dst, r) {
                        (Some(d), Some(r)) => Some(Inst::Move {
                            dst: d,
                            src: frame.reg(*r),
                        }),
                        (Some(d), None) => ret.map(|t| zero(d, t)),
                        (None, _) => None,
                    };
                    self.out.blocks[cur.index()].insts.extend(value);
                    Term::Jump(site.cont)
                }
            },
            Term::Next => match &mut frame.exit {
                Exit::Handler => Term::Next,
                Exit::Call { site, next, .. } => Term::Jump(match *next {
                    Some(b) => b,
                    None => {
                        let b = self.next_overload(site, frame.depth)?;
                        *next = Some(b);
                        b
                    }
                }),
            },
        })
    }

    /// Where `next` goes in a call: the next overload with the same arguments
    /// at the same depth, or the error of having none.
    fn next_overload(&mut self, site: &Site, depth: usize) -> Result<BlockId, InlineError> {
        let later = self
            .prog
            .functions
            .get(site.func.index())
            .and_then(|f| f.next);
        match later {
            Some(n) => {
                let again = Site {
                    func: n,
                    args: site.args.clone(),
                    ..*site
                };
                self.overload(again, depth)
            }
            None => Ok(self.error_block("all functions exhausted", site.at, site.catch)),
        }
    }

    /// A block that raises `msg` at `at`, as `error(msg)` does.
    fn error_block(&mut self, msg: &str, at: At, catch: Option<(BlockId, Option<Reg>)>) -> BlockId {
        let reg = match self.message {
            Some(r) => r,
            None => {
                let r = self.new_reg(Ty::Str);
                self.message = Some(r);
                r
            }
        };
        let b = self.new_block(catch);
        self.out.blocks[b.index()].insts = vec![
            Inst::Str {
                dst: reg,
                bytes: msg.as_bytes().to_vec(),
            },
            Inst::Builtin {
                dst: None,
                func: Builtin::Error,
                args: vec![reg],
                at,
            },
        ];
        b
    }
}

/// `r = 0` or `r = ""`.
fn zero(r: Reg, ty: Ty) -> Inst {
    match ty {
        Ty::Long => Inst::Const { dst: r, value: 0 },
        Ty::Str => Inst::Str {
            dst: r,
            bytes: Vec::new(),
        },
    }
}

/// Calls `f` on every register `inst` names.
fn for_each_reg(inst: &mut Inst, mut f: impl FnMut(&mut Reg)) {
    match inst {
        Inst::Const { dst, .. }
        | Inst::Str { dst, .. }
        | Inst::Context { dst, .. }
        | Inst::ReadGlobal { dst, .. } => f(dst),
        Inst::WriteGlobal { src, .. } => f(src),
        Inst::Move { dst, src }
        | Inst::Unary { dst, src, .. }
        | Inst::Regex { dst, src, .. }
        | Inst::Load { dst, addr: src, .. }
        | Inst::LoadStr { dst, addr: src, .. } => {
            f(dst);
            f(src);
        }
        Inst::Binary { dst, a, b, .. }
        | Inst::Compare { dst, a, b, .. }
        | Inst::StrCompare { dst, a, b, .. }
        | Inst::Concat { dst, a, b } => {
            f(dst);
            f(a);
            f(b);
        }
        Inst::MapRead {
            dst: value, keys, ..
        }
        | Inst::MapWrite {
            keys, src: value, ..
        }
        | Inst::AggAdd { keys, value, .. } => {
            keys.iter_mut().for_each(&mut f);
            f(value);
        }
        Inst::MapContains { dst, keys, .. } => {
            keys.iter_mut().flatten().for_each(&mut f);
            f(dst);
        }
        Inst::MapDelete { keys, .. } => keys.iter_mut().flatten().for_each(&mut f),
        Inst::Clear { .. } => {}
        Inst::AggRead {
            dst, keys, shift, ..
        } => {
            keys.iter_mut().chain(shift).for_each(&mut f);
            f(dst);
        }
        Inst::HistBucket {
            dst, keys, bucket, ..
        } => {
            keys.iter_mut().for_each(&mut f);
            f(dst);
            f(bucket);
        }
        Inst::Call { dst, args, .. }
        | Inst::Builtin { dst, args, .. }
        | Inst::Print { dst, args, .. } => args.iter_mut().chain(dst).for_each(&mut f),
        Inst::PrintHist { keys, .. } => keys.iter_mut().for_each(&mut f),
        Inst::IterStart {
            source,
            limit,
            slice,
            ..
        } => {
            if let IterSource::Hist { keys, .. } = &mut **source {
                keys.iter_mut().for_each(&mut f);
            }
            limit
                .iter_mut()
                .chain(slice.iter_mut().flatten().flatten())
                .for_each(&mut f);
        }
    }
}
