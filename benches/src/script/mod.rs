//! A deterministic SystemTap script of a chosen size, for parse benchmarks.
//!
//! The generator is a seeded [`Rng`] walking a small grammar of realistic items:
//! globals (scalars, arrays, statistics), `@define` macros, functions, probes on
//! kernel and user functions, syscalls, timers and tracepoints (with target
//! variables where stap allows them), aliases, and `%( %? %)` conditionals. Every
//! name it uses was declared before, so the text reads like a real script, and it is
//! meant to parse under both rstap and `stap -p1` whichever preprocessor branch is
//! taken. Same seed and size, same bytes.

mod expr;
mod items;
mod stmt;
mod vocab;

use crate::rng::Rng;

/// A script of at least `target_len` bytes (it stops after the item that crosses it).
pub fn generate(seed: u64, target_len: usize) -> String {
    let mut g = Gen::new(seed);
    g.prelude();
    while g.out.len() < target_len {
        g.item();
    }
    g.out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Num,
    Str,
}

#[derive(Clone, Debug)]
struct Array {
    name: String,
    keys: Vec<Ty>,
    value: Ty,
}

#[derive(Clone, Debug)]
struct Func {
    name: String,
    params: Vec<Ty>,
    ret: Option<Ty>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MacroKind {
    /// Expands to a number; its parameters are numbers.
    NumExpr,
    /// `@m(array, key)`: a statement on a one-key numeric array.
    BumpStmt,
    /// `@m(label, value)`: a printf statement.
    LogStmt,
}

#[derive(Clone, Debug)]
struct Macro {
    name: String,
    arity: usize,
    kind: MacroKind,
}

/// Everything declared so far, which later items may use.
#[derive(Debug, Default)]
struct Decls {
    num_globals: Vec<String>,
    str_globals: Vec<String>,
    arrays: Vec<Array>,
    stats: Vec<String>,
    stat_arrays: Vec<Array>,
    functions: Vec<Func>,
    macros: Vec<Macro>,
    /// Alias names, each with the numeric locals its prologue sets.
    aliases: Vec<(String, Vec<String>)>,
}

/// Which target variables a probe body may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Targets {
    None,
    Entry,
    Return,
    Trace,
}

/// The state of one probe or function body being written.
#[derive(Debug)]
struct Body {
    num_locals: Vec<String>,
    str_locals: Vec<String>,
    targets: Targets,
    in_probe: bool,
    loop_depth: u32,
    /// Counts loop and foreach variables so each gets a fresh name.
    fresh: u32,
}

impl Body {
    fn new(targets: Targets, in_probe: bool) -> Body {
        Body {
            num_locals: Vec::new(),
            str_locals: Vec::new(),
            targets,
            in_probe,
            loop_depth: 0,
            fresh: 0,
        }
    }

    fn fresh_name(&mut self, stem: &str) -> String {
        self.fresh += 1;
        format!("{stem}{}", self.fresh)
    }
}

#[derive(Debug)]
struct Gen {
    rng: Rng,
    out: String,
    decls: Decls,
    serial: u32,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
            out: String::with_capacity(1 << 21),
            decls: Decls::default(),
            serial: 0,
        }
    }

    /// A name no other global, function, macro or alias has.
    fn unique(&mut self, stem: &str) -> String {
        self.serial += 1;
        format!("{stem}_{}", self.serial)
    }

    fn line(&mut self, indent: usize, text: &str) {
        for _ in 0..indent {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::generate;
    use rstap_grammar::{ParseOptions, SourceMap, parse};

    #[test]
    fn same_seed_same_script() {
        assert_eq!(
            generate(3, 20_000),
            generate(3, 20_000),
            "the generator must be deterministic"
        );
        assert_ne!(
            generate(3, 20_000),
            generate(4, 20_000),
            "another seed gives another script"
        );
    }

    #[test]
    fn generated_script_parses() {
        let text = generate(0x5EED, 50_000);
        assert!(
            text.len() >= 50_000,
            "the script reaches the requested size"
        );
        let mut files = SourceMap::new();
        let id = files.add("gen.stp", text);
        if let Err(d) = parse(&files, id, &ParseOptions::default()) {
            panic!("rstap rejects the generated script:\n{}", d.render(&files));
        }
    }
}
