//! `-p2`: SystemTap's elaboration listing of a checked program — the globals it
//! uses, the functions it links (sorted by name), and each concrete probe with
//! how it was reached and its locals.

use crate::hir::{Local, Program};
use std::fmt::Write;

pub fn elaboration(p: &Program) -> String {
    let mut out = String::new();
    if !p.globals.is_empty() {
        out.push_str("# globals\n");
    }
    for g in &p.globals {
        out.push_str(&g.name);
        if g.wrap {
            out.push('%');
        }
        if let Some(n) = g.size {
            let _ = write!(out, "[{n}]");
        }
        let _ = write!(out, ":{}", g.ty);
        if let Some(keys) = &g.keys {
            let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
            let _ = write!(out, " [{}]", keys.join(", "));
        }
        out.push('\n');
    }
    let mut functions: Vec<_> = p
        .functions
        .iter()
        .map(|f| (f.name.as_str(), Listed::Script(f)))
        .chain(p.builtins.iter().map(|b| (b.name(), Listed::Builtin(*b))))
        .collect();
    functions.sort_by(|a, b| a.0.cmp(b.0));
    if !functions.is_empty() {
        out.push_str("# functions\n");
    }
    for (name, f) in functions {
        match f {
            Listed::Script(f) => {
                let params: Vec<String> = f.params().iter().map(local).collect();
                let _ = writeln!(out, "{name}:{} ({})", f.ret, params.join(", "));
                locals(&mut out, &f.locals[f.params..], &[]);
            }
            Listed::Builtin(b) => {
                let sig = b.signature();
                let params: Vec<String> =
                    sig.params.iter().map(|(n, t)| format!("{n}:{t}")).collect();
                let _ = writeln!(out, "{name}:{} ({})", sig.ret, params.join(", "));
            }
        }
    }
    if !p.probes.is_empty() {
        out.push_str("# probes\n");
    }
    for probe in &p.probes {
        let _ = writeln!(out, "{} /* <- {} */", probe.name, probe.origin);
        let cached: Vec<String> = probe
            .cached
            .iter()
            .map(|b| {
                format!(
                    "__stable___global_{}__overload_0_value:{}",
                    b.name(),
                    b.signature().ret
                )
            })
            .collect();
        locals(&mut out, &probe.locals, &cached);
    }
    out
}

/// A function in the listing: the script's or tapsets', or a built-in.
enum Listed<'p> {
    Script(&'p crate::hir::Function),
    Builtin(crate::builtins::Builtin),
}

fn local(l: &Local) -> String {
    format!("{}:{}", l.name, l.ty)
}

fn locals(out: &mut String, locals: &[Local], extra: &[String]) {
    if locals.is_empty() && extra.is_empty() {
        return;
    }
    out.push_str("  # locals\n");
    for l in locals {
        let _ = writeln!(out, "  {}", local(l));
    }
    for e in extra {
        let _ = writeln!(out, "  {e}");
    }
}
