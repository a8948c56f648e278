//! The command line, as stap users know it.

use clap::{ArgAction, Parser};

#[derive(Debug, Parser)]
#[command(
    name = "rstap",
    version,
    about = "Run SystemTap scripts with BPF: no kernel module, no headers, no debuginfo",
    after_help = "Examples:\n  rstap -p1 script.stp        print the parse tree\n  rstap -p1 -e 'probe begin { println(1) }'"
)]
pub struct Cli {
    /// Run this script text instead of a file; every positional argument is then a script argument.
    #[arg(short = 'e', value_name = "SCRIPT")]
    pub script: Option<String>,

    /// Stop after pass N: 1 parse tree, 2 elaboration listing, 3 MIR, 4 the BPF
    /// object (its summary, or the ELF file with -o); 5 runs the script.
    #[arg(short = 'p', value_name = "N", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub pass: Option<u8>,

    /// List the probe points that match PP.
    #[arg(short = 'l', value_name = "PP", conflicts_with_all = ["script", "list_vars", "pass"])]
    pub list: Option<String>,

    /// List the probe points that match PP, with their variables.
    #[arg(short = 'L', value_name = "PP", conflicts_with_all = ["script", "pass"])]
    pub list_vars: Option<String>,

    /// Stop after SECS seconds.
    #[arg(short = 'T', value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,

    /// Run CMD (with /bin/sh -c) once the probes are in place; stop when it exits.
    /// Its pid is target().
    #[arg(short = 'c', value_name = "CMD")]
    pub command: Option<String>,

    /// Set target() to PID.
    #[arg(short = 'x', value_name = "PID", conflicts_with = "command")]
    pub target: Option<i64>,

    /// Write the script's output to FILE.
    #[arg(short = 'o', value_name = "FILE")]
    pub output: Option<String>,

    /// Set global VAR to VALUE before the run starts (repeatable).
    #[arg(short = 'G', value_name = "VAR=VALUE")]
    pub set_globals: Vec<String>,

    /// Set a limit: MAXSTRINGLEN, MAXMAPENTRIES, MAXACTION, MAXNESTING (NAME=VALUE).
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    pub defines: Vec<String>,

    /// Keep code that has no effect (no elision).
    #[arg(short = 'u')]
    pub unoptimized: bool,

    /// Suppress warnings.
    #[arg(short = 'w')]
    pub suppress_warnings: bool,

    /// Guru mode: embedded C parses (rstap still never runs it).
    #[arg(short = 'g')]
    pub guru: bool,

    /// Probe kernel functions with kprobes and kretprobes, even where the
    /// kernel offers fentry/fexit trampolines (rstap's default there).
    #[arg(long = "kprobes")]
    pub kprobes: bool,

    /// More output about what each pass does (repeatable).
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    /// The script file (`-` for standard input), then its arguments ($1, @1, ...).
    #[arg(value_name = "FILE | ARGS", trailing_var_arg = true)]
    pub positional: Vec<String>,
}

/// Where the script comes from, and its arguments.
#[derive(Debug)]
pub struct Script {
    /// The name diagnostics and `-p1` use: the path as given, or `<input>`.
    pub name: String,
    pub text: String,
    pub args: Vec<String>,
}

impl Cli {
    pub fn script(&self) -> Result<Script, String> {
        if let Some(text) = &self.script {
            return Ok(Script {
                name: "<input>".into(),
                text: text.clone(),
                args: self.positional.clone(),
            });
        }
        let Some((file, args)) = self.positional.split_first() else {
            return Err("no script given: name a script file, or pass one with -e".into());
        };
        let text = if file == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| format!("cannot read the script from standard input: {e}"))?;
            s
        } else {
            // Bytes that are not UTF-8 (a Latin-1 comment) must not stop a script.
            let bytes = std::fs::read(file)
                .map_err(|e| format!("cannot read script file '{file}': {e}"))?;
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        };
        let name = if file == "-" {
            "<input>".to_string()
        } else {
            file.clone()
        };
        Ok(Script {
            name,
            text,
            args: args.to_vec(),
        })
    }
}
