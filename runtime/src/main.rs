//! rstap: SystemTap scripts on a modern kernel, with one binary. The command
//! line and the passes in order; everything that runs lives in the library.

mod dump;
mod list;
mod tapsets;

use rstap_runtime::{arena, cli, host, kernel, report, session};

use clap::Parser;
use rstap_compiler::check::{self, Library};
use rstap_grammar::{ParseOptions, SourceMap};
use std::convert::Infallible;
use std::io::Write;
use std::mem::ManuallyDrop;
use std::process::ExitCode;
use std::time::Instant;

/// The compile allocates from a region of its own; everything else from
/// the system allocator.
#[global_allocator]
static HEAP: arena::CompileHeap = arena::CompileHeap::new();

fn main() -> ExitCode {
    host::tune_allocator();
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
    if let Some(shell) = cli.completions {
        let mut cmd = <cli::Cli as clap::CommandFactory>::command();
        // Into a buffer: clap_complete panics on a closed pipe.
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd, "rstap", &mut script);
        let _ = std::io::stdout().write_all(&script);
        return ExitCode::SUCCESS;
    }
    if cli.man {
        let cmd = <cli::Cli as clap::CommandFactory>::command();
        let mut page = Vec::new();
        return match clap_mangen::Man::new(cmd).render(&mut page) {
            Ok(()) => {
                let _ = std::io::stdout().write_all(&page);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rstap: cannot render the man page: {e}");
                ExitCode::from(1)
            }
        };
    }
    rstap_runtime::set_color(match cli.color {
        cli::ColorWhen::Auto => rstap_runtime::Color::Auto,
        cli::ColorWhen::Always => rstap_runtime::Color::Always,
        cli::ColorWhen::Never => rstap_runtime::Color::Never,
    });
    // The front end and the printers recurse over the syntax tree: give them a
    // stack that the deepest script the parser accepts cannot exhaust.
    // The worker ends the process itself; it comes back only by panicking.
    match rstap_grammar::stack::on_worker_stack(|| finish(run(&cli))) {
        Ok(Ok(never)) => match never {},
        Ok(Err(_)) => ExitCode::from(1),
        Err(e) => {
            eprintln!("rstap: cannot start: {e}");
            ExitCode::from(1)
        }
    }
}

/// Ends the process from the worker as soon as it is done: stdout is
/// flushed, and the worker's stack is not handed back page by page (an
/// `madvise` and an `munmap` of its reservation) only for the process to exit.
fn finish(result: Result<(), ()>) -> Infallible {
    let _ = std::io::stdout().flush();
    std::process::exit(i32::from(result.is_err()))
}

fn run(cli: &cli::Cli) -> Result<(), ()> {
    if let Some(pattern) = cli.list.as_ref().or(cli.list_vars.as_ref()) {
        return list::run(pattern, cli.list_vars.is_some(), cli.verbose > 0);
    }
    if let Some(what) = dump::asked(cli) {
        let tapsets = tapset_dirs(&cli.include)?;
        return dump::run(what, &tapsets, cli.verbose > 0);
    }
    // A malformed -D or -G is a bad command line whatever the pass.
    let run_opts = cli.run_options().map_err(|msg| eprintln!("rstap: {msg}"))?;
    let script = cli.script().map_err(|msg| eprintln!("rstap: {msg}"))?;
    // Until the probes are compiled: running them allocates from the system.
    let compiling = arena::claim(&HEAP);
    host::prefault_heap(arena::region(&HEAP), script.text.len());
    let kernel = kernel::LiveKernel::new(cli.verbose > 0);
    if cli.pass != Some(1) {
        kernel.read_ahead(&script.text);
    }
    let started = Instant::now();
    let mut files = SourceMap::new();
    let tapsets = tapset_dirs(&cli.include)?;
    let mut macro_library: Vec<_> = tapsets
        .macros
        .iter()
        .map(|(name, text)| files.add(name.clone(), text.clone()))
        .collect();
    macro_library.extend(rstap_stdlib::macros().map(|(name, text)| files.add(name, text)));
    let facts = host::facts(cli.guru, &script.text);
    let id = files.add(script.name.clone(), script.text);
    let opts = ParseOptions {
        args: script.args,
        facts,
        privileged: cli.guru,
        macro_library,
    };
    // The trees of every pass live until the process exits: freeing them
    // node by node would cost a large script a tenth of its compile time,
    // for memory the exit returns at once.
    let mut ast =
        ManuallyDrop::new(rstap_grammar::parse(&files, id, &opts).map_err(|d| report(&files, &d))?);
    // -E scripts run beside the main one: their items join its own.
    for (n, text) in cli.extra_scripts.iter().enumerate() {
        let extra = files.add(format!("<input{}>", n + 2), text.clone());
        let parsed = rstap_grammar::parse(&files, extra, &opts).map_err(|d| report(&files, &d))?;
        ast.items.extend(parsed.items);
    }
    if cli.pass == Some(1) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(rstap_grammar::dump::dump(&ast, &script.name).as_bytes());
        return Ok(());
    }
    // A script naming syscall aliases takes every tapset: the generated ones
    // call into the library by names the script does not spell.
    let syscalls = check::names_syscalls(&ast);
    let needed = (!syscalls).then(|| {
        let mut text = files.text(id).to_string();
        for extra in &cli.extra_scripts {
            text.push('\n');
            text.push_str(extra);
        }
        text
    });
    let mut library = ManuallyDrop::new(
        Library::load_with(
            &mut files,
            &opts.facts,
            &opts.macro_library,
            needed.as_deref(),
            &tapsets.scripts,
        )
        .map_err(|d| report(&files, &d))?,
    );
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
        structured_globals: cli.format == cli::Format::Json,
    };
    let implicit = check::declare_implicit_arrays(&mut ast, &library);
    warnings(cli, &files, rstap_grammar::Diagnostics(implicit))?;
    let checked =
        check::check(&ast, &library, &kernel, &check_opts).map_err(|d| report(&files, &d))?;
    warnings(cli, &files, checked.warnings)?;
    let checked = ManuallyDrop::new(checked.program);
    if cli.verbose > 0 {
        let p = &*checked;
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
        let _ = out.write_all(rstap_compiler::dump::elaboration(&checked).as_bytes());
        return Ok(());
    }
    let started = Instant::now();
    let mir = ManuallyDrop::new(rstap_compiler::mir::lower(&checked));
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
            let _ = write!(out, "{}", *mir);
            Ok(())
        }
        Some(4) => {
            let build = run_opts.build();
            let built = ManuallyDrop::new(
                rstap_runtime::probes::compile_pass(&mir, &kernel, &build)
                    .map_err(|e| session::report_start(&files, &e))?,
            );
            // stap's -m NAME writes NAME.bo (the BPF runtime's module) to the
            // current directory and says so.
            let named = cli.module.as_ref().map(|m| format!("{m}.bo"));
            match cli.output.as_ref().or(named.as_ref()) {
                Some(path) => {
                    let bytes = built.elf().map_err(|e| session::report_start(&files, &e))?;
                    session::write_output(path, &bytes).map_err(|e| {
                        eprintln!("rstap: cannot write the BPF object to '{path}': {e}");
                    })?;
                    if cli.output.is_none() {
                        println!("{path}");
                    }
                    Ok(())
                }
                None => {
                    let summary = rstap_runtime::probes::describe(&mir, &built.compiled);
                    let _ = std::io::stdout().lock().write_all(summary.as_bytes());
                    Ok(())
                }
            }
        }
        Some(_) | None => {
            drop(compiling);
            session::run(&mir, &files, &kernel, &run_opts).map_err(|_| ())
        }
    }
}

/// Reports warnings, unless -w; with -W they are errors and the run stops.
fn warnings(
    cli: &cli::Cli,
    files: &SourceMap,
    diags: rstap_grammar::Diagnostics,
) -> Result<(), ()> {
    if diags.0.is_empty() || cli.suppress_warnings {
        return Ok(());
    }
    report(files, &diags);
    if cli.warnings_are_errors {
        eprintln!(
            "rstap: {} warning{} treated as error{} (-W)",
            diags.0.len(),
            if diags.0.len() == 1 { "" } else { "s" },
            if diags.0.len() == 1 { "" } else { "s" },
        );
        return Err(());
    }
    Ok(())
}

/// The tapsets of every `-I DIR`: `*.stp` scripts and `*.stpm` macro files,
/// each named by its path, in directory order then name order.
fn tapset_dirs(dirs: &[String]) -> Result<tapsets::Tapsets, ()> {
    tapsets::read(dirs).map_err(|msg| eprintln!("rstap: {msg}"))
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}
