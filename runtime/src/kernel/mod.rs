//! The live kernel's answers to the compiler's questions (`KernelInfo`):
//! tracepoints and their layouts from tracefs (mounted when missing), functions
//! from /proc/kallsyms, types from /sys/kernel/btf/vmlinux, probe mechanisms by
//! asking the kernel, and user binaries from the file system. Each fact is read
//! lazily and at most once.

pub(crate) mod binary;
mod features;
mod kallsyms;
pub(crate) mod tracefs;

use rstap_compiler::btf;
use rstap_compiler::ctype::TypeGraph;
use rstap_compiler::elf::Binary;
use rstap_compiler::kernel::{Features, KernelError, KernelInfo, KernelSymbol, TracepointId};
use rstap_compiler::tracepoint::{TracepointFormat, parse_format};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Kernel facts read lazily, each at most once.
#[derive(Debug, Default)]
pub struct LiveKernel {
    verbose: bool,
    tracefs: OnceLock<Result<PathBuf, KernelError>>,
    tracepoints: OnceLock<Result<Vec<TracepointId>, KernelError>>,
    functions: OnceLock<Result<Vec<KernelSymbol>, KernelError>>,
    types: OnceLock<Result<TypeGraph, KernelError>>,
    features: OnceLock<Features>,
    may_goto: OnceLock<bool>,
    /// vmlinux functions ftrace can hook (empty when tracefs cannot be had).
    ftrace: OnceLock<HashSet<String>>,
    binaries: Mutex<HashMap<PathBuf, Arc<Binary>>>,
    /// Each tracepoint's layout, read once: the checker and the code
    /// generator both ask, and [`LiveKernel::read_ahead`] may answer first.
    formats: Arc<Mutex<Formats>>,
}

type Formats = HashMap<TracepointId, TracepointFormat>;

impl LiveKernel {
    pub fn new(verbose: bool) -> LiveKernel {
        LiveKernel {
            verbose,
            ..LiveKernel::default()
        }
    }

    /// Where tracefs is, mounting it at /sys/kernel/tracing if no one has.
    fn tracefs(&self) -> Result<&Path, KernelError> {
        self.tracefs
            .get_or_init(|| tracefs::find_or_mount(self.verbose))
            .as_deref()
            .map_err(Clone::clone)
    }

    /// Reads, on another CPU, the layouts of the tracepoints `script` names
    /// in full (`kernel.trace("system:name")`), while the script is parsed:
    /// the checker asks for each as it resolves the probe points, and each is
    /// a file of tracefs that the kernel formats on every read (about 12 µs
    /// here: 0.6 ms for a script of 50 probes). A guess from the text: what
    /// the preprocessor removes is read for nothing, on an idle CPU, and what
    /// the thread has not read yet when it is asked for is read as before.
    pub fn read_ahead(&self, script: &str) {
        let named = tracefs::named_tracepoints(script);
        if named.len() < READ_AHEAD_MIN || crate::host::usable_cpus() < 2 {
            return;
        }
        let Ok(root) = self.tracefs().map(Path::to_path_buf) else {
            return;
        };
        let formats = Arc::clone(&self.formats);
        // Detached: it ends after the last file, or with the process.
        let _ = std::thread::Builder::new()
            .name("formats".into())
            .stack_size(64 << 10)
            .spawn(move || {
                for tp in named {
                    if lock(&formats).contains_key(&tp) {
                        continue;
                    }
                    if let Ok(format) = read_format(&root, &tp) {
                        lock(&formats).entry(tp).or_insert(format);
                    }
                }
            });
    }
}

/// Fewer named tracepoints than this are read faster than a thread starts.
const READ_AHEAD_MIN: usize = 4;

fn lock(formats: &Mutex<Formats>) -> std::sync::MutexGuard<'_, Formats> {
    formats.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tracepoint's layout from its `format` file under tracefs at `root`.
fn read_format(root: &Path, tp: &TracepointId) -> Result<TracepointFormat, KernelError> {
    let path = root
        .join("events")
        .join(&tp.system)
        .join(&tp.name)
        .join("format");
    let text = crate::host::read_kernel_file(&path).map_err(|e| {
        KernelError(format!(
            "cannot read the format of tracepoint {tp} ({}): {e}",
            path.display()
        ))
    })?;
    parse_format(&text)
        .map_err(|e| KernelError(format!("cannot read the format of tracepoint {tp}: {e}")))
}

fn read_vmlinux_btf() -> Result<TypeGraph, KernelError> {
    let bytes = std::fs::read(VMLINUX_BTF).map_err(|e| {
        KernelError(format!(
            "cannot read the kernel's BTF at {VMLINUX_BTF} ({e}); kernel types need a kernel built with CONFIG_DEBUG_INFO_BTF=y"
        ))
    })?;
    btf::parse(&bytes).map_err(|e| KernelError(format!("{VMLINUX_BTF}: {e}")))
}

impl KernelInfo for LiveKernel {
    fn tracepoints(&self) -> Result<Vec<TracepointId>, KernelError> {
        self.tracepoints
            .get_or_init(|| tracefs::tracepoints(self.tracefs()?))
            .clone()
    }

    fn tracepoint_format(&self, tp: &TracepointId) -> Result<TracepointFormat, KernelError> {
        if let Some(known) = lock(&self.formats).get(tp) {
            return Ok(known.clone());
        }
        // Not under the lock: the read-ahead thread goes on meanwhile.
        let format = read_format(self.tracefs()?, tp)?;
        lock(&self.formats).insert(tp.clone(), format.clone());
        Ok(format)
    }

    fn kernel_functions(&self) -> Result<Vec<KernelSymbol>, KernelError> {
        self.functions.get_or_init(kallsyms::functions).clone()
    }

    fn kernel_types(&self) -> Result<&TypeGraph, KernelError> {
        self.types
            .get_or_init(read_vmlinux_btf)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn traceable(&self, function: &str) -> bool {
        self.ftrace
            .get_or_init(|| {
                self.tracefs()
                    .map(tracefs::ftrace_functions)
                    .unwrap_or_default()
            })
            .contains(function)
    }

    fn may_goto(&self) -> bool {
        *self.may_goto.get_or_init(features::may_goto)
    }

    fn features(&self) -> Features {
        *self.features.get_or_init(|| {
            // Detection must not mount anything: use tracefs only if it is there.
            let tracefs = match self.tracefs.get() {
                Some(found) => found.as_ref().ok().cloned(),
                None => tracefs::find_mounted(),
            };
            features::detect(tracefs.as_deref(), self.kernel_types().ok())
        })
    }

    fn user_binary(&self, path: &str) -> Result<Arc<Binary>, KernelError> {
        let resolved = binary::resolve(path)?;
        let mut cache = self
            .binaries
            .lock()
            .map_err(|_| KernelError("the binary cache was poisoned by a panic".into()))?;
        if let Some(b) = cache.get(&resolved) {
            return Ok(Arc::clone(b));
        }
        let b = Arc::new(binary::load(&resolved)?);
        cache.insert(resolved, Arc::clone(&b));
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn kernel_config() -> Option<String> {
        let file = std::fs::File::open("/proc/config.gz").ok()?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    }

    /// The detected features agree with what the kernel was built with, where
    /// the configuration settles the question.
    #[test]
    fn features_agree_with_the_kernel_configuration() {
        let f = LiveKernel::new(false).features();
        println!("detected: {f:?}");
        assert!(
            !f.kretprobes || f.kprobes,
            "kretprobes without kprobes: {f:?}"
        );
        let Some(config) = kernel_config() else {
            println!("skipped the configuration cross-check: no /proc/config.gz");
            return;
        };
        let set = |opt: &str| config.lines().any(|l| l == format!("{opt}=y"));
        if !set("CONFIG_KPROBES") {
            assert!(!f.kprobes && !f.kretprobes, "no CONFIG_KPROBES yet {f:?}");
        }
        if !set("CONFIG_FPROBE") {
            assert!(!f.kprobe_multi, "no CONFIG_FPROBE yet {f:?}");
        }
        if !set("CONFIG_DEBUG_INFO_BTF") {
            assert!(!f.fentry, "no BTF yet {f:?}");
        }
        let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        });
        if root && set("CONFIG_UPROBE_EVENTS") {
            assert!(f.uprobes, "CONFIG_UPROBE_EVENTS=y yet {f:?}");
        }
        if set("CONFIG_PERF_EVENTS") {
            assert!(f.perf_sw, "CONFIG_PERF_EVENTS=y yet {f:?}");
        }
    }
}
