//! `process.begin`, `process.end` and their `process("PATH")` forms, without
//! stap's task finder:
//!
//! - `process.begin`: the `sched:sched_process_exec` tracepoint, in the new
//!   program's context (a process begins running a program).
//! - `process("PATH").begin`: a uprobe at the program's entry point, the first
//!   instruction each new process of it runs.
//! - `process.end`: `sched:sched_process_exit` of the thread-group leader
//!   (once per process, not per thread).
//! - `process("PATH").end`: the same, for the processes seen entering PATH:
//!   a synthesized uprobe at its entry point records their pids in a hidden
//!   wrapping array, which the end probe checks and clears. A process that
//!   started before the script is not seen.

use super::points::{Derived, Path, ProbeFacts, spell};
use super::synth::{assign, binary_long, builtin, number, stmt, typed};
use super::{Checker, code::Code};
use crate::builtins::Builtin;
use crate::hir::{
    self, BinOp, Delete, ExprKind, Global, GlobalId, Iterable, Place, PointKind, Probe, StmtKind,
    Type,
};
use crate::kernel::{KernelInfo, TracepointId};
use rstap_grammar::ast::Component;
use rstap_grammar::{Diag, Span};

fn sched(name: &str) -> TracepointId {
    TracepointId {
        system: "sched".into(),
        name: name.into(),
    }
}

impl<'a> Checker<'a> {
    /// `process[("PATH")].begin|end`.
    pub(super) fn process_lifetime(
        &mut self,
        binary: Option<String>,
        end: bool,
        components: &[Component],
        path: &Path<'a>,
        out: &mut Vec<Derived<'a>>,
    ) {
        let bin = match binary.map(|b| self.kernel.user_binary(&b)) {
            None => None,
            Some(Ok(b)) => Some(b),
            Some(Err(e)) => return self.kernel_error(path.span, &e.0),
        };
        let what = if end { "end" } else { "begin" };
        let name = match &bin {
            Some(b) => format!("process(\"{}\").{what}", b.path),
            None => spell(components),
        };
        let kind = match (&bin, end) {
            (None, false) => PointKind::Tracepoint(sched("sched_process_exec")),
            (Some(b), false) => {
                let Some(offset) = b.entry_offset else {
                    return self.no_entry(&b.path, path.span);
                };
                PointKind::Uprobe {
                    binary: b.path.clone(),
                    symbol: String::new(),
                    offset,
                    ret: false,
                }
            }
            (Some(b), true) if b.entry_offset.is_none() => {
                return self.no_entry(&b.path, path.span);
            }
            (_, true) => PointKind::Process {
                binary: bin.map(|b| b.path.clone()),
                end: true,
            },
        };
        out.push(self.derived(kind, name, ProbeFacts::None, path));
    }

    fn no_entry(&mut self, binary: &str, span: Span) {
        self.error(
            Diag::new(
                Code::E0405,
                span,
                format!("{binary} has no entry point, so rstap cannot see its processes begin"),
            )
            .with_label("while resolving this probe point")
            .with_note(
                "a shared library has no processes of its own: probe the program that loads it",
            ),
        );
    }
}

/// Turns each `process[("PATH")].end` of `probes` into an exit tracepoint
/// with its filter, adding what a PATH needs to `globals` and `probes`.
pub(super) fn program(globals: &mut Vec<Global>, probes: &mut Vec<Probe>, kernel: &dyn KernelInfo) {
    let mut added = Vec::new();
    for p in probes.iter_mut() {
        let PointKind::Process { binary, end: true } = &p.kind else {
            continue;
        };
        let binary = binary.clone();
        let span = p.span;
        p.kind = PointKind::Tracepoint(sched("sched_process_exit"));
        let mut filter = binary_long(
            BinOp::Eq,
            builtin(Builtin::Pid, span),
            builtin(Builtin::Tid, span),
        );
        let entry = binary
            .as_deref()
            .and_then(|b| kernel.user_binary(b).ok())
            .and_then(|b| b.entry_offset);
        if let (Some(binary), Some(offset)) = (binary, entry) {
            let seen = GlobalId(globals.len() as u32);
            globals.push(Global {
                name: format!("__process{}", seen.0),
                ty: Type::Long,
                keys: Some(vec![Type::Long]),
                size: None,
                wrap: true,
                init: None,
                tapset: true,
                span,
            });
            let key = || vec![builtin(Builtin::Pid, span)];
            let known = typed(
                ExprKind::In {
                    array: Iterable::Array(seen),
                    keys: key().into_iter().map(Some).collect(),
                },
                Type::Long,
                span,
            );
            filter = binary_long(BinOp::And, filter, known);
            let keys = key().into_iter().map(Some).collect();
            let forget = StmtKind::Delete(Delete::Elements { array: seen, keys });
            p.body.stmts.insert(0, stmt(forget, span));
            let place = Place::Element {
                array: seen,
                keys: key(),
            };
            let record = assign(place, number(1, span));
            added.push(Probe {
                kind: PointKind::Uprobe {
                    binary: binary.clone(),
                    symbol: String::new(),
                    offset,
                    ret: false,
                },
                name: format!("process(\"{binary}\").begin"),
                origin: p.origin.clone(),
                written: p.written.clone(),
                condition: None,
                locals: Vec::new(),
                cached: Vec::new(),
                body: hir::Block {
                    stmts: vec![stmt(StmtKind::Expr(record), span)],
                },
                span,
            });
        }
        p.condition = Some(match p.condition.take() {
            Some(c) => binary_long(BinOp::And, filter, c),
            None => filter,
        });
    }
    probes.extend(added);
}
