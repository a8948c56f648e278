//! Elaboration: a parsed script and the tapset library in, a resolved and fully
//! typed [`hir::Program`] out. Probe points are resolved against the kernel (through
//! [`KernelInfo`]), aliases expanded, tapset functions and globals linked when the
//! script first uses them, and types inferred in one union-find ([`types`]).
//!
//! Globals are listed in the order the script first reaches them (probes first,
//! then the functions they call), as stap lists them.

mod arrays;
mod body;
mod code;
mod context;
mod display;
mod elide;
mod entry;
mod expr;
mod families;
mod implicit;
mod library;
mod list;
mod members;
mod points;
mod print;
mod process;
mod suggest;
mod synth;
mod syscalls;
mod target;
mod types;
mod uses;

pub use code::Code;
pub use implicit::declare_implicit_arrays;
pub use library::{Library, names_syscalls};
pub use list::{PROBE_TYPES, alias_definitions, list_aliases};

use crate::hir::{self, FunctionId, GlobalId, Program, Type};
use crate::kernel::KernelInfo;
use rstap_grammar::ast;
use rstap_grammar::{Diag, Diagnostics, FileId, Span};
use std::collections::HashMap;
use types::{Mismatch, Solver, Var};

/// What elaboration may depend on besides the script and the kernel.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `-u`: keep code that has no effect.
    pub unoptimized: bool,
    /// Leave the unread globals to the runtime (`--format=json` shows them as
    /// data) instead of synthesizing the `end` probes that print them as text.
    pub structured_globals: bool,
}

/// An elaborated program and the warnings found on the way.
#[derive(Debug)]
pub struct Checked {
    pub program: Program,
    pub warnings: Diagnostics,
}

/// Elaborates `script` against `library` and `kernel`.
pub fn check(
    script: &ast::File,
    library: &Library,
    kernel: &dyn KernelInfo,
    opts: &Options,
) -> Result<Checked, Diagnostics> {
    let mut c = Checker::new(script, library, kernel);
    c.duplicate_globals(script);
    for item in &script.items {
        match item {
            ast::Item::Probe(p) => c.probe(p),
            ast::Item::Embedded(code) => c.error(
                Diag::new(
                    Code::E0206,
                    code.span,
                    "embedded C is not supported: rstap never runs C code",
                )
                .with_label("embedded C"),
            ),
            ast::Item::Global(_) | ast::Item::Alias(_) | ast::Item::Function(_) => {}
        }
    }
    while let Some((id, decl)) = c.pending.pop() {
        c.function_body(id, decl);
    }
    c.finish(opts)
}

/// `--dump-functions`: every function a script can call, tapset and built-in,
/// as `name:type (param:type, ...)`, sorted. Tapset functions are linked and
/// typed together, as if one script called them all; a type nothing decides
/// shows as `unknown`.
pub fn signatures(library: &Library, kernel: &dyn KernelInfo) -> Vec<String> {
    let empty = ast::File {
        file: FileId(u32::MAX),
        items: Vec::new(),
    };
    let mut c = Checker::new(&empty, library, kernel);
    let mut decls: Vec<Decl<'_, ast::Function>> = c
        .decls
        .functions
        .values()
        .flatten()
        .filter(|d| !d.ast.private)
        .copied()
        .collect();
    decls.sort_by_key(|d| (d.file.0, d.ast.name.span.start));
    for d in decls {
        c.link_function(d);
    }
    while let Some((id, decl)) = c.pending.pop() {
        c.function_body(id, decl);
    }
    let mut lines: Vec<String> = c
        .functions
        .iter()
        .map(|(f, vars)| {
            let params: Vec<String> = f.locals[..f.params]
                .iter()
                .zip(&vars.params)
                .map(|(l, &v)| format!("{}:{}", l.name, c.solver.get(v)))
                .collect();
            format!(
                "{}:{} ({})",
                f.name,
                c.solver.get(vars.ret),
                params.join(", ")
            )
        })
        .chain(crate::builtins::signatures().map(|sig| {
            let params: Vec<String> = sig.params.iter().map(|(n, t)| format!("{n}:{t}")).collect();
            format!("{}:{} ({})", sig.name, sig.ret, params.join(", "))
        }))
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

impl<'a> Checker<'a> {
    fn new(script: &'a ast::File, library: &'a Library, kernel: &'a dyn KernelInfo) -> Checker<'a> {
        Checker {
            kernel,
            decls: Decls::collect(script, library),
            solver: Solver::default(),
            diags: Vec::new(),
            globals: Vec::new(),
            global_ids: HashMap::new(),
            functions: Vec::new(),
            function_ids: HashMap::new(),
            pending: Vec::new(),
            probes: Vec::new(),
            probe_vars: Vec::new(),
            value_uses: Vec::new(),
            script_file: script.file,
            foreach_calls: Vec::new(),
            alias_looped: false,
        }
    }
}

/// Every global, function and alias a script can name: its own first, then the
/// tapsets'.
struct Decls<'a> {
    globals: HashMap<&'a str, Vec<Decl<'a, ast::Global>>>,
    functions: HashMap<&'a str, Vec<Decl<'a, ast::Function>>>,
    aliases: Vec<Decl<'a, ast::Alias>>,
}

struct Decl<'a, T> {
    ast: &'a T,
    tapset: bool,
    file: FileId,
}

impl<T> Clone for Decl<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Decl<'_, T> {}

impl<'a> Decls<'a> {
    fn collect(script: &'a ast::File, library: &'a Library) -> Decls<'a> {
        let mut d = Decls {
            globals: HashMap::new(),
            functions: HashMap::new(),
            aliases: Vec::new(),
        };
        d.add(script, false);
        for f in library.files() {
            d.add(f, true);
        }
        d
    }

    fn add(&mut self, file: &'a ast::File, tapset: bool) {
        for item in &file.items {
            match item {
                ast::Item::Global(g) => self.globals.entry(&g.name.node).or_default().push(Decl {
                    ast: g,
                    tapset,
                    file: file.file,
                }),
                ast::Item::Function(f) => {
                    self.functions.entry(&f.name.node).or_default().push(Decl {
                        ast: f,
                        tapset,
                        file: file.file,
                    })
                }
                ast::Item::Alias(a) => self.aliases.push(Decl {
                    ast: a,
                    tapset,
                    file: file.file,
                }),
                ast::Item::Probe(_) | ast::Item::Embedded(_) => {}
            }
        }
    }

    /// The global `name` as seen from `file`: private tapset globals only from their own file.
    fn global(&self, name: &str, file: FileId) -> Option<Decl<'a, ast::Global>> {
        self.globals
            .get(name)?
            .iter()
            .find(|d| !d.ast.private || d.file == file)
            .copied()
    }

    /// The functions `name` visible from `file`.
    fn functions(&self, name: &str, file: FileId) -> Vec<Decl<'a, ast::Function>> {
        self.functions.get(name).map_or_else(Vec::new, |v| {
            v.iter()
                .filter(|d| !d.ast.private || d.file == file)
                .copied()
                .collect()
        })
    }
}

/// The type variables of a global.
#[derive(Clone, Debug)]
struct GlobalVars {
    value: Var,
    /// The key columns, once the first use decides the arity, and where.
    keys: Option<(Vec<Var>, Span)>,
    /// Uses as a scalar, for the arity check.
    scalar_use: Option<Span>,
    written: bool,
}

/// The type variables of a function's signature.
#[derive(Clone, Debug)]
struct FunctionVars {
    params: Vec<Var>,
    ret: Var,
    /// Every local, parameters first.
    locals: Vec<Var>,
    /// Globals the body writes itself, and the functions it calls.
    writes: Vec<GlobalId>,
    calls: Vec<FunctionId>,
    /// The body has a `return EXPR`.
    returns_value: bool,
}

/// What a call expression calls.
#[derive(Clone, Copy, Debug)]
enum Callee {
    Script(FunctionId),
    Builtin(crate::builtins::Builtin),
}

struct Checker<'a> {
    kernel: &'a dyn KernelInfo,
    decls: Decls<'a>,
    solver: Solver,
    diags: Vec<Diag>,
    globals: Vec<(hir::Global, GlobalVars)>,
    global_ids: HashMap<*const ast::Global, GlobalId>,
    functions: Vec<(hir::Function, FunctionVars)>,
    function_ids: HashMap<*const ast::Function, FunctionId>,
    /// Functions linked whose bodies are not lowered yet.
    pending: Vec<(FunctionId, Decl<'a, ast::Function>)>,
    probes: Vec<hir::Probe>,
    /// The type variables of each probe's locals.
    probe_vars: Vec<Vec<Var>>,
    /// Values used by the script, to check they are plain values.
    value_uses: Vec<(Var, Span, Option<Callee>)>,
    script_file: FileId,
    /// Calls made inside `foreach` loops, with the arrays being walked.
    foreach_calls: Vec<(FunctionId, Span, Vec<GlobalId>)>,
    /// An alias was found to expand into itself: no point is resolved after
    /// it (wildcard aliases that reach themselves branch at every level).
    alias_looped: bool,
}

impl<'a> Checker<'a> {
    fn error(&mut self, d: Diag) {
        self.diags.push(d);
    }

    fn warn(&mut self, d: Diag) {
        self.diags.push(d.warning());
    }

    /// Reports a type conflict found by the solver.
    fn mismatch(&mut self, m: Mismatch) {
        self.error(
            Diag::new(
                Code::E0301,
                m.span,
                format!("type mismatch: expected {}, found {}", m.expected, m.found),
            )
            .with_label(format!("this is a {}", m.found))
            .with_secondary(
                m.first,
                format!("type was first inferred here ({})", m.expected),
            ),
        );
    }

    fn require(&mut self, v: Var, ty: Type, span: Span) {
        if let Err(m) = self.solver.require(v, ty, span) {
            self.mismatch(m);
        }
    }

    fn unify(&mut self, a: Var, b: Var) {
        if let Err(m) = self.solver.unify(a, b) {
            self.mismatch(m);
        }
    }

    /// A new expression handle and its type variable.
    fn expr_var(&mut self) -> (u32, Var) {
        let v = self.solver.fresh();
        (v.handle(), v)
    }

    fn duplicate_globals(&mut self, script: &ast::File) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for item in &script.items {
            if let ast::Item::Global(g) = item {
                if let Some(&first) = seen.get(g.name.node.as_str()) {
                    self.error(
                        Diag::new(
                            Code::E0205,
                            g.name.span,
                            format!("duplicate global variable '{}'", g.name.node),
                        )
                        .with_label("declared again here")
                        .with_secondary(first, "first declared here"),
                    );
                } else {
                    seen.insert(&g.name.node, g.name.span);
                }
            }
        }
    }

    /// The id of a declared global, linking it into the program on first use.
    fn link_global(&mut self, decl: Decl<'a, ast::Global>) -> GlobalId {
        let key: *const ast::Global = decl.ast;
        if let Some(&id) = self.global_ids.get(&key) {
            return id;
        }
        let g = decl.ast;
        let id = GlobalId(u32::try_from(self.globals.len()).unwrap_or(u32::MAX));
        let value = self.solver.fresh();
        let init = g.init.as_ref().map(|l| match &l.node {
            ast::Literal::Num(n) => {
                self.require(value, Type::Long, l.span);
                hir::Init::Long(*n)
            }
            ast::Literal::Str(s) => {
                self.require(value, Type::String, l.span);
                hir::Init::Str(s.clone())
            }
        });
        let global = hir::Global {
            name: g.name.node.clone(),
            ty: Type::Unknown,
            keys: None,
            size: g.size,
            wrap: g.wrap,
            init,
            tapset: decl.tapset,
            span: g.name.span,
        };
        let vars = GlobalVars {
            value,
            keys: None,
            scalar_use: None,
            // An initializer is a write.
            written: g.init.is_some(),
        };
        self.globals.push((global, vars));
        self.global_ids.insert(key, id);
        id
    }

    /// The id of a declared function, linking it (and queueing its body) on first use.
    fn link_function(&mut self, decl: Decl<'a, ast::Function>) -> FunctionId {
        let key: *const ast::Function = decl.ast;
        if let Some(&id) = self.function_ids.get(&key) {
            return id;
        }
        let f = decl.ast;
        let id = FunctionId(u32::try_from(self.functions.len()).unwrap_or(u32::MAX));
        let ret = self.solver.fresh();
        if let Some(t) = &f.ret {
            self.require(ret, ast_type(t.node), t.span);
        }
        let mut locals = Vec::new();
        let mut params = Vec::new();
        for p in &f.params {
            let v = self.solver.fresh();
            if let Some(t) = &p.ty {
                self.require(v, ast_type(t.node), t.span);
            }
            params.push(v);
            locals.push(hir::Local {
                name: p.name.node.clone(),
                ty: Type::Unknown,
                span: p.name.span,
            });
        }
        let function = hir::Function {
            name: f.name.node.clone(),
            params: f.params.len(),
            locals,
            ret: Type::Unknown,
            body: hir::Block::default(),
            next: None,
            tapset: decl.tapset,
            span: f.name.span,
        };
        self.functions.push((
            function,
            FunctionVars {
                params,
                ret,
                locals: Vec::new(),
                writes: Vec::new(),
                calls: Vec::new(),
                returns_value: false,
            },
        ));
        self.function_ids.insert(key, id);
        self.pending.push((id, decl));
        id
    }

    /// Applies the solved types and reports what stayed undecided.
    fn finish(mut self, opts: &Options) -> Result<Checked, Diagnostics> {
        self.check_value_uses();
        self.check_foreach_calls();
        let mut globals = Vec::with_capacity(self.globals.len());
        let mut written = Vec::with_capacity(self.globals.len());
        for (mut g, vars) in std::mem::take(&mut self.globals) {
            written.push(vars.written);
            g.ty = self.solver.get(vars.value);
            g.keys = vars
                .keys
                .as_ref()
                .map(|(ks, _)| ks.iter().map(|&k| self.solver.get(k)).collect());
            self.check_resolved(&g.name, g.ty, g.keys.as_deref(), g.span);
            globals.push(g);
        }
        let mut functions = Vec::with_capacity(self.functions.len());
        for (mut f, vars) in std::mem::take(&mut self.functions) {
            f.ret = self.solver.get(vars.ret);
            self.type_locals(&mut f.locals, &vars.locals);
            self.apply_types(&mut f.body);
            functions.push(f);
        }
        let mut probes = std::mem::take(&mut self.probes);
        let probe_vars = std::mem::take(&mut self.probe_vars);
        for (p, vars) in probes.iter_mut().zip(&probe_vars) {
            self.type_locals(&mut p.locals, vars);
            self.apply_types(&mut p.body);
            if let Some(c) = &mut p.condition {
                let solver = &mut self.solver;
                hir::expr_mut(c, &mut |e| e.ty = solver.get(var_of(e)));
            }
        }
        let failed = self.diags.iter().any(Diag::is_error);
        if !opts.unoptimized && !failed {
            elide::program(&mut functions, &mut probes, &mut self.diags);
        }
        if !failed {
            entry::program(&mut globals, &mut probes);
            process::program(&mut globals, &mut probes, self.kernel);
        }
        for d in context::user_probes(&functions, &probes) {
            self.error(d);
        }
        let uses = uses::collect(globals.len(), &functions, &mut probes);
        for ((g, &w), &r) in globals.iter().zip(&written).zip(&uses.read) {
            if r && !w && !g.tapset {
                self.warn(
                    Diag::new(
                        Code::E0209,
                        g.span,
                        format!("never-assigned global variable '{}'", g.name),
                    )
                    .with_label("read, but nothing assigns it: it stays 0 or \"\""),
                );
            }
        }
        let unread = display::unread(&globals, &written, &uses.read, self.script_file);
        if !opts.structured_globals {
            probes.extend(display::probes(&globals, &unread));
        }
        if probes.is_empty() && !failed {
            self.error(
                Diag::new(
                    Code::E0211,
                    Span::new(self.script_file, 0, 0),
                    "no probes found",
                )
                .with_label("every probe of this script was removed or matched nothing")
                .with_note("a script needs at least one probe, such as `probe begin { ... }`"),
            );
        }
        // As stap does, the library's own code raises no warnings: the alias
        // locals a script leaves unread are elided quietly.
        let script = self.script_file;
        let mut diags = self.diags;
        diags.retain(|d| d.is_error() || d.span.file == script);
        let diags = Diagnostics(diags);
        if diags.has_errors() {
            return Err(diags);
        }
        Ok(Checked {
            program: Program {
                globals,
                functions,
                probes,
                builtins: uses.builtins,
                unread,
            },
            warnings: diags,
        })
    }

    /// Gives each local its solved type; a local must be a plain long or string.
    fn type_locals(&mut self, locals: &mut [hir::Local], vars: &[Var]) {
        for (l, &v) in locals.iter_mut().zip(vars) {
            l.ty = self.solver.get(v);
            match l.ty {
                Type::Unknown => self.error(
                    Diag::new(
                        Code::E0302,
                        l.span,
                        format!("unresolved type of local variable '{}'", l.name),
                    )
                    .with_label("nothing in the script decides this type"),
                ),
                Type::Stats => self.error(
                    Diag::new(
                        Code::E0303,
                        l.span,
                        format!("local variable '{}' cannot hold statistics", l.name),
                    )
                    .with_label("statistics live only in globals")
                    .with_note(format!("declare it `global {}`", l.name)),
                ),
                Type::Long | Type::String => {}
            }
        }
    }

    /// A function called inside `foreach` must not write, itself or through the
    /// functions it calls, an array being walked.
    fn check_foreach_calls(&mut self) {
        for (callee, span, walked) in std::mem::take(&mut self.foreach_calls) {
            let mut seen = vec![false; self.functions.len()];
            let mut stack = vec![callee];
            while let Some(f) = stack.pop() {
                if std::mem::replace(&mut seen[f.index()], true) {
                    continue;
                }
                let vars = &self.functions[f.index()].1;
                if let Some(g) = vars.writes.iter().find(|g| walked.contains(g)) {
                    let array = self.globals[g.index()].0.name.clone();
                    let func = self.functions[callee.index()].0.name.clone();
                    self.error(
                        Diag::new(
                            Code::E0207,
                            span,
                            format!("function call modifies '{array}' during 'foreach' iteration"),
                        )
                        .with_label(format!("'{func}' writes '{array}'"))
                        .with_note(
                            "collect the changes in another array and apply them after the loop",
                        ),
                    );
                    break;
                }
                stack.extend(vars.calls.iter().copied());
            }
        }
    }

    /// Values the script uses must exist and be plain longs or strings.
    fn check_value_uses(&mut self) {
        for (v, span, call) in std::mem::take(&mut self.value_uses) {
            let void = match call {
                Some(Callee::Script(f)) => {
                    let (func, vars) = &self.functions[f.index()];
                    (!vars.returns_value).then(|| func.name.clone())
                }
                Some(Callee::Builtin(b)) => {
                    (b.signature().ret == Type::Unknown).then(|| b.name().to_string())
                }
                None => None,
            };
            match (self.solver.get(v), void) {
                (Type::Unknown, Some(name)) => self.error(
                    Diag::new(
                        Code::E0306,
                        span,
                        format!("function '{name}' returns no value, but its value is used"),
                    )
                    .with_label("used as a value here"),
                ),
                (Type::Stats, _) => self.error(
                    Diag::new(
                        Code::E0303,
                        span,
                        "statistics cannot be used as a plain value",
                    )
                    .with_label("a statistics aggregate")
                    .with_note("extract a number with @count, @sum, @min, @max or @avg"),
                ),
                _ => {}
            }
        }
    }

    fn apply_types(&mut self, block: &mut hir::Block) {
        let solver = &mut self.solver;
        hir::for_each_expr_mut(block, &mut |e| {
            if e.id != hir::SYNTHESIZED {
                e.ty = solver.get(var_of(e));
            }
        });
    }

    fn check_resolved(&mut self, name: &str, ty: Type, keys: Option<&[Type]>, span: Span) {
        let unknown_key = keys.is_some_and(|k| k.contains(&Type::Unknown));
        if ty == Type::Unknown || unknown_key {
            let what = if unknown_key { "index" } else { "value" };
            self.error(
                Diag::new(
                    Code::E0302,
                    span,
                    format!("unresolved type of {what} of '{name}'"),
                )
                .with_label("nothing in the script decides this type")
                .with_note("assign it a number or a string somewhere, or remove it"),
            );
        }
    }
}

/// The type variable behind an expression's handle: handles and variables are
/// allocated together, so the handle indexes the variable.
fn var_of(e: &hir::Expr) -> Var {
    Var::from_handle(e.id)
}

fn ast_type(t: ast::Type) -> Type {
    match t {
        ast::Type::Long => Type::Long,
        ast::Type::String => Type::String,
    }
}
