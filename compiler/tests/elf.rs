//! User binaries: function symbols, SDT notes and their file offsets, read from a
//! program the system's C compiler builds from `fixtures/elf/usdt.c`.

mod support;
#[path = "support/usdt.rs"]
mod usdt;

use object::{Object, ObjectSection};
use rstap_compiler::elf::{self, Binary, UsdtArg, UsdtLoc, parse_usdt_args};
use rstap_compiler::kernel::KernelInfo;
use std::sync::Arc;
use support::FixtureKernel;

/// The program built with `flags`, read through the fixture kernel.
fn build(name: &str, flags: &[&str]) -> Option<(Arc<Binary>, Vec<u8>)> {
    let out = usdt::usdt_program(name, flags)?;
    let bytes = std::fs::read(&out).unwrap_or_else(|e| panic!("cannot read {out:?}: {e}"));
    let path = out.display().to_string();
    let bin = FixtureKernel::new()
        .user_binary(&path)
        .unwrap_or_else(|e| panic!("{path} does not parse: {e}"));
    Some((bin, bytes))
}

#[test]
fn function_symbols_are_sorted_and_carry_file_offsets() {
    let Some((bin, bytes)) = build("nopie", &["-O2", "-no-pie"]) else {
        return;
    };
    let names: Vec<&str> = bin.symbols.iter().map(|s| s.name.as_str()).collect();
    for f in ["add_one", "main", "twice"] {
        assert!(names.contains(&f), "{f} missing from {names:?}");
    }
    assert!(!names.contains(&"sink"), "a data symbol is not a function");
    assert!(
        names.windows(2).all(|w| w[0] <= w[1]),
        "not sorted: {names:?}"
    );
    assert!(!bin.is_pie_or_shared, "built with -no-pie");
    // A non-PIE x86-64 executable maps file offset 0 at 0x400000.
    for s in &bin.symbols {
        assert_eq!(s.file_offset, s.addr - 0x40_0000, "{s:?}");
        assert!(s.file_offset < bytes.len() as u64);
    }
}

#[test]
fn usdt_notes_give_probe_and_semaphore_offsets() {
    let Some((bin, bytes)) = build("pie", &["-O2", "-fPIE", "-pie"]) else {
        return;
    };
    assert!(bin.is_pie_or_shared);
    let names: Vec<(&str, &str)> = bin
        .usdt
        .iter()
        .map(|n| (n.provider.as_str(), n.name.as_str()))
        .collect();
    assert_eq!(names, vec![("rstap_test", "tick"), ("rstap_test", "empty")]);
    let file = object::File::parse(&*bytes).unwrap_or_else(|e| panic!("{e}"));
    let probes = file
        .section_by_name(".probes")
        .unwrap_or_else(|| panic!("the test program has no .probes section"));
    let (probes_off, _) = probes.file_range().unwrap_or_default();
    for note in &bin.usdt {
        // Every SDT probe site is a one-byte nop.
        assert_eq!(
            bytes.get(note.file_offset as usize),
            Some(&0x90),
            "no nop at the file offset of {note:?}"
        );
        assert_ne!(note.semaphore, 0, "{note:?}");
        assert_eq!(
            note.semaphore_offset,
            note.semaphore - probes.address() + probes_off,
            "{note:?}"
        );
    }
    let tick = &bin.usdt[0];
    assert_eq!(tick.args.len(), 2, "{tick:?}");
    assert_eq!((tick.args[0].size, tick.args[0].signed), (8, true));
    assert_eq!((tick.args[1].size, tick.args[1].signed), (4, true));
    assert!(tick.args_error.is_none());
    assert!(bin.usdt[1].args.is_empty() && bin.usdt[1].args_error.is_none());
}

#[test]
fn debuginfo_is_detected() {
    let Some((plain, _)) = build("plain", &["-O1"]) else {
        return;
    };
    let Some((debug, _)) = build("debug", &["-O1", "-g"]) else {
        return;
    };
    assert!(!plain.has_debuginfo);
    assert!(debug.has_debuginfo);
}

#[test]
fn system_binaries_parse() {
    for path in ["/bin/true", "/bin/sh"] {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let bin = elf::parse(path, &bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(bin.path, path);
        // The caller's buffer need not be aligned.
        let mut shifted = vec![0];
        shifted.extend(&bytes);
        assert_eq!(
            elf::parse(path, &shifted[1..]),
            Ok(bin),
            "{path} at an odd address"
        );
    }
}

#[test]
fn anything_but_elf_is_an_error() {
    assert!(elf::parse("x", b"").is_err());
    assert!(elf::parse("x", b"#!/bin/sh\necho hi\n").is_err());
    assert!(elf::parse("x", b"\x7fELF\x02\x01\x01").is_err());
    if let Ok(bytes) = std::fs::read("/bin/true") {
        for cut in [16, 64, 200, bytes.len() / 2] {
            // Truncated files either parse (the cut missed what we read) or fail;
            // they never panic.
            let _ = elf::parse("cut", &bytes[..cut.min(bytes.len())]);
        }
    }
}

#[test]
fn usdt_arguments_in_x86_64_syntax() {
    let arg = |size, signed, loc| UsdtArg { size, signed, loc };
    let reg = |r: &str| UsdtLoc::Reg(r.into());
    assert_eq!(
        parse_usdt_args("-4@%edi 8@-8(%rbp) 4@$5 8@%rax"),
        Ok(vec![
            arg(4, true, reg("edi")),
            arg(
                8,
                false,
                UsdtLoc::Mem {
                    base: "rbp".into(),
                    offset: -8
                }
            ),
            arg(4, false, UsdtLoc::Imm(5)),
            arg(8, false, reg("rax")),
        ])
    );
    assert_eq!(
        parse_usdt_args("-2@0x10(%r12) 1@(%rsp) 8@$-3 4@%r13d"),
        Ok(vec![
            arg(
                2,
                true,
                UsdtLoc::Mem {
                    base: "r12".into(),
                    offset: 16
                }
            ),
            arg(
                1,
                false,
                UsdtLoc::Mem {
                    base: "rsp".into(),
                    offset: 0
                }
            ),
            arg(8, false, UsdtLoc::Imm(-3)),
            arg(4, false, reg("r13d")),
        ])
    );
    assert_eq!(parse_usdt_args(""), Ok(vec![]));
    for bad in [
        "8@x0",
        "-4@[sp, 8]",
        "8@foo(%rip)",
        "3@%eax",
        "8@%xyz",
        "8@8(%rax,%rbx,4)",
        "@%rax",
    ] {
        assert!(parse_usdt_args(bad).is_err(), "{bad} should not parse");
    }
}
