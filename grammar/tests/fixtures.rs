//! Parser fixtures: every `fixtures/ok/*.stp` parses, its `-p1` dump is snapshotted
//! and its spans nest; every `fixtures/err/*.stp` fails with a snapshotted
//! diagnostic. Header comments `# args: A B` and `# guru` set script arguments and
//! guru mode (see fixtures/README.md).

use rstap_grammar::ast::{Block, Expr, Item, Stmt};
use rstap_grammar::stack::on_worker_stack;
use rstap_grammar::visit::{Visitor, walk_block, walk_expr, walk_file, walk_item, walk_stmt};
use rstap_grammar::{Facts, FileId, ParseOptions, SourceMap, Span, dump::dump, parse};
use std::path::Path;

/// Fixed target facts, so snapshots do not depend on the machine.
fn facts(guru: bool) -> Facts {
    let mut f = Facts::for_release("6.18.44-fc-v657")
        .with_config_text("CONFIG_SMP=y\nCONFIG_64BIT=y\nCONFIG_HZ=250\n");
    f.guru_mode = guru;
    f
}

fn options(text: &str) -> ParseOptions {
    let mut args = Vec::new();
    let mut guru = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(a) = line.strip_prefix("# args:") {
            args = a.split_whitespace().map(str::to_string).collect();
        } else if line == "# guru" {
            guru = true;
        }
    }
    ParseOptions {
        args,
        facts: facts(guru),
        privileged: guru,
        macro_library: Vec::new(),
    }
}

fn load(path: &Path) -> (SourceMap, FileId, ParseOptions) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    let mut opts = options(&text);
    let mut files = SourceMap::new();
    opts.macro_library = rstap_stdlib::macros()
        .map(|(name, text)| files.add(name, text))
        .collect();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id = files.add(name, text);
    (files, id, opts)
}

/// Every node's span lies inside the file and inside its parent's span.
struct SpanCheck<'a> {
    len: u32,
    file: FileId,
    parents: Vec<Span>,
    fixture: &'a str,
}

impl SpanCheck<'_> {
    /// Spans from another file (a tapset macro's body) are checked against nothing.
    fn enter(&mut self, span: Span, what: &str) {
        if span.file == self.file {
            assert!(
                span.start <= span.end && span.end <= self.len,
                "{}: {what} span {span:?} is outside the source",
                self.fixture
            );
            if let Some(parent) = self.parents.iter().rev().find(|p| p.file == self.file) {
                assert!(
                    parent.contains(span),
                    "{}: {what} span {span:?} is not inside its parent {parent:?}",
                    self.fixture
                );
            }
        }
        self.parents.push(span);
    }
}

impl Visitor for SpanCheck<'_> {
    fn item(&mut self, i: &Item) {
        let span = match i {
            Item::Global(g) => g.span,
            Item::Probe(p) => p.span,
            Item::Alias(a) => a.span,
            Item::Function(f) => f.span,
            Item::Embedded(e) => e.span,
        };
        self.enter(span, "item");
        walk_item(self, i);
        self.parents.pop();
    }
    fn block(&mut self, b: &Block) {
        self.enter(b.span, "block");
        walk_block(self, b);
        self.parents.pop();
    }
    fn stmt(&mut self, s: &Stmt) {
        self.enter(s.span, "statement");
        walk_stmt(self, s);
        self.parents.pop();
    }
    fn expr(&mut self, e: &Expr) {
        self.enter(e.span, "expression");
        walk_expr(self, e);
        self.parents.pop();
    }
}

#[test]
fn ok_fixtures_parse_and_dump() {
    insta::glob!("fixtures/ok/*.stp", |path| {
        let (files, id, opts) = load(path);
        let ast = parse(&files, id, &opts)
            .unwrap_or_else(|d| panic!("{} should parse:\n{}", path.display(), d.render(&files)));
        let fixture = path.display().to_string();
        let mut check = SpanCheck {
            len: files.text(id).len() as u32,
            file: id,
            parents: Vec::new(),
            fixture: &fixture,
        };
        walk_file(&mut check, &ast);
        insta::assert_snapshot!(dump(&ast, files.name(id)));
    });
}

#[test]
fn err_fixtures_fail_with_diagnostics() {
    insta::glob!("fixtures/err/*.stp", |path| {
        let (files, id, opts) = load(path);
        // As deep as the parser allows: more than a test thread's stack holds.
        let parsed = on_worker_stack(move || {
            parse(&files, id, &opts)
                .map(|_| ())
                .map_err(|d| (d.0.len(), d.render(&files)))
        })
        .expect("a worker thread")
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
        match parsed {
            Ok(()) => panic!("{} should not parse", path.display()),
            Err((count, rendered)) => {
                assert!(count > 0, "{}: an error with no diagnostic", path.display());
                insta::assert_snapshot!(rendered);
            }
        }
    });
}
