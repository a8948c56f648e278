//! A script large enough for the binary's heap tuning to matter (the heap
//! past its first pages on huge pages, mapped ahead by a second thread while
//! the compile runs): its result must be exactly what the statements say.

use rstap_tests::{rstap_output, text};

/// `statements` assignments over four globals, in begin probes of 500 (below
/// MAXACTION) and a last one that prints them; and the values they end with,
/// computed here with the same 64-bit wrapping arithmetic.
fn script(statements: usize) -> (String, [i64; 4]) {
    let mut g = [1i64, 2, 3, 4];
    let mut body = String::from("global g0 = 1, g1 = 2, g2 = 3, g3 = 4\n");
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    for n in 0..statements {
        if n % 500 == 0 {
            body.push_str(if n == 0 {
                "probe begin {\n"
            } else {
                "}\nprobe begin {\n"
            });
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let (t, a, b) = (
            (seed % 4) as usize,
            ((seed >> 8) % 4) as usize,
            ((seed >> 16) % 4) as usize,
        );
        let k = ((seed >> 24) % 1000) as i64 + 1;
        let s = (seed >> 40) % 31 + 1;
        body.push_str(&format!("  g{t} = (g{a} * {k} + g{b}) ^ (g{b} >> {s})\n"));
        g[t] = (g[a].wrapping_mul(k).wrapping_add(g[b])) ^ (g[b] >> s);
    }
    body.push_str("}\nprobe begin {\n  printf(\"%d %d %d %d\\n\", g0, g1, g2, g3)\n  exit()\n}\n");
    (body, g)
}

#[test]
fn a_large_script_computes_what_its_statements_say() {
    let (script, want) = script(3000);
    assert!(
        script.len() > 64 << 10,
        "large enough to be prefaulted: {}",
        script.len()
    );
    let path = std::env::temp_dir().join(format!("rstap-large-{}.stp", std::process::id()));
    std::fs::write(&path, &script).expect("write the script");
    let out = rstap_output(&[&path.display().to_string()]);
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let want = format!("{} {} {} {}\n", want[0], want[1], want[2], want[3]);
    assert_eq!(stdout, want);
}
