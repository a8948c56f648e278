//! Every tapset embedded in rstap parses (as a privileged file, with the tapset
//! macros visible), and every function in it carries a `/** sfunction` doc comment.

use rstap_grammar::ast::Item;
use rstap_grammar::{ParseOptions, SourceMap, parse};

#[test]
fn every_embedded_tapset_parses() {
    let mut files = SourceMap::new();
    let macro_library: Vec<_> = rstap_stdlib::macros()
        .map(|(n, t)| files.add(n, t))
        .collect();
    assert!(
        !macro_library.is_empty(),
        "the stdlib should embed its macro files"
    );
    let scripts: Vec<_> = rstap_stdlib::scripts()
        .map(|(n, t)| (n, files.add(n, t)))
        .collect();
    assert!(
        !scripts.is_empty(),
        "the stdlib should embed at least one tapset"
    );
    let opts = ParseOptions {
        privileged: true,
        macro_library,
        ..ParseOptions::default()
    };
    for (name, id) in scripts {
        let ast = parse(&files, id, &opts)
            .unwrap_or_else(|d| panic!("tapset {name} does not parse:\n{}", d.render(&files)));
        let text = files.text(id);
        for item in &ast.items {
            if let Item::Function(f) = item {
                let doc = format!("sfunction {} -", f.name.node);
                assert!(
                    text.contains(&doc),
                    "tapset {name}: function {} has no `/** {doc}` doc comment",
                    f.name.node
                );
            }
        }
    }
}
