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
        .map(|f| (f.name.as_str(), Some(f)))
        .chain(p.builtins.iter().map(|b| (b.name(), None)))
        .collect();
    functions.sort_by(|a, b| a.0.cmp(b.0));
    if !functions.is_empty() {
        out.push_str("# functions\n");
    }
    for (name, f) in functions {
        match f {
            Some(f) => {
                let params: Vec<String> = f.params().iter().map(local).collect();
                let _ = writeln!(out, "{name}:{} ({})", f.ret, params.join(", "));
                locals(&mut out, &f.locals[f.params..], &[]);
            }
            None => {
                if let Some((ret, params)) = builtin_signature(name) {
                    let _ = writeln!(out, "{name}:{ret} ({params})");
                }
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

/// A built-in's return type and parameter list as `-p2` prints them.
fn builtin_signature(name: &str) -> Option<(crate::hir::Type, String)> {
    (0..8).find_map(|arity| {
        crate::builtins::lookup(name, arity).map(|s| {
            let params: Vec<String> = s.params.iter().map(|(n, t)| format!("{n}:{t}")).collect();
            (s.ret, params.join(", "))
        })
    })
}
