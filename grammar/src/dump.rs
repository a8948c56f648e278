//! `rstap -p1`: the AST printed in SystemTap's canonical parse-tree dump, byte for
//! byte as `stap -p1` prints it (every operand parenthesized, `while` as `for`,
//! literals in decimal, items grouped: embedded code, globals, aliases, probes,
//! functions).

use crate::ast::*;
use std::fmt::Write;

/// The whole dump of one file, `name` as the user gave it (`<input>` for `-e`).
pub fn dump(file: &File, name: &str) -> String {
    let mut p = Printer::new();
    p.out.push_str("# parse tree dump\n");
    let _ = writeln!(p.out, "# file {name}");
    for item in &file.items {
        if let Item::Embedded(code) = item {
            let _ = write!(p.out, "%{{{}%}}", code.node);
        }
    }
    for item in &file.items {
        if let Item::Global(g) = item {
            p.global(g);
        }
    }
    for item in &file.items {
        if let Item::Alias(a) = item {
            p.alias(a);
        }
    }
    for item in &file.items {
        if let Item::Probe(pr) = item {
            p.probe(pr);
        }
    }
    for item in &file.items {
        if let Item::Function(f) = item {
            p.function(f);
        }
    }
    p.out.push('\n');
    p.out
}

/// Probe points as stap prints them, joined by `sep` (`,` in a probe, `, ` in an
/// alias), with `!`/`?` and any `if` condition.
pub fn points_text(points: &[ProbePoint], sep: &str) -> String {
    let mut p = Printer::new();
    p.points(points, sep);
    p.out
}

/// [`points_text`] with variables in conditions renamed by `rename` where it answers.
pub fn points_text_renamed(points: &[ProbePoint], sep: &str, rename: Rename) -> String {
    let mut p = Printer {
        out: String::new(),
        rename: Some(rename),
    };
    p.points(points, sep);
    p.out
}

/// An expression as `-p1` prints it (fully parenthesized).
pub fn expr_text(e: &Expr) -> String {
    let mut p = Printer::new();
    p.expr(e);
    p.out
}

/// An expression as `-p1` prints it, with variables renamed by `rename` where it
/// answers.
pub fn expr_text_renamed(e: &Expr, rename: Rename) -> String {
    let mut p = Printer {
        out: String::new(),
        rename: Some(rename),
    };
    p.expr(e);
    p.out
}

/// A string literal as stap prints it: the source spelling, `"` escaped.
pub fn quote(stored: &str) -> String {
    let mut s = String::with_capacity(stored.len() + 2);
    s.push('"');
    for c in stored.chars() {
        if c == '"' {
            s.push_str("\\\"");
        } else {
            s.push(c);
        }
    }
    s.push('"');
    s
}

/// A format string or printd delimiter as stap prints it: backslashes doubled,
/// quotes escaped, anything unprintable as a three-digit octal escape.
pub fn quote_format(stored: &str) -> String {
    let mut s = String::with_capacity(stored.len() + 2);
    s.push('"');
    for &b in stored.as_bytes() {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\{b:03o}");
            }
        }
    }
    s.push('"');
    s
}

/// How variable names are printed: as written, or renamed (stap's `-p2` shows
/// globals in probe conditions as `__global_NAME`).
pub type Rename = Box<dyn Fn(&str) -> Option<String>>;

struct Printer {
    out: String,
    rename: Option<Rename>,
}

impl Printer {
    fn new() -> Printer {
        Printer {
            out: String::new(),
            rename: None,
        }
    }

    fn global(&mut self, g: &Global) {
        let _ = write!(self.out, "global {}", g.name.node);
        if g.wrap {
            self.out.push('%');
        }
        if let Some(n) = g.size {
            let _ = write!(self.out, "[{n}]");
        }
        if let Some(init) = &g.init {
            self.out.push_str(" = ");
            self.literal(&init.node);
        }
        self.out.push('\n');
    }

    fn literal(&mut self, l: &Literal) {
        match l {
            Literal::Num(n) => {
                let _ = write!(self.out, "{n}");
            }
            Literal::Str(s) => self.out.push_str(&quote(s)),
        }
    }

    fn point(&mut self, p: &ProbePoint) {
        for (k, c) in p.components.iter().enumerate() {
            if k > 0 {
                self.out.push('.');
            }
            self.out.push_str(&c.name);
            if let Some(arg) = &c.arg {
                self.out.push('(');
                self.literal(&arg.node);
                self.out.push(')');
            }
        }
        if p.sufficient {
            self.out.push('!');
        } else if p.optional {
            self.out.push('?');
        }
        self.condition(&p.condition);
    }

    fn points(&mut self, points: &[ProbePoint], sep: &str) {
        for (k, p) in points.iter().enumerate() {
            if k > 0 {
                self.out.push_str(sep);
            }
            self.point(p);
        }
    }

    fn condition(&mut self, c: &Option<Expr>) {
        if let Some(c) = c {
            self.out.push_str(" if (");
            self.expr(c);
            self.out.push(')');
        }
    }

    fn alias(&mut self, a: &Alias) {
        self.out.push_str("probe ");
        for (k, name) in a.names.iter().enumerate() {
            if k > 0 {
                self.out.push_str(" = ");
            }
            self.point(name);
        }
        self.out.push_str(match a.kind {
            AliasKind::Prologue => " = ",
            AliasKind::Epilogue => " += ",
        });
        self.points(&a.points, ", ");
        self.block(&a.body);
        self.out.push('\n');
    }

    fn probe(&mut self, p: &Probe) {
        self.out.push_str("probe ");
        self.points(&p.points, ",");
        self.block(&p.body);
        self.out.push('\n');
    }

    fn function(&mut self, f: &Function) {
        let _ = write!(self.out, "function {} (", f.name.node);
        for (k, p) in f.params.iter().enumerate() {
            if k > 0 {
                self.out.push_str(", ");
            }
            self.out.push_str(&p.name.node);
        }
        self.out.push_str(")\n");
        match &f.body {
            FunctionBody::Script(b) => self.block(b),
            FunctionBody::Embedded(code) => {
                let _ = write!(self.out, "%{{{}%}}", code.node);
            }
        }
        self.out.push('\n');
    }

    fn block(&mut self, b: &Block) {
        self.out.push_str("{\n");
        for s in &b.stmts {
            self.stmt(s);
            self.out.push_str(";\n");
        }
        self.out.push('}');
    }

    fn stmt(&mut self, s: &Stmt) {
        match &s.node {
            StmtKind::Block(b) => self.block(b),
            StmtKind::Null => self.out.push(';'),
            StmtKind::Expr(e) => self.expr(e),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.out.push_str("if (");
                self.expr(cond);
                self.out.push_str(") ");
                self.stmt(then);
                self.out.push('\n');
                if let Some(e) = otherwise {
                    self.out.push_str("else ");
                    self.stmt(e);
                    self.out.push('\n');
                }
            }
            StmtKind::While { cond, body } => {
                self.out.push_str("for (; ");
                self.expr(cond);
                self.out.push_str("; ) ");
                self.stmt(body);
            }
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => {
                self.out.push_str("for (");
                if let Some(e) = init {
                    self.expr(e);
                }
                self.out.push_str("; ");
                match cond {
                    Some(e) => self.expr(e),
                    None => self.out.push('1'),
                }
                self.out.push_str("; ");
                if let Some(e) = step {
                    self.expr(e);
                }
                self.out.push_str(") ");
                self.stmt(body);
            }
            StmtKind::Foreach(f) => self.foreach(f),
            StmtKind::Delete(e) => {
                self.out.push_str("delete ");
                self.expr(e);
            }
            StmtKind::Next => self.out.push_str("next"),
            StmtKind::Break => self.out.push_str("break"),
            StmtKind::Continue => self.out.push_str("continue"),
            StmtKind::Return(e) => {
                self.out.push_str("return");
                if let Some(e) = e {
                    self.out.push(' ');
                    self.expr(e);
                }
            }
            StmtKind::Try(t) => {
                self.out.push_str("try {\n");
                self.block(&t.body);
                self.out.push_str("\n} catch");
                if let Some(v) = &t.var {
                    let _ = write!(self.out, " ({})", v.node);
                }
                self.out.push_str(" {\n");
                self.block(&t.catch);
                self.out.push_str("\n}\n");
            }
        }
    }

    fn sort_mark(&mut self, sort: Option<Sort>, by: SortBy) {
        if let Some(s) = sort
            && s.by == by
        {
            self.out.push(match s.dir {
                SortDir::Ascending => '+',
                SortDir::Descending => '-',
            });
        }
    }

    fn foreach(&mut self, f: &Foreach) {
        self.out.push_str("foreach (");
        if let Some(v) = &f.value {
            let _ = write!(self.out, "{} = ", v.node);
        }
        self.out.push('[');
        for (k, key) in f.keys.iter().enumerate() {
            if k > 0 {
                self.out.push_str(", ");
            }
            self.out.push_str(&key.node);
            self.sort_mark(f.sort, SortBy::Key(k));
        }
        self.out.push_str("] in ");
        self.indexable(&f.array);
        if let Some(slice) = &f.slice {
            self.index_list(slice);
        }
        // stap prints `@variance` sorts as plain value sorts.
        if let Some(Sort {
            by: SortBy::Aggregate(op),
            ..
        }) = f.sort
            && op != StatOp::Variance
        {
            let _ = write!(self.out, " {}", stat_name(op));
            self.sort_mark(f.sort, SortBy::Aggregate(op));
        }
        self.sort_mark(f.sort, SortBy::Value);
        self.sort_mark(f.sort, SortBy::Aggregate(StatOp::Variance));
        if let Some(limit) = &f.limit {
            self.out.push_str(" limit ");
            self.expr(limit);
        }
        self.out.push_str(") ");
        self.stmt(&f.body);
    }

    fn indexable(&mut self, i: &Indexable) {
        match i {
            Indexable::Array(name) => self.out.push_str(&name.node),
            Indexable::Hist(h) => self.expr(h),
        }
    }

    fn index_list(&mut self, indexes: &[Option<Expr>]) {
        self.out.push('[');
        for (k, i) in indexes.iter().enumerate() {
            if k > 0 {
                self.out.push_str(", ");
            }
            match i {
                Some(e) => self.expr(e),
                None => self.out.push('*'),
            }
        }
        self.out.push(']');
    }

    fn list(&mut self, args: &[Expr]) {
        for (k, a) in args.iter().enumerate() {
            if k > 0 {
                self.out.push_str(", ");
            }
            self.expr(a);
        }
    }

    /// An operand of an operator: always in parentheses.
    fn wrapped(&mut self, e: &Expr) {
        self.out.push('(');
        self.expr(e);
        self.out.push(')');
    }

    fn chain(&mut self, c: &TargetChain) {
        for m in &c.members {
            match m {
                Member::Field(name) => {
                    let _ = write!(self.out, "->{name}");
                }
                Member::Index(e) => {
                    self.out.push('[');
                    self.expr(e);
                    self.out.push(']');
                }
            }
        }
        match c.pretty {
            0 => {}
            1 => self.out.push_str("->$"),
            _ => self.out.push_str("->$$"),
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.node {
            ExprKind::Num(n) => {
                let _ = write!(self.out, "{n}");
            }
            ExprKind::Str(s) => self.out.push_str(&quote(s)),
            ExprKind::Var(name) => match self.rename.as_ref().and_then(|r| r(name)) {
                Some(renamed) => self.out.push_str(&renamed),
                None => self.out.push_str(name),
            },
            ExprKind::Index { base, indexes } => {
                self.indexable(base);
                self.index_list(indexes);
            }
            ExprKind::Call { name, args } => {
                let _ = write!(self.out, "{}(", name.node);
                self.list(args);
                self.out.push(')');
            }
            ExprKind::Print(p) => self.print(p),
            ExprKind::Unary { op, expr } => {
                self.out.push_str(match op {
                    UnaryOp::Neg => "-",
                    UnaryOp::Plus => "+",
                    UnaryOp::Not => "!",
                    UnaryOp::BitNot => "~",
                });
                self.wrapped(expr);
            }
            ExprKind::AddrOf(expr) => {
                self.out.push('&');
                self.wrapped(expr);
            }
            ExprKind::Binary { op, left, right } => {
                self.wrapped(left);
                let _ = write!(self.out, " {} ", bin_op(*op));
                self.wrapped(right);
            }
            ExprKind::Regex {
                expr,
                negated,
                pattern,
            } => {
                self.wrapped(expr);
                self.out.push_str(if *negated { " !~ " } else { " =~ " });
                self.out.push_str(&quote(&pattern.node));
            }
            ExprKind::Assign { op, left, right } => {
                self.wrapped(left);
                let _ = write!(self.out, " {} ", assign_op(*op));
                self.wrapped(right);
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                self.wrapped(cond);
                self.out.push('?');
                self.wrapped(then);
                self.out.push(':');
                self.wrapped(otherwise);
            }
            ExprKind::In { keys, array } => {
                self.index_list(keys);
                self.out.push_str(" in ");
                self.indexable(array);
            }
            ExprKind::Crement { op, post, expr } => {
                let text = match op {
                    CrementOp::Incr => "++",
                    CrementOp::Decr => "--",
                };
                if *post {
                    self.wrapped(expr);
                    self.out.push_str(text);
                } else {
                    self.out.push_str(text);
                    self.wrapped(expr);
                }
            }
            ExprKind::Stat { op, expr, shift } => {
                let _ = write!(self.out, "{}(", stat_name(*op));
                self.expr(expr);
                if let Some(s) = shift {
                    self.out.push_str(", ");
                    self.expr(s);
                }
                self.out.push(')');
            }
            ExprKind::Hist { kind, expr } => match kind {
                Histogram::Log => {
                    self.out.push_str("@hist_log(");
                    self.expr(expr);
                    self.out.push(')');
                }
                Histogram::Linear { start, stop, step } => {
                    self.out.push_str("@hist_linear(");
                    self.expr(expr);
                    let _ = write!(self.out, ", {start}, {stop}, {step})");
                }
            },
            ExprKind::Target { name, chain } => {
                if chain.addr_of {
                    self.out.push('&');
                }
                self.out.push_str(name);
                self.chain(chain);
            }
            ExprKind::Chain { base, chain } => {
                self.wrapped(base);
                self.chain(chain);
            }
            ExprKind::Cast {
                expr,
                ty,
                module,
                chain,
            } => {
                if chain.addr_of {
                    self.out.push('&');
                }
                self.out.push_str("@cast(");
                self.expr(expr);
                // stap prints @cast's type and module like format strings.
                let _ = write!(self.out, ", {}", quote_format(&ty.node));
                if let Some(m) = module {
                    let _ = write!(self.out, ", {}", quote_format(&m.node));
                }
                self.out.push(')');
                self.chain(chain);
            }
            ExprKind::AtVar {
                name,
                module,
                chain,
            } => {
                if chain.addr_of {
                    self.out.push('&');
                }
                // stap prints @var's name as stored (quotes unescaped), its module
                // like a format string.
                let _ = write!(self.out, "@var(\"{}\"", name.node);
                if let Some(m) = module {
                    let _ = write!(self.out, ", {}", quote_format(&m.node));
                }
                self.out.push(')');
                self.chain(chain);
            }
            ExprKind::Entry(e) => self.call_like("@entry", &[e]),
            ExprKind::Defined(e) => self.call_like("@defined", &[e]),
            ExprKind::Probewrite(e) => self.call_like("@probewrite", &[e]),
            ExprKind::Register { user, number } => {
                self.call_like(if *user { "@uregister" } else { "@kregister" }, &[number]);
            }
            ExprKind::Deref { user, size, addr } => {
                self.call_like(if *user { "@uderef" } else { "@kderef" }, &[size, addr]);
            }
            ExprKind::Const(name) => {
                let _ = write!(
                    self.out,
                    "%{{ /* pure */ /* unprivileged */ /* stable */ {} %}}",
                    name.node
                );
            }
            ExprKind::Perf(name) => {
                let _ = write!(self.out, "@perf({})", quote(&name.node));
            }
            ExprKind::Embedded(code) => {
                let _ = write!(self.out, "%{{ {code} %}}");
            }
        }
    }

    fn call_like(&mut self, name: &str, args: &[&Expr]) {
        let _ = write!(self.out, "{name}(");
        for (k, a) in args.iter().enumerate() {
            if k > 0 {
                self.out.push_str(", ");
            }
            self.expr(a);
        }
        self.out.push(')');
    }

    fn print(&mut self, p: &Print) {
        let _ = write!(self.out, "{}(", print_name(p.kind));
        let mut first = true;
        if let Some(f) = &p.format {
            self.out.push_str(&quote_format(&f.node));
            first = false;
        }
        for a in &p.args {
            if !first {
                self.out.push_str(", ");
            }
            first = false;
            self.expr(a);
        }
        self.out.push(')');
    }
}

pub fn stat_name(op: StatOp) -> &'static str {
    match op {
        StatOp::Count => "@count",
        StatOp::Sum => "@sum",
        StatOp::Min => "@min",
        StatOp::Max => "@max",
        StatOp::Avg => "@avg",
        StatOp::Variance => "@variance",
    }
}

pub fn print_name(k: PrintKind) -> &'static str {
    match k {
        PrintKind::Print => "print",
        PrintKind::Println => "println",
        PrintKind::Printf => "printf",
        PrintKind::Printd => "printd",
        PrintKind::Printdln => "printdln",
        PrintKind::Sprint => "sprint",
        PrintKind::Sprintln => "sprintln",
        PrintKind::Sprintf => "sprintf",
        PrintKind::Sprintd => "sprintd",
        PrintKind::Sprintdln => "sprintdln",
    }
}

pub fn bin_op(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Shl => "<<",
        BinOp::Shr => ">>",
        BinOp::UShr => ">>>",
        BinOp::BitAnd => "&",
        BinOp::BitOr => "|",
        BinOp::BitXor => "^",
        BinOp::And => "&&",
        BinOp::Or => "||",
        BinOp::Concat => ".",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
    }
}

pub fn assign_op(op: AssignOp) -> &'static str {
    match op {
        AssignOp::Assign => "=",
        AssignOp::Add => "+=",
        AssignOp::Sub => "-=",
        AssignOp::Mul => "*=",
        AssignOp::Div => "/=",
        AssignOp::Mod => "%=",
        AssignOp::Shl => "<<=",
        AssignOp::Shr => ">>=",
        AssignOp::BitAnd => "&=",
        AssignOp::BitXor => "^=",
        AssignOp::BitOr => "|=",
        AssignOp::Concat => ".=",
        AssignOp::Aggregate => "<<<",
    }
}
