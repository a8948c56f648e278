//! Expressions of a known type: numbers, strings, and conditions. `depth` bounds
//! nesting. Operators always have spaces around them and unary operands are
//! parenthesised, so no two operators run together into another token (`- -1`
//! never becomes `--1`, `%` never touches `(`).

use super::vocab::{
    ENTRY_NUM_TARGETS, ENTRY_STR_TARGETS, NUM_BUILTINS, REGEXES, RETURN_NUM_TARGETS, STR_BUILTINS,
    TRACE_NUM_TARGETS, WORDS,
};
use super::{Body, Gen, Macro, MacroKind, Targets, Ty};

impl Gen {
    pub(super) fn num(&mut self, b: &Body, depth: u32) -> String {
        if depth == 0 || self.rng.chance(35) {
            return self.num_leaf(b);
        }
        let d = depth - 1;
        match self.rng.below(12) {
            0..=3 => {
                let op = *self
                    .rng
                    .pick(&["+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^", "+", "-"]);
                let (l, r) = (self.num(b, d), self.num(b, d));
                if op == "/" || op == "%" {
                    format!("{l} {op} ({r} + 1)")
                } else {
                    format!("{l} {op} {r}")
                }
            }
            4 => format!("({})", self.num(b, d)),
            5 => format!(
                "({} ? {} : {})",
                self.cond(b, d),
                self.num(b, d),
                self.num(b, d)
            ),
            6 => format!("{}({})", self.rng.pick(&["-", "~", "!"]), self.num(b, d)),
            7 | 8 => self.call(b, Ty::Num, d).unwrap_or_else(|| self.num_leaf(b)),
            9 => format!("strlen({})", self.string(b, d)),
            10 => {
                let s = self.rng.pick(&self.decls.stats).clone();
                let op = self.rng.pick(&["@count", "@sum", "@avg", "@min", "@max"]);
                format!("{op}({s})")
            }
            _ => {
                let macros: Vec<Macro> = self
                    .decls
                    .macros
                    .iter()
                    .filter(|m| m.kind == MacroKind::NumExpr)
                    .cloned()
                    .collect();
                if macros.is_empty() {
                    self.num_leaf(b)
                } else {
                    let m = self.rng.pick(&macros).clone();
                    self.macro_expr(b, &m)
                }
            }
        }
    }

    /// `@name(arg, ...)` of a numeric macro, each argument parenthesised.
    pub(super) fn macro_expr(&mut self, b: &Body, m: &Macro) -> String {
        if m.arity == 0 {
            return format!("@{}", m.name);
        }
        let args: Vec<String> = (0..m.arity)
            .map(|_| format!("({})", self.num(b, 1)))
            .collect();
        format!("@{}({})", m.name, args.join(", "))
    }

    fn num_leaf(&mut self, b: &Body) -> String {
        match self.rng.below(14) {
            0 | 1 => self.number_literal(),
            2..=4 if !b.num_locals.is_empty() => self.rng.pick(&b.num_locals).clone(),
            5 => self.rng.pick(&self.decls.num_globals).clone(),
            6 => {
                let arrays: Vec<_> = self
                    .decls
                    .arrays
                    .iter()
                    .filter(|a| a.value == Ty::Num)
                    .cloned()
                    .collect();
                if arrays.is_empty() {
                    self.number_literal()
                } else {
                    let a = self.rng.pick(&arrays).clone();
                    format!("{}[{}]", a.name, self.index(b, &a.keys))
                }
            }
            7 | 8 => self.rng.pick(NUM_BUILTINS).to_string(),
            9..=11 => match b.targets {
                Targets::Entry => self.rng.pick(ENTRY_NUM_TARGETS).to_string(),
                Targets::Return => self.rng.pick(RETURN_NUM_TARGETS).to_string(),
                Targets::Trace => self.rng.pick(TRACE_NUM_TARGETS).to_string(),
                Targets::None => self.rng.pick(NUM_BUILTINS).to_string(),
            },
            12 if b.targets == Targets::Entry => "(@defined($flags) ? $flags : 0)".to_string(),
            _ => self.number_literal(),
        }
    }

    fn number_literal(&mut self) -> String {
        match self.rng.below(10) {
            0 => format!("{:#x}", self.rng.range(0, 0xffff_ffff)),
            1 => format!("0{:o}", self.rng.range(1, 0o777)),
            2 => format!("{}", self.rng.range(1_000_000, 10_000_000_000)),
            _ => format!("{}", self.rng.range(0, 1000)),
        }
    }

    pub(super) fn string(&mut self, b: &Body, depth: u32) -> String {
        if depth == 0 || self.rng.chance(45) {
            return self.string_leaf(b);
        }
        let d = depth - 1;
        match self.rng.below(6) {
            0 | 1 => format!("{} . {}", self.string(b, d), self.string(b, d)),
            2 => self.printf_call(b, "sprintf"),
            3 => self
                .call(b, Ty::Str, d)
                .unwrap_or_else(|| self.string_leaf(b)),
            4 => format!(
                "({} ? {} : {})",
                self.cond(b, d),
                self.string(b, d),
                self.string(b, d)
            ),
            _ => format!(
                "substr({}, 0, {})",
                self.string(b, d),
                self.rng.range(1, 32)
            ),
        }
    }

    fn string_leaf(&mut self, b: &Body) -> String {
        match self.rng.below(10) {
            0..=2 => self.string_literal(),
            3 | 4 if !b.str_locals.is_empty() => self.rng.pick(&b.str_locals).clone(),
            5 => self.rng.pick(&self.decls.str_globals).clone(),
            6 => {
                let arrays: Vec<_> = self
                    .decls
                    .arrays
                    .iter()
                    .filter(|a| a.value == Ty::Str)
                    .cloned()
                    .collect();
                if arrays.is_empty() {
                    self.string_literal()
                } else {
                    let a = self.rng.pick(&arrays).clone();
                    format!("{}[{}]", a.name, self.index(b, &a.keys))
                }
            }
            7 if b.targets == Targets::Entry => self.rng.pick(ENTRY_STR_TARGETS).to_string(),
            _ => self.rng.pick(STR_BUILTINS).to_string(),
        }
    }

    fn string_literal(&mut self) -> String {
        let w = self.rng.pick(WORDS);
        match self.rng.below(6) {
            0 => format!("\"{w}\\t\""),
            1 => format!("\"\\\"{w}\\\"\""),
            2 => format!("\"/proc/{w}\""),
            _ => format!("\"{w}\""),
        }
    }

    pub(super) fn cond(&mut self, b: &Body, depth: u32) -> String {
        let d = depth.saturating_sub(1);
        match self.rng.below(10) {
            0..=3 => {
                let op = self.rng.pick(&["<", "<=", ">", ">=", "==", "!="]);
                format!("{} {op} {}", self.num(b, d), self.num(b, d))
            }
            4 => format!("{} == {}", self.string(b, d), self.string_literal()),
            5 => {
                let op = self.rng.pick(&["=~", "!~"]);
                format!("{} {op} \"{}\"", self.string(b, d), self.rng.pick(REGEXES))
            }
            6 => {
                let a = self.rng.pick(&self.decls.arrays).clone();
                let index = self.index(b, &a.keys);
                if a.keys.len() == 1 && self.rng.chance(50) {
                    format!("{index} in {}", a.name)
                } else {
                    format!("[{index}] in {}", a.name)
                }
            }
            7 if depth > 0 => {
                let op = self.rng.pick(&["&&", "||"]);
                format!("{} {op} {}", self.cond(b, d), self.cond(b, d))
            }
            8 if depth > 0 => format!("!({})", self.cond(b, d)),
            _ => self.num_leaf(b),
        }
    }

    /// The subscripts of an array element with these key types: plain atoms, so
    /// array elements never nest inside subscripts without bound.
    pub(super) fn index(&mut self, b: &Body, keys: &[Ty]) -> String {
        let parts: Vec<String> = keys.iter().map(|ty| self.atom(b, *ty)).collect();
        parts.join(", ")
    }

    /// A literal, a local or a builtin call of type `ty`.
    fn atom(&mut self, b: &Body, ty: Ty) -> String {
        let locals = match ty {
            Ty::Num => &b.num_locals,
            Ty::Str => &b.str_locals,
        };
        match self.rng.below(3) {
            0 if !locals.is_empty() => self.rng.pick(locals).clone(),
            1 => match ty {
                Ty::Num => self.rng.pick(NUM_BUILTINS).to_string(),
                Ty::Str => self.rng.pick(STR_BUILTINS).to_string(),
            },
            _ => match ty {
                Ty::Num => self.number_literal(),
                Ty::Str => self.string_literal(),
            },
        }
    }

    /// A call of a declared function returning `ty`, if there is one.
    fn call(&mut self, b: &Body, ty: Ty, depth: u32) -> Option<String> {
        let candidates: Vec<_> = self
            .decls
            .functions
            .iter()
            .filter(|f| f.ret == Some(ty))
            .cloned()
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let f = self.rng.pick(&candidates).clone();
        let args: Vec<String> = f
            .params
            .iter()
            .map(|p| match p {
                Ty::Num => self.num(b, depth),
                Ty::Str => self.string(b, depth),
            })
            .collect();
        Some(format!("{}({})", f.name, args.join(", ")))
    }
}
