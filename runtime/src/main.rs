//! rstap: SystemTap scripts on a modern kernel, with one binary. The command
//! line and the passes in order; everything that runs lives in the library.

mod cli;
mod list;

use rstap_runtime::{engine, host, kernel, report, session};

use clap::Parser;
use rstap_compiler::check::{self, Library};
use rstap_grammar::{ParseOptions, SourceMap};
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line, as for every other bad command line: clap's first
            // line without its `error: ` prefix; its tips and usage follow -h.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("bad command line");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("rstap: {first} (rstap -h lists the options)");
            return ExitCode::from(1);
        }
    };
    // The front end and the printers recurse over the syntax tree: give them a
    // stack that a pathological script (100,000 nested operators) cannot exhaust.
    // A small machine may refuse to reserve that much: then take what it gives.
    let cli = std::sync::Arc::new(cli);
    let mut worker = Err(std::io::Error::other("no stack size tried"));
    for size in WORKER_STACKS {
        let cli = std::sync::Arc::clone(&cli);
        worker = std::thread::Builder::new()
            .stack_size(size)
            .spawn(move || run(&cli));
        if worker.is_ok() {
            break;
        }
    }
    match worker.map(std::thread::JoinHandle::join) {
        Ok(Ok(Ok(()))) => ExitCode::SUCCESS,
        Ok(Ok(Err(()))) => ExitCode::from(1),
        Ok(Err(_)) => ExitCode::from(1),
        Err(e) => {
            eprintln!("rstap: cannot start: {e}");
            ExitCode::from(1)
        }
    }
}

/// Reserved, not committed: only the pages a script's depth touches are used.
/// Largest first; a machine with about 1 GiB of memory refuses the first.
const WORKER_STACKS: [usize; 3] = [1 << 30, 1 << 28, 1 << 26];

fn run(cli: &cli::Cli) -> Result<(), ()> {
    if let Some(pattern) = cli.list.as_ref().or(cli.list_vars.as_ref()) {
        return list::run(pattern, cli.list_vars.is_some(), cli.verbose > 0);
    }
    // A malformed -D or -G is a bad command line whatever the pass.
    let run_opts = run_options(cli)?;
    let script = cli.script().map_err(|msg| eprintln!("rstap: {msg}"))?;
    let started = Instant::now();
    let mut files = SourceMap::new();
    let macro_library: Vec<_> = rstap_stdlib::macros()
        .map(|(name, text)| files.add(name, text))
        .collect();
    let facts = host::facts(cli.guru, &script.text);
    let id = files.add(script.name.clone(), script.text);
    let opts = ParseOptions {
        args: script.args,
        facts,
        privileged: cli.guru,
        macro_library,
    };
    let mut ast = rstap_grammar::parse(&files, id, &opts).map_err(|d| report(&files, &d))?;
    if cli.pass == Some(1) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(rstap_grammar::dump::dump(&ast, &script.name).as_bytes());
        return Ok(());
    }
    // A script naming syscall aliases takes every tapset: the generated ones
    // call into the library by names the script does not spell.
    let syscalls = check::names_syscalls(&ast);
    let needed = (!syscalls).then(|| files.text(id).to_string());
    let mut library = Library::load_for(
        &mut files,
        &opts.facts,
        &opts.macro_library,
        needed.as_deref(),
    )
    .map_err(|d| report(&files, &d))?;
    let kernel = kernel::LiveKernel::new(cli.verbose > 0);
    if syscalls {
        library
            .add_syscalls(&mut files, &opts.facts, &opts.macro_library, &kernel)
            .map_err(|d| report(&files, &d))?;
    }
    if cli.verbose > 0 {
        eprintln!(
            "Pass 1: parsed user script and {} library scripts in {:.1} ms.",
            library.files().len(),
            ms(started)
        );
    }
    let started = Instant::now();
    let check_opts = check::Options {
        unoptimized: cli.unoptimized,
    };
    let implicit = check::declare_implicit_arrays(&mut ast, &library);
    if !implicit.is_empty() && !cli.suppress_warnings {
        report(&files, &rstap_grammar::Diagnostics(implicit));
    }
    let checked =
        check::check(&ast, &library, &kernel, &check_opts).map_err(|d| report(&files, &d))?;
    if !checked.warnings.0.is_empty() && !cli.suppress_warnings {
        report(&files, &checked.warnings);
    }
    if cli.verbose > 0 {
        let p = &checked.program;
        eprintln!(
            "Pass 2: analyzed script: {} probes, {} functions, {} globals in {:.1} ms.",
            p.probes.len(),
            p.functions.len() + p.builtins.len(),
            p.globals.len(),
            ms(started)
        );
    }
    if cli.pass == Some(2) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(rstap_compiler::dump::elaboration(&checked.program).as_bytes());
        return Ok(());
    }
    let started = Instant::now();
    let mir = rstap_compiler::mir::lower(&checked.program);
    if cli.verbose > 0 {
        let (kernel_side, blocks) = mir.probes.iter().fold((0, 0), |(k, b), p| {
            (
                k + usize::from(p.context == rstap_compiler::mir::Context::Kernel),
                b + p.body.blocks.len(),
            )
        });
        eprintln!(
            "Pass 3: lowered {} probes ({kernel_side} in kernel context, {blocks} blocks) in {:.1} ms.",
            mir.probes.len(),
            ms(started)
        );
    }
    match cli.pass {
        Some(3) => {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{mir}");
            Ok(())
        }
        Some(4) => {
            let build = run_opts.build();
            let built = rstap_runtime::probes::compile_pass(&mir, &kernel, &build)
                .map_err(|e| session::report_start(&files, &e))?;
            match &cli.output {
                Some(path) => {
                    let bytes = built.elf().map_err(|e| session::report_start(&files, &e))?;
                    std::fs::write(path, &bytes).map_err(|e| {
                        eprintln!("rstap: cannot write the BPF object to '{path}': {e}");
                    })
                }
                None => {
                    let summary = rstap_runtime::probes::describe(&mir, &built.compiled);
                    let _ = std::io::stdout().lock().write_all(summary.as_bytes());
                    Ok(())
                }
            }
        }
        Some(_) | None => session::run(&mir, &files, &kernel, &run_opts).map_err(|_| ()),
    }
}

/// Pass 5's options from the command line.
fn run_options(cli: &cli::Cli) -> Result<session::RunOptions, ()> {
    let mut limits = engine::Limits::default();
    for d in &cli.defines {
        let Some((name, value)) = d.split_once('=').filter(|(n, _)| !n.is_empty()) else {
            eprintln!("rstap: -D {d}: expected NAME=VALUE");
            return Err(());
        };
        let Ok(n) = value.parse::<u64>() else {
            eprintln!("rstap: -D {d}: the value must be a non-negative number");
            return Err(());
        };
        let size = usize::try_from(n).unwrap_or(usize::MAX);
        match name {
            "MAXSTRINGLEN" => limits.max_string = size.max(1),
            "MAXMAPENTRIES" => limits.max_map_entries = size,
            "MAXACTION" | "MAXACTION_INTERRUPTIBLE" => limits.max_action = n,
            "MAXNESTING" => limits.max_nesting = size,
            // Other stap tunables have no meaning here; accept them as stap does.
            _ => {}
        }
    }
    Ok(session::RunOptions {
        limits,
        timeout: cli.timeout.map(std::time::Duration::from_secs),
        command: cli.command.clone(),
        target: cli.target,
        output: cli.output.clone(),
        verbose: cli.verbose > 0,
        kprobes_only: cli.kprobes,
        // Until the command line has --runtime: RSTAP_RUNTIME=bpf|tracefs.
        runtime: match std::env::var("RSTAP_RUNTIME").as_deref() {
            Ok("bpf") => session::Runtime::Bpf,
            Ok("tracefs") => session::Runtime::Tracefs,
            _ => session::Runtime::Auto,
        },
        set_globals: cli
            .set_globals
            .iter()
            .map(|g| match g.split_once('=').filter(|(n, _)| !n.is_empty()) {
                Some((n, v)) => Ok((n.to_string(), v.to_string())),
                None => {
                    eprintln!("rstap: -G {g}: expected VAR=VALUE");
                    Err(())
                }
            })
            .collect::<Result<_, ()>>()?,
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}
