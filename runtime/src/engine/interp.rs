//! The MIR interpreter: runs one probe handler or function body over registers,
//! with stap's runtime semantics — 64-bit wrapping arithmetic, `division by 0`,
//! MAXACTION, MAXNESTING, MAXSTRINGLEN truncation, `try`/`catch`, `next` through
//! overloads — against the globals of a [`Store`].

use super::jit::Entry;
use super::store::{Array, Slot, matches};
use super::value::Value;
use super::{Engine, Fault};
use rstap_compiler::backend::bpf::codegen::Deferred;
use rstap_compiler::builtins::Builtin;
use rstap_compiler::hir::{BinOp, SortDir, StatOp};
use rstap_compiler::mir::{
    Block, Body, CmpOp, FuncId, Inst, IterId, IterSource, Reg, SortKey, Term, UnOp,
};
use rstap_grammar::Span;
use std::cmp::Ordering;

/// How a body ended.
pub enum Flow {
    Return(Option<Value>),
    /// `next`: the probe handler ends, or a function passes to its next overload.
    Next,
}

/// One `foreach` in progress: the entries to walk, taken when it started.
struct Iter {
    entries: Vec<(Vec<Value>, Value)>,
    pos: usize,
}

/// The registers and iterators of one body while it runs (the JIT tier keeps
/// one too, for the instructions it hands back to [`Engine::exec`]).
pub(super) struct Frame<'b> {
    body: &'b Body,
    pub(super) regs: Vec<Value>,
    iters: Vec<Option<Iter>>,
}

impl<'b> Frame<'b> {
    /// Every register zero (0 or ""), `args` in the parameter registers.
    pub(super) fn new(body: &'b Body, params: &[Reg], args: Vec<Value>) -> Frame<'b> {
        let mut f = Frame {
            body,
            regs: body.regs.iter().map(|&t| Value::zero(t)).collect(),
            iters: (0..body.iters).map(|_| None).collect(),
        };
        for (p, a) in params.iter().zip(args) {
            f.regs[p.index()] = a;
        }
        f
    }

    /// `Term::IterNext`: the next entry of `iter` into `keys` and `value`;
    /// false when there is none (the iteration is then over).
    pub(super) fn iter_next(
        &mut self,
        iter: IterId,
        keys: &[Option<Reg>],
        value: Option<Reg>,
    ) -> bool {
        let next = self.iters[iter.index()].as_mut().and_then(|it| {
            let e = it.entries.get(it.pos).cloned();
            it.pos += 1;
            e
        });
        match next {
            Some((k, v)) => {
                for (reg, key) in keys.iter().zip(k) {
                    if let Some(reg) = reg {
                        self.regs[reg.index()] = key;
                    }
                }
                if let Some(reg) = value {
                    self.regs[reg.index()] = v;
                }
                true
            }
            None => {
                self.iters[iter.index()] = None;
                false
            }
        }
    }
}

/// stap never lets a catch see it.
pub(super) fn max_action_exceeded() -> Fault {
    Fault::uncatchable("MAXACTION exceeded", None)
}

impl Engine<'_> {
    /// Runs `body` with `args` in its parameter registers.
    pub(super) fn run_body(
        &mut self,
        body: &Body,
        params: &[Reg],
        args: Vec<Value>,
    ) -> Result<Flow, Fault> {
        let mut f = Frame::new(body, params, args);
        let mut at = 0usize;
        loop {
            let block: &Block = &body.blocks[at];
            self.actions += u64::from(block.actions);
            if self.actions > self.limits.max_action {
                return Err(max_action_exceeded());
            }
            let mut failed = None;
            for inst in &block.insts {
                if let Err(e) = self.exec(&mut f, inst) {
                    failed = Some(e);
                    break;
                }
            }
            if let Some(fault) = failed {
                if fault.uncatchable {
                    return Err(fault);
                }
                match block.catch {
                    Some((handler, msg)) => {
                        self.caught(&mut f, msg, &fault);
                        at = handler.index();
                        continue;
                    }
                    None => return Err(fault),
                }
            }
            at = match &block.term {
                Term::Jump(b) => b.index(),
                Term::Branch {
                    cond,
                    then,
                    otherwise,
                } => {
                    if f.regs[cond.index()].long() != 0 {
                        then.index()
                    } else {
                        otherwise.index()
                    }
                }
                Term::Return(r) => return Ok(Flow::Return(r.map(|r| f.regs[r.index()].clone()))),
                Term::Next => return Ok(Flow::Next),
                Term::IterNext {
                    iter,
                    keys,
                    value,
                    body: inner,
                    done,
                } => {
                    if f.iter_next(*iter, keys, *value) {
                        inner.index()
                    } else {
                        done.index()
                    }
                }
            };
        }
    }

    /// A caught error: its message goes to the catch variable. `abort()` and
    /// MAXACTION are never caught.
    pub(super) fn caught(&mut self, f: &mut Frame<'_>, msg: Option<Reg>, fault: &Fault) {
        if let Some(r) = msg {
            f.regs[r.index()] = Value::Str(self.clip(fault.msg.clone().into_bytes()));
        }
    }

    /// A string cut to MAXSTRINGLEN - 1 bytes, as stap's buffers hold it.
    pub(super) fn clip(&self, mut s: Vec<u8>) -> Vec<u8> {
        let max = self.limits.max_string.saturating_sub(1);
        if s.len() > max {
            s.truncate(max);
        }
        s
    }

    pub(super) fn exec(&mut self, f: &mut Frame<'_>, inst: &Inst) -> Result<(), Fault> {
        let r = |f: &Frame<'_>, reg: &Reg| f.regs[reg.index()].clone();
        match inst {
            Inst::Const { dst, value } => f.regs[dst.index()] = Value::Long(*value),
            Inst::Str { dst, bytes } => f.regs[dst.index()] = Value::Str(self.clip(bytes.clone())),
            Inst::Move { dst, src } => f.regs[dst.index()] = r(f, src),
            Inst::Unary { dst, op, src } => {
                let v = f.regs[src.index()].long();
                f.regs[dst.index()] = Value::Long(match op {
                    UnOp::Neg => v.wrapping_neg(),
                    UnOp::BitNot => !v,
                    UnOp::Not => i64::from(v == 0),
                });
            }
            Inst::Binary { dst, op, a, b, at } => {
                let (x, y) = (f.regs[a.index()].long(), f.regs[b.index()].long());
                f.regs[dst.index()] = Value::Long(arith(*op, x, y, *at)?);
            }
            Inst::Compare { dst, op, a, b } => {
                let o = f.regs[a.index()].long().cmp(&f.regs[b.index()].long());
                f.regs[dst.index()] = Value::Long(i64::from(holds(*op, o)));
            }
            Inst::StrCompare { dst, op, a, b } => {
                let o = f.regs[a.index()].bytes().cmp(f.regs[b.index()].bytes());
                f.regs[dst.index()] = Value::Long(i64::from(holds(*op, o)));
            }
            Inst::Concat { dst, a, b } => {
                let mut s = f.regs[a.index()].bytes().to_vec();
                s.extend_from_slice(f.regs[b.index()].bytes());
                f.regs[dst.index()] = Value::Str(self.clip(s));
            }
            Inst::Regex {
                dst,
                src,
                pattern,
                negated,
            } => {
                let hit = self.regex_match(pattern, f.regs[src.index()].bytes())?;
                f.regs[dst.index()] = Value::Long(i64::from(hit != *negated));
            }
            Inst::ReadGlobal { dst, global } => {
                f.regs[dst.index()] = match &self.store.slots[global.index()] {
                    Slot::Scalar(v) => v.clone(),
                    _ => Value::Long(0),
                };
            }
            Inst::WriteGlobal { global, src } => {
                if let Slot::Scalar(v) = &mut self.store.slots[global.index()] {
                    *v = f.regs[src.index()].clone();
                }
            }
            Inst::MapRead { dst, global, keys } => {
                let keys = regs(f, keys);
                let ty = f.body.ty(*dst);
                f.regs[dst.index()] = match &self.store.slots[global.index()] {
                    Slot::Array(a) => a.get(&keys).cloned().unwrap_or_else(|| Value::zero(ty)),
                    _ => Value::zero(ty),
                };
            }
            Inst::MapWrite {
                global,
                keys,
                src,
                at,
            } => {
                let keys = regs(f, keys);
                let v = r(f, src);
                if let Slot::Array(a) = &mut self.store.slots[global.index()] {
                    *a.entry(&keys, || Value::Long(0))
                        .map_err(|o| Fault::new(o.0, Some(*at)))? = v;
                }
            }
            Inst::MapContains { dst, global, keys } => {
                let pattern: Vec<Option<Value>> =
                    keys.iter().map(|k| k.map(|k| r(f, &k))).collect();
                let hit = match &self.store.slots[global.index()] {
                    Slot::Array(a) => a.contains(&pattern),
                    Slot::StatsArray(a) => a.contains(&pattern),
                    _ => false,
                };
                f.regs[dst.index()] = Value::Long(i64::from(hit));
            }
            Inst::MapDelete { global, keys } => {
                let pattern: Vec<Option<Value>> =
                    keys.iter().map(|k| k.map(|k| r(f, &k))).collect();
                match &mut self.store.slots[global.index()] {
                    Slot::Array(a) => a.delete(&pattern),
                    Slot::StatsArray(a) => a.delete(&pattern),
                    _ => {}
                }
            }
            Inst::Clear { global } => {
                let fresh = self.store.new_stat(global.index());
                match &mut self.store.slots[global.index()] {
                    Slot::Scalar(v) => {
                        *v = match v {
                            Value::Long(_) => Value::Long(0),
                            Value::Str(_) => Value::Str(Vec::new()),
                        }
                    }
                    Slot::Stats(s) => *s = fresh,
                    Slot::Array(a) => a.clear(),
                    Slot::StatsArray(a) => a.clear(),
                }
            }
            Inst::AggAdd {
                global,
                keys,
                value,
                at,
            } => {
                let keys = regs(f, keys);
                let v = f.regs[value.index()].long();
                let fresh = self.store.new_stat(global.index());
                match &mut self.store.slots[global.index()] {
                    Slot::Stats(s) => s.add(v),
                    Slot::StatsArray(a) => a
                        .entry(&keys, || fresh)
                        .map_err(|o| Fault::new(o.0, Some(*at)))?
                        .add(v),
                    _ => {}
                }
            }
            Inst::AggRead {
                dst,
                global,
                keys,
                op,
                shift,
                at,
            } => {
                let keys = regs(f, keys);
                // The shift is fixed per variable (the checker reads it into the spec).
                let _ = shift;
                let stat = self.stat(global.index(), &keys);
                let scalar = keys.is_empty();
                f.regs[dst.index()] =
                    Value::Long(super::aggregate(stat.as_ref(), *op, scalar, *at)?);
            }
            Inst::HistBucket {
                dst,
                global,
                keys,
                hist,
                bucket,
            } => {
                let keys = regs(f, keys);
                let i = f.regs[bucket.index()].long();
                let stat = self.stat(global.index(), &keys);
                f.regs[dst.index()] = Value::Long(super::bucket_count(
                    stat.as_ref(),
                    hist,
                    i,
                    Span::default(),
                )?);
            }
            Inst::Call {
                dst,
                func,
                args,
                at,
            } => {
                let args = regs(f, args);
                let v = self.call(*func, args, *at)?;
                if let (Some(d), Some(v)) = (dst, v) {
                    f.regs[d.index()] = v;
                }
            }
            Inst::Builtin {
                dst,
                func,
                args,
                at,
            } => {
                let args = regs(f, args);
                let v = match self.event_builtin(*func, &args, *at) {
                    Some(v) => v?,
                    None => self.builtin(*func, &args, *at)?,
                };
                if let (Some(d), Some(v)) = (dst, v) {
                    f.regs[d.index()] = v;
                }
            }
            Inst::Context { dst, value } if self.event.is_some() => {
                let v = self.event.as_ref().map(|e| e.context(value));
                f.regs[dst.index()] = match v {
                    Some(Ok(Value::Str(s))) => Value::Str(self.clip(s)),
                    Some(Ok(v)) => v,
                    Some(Err(msg)) => return Err(Fault::new(msg, None)),
                    None => Value::Long(0),
                };
            }
            Inst::Load {
                dst,
                addr,
                size,
                signed,
                user: true,
                at,
            } if self.event.is_some() => {
                let a = f.regs[addr.index()].long();
                let v = self
                    .event
                    .as_ref()
                    .map(|e| e.user_load(a, usize::from(*size), *signed));
                f.regs[dst.index()] = match v {
                    Some(Ok(n)) => Value::Long(n),
                    Some(Err(msg)) => return Err(Fault::new(msg, Some(*at))),
                    None => Value::Long(0),
                };
            }
            Inst::LoadStr {
                dst,
                addr,
                len,
                user: true,
                at,
            } if self.event.is_some() => {
                let a = f.regs[addr.index()].long();
                let max = (*len as usize).min(self.limits.max_string);
                let v = self.event.as_ref().map(|e| e.user_string(a, max));
                f.regs[dst.index()] = match v {
                    Some(Ok(s)) => Value::Str(self.clip(s)),
                    Some(Err(msg)) => return Err(Fault::new(msg, Some(*at))),
                    None => Value::Str(Vec::new()),
                };
            }
            Inst::Context { .. } => {
                return Err(Fault::new(
                    "target variables are not available in this probe",
                    None,
                ));
            }
            Inst::Load { addr, at, .. } | Inst::LoadStr { addr, at, .. } => {
                return Err(Fault::new(
                    format!(
                        "read fault [man error::fault] at 0x{:x}",
                        f.regs[addr.index()].long()
                    ),
                    Some(*at),
                ));
            }
            Inst::Print { dst, spec, args } => {
                let args = regs(f, args);
                let bytes = self.render(spec, &args)?;
                match dst {
                    Some(d) => f.regs[d.index()] = Value::Str(self.clip(bytes)),
                    None => self.emit(spec.kind, &bytes),
                }
            }
            Inst::PrintHist {
                global, keys, hist, ..
            } => {
                let keys = regs(f, keys);
                if let Some(s) = self.stat(global.index(), &keys) {
                    self.emit_hist(&s, hist);
                }
            }
            Inst::IterStart {
                iter,
                source,
                sort,
                limit,
                slice,
            } => {
                let pattern: Option<Vec<Option<Value>>> = slice
                    .as_ref()
                    .map(|s| s.iter().map(|k| k.map(|k| r(f, &k))).collect());
                let mut entries = self.entries(f, source, pattern.as_deref());
                if let Some((key, dir)) = sort.as_deref() {
                    self.sort(&mut entries, source, *key, *dir);
                }
                if let Some(l) = limit {
                    let n = usize::try_from(f.regs[l.index()].long()).unwrap_or(0);
                    entries.truncate(n);
                }
                f.iters[iter.index()] = Some(Iter { entries, pos: 0 });
            }
        }
        Ok(())
    }

    /// The aggregate of a stats global or element, if it exists.
    fn stat(&self, g: usize, keys: &[Value]) -> Option<crate::stats::Stat> {
        match &self.store.slots[g] {
            Slot::Stats(s) => Some(s.clone()),
            Slot::StatsArray(a) => a.get(keys).cloned(),
            _ => None,
        }
    }

    /// The entries a `foreach` walks, oldest first; stats arrays carry no value.
    fn entries(
        &self,
        f: &Frame<'_>,
        source: &IterSource,
        slice: Option<&[Option<Value>]>,
    ) -> Vec<(Vec<Value>, Value)> {
        let keep = |k: &[Value]| slice.is_none_or(|p| matches(k, p));
        match source {
            IterSource::Array(g) => match &self.store.slots[g.index()] {
                Slot::Array(a) => a.snapshot().into_iter().filter(|(k, _)| keep(k)).collect(),
                Slot::StatsArray(a) => stats_keys(a).into_iter().filter(|(k, _)| keep(k)).collect(),
                _ => Vec::new(),
            },
            IterSource::Hist { global, keys, hist } => {
                let keys: Vec<Value> = keys.iter().map(|k| f.regs[k.index()].clone()).collect();
                self.stat(global.index(), &keys)
                    .map(|s| {
                        super::hist_entries(&s, hist)
                            .into_iter()
                            .map(|(b, n)| (vec![Value::Long(b)], Value::Long(n)))
                            .collect()
                    })
                    .unwrap_or_default()
            }
        }
    }

    fn sort(
        &self,
        entries: &mut [(Vec<Value>, Value)],
        source: &IterSource,
        key: SortKey,
        dir: SortDir,
    ) {
        let stat_of = |keys: &[Value], op: StatOp| -> i64 {
            let IterSource::Array(g) = source else {
                return 0;
            };
            self.stat(g.index(), keys)
                .and_then(|s| super::aggregate(Some(&s), op, false, Span::default()).ok())
                .unwrap_or(0)
        };
        let by = |a: &(Vec<Value>, Value), b: &(Vec<Value>, Value)| -> Ordering {
            match key {
                SortKey::Key(i) => a.0.get(i).cmp(&b.0.get(i)),
                SortKey::Value => a.1.cmp(&b.1),
                SortKey::Stat(op) => stat_of(&a.0, op).cmp(&stat_of(&b.0, op)),
            }
        };
        match dir {
            SortDir::Ascending => entries.sort_by(by),
            SortDir::Descending => entries.sort_by(|a, b| by(b, a)),
        }
    }

    /// Calls a script function, following `next` to later overloads.
    pub(super) fn call(
        &mut self,
        func: FuncId,
        args: Vec<Value>,
        at: Span,
    ) -> Result<Option<Value>, Fault> {
        if self.depth >= self.limits.max_nesting {
            return Err(Fault::new("MAXNESTING exceeded", Some(at)));
        }
        let mut func = func;
        loop {
            let Some(f) = self.prog.functions.get(func.index()) else {
                return Ok(None);
            };
            self.depth += 1;
            let flow = self.enter(Entry::Function(func), &f.body, &f.params, args.clone());
            self.depth -= 1;
            match flow? {
                Flow::Return(v) => {
                    let v = v.or_else(|| f.ret.map(Value::zero));
                    return Ok(v);
                }
                Flow::Next => match f.next {
                    Some(n) => func = n,
                    None => return Err(Fault::new("all functions exhausted", Some(at))),
                },
            }
        }
    }
}

impl Engine<'_> {
    /// A built-in answered by the event a tracefs handler runs for; `None`
    /// outside such a handler or for a built-in the event does not change.
    fn event_builtin(
        &mut self,
        func: Builtin,
        args: &[Value],
        at: Span,
    ) -> Option<Result<Option<Value>, Fault>> {
        let max = self.limits.max_string;
        let ev = self.event.as_mut()?;
        if let Builtin::Usymname | Builtin::Usymdata = func {
            let how = if func == Builtin::Usymname {
                Deferred::Usymname
            } else {
                Deferred::Usymdata
            };
            let pid = ev.pid();
            let addr = args.first().map_or(0, Value::long);
            let text = self.symbols.user(how, pid, addr);
            return Some(Ok(Some(Value::Str(self.clip(text)))));
        }
        Some(match ev.builtin(func, args, max)? {
            Ok(Value::Str(s)) => Ok(Some(Value::Str(self.clip(s)))),
            Ok(v) => Ok(Some(v)),
            Err(msg) => Err(Fault::new(msg, Some(at))),
        })
    }
}

fn regs(f: &Frame<'_>, regs: &[Reg]) -> Vec<Value> {
    regs.iter().map(|r| f.regs[r.index()].clone()).collect()
}

/// Keys of a stats array (a stats array's `foreach` has no value variable).
fn stats_keys(a: &Array<crate::stats::Stat>) -> Vec<(Vec<Value>, Value)> {
    a.snapshot()
        .into_iter()
        .map(|(k, _)| (k, Value::Long(0)))
        .collect()
}

fn holds(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
    }
}

/// stap's integer operators: 64-bit, wrapping, C division; shifts by the low six
/// bits of the count, as x86 does.
fn arith(op: BinOp, x: i64, y: i64, at: Span) -> Result<i64, Fault> {
    Ok(match op {
        BinOp::Add => x.wrapping_add(y),
        BinOp::Sub => x.wrapping_sub(y),
        BinOp::Mul => x.wrapping_mul(y),
        BinOp::Div | BinOp::Mod if y == 0 => return Err(Fault::new("division by 0", Some(at))),
        BinOp::Div => x.wrapping_div(y),
        BinOp::Mod => x.wrapping_rem(y),
        BinOp::Shl => x.wrapping_shl((y & 63) as u32),
        BinOp::Shr => x.wrapping_shr((y & 63) as u32),
        BinOp::UShr => ((x as u64) >> ((y & 63) as u32)) as i64,
        BinOp::BitAnd => x & y,
        BinOp::BitOr => x | y,
        BinOp::BitXor => x ^ y,
        // Lowered to branches and comparisons; never an arithmetic instruction.
        BinOp::And
        | BinOp::Or
        | BinOp::Concat
        | BinOp::Eq
        | BinOp::Ne
        | BinOp::Lt
        | BinOp::Le
        | BinOp::Gt
        | BinOp::Ge => 0,
    })
}
