//! Statements: assignments, aggregation, output, control flow, macro uses and
//! `%( %)` inside bodies. `nest` bounds how deep blocks go.

use super::vocab::{
    NUM_CONVERSIONS, NUM_LOCALS, PP_CONDITIONS, STR_CONVERSIONS, STR_LOCALS, WORDS,
};
use super::{Body, Gen, MacroKind, Ty};

impl Gen {
    /// `n` statements at `indent`.
    pub(super) fn stmts(&mut self, b: &mut Body, indent: usize, n: usize, nest: u32) {
        for _ in 0..n {
            self.stmt(b, indent, nest);
        }
    }

    fn stmt(&mut self, b: &mut Body, indent: usize, nest: u32) {
        let roll = self.rng.below(100);
        let control = nest > 0;
        match roll {
            0..=17 => self.assign_local(b, indent),
            18..=25 => self.update_global(b, indent),
            26..=33 => self.array_store(b, indent),
            34..=41 => self.aggregate(b, indent),
            42..=53 => self.output(b, indent),
            54..=62 if control => self.if_else(b, indent, nest),
            63..=66 if control => self.counted_loop(b, indent, nest),
            67..=73 if control => self.foreach(b, indent, nest),
            74..=76 => self.delete(b, indent),
            77..=79 if control => self.try_catch(b, indent, nest),
            80..=84 => self.macro_use(b, indent),
            85..=87 if control => self.conditional_stmts(b, indent, nest),
            88..=89 if b.in_probe => self.early_exit(b, indent),
            90..=91 if b.loop_depth > 0 => self.loop_exit(b, indent),
            92 => self.comment(indent),
            _ => self.assign_local(b, indent),
        }
    }

    fn assign_local(&mut self, b: &mut Body, indent: usize) {
        if self.rng.chance(70) {
            let name = self.rng.pick(NUM_LOCALS).to_string();
            let e = self.num(b, 3);
            if b.num_locals.contains(&name) && self.rng.chance(40) {
                let op = self.rng.pick(&["+=", "-=", "*=", "|=", "<<=", "%="]);
                let text = if *op == "%=" {
                    format!("{name} %= ({e}) + 1")
                } else {
                    format!("{name} {op} {e}")
                };
                self.line(indent, &text);
            } else {
                self.line(indent, &format!("{name} = {e}"));
            }
            if !b.num_locals.contains(&name) && !b.str_locals.contains(&name) {
                b.num_locals.push(name);
            }
        } else {
            let name = self.rng.pick(STR_LOCALS).to_string();
            let e = self.string(b, 2);
            if b.str_locals.contains(&name) && self.rng.chance(30) {
                self.line(indent, &format!("{name} .= {e}"));
            } else {
                self.line(indent, &format!("{name} = {e}"));
            }
            if !b.num_locals.contains(&name) && !b.str_locals.contains(&name) {
                b.str_locals.push(name);
            }
        }
    }

    fn update_global(&mut self, b: &Body, indent: usize) {
        if self.rng.chance(75) {
            let g = self.rng.pick(&self.decls.num_globals).clone();
            let text = match self.rng.below(4) {
                0 => format!("{g}++"),
                1 => format!("++{g}"),
                2 => format!("{g} += {}", self.num(b, 2)),
                _ => format!("{g} = {}", self.num(b, 2)),
            };
            self.line(indent, &text);
        } else {
            let g = self.rng.pick(&self.decls.str_globals).clone();
            let e = self.string(b, 2);
            self.line(indent, &format!("{g} = {e}"));
        }
    }

    fn array_store(&mut self, b: &Body, indent: usize) {
        let a = self.rng.pick(&self.decls.arrays).clone();
        let index = self.index(b, &a.keys);
        let text = match a.value {
            Ty::Num => match self.rng.below(3) {
                0 => format!("{}[{index}]++", a.name),
                1 => format!("{}[{index}] += {}", a.name, self.num(b, 2)),
                _ => format!("{}[{index}] = {}", a.name, self.num(b, 2)),
            },
            Ty::Str => format!("{}[{index}] = {}", a.name, self.string(b, 2)),
        };
        self.line(indent, &text);
    }

    /// `<<<` into a statistic or a statistics array.
    fn aggregate(&mut self, b: &Body, indent: usize) {
        let value = self.num(b, 2);
        if self.rng.chance(50) {
            let s = self.rng.pick(&self.decls.stats).clone();
            self.line(indent, &format!("{s} <<< {value}"));
        } else {
            let a = self.rng.pick(&self.decls.stat_arrays).clone();
            let index = self.index(b, &a.keys);
            self.line(indent, &format!("{}[{index}] <<< {value}", a.name));
        }
    }

    fn output(&mut self, b: &Body, indent: usize) {
        match self.rng.below(10) {
            0..=5 => {
                let call = self.printf_call(b, "printf");
                self.line(indent, &call);
            }
            6 => {
                let (x, y) = (self.string(b, 1), self.num(b, 1));
                self.line(indent, &format!("println({x}, \" \", {y})"));
            }
            7 => {
                let (x, y) = (self.num(b, 1), self.string(b, 1));
                self.line(indent, &format!("printd(\",\", {x}, {y})"));
            }
            8 => {
                let s = self.rng.pick(&self.decls.stats).clone();
                self.line(indent, &format!("print(@hist_log({s}))"));
            }
            _ => {
                let s = self.rng.pick(&self.decls.stats).clone();
                let step = self.rng.range(1, 100) * 10;
                self.line(
                    indent,
                    &format!("print(@hist_linear({s}, 0, {}, {step}))", step * 20),
                );
            }
        }
    }

    /// `printf("fmt", args...)` (or `sprintf`) with conversions matching its arguments.
    pub(super) fn printf_call(&mut self, b: &Body, func: &str) -> String {
        let n = 1 + self.rng.below(4);
        let mut fmt = String::new();
        let mut args = Vec::new();
        for i in 0..n {
            if i > 0 {
                let sep = *self.rng.pick(&[" ", ", ", "\\t", " | "]);
                fmt.push_str(sep);
            }
            let word = *self.rng.pick(WORDS);
            fmt.push_str(word);
            fmt.push('=');
            if self.rng.chance(60) {
                let conv = *self.rng.pick(NUM_CONVERSIONS);
                fmt.push_str(conv);
                args.push(self.num(b, 1));
            } else {
                let conv = *self.rng.pick(STR_CONVERSIONS);
                fmt.push_str(conv);
                args.push(self.string(b, 1));
            }
        }
        if func == "printf" {
            fmt.push_str("\\n");
        }
        format!("{func}(\"{fmt}\", {})", args.join(", "))
    }

    fn if_else(&mut self, b: &mut Body, indent: usize, nest: u32) {
        let c = self.cond(b, 2);
        self.line(indent, &format!("if ({c}) {{"));
        let n = 1 + self.rng.below(3);
        self.stmts(b, indent + 1, n, nest - 1);
        match self.rng.below(3) {
            0 => self.line(indent, "}"),
            1 => {
                self.line(indent, "} else {");
                let n = 1 + self.rng.below(2);
                self.stmts(b, indent + 1, n, nest - 1);
                self.line(indent, "}");
            }
            _ => {
                let c = self.cond(b, 1);
                self.line(indent, &format!("}} else if ({c}) {{"));
                self.stmts(b, indent + 1, 1, nest - 1);
                self.line(indent, "} else {");
                self.stmts(b, indent + 1, 1, nest - 1);
                self.line(indent, "}");
            }
        }
    }

    fn counted_loop(&mut self, b: &mut Body, indent: usize, nest: u32) {
        let i = b.fresh_name("i");
        let bound = self.rng.range(2, 64);
        if self.rng.chance(50) {
            self.line(indent, &format!("for ({i} = 0; {i} < {bound}; {i}++) {{"));
        } else {
            self.line(indent, &format!("{i} = 0"));
            self.line(indent, &format!("while ({i} < {bound}) {{"));
            self.line(indent + 1, &format!("{i}++"));
        }
        b.num_locals.push(i);
        b.loop_depth += 1;
        let n = 1 + self.rng.below(3);
        self.stmts(b, indent + 1, n, nest - 1);
        b.loop_depth -= 1;
        self.line(indent, "}");
    }

    fn foreach(&mut self, b: &mut Body, indent: usize, nest: u32) {
        let stats = self.rng.chance(35);
        let a = if stats {
            self.rng.pick(&self.decls.stat_arrays).clone()
        } else {
            self.rng.pick(&self.decls.arrays).clone()
        };
        let keys: Vec<String> = a.keys.iter().map(|_| b.fresh_name("k")).collect();
        let sort = self.rng.pick(&["", "", "+", "-"]);
        let mut head = if keys.len() == 1 && self.rng.chance(50) {
            keys[0].clone()
        } else {
            format!("[{}]", keys.join(", "))
        };
        let value = (!stats && self.rng.chance(30)).then(|| b.fresh_name("v"));
        if let Some(v) = &value {
            head = format!("{v} = {head}");
        }
        let agg = if stats && !sort.is_empty() {
            self.rng
                .pick(&[" @count", " @sum", " @max", " @avg"])
                .to_string()
        } else {
            String::new()
        };
        let limit = if self.rng.chance(40) {
            format!(" limit {}", self.rng.range(1, 50))
        } else {
            String::new()
        };
        self.line(
            indent,
            &format!("foreach ({head} in {}{agg}{sort}{limit}) {{", a.name),
        );
        for (k, ty) in keys.iter().zip(&a.keys) {
            match ty {
                Ty::Num => b.num_locals.push(k.clone()),
                Ty::Str => b.str_locals.push(k.clone()),
            }
        }
        let element = format!("{}[{}]", a.name, keys.join(", "));
        if stats {
            self.line(
                indent + 1,
                &format!("printf(\"%d %d\\n\", @count({element}), @sum({element}))"),
            );
            if self.rng.chance(40) {
                self.line(indent + 1, &format!("print(@hist_log({element}))"));
            }
        } else if let Some(v) = value {
            match a.value {
                Ty::Num => b.num_locals.push(v),
                Ty::Str => b.str_locals.push(v),
            }
        }
        b.loop_depth += 1;
        let n = 1 + self.rng.below(2);
        self.stmts(b, indent + 1, n, nest - 1);
        b.loop_depth -= 1;
        self.line(indent, "}");
    }

    fn delete(&mut self, b: &Body, indent: usize) {
        let a = self.rng.pick(&self.decls.arrays).clone();
        if self.rng.chance(50) {
            self.line(indent, &format!("delete {}", a.name));
        } else {
            let index = self.index(b, &a.keys);
            self.line(indent, &format!("delete {}[{index}]", a.name));
        }
    }

    fn try_catch(&mut self, b: &mut Body, indent: usize, nest: u32) {
        self.line(indent, "try {");
        let n = 1 + self.rng.below(2);
        self.stmts(b, indent + 1, n, nest - 1);
        let msg = b.fresh_name("err");
        self.line(indent, &format!("}} catch ({msg}) {{"));
        self.line(indent + 1, &format!("printf(\"error: %s\\n\", {msg})"));
        self.line(indent, "}");
    }

    fn macro_use(&mut self, b: &Body, indent: usize) {
        let m = self.rng.pick(&self.decls.macros).clone();
        match m.kind {
            MacroKind::NumExpr => {
                let e = self.macro_expr(b, &m);
                self.line(indent, &format!("n = {e}"));
            }
            MacroKind::BumpStmt => {
                let Some(a) = self
                    .decls
                    .arrays
                    .iter()
                    .find(|a| a.keys.len() == 1 && a.value == Ty::Num)
                    .cloned()
                else {
                    return;
                };
                let key = self.index(b, &a.keys);
                // Parenthesised so a comma inside the argument cannot split it.
                self.line(indent, &format!("@{}({}, ({key}))", m.name, a.name));
            }
            MacroKind::LogStmt => {
                let (label, value) = (self.string(b, 1), self.num(b, 1));
                self.line(indent, &format!("@{}(({label}), ({value}))", m.name));
            }
        }
    }

    fn conditional_stmts(&mut self, b: &mut Body, indent: usize, nest: u32) {
        let cond = *self.rng.pick(PP_CONDITIONS);
        self.line(indent, &format!("%( {cond} %?"));
        self.stmts(b, indent + 1, 1, nest - 1);
        self.line(indent, "%:");
        self.stmts(b, indent + 1, 1, nest - 1);
        self.line(indent, "%)");
    }

    fn early_exit(&mut self, b: &Body, indent: usize) {
        let c = self.cond(b, 1);
        self.line(indent, &format!("if ({c}) next"));
    }

    fn loop_exit(&mut self, b: &Body, indent: usize) {
        let c = self.cond(b, 1);
        let word = self.rng.pick(&["break", "continue"]);
        self.line(indent, &format!("if ({c}) {word}"));
    }

    fn comment(&mut self, indent: usize) {
        let w = self.rng.pick(WORDS);
        let text = match self.rng.below(3) {
            0 => format!("# count the {w} path"),
            1 => format!("// {w}: see above"),
            _ => format!("/* {w} */"),
        };
        self.line(indent, &text);
    }

    /// A `begin`/`end` style report: totals and histograms.
    pub(super) fn report(&mut self, b: &mut Body, indent: usize) {
        let g = self.rng.pick(&self.decls.num_globals).clone();
        let s = self.rng.pick(&self.decls.stats).clone();
        self.line(indent, &format!("printf(\"%s: %d\\n\", \"{g}\", {g})"));
        self.line(indent, &format!("if (@count({s}) > 0) {{"));
        self.line(
            indent + 1,
            &format!("printf(\"avg %d min %d max %d\\n\", @avg({s}), @min({s}), @max({s}))"),
        );
        self.line(indent + 1, &format!("print(@hist_log({s}))"));
        self.line(indent, "}");
        self.stmt(b, indent, 1);
    }
}
