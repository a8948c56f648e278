//! The BPF runtime: load the compiler's ELF object with aya, attach its
//! programs ([`load`]), read and write its maps through raw `bpf(2)` calls sized
//! at run time ([`maps`]) and drain its ring buffers ([`ringbuf`]).
//!
//! Creating an aya loader parses the kernel's BTF (~11 ms): callers only get
//! here when a script has a kernel-context probe.

pub mod direct;
pub mod load;
pub mod maps;
pub mod ringbuf;
pub mod semaphore;

pub use load::{AttachError, BpfObject, DirectLink, LoadError, MissingFeature, UprobeLocation};
pub use maps::{MapError, RawMap, Update};
pub use ringbuf::{RingError, RingReader};
