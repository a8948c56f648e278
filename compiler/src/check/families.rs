//! The probe families that need the kernel's or a binary's symbols:
//! `kernel.function`, `kprobe.function`, `module().function` (kallsyms names,
//! BTF prototypes for `$args`) and `process("PATH").function|mark|begin|end`
//! (ELF symbols and SDT notes). Points that need DWARF (`@file:line`,
//! `.statement`, `.inline`, `.label`) are refused with a sentence saying so.

use super::Checker;
use super::code::Code;
use super::points::{Derived, Path, ProbeFacts, spell};
use crate::hir::PointKind;
use crate::kernel::KernelSymbol;
use rstap_grammar::Diag;
use rstap_grammar::ast::{Component, Literal};
use rstap_grammar::facts::fnmatch;

impl<'a> Checker<'a> {
    /// `kernel.function("PAT")`, `kprobe.function("F")`, `module("M").function("PAT")`,
    /// each with an optional `.call` or `.return`.
    pub(super) fn kernel_family(
        &mut self,
        components: &[Component],
        path: &Path<'a>,
        out: &mut Vec<Derived<'a>>,
    ) {
        let names: Vec<&str> = components.iter().map(|c| c.name.as_str()).collect();
        let (module, at) = match names.as_slice() {
            ["kernel" | "kprobe", "function", ..] => (None, 1),
            ["module", "function", ..] => (Some(&components[0]), 1),
            ["kprobe", "module", "function", ..] => (Some(&components[1]), 2),
            [_, "statement", ..] => return self.needs_dwarf(components, path),
            ["kernel", "data" | "mark", ..] => {
                return self.unsupported(
                    path.span,
                    format!("probe point {} is not supported", spell(components)),
                    "hardware watchpoints and static markers have no BPF attach point",
                );
            }
            _ => return,
        };
        let module = match module {
            Some(m) => match self.string_arg(m) {
                Some(m) => Some(m),
                None => return,
            },
            None => None,
        };
        let (func, rest) = (&components[at], &components[at + 1..]);
        let ret = match rest
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] | ["call"] | ["exported"] => false,
            ["return"] => true,
            ["return", "maxactive"] => true,
            ["inline" | "label" | "callee" | "callees", ..] => {
                return self.needs_dwarf(components, path);
            }
            _ => return,
        };
        let Some(pattern) = self.string_arg(func) else {
            return;
        };
        if pattern.contains('@') {
            return self.needs_dwarf(components, path);
        }
        let symbols = match self.kernel.kernel_functions() {
            Ok(s) => s,
            Err(e) => return self.kernel_error(path.span, &e.0),
        };
        let matched: Vec<KernelSymbol> = symbols
            .iter()
            .filter(|s| {
                fnmatch(&pattern, &s.name)
                    && match (&module, &s.module) {
                        (None, None) => true,
                        (Some(m), Some(sm)) => fnmatch(m, sm),
                        _ => false,
                    }
            })
            .cloned()
            .collect();
        if matched.is_empty() {
            let names = symbols.iter().map(|s| s.name.as_str());
            return self.nothing_matched(components, path, &pattern, names);
        }
        let types = self.kernel.kernel_types().ok();
        let head = if names[0] == "kprobe" {
            "kprobe"
        } else {
            "kernel"
        };
        for sym in matched {
            let sig = types.and_then(|t| t.function(&sym.name));
            let mut name = match &sym.module {
                Some(m) => format!("module(\"{m}\").function(\"{}\")", sym.name),
                None => format!("{head}.function(\"{}\")", sym.name),
            };
            if ret {
                name.push_str(".return");
            } else if rest.first().is_some_and(|c| c.name == "call") {
                name.push_str(".call");
            }
            let kind = PointKind::Kprobe {
                function: sym.name,
                module: sym.module,
                ret,
            };
            out.push(self.derived(kind, name, ProbeFacts::KernelFunction { sig, ret }, path));
        }
    }

    /// `process("PATH").function("PAT")[.return]`, `.mark("PAT")`,
    /// `.provider("P").mark("PAT")`, `.begin`, `.end`, and `process.begin|end`.
    pub(super) fn process_family(
        &mut self,
        components: &[Component],
        path: &Path<'a>,
        out: &mut Vec<Derived<'a>>,
    ) {
        let process = &components[0];
        let names: Vec<&str> = components[1..].iter().map(|c| c.name.as_str()).collect();
        let binary = match process.arg.as_ref().map(|a| &a.node) {
            None => None,
            Some(Literal::Str(p)) => Some(p.clone()),
            Some(Literal::Num(_)) => {
                return self.unsupported(
                    path.span,
                    format!("probe point {} names a process by pid", spell(components)),
                    "name the program by path instead: process(\"/usr/bin/NAME\"); use -x PID to filter by pid",
                );
            }
        };
        match (names.as_slice(), binary) {
            (["begin"] | ["end"], binary) => {
                self.process_lifetime(binary, names[0] == "end", components, path, out);
            }
            (["function", rest @ ..], Some(bin)) => {
                let ret = match rest {
                    [] | ["call"] => false,
                    ["return"] => true,
                    _ => return self.needs_dwarf(components, path),
                };
                self.user_functions(&bin, &components[1], ret, components, path, out);
            }
            (["mark"], Some(bin)) => self.marks(&bin, None, &components[1], path, out),
            (["provider", "mark"], Some(bin)) => {
                let Some(provider) = self.string_arg(&components[1]) else { return };
                self.marks(&bin, Some(&provider), &components[2], path, out);
            }
            (["statement"], Some(bin)) => self.statements(&bin, &components[1], path, out),
            (["statement", ..], Some(_)) => self.needs_dwarf(components, path),
            (["library" | "plt" | "syscall" | "insn" | "thread", ..], _) => self.unsupported(
                path.span,
                format!("probe point {} is not supported", spell(components)),
                "supported process probes: .function(\"NAME\")[.return], .mark(\"NAME\"), .begin, .end",
            ),
            (_, None) => self.unsupported(
                path.span,
                format!("probe point {} needs a program path", spell(components)),
                "write process(\"/path/to/program\").function(\"NAME\")",
            ),
            _ => {}
        }
    }

    fn user_functions(
        &mut self,
        binary: &str,
        func: &Component,
        ret: bool,
        components: &[Component],
        path: &Path<'a>,
        out: &mut Vec<Derived<'a>>,
    ) {
        let Some(pattern) = self.string_arg(func) else {
            return;
        };
        if pattern.contains('@') {
            return self.needs_dwarf(components, path);
        }
        let bin = match self.kernel.user_binary(binary) {
            Ok(b) => b,
            Err(e) => return self.kernel_error(path.span, &e.0),
        };
        if !bin.symbols.iter().any(|s| fnmatch(&pattern, &s.name)) {
            let names = bin.symbols.iter().map(|s| s.name.as_str());
            return self.nothing_matched(components, path, &pattern, names);
        }
        for sym in bin.symbols.iter().filter(|s| fnmatch(&pattern, &s.name)) {
            let mut name = format!("process(\"{}\").function(\"{}\")", bin.path, sym.name);
            if ret {
                name.push_str(".return");
            }
            let kind = PointKind::Uprobe {
                binary: bin.path.clone(),
                symbol: sym.name.clone(),
                offset: sym.file_offset,
                ret,
            };
            let params = bin.functions.get(&sym.name).cloned();
            let facts = ProbeFacts::UserFunction { ret, params };
            out.push(self.derived(kind, name, facts, path));
        }
    }

    /// `process("PATH").statement("FUNC@FILE:LINE")`: a uprobe at the first
    /// address of source line LINE of FILE, in each function matching FUNC
    /// (`*` for any), from the binary's DWARF line table.
    fn statements(
        &mut self,
        binary: &str,
        spec: &Component,
        path: &Path<'a>,
        out: &mut Vec<Derived<'a>>,
    ) {
        let Some(text) = self.string_arg(spec) else {
            return;
        };
        let parsed = text.split_once('@').and_then(|(func, at)| {
            let (file, line) = at.rsplit_once(':')?;
            Some((func, file, line.parse::<u32>().ok()?))
        });
        let Some((func, file, line)) = parsed else {
            return self.unsupported(
                spec.span,
                format!("statement \"{text}\" is not FUNCTION@FILE:LINE"),
                "write .statement(\"main@prog.c:12\"), or \"*@prog.c:12\" for any function",
            );
        };
        let bin = match self.kernel.user_binary(binary) {
            Ok(b) => b,
            Err(e) => return self.kernel_error(path.span, &e.0),
        };
        if !bin.has_debuginfo {
            return self.unsupported(
                path.span,
                format!("{} has no DWARF line table", bin.path),
                "build it with -g, or probe a function by name",
            );
        }
        let same_file = |f: &str| {
            fnmatch(file, f)
                || f.ends_with(&format!("/{file}"))
                || f.rsplit('/').next() == Some(file)
        };
        // The first address of the line in each function that holds it.
        let mut found: Vec<(&str, u64, u64)> = Vec::new();
        for (row, offset) in bin
            .lines
            .iter()
            .filter(|(r, _)| r.line == line && same_file(&r.file))
        {
            let Some(sym) = bin
                .symbols
                .iter()
                .find(|s| (s.addr..s.addr + s.size.max(1)).contains(&row.addr))
            else {
                continue;
            };
            if !fnmatch(func, &sym.name) || found.iter().any(|(n, _, _)| *n == sym.name) {
                continue;
            }
            found.push((&sym.name, row.addr, *offset));
        }
        if found.is_empty() {
            return self.unsupported(
                spec.span,
                format!(
                    "no statement of {} is at {file}:{line} in a function matching \"{func}\"",
                    bin.path
                ),
                "the line must hold code: a declaration or a blank line has no address",
            );
        }
        for (name, _, offset) in found {
            let kind = PointKind::Uprobe {
                binary: bin.path.clone(),
                symbol: name.to_string(),
                offset,
                ret: false,
            };
            let spelled = format!(
                "process(\"{}\").statement(\"{name}@{file}:{line}\")",
                bin.path
            );
            out.push(self.derived(kind, spelled, ProbeFacts::None, path));
        }
    }

    fn marks(
        &mut self,
        binary: &str,
        provider: Option<&str>,
        mark: &Component,
        path: &Path<'a>,
        out: &mut Vec<Derived<'a>>,
    ) {
        let Some(pattern) = self.string_arg(mark) else {
            return;
        };
        let bin = match self.kernel.user_binary(binary) {
            Ok(b) => b,
            Err(e) => return self.kernel_error(path.span, &e.0),
        };
        for note in &bin.usdt {
            let wanted = fnmatch(&pattern, &note.name)
                && provider.is_none_or(|p| fnmatch(p, &note.provider));
            if !wanted {
                continue;
            }
            if let Some(why) = &note.args_error {
                self.error(
                    Diag::new(
                        Code::E0405,
                        path.span,
                        format!(
                            "cannot read the arguments of mark {}:{} in {}: {why}",
                            note.provider, note.name, bin.path
                        ),
                    )
                    .with_label("while resolving this probe point"),
                );
                continue;
            }
            let name = format!(
                "process(\"{}\").provider(\"{}\").mark(\"{}\")",
                bin.path, note.provider, note.name
            );
            let kind = PointKind::Usdt {
                binary: bin.path.clone(),
                provider: note.provider.clone(),
                name: note.name.clone(),
                offset: note.file_offset,
                semaphore: note.semaphore_offset,
            };
            let facts = ProbeFacts::Mark {
                provider: note.provider.clone(),
                name: note.name.clone(),
                args: note.args.len(),
            };
            out.push(self.derived(kind, name, facts, path));
        }
    }

    /// A component's required string argument.
    fn string_arg(&mut self, c: &Component) -> Option<String> {
        match c.arg.as_ref().map(|a| &a.node) {
            Some(Literal::Str(s)) => Some(s.clone()),
            _ => {
                self.bad_arg(c, "a string");
                None
            }
        }
    }

    fn needs_dwarf(&mut self, components: &[Component], path: &Path<'a>) {
        self.error(
            Diag::new(
                Code::E0404,
                path.span,
                format!(
                    "probe point {} needs DWARF debug information, which rstap does not read",
                    spell(components)
                ),
            )
            .with_label("source lines, statements, inlines and labels need DWARF")
            .with_note("probe the function by name instead: kernel.function(\"NAME\") or process(\"PATH\").function(\"NAME\")"),
        );
    }
}
