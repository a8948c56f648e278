//! A second kernel for the end-to-end tests: Debian's 6.1 cloud kernel booted
//! under QEMU (software emulation), where kprobes, kretprobes and fentry exist.
//!
//! In: the freshly built `rstap`, a list of [`Case`]s (rstap argument lists).
//! Out: one [`VmRun`] with each case's stdout, stderr and exit status, from a
//! single boot. The kernel package is downloaded once into
//! `target/qemu-cache/` and reused; the initramfs is rebuilt every run, since
//! it holds the binary under test.
//!
//! Results travel on the second serial port (`/dev/ttyS1` in the guest, a file
//! on the host), one line per case with base64 fields, so kernel messages on
//! the console cannot mix with them.

use crate::rstap;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The meta-package whose dependency names the current 6.1 cloud kernel.
const KERNEL_META: &str = "linux-image-cloud-amd64";

/// 1 GiB, as small cloud machines have: rstap must start there (its front
/// end then reserves a smaller stack than the 1 GiB it asks for first).
const GUEST_MEMORY_MB: &str = "1024";

/// One rstap run inside the VM.
#[derive(Debug, Clone)]
pub struct Case {
    /// A name unique in the run: letters, digits, `_` and `-`.
    pub name: String,
    /// Arguments to `rstap`.
    pub args: Vec<String>,
}

impl Case {
    pub fn new(name: &str, args: &[&str]) -> Case {
        Case {
            name: name.into(),
            args: args.iter().map(|a| (*a).to_string()).collect(),
        }
    }
}

/// What one case printed inside the VM.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub stdout: String,
    pub stderr: String,
    pub status: i32,
    /// Guest wall time of the rstap run.
    pub seconds: f64,
}

/// One boot of the VM and everything its cases printed.
#[derive(Debug)]
pub struct VmRun {
    /// The kernel's `uname -r` inside the VM.
    pub kernel: String,
    pub results: BTreeMap<String, CaseResult>,
    /// Guest uptime when `/init` started: the boot time.
    pub boot_seconds: f64,
    /// Host wall time from starting QEMU to its exit.
    pub wall_seconds: f64,
    /// The serial console, for messages when something is missing.
    pub console: String,
}

impl VmRun {
    /// The result of case `name`; panics naming the case when the VM has none.
    pub fn case(&self, name: &str) -> &CaseResult {
        self.results.get(name).unwrap_or_else(|| {
            panic!(
                "the VM reported no result for case {name}; console:\n{}",
                self.console
            )
        })
    }
}

/// Why the VM did not run.
#[derive(Debug, Clone)]
pub enum Problem {
    /// A tool or the kernel package cannot be had here: skip (or fail in CI).
    Unavailable(String),
    /// The harness or the VM went wrong: always a failure.
    Failed(String),
}

/// Boots the 6.1 kernel once and runs every case in order.
pub fn run_cases(cases: &[Case]) -> Result<VmRun, Problem> {
    let qemu = find_program("qemu-system-x86_64").ok_or_else(|| {
        Problem::Unavailable(
            "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)".into(),
        )
    })?;
    let busybox = find_busybox()?;
    let cache = cache_dir();
    let kernel = kernel_image(&cache)?;
    let work = cache.join(format!("run-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(work.clone());
    std::fs::create_dir_all(&work).map_err(|e| failed(&work, e))?;
    let initrd = work.join("initrd.gz");
    build_initramfs(&initrd, &busybox, cases)?;
    boot(&qemu, &kernel, &initrd, &work)
}

/// The build configuration shipped next to the kernel image
/// (`boot/config-VERSION` beside `boot/vmlinuz-VERSION`), if any: what the
/// kernel was built with, to tell which probe mechanisms it must have.
pub fn kernel_config() -> Option<String> {
    let image = kernel_image(&cache_dir()).ok()?;
    let name = image
        .file_name()?
        .to_string_lossy()
        .replacen("vmlinuz-", "config-", 1);
    std::fs::read_to_string(image.with_file_name(name)).ok()
}

fn failed(path: &Path, e: std::io::Error) -> Problem {
    Problem::Failed(format!("{}: {e}", path.display()))
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cache_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| crate::workspace().join("target"), PathBuf::from)
        .join("qemu-cache")
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// busybox must run without the host's libraries: the static build.
fn find_busybox() -> Result<PathBuf, Problem> {
    let unavailable = || {
        Problem::Unavailable(
            "a static busybox is not installed (apt-get install busybox-static)".into(),
        )
    };
    let busybox = find_program("busybox").ok_or_else(unavailable)?;
    if shared_libraries(&busybox)?.is_empty() {
        Ok(busybox)
    } else {
        Err(unavailable())
    }
}

/// The vmlinuz of the 6.1 cloud kernel, downloaded and unpacked on first use.
fn kernel_image(cache: &Path) -> Result<PathBuf, Problem> {
    if let Some(path) = std::env::var_os("RSTAP_QEMU_KERNEL") {
        return Ok(PathBuf::from(path));
    }
    let package = kernel_package();
    if let Some(image) = package
        .as_deref()
        .and_then(|p| vmlinuz_in(&cache.join(p)))
        .or_else(|| any_cached_vmlinuz(cache))
    {
        return Ok(image);
    }
    let package = package.ok_or_else(|| {
        Problem::Unavailable(format!(
            "apt-cache does not know {KERNEL_META}, and no kernel is cached in {}",
            cache.display()
        ))
    })?;
    let download = cache.join("download");
    std::fs::create_dir_all(&download).map_err(|e| failed(&download, e))?;
    let fetched = Command::new("apt-get")
        .args(["download", "-q", &package])
        .current_dir(&download)
        .output()
        .map_err(|e| Problem::Unavailable(format!("cannot run apt-get: {e}")))?;
    let deb = std::fs::read_dir(&download)
        .map_err(|e| failed(&download, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{package}_")))
        })
        .ok_or_else(|| {
            Problem::Unavailable(format!(
                "apt-get download {package} failed: {}",
                crate::text(&fetched.stderr).trim()
            ))
        })?;
    let unpacked = cache.join(format!("{package}.partial"));
    let _ = std::fs::remove_dir_all(&unpacked);
    let status = Command::new("dpkg")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked)
        .status()
        .map_err(|e| Problem::Unavailable(format!("cannot run dpkg: {e}")))?;
    if !status.success() {
        return Err(Problem::Failed(format!("dpkg -x {} failed", deb.display())));
    }
    // Rename last, so an interrupted unpack is never taken for a cached kernel.
    let done = cache.join(&package);
    std::fs::rename(&unpacked, &done).map_err(|e| failed(&done, e))?;
    let _ = std::fs::remove_file(&deb);
    vmlinuz_in(&done).ok_or_else(|| Problem::Failed(format!("{package} holds no boot/vmlinuz-*")))
}

/// The package `linux-image-cloud-amd64` depends on, e.g. `linux-image-6.1.0-57-cloud-amd64`.
fn kernel_package() -> Option<String> {
    let out = Command::new("apt-cache")
        .args(["depends", KERNEL_META])
        .output()
        .ok()?;
    crate::text(&out.stdout).lines().find_map(|l| {
        let dep = l.trim().strip_prefix("Depends:")?.trim();
        dep.starts_with("linux-image-").then(|| dep.to_string())
    })
}

fn vmlinuz_in(unpacked: &Path) -> Option<PathBuf> {
    std::fs::read_dir(unpacked.join("boot"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
}

/// Offline, apt-cache may not answer: any kernel unpacked earlier will do.
fn any_cached_vmlinuz(cache: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cache)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with("linux-image-")
                    && !n.to_string_lossy().ends_with(".partial")
            })
        })
        .collect();
    dirs.sort();
    dirs.iter().rev().find_map(|d| vmlinuz_in(d))
}

/// The libraries (and the dynamic loader) `ldd` lists for `binary`; empty
/// for a static binary.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, Problem> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| Problem::Unavailable(format!("cannot run ldd: {e}")))?;
    Ok(crate::text(&out.stdout)
        .lines()
        .filter_map(|l| {
            let path = match l.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// Everything the guest needs, as a gzipped cpio (newc) archive.
fn build_initramfs(out: &Path, busybox: &Path, cases: &[Case]) -> Result<(), Problem> {
    let mut archive = Newc::default();
    for dir in [
        "bin", "dev", "proc", "sys", "tmp", "out", "cases", "lib", "lib64", "usr",
    ] {
        archive.dir(dir);
    }
    archive.char_device("dev/console", 5, 1);
    archive.file("bin/busybox", &read(busybox)?, 0o755);
    let rstap = rstap();
    archive.file("bin/rstap", &stripped(rstap)?, 0o755);
    for lib in shared_libraries(rstap)? {
        let inside = lib.to_string_lossy().trim_start_matches('/').to_string();
        archive.parents(&inside);
        archive.file(&inside, &read(&lib)?, 0o755);
    }
    let mut order = String::new();
    for case in cases {
        let mut line = String::from("exec /bin/rstap");
        for arg in &case.args {
            line.push(' ');
            line.push_str(&shell_quote(arg));
        }
        line.push('\n');
        archive.file(&format!("cases/{}", case.name), line.as_bytes(), 0o644);
        order.push_str(&case.name);
        order.push('\n');
    }
    archive.file("cases/ORDER", order.as_bytes(), 0o644);
    archive.file("init", INIT.as_bytes(), 0o755);
    let cpio = archive.finish();

    let file = std::fs::File::create(out).map_err(|e| failed(out, e))?;
    let mut gzip = Command::new("gzip")
        .arg("-1")
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()
        .map_err(|e| Problem::Unavailable(format!("cannot run gzip: {e}")))?;
    if let Some(mut stdin) = gzip.stdin.take() {
        stdin
            .write_all(&cpio)
            .map_err(|e| Problem::Failed(format!("writing to gzip: {e}")))?;
    }
    let status = gzip
        .wait()
        .map_err(|e| Problem::Failed(format!("gzip: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Problem::Failed("gzip failed".into()))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Problem> {
    std::fs::read(path).map_err(|e| failed(path, e))
}

/// The debug build carries ~60 MB of DWARF the guest never reads; without it
/// the initramfs packs and unpacks four times faster. A plain copy when
/// `strip` is missing.
fn stripped(binary: &Path) -> Result<Vec<u8>, Problem> {
    let copy = cache_dir().join(format!("rstap-stripped-{}", std::process::id()));
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .status()
        .is_ok_and(|s| s.success());
    let bytes = if ok { read(&copy) } else { read(binary) };
    let _ = std::fs::remove_file(&copy);
    bytes
}

fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// The guest's first process. Results go to /dev/ttyS1 as
/// `RSTAP-CASE name status centiseconds x<base64 stdout> x<base64 stderr>`.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mkdir -p /sys/fs/bpf
mount -t bpf bpf /sys/fs/bpf
ticks() { read up rest </proc/uptime; echo "${up%.*}${up#*.}"; }
exec 3>/dev/ttyS1
stty -F /dev/ttyS1 raw -echo 2>/dev/null
echo "RSTAP-BOOT $(ticks) $(uname -r)" >&3
cd /tmp
while read name; do
    start=$(ticks)
    sh "/cases/$name" >/out/stdout 2>/out/stderr </dev/null
    status=$?
    took=$(( $(ticks) - start ))
    echo "RSTAP-CASE $name $status $took x$(base64 -w 0 </out/stdout) x$(base64 -w 0 </out/stderr)" >&3
done </cases/ORDER
echo "RSTAP-DONE $(ticks)" >&3
sync
poweroff -f
"#;

fn boot(qemu: &Path, kernel: &Path, initrd: &Path, work: &Path) -> Result<VmRun, Problem> {
    let console = work.join("console.log");
    let results = work.join("results.log");
    let timeout = std::env::var("RSTAP_QEMU_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(900), Duration::from_secs);
    let started = Instant::now();
    let mut child = Command::new(qemu)
        .args([
            // One host thread runs both vCPUs. With a thread each (QEMU's
            // default), a guest that patches its own code on one vCPU (a
            // static key flipped as a sched_switch probe attaches or
            // detaches) could leave the other running a stale translation of
            // the int3 the patch had put there: both vCPUs then looped
            // between `__schedule+0x1bc` and `exc_int3` for ever (4 hangs in
            // 15 boots running runqueue_latency; none in 3 boots of 75 cases
            // with one thread, at the same speed).
            "-accel",
            "tcg,thread=single",
            "-cpu",
            "max",
            "-m",
            GUEST_MEMORY_MB,
            "-smp",
            "2",
        ])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 quiet panic=-1"])
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-serial")
        .arg(format!("file:{}", results.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Problem::Failed(format!("cannot start {}: {e}", qemu.display())))?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(Problem::Failed(format!("waiting for QEMU: {e}"))),
        }
    };
    let wall_seconds = started.elapsed().as_secs_f64();
    let mut qemu_err = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut qemu_err);
    }
    let console = std::fs::read_to_string(&console).unwrap_or_default();
    let results = std::fs::read_to_string(&results).unwrap_or_default();
    let Some(status) = status else {
        return Err(Problem::Failed(format!(
            "QEMU did not power off within {timeout:?}; console:\n{console}\nresults so far:\n{results}"
        )));
    };
    if !status.success() {
        return Err(Problem::Failed(format!(
            "QEMU exited with {status}: {qemu_err}\nconsole:\n{console}"
        )));
    }
    parse_results(&results, console, wall_seconds)
}

fn parse_results(text: &str, console: String, wall_seconds: f64) -> Result<VmRun, Problem> {
    let mut run = VmRun {
        kernel: String::new(),
        results: BTreeMap::new(),
        boot_seconds: 0.0,
        wall_seconds,
        console,
    };
    let mut done = false;
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["RSTAP-BOOT", ticks, kernel] => {
                run.boot_seconds = centiseconds(ticks);
                run.kernel = (*kernel).to_string();
            }
            ["RSTAP-CASE", name, status, took, out, err] => {
                let result = CaseResult {
                    stdout: decode_field(out)?,
                    stderr: decode_field(err)?,
                    status: status.parse().unwrap_or(-1),
                    seconds: centiseconds(took),
                };
                run.results.insert((*name).to_string(), result);
            }
            ["RSTAP-DONE", _] => done = true,
            _ => {}
        }
    }
    if done {
        Ok(run)
    } else {
        Err(Problem::Failed(format!(
            "the VM powered off before /init finished; results:\n{text}\nconsole:\n{}",
            run.console
        )))
    }
}

fn centiseconds(ticks: &str) -> f64 {
    ticks.parse::<f64>().unwrap_or(0.0) / 100.0
}

fn decode_field(field: &str) -> Result<String, Problem> {
    let b64 = field.strip_prefix('x').unwrap_or(field);
    base64_decode(b64)
        .map(|bytes| crate::text(&bytes))
        .ok_or_else(|| Problem::Failed(format!("bad base64 from the VM: {field}")))
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A cpio archive in the "newc" format the kernel unpacks into its rootfs.
#[derive(Debug, Default)]
struct Newc {
    bytes: Vec<u8>,
    inode: u32,
    dirs: std::collections::BTreeSet<String>,
}

impl Newc {
    fn dir(&mut self, path: &str) {
        if self.dirs.insert(path.to_string()) {
            self.entry(path, 0o040_755, &[], (0, 0));
        }
    }

    /// Every directory above `path`, outermost first.
    fn parents(&mut self, path: &str) {
        let parts: Vec<&str> = path.split('/').collect();
        for end in 1..parts.len() {
            self.dir(&parts[..end].join("/"));
        }
    }

    fn file(&mut self, path: &str, data: &[u8], perm: u32) {
        self.entry(path, 0o100_000 | perm, data, (0, 0));
    }

    fn char_device(&mut self, path: &str, major: u32, minor: u32) {
        self.entry(path, 0o020_600, &[], (major, minor));
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.inode += 1;
        let nlink = if mode & 0o170_000 == 0o040_000 { 2 } else { 1 };
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.inode,
            mode,
            0,
            0,
            nlink,
            0,
            data.len(),
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_what_busybox_prints() {
        assert_eq!(base64_decode("aGVsbG8K"), Some(b"hello\n".to_vec()));
        assert_eq!(base64_decode("NDIK"), Some(b"42\n".to_vec()));
        assert_eq!(base64_decode(""), Some(Vec::new()));
        assert_eq!(base64_decode("a$"), None);
    }

    #[test]
    fn newc_entries_are_padded_to_four_bytes() {
        let mut archive = Newc::default();
        archive.file("init", b"abc", 0o755);
        let bytes = archive.finish();
        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(bytes.len() % 4, 0);
        // 110-byte header + "init\0" padded to 116, then 3 data bytes padded to 120.
        assert_eq!(&bytes[116..119], b"abc");
    }

    #[test]
    fn results_are_parsed_from_the_second_serial_port() {
        let text = "RSTAP-BOOT 312 6.1.0-57-cloud-amd64\r\nRSTAP-CASE hello 0 450 xNDIK x\r\nRSTAP-DONE 800\r\n";
        let run = parse_results(text, String::new(), 9.0).expect("well-formed results");
        assert_eq!(run.kernel, "6.1.0-57-cloud-amd64");
        assert!((run.boot_seconds - 3.12).abs() < 1e-9);
        let hello = run.case("hello");
        assert_eq!(
            (hello.stdout.as_str(), hello.stderr.as_str(), hello.status),
            ("42\n", "", 0)
        );
    }

    #[test]
    fn arguments_are_quoted_for_the_guest_shell() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
