//! Reading a `BPF_MAP_TYPE_RINGBUF` map: the records programs submitted, in
//! order, straight from the map's memory. The map offers one page holding the
//! consumer position (ours to write), then the producer position's page and
//! the data pages, mapped twice in a row so a record that wraps around reads
//! straight through. The map's fd becomes readable when records arrive, so a
//! session can wait on it with poll next to its timers and signals.

use super::load::{BpfObject, page_size};
use super::maps::RawMap;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// A record's header: its length, with these two flags in the top bits.
const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
const HEADER: usize = 8;

/// The consumer side of one ring buffer map.
pub struct RingReader {
    name: String,
    map: RawMap,
    /// The consumer position's page (read-write).
    consumer: Mapping,
    /// The producer position's page, then the data twice (read-only).
    producer: Mapping,
    /// The data's size less one (a power of two).
    mask: u64,
}

impl fmt::Debug for RingReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingReader")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A shared `mmap` of a map, unmapped on drop.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn new(
        fd: BorrowedFd<'_>,
        len: usize,
        prot: libc::c_int,
        offset: usize,
    ) -> io::Result<Mapping> {
        let offset = libc::off_t::try_from(offset).map_err(io::Error::other)?;
        #[expect(unsafe_code, reason = "mmap(2) of a ring buffer map")]
        // SAFETY: a fresh shared mapping of `len` bytes of the map's fd; the
        // kernel checks the offset, length and protection against the map.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr, len })
    }

    /// The 64-bit position at the mapping's start.
    fn position(&self) -> &AtomicU64 {
        #[expect(unsafe_code, reason = "a position the kernel shares with us")]
        // SAFETY: the mapping is at least a page, page-aligned, and lives as
        // long as `self`; the kernel updates the word atomically.
        unsafe {
            &*self.ptr.cast::<AtomicU64>()
        }
    }

    /// The bytes at `at..at + len` of the mapping.
    fn bytes(&self, at: usize, len: usize) -> Option<&[u8]> {
        if at.checked_add(len)? > self.len {
            return None;
        }
        #[expect(unsafe_code, reason = "reading the shared ring's memory")]
        // SAFETY: the range is inside the mapping (checked above), which
        // lives as long as `self`.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>().add(at), len) })
    }

    /// The record header at `at`, which the kernel writes atomically.
    fn header(&self, at: usize) -> Option<&AtomicU32> {
        if at.checked_add(4)? > self.len || !at.is_multiple_of(4) {
            return None;
        }
        #[expect(unsafe_code, reason = "a header word the kernel shares with us")]
        // SAFETY: the word is inside the mapping (checked above), aligned, and
        // lives as long as `self`.
        Some(unsafe { &*self.ptr.cast::<u8>().add(at).cast::<AtomicU32>() })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        #[expect(unsafe_code, reason = "munmap(2) of our own mapping")]
        // SAFETY: `ptr` and `len` are exactly what mmap returned, and nothing
        // borrows the mapping beyond `self`.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// A ring buffer could not be opened for reading.
#[derive(Debug)]
pub enum RingError {
    NoSuchMap { map: String },
    NotARingBuffer { map: String },
    Open { map: String, reason: String },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::NoSuchMap { map } => write!(f, "the BPF object has no map `{map}`"),
            RingError::NotARingBuffer { map } => write!(f, "map `{map}` is not a ring buffer"),
            RingError::Open { map, reason } => {
                write!(f, "cannot read ring buffer `{map}`: {reason}")
            }
        }
    }
}

impl std::error::Error for RingError {}

impl BpfObject {
    /// Takes ring buffer map `name` out of the object to read it; the raw map
    /// of that name goes away with it.
    pub fn take_ring_buffer(&mut self, name: &str) -> Result<RingReader, RingError> {
        let (map, size) = self.take_map(name).ok_or_else(|| RingError::NoSuchMap {
            map: name.to_string(),
        })?;
        let Some(size) = size else {
            return Err(RingError::NotARingBuffer {
                map: name.to_string(),
            });
        };
        let open = |e: io::Error| RingError::Open {
            map: name.to_string(),
            reason: e.to_string(),
        };
        let page = page_size() as usize;
        let size = size as usize;
        let consumer =
            Mapping::new(map.fd(), page, libc::PROT_READ | libc::PROT_WRITE, 0).map_err(open)?;
        let producer =
            Mapping::new(map.fd(), page + 2 * size, libc::PROT_READ, page).map_err(open)?;
        Ok(RingReader {
            name: name.to_string(),
            map,
            consumer,
            producer,
            mask: size as u64 - 1,
        })
    }
}

impl RingReader {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands every record available now to `each`, oldest first; returns how
    /// many there were. Records the kernel submits meanwhile wait for the
    /// next call: under a flood the producer never stops, and a reader that
    /// chased it would never get back to printing what it read, or to
    /// noticing a signal.
    pub fn drain(&mut self, mut each: impl FnMut(&[u8])) -> usize {
        let mut count = 0;
        let page = page_size() as usize;
        let consumer = self.consumer.position();
        let end = self.producer.position().load(Ordering::Acquire);
        let mut cons = consumer.load(Ordering::Acquire);
        while cons < end {
            let at = page + usize::try_from(cons & self.mask).unwrap_or(0);
            let Some(header) = self.producer.header(at) else {
                break;
            };
            let word = header.load(Ordering::Acquire);
            if word & BUSY != 0 {
                // Reserved, not yet submitted: later records wait for it.
                break;
            }
            let len = (word & !(BUSY | DISCARD)) as usize;
            if word & DISCARD == 0 {
                // The data is mapped twice in a row: a record that wraps
                // around is contiguous here.
                let Some(record) = self.producer.bytes(at + HEADER, len) else {
                    break;
                };
                each(record);
                count += 1;
            }
            cons += (len + HEADER).next_multiple_of(8) as u64;
            consumer.store(cons, Ordering::Release);
        }
        count
    }

    /// Waits until records may be available or `timeout` passes (`None`: no
    /// limit); `true` when the ring became readable. An interrupted wait
    /// (a signal) returns `false`, so the caller can look at what woke it.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let millis = timeout.map_or(-1, |t| i32::try_from(t.as_millis()).unwrap_or(i32::MAX));
        let mut pollfd = libc::pollfd {
            fd: self.map.fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        #[expect(unsafe_code, reason = "poll(2) on the ring buffer's fd")]
        // SAFETY: `pollfd` is one initialised, live `struct pollfd` and the count
        // passed is 1; its fd stays open for the call because `self` owns it.
        let ready = unsafe { libc::poll(&raw mut pollfd, 1, millis) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(e);
        }
        Ok(ready > 0 && pollfd.revents & libc::POLLIN != 0)
    }
}

impl AsFd for RingReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.map.fd()
    }
}
