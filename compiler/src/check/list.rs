//! `-l`/`-L` for probe aliases: the alias names a pattern matches, as stap lists
//! them, and with `-L` the variables an alias sets for its handler (`name:string`)
//! followed by the target variables of the point it expands to (`$field:long`).
//! Each alias is elaborated as a probe with an empty handler, so the variables and
//! their types are exactly what a script using it would see.

use super::points::{alias_match, spell};
use super::{Library, Options, check};
use crate::hir::PointKind;
use crate::kernel::KernelInfo;
use rstap_grammar::ast::{self, Item, ProbePoint};
use rstap_grammar::{FileId, Span};
use std::collections::BTreeSet;

/// Lines for every library alias whose name `pattern` matches, sorted.
pub fn list_aliases(
    pattern: &ProbePoint,
    library: &Library,
    kernel: &dyn KernelInfo,
    vars: bool,
) -> Vec<String> {
    let mut lines = BTreeSet::new();
    for file in library.files() {
        for item in &file.items {
            let Item::Alias(alias) = item else { continue };
            for name in &alias.names {
                let exact =
                    alias_match(&name.components, &pattern.components).is_some_and(<[_]>::is_empty);
                if !exact {
                    continue;
                }
                let mut line = spell(&name.components);
                if vars {
                    line.push_str(&variables(name, library, kernel));
                }
                lines.insert(line);
            }
        }
    }
    lines.into_iter().collect()
}

/// ` name:type ... $field:type ...` of a probe on `point`.
fn variables(point: &ProbePoint, library: &Library, kernel: &dyn KernelInfo) -> String {
    let span = Span::new(FileId(u32::MAX), 0, 0);
    let probe = ast::Probe {
        points: vec![ProbePoint {
            optional: false,
            sufficient: false,
            condition: None,
            ..point.clone()
        }],
        body: ast::Block {
            stmts: Vec::new(),
            span,
        },
        span,
    };
    let script = ast::File {
        file: span.file,
        items: vec![Item::Probe(Box::new(probe))],
    };
    let Ok(checked) = check(&script, library, kernel, &Options { unoptimized: true }) else {
        return String::new();
    };
    let Some(first) = checked.program.probes.first() else {
        return String::new();
    };
    let mut out = String::new();
    for l in &first.locals {
        out.push_str(&format!(" {}:{}", l.name, l.ty));
    }
    if let PointKind::Tracepoint(tp) = &first.kind
        && let Ok(format) = kernel.tracepoint_format(tp)
    {
        for f in format.args() {
            out.push_str(&format!(" ${}:{}", f.name, f.var_type()));
        }
    }
    out
}
