//! Formatting deferred to user space: in a kernel-context handler, a call of a
//! pure script function whose result is only ever printed is not run in the
//! kernel. Its arguments are copied where the call was, travel in the print
//! record, and the user-space engine calls the function when it renders the
//! record ([`FmtPiece::Call`]).
//!
//! This is what lets the syscall tapset's `argstr` and `retstr` be written in
//! the SystemTap language with `sprintf`, flag decoding and errno names, none of
//! which a BPF program can run: `printf("%s(%s)\n", name, argstr)` ships the
//! syscall's arguments and formats them where `sprintf` exists. A call whose
//! result is unused is dropped (the function has no effect); a call whose
//! result is used otherwise (a map key, a comparison) stays, and is compiled
//! for the kernel as any other call.
//!
//! A function is pure when its body, and every function it calls, only computes
//! with its arguments: arithmetic, strings, `sprintf`, and built-ins that read
//! nothing but their arguments. It must not read globals, memory or the probe's
//! context, since the user-space call happens later and elsewhere.

use super::{BlockId, Body, FmtPiece, FuncId, Inst, PrintSpec, Program, Reg, Term, Ty};
use crate::builtins::Builtin;
use crate::hir::{Context, PrintKind};
use rstap_grammar::format::{Conversion, Width};
use std::collections::{HashMap, HashSet};

/// Defers every deferrable call of the program's kernel-context handlers.
pub fn defer_calls(prog: &mut Program) {
    inline_stateful_formatters(prog);
    outline_sprintfs(prog);
    let pure = pure_functions(prog);
    for probe in &mut prog.probes {
        if probe.context == Context::Kernel {
            body(&mut probe.body, &pure);
        }
    }
}

/// Inlines into each kernel-context handler its calls of functions that keep
/// state and format the string they return (`thread_indent`: a depth in a
/// global, then `sprintf`): the call cannot be deferred as a whole, but once
/// its body is the handler's, its `sprintf` can be, like the handler's own.
/// Pure functions stay calls, to be deferred whole. (The backend inlines what
/// is left, counting MAXNESTING from here.)
fn inline_stateful_formatters(prog: &mut Program) {
    let pure = pure_functions(prog);
    let formats = formatting_functions(prog);
    let inline = |f: FuncId| !pure[f.index()] && formats[f.index()];
    for p in 0..prog.probes.len() {
        let probe = &prog.probes[p];
        let calls_one = probe
            .body
            .blocks
            .iter()
            .flat_map(|b| &b.insts)
            .any(|i| matches!(i, Inst::Call { dst: Some(_), func, .. } if inline(*func)));
        if probe.context != Context::Kernel || !calls_one {
            continue;
        }
        // Recursion is refused when the backend inlines the rest.
        if let Ok(body) =
            super::inline::inline_calls_but(prog, &probe.body, usize::MAX, &|f| !inline(f))
        {
            prog.probes[p].body = body;
        }
    }
}

/// Which functions format a string with `sprintf`, themselves or in a
/// function they call.
fn formatting_functions(prog: &Program) -> Vec<bool> {
    let own = |f: &super::Function| {
        f.body
            .blocks
            .iter()
            .flat_map(|b| &b.insts)
            .any(|i| matches!(i, Inst::Print { dst: Some(_), .. }))
    };
    let mut formats: Vec<bool> = prog.functions.iter().map(own).collect();
    loop {
        let mut changed = false;
        for (i, f) in prog.functions.iter().enumerate() {
            if formats[i] {
                continue;
            }
            let calls = f.body.blocks.iter().flat_map(|b| &b.insts).any(|inst| {
                matches!(inst, Inst::Call { func, .. } if formats.get(func.index()).copied().unwrap_or(false))
            });
            if calls {
                formats[i] = true;
                changed = true;
            }
        }
        if !changed {
            return formats;
        }
    }
}

/// Makes each `sprintf` (and `sprint*`) of a kernel-context handler a call of
/// a function of its own that returns it, so that one whose result is only
/// printed is deferred like any pure call. Where the result is used in the
/// kernel (a map key), the call is inlined back and compiled as before.
fn outline_sprintfs(prog: &mut Program) {
    for p in 0..prog.probes.len() {
        if prog.probes[p].context != Context::Kernel {
            continue;
        }
        let at = prog.probes[p].span;
        for b in 0..prog.probes[p].body.blocks.len() {
            for i in 0..prog.probes[p].body.blocks[b].insts.len() {
                let body = &prog.probes[p].body;
                let Inst::Print {
                    dst: Some(dst),
                    spec,
                    args,
                } = &body.blocks[b].insts[i]
                else {
                    continue;
                };
                let params: Vec<Ty> = args.iter().map(|&a| body.ty(a)).collect();
                let (dst, args) = (*dst, args.clone());
                let func = FuncId(u32::try_from(prog.functions.len()).unwrap_or(u32::MAX));
                prog.functions.push(formatter((**spec).clone(), params));
                prog.probes[p].body.blocks[b].insts[i] = Inst::Call {
                    dst: Some(dst),
                    func,
                    args,
                    at,
                };
            }
        }
    }
}

/// `function __sprintf(a, b, ...) { return sprintf(FORMAT, a, b, ...) }`.
fn formatter(spec: PrintSpec, params: Vec<Ty>) -> super::Function {
    let n = params.len();
    let mut regs = params;
    regs.push(Ty::Str);
    let result = Reg(u32::try_from(n).unwrap_or(u32::MAX));
    let params: Vec<Reg> = (0..n)
        .map(|i| Reg(u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    super::Function {
        name: "__sprintf".into(),
        params: params.clone(),
        ret: Some(Ty::Str),
        next: None,
        body: Body {
            regs,
            blocks: vec![super::Block {
                insts: vec![Inst::Print {
                    dst: Some(result),
                    spec: Box::new(spec),
                    args: params,
                }],
                term: Term::Return(Some(result)),
                actions: 0,
                catch: None,
            }],
            iters: 0,
            names: Vec::new(),
        },
    }
}

/// Which functions compute only from their arguments (see the module doc).
fn pure_functions(prog: &Program) -> Vec<bool> {
    let n = prog.functions.len();
    // Assume every function with a value is pure, then remove those that act
    // or call one that is not, until nothing changes (recursion stays pure
    // only if the whole cycle is).
    let mut pure: Vec<bool> = prog.functions.iter().map(|f| f.ret.is_some()).collect();
    loop {
        let mut changed = false;
        for i in 0..n {
            if pure[i] && !computes_only(&prog.functions[i].body, &pure) {
                pure[i] = false;
                changed = true;
            }
        }
        if !changed {
            return pure;
        }
    }
}

fn computes_only(body: &Body, pure: &[bool]) -> bool {
    body.blocks.iter().all(|b| {
        !matches!(b.term, Term::IterNext { .. })
            && b.insts.iter().all(|i| match i {
                Inst::Const { .. }
                | Inst::Str { .. }
                | Inst::Move { .. }
                | Inst::Unary { .. }
                | Inst::Binary { .. }
                | Inst::Compare { .. }
                | Inst::StrCompare { .. }
                | Inst::Concat { .. } => true,
                Inst::Print { dst, .. } => dst.is_some(),
                Inst::Call { func, .. } => pure.get(func.index()).copied().unwrap_or(false),
                Inst::Builtin { func, .. } => reads_only_arguments(*func),
                _ => false,
            })
    })
}

/// Built-ins whose result depends on their arguments alone.
fn reads_only_arguments(b: Builtin) -> bool {
    matches!(
        b,
        Builtin::Strlen
            | Builtin::Substr
            | Builtin::Stringat
            | Builtin::Isinstr
            | Builtin::Strpos
            | Builtin::Strtol
            | Builtin::StrReplace
            | Builtin::TextStr
            | Builtin::TextStrn
            | Builtin::ErrnoStr
            | Builtin::StrspnAt
            | Builtin::StrcspnAt
            // The session's time zone: the same when the record is printed.
            | Builtin::TzGmtoff
            | Builtin::TzName
    )
}

/// A call of a pure function: where it is.
struct Site {
    block: usize,
    index: usize,
}

/// A site whose call is deferred: the function, and the registers that keep
/// its arguments (none when its result is unused).
struct Deferred {
    func: FuncId,
    copies: Vec<Reg>,
    args: Vec<Reg>,
    at: super::At,
}

fn body(body: &mut Body, pure: &[bool]) {
    let sites = call_sites(body, pure);
    if sites.is_empty() {
        return;
    }
    let origin = carriers(body, &sites);
    let users = print_users(body, &origin);
    let mut deferred: HashMap<usize, Deferred> = HashMap::new();
    for (s, site) in sites.iter().enumerate() {
        let Inst::Call {
            dst: Some(d),
            func,
            args,
            at,
        } = &body.blocks[site.block].insts[site.index]
        else {
            continue;
        };
        if origin.get(d) != Some(&s) || in_loop(body, site.block) {
            continue;
        }
        let used_at = users.get(&s).map_or(&[][..], Vec::as_slice);
        if !used_at
            .iter()
            .all(|&(b, i)| dominates(body, (site.block, site.index), (b, i)))
        {
            continue;
        }
        let (func, args, at) = (*func, args.clone(), *at);
        let copies = if used_at.is_empty() {
            Vec::new()
        } else {
            args.iter()
                .map(|&a| {
                    let r = Reg(u32::try_from(body.regs.len()).unwrap_or(u32::MAX));
                    body.regs.push(body.ty(a));
                    r
                })
                .collect()
        };
        deferred.insert(
            s,
            Deferred {
                func,
                copies,
                args,
                at,
            },
        );
    }
    if deferred.is_empty() {
        return;
    }
    let carried = |r: &Reg| origin.get(r).and_then(|s| deferred.get(s));
    let ty = body.regs.clone();
    for (b, block) in body.blocks.iter_mut().enumerate() {
        let old = std::mem::take(&mut block.insts);
        for (i, inst) in old.into_iter().enumerate() {
            if let Some(d) = sites
                .iter()
                .position(|s| s.block == b && s.index == i)
                .and_then(|s| deferred.get(&s))
            {
                for (&dst, &src) in d.copies.iter().zip(&d.args) {
                    block.insts.push(Inst::Move { dst, src });
                }
                continue;
            }
            match inst {
                Inst::Move { dst, .. } if carried(&dst).is_some() => {}
                Inst::Print {
                    dst: None,
                    spec,
                    args,
                } if args.iter().any(|a| carried(a).is_some()) => {
                    let format = as_printf(&spec, &args, &ty);
                    let (format, args) = splice(format, &args, &carried);
                    block.insts.push(Inst::Print {
                        dst: None,
                        spec: Box::new(PrintSpec {
                            kind: PrintKind::Printf,
                            format,
                        }),
                        args,
                    });
                }
                other => block.insts.push(other),
            }
        }
    }
}

/// A printf's pieces and arguments with each deferred value replaced by the
/// call that makes it and that call's arguments.
fn splice<'d>(
    format: Vec<FmtPiece>,
    args: &[Reg],
    carried: &impl Fn(&Reg) -> Option<&'d Deferred>,
) -> (Vec<FmtPiece>, Vec<Reg>) {
    let mut next = args.iter();
    let mut pieces = Vec::with_capacity(format.len());
    let mut out = Vec::with_capacity(args.len());
    for piece in format {
        let FmtPiece::Conv(c) = piece else {
            pieces.push(piece);
            continue;
        };
        for w in [c.width, c.precision] {
            if w == Width::Arg {
                out.extend(next.next());
            }
        }
        match next.next() {
            Some(a) => match carried(a) {
                Some(d) => {
                    pieces.push(FmtPiece::Call {
                        func: d.func,
                        args: d.copies.len(),
                        conv: c,
                        at: d.at,
                    });
                    out.extend(&d.copies);
                }
                None => {
                    pieces.push(FmtPiece::Conv(c));
                    out.push(*a);
                }
            },
            None => pieces.push(FmtPiece::Conv(c)),
        }
    }
    out.extend(next);
    (pieces, out)
}

/// Calls of pure functions that return a value.
fn call_sites(body: &Body, pure: &[bool]) -> Vec<Site> {
    let mut out = Vec::new();
    for (b, block) in body.blocks.iter().enumerate() {
        for (i, inst) in block.insts.iter().enumerate() {
            if let Inst::Call {
                dst: Some(_), func, ..
            } = inst
                && pure.get(func.index()).copied().unwrap_or(false)
            {
                out.push(Site { block: b, index: i });
            }
        }
    }
    out
}

/// Registers whose every value is one call site's result: its destination,
/// and registers only ever assigned by moves from such registers, provided
/// every use of each is a move into another of them or a print argument.
fn carriers(body: &Body, sites: &[Site]) -> HashMap<Reg, usize> {
    let mut origin: HashMap<Reg, Option<usize>> = HashMap::new();
    let mut bad: HashSet<Reg> = HashSet::new();
    // Definitions, in the blocks that run: an inlined function's fall-off-end
    // return, after its last `return`, gives its result "" where nothing
    // goes.
    let live = reachable(body);
    for (b, block) in body.blocks.iter().enumerate() {
        if !live[b] {
            continue;
        }
        for (i, inst) in block.insts.iter().enumerate() {
            if let Some(d) = inst.def() {
                let site = sites.iter().position(|s| s.block == b && s.index == i);
                match (inst, site) {
                    (Inst::Call { .. }, Some(s)) => merge(&mut origin, &mut bad, d, Some(s)),
                    (Inst::Move { .. }, None) => {
                        origin.entry(d).or_insert(None);
                    }
                    _ => {
                        bad.insert(d);
                    }
                }
            }
        }
        if let Term::IterNext { keys, value, .. } = &block.term {
            bad.extend(keys.iter().flatten().copied());
            bad.extend(value.iter().copied());
        }
        if let Some((_, Some(v))) = block.catch {
            bad.insert(v);
        }
    }
    // Moves carry their source's origin; repeat until stable.
    loop {
        let mut changed = false;
        for block in live_blocks(body, &live) {
            for inst in &block.insts {
                if let Inst::Move { dst, src } = inst {
                    if bad.contains(src) || !origin.contains_key(src) {
                        changed |= bad.insert(*dst);
                        continue;
                    }
                    let from = origin.get(src).copied().flatten();
                    if from.is_some() {
                        let before = origin.get(dst).copied().flatten();
                        let was_bad = bad.contains(dst);
                        merge(&mut origin, &mut bad, *dst, from);
                        changed |= before != origin.get(dst).copied().flatten()
                            || was_bad != bad.contains(dst);
                    }
                }
            }
        }
        // Uses other than moves and print arguments disqualify a register,
        // and so does a move into a disqualified one.
        for block in live_blocks(body, &live) {
            for inst in &block.insts {
                match inst {
                    Inst::Move { dst, src } => {
                        if bad.contains(dst) {
                            changed |= bad.insert(*src);
                        }
                    }
                    Inst::Print {
                        dst: None,
                        spec,
                        args,
                    } => {
                        for (k, a) in args.iter().enumerate() {
                            if !value_slot(spec, k) {
                                changed |= bad.insert(*a);
                            }
                        }
                    }
                    other => {
                        for u in other.uses() {
                            changed |= bad.insert(u);
                        }
                    }
                }
            }
            for u in term_uses(&block.term) {
                changed |= bad.insert(u);
            }
        }
        if !changed {
            break;
        }
    }
    origin
        .into_iter()
        .filter(|(r, _)| !bad.contains(r))
        .filter_map(|(r, o)| o.map(|o| (r, o)))
        .collect()
}

/// Which blocks the entry (or a catch) can reach.
fn reachable(body: &Body) -> Vec<bool> {
    let mut seen = vec![false; body.blocks.len()];
    let mut stack = vec![0usize];
    while let Some(x) = stack.pop() {
        if x >= seen.len() || std::mem::replace(&mut seen[x], true) {
            continue;
        }
        stack.extend(body.blocks[x].term.successors().map(BlockId::index));
        if let Some((c, _)) = body.blocks[x].catch {
            stack.push(c.index());
        }
    }
    seen
}

fn live_blocks<'b>(body: &'b Body, live: &'b [bool]) -> impl Iterator<Item = &'b super::Block> {
    body.blocks
        .iter()
        .zip(live)
        .filter(|(_, l)| **l)
        .map(|(b, _)| b)
}

fn merge(
    origin: &mut HashMap<Reg, Option<usize>>,
    bad: &mut HashSet<Reg>,
    r: Reg,
    site: Option<usize>,
) {
    let slot = origin.entry(r).or_insert(None);
    match (*slot, site) {
        (None, s) => *slot = s,
        (Some(a), Some(b)) if a != b => {
            bad.insert(r);
        }
        _ => {}
    }
}

/// Where (block, instruction) each site's result is printed.
fn print_users(body: &Body, origin: &HashMap<Reg, usize>) -> HashMap<usize, Vec<(usize, usize)>> {
    let mut out: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
    for (b, block) in body.blocks.iter().enumerate() {
        for (i, inst) in block.insts.iter().enumerate() {
            if let Inst::Print {
                dst: None, args, ..
            } = inst
            {
                for a in args {
                    if let Some(&s) = origin.get(a) {
                        out.entry(s).or_default().push((b, i));
                    }
                }
            }
        }
    }
    out
}

/// Whether print argument `k` of `spec` is a value shown whole (not a `*`
/// width or precision).
fn value_slot(spec: &PrintSpec, k: usize) -> bool {
    if !matches!(spec.kind, PrintKind::Printf) {
        return matches!(
            spec.kind,
            PrintKind::Print | PrintKind::Println | PrintKind::Printd | PrintKind::Printdln
        );
    }
    let mut at = 0;
    for piece in &spec.format {
        let FmtPiece::Conv(c) = piece else { continue };
        for w in [c.width, c.precision] {
            if w == Width::Arg {
                if at == k {
                    return false;
                }
                at += 1;
            }
        }
        if at == k {
            return true;
        }
        at += 1;
    }
    false
}

/// Whether the instruction at `a` runs before `b` on every path from the entry.
fn dominates(body: &Body, a: (usize, usize), b: (usize, usize)) -> bool {
    if a.0 == b.0 {
        return a.1 < b.1;
    }
    // b is dominated when it cannot be reached from the entry without a's block.
    let mut seen = vec![false; body.blocks.len()];
    let mut stack = vec![0usize];
    while let Some(x) = stack.pop() {
        if x == a.0 || std::mem::replace(&mut seen[x], true) {
            continue;
        }
        if x == b.0 {
            return false;
        }
        stack.extend(body.blocks[x].term.successors().map(BlockId::index));
        if let Some((c, _)) = body.blocks[x].catch {
            stack.push(c.index());
        }
    }
    true
}

/// Whether `block` can run again after itself.
fn in_loop(body: &Body, block: usize) -> bool {
    let mut seen = vec![false; body.blocks.len()];
    let mut stack: Vec<usize> = body.blocks[block]
        .term
        .successors()
        .map(BlockId::index)
        .collect();
    while let Some(x) = stack.pop() {
        if x == block {
            return true;
        }
        if std::mem::replace(&mut seen[x], true) {
            continue;
        }
        stack.extend(body.blocks[x].term.successors().map(BlockId::index));
    }
    false
}

fn term_uses(t: &Term) -> Vec<Reg> {
    match t {
        Term::Branch { cond, .. } => vec![*cond],
        Term::Return(r) => r.iter().copied().collect(),
        Term::Jump(_) | Term::Next | Term::IterNext { .. } => Vec::new(),
    }
}

/// `spec` as a printf: print, println, printd and printdln spelled as the
/// formats that print the same bytes.
fn as_printf(spec: &PrintSpec, args: &[Reg], regs: &[Ty]) -> Vec<FmtPiece> {
    let plain = |r: Reg| {
        FmtPiece::Conv(Conversion {
            flag: None,
            width: Width::None,
            precision: Width::None,
            conv: if regs[r.index()] == Ty::Str { 's' } else { 'd' },
        })
    };
    let (delim, newline) = match spec.kind {
        PrintKind::Printf => return spec.format.clone(),
        PrintKind::Print => (None, false),
        PrintKind::Println => (None, true),
        PrintKind::Printd | PrintKind::Printdln => (
            match spec.format.first() {
                Some(FmtPiece::Lit(d)) => Some(d.clone()),
                _ => None,
            },
            spec.kind == PrintKind::Printdln,
        ),
        _ => return spec.format.clone(),
    };
    let mut out = Vec::new();
    for (k, &a) in args.iter().enumerate() {
        if k > 0
            && let Some(d) = &delim
        {
            out.push(FmtPiece::Lit(d.clone()));
        }
        out.push(plain(a));
    }
    if newline {
        out.push(FmtPiece::Lit(b"\n".to_vec()));
    }
    out
}
