//! Facts about the running machine that the preprocessor compares against:
//! the kernel release, the architecture and the kernel configuration.

use rstap_grammar::Facts;
use std::io::Read;

/// Reads `/proc/sys/kernel/osrelease` and, when `script` or a tapset tests a
/// `CONFIG_` option, `/proc/config.gz` (or `/boot/config-*`): decompressing
/// and reading it costs about a millisecond that most runs need not spend.
/// A fact that cannot be read stays at its default: conditions on it are false.
pub fn facts(guru: bool, script: &str) -> Facts {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
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
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let text = kernel_config(release.trim())?;
    text.lines()
        .find_map(|l| l.strip_prefix("CONFIG_HZ="))
        .and_then(|v| v.trim().parse().ok())
}

/// glibc's allocator serves blocks over 128 KiB with their own `mmap` and
/// gives freed memory at the top of the heap back at once, so each growth of a
/// large vector while compiling a big script faulted in fresh pages (a fifth of
/// the page faults of a 1,000-statement compile). Keep both in the heap.
#[expect(unsafe_code, reason = "mallopt(3) has no safe wrapper")]
pub fn tune_allocator() {
    const MIB: i32 = 1 << 20;
    // mallopt only sets the allocator's parameters; main calls it before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * MIB);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * MIB);
    }
}
