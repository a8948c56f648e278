//! The per-CPU binary ring buffer of an instance: pages read from
//! `per_cpu/cpuN/trace_pipe_raw` (each read consumes one page) and split into
//! records with their absolute timestamps, as the kernel's ring buffer lays
//! them out (`events/header_page`, `events/header_event`).

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// `type_len` values of the 32-bit event header.
const PADDING: u32 = 29;
const TIME_EXTEND: u32 = 30;
const TIME_STAMP: u32 = 31;
/// Flags in a page's `commit` word.
const MISSED_EVENTS: u64 = 1 << 31;
const MISSED_STORED: u64 = 1 << 30;

/// Where a page's parts are (`events/header_page`).
#[derive(Clone, Copy, Debug)]
pub struct PageLayout {
    pub commit_size: usize,
    pub data_offset: usize,
    pub page_size: usize,
}

impl PageLayout {
    /// Reads `events/header_page`; the usual 64-bit layout if it cannot.
    pub fn read(tracefs: &Path) -> PageLayout {
        let mut l = PageLayout {
            commit_size: 8,
            data_offset: 16,
            page_size: 4096,
        };
        let Ok(text) = std::fs::read_to_string(tracefs.join("events/header_page")) else {
            return l;
        };
        let num = |line: &str, key: &str| -> Option<usize> {
            let at = line.find(key)? + key.len();
            line[at..].split(';').next()?.trim().parse().ok()
        };
        for line in text.lines() {
            if line.contains(" commit;") {
                l.commit_size = num(line, "size:").unwrap_or(8);
            } else if line.contains(" data;")
                && let (Some(o), Some(s)) = (num(line, "offset:"), num(line, "size:"))
            {
                l.data_offset = o;
                l.page_size = o + s;
            }
        }
        l
    }
}

/// One CPU's `trace_pipe_raw`, read without blocking.
#[derive(Debug)]
pub struct CpuReader {
    pub cpu: u32,
    file: File,
    page: Vec<u8>,
}

/// One record: its CPU, its time, and where its bytes are in `Batch::bytes`.
#[derive(Clone, Copy, Debug)]
pub struct Record {
    pub time: u64,
    pub cpu: u32,
    pub start: usize,
    pub len: usize,
}

/// Records read in one round, from every CPU.
#[derive(Debug, Default)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub records: Vec<Record>,
    /// Events the kernel said it dropped between pages.
    pub missed: u64,
}

impl Batch {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }

    pub fn data(&self, r: &Record) -> &[u8] {
        &self.bytes[r.start..r.start + r.len]
    }
}

impl CpuReader {
    pub fn open(instance: &Path, cpu: u32, layout: PageLayout) -> std::io::Result<CpuReader> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(instance.join(format!("per_cpu/cpu{cpu}/trace_pipe_raw")))?;
        Ok(CpuReader {
            cpu,
            file,
            page: vec![0; layout.page_size],
        })
    }

    /// Reads every page waiting into `batch`; how many pages were read.
    pub fn read_all(&mut self, layout: PageLayout, batch: &mut Batch) -> std::io::Result<usize> {
        let mut pages = 0;
        loop {
            match self.file.read(&mut self.page) {
                Ok(0) => return Ok(pages),
                Ok(n) => {
                    pages += 1;
                    decode_page(&self.page[..n], self.cpu, layout, batch);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(pages),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.file.as_fd()
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize, size: usize) -> Option<u64> {
    let mut buf = [0u8; 8];
    buf[..size.min(8)].copy_from_slice(b.get(at..at + size.min(8))?);
    Some(u64::from_le_bytes(buf))
}

/// Splits one page into records, appending them to `batch`.
pub fn decode_page(page: &[u8], cpu: u32, layout: PageLayout, batch: &mut Batch) {
    let Some(mut time) = u64_at(page, 0, 8) else {
        return;
    };
    let Some(commit) = u64_at(page, 8, layout.commit_size) else {
        return;
    };
    let used = (commit & !(MISSED_EVENTS | MISSED_STORED) & 0xffff_ffff) as usize;
    let start = layout.data_offset;
    let end = (start + used).min(page.len());
    if commit & MISSED_STORED != 0
        && let Some(n) = u64_at(page, end, 8)
    {
        batch.missed += n;
    } else if commit & MISSED_EVENTS != 0 {
        batch.missed += 1;
    }
    let mut at = start;
    while at + 4 <= end {
        let Some(header) = u32_at(page, at) else {
            return;
        };
        let type_len = header & 0x1f;
        let delta = u64::from(header >> 5);
        let array0 = u32_at(page, at + 4).unwrap_or(0) as usize;
        match type_len {
            PADDING => {
                if delta == 0 {
                    // The rest of the page is unused.
                    return;
                }
                at += 4 + array0;
            }
            TIME_EXTEND => {
                time += delta + ((array0 as u64) << 27);
                at += 8;
            }
            TIME_STAMP => {
                // An absolute time stamp (the top bits kept from the page's).
                let stamp = delta + ((array0 as u64) << 27);
                time = (time & !((1u64 << 59) - 1)) | stamp;
                at += 8;
            }
            0 => {
                time += delta;
                let len = array0.saturating_sub(4);
                push(batch, page, at + 8, len, end, time, cpu);
                at += 4 + array0.max(4);
            }
            n => {
                time += delta;
                let len = n as usize * 4;
                push(batch, page, at + 4, len, end, time, cpu);
                at += 4 + len;
            }
        }
    }
}

fn push(batch: &mut Batch, page: &[u8], at: usize, len: usize, end: usize, time: u64, cpu: u32) {
    if at + len > end {
        return;
    }
    let start = batch.bytes.len();
    batch.bytes.extend_from_slice(&page[at..at + len]);
    batch.records.push(Record {
        time,
        cpu,
        start,
        len,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(events: &[(u32, &[u8])]) -> Vec<u8> {
        let mut data = Vec::new();
        for (delta, bytes) in events {
            let words = bytes.len().div_ceil(4) as u32;
            data.extend_from_slice(&((delta << 5) | words).to_le_bytes());
            let mut b = bytes.to_vec();
            b.resize(words as usize * 4, 0);
            data.extend_from_slice(&b);
        }
        let mut p = 1000u64.to_le_bytes().to_vec();
        p.extend_from_slice(&(data.len() as u64).to_le_bytes());
        p.extend_from_slice(&data);
        p.resize(4096, 0);
        p
    }

    #[test]
    fn records_carry_their_absolute_times_and_bytes() {
        let l = PageLayout {
            commit_size: 8,
            data_offset: 16,
            page_size: 4096,
        };
        let mut b = Batch::default();
        decode_page(&page(&[(5, b"abcd"), (7, b"efghijkl")]), 1, l, &mut b);
        assert_eq!(b.records.len(), 2);
        assert_eq!((b.records[0].time, b.records[1].time), (1005, 1012));
        assert_eq!(b.data(&b.records[1]), b"efghijkl");
        assert_eq!(b.records[1].cpu, 1);
        assert_eq!(b.missed, 0);
    }

    #[test]
    fn a_long_record_keeps_its_length_in_the_first_word() {
        let l = PageLayout {
            commit_size: 8,
            data_offset: 16,
            page_size: 4096,
        };
        let mut data = Vec::new();
        data.extend_from_slice(&(3u32 << 5).to_le_bytes());
        data.extend_from_slice(&(4u32 + 8).to_le_bytes());
        data.extend_from_slice(b"12345678");
        let mut p = 0u64.to_le_bytes().to_vec();
        p.extend_from_slice(&(data.len() as u64 | MISSED_EVENTS).to_le_bytes());
        p.extend_from_slice(&data);
        let mut b = Batch::default();
        decode_page(&p, 0, l, &mut b);
        assert_eq!(b.data(&b.records[0]), b"12345678");
        assert_eq!(b.records[0].time, 3);
        assert_eq!(b.missed, 1);
    }
}
