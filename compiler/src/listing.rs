//! `rstap -l` / `-L`: the probe points of this kernel that a pattern matches, in
//! stap's spelling, with their target variables for `-L`.

use crate::kernel::{KernelError, KernelInfo, TracepointId};
use rstap_grammar::ast::{Literal, ProbePoint};
use rstap_grammar::facts::fnmatch;

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
        _ => Err(ListError::Unsupported(format!(
            "listing `{}` is not available yet: this build resolves begin, end, error, never and kernel.trace points",
            spell(pattern)
        ))),
    }
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
