//! Fuzz target `cli`: an arbitrary argument vector through `rstap`'s own command
//! line, `rstap_runtime::cli::Cli` (the clap definition the binary uses), then
//! the checks `rstap` makes before any pass: `Cli::run_options` (`-D`, `-G`) and,
//! for `-e`, `Cli::script`. Nothing runs and nothing is read or written: a script
//! named by a file (or `-` for stdin) is not opened, `-l`, `-c`, `-o` and the
//! rest are only parsed.
//!
//! The input is split at NUL bytes into the arguments after `rstap`, each taken
//! as raw bytes (`OsString`), since a Linux argv need not be UTF-8.
//!
//! The clap command is built once and reused for every input: with debug
//! assertions on, building it validates the whole definition, and even a clone
//! of it cost more than the parse. The parse is the one `Cli::try_parse_from`
//! does (`try_get_matches_from`, then `from_arg_matches_mut`), on the same
//! command without consuming it (`try_get_matches_from_mut`).
#![no_main]

use clap::{Command, CommandFactory, FromArgMatches};
use libfuzzer_sys::fuzz_target;
use rstap_runtime::cli::Cli;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::sync::{Mutex, PoisonError};

static COMMAND: Mutex<Option<Command>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let args = std::iter::once(OsString::from("rstap")).chain(
        data.split(|&b| b == 0)
            .map(|a| OsString::from_vec(a.to_vec())),
    );
    let parsed = COMMAND
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(|| {
            let mut cmd = Cli::command();
            cmd.build();
            cmd
        })
        .try_get_matches_from_mut(args)
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // What `rstap` prints: the rendered error (or help, or version).
            let _ = e.use_stderr();
            let _ = e.render().to_string();
            return;
        }
    };
    if let Some(t) = cli.timeout {
        assert!(t > 0.0 && t.is_finite(), "-T accepted {t}");
    }
    if let Some(m) = &cli.module {
        assert!(
            (1..=15).contains(&m.len())
                && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "-m accepted {m:?}"
        );
    }
    if let Some(p) = cli.pass {
        assert!((1..=5).contains(&p), "-p accepted {p}");
    }
    if let Ok(opts) = cli.run_options() {
        assert_eq!(opts.set_globals.len(), cli.set_globals.len());
        assert!(opts.limits.max_string >= 1, "MAXSTRINGLEN 0 accepted");
    }
    if cli.script.is_some() {
        let script = cli
            .script()
            .unwrap_or_else(|e| panic!("-e needs no file, yet: {e}"));
        assert_eq!(script.args, cli.positional);
    }
});
