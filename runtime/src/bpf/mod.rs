//! The BPF runtime, on raw system calls ([`sys`]): create the compiler's maps
//! and load its programs ([`prog`]), attach them ([`load`]) to perf events
//! ([`events`]), read and write
//! maps sized at run time ([`maps`]) and drain ring buffers ([`ringbuf`]).

pub mod events;
pub mod load;
pub mod maps;
pub mod prog;
pub mod ringbuf;
pub mod sys;

pub use load::{AttachError, BpfObject, DirectLink, LoadError, MissingFeature, UprobeLocation};
pub use maps::{MapError, RawMap, Update};
pub use ringbuf::{RingError, RingReader};
