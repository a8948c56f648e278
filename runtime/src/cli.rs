//! The command line, as stap users know it: the clap definition and the checks
//! of option values clap cannot make. In the library (not the binary) so that
//! the fuzz target `cli` parses and validates exactly what `rstap` does.

use crate::{engine, session};
use clap::{ArgAction, Parser, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "rstap",
    version,
    about = "Run SystemTap scripts with BPF: no kernel module, no headers, no debuginfo",
    after_help = "Options come before FILE: what follows FILE is the script's arguments.\n\n\
Examples:\n  \
rstap examples/syscalls_by_proc.stp             run a script until Ctrl-C or exit()\n  \
rstap -e 'probe kernel.trace(\"sched_switch\") { n[execname()] <<< 1 }'\n  \
rstap -c 'ls /' script.stp                      trace a command; target() is its pid\n  \
rstap --format=json -T 5 script.stp | jq .      JSON records, for programs\n  \
rstap -l 'kernel.trace(\"sched:*\")'              list probe points\n  \
rstap -p4 -m myprobe script.stp                 write the BPF object myprobe.bo"
)]
pub struct Cli {
    /// Run this script text instead of a file; every positional argument is then a script argument.
    #[arg(short = 'e', value_name = "SCRIPT")]
    pub script: Option<String>,

    /// Run SCRIPT as well as the main script (repeatable).
    #[arg(short = 'E', value_name = "SCRIPT")]
    pub extra_scripts: Vec<String>,

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

    /// Stop after SECS seconds (a fraction too: -T 0.5).
    #[arg(short = 'T', value_name = "SECS", value_parser = seconds)]
    pub timeout: Option<f64>,

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

    /// Set a limit: MAXSTRINGLEN, MAXMAPENTRIES, MAXACTION, MAXNESTING, MAXERRORS (NAME=VALUE).
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    pub defines: Vec<String>,

    /// Keep code that has no effect (no elision).
    #[arg(short = 'u')]
    pub unoptimized: bool,

    /// Suppress warnings.
    #[arg(short = 'w', conflicts_with = "warnings_are_errors")]
    pub suppress_warnings: bool,

    /// Treat warnings as errors.
    #[arg(short = 'W')]
    pub warnings_are_errors: bool,

    /// Look for tapsets (*.stp) in DIR too, before the built-in library (repeatable).
    #[arg(short = 'I', value_name = "DIR")]
    pub include: Vec<String>,

    /// Name the compiled object NAME: `-p4 -m NAME` writes NAME.bo.
    #[arg(short = 'm', value_name = "NAME", value_parser = module_name)]
    pub module: Option<String>,

    /// Guru mode: embedded C parses (rstap still never runs it).
    #[arg(short = 'g')]
    pub guru: bool,

    /// Probe kernel functions with kprobes and kretprobes, even where the
    /// kernel offers fentry/fexit trampolines (rstap's default there).
    #[arg(long = "kprobes")]
    pub kprobes: bool,

    /// Where kernel-context handlers run: BPF programs, or the user-space
    /// engine fed by tracefs events. `auto` uses BPF and falls back to tracefs
    /// when the kernel refuses BPF.
    #[arg(long = "runtime", value_name = "RUNTIME", value_enum, default_value_t = RuntimeArg::Auto)]
    pub runtime: RuntimeArg,

    /// The script's output: as it prints it, or one JSON object per line.
    #[arg(long = "format", value_name = "FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Colour diagnostics: on a terminal (auto, unless NO_COLOR is set), always, or never.
    #[arg(long = "color", value_name = "WHEN", value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,

    /// More output about what each pass does (repeatable): -v per-pass timings
    /// and what was attached, -vv also the verifier's log of every program.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    /// List the probe point families rstap knows.
    #[arg(long = "dump-probe-types", conflicts_with_all = ["script", "list", "list_vars"])]
    pub dump_probe_types: bool,

    /// List the tapset and built-in functions, with their types.
    #[arg(long = "dump-functions", conflicts_with_all = ["script", "list", "list_vars"])]
    pub dump_functions: bool,

    /// List the tapset probe aliases and what each expands to.
    #[arg(long = "dump-probe-aliases", conflicts_with_all = ["script", "list", "list_vars"])]
    pub dump_probe_aliases: bool,

    /// Print a completion script for SHELL and exit.
    #[arg(long = "completions", value_name = "SHELL", value_enum)]
    pub completions: Option<clap_complete::Shell>,

    /// Print the man page (roff) and exit.
    #[arg(long = "man")]
    pub man: bool,

    /// The script file (`-` for standard input), then its arguments ($1, @1, ...).
    #[arg(value_name = "FILE | ARGS", trailing_var_arg = true)]
    pub positional: Vec<String>,
}

/// `--runtime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RuntimeArg {
    Auto,
    Bpf,
    Tracefs,
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// `-T SECS`: a positive number of seconds, at most a year.
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 365.0 * 86400.0 => Ok(s),
        _ => Err("expected a positive number of seconds".into()),
    }
}

/// `-m NAME`: a name the kernel takes for a BPF object, 1 to 15 of `[A-Za-z0-9_]`.
fn module_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(name.to_string())
    } else {
        Err("a module name is 1 to 15 letters, digits or '_'".into())
    }
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
    /// Pass 5's options from the command line; a malformed `-D` or `-G` is
    /// the one sentence to print after `rstap: `. Reads nothing, starts nothing.
    pub fn run_options(&self) -> Result<session::RunOptions, String> {
        let mut limits = engine::Limits::default();
        for d in &self.defines {
            let Some((name, value)) = d.split_once('=').filter(|(n, _)| !n.is_empty()) else {
                return Err(format!("-D {d}: expected NAME=VALUE"));
            };
            let Ok(n) = value.parse::<u64>() else {
                return Err(format!("-D {d}: the value must be a non-negative number"));
            };
            let size = usize::try_from(n).unwrap_or(usize::MAX);
            match name {
                "MAXSTRINGLEN" => limits.max_string = size.max(1),
                "MAXMAPENTRIES" => limits.max_map_entries = size,
                "MAXACTION" | "MAXACTION_INTERRUPTIBLE" => limits.max_action = n,
                "MAXNESTING" => limits.max_nesting = size,
                "MAXERRORS" => limits.max_errors = n,
                // Other stap tunables have no meaning here; accept them as stap does.
                _ => {}
            }
        }
        Ok(session::RunOptions {
            limits,
            timeout: self.timeout.map(std::time::Duration::from_secs_f64),
            command: self.command.clone(),
            target: self.target,
            output: self.output.clone(),
            verbose: self.verbose > 0,
            verifier_log: self.verbose > 1,
            json: self.format == Format::Json,
            kprobes_only: self.kprobes,
            runtime: match self.runtime {
                RuntimeArg::Auto => session::Runtime::Auto,
                RuntimeArg::Bpf => session::Runtime::Bpf,
                RuntimeArg::Tracefs => session::Runtime::Tracefs,
            },
            set_globals: self
                .set_globals
                .iter()
                .map(|g| match g.split_once('=').filter(|(n, _)| !n.is_empty()) {
                    Some((n, v)) => Ok((n.to_string(), v.to_string())),
                    None => Err(format!("-G {g}: expected VAR=VALUE")),
                })
                .collect::<Result<_, String>>()?,
        })
    }

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
