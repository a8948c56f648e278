//! `rstap -l` / `-L`: the probe points of this kernel that a pattern matches, in
//! stap's spelling, with their target variables for `-L`.
//!
//! Where rstap differs from stap: function points print without stap's
//! `@file:line` suffix (that needs DWARF; rstap knows functions from kallsyms and
//! their parameters from BTF), and patterns that select by source file are
//! refused for the same reason.

use crate::ctype::TypeGraph;
use crate::elf::Binary;
use crate::kernel::{KernelError, KernelInfo, TracepointId};
use rstap_grammar::ast::{Literal, ProbePoint};
use rstap_grammar::facts::fnmatch;
use std::sync::Arc;

/// Why a pattern could not be listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListError {
    /// The kernel could not tell us what it has.
    Kernel(KernelError),
    /// A family this build cannot resolve yet.
    Unsupported(String),
}

/// The points `pattern` matches, one line each, sorted; with `vars`, each line
/// carries ` $name:type` for every target variable.
pub fn list(
    pattern: &ProbePoint,
    kernel: &dyn KernelInfo,
    vars: bool,
) -> Result<Vec<String>, ListError> {
    let names: Vec<&str> = pattern.components.iter().map(|c| c.name.as_str()).collect();
    match names.as_slice() {
        ["begin" | "end" | "error" | "never"] => Ok(vec![spell(pattern)]),
        ["kernel", "trace"] => {
            let Some(Literal::Str(pat)) = pattern.components[1].arg.as_ref().map(|a| &a.node)
            else {
                return Err(ListError::Unsupported(
                    "kernel.trace needs a \"system:name\" pattern".into(),
                ));
            };
            tracepoints(pat, kernel, vars).map_err(ListError::Kernel)
        }
        ["kernel", "function"] | ["kernel", "function", "return"] => {
            let ret = names.len() == 3;
            kernel_functions(None, str_arg(pattern, 1)?, ret, kernel, vars)
        }
        ["module", "function"] | ["module", "function", "return"] => {
            let ret = names.len() == 3;
            let module = str_arg(pattern, 0)?;
            kernel_functions(Some(module), str_arg(pattern, 1)?, ret, kernel, vars)
        }
        ["process", "function"] | ["process", "function", "return"] => {
            let bin = binary(pattern, kernel)?;
            let ret = if names.len() == 3 { ".return" } else { "" };
            let name_pat = function_pattern(str_arg(pattern, 1)?)?;
            let mut out: Vec<String> = bin
                .symbols
                .iter()
                .filter(|s| fnmatch(name_pat, &s.name))
                .map(|s| {
                    let mut line =
                        format!("process(\"{}\").function(\"{}\"){ret}", bin.path, s.name);
                    // With DWARF, -L names the parameters as stap does.
                    let params = bin.functions.get(&s.name).filter(|_| vars);
                    for p in params.into_iter().flatten().filter(|p| !p.name.is_empty()) {
                        line.push_str(&format!(" ${}:{}", p.name, p.c_type));
                    }
                    line
                })
                .collect();
            out.dedup();
            Ok(out)
        }
        ["process", "mark"] => marks(&*binary(pattern, kernel)?, None, str_arg(pattern, 1)?, vars),
        ["process", "provider", "mark"] => {
            let provider = str_arg(pattern, 1)?;
            marks(
                &*binary(pattern, kernel)?,
                Some(provider),
                str_arg(pattern, 2)?,
                vars,
            )
        }
        _ => Err(ListError::Unsupported(format!(
            "listing `{}` is not available yet: this build resolves begin, end, error, never, kernel.trace, kernel.function, module(…).function, process(…).function and process(…).mark points",
            spell(pattern)
        ))),
    }
}

/// The string argument of component `k`.
fn str_arg(pattern: &ProbePoint, k: usize) -> Result<&str, ListError> {
    let c = &pattern.components[k];
    match c.arg.as_ref().map(|a| &a.node) {
        Some(Literal::Str(s)) => Ok(s),
        _ => Err(ListError::Unsupported(format!(
            "`{}` needs a string argument in `{}`",
            c.name,
            spell(pattern)
        ))),
    }
}

/// The function-name part of `NAME[@FILE[:LINE]]`; a file other than `*` needs
/// DWARF, which rstap does not read.
fn function_pattern(pat: &str) -> Result<&str, ListError> {
    match pat.split_once('@') {
        None => Ok(pat),
        Some((name, "*")) => Ok(name),
        Some(_) => Err(ListError::Unsupported(format!(
            "`{pat}`: selecting functions by source file needs debuginfo, which rstap does not read; name the function alone"
        ))),
    }
}

fn binary(pattern: &ProbePoint, kernel: &dyn KernelInfo) -> Result<Arc<Binary>, ListError> {
    kernel
        .user_binary(str_arg(pattern, 0)?)
        .map_err(ListError::Kernel)
}

/// `kernel.function` (module `None`) or `module("M").function` points, with
/// their parameters from BTF for `-L` (`$return` first for `.return`).
fn kernel_functions(
    module: Option<&str>,
    pat: &str,
    ret: bool,
    kernel: &dyn KernelInfo,
    vars: bool,
) -> Result<Vec<String>, ListError> {
    let name_pat = function_pattern(pat)?;
    let symbols = kernel.kernel_functions().map_err(ListError::Kernel)?;
    // Module BTF is not read yet, so only vmlinux functions get variables.
    let types = match (vars, module) {
        (true, None) => Some(kernel.kernel_types().map_err(ListError::Kernel)?),
        _ => None,
    };
    let mut out = Vec::new();
    for sym in &symbols {
        let module_ok = match (module, &sym.module) {
            (None, None) => true,
            (Some(p), Some(m)) => fnmatch(p, m),
            _ => false,
        };
        if !module_ok || !fnmatch(name_pat, &sym.name) {
            continue;
        }
        let mut line = match &sym.module {
            None => format!("kernel.function(\"{}\")", sym.name),
            Some(m) => format!("module(\"{m}\").function(\"{}\")", sym.name),
        };
        if ret {
            line.push_str(".return");
        }
        if let Some(types) = types {
            line.push_str(&parameters(types, &sym.name, ret));
        }
        out.push(line);
    }
    out.dedup();
    Ok(out)
}

/// ` $return:T $a:T $b:T` for `-L`, from the BTF prototype when there is one.
fn parameters(types: &TypeGraph, function: &str, ret: bool) -> String {
    let Some(sig) = types.function(function) else {
        return String::new();
    };
    let mut s = String::new();
    if ret && !matches!(types.get(sig.ret), crate::ctype::CType::Void) {
        s.push_str(&format!(" $return:{}", types.spell(sig.ret)));
    }
    for (name, ty) in sig.params.iter().filter(|(n, _)| !n.is_empty()) {
        s.push_str(&format!(" ${name}:{}", types.spell(*ty)));
    }
    s
}

/// SDT probes of `bin` whose name (and provider, when given) match; `-L` adds
/// `$arg1:long …`, one per argument, as stap does.
fn marks(
    bin: &Binary,
    provider: Option<&str>,
    pat: &str,
    vars: bool,
) -> Result<Vec<String>, ListError> {
    let mut out = Vec::new();
    for note in &bin.usdt {
        if !fnmatch(pat, &note.name) || provider.is_some_and(|p| !fnmatch(p, &note.provider)) {
            continue;
        }
        let mut line = match provider {
            Some(_) => format!(
                "process(\"{}\").provider(\"{}\").mark(\"{}\")",
                bin.path, note.provider, note.name
            ),
            None => format!("process(\"{}\").mark(\"{}\")", bin.path, note.name),
        };
        if vars {
            let count = note.args_text.split_whitespace().count();
            for k in 1..=count {
                line.push_str(&format!(" $arg{k}:long"));
            }
        }
        out.push(line);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn tracepoints(
    pattern: &str,
    kernel: &dyn KernelInfo,
    vars: bool,
) -> Result<Vec<String>, KernelError> {
    let (sys_pat, name_pat) = pattern.split_once(':').unwrap_or(("*", pattern));
    let mut out = Vec::new();
    for tp in kernel.tracepoints()? {
        if !(fnmatch(sys_pat, &tp.system) && fnmatch(name_pat, &tp.name)) {
            continue;
        }
        let mut line = format!("kernel.trace(\"{tp}\")");
        if vars {
            line.push_str(&variables(&tp, kernel)?);
        }
        out.push(line);
    }
    Ok(out)
}

fn variables(tp: &TracepointId, kernel: &dyn KernelInfo) -> Result<String, KernelError> {
    let format = kernel.tracepoint_format(tp)?;
    Ok(format
        .args()
        .map(|f| format!(" ${}:{}", f.name, f.var_type()))
        .collect())
}

/// A probe point as stap prints it in listings.
fn spell(p: &ProbePoint) -> String {
    let mut s = String::new();
    for (k, c) in p.components.iter().enumerate() {
        if k > 0 {
            s.push('.');
        }
        s.push_str(&c.name);
        match c.arg.as_ref().map(|a| &a.node) {
            Some(Literal::Num(n)) => s.push_str(&format!("({n})")),
            Some(Literal::Str(t)) => s.push_str(&format!("(\"{t}\")")),
            None => {}
        }
    }
    s
}
