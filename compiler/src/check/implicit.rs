//! Arrays a script uses without declaring them. stap refuses them (`missing
//! global declaration?`); rstap, like bpftrace with its `@maps`, takes each as
//! a global array and says so with a warning, so one-liners such as
//! `probe kernel.trace("sched_switch") { n[execname()] <<< 1 }` run as written.
//! An array can never be a local, so nothing else could have been meant.

use super::Library;
use super::code::Code;
use rstap_grammar::Diag;
use rstap_grammar::ast::{self, ExprKind, Ident, Indexable, Item, StmtKind};
use rstap_grammar::visit::{self, Visitor};
use std::collections::HashSet;

/// Declares in `script` each array it indexes, walks or tests with `in`
/// that neither it nor the library declares (at its first use); one warning
/// each.
pub fn declare_implicit_arrays(script: &mut ast::File, library: &Library) -> Vec<Diag> {
    let declared: HashSet<String> = std::iter::once(&*script)
        .chain(library.files())
        .flat_map(|f| &f.items)
        .filter_map(|i| match i {
            Item::Global(g) => Some(g.name.node.clone()),
            _ => None,
        })
        .collect();
    let mut uses = Uses::default();
    visit::walk_file(&mut uses, script);
    let mut warnings = Vec::new();
    let mut added = HashSet::new();
    for name in uses.arrays {
        if declared.contains(&name.node) || !added.insert(name.node.clone()) {
            continue;
        }
        warnings.push(
            Diag::new(
                Code::E0214,
                name.span,
                format!("'{}' is not declared: taken as a global array", name.node),
            )
            .with_label("first used here")
            .with_note(format!(
                "stap requires `global {}` at the top level; rstap adds it",
                name.node
            ))
            .warning(),
        );
        script.items.push(Item::Global(Box::new(ast::Global {
            name: name.clone(),
            private: false,
            wrap: false,
            size: None,
            init: None,
            span: name.span,
        })));
    }
    warnings
}

/// Every array name used, in order of use.
#[derive(Default)]
struct Uses {
    arrays: Vec<Ident>,
}

impl Uses {
    fn array(&mut self, a: &Indexable) {
        if let Indexable::Array(name) = a {
            self.arrays.push(name.clone());
        }
    }
}

impl Visitor for Uses {
    fn stmt(&mut self, s: &ast::Stmt) {
        if let StmtKind::Foreach(f) = &s.node {
            self.array(&f.array);
        }
        visit::walk_stmt(self, s);
    }

    fn expr(&mut self, e: &ast::Expr) {
        match &e.node {
            ExprKind::Index { base, .. } => self.array(base),
            ExprKind::In { array, .. } => self.array(array),
            _ => {}
        }
        visit::walk_expr(self, e);
    }
}
