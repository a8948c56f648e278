//! Shared helpers for the end-to-end tests: find (or build) the real `rstap`
//! binary, run it, and decide whether tests that need outside tools may be skipped.

pub mod qemu;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
}

/// The `rstap` binary of this build profile, built once per test run.
pub fn rstap() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let release = !cfg!(debug_assertions);
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "rstap-runtime", "--bin", "rstap"])
            .current_dir(workspace());
        if release {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build rstap: {e}"));
        assert!(status.success(), "building the rstap binary failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace().join("target"), PathBuf::from);
        let bin = target
            .join(if release { "release" } else { "debug" })
            .join("rstap");
        assert!(
            bin.exists(),
            "rstap was built but is not at {}",
            bin.display()
        );
        bin
    })
}

/// The `*.stp` files of `dir`, sorted: the fixtures of a corpus.
pub fn stp_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "stp"))
        .collect();
    v.sort();
    v
}

/// Runs `rstap` with `args` in `dir`.
pub fn run_rstap(args: &[&str], dir: &Path) -> Output {
    Command::new(rstap())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"))
}

/// CI sets `RSTAP_REQUIRE_KERNEL_TESTS=1`: then a test that would be skipped for
/// lack of a tool or kernel feature fails instead.
pub fn skip_or_fail(why: &str) {
    if std::env::var("RSTAP_REQUIRE_KERNEL_TESTS").is_ok_and(|v| v == "1") {
        panic!("required test cannot run: {why}");
    }
    println!("skipped: {why}");
}

/// Extra rstap options from a fixture's `# rstap: OPTIONS` header lines.
pub fn fixture_options(text: &str) -> Vec<String> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("# rstap:"))
        .flat_map(str::split_whitespace)
        .map(str::to_string)
        .collect()
}

/// Script arguments and guru mode from a fixture's `# args:` / `# guru` header.
pub fn fixture_flags(text: &str) -> (Vec<String>, bool) {
    let mut args = Vec::new();
    let mut guru = false;
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(a) = line.strip_prefix("# args:") {
            args = a.split_whitespace().map(str::to_string).collect();
        } else if line.trim() == "# guru" {
            guru = true;
        }
    }
    (args, guru)
}

/// Runs `tool PASS FIXTURE` (rstap or stap, `-p1` or `-p2`) from the
/// fixture's directory, as the differential tests compare them: with the
/// fixture's `# args:`, `# guru` (`-g`) and `# unoptimized` (`-u`) header lines.
pub fn run_fixture(tool: &Path, pass: &str, fixture: &Path) -> Output {
    let text = std::fs::read_to_string(fixture)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", fixture.display()));
    let (args, guru) = fixture_flags(&text);
    let unoptimized = text.lines().any(|l| l.trim() == "# unoptimized");
    let dir = fixture.parent().unwrap_or(Path::new("."));
    let name = fixture
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cmd = Command::new(tool);
    cmd.arg(pass).current_dir(dir);
    if guru {
        cmd.arg("-g");
    }
    if unoptimized {
        cmd.arg("-u");
    }
    cmd.arg(&name)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()))
}

fn tracefs_readable() -> bool {
    [
        "/sys/kernel/tracing/available_events",
        "/sys/kernel/debug/tracing/available_events",
    ]
    .iter()
    .any(|p| std::fs::read_to_string(p).is_ok())
        || std::fs::metadata("/sys/kernel/tracing").is_ok_and(|_| is_root())
}

/// True when the kernel tests can run; otherwise reports the skip (or fails in CI).
pub fn tracefs_or_skip() -> bool {
    let ok = tracefs_readable();
    if !ok {
        skip_or_fail("tracefs is not readable here (needs root)");
    }
    ok
}

/// rstap mounts tracefs itself, but only root may.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// True when kernel-context probes can run here (root and BPF); otherwise
/// reports the skip (or fails under RSTAP_REQUIRE_KERNEL_TESTS=1).
pub fn bpf_or_skip() -> bool {
    let ok = is_root() && Path::new("/sys/kernel/btf/vmlinux").exists();
    if !ok {
        skip_or_fail("kernel-context probes need root and a BPF-capable kernel");
    }
    ok
}

/// True when python3 runs here (it drives many traced workloads); otherwise
/// reports the skip (or fails under RSTAP_REQUIRE_KERNEL_TESTS=1).
pub fn python_or_skip() -> bool {
    let ok = Command::new("python3")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip_or_fail("python3 is needed to drive the traced workload");
    }
    ok
}

/// Runs `rstap` with `args` in the current directory.
pub fn rstap_output(args: &[&str]) -> Output {
    Command::new(rstap())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"))
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The python3 interpreter itself: a `python3` on PATH may be a shell-script
/// shim that execs (and forks) on its way there, which exact counts would see.
pub fn python_executable() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
    text(&out.stdout).trim().to_string()
}

/// The kernel's name (comm) for a task running the program at `path`.
pub fn comm_of(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.chars().take(15).collect()
}

/// Runs the C compiler with `args` in `dir`; whether it succeeded.
pub fn cc(args: &[&str], dir: &Path) -> bool {
    Command::new("cc")
        .args(args)
        .current_dir(dir)
        .status()
        .is_ok_and(|s| s.success())
}

/// Builds the C program `source` as `dir/name` with the compiler flags
/// `flags`; when it cannot be built (no cc, missing headers), says why as a
/// skip (a failure under RSTAP_REQUIRE_KERNEL_TESTS=1) and gives `None`.
pub fn build_c(dir: &Path, name: &str, source: &str, flags: &[&str]) -> Option<PathBuf> {
    let why = |e: String| {
        skip_or_fail(&format!("cannot build the test program {name}.c: {e}"));
        None
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return why(format!("{}: {e}", dir.display()));
    }
    let src = dir.join(format!("{name}.c"));
    if let Err(e) = std::fs::write(&src, source) {
        return why(format!("{}: {e}", src.display()));
    }
    let bin = dir.join(name);
    match Command::new("cc")
        .args(flags)
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .output()
    {
        Ok(out) if out.status.success() => Some(bin),
        Ok(out) => why(format!("cc failed: {}", text(&out.stderr))),
        Err(e) => why(format!("a C compiler (cc) is needed: {e}")),
    }
}

/// Whether SystemTap runs pass `pass` (`-p1`, `-p2`) of `script` here: the
/// differential tests compare against it, and say why when they cannot.
pub fn stap_runs(pass: &str, script: &str) -> Result<(), String> {
    let out = Command::new("stap")
        .args([pass, "-e", script])
        .output()
        .map_err(|e| format!("stap is not installed ({e})"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "stap {pass} does not run here (it needs /lib/modules/$(uname -r)/build; .ci/run makes a stub): {}",
            text(&out.stderr).lines().next().unwrap_or("")
        ))
    }
}

/// Holds the lock under which the tests of one test binary that must not
/// overlap run, one at a time (each test binary has its own). A test that
/// failed while holding it does not stop the others.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The programs a test file builds, once, in a directory of their own.
#[derive(Debug)]
pub struct Programs {
    pub dir: PathBuf,
}

impl Programs {
    /// Where the built program `name` is, as an argument.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The programs of `cell`, built by `build` into a temporary directory
    /// named after `what` and this process the first time; `None` when
    /// `build` could not (it says why, as a skip or a failure).
    pub fn once(
        cell: &'static OnceLock<Option<Programs>>,
        what: &str,
        build: impl FnOnce(&Path) -> Option<()>,
    ) -> Option<&'static Programs> {
        cell.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("rstap-{what}-{}", std::process::id()));
            build(&dir)?;
            Some(Programs { dir })
        })
        .as_ref()
    }
}

/// The system's libstdc++, a Debian library built with USDT marks
/// (`libstdcxx:throw`, `catch`, `rethrow`), when it has one.
pub fn libstdcxx() -> Option<&'static str> {
    [
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib64/libstdc++.so.6",
        "/usr/lib/libstdc++.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

/// The script arguments with which `examples/NAME` parses and elaborates on
/// this machine without its workload, for the tests that check the whole
/// shelf at `-p1`/`-p2` (tests/tests/examples.rs runs each for real). The
/// rstap binary's own `main` stands in for a traced program's function and
/// libstdc++'s exception marks for USDT marks. `None`: this machine has no
/// stand-in, and the example is left to examples.rs.
pub fn example_args(name: &str) -> Option<Vec<String>> {
    let program = rstap().display().to_string();
    let marks = libstdcxx();
    let args: Vec<String> = match name {
        "funclatency.stp" | "calltrace.stp" | "stopwatch.stp" => vec![program, "main".into()],
        "usdt.stp" => vec![marks?.to_string()],
        "slowcalls.stp" => vec!["nginx".into()],
        _ => Vec::new(),
    };
    Some(args)
}
