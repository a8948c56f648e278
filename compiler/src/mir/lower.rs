//! HIR → MIR: expressions into registers, control flow into blocks. Operands
//! are evaluated left to right; `&&`, `||` and `?:` branch; compound assignment
//! is read-modify-write; `try` bodies carry their catch block on every block.

use super::{
    Block, BlockId, Body, CmpOp, FmtPiece, FuncId, Function, Global, GlobalKind, Inst, IterId,
    IterSource, PrintSpec, Probe, Program, Reg, SortKey, StatsSpec, Term, Ty, UnOp, Value,
    decode_escapes, defer_calls,
};
use crate::hir::{
    self, AssignOp, BinOp, ContextValue, CrementOp, Delete, Expr, ExprKind, GlobalId, Histogram,
    Iterable, Place, PrintKind, SortBy, StmtKind, Type, UnaryOp,
};
use rstap_grammar::Span;
use rstap_grammar::format::{Piece, parse_format};

/// Lowers a checked program.
pub fn lower(p: &hir::Program) -> Program {
    let specs = stats_specs(p);
    let globals = p
        .globals
        .iter()
        .enumerate()
        .map(|(i, g)| Global {
            name: g.name.clone(),
            kind: match g.ty {
                Type::Stats => GlobalKind::Stats(specs[i].clone()),
                Type::String => GlobalKind::Value(Ty::Str),
                Type::Long | Type::Unknown => GlobalKind::Value(Ty::Long),
            },
            keys: g.keys.iter().flatten().map(|&t| ty(t)).collect(),
            size: g.size,
            wrap: g.wrap,
            init: g.init.as_ref().map(|i| match i {
                hir::Init::Long(n) => Value::Long(*n),
                hir::Init::Str(s) => Value::Str(decode_escapes(s)),
            }),
        })
        .collect();
    let functions = p
        .functions
        .iter()
        .map(|f| {
            let mut b = Builder::new(p, &f.locals);
            let params = b.locals[..f.params].to_vec();
            b.block(&f.body);
            b.finish_body();
            Function {
                name: f.name.clone(),
                params,
                ret: match f.ret {
                    Type::Long => Some(Ty::Long),
                    Type::String => Some(Ty::Str),
                    Type::Stats | Type::Unknown => None,
                },
                next: f.next.map(|n| FuncId(n.0)),
                body: b.body,
            }
        })
        .collect();
    let probes = p
        .probes
        .iter()
        .map(|probe| {
            let mut b = Builder::new(p, &probe.locals);
            if let Some(c) = &probe.condition {
                let cond = b.value(c);
                let (run, skip) = (b.new_block(), b.new_block());
                b.terminate(Term::Branch {
                    cond,
                    then: run,
                    otherwise: skip,
                });
                b.switch_to(skip);
                b.terminate(Term::Return(None));
                b.switch_to(run);
            }
            b.block(&probe.body);
            b.finish_body();
            Probe {
                kind: probe.kind.clone(),
                name: probe.name.clone(),
                written: probe.written.clone(),
                context: probe.kind.context(),
                body: b.body,
                span: probe.span,
            }
        })
        .collect();
    let mut program = Program {
        globals,
        functions,
        probes,
        unread: p.unread.clone(),
    };
    defer_calls(&mut program);
    program
}

fn ty(t: Type) -> Ty {
    match t {
        Type::String => Ty::Str,
        Type::Long | Type::Stats | Type::Unknown => Ty::Long,
    }
}

/// What each stats global keeps: the histograms it is printed or walked with, and
/// its `@variance` shift.
fn stats_specs(p: &hir::Program) -> Vec<StatsSpec> {
    let mut out = vec![StatsSpec::default(); p.globals.len()];
    let mut note = |e: &Expr| match &e.kind {
        ExprKind::Hist { kind, of } => {
            if let Some(g) = global_of(of)
                && !out[g.index()].hists.contains(kind)
            {
                out[g.index()].hists.push(kind.clone());
            }
        }
        ExprKind::Stat {
            op: hir::StatOp::Variance,
            of,
            shift: Some(shift),
        } => {
            if let (Some(g), ExprKind::Num(n)) = (global_of(of), &shift.kind) {
                out[g.index()].variance_shift = u32::try_from(*n).unwrap_or(0);
            }
        }
        _ => {}
    };
    for f in &p.functions {
        hir::for_each_expr(&f.body, &mut note);
    }
    for probe in &p.probes {
        hir::for_each_expr(&probe.body, &mut note);
    }
    out
}

/// The global a stats operand names (`s` or `s[k]`).
fn global_of(e: &Expr) -> Option<GlobalId> {
    match &e.kind {
        ExprKind::Global(g) | ExprKind::Element { array: g, .. } => Some(*g),
        _ => None,
    }
}

struct Builder<'p> {
    prog: &'p hir::Program,
    body: Body,
    cur: BlockId,
    /// The register of each HIR local.
    locals: Vec<Reg>,
    /// `(continue target, break target)` of the loops around.
    loops: Vec<(BlockId, BlockId)>,
    /// The catch block (and message register) new blocks get.
    catch: Option<(BlockId, Option<Reg>)>,
}

impl<'p> Builder<'p> {
    fn new(prog: &'p hir::Program, locals: &[hir::Local]) -> Builder<'p> {
        let mut b = Builder {
            prog,
            body: Body::default(),
            cur: BlockId(0),
            locals: Vec::new(),
            loops: Vec::new(),
            catch: None,
        };
        b.cur = b.new_block();
        for l in locals {
            let r = b.reg(ty(l.ty));
            b.body.names.push((r, l.name.clone()));
            b.locals.push(r);
        }
        b
    }

    fn reg(&mut self, t: Ty) -> Reg {
        self.body.regs.push(t);
        Reg(u32::try_from(self.body.regs.len() - 1).unwrap_or(u32::MAX))
    }

    fn new_block(&mut self) -> BlockId {
        self.body.blocks.push(Block {
            insts: Vec::new(),
            term: Term::Return(None),
            actions: 0,
            catch: self.catch,
        });
        BlockId(u32::try_from(self.body.blocks.len() - 1).unwrap_or(u32::MAX))
    }

    fn switch_to(&mut self, b: BlockId) {
        self.cur = b;
    }

    fn emit(&mut self, i: Inst) {
        self.body.blocks[self.cur.index()].insts.push(i);
    }

    fn terminate(&mut self, t: Term) {
        self.body.blocks[self.cur.index()].term = t;
    }

    /// Ends the current block with `t` and continues in a fresh (unreachable
    /// unless jumped to) block.
    fn end_with(&mut self, t: Term) {
        self.terminate(t);
        let next = self.new_block();
        self.switch_to(next);
    }

    fn jump_to(&mut self, target: BlockId) {
        self.terminate(Term::Jump(target));
        self.switch_to(target);
    }

    fn finish_body(&mut self) {
        self.terminate(Term::Return(None));
    }

    fn block(&mut self, b: &hir::Block) {
        for s in &b.stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &hir::Stmt) {
        self.body.blocks[self.cur.index()].actions += 1;
        match &s.kind {
            StmtKind::Block(b) => self.block(b),
            StmtKind::Expr(e) => {
                self.expr(e);
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let c = self.value(cond);
                let (t, o, join) = (self.new_block(), self.new_block(), self.new_block());
                self.terminate(Term::Branch {
                    cond: c,
                    then: t,
                    otherwise: o,
                });
                self.switch_to(t);
                self.stmt(then);
                self.terminate(Term::Jump(join));
                self.switch_to(o);
                if let Some(o) = otherwise {
                    self.stmt(o);
                }
                self.jump_to(join);
            }
            StmtKind::Loop {
                init,
                cond,
                step,
                body,
            } => self.loop_stmt(init.as_ref(), cond.as_ref(), step.as_ref(), body),
            StmtKind::Foreach(f) => self.foreach(f),
            StmtKind::Delete(d) => self.delete(d),
            StmtKind::Next => self.end_with(Term::Next),
            StmtKind::Break => {
                if let Some(&(_, brk)) = self.loops.last() {
                    self.end_with(Term::Jump(brk));
                }
            }
            StmtKind::Continue => {
                if let Some(&(cont, _)) = self.loops.last() {
                    self.end_with(Term::Jump(cont));
                }
            }
            StmtKind::Return(e) => {
                let r = e.as_ref().map(|e| self.value(e));
                self.end_with(Term::Return(r));
            }
            StmtKind::Try { body, var, catch } => {
                let handler = self.new_block();
                let msg = var.map(|v| self.locals[v.index()]);
                let outer = self.catch.replace((handler, msg));
                let inside = self.new_block();
                self.jump_to(inside);
                self.block(body);
                self.catch = outer;
                let after = self.new_block();
                self.terminate(Term::Jump(after));
                self.switch_to(handler);
                self.body.blocks[handler.index()].catch = outer;
                self.block(catch);
                self.jump_to(after);
            }
        }
    }

    fn loop_stmt(
        &mut self,
        init: Option<&Expr>,
        cond: Option<&Expr>,
        step: Option<&Expr>,
        body: &hir::Stmt,
    ) {
        if let Some(i) = init {
            self.expr(i);
        }
        let (head, inner, next, exit) = (
            self.new_block(),
            self.new_block(),
            self.new_block(),
            self.new_block(),
        );
        self.jump_to(head);
        match cond {
            Some(c) => {
                let c = self.value(c);
                self.terminate(Term::Branch {
                    cond: c,
                    then: inner,
                    otherwise: exit,
                });
            }
            None => self.terminate(Term::Jump(inner)),
        }
        self.switch_to(inner);
        self.loops.push((next, exit));
        self.stmt(body);
        self.loops.pop();
        self.jump_to(next);
        if let Some(s) = step {
            self.expr(s);
        }
        self.terminate(Term::Jump(head));
        self.switch_to(exit);
    }

    fn foreach(&mut self, f: &hir::Foreach) {
        let iter = IterId(u32::try_from(self.body.iters).unwrap_or(u32::MAX));
        self.body.iters += 1;
        let (source, stats) = match &f.array {
            Iterable::Array(g) => (
                IterSource::Array(*g),
                self.prog.global(*g).ty == Type::Stats,
            ),
            Iterable::Hist(h) => (self.hist_source(h), false),
        };
        let sort = f.sort.map(|(by, dir)| {
            let key = match by {
                SortBy::Key(i) => SortKey::Key(i),
                // An aggregate array sorts by @count unless told otherwise.
                SortBy::Value if stats => SortKey::Stat(hir::StatOp::Count),
                SortBy::Value => SortKey::Value,
                SortBy::Stat(op) => SortKey::Stat(op),
            };
            (key, dir)
        });
        let limit = f.limit.as_ref().map(|l| self.value(l));
        let slice = f.slice.as_ref().map(|s| {
            s.iter()
                .map(|k| k.as_ref().map(|k| self.value(k)))
                .collect()
        });
        self.emit(Inst::IterStart {
            iter,
            source: Box::new(source),
            sort: sort.map(Box::new),
            limit,
            slice,
        });
        let (head, inner, done) = (self.new_block(), self.new_block(), self.new_block());
        self.jump_to(head);
        self.terminate(Term::IterNext {
            iter,
            keys: f
                .keys
                .iter()
                .map(|k| k.map(|l| self.locals[l.index()]))
                .collect(),
            value: f.value.map(|v| self.locals[v.index()]),
            body: inner,
            done,
        });
        self.switch_to(inner);
        self.loops.push((head, done));
        self.stmt(&f.body);
        self.loops.pop();
        self.terminate(Term::Jump(head));
        self.switch_to(done);
    }

    fn hist_source(&mut self, h: &Expr) -> IterSource {
        let ExprKind::Hist { kind, of } = &h.kind else {
            return IterSource::Hist {
                global: GlobalId(0),
                keys: Vec::new(),
                hist: Histogram::Log,
            };
        };
        let (global, keys) = self.stats_place(of);
        IterSource::Hist {
            global,
            keys,
            hist: kind.clone(),
        }
    }

    /// The global and key registers of a stats operand.
    fn stats_place(&mut self, of: &Expr) -> (GlobalId, Vec<Reg>) {
        match &of.kind {
            ExprKind::Element { array, keys } => {
                let keys = keys.iter().map(|k| self.value(k)).collect();
                (*array, keys)
            }
            ExprKind::Global(g) => (*g, Vec::new()),
            _ => (GlobalId(0), Vec::new()),
        }
    }

    fn delete(&mut self, d: &Delete) {
        match d {
            Delete::Local(l) => {
                let r = self.locals[l.index()];
                self.set_zero(r);
            }
            Delete::Global(g) => self.emit(Inst::Clear { global: *g }),
            Delete::Elements { array, keys } => {
                let keys = keys
                    .iter()
                    .map(|k| k.as_ref().map(|k| self.value(k)))
                    .collect();
                self.emit(Inst::MapDelete {
                    global: *array,
                    keys,
                });
            }
        }
    }

    fn set_zero(&mut self, r: Reg) {
        match self.body.ty(r) {
            Ty::Long => self.emit(Inst::Const { dst: r, value: 0 }),
            Ty::Str => self.emit(Inst::Str {
                dst: r,
                bytes: Vec::new(),
            }),
        }
    }

    /// An expression used for its value.
    fn value(&mut self, e: &Expr) -> Reg {
        match self.expr(e) {
            Some(r) => r,
            None => {
                // Only a void call ends up here, which the checker rejects.
                let r = self.reg(Ty::Long);
                self.emit(Inst::Const { dst: r, value: 0 });
                r
            }
        }
    }

    fn fresh(&mut self, e: &Expr) -> Reg {
        self.reg(ty(e.ty))
    }

    /// An expression; its value's register, `None` for one with no value.
    fn expr(&mut self, e: &Expr) -> Option<Reg> {
        let r = match &e.kind {
            ExprKind::Num(n) => {
                let dst = self.reg(Ty::Long);
                self.emit(Inst::Const { dst, value: *n });
                dst
            }
            ExprKind::Str(s) => {
                let dst = self.reg(Ty::Str);
                self.emit(Inst::Str {
                    dst,
                    bytes: decode_escapes(s),
                });
                dst
            }
            ExprKind::Local(l) => {
                // A copy: a later assignment in the same expression must not change it.
                let src = self.locals[l.index()];
                let dst = self.reg(self.body.ty(src));
                self.emit(Inst::Move { dst, src });
                dst
            }
            ExprKind::Global(g) => {
                let dst = self.fresh(e);
                self.emit(Inst::ReadGlobal { dst, global: *g });
                dst
            }
            ExprKind::Element { array, keys } => {
                let keys = keys.iter().map(|k| self.value(k)).collect();
                let dst = self.fresh(e);
                self.emit(Inst::MapRead {
                    dst,
                    global: *array,
                    keys,
                });
                dst
            }
            ExprKind::Call { func, args } => {
                let args = args.iter().map(|a| self.value(a)).collect();
                let dst = (e.ty != Type::Unknown).then(|| self.fresh(e));
                self.emit(Inst::Call {
                    dst,
                    func: FuncId(func.0),
                    args,
                    at: e.span,
                });
                return dst;
            }
            ExprKind::Builtin { func, args } => {
                let args = args.iter().map(|a| self.value(a)).collect();
                let dst = (e.ty != Type::Unknown).then(|| self.fresh(e));
                self.emit(Inst::Builtin {
                    dst,
                    func: *func,
                    args,
                    at: e.span,
                });
                return dst;
            }
            ExprKind::Print { kind, format, args } => {
                return self.print(e, *kind, format.as_deref(), args);
            }
            ExprKind::Unary { op, expr } => {
                let src = self.value(expr);
                let op = match op {
                    UnaryOp::Plus => return Some(src),
                    UnaryOp::Neg => UnOp::Neg,
                    UnaryOp::Not => UnOp::Not,
                    UnaryOp::BitNot => UnOp::BitNot,
                };
                let dst = self.reg(Ty::Long);
                self.emit(Inst::Unary { dst, op, src });
                dst
            }
            ExprKind::Binary { op, left, right } => self.binary(*op, left, right, e.span),
            ExprKind::Regex {
                expr,
                negated,
                pattern,
            } => {
                let src = self.value(expr);
                let dst = self.reg(Ty::Long);
                self.emit(Inst::Regex {
                    dst,
                    src,
                    pattern: String::from_utf8_lossy(&decode_escapes(pattern)).into_owned(),
                    negated: *negated,
                });
                dst
            }
            ExprKind::Assign { op, place, value } => return self.assign(*op, place, value, e.span),
            ExprKind::Crement { op, post, place } => self.crement(*op, *post, place, e.span),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                let c = self.value(cond);
                let dst = self.fresh(e);
                let (t, o, join) = (self.new_block(), self.new_block(), self.new_block());
                self.terminate(Term::Branch {
                    cond: c,
                    then: t,
                    otherwise: o,
                });
                self.switch_to(t);
                let tv = self.value(then);
                self.emit(Inst::Move { dst, src: tv });
                self.terminate(Term::Jump(join));
                self.switch_to(o);
                let ov = self.value(otherwise);
                self.emit(Inst::Move { dst, src: ov });
                self.jump_to(join);
                dst
            }
            ExprKind::In { array, keys } => {
                let keys: Vec<Option<Reg>> = keys
                    .iter()
                    .map(|k| k.as_ref().map(|k| self.value(k)))
                    .collect();
                let dst = self.reg(Ty::Long);
                match array {
                    Iterable::Array(g) => self.emit(Inst::MapContains {
                        dst,
                        global: *g,
                        keys,
                    }),
                    Iterable::Hist(h) => {
                        // `b in @hist_log(s)`: the bucket holds anything.
                        let bucket = keys.first().copied().flatten();
                        self.hist_bucket(dst, h, bucket);
                        let zero = self.reg(Ty::Long);
                        self.emit(Inst::Const {
                            dst: zero,
                            value: 0,
                        });
                        self.emit(Inst::Compare {
                            dst,
                            op: CmpOp::Ne,
                            a: dst,
                            b: zero,
                        });
                    }
                }
                dst
            }
            ExprKind::HistBucket { hist, bucket } => {
                let bucket = self.value(bucket);
                let dst = self.reg(Ty::Long);
                self.hist_bucket(dst, hist, Some(bucket));
                dst
            }
            ExprKind::Stat { op, of, shift } => {
                let (global, keys) = self.stats_place(of);
                let shift = shift.as_ref().map(|s| self.value(s));
                let dst = self.reg(Ty::Long);
                self.emit(Inst::AggRead {
                    dst,
                    global,
                    keys,
                    op: *op,
                    shift,
                    at: e.span,
                });
                dst
            }
            // A histogram outside print/foreach/indexing is refused by the checker.
            ExprKind::Hist { .. } => return None,
            // `$$name`, `$$provider`...: constants of the probe point.
            ExprKind::Context(ContextValue::Text(text)) => {
                let dst = self.reg(Ty::Str);
                self.emit(Inst::Str {
                    dst,
                    bytes: text.as_bytes().to_vec(),
                });
                dst
            }
            ExprKind::Context(v) => {
                let dst = self.fresh(e);
                self.emit(Inst::Context {
                    dst,
                    value: v.clone(),
                });
                dst
            }
            ExprKind::Entry(inner) => return self.expr(inner),
            ExprKind::Load {
                addr,
                size,
                signed,
                user,
            } => {
                let addr = self.value(addr);
                let dst = self.reg(Ty::Long);
                self.emit(Inst::Load {
                    dst,
                    addr,
                    size: *size,
                    signed: *signed,
                    user: *user,
                    at: e.span,
                });
                dst
            }
            ExprKind::LoadString { addr, len, user } => {
                let addr = self.value(addr);
                let dst = self.reg(Ty::Str);
                self.emit(Inst::LoadStr {
                    dst,
                    addr,
                    len: *len,
                    user: *user,
                    at: e.span,
                });
                dst
            }
        };
        Some(r)
    }

    fn hist_bucket(&mut self, dst: Reg, h: &Expr, bucket: Option<Reg>) {
        let IterSource::Hist { global, keys, hist } = self.hist_source(h) else {
            return;
        };
        let bucket = bucket.unwrap_or_else(|| {
            let r = self.reg(Ty::Long);
            self.emit(Inst::Const { dst: r, value: 0 });
            r
        });
        self.emit(Inst::HistBucket {
            dst,
            global,
            keys,
            hist: Box::new(hist),
            bucket,
        });
    }

    fn binary(&mut self, op: BinOp, left: &Expr, right: &Expr, at: Span) -> Reg {
        if matches!(op, BinOp::And | BinOp::Or) {
            return self.logical(op == BinOp::And, left, right);
        }
        let a = self.value(left);
        let b = self.value(right);
        let cmp = match op {
            BinOp::Eq => Some(CmpOp::Eq),
            BinOp::Ne => Some(CmpOp::Ne),
            BinOp::Lt => Some(CmpOp::Lt),
            BinOp::Le => Some(CmpOp::Le),
            BinOp::Gt => Some(CmpOp::Gt),
            BinOp::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if op == BinOp::Concat {
            let dst = self.reg(Ty::Str);
            self.emit(Inst::Concat { dst, a, b });
            return dst;
        }
        let dst = self.reg(Ty::Long);
        match cmp {
            Some(op) if left.ty == Type::String => self.emit(Inst::StrCompare { dst, op, a, b }),
            Some(op) => self.emit(Inst::Compare { dst, op, a, b }),
            None => {
                // Faults (division by 0) are near the operator, as in stap:
                // the gap between the operands.
                let at = if left.span.file == at.file && left.span.end <= right.span.start {
                    Span {
                        file: at.file,
                        start: left.span.end,
                        end: right.span.start,
                    }
                } else {
                    at
                };
                self.emit(Inst::Binary { dst, op, a, b, at });
            }
        }
        dst
    }

    /// `a && b` / `a || b`: 1 or 0, `b` evaluated only when needed.
    fn logical(&mut self, and: bool, left: &Expr, right: &Expr) -> Reg {
        let dst = self.reg(Ty::Long);
        let a = self.value(left);
        let (rhs, short, join) = (self.new_block(), self.new_block(), self.new_block());
        let (then, otherwise) = if and { (rhs, short) } else { (short, rhs) };
        self.terminate(Term::Branch {
            cond: a,
            then,
            otherwise,
        });
        self.switch_to(short);
        self.emit(Inst::Const {
            dst,
            value: i64::from(!and),
        });
        self.terminate(Term::Jump(join));
        self.switch_to(rhs);
        let b = self.value(right);
        let zero = self.reg(Ty::Long);
        self.emit(Inst::Const {
            dst: zero,
            value: 0,
        });
        self.emit(Inst::Compare {
            dst,
            op: CmpOp::Ne,
            a: b,
            b: zero,
        });
        self.jump_to(join);
        dst
    }

    /// The key registers of a place, evaluated once.
    fn place_keys(&mut self, place: &Place) -> Vec<Reg> {
        match place {
            Place::Element { keys, .. } => keys.iter().map(|k| self.value(k)).collect(),
            Place::Local(_) | Place::Global(_) => Vec::new(),
        }
    }

    fn read_place(&mut self, place: &Place, keys: &[Reg], t: Ty) -> Reg {
        match place {
            Place::Local(l) => self.locals[l.index()],
            Place::Global(g) => {
                let dst = self.reg(t);
                self.emit(Inst::ReadGlobal { dst, global: *g });
                dst
            }
            Place::Element { array, .. } => {
                let dst = self.reg(t);
                self.emit(Inst::MapRead {
                    dst,
                    global: *array,
                    keys: keys.to_vec(),
                });
                dst
            }
        }
    }

    fn write_place(&mut self, place: &Place, keys: &[Reg], src: Reg, at: Span) {
        match place {
            Place::Local(l) => {
                let dst = self.locals[l.index()];
                if dst != src {
                    self.emit(Inst::Move { dst, src });
                }
            }
            Place::Global(g) => self.emit(Inst::WriteGlobal { global: *g, src }),
            Place::Element { array, .. } => self.emit(Inst::MapWrite {
                global: *array,
                keys: keys.to_vec(),
                src,
                at,
            }),
        }
    }

    fn place_global(place: &Place) -> Option<GlobalId> {
        match place {
            Place::Global(g) | Place::Element { array: g, .. } => Some(*g),
            Place::Local(_) => None,
        }
    }

    fn assign(&mut self, op: AssignOp, place: &Place, value: &Expr, at: Span) -> Option<Reg> {
        let keys = self.place_keys(place);
        let v = self.value(value);
        if op == AssignOp::Aggregate {
            if let Some(global) = Self::place_global(place) {
                self.emit(Inst::AggAdd {
                    global,
                    keys,
                    value: v,
                    at,
                });
            }
            return None;
        }
        let t = self.body.ty(v);
        let new = match compound(op) {
            None => v,
            Some(bop) => {
                let old = self.read_place(place, &keys, t);
                let dst = self.reg(t);
                if bop == BinOp::Concat {
                    self.emit(Inst::Concat { dst, a: old, b: v });
                } else {
                    self.emit(Inst::Binary {
                        dst,
                        op: bop,
                        a: old,
                        b: v,
                        at,
                    });
                }
                dst
            }
        };
        self.write_place(place, &keys, new, at);
        Some(new)
    }

    fn crement(&mut self, op: CrementOp, post: bool, place: &Place, at: Span) -> Reg {
        let keys = self.place_keys(place);
        let cur = self.read_place(place, &keys, Ty::Long);
        let old = self.reg(Ty::Long);
        self.emit(Inst::Move { dst: old, src: cur });
        let one = self.reg(Ty::Long);
        self.emit(Inst::Const { dst: one, value: 1 });
        let new = self.reg(Ty::Long);
        let op = match op {
            CrementOp::Incr => BinOp::Add,
            CrementOp::Decr => BinOp::Sub,
        };
        self.emit(Inst::Binary {
            dst: new,
            op,
            a: old,
            b: one,
            at,
        });
        self.write_place(place, &keys, new, at);
        if post { old } else { new }
    }

    fn print(
        &mut self,
        e: &Expr,
        kind: PrintKind,
        format: Option<&str>,
        args: &[Expr],
    ) -> Option<Reg> {
        if let [
            Expr {
                kind: ExprKind::Hist { kind: hist, of },
                ..
            },
        ] = args
        {
            let (global, keys) = self.stats_place(of);
            self.emit(Inst::PrintHist {
                global,
                keys,
                hist: Box::new(hist.clone()),
                at: e.span,
            });
            // print and println of a histogram alike: the chart ends in a blank line.
            return None;
        }
        let args = args.iter().map(|a| self.value(a)).collect();
        let pieces = match (kind, format) {
            (PrintKind::Printf | PrintKind::Sprintf, Some(f)) => fmt_pieces(f),
            (_, Some(delim)) => vec![FmtPiece::Lit(decode_escapes(delim))],
            (_, None) => Vec::new(),
        };
        let returns = kind.returns_string();
        let dst = returns.then(|| self.reg(Ty::Str));
        self.emit(Inst::Print {
            dst,
            spec: Box::new(PrintSpec {
                kind,
                format: pieces,
            }),
            args,
        });
        dst
    }
}

/// A printf format's pieces, literal text decoded to bytes.
fn fmt_pieces(stored: &str) -> Vec<FmtPiece> {
    // The checker accepted the format; an unparsable one prints as text.
    let Ok(pieces) = parse_format(stored) else {
        return vec![FmtPiece::Lit(decode_escapes(stored))];
    };
    pieces
        .into_iter()
        .map(|p| match p {
            Piece::Literal(t) => FmtPiece::Lit(decode_escapes(&t)),
            Piece::Conversion(c) => FmtPiece::Conv(c),
        })
        .collect()
}

/// The operator of a compound assignment.
fn compound(op: AssignOp) -> Option<BinOp> {
    Some(match op {
        AssignOp::Assign | AssignOp::Aggregate => return None,
        AssignOp::Add => BinOp::Add,
        AssignOp::Sub => BinOp::Sub,
        AssignOp::Mul => BinOp::Mul,
        AssignOp::Div => BinOp::Div,
        AssignOp::Mod => BinOp::Mod,
        AssignOp::Shl => BinOp::Shl,
        AssignOp::Shr => BinOp::Shr,
        AssignOp::BitAnd => BinOp::BitAnd,
        AssignOp::BitXor => BinOp::BitXor,
        AssignOp::BitOr => BinOp::BitOr,
        AssignOp::Concat => BinOp::Concat,
    })
}
