//! The `-p3` text form of the MIR: one line per instruction, registers as `r3`,
//! blocks as `b2`, globals by name.

use super::{Body, FmtPiece, Global, GlobalKind, Inst, IterSource, Program, Term, Ty};
use crate::hir::GlobalId;
use std::fmt::{self, Write};

pub(super) fn program(p: &Program, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for g in &p.globals {
        writeln!(f, "{}", global(g))?;
    }
    for (i, func) in p.functions.iter().enumerate() {
        let params: Vec<String> = func.params.iter().map(ToString::to_string).collect();
        let ret = func.ret.map_or("void", ty);
        writeln!(
            f,
            "function fn{i} {}({}) -> {ret} {{",
            func.name,
            params.join(", ")
        )?;
        body(p, &func.body, f)?;
        writeln!(f, "}}")?;
    }
    for probe in &p.probes {
        writeln!(f, "probe {} ({:?}) {{", probe.name, probe.context)?;
        body(p, &probe.body, f)?;
        writeln!(f, "}}")?;
    }
    Ok(())
}

fn ty(t: Ty) -> &'static str {
    match t {
        Ty::Long => "long",
        Ty::Str => "string",
    }
}

fn global(g: &Global) -> String {
    let mut s = format!("global {}: ", g.name);
    match &g.kind {
        GlobalKind::Value(t) => s.push_str(ty(*t)),
        GlobalKind::Stats(spec) => {
            s.push_str("stats");
            for h in &spec.hists {
                let _ = write!(s, " {h:?}");
            }
            if spec.variance_shift > 0 {
                let _ = write!(s, " variance<<{}", spec.variance_shift);
            }
        }
    }
    if !g.keys.is_empty() {
        let keys: Vec<&str> = g.keys.iter().map(|&k| ty(k)).collect();
        let _ = write!(s, " [{}]", keys.join(", "));
    }
    if let Some(n) = g.size {
        let _ = write!(s, " size={n}");
    }
    if g.wrap {
        s.push_str(" wrap");
    }
    if let Some(v) = &g.init {
        let _ = write!(s, " = {v:?}");
    }
    s
}

fn body(p: &Program, b: &Body, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let regs: Vec<String> = b
        .regs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let name = b
                .names
                .iter()
                .find(|(r, _)| r.index() == i)
                .map_or(String::new(), |(_, n)| format!("({n})"));
            format!("r{i}{name}:{}", ty(*t))
        })
        .collect();
    writeln!(f, "  regs {}", regs.join(" "))?;
    for (i, block) in b.blocks.iter().enumerate() {
        write!(f, "  b{i}:")?;
        if block.actions > 0 {
            write!(f, " actions={}", block.actions)?;
        }
        if let Some((h, r)) = block.catch {
            write!(f, " catch={h}")?;
            if let Some(r) = r {
                write!(f, "({r})")?;
            }
        }
        writeln!(f)?;
        for inst in &block.insts {
            writeln!(f, "    {}", self::inst(p, inst))?;
        }
        writeln!(f, "    {}", term(&block.term))?;
    }
    Ok(())
}

fn name(p: &Program, g: GlobalId) -> &str {
    p.globals.get(g.index()).map_or("?", |g| g.name.as_str())
}

fn list(regs: &[super::Reg]) -> String {
    regs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn opt_list(regs: &[Option<super::Reg>]) -> String {
    regs.iter()
        .map(|r| r.map_or("*".to_string(), |r| r.to_string()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn dst(d: Option<super::Reg>) -> String {
    d.map_or(String::new(), |d| format!("{d} = "))
}

fn inst(p: &Program, i: &Inst) -> String {
    match i {
        Inst::Const { dst, value } => format!("{dst} = {value}"),
        Inst::Str { dst, bytes } => format!("{dst} = {:?}", String::from_utf8_lossy(bytes)),
        Inst::Move { dst, src } => format!("{dst} = {src}"),
        Inst::Unary { dst, op, src } => format!("{dst} = {op:?} {src}"),
        Inst::Binary { dst, op, a, b, .. } => format!("{dst} = {a} {op:?} {b}"),
        Inst::Compare { dst, op, a, b } => format!("{dst} = {a} {op:?} {b}"),
        Inst::StrCompare { dst, op, a, b } => format!("{dst} = strcmp {a} {op:?} {b}"),
        Inst::Concat { dst, a, b } => format!("{dst} = {a} . {b}"),
        Inst::Regex {
            dst,
            src,
            pattern,
            negated,
        } => format!(
            "{dst} = {src} {} {pattern:?}",
            if *negated { "!~" } else { "=~" }
        ),
        Inst::ReadGlobal { dst, global } => format!("{dst} = {}", name(p, *global)),
        Inst::WriteGlobal { global, src } => format!("{} = {src}", name(p, *global)),
        Inst::MapRead { dst, global, keys } => {
            format!("{dst} = {}[{}]", name(p, *global), list(keys))
        }
        Inst::MapWrite {
            global, keys, src, ..
        } => format!("{}[{}] = {src}", name(p, *global), list(keys)),
        Inst::MapContains { dst, global, keys } => {
            format!("{dst} = [{}] in {}", opt_list(keys), name(p, *global))
        }
        Inst::MapDelete { global, keys } => {
            format!("delete {}[{}]", name(p, *global), opt_list(keys))
        }
        Inst::Clear { global } => format!("delete {}", name(p, *global)),
        Inst::AggAdd {
            global,
            keys,
            value,
            ..
        } => format!("{}[{}] <<< {value}", name(p, *global), list(keys)),
        Inst::AggRead {
            dst,
            global,
            keys,
            op,
            ..
        } => format!("{dst} = @{op:?}({}[{}])", name(p, *global), list(keys)),
        Inst::HistBucket {
            dst,
            global,
            keys,
            hist,
            bucket,
        } => format!(
            "{dst} = {hist:?}({}[{}])[{bucket}]",
            name(p, *global),
            list(keys)
        ),
        Inst::Call {
            dst: d, func, args, ..
        } => format!("{}call {func}({})", dst(*d), list(args)),
        Inst::Builtin {
            dst: d, func, args, ..
        } => format!("{}{}({})", dst(*d), func.name(), list(args)),
        Inst::Context { dst, value } => format!("{dst} = context {value:?}"),
        Inst::Load {
            dst,
            addr,
            size,
            signed,
            user,
            ..
        } => format!(
            "{dst} = load{}{} {size} [{addr}]",
            if *signed { " signed" } else { "" },
            if *user { " user" } else { "" }
        ),
        Inst::LoadStr {
            dst,
            addr,
            len,
            user,
            ..
        } => format!(
            "{dst} = loadstr{} {len} [{addr}]",
            if *user { " user" } else { "" }
        ),
        Inst::Print { dst: d, spec, args } => {
            let fmt: String = spec
                .format
                .iter()
                .map(|p| match p {
                    FmtPiece::Lit(b) => String::from_utf8_lossy(b).into_owned(),
                    FmtPiece::Conv(c) => format!("%{}", c.conv),
                    FmtPiece::Call {
                        func, args, conv, ..
                    } => {
                        format!("%{{{func}/{args}}}{}", conv.conv)
                    }
                })
                .collect();
            format!("{}{:?} {fmt:?} ({})", dst(*d), spec.kind, list(args))
        }
        Inst::PrintHist {
            global, keys, hist, ..
        } => format!("print {hist:?}({}[{}])", name(p, *global), list(keys)),
        Inst::IterStart {
            iter,
            source,
            sort,
            limit,
            slice,
        } => {
            let src = match &**source {
                IterSource::Array(g) => name(p, *g).to_string(),
                IterSource::Hist { global, keys, hist } => {
                    format!("{hist:?}({}[{}])", name(p, *global), list(keys))
                }
            };
            let mut s = format!("{iter} = iterate {src}");
            if let Some((k, d)) = sort.as_deref() {
                let _ = write!(s, " sort {k:?} {d:?}");
            }
            if let Some(l) = limit {
                let _ = write!(s, " limit {l}");
            }
            if let Some(sl) = slice {
                let _ = write!(s, " slice [{}]", opt_list(sl));
            }
            s
        }
    }
}

fn term(t: &Term) -> String {
    match t {
        Term::Jump(b) => format!("jump {b}"),
        Term::Branch {
            cond,
            then,
            otherwise,
        } => format!("branch {cond} ? {then} : {otherwise}"),
        Term::Return(None) => "return".into(),
        Term::Return(Some(r)) => format!("return {r}"),
        Term::Next => "next".into(),
        Term::IterNext {
            iter,
            keys,
            value,
            body,
            done,
        } => {
            let value = value.map_or(String::new(), |v| format!("{v} = "));
            format!(
                "next {iter} -> {value}[{}] ? {body} : {done}",
                opt_list(keys)
            )
        }
    }
}
