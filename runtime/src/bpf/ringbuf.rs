//! Reading a `BPF_MAP_TYPE_RINGBUF` map: records the programs submitted, in
//! order, through aya's memory-mapped consumer. The reader's fd becomes
//! readable when records arrive, so a session can wait on it with epoll next to
//! its timers and signals.

use super::load::BpfObject;
use aya::maps::{Map, MapData, RingBuf};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

/// The consumer side of one ring buffer map.
pub struct RingReader {
    name: String,
    ring: RingBuf<MapData>,
}

impl fmt::Debug for RingReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingReader")
            .field("name", &self.name)
            .finish_non_exhaustive()
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
        match self.ebpf.map(name) {
            None => {
                return Err(RingError::NoSuchMap {
                    map: name.to_string(),
                });
            }
            Some(Map::RingBuf(_)) => {}
            Some(_) => {
                return Err(RingError::NotARingBuffer {
                    map: name.to_string(),
                });
            }
        }
        let map = self
            .ebpf
            .take_map(name)
            .ok_or_else(|| RingError::NoSuchMap {
                map: name.to_string(),
            })?;
        self.forget_map(name);
        let ring = RingBuf::try_from(map).map_err(|e| RingError::Open {
            map: name.to_string(),
            reason: e.to_string(),
        })?;
        Ok(RingReader {
            name: name.to_string(),
            ring,
        })
    }
}

impl RingReader {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands every record available now to `each`, oldest first; returns how
    /// many there were.
    pub fn drain(&mut self, mut each: impl FnMut(&[u8])) -> usize {
        let mut count = 0;
        while let Some(record) = self.ring.next() {
            each(&record);
            count += 1;
        }
        count
    }

    /// Waits until records may be available or `timeout` passes (`None`: no
    /// limit); `true` when the ring became readable. An interrupted wait
    /// (a signal) returns `false`, so the caller can look at what woke it.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let millis = timeout.map_or(-1, |t| i32::try_from(t.as_millis()).unwrap_or(i32::MAX));
        let mut pollfd = libc::pollfd {
            fd: self.ring.as_fd().as_raw_fd(),
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
        self.ring.as_fd()
    }
}
