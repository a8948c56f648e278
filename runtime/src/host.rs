//! Facts about the running machine that the preprocessor compares against:
//! the kernel release, the architecture and the kernel configuration.

use rstap_grammar::Facts;
use std::io::Read;

/// Reads `/proc/sys/kernel/osrelease` and, when `script` or a tapset tests a
/// `CONFIG_` option, `/proc/config.gz` (or `/boot/config-*`): decompressing
/// and reading it costs about a millisecond that most runs need not spend.
/// A fact that cannot be read stays at its default: conditions on it are false.
pub fn facts(guru: bool, script: &str) -> Facts {
    let release = read_kernel_file("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mut facts = if release.is_empty() {
        Facts::default()
    } else {
        Facts::for_release(&release)
    };
    facts.arch = stap_arch(std::env::consts::ARCH).to_string();
    facts.guru_mode = guru;
    let tests_config = |text: &str| text.contains("CONFIG_");
    if !tests_config(script) && !rstap_stdlib::scripts().any(|(_, text)| tests_config(text)) {
        return facts;
    }
    match kernel_config(&release) {
        Some(text) => facts.with_config_text(&text),
        None => facts,
    }
}

/// stap's names for architectures differ from Rust's in a few places.
/// A file of /proc, /sys or tracefs, whole. Such a file says it is empty, so
/// `fs::read_to_string` asks its size (`statx`, `lseek`) and then reads it in
/// pieces of 32, 32, 64, 128... bytes, each a `read` the kernel answers by
/// formatting the file again: eight system calls for a tracepoint's
/// 500-byte format. Into a buffer of 16 KiB it is one read and the end (no
/// size asked: `take` hides that the reader is a file).
pub fn read_kernel_file(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    let mut bytes = Vec::with_capacity(16 << 10);
    std::fs::File::open(path)?
        .take(u64::MAX)
        .read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn stap_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "aarch64" => "arm64",
        "x86" => "i386",
        "powerpc64" => "powerpc",
        other => other,
    }
}

fn kernel_config(release: &str) -> Option<String> {
    if let Ok(file) = std::fs::File::open("/proc/config.gz") {
        let mut text = String::new();
        if flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .is_ok()
        {
            return Some(text);
        }
    }
    std::fs::read_to_string(format!("/boot/config-{release}")).ok()
}

/// The kernel's tick rate (CONFIG_HZ), for jiffies timers and `HZ()`.
pub fn config_hz() -> Option<i64> {
    let release = read_kernel_file("/proc/sys/kernel/osrelease").ok()?;
    let text = kernel_config(release.trim())?;
    text.lines()
        .find_map(|l| l.strip_prefix("CONFIG_HZ="))
        .and_then(|v| v.trim().parse().ok())
}

/// One glibc heap for every thread: the compile has its own region
/// ([`crate::arena`]), and the runtime's few threads allocate little; a heap
/// each would only spread their memory over more pages.
#[expect(unsafe_code, reason = "mallopt(3) has no safe wrapper")]
pub fn tune_allocator() {
    // SAFETY: mallopt only sets the allocator's parameters; main calls it
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

const HUGE_PAGE: usize = 2 << 20;

/// How much of the compile's region to fault in ahead, per byte of script:
/// a 72 KB script of 1,000 statements uses 13 MB.
const HEAP_PER_SCRIPT_BYTE: usize = 200;

/// Faults in, on another CPU, the part of the compile's region (`region`,
/// from its start) that compiling a script of `script_len` bytes will use. A
/// first touch of a page costs its clearing, and in a VM whose host takes
/// freed memory back, the host's providing it again (10 MB took 1 ms on a
/// quiet machine here, and several after another process had freed much
/// memory); and each fault is an entry into the kernel, dear on this VM. Done
/// ahead on an idle CPU, the region's 4 KiB part in one call, the compile
/// finds the pages there. Not for scripts whose compile stays in the 4 KiB
/// part, nor on a machine with one CPU.
pub fn prefault_heap(region: Option<(usize, usize)>, script_len: usize) {
    let Some((from, to)) = region else {
        return;
    };
    let want = script_len.saturating_mul(HEAP_PER_SCRIPT_BYTE);
    let len = want.min(to - from) & !(HUGE_PAGE - 1);
    if len < 2 * HUGE_PAGE || usable_cpus() < 2 {
        return;
    }
    // Detached: it ends with its one call, or with the process.
    let _ = std::thread::Builder::new()
        .name("prefault".into())
        .stack_size(64 << 10)
        .spawn(move || populate(from, len));
}

/// Maps `from..from + len` a huge page's span at a time from the last down:
/// the compile fills the region from the bottom up, and two first touches of
/// one huge page would each clear a page of their own, so the two meet once
/// only.
#[expect(unsafe_code, reason = "madvise(2) has no safe wrapper")]
fn populate(from: usize, len: usize) {
    for page in (0..len / HUGE_PAGE).rev() {
        let at = from + page * HUGE_PAGE;
        // SAFETY: the range is inside the region's mapping, which lives as
        // long as the process; MADV_POPULATE_WRITE maps pages as a write would,
        // without writing, so the allocator's data in them is untouched.
        let refused = unsafe {
            libc::madvise(
                at as *mut libc::c_void,
                HUGE_PAGE,
                libc::MADV_POPULATE_WRITE,
            ) != 0
        };
        // A kernel before 5.14 refuses it: the compile faults its pages in.
        if refused {
            return;
        }
    }
}

#[expect(unsafe_code, reason = "sched_getaffinity(2) has no safe wrapper")]
pub fn usable_cpus() -> u32 {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, filled in by the call.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 1;
        }
        libc::CPU_COUNT(&set).cast_unsigned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_file_reads_whole_as_read_to_string_reads_it() {
        // Kernel files; then a file larger than the first 16 KiB buffer.
        for path in ["/proc/self/maps", "/proc/sys/kernel/osrelease"] {
            let ours = read_kernel_file(path).expect("readable");
            let std_read = std::fs::read_to_string(path).expect("readable");
            if path.ends_with("maps") {
                // The maps change as the test runs; their first line does not.
                assert_eq!(ours.lines().next(), std_read.lines().next());
            } else {
                assert_eq!(ours, std_read);
            }
        }
        let big = std::env::temp_dir().join(format!("rstap-host-{}", std::process::id()));
        let text = "x".repeat(100_000);
        std::fs::write(&big, &text).expect("write");
        assert_eq!(read_kernel_file(&big).expect("read"), text);
        let _ = std::fs::remove_file(&big);
        assert!(read_kernel_file("/nonexistent/rstap").is_err());
    }
}
