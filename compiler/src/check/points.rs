//! Probe-point resolution: a point as written → the concrete attach points it
//! names on this kernel, through aliases (`=` prologue, `+=` epilogue, suffixes
//! after an alias name, wildcards over alias names) and the built-in families.
//! `?` makes a point that matches nothing silent; `!` also skips the alternatives
//! after a point that resolved.

use super::code::Code;
use super::{Checker, Decl, suggest};
use crate::hir::{PointKind, TimerUnit};
use crate::kernel::TracepointId;
use crate::tracepoint::TracepointFormat;
use rstap_grammar::ast::{self, AliasKind, Component, Literal, ProbePoint};
use rstap_grammar::dump::{expr_text_renamed, points_text_renamed};
use rstap_grammar::facts::fnmatch;
use rstap_grammar::{Diag, Span};

/// One concrete probe a written point resolved to.
pub(super) struct Derived<'a> {
    pub kind: PointKind,
    pub name: String,
    pub origin: String,
    /// The user's point, or the alias it expanded to (`pn()`).
    pub written: String,
    /// Alias bodies that run before the script's body (innermost alias first).
    pub prologue: Vec<&'a ast::Block>,
    /// Alias bodies that run after it (innermost alias last).
    pub epilogue: Vec<&'a ast::Block>,
    pub condition: Option<&'a ast::Expr>,
    pub facts: ProbeFacts,
    /// The point as the user wrote it.
    pub span: Span,
}

/// What a probe's context offers its handler (`$` target variables).
pub(super) enum ProbeFacts {
    /// begin, end, timers, perf: nothing.
    None,
    Tracepoint(TracepointFormat),
    /// A kernel function: its BTF prototype when the kernel has one.
    KernelFunction {
        sig: Option<crate::ctype::FuncSig>,
        ret: bool,
    },
    /// A user function: arguments by register, named and typed by the
    /// binary's DWARF when it has it.
    UserFunction {
        ret: bool,
        params: Option<Vec<crate::dwarf::Param>>,
    },
    /// A USDT mark and how many arguments it has.
    Mark {
        provider: String,
        name: String,
        args: usize,
    },
}

/// Aliases nest at most this deep; deeper means an alias reaches itself.
const MAX_ALIAS_DEPTH: usize = 32;

/// The families rstap knows, by first component (for "similar:" suggestions).
const FAMILIES: &[&str] = &[
    "begin", "end", "error", "never", "timer", "kernel", "kprobe", "module", "process", "perf",
];

/// The context of one expansion: how we got here.
pub(super) struct Path<'a> {
    origin: String,
    /// The user's point, or the alias it expanded to.
    written: String,
    prologue: Vec<&'a ast::Block>,
    epilogue: Vec<&'a ast::Block>,
    condition: Option<&'a ast::Expr>,
    /// `!` or `?` of the point being resolved, which its concrete points keep.
    mark: &'static str,
    depth: usize,
    /// The aliases being expanded on the way here.
    aliases: Vec<&'a ast::Alias>,
    /// The user's point, for diagnostics.
    pub span: Span,
}

impl<'a> Checker<'a> {
    /// Resolves the points of one `probe` statement. Unresolvable points are
    /// reported (unless optional) and yield nothing.
    pub(super) fn resolve_points(&mut self, points: &'a [ProbePoint]) -> Vec<Derived<'a>> {
        let origin = points_text_renamed(points, ",", self.global_renamer());
        let mut out = Vec::new();
        for p in points {
            let path = Path {
                origin: origin.clone(),
                written: points_text_renamed(std::slice::from_ref(p), ",", self.global_renamer()),
                prologue: Vec::new(),
                epilogue: Vec::new(),
                condition: p.condition.as_ref(),
                mark: mark(p),
                depth: 0,
                aliases: Vec::new(),
                span: p.span,
            };
            let before = out.len();
            self.resolve(p, &p.components, &path, &mut out);
            if out.len() > before && p.sufficient {
                break;
            }
        }
        out
    }

    /// Resolves `components` (a point, perhaps with an alias's suffix appended).
    fn resolve(
        &mut self,
        point: &ProbePoint,
        components: &[Component],
        path: &Path<'a>,
        out: &mut Vec<Derived<'a>>,
    ) {
        let optional = point.optional || point.sufficient;
        let before = out.len();
        let errors = self.diags.len();
        if self.alias_looped {
            return;
        }
        if path.depth > MAX_ALIAS_DEPTH {
            self.alias_loop(path.span);
            return;
        }
        let matched_alias = self.expand_aliases(components, path, out);
        if !matched_alias {
            self.family(components, path, out);
        }
        if out.len() == before && self.diags.len() == errors && !optional {
            self.no_match(components, path);
        }
        if optional {
            // A `?` point that fails for any reason is silently skipped.
            self.diags.truncate(errors);
        }
    }

    fn no_match(&mut self, components: &[Component], path: &Path<'a>) {
        let first = components.first().map_or("", |c| c.name.as_str());
        let alias_heads: Vec<&str> = self
            .decls
            .aliases
            .iter()
            .flat_map(|a| a.ast.names.iter())
            .filter_map(|n| n.components.first().map(|c| c.name.as_str()))
            .collect();
        let known = FAMILIES.iter().copied().chain(alias_heads);
        let similar = suggest::similar(first, known);
        let head_known = FAMILIES.contains(&first)
            || self
                .decls
                .aliases
                .iter()
                .any(|a| a.ast.names.iter().any(|n| n.components[0].name == first));
        let (code, msg) = if head_known {
            (
                Code::E0402,
                format!("probe point {} matches nothing", spell(components)),
            )
        } else {
            (
                Code::E0401,
                format!("unknown probe point {}", spell(components)),
            )
        };
        let mut d = Diag::new(code, path.span, msg).with_label("no probe point matches this");
        if let Some(n) = suggest::note(&similar) {
            d = d.with_note(n);
        }
        self.error(d.with_note("append `?` to the point to allow it to match nothing"));
    }

    /// A family point whose pattern matched none of `candidates` (unless the
    /// point is optional, which the caller's error truncation takes care of).
    pub(super) fn nothing_matched<'c>(
        &mut self,
        components: &[Component],
        path: &Path<'a>,
        pattern: &str,
        candidates: impl IntoIterator<Item = &'c str>,
    ) {
        let mut d = Diag::new(
            Code::E0402,
            path.span,
            format!("probe point {} matches nothing", spell(components)),
        )
        .with_label("nothing on this system has this name");
        if !pattern.contains(['*', '?', '['])
            && let Some(n) = suggest::note(&suggest::similar(pattern, candidates))
        {
            d = d.with_note(n);
        }
        self.error(d.with_note("append `?` to the point to allow it to match nothing"));
    }

    /// Reports an alias that expands into itself, at the user's point, and
    /// stops resolving points.
    fn alias_loop(&mut self, span: Span) {
        self.alias_looped = true;
        self.error(
            Diag::new(
                Code::E0212,
                span,
                "probe alias expansion is too deep: an alias expands into itself",
            )
            .with_label("while resolving this point"),
        );
    }

    /// Expands every alias whose name matches a prefix of `components`; whether any did.
    fn expand_aliases(
        &mut self,
        components: &[Component],
        path: &Path<'a>,
        out: &mut Vec<Derived<'a>>,
    ) -> bool {
        let mut matches: Vec<(Decl<'a, ast::Alias>, &'a ProbePoint, &[Component])> = Vec::new();
        for alias in self.decls.aliases.clone() {
            for name in &alias.ast.names {
                if let Some(suffix) = alias_match(&name.components, components) {
                    matches.push((alias, name, suffix));
                }
            }
        }
        // The longest alias names win: `syscall.read.return` is that alias,
        // not `syscall.read` with a `.return` suffix (stap descends its alias
        // tree as far as the point goes before treating the rest as a suffix).
        let shortest = matches.iter().map(|(_, _, s)| s.len()).min();
        matches.retain(|(_, _, s)| Some(s.len()) == shortest);
        // stap keeps aliases by name, so a wildcard meets them in name order.
        matches.sort_by_cached_key(|(_, name, _)| spell(&name.components));
        let matched = !matches.is_empty();
        if matches
            .iter()
            .any(|(alias, _, _)| path.aliases.iter().any(|a| std::ptr::eq(*a, alias.ast)))
        {
            self.alias_loop(path.span);
            return true;
        }
        for (alias, name, suffix) in matches {
            {
                let text = format!(
                    "{}{}{}",
                    spell(&name.components),
                    match alias.ast.kind {
                        AliasKind::Prologue => " = ",
                        AliasKind::Epilogue => " += ",
                    },
                    points_text_renamed(&alias.ast.points, ", ", self.global_renamer())
                );
                let mut prologue = path.prologue.clone();
                let mut epilogue = path.epilogue.clone();
                match alias.ast.kind {
                    AliasKind::Prologue => prologue.insert(0, &alias.ast.body),
                    AliasKind::Epilogue => epilogue.push(&alias.ast.body),
                }
                if let Some(e) = &alias.ast.epilogue {
                    epilogue.push(e);
                }
                let mut aliases = path.aliases.clone();
                aliases.push(alias.ast);
                let inner = Path {
                    aliases,
                    origin: format!("{text} <- {}", path.origin),
                    written: if path.depth == 0 {
                        spell(&name.components)
                    } else {
                        path.written.clone()
                    },
                    prologue,
                    epilogue,
                    condition: path.condition,
                    mark: path.mark,
                    depth: path.depth + 1,
                    span: path.span,
                };
                for target in &alias.ast.points {
                    let mut comps = target.components.clone();
                    comps.extend_from_slice(suffix);
                    let before = out.len();
                    let cond = Path {
                        condition: target.condition.as_ref().or(inner.condition),
                        origin: inner.origin.clone(),
                        written: inner.written.clone(),
                        prologue: inner.prologue.clone(),
                        epilogue: inner.epilogue.clone(),
                        mark: mark(target),
                        depth: inner.depth,
                        aliases: inner.aliases.clone(),
                        span: inner.span,
                    };
                    self.resolve(target, &comps, &cond, out);
                    if out.len() > before && target.sufficient {
                        break;
                    }
                }
            }
        }
        matched
    }

    /// Resolves `components` as one of the built-in families.
    fn family(&mut self, components: &[Component], path: &Path<'a>, out: &mut Vec<Derived<'a>>) {
        let names: Vec<&str> = components.iter().map(|c| c.name.as_str()).collect();
        let kinds = match names.as_slice() {
            ["begin"] => self.priority(&components[0]).map(PointKind::Begin),
            ["end"] => self.priority(&components[0]).map(PointKind::End),
            ["error"] => self.priority(&components[0]).map(PointKind::Error),
            ["never"] => self.no_arg(&components[0]).map(|()| PointKind::Never),
            ["timer", "profile"] | ["timer", "profile", "tick"] => Some(PointKind::Profile),
            ["timer", ..] => self.timer(components),
            ["perf", "type", "config", ..] => self.perf(components),
            ["kernel", "trace"] => {
                self.tracepoints(components, path, out);
                return;
            }
            ["kernel" | "kprobe" | "module", ..] => {
                self.kernel_family(components, path, out);
                return;
            }
            ["process", ..] => {
                self.process_family(components, path, out);
                return;
            }
            _ => return,
        };
        if let Some(kind) = kinds {
            out.push(self.derived(kind, spell(components), ProbeFacts::None, path));
        }
    }

    pub(super) fn derived(
        &self,
        kind: PointKind,
        name: String,
        facts: ProbeFacts,
        path: &Path<'a>,
    ) -> Derived<'a> {
        let mut name = format!("{name}{}", path.mark);
        if let Some(c) = path.condition {
            name.push_str(&format!(
                " if ({})",
                expr_text_renamed(c, self.global_renamer())
            ));
        }
        Derived {
            kind,
            name,
            origin: path.origin.clone(),
            written: path.written.clone(),
            prologue: path.prologue.clone(),
            epilogue: path.epilogue.clone(),
            condition: path.condition,
            facts,
            span: path.span,
        }
    }

    /// Prints globals as stap's `-p2` does in probe conditions: `__global_NAME`.
    fn global_renamer(&self) -> rstap_grammar::dump::Rename {
        let globals: std::collections::HashSet<String> =
            self.decls.globals.keys().map(|k| k.to_string()).collect();
        Box::new(move |n: &str| globals.contains(n).then(|| format!("__global_{n}")))
    }

    /// A point of a family (or form) rstap does not support: why, in one sentence.
    pub(super) fn unsupported(&mut self, span: Span, what: String, why: &str) {
        self.error(
            Diag::new(Code::E0406, span, what)
                .with_label("not supported")
                .with_note(why.to_string()),
        );
    }

    /// `begin(N)`: an optional number.
    fn priority(&mut self, c: &Component) -> Option<i64> {
        match c.arg.as_ref().map(|a| &a.node) {
            None => Some(0),
            Some(Literal::Num(n)) => Some(*n),
            Some(Literal::Str(_)) => {
                self.bad_arg(c, "a number");
                None
            }
        }
    }

    fn no_arg(&mut self, c: &Component) -> Option<()> {
        if c.arg.is_some() {
            self.error(
                Diag::new(
                    Code::E0403,
                    c.span,
                    format!("probe point '{}' takes no argument", c.name),
                )
                .with_label("remove this argument"),
            );
            return None;
        }
        Some(())
    }

    /// A component's required number argument.
    pub(super) fn number(&mut self, c: &Component) -> Option<i64> {
        match c.arg.as_ref().map(|a| &a.node) {
            Some(Literal::Num(n)) => Some(*n),
            _ => {
                self.bad_arg(c, "a number");
                None
            }
        }
    }

    pub(super) fn bad_arg(&mut self, c: &Component, what: &str) {
        self.error(
            Diag::new(
                Code::E0403,
                c.arg.as_ref().map_or(c.span, |a| a.span),
                format!("probe point component '{}' needs {what} argument", c.name),
            )
            .with_label(format!("expected {what}")),
        );
    }

    fn timer(&mut self, components: &[Component]) -> Option<PointKind> {
        // A bare `timer` names no unit: no match, as stap says.
        let unit = components.get(1)?;
        let (kind, scale) = match unit.name.as_str() {
            "s" | "sec" => (TimerUnit::Ns, 1_000_000_000),
            "ms" | "msec" => (TimerUnit::Ns, 1_000_000),
            "us" | "usec" => (TimerUnit::Ns, 1_000),
            "ns" | "nsec" => (TimerUnit::Ns, 1),
            "jiffies" => (TimerUnit::Jiffies, 1),
            "hz" => (TimerUnit::Hz, 1),
            _ => return None,
        };
        let n = self.number(unit)?;
        if n <= 0 {
            self.error(
                Diag::new(Code::E0403, unit.span, "a timer interval must be positive")
                    .with_label("this interval"),
            );
            return None;
        }
        let randomize = match &components[2..] {
            [] => 0,
            [r] if r.name == "randomize" && kind != TimerUnit::Hz => {
                let m = self.number(r)?;
                // stap bounds the spread only for jiffies; hrtimers clamp it.
                if m < 0 || (kind == TimerUnit::Jiffies && m > n) {
                    self.error(
                        Diag::new(
                            Code::E0403,
                            r.span,
                            "timer randomization must be at least 0 and, for jiffies, at most the interval",
                        )
                        .with_label("this randomization"),
                    );
                    return None;
                }
                m.saturating_mul(scale)
            }
            _ => return None,
        };
        Some(PointKind::Timer {
            unit: kind,
            interval: n.saturating_mul(scale),
            randomize,
        })
    }

    fn perf(&mut self, components: &[Component]) -> Option<PointKind> {
        let ty = self.number(&components[1])?;
        let config = self.number(&components[2])?;
        let (mut sample, mut hz) = (None, None);
        match &components[3..] {
            [] => sample = Some(1_000_000),
            [s] if s.name == "sample" => sample = Some(self.number(s)?),
            [h] if h.name == "hz" => hz = Some(self.number(h)?),
            _ => return None,
        }
        let (Ok(ty), Ok(config)) = (u32::try_from(ty), u64::try_from(config)) else {
            self.bad_arg(&components[1], "a non-negative");
            return None;
        };
        let positive = |v: Option<i64>| v.map(|n| u64::try_from(n).ok().filter(|&n| n > 0));
        let (sample, hz) = match (positive(sample), positive(hz)) {
            (Some(None), _) | (_, Some(None)) => {
                self.bad_arg(&components[3], "a positive");
                return None;
            }
            (s, h) => (s.flatten(), h.flatten()),
        };
        Some(PointKind::Perf {
            ty,
            config,
            sample,
            hz,
        })
    }

    /// `kernel.trace("[system:]name")` with wildcards in either part.
    fn tracepoints(
        &mut self,
        components: &[Component],
        path: &Path<'a>,
        out: &mut Vec<Derived<'a>>,
    ) {
        let c = &components[1];
        let Some(Literal::Str(pattern)) = c.arg.as_ref().map(|a| &a.node) else {
            self.bad_arg(c, "a \"system:name\" string");
            return;
        };
        let (sys, name) = pattern.split_once(':').unwrap_or(("*", pattern));
        // One tracepoint named in full: its format says whether it exists,
        // without listing the kernel's thousands of others.
        let wild = |s: &str| s.contains(['*', '?', '[']);
        if !wild(sys) && !wild(name) {
            let tp = TracepointId {
                system: sys.to_string(),
                name: name.to_string(),
            };
            if let Ok(format) = self.kernel.tracepoint_format(&tp) {
                return self.tracepoint(tp, format, path, out);
            }
        }
        let all = match self.kernel.tracepoints() {
            Ok(all) => all,
            Err(e) => {
                self.kernel_error(path.span, &e.0);
                return;
            }
        };
        let matches: Vec<TracepointId> = all
            .iter()
            .filter(|tp| fnmatch(sys, &tp.system) && fnmatch(name, &tp.name))
            .cloned()
            .collect();
        if matches.is_empty() {
            let names = all.iter().map(|tp| tp.name.as_str());
            return self.nothing_matched(components, path, name, names);
        }
        for tp in matches {
            match self.kernel.tracepoint_format(&tp) {
                Ok(format) => self.tracepoint(tp, format, path, out),
                Err(e) => self.kernel_error(path.span, &e.0),
            }
        }
    }

    /// The concrete point of tracepoint `tp`.
    fn tracepoint(
        &mut self,
        tp: TracepointId,
        format: TracepointFormat,
        path: &Path<'a>,
        out: &mut Vec<Derived<'a>>,
    ) {
        let spelled = format!("kernel.trace(\"{tp}\")");
        out.push(self.derived(
            PointKind::Tracepoint(tp),
            spelled,
            ProbeFacts::Tracepoint(format),
            path,
        ));
    }

    pub(super) fn kernel_error(&mut self, span: Span, msg: &str) {
        self.error(
            Diag::new(Code::E0405, span, msg.to_string())
                .with_label("while resolving this probe point"),
        );
    }
}

/// The marker a point's concrete points keep in their names.
fn mark(p: &ProbePoint) -> &'static str {
    if p.sufficient {
        "!"
    } else if p.optional {
        "?"
    } else {
        ""
    }
}

/// Whether an alias named `name` matches the start of `point`: the components
/// left over (a suffix to append to the alias's points), or `None`.
pub(super) fn alias_match<'p>(
    name: &[Component],
    point: &'p [Component],
) -> Option<&'p [Component]> {
    let (Some(n), Some(p)) = (name.first(), point.first()) else {
        // The whole name matched: what is left of the point is the suffix.
        return name.is_empty().then_some(point);
    };
    if p.name == "**" && p.arg.is_none() {
        // As in stap, `**` ends a point and stands for the rest of the alias name.
        return (point.len() == 1).then_some(&point[1..]);
    }
    if fnmatch(&p.name, &n.name) && same_arg(&n.arg, &p.arg) {
        alias_match(&name[1..], &point[1..])
    } else {
        None
    }
}

fn same_arg(
    a: &Option<rstap_grammar::Spanned<Literal>>,
    b: &Option<rstap_grammar::Spanned<Literal>>,
) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => x.node == y.node,
        _ => false,
    }
}

/// Components as stap spells a resolved point: `timer.ms(100)`, `kernel.trace("a:b")`.
pub(super) fn spell(components: &[Component]) -> String {
    let mut s = String::new();
    for (k, c) in components.iter().enumerate() {
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
