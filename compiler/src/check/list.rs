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

/// `--dump-probe-types`: the probe point families rstap resolves, in stap's
/// notation (`string`/`number` for an argument). Aliases (`syscall.*`,
/// `scheduler.*` ...) are listed by `--dump-probe-aliases` instead.
pub const PROBE_TYPES: &[&str] = &[
    "begin",
    "begin(number)",
    "end",
    "end(number)",
    "error",
    "error(number)",
    "kernel.function(string)",
    "kernel.function(string).call",
    "kernel.function(string).exported",
    "kernel.function(string).return",
    "kernel.function(string).return.maxactive(number)",
    "kernel.trace(string)",
    "kprobe.function(string)",
    "kprobe.function(string).call",
    "kprobe.function(string).return",
    "kprobe.module(string).function(string)",
    "kprobe.module(string).function(string).return",
    "module(string).function(string)",
    "module(string).function(string).call",
    "module(string).function(string).return",
    "never",
    "perf.type(number).config(number)",
    "perf.type(number).config(number).hz(number)",
    "perf.type(number).config(number).sample(number)",
    "process(string).begin",
    "process(string).end",
    "process(string).function(string)",
    "process(string).function(string).call",
    "process(string).function(string).return",
    "process(string).mark(string)",
    "process(string).provider(string).mark(string)",
    "process(string).statement(string)",
    "process.begin",
    "process.end",
    "timer.hz(number)",
    "timer.jiffies(number)",
    "timer.jiffies(number).randomize(number)",
    "timer.ms(number)",
    "timer.ms(number).randomize(number)",
    "timer.msec(number)",
    "timer.msec(number).randomize(number)",
    "timer.ns(number)",
    "timer.ns(number).randomize(number)",
    "timer.nsec(number)",
    "timer.nsec(number).randomize(number)",
    "timer.profile",
    "timer.profile.tick",
    "timer.s(number)",
    "timer.s(number).randomize(number)",
    "timer.sec(number)",
    "timer.sec(number).randomize(number)",
    "timer.us(number)",
    "timer.us(number).randomize(number)",
    "timer.usec(number)",
    "timer.usec(number).randomize(number)",
];

/// `--dump-probe-aliases`: every library alias as `name = point, point`,
/// sorted, with each target point's `?`/`!` and condition as written.
pub fn alias_definitions(library: &Library) -> Vec<String> {
    let mut lines = BTreeSet::new();
    for file in library.files() {
        for item in &file.items {
            let Item::Alias(alias) = item else { continue };
            let targets = rstap_grammar::dump::points_text(&alias.points, ", ");
            for name in &alias.names {
                lines.insert(format!("{} = {targets}", spell(&name.components)));
            }
        }
    }
    lines.into_iter().collect()
}

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
    let Ok(checked) = check(
        &script,
        library,
        kernel,
        &Options {
            unoptimized: true,
            ..Options::default()
        },
    ) else {
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
