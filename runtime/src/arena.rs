//! The compile's heap: one thread's allocations, from a reserved region,
//! while it parses, checks, lowers and generates code.
//!
//! A big script's compile makes tens of thousands of small allocations
//! (tokens' strings, tree nodes, instruction vectors) and frees few of them
//! before the process exits. glibc's allocator spent a tenth of that time in
//! `malloc` and `free`, and its heap began with up to 2 MiB of 4 KiB pages,
//! each a fault to map and another to unmap at exit. Here a block is the next
//! bytes of the region (a bump), a freed block waits in a list for the next
//! allocation it fits, and the region is on huge pages after its first MiB
//! (where a small script's compile stays).
//!
//! Only the thread that [`claim`]ed the region allocates from it, so its
//! lists need no lock; every other thread, and that thread after the claim
//! ends, uses the system allocator. A block of the region freed then is not
//! reused: the compile's products live until the process exits anyway.

#![expect(unsafe_code, reason = "an allocator hands out raw memory")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

/// Address space reserved for the region (nothing is mapped until touched).
/// A compile that needs more continues in the system allocator.
const RESERVE: usize = 256 << 20;
const HUGE_PAGE: usize = 2 << 20;
/// The region's first part, on 4 KiB pages: a small script's compile fits
/// in it and leaves no huge page resident while its probes run (with 1 MiB,
/// dropwatch.stp's reached the first huge page: 2.1 MiB more resident).
const SMALL_PART: usize = 2 << 20;
/// Freed blocks up to this size (with their header) wait in a list of their
/// size; larger ones, vectors that grew, in a list of their power of two.
const SMALL_MAX: usize = 1024;
/// Every block's payload is aligned to this, and its header and payload
/// together are a multiple of it.
const GRAIN: usize = 16;
const CLASSES: usize = SMALL_MAX / GRAIN + 1;
/// In front of every block: the bytes it holds.
const HEADER: usize = size_of::<usize>();
/// How many free large blocks of a size's own power of two are looked at for
/// one that holds it.
const LARGE_SEARCH: usize = 8;

/// The bump pointer and the free lists over one region.
///
/// A block's size is in a header in front of it, as glibc keeps it, so that a
/// free need not be told it: taking the size at every free in the program
/// made the binary 130 KB larger. Blocks are laid out in the order they are
/// asked for, so a tree's nodes are near each other.
struct Region {
    /// Where the next block's header goes; one header short of a multiple
    /// of `GRAIN`, so that the payload after it is aligned.
    next: usize,
    end: usize,
    /// Per size class (header and payload over `GRAIN`), the first free
    /// block; each holds the address of the next in its first word.
    free: [usize; CLASSES],
    /// Free larger blocks by the power of two they hold at least, listed the
    /// same way: a vector's old buffer, left when it grew, serves another
    /// vector's growth.
    large: [usize; usize::BITS as usize],
}

impl Region {
    const fn empty() -> Region {
        Region {
            next: 0,
            end: 0,
            free: [0; CLASSES],
            large: [0; usize::BITS as usize],
        }
    }

    fn reset(&mut self, start: usize, end: usize) {
        self.next = start.next_multiple_of(GRAIN) + GRAIN - HEADER;
        self.end = end;
    }

    fn alloc(&mut self, layout: Layout) -> Option<usize> {
        let holds = capacity(layout.size());
        if layout.align() <= GRAIN {
            let found = match holds + HEADER <= SMALL_MAX {
                true => pop(&mut self.free[(holds + HEADER) / GRAIN]),
                false => self.reuse_large(holds),
            };
            if found.is_some() {
                return found;
            }
        }
        let align = layout.align().max(GRAIN);
        let at = (self.next + HEADER + align - 1) & !(align - 1);
        let end = at.checked_add(holds)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        set_header(at, holds);
        Some(at)
    }

    /// A free large block that holds `holds` bytes: the first big enough
    /// among the first few in the list of its own power of two, else the
    /// first of the next power's list (all of which are big enough).
    fn reuse_large(&mut self, holds: usize) -> Option<usize> {
        let mut link = self.large.get_mut(power_down(holds))?;
        for _ in 0..LARGE_SEARCH {
            let block = *link;
            if block == 0 {
                break;
            }
            if header(block) >= holds {
                // SAFETY: a listed block's first word is the next's address.
                *link = unsafe { *(block as *const usize) };
                return Some(block);
            }
            // SAFETY: as above; the link lives in the free block.
            link = unsafe { &mut *(block as *mut usize) };
        }
        pop(&mut self.large[power_up(holds)])
    }

    fn free(&mut self, block: usize) {
        let holds = header(block);
        if block + holds == self.next {
            self.next = block - HEADER;
            return;
        }
        let list = match holds + HEADER <= SMALL_MAX {
            true => self.free.get_mut((holds + HEADER) / GRAIN),
            false => self.large.get_mut(power_down(holds)),
        };
        if let Some(list) = list {
            push(list, block);
        }
    }

    /// Grows or shrinks `block` where it is, if it can: the region's last
    /// block to any size that fits, any block within what it holds.
    fn resize_in_place(&mut self, block: usize, new_size: usize) -> bool {
        let holds = header(block);
        let new = capacity(new_size);
        if block + holds == self.next && block + new <= self.end {
            self.next = block + new;
            set_header(block, new);
            return true;
        }
        new_size <= holds
    }
}

// Nothing here may panic: an allocator that can unwind puts a cleanup path
// at every call that frees memory.

/// What a block for `size` bytes holds: with its header, a multiple of GRAIN.
fn capacity(size: usize) -> usize {
    ((size.max(1) + HEADER + GRAIN - 1) & !(GRAIN - 1)) - HEADER
}

fn header(block: usize) -> usize {
    // SAFETY: every block has its capacity in the word before it.
    unsafe { *((block - HEADER) as *const usize) }
}

fn set_header(block: usize, holds: usize) {
    // SAFETY: the header's bytes are the block's own, before its payload.
    unsafe { *((block - HEADER) as *mut usize) = holds };
}

/// Takes the first block of a free list.
fn pop(list: &mut usize) -> Option<usize> {
    let block = *list;
    if block == 0 {
        return None;
    }
    // SAFETY: a listed block is free and holds at least a word, its first
    // word written by `push`.
    *list = unsafe { *(block as *const usize) };
    Some(block)
}

fn push(list: &mut usize, block: usize) {
    // SAFETY: the block is free and holds at least a word.
    unsafe { *(block as *mut usize) = *list };
    *list = block;
}

/// The power of two at or above `size` (over `SMALL_MAX`), as an exponent.
fn power_up(size: usize) -> usize {
    (usize::BITS - (size - 1).leading_zeros()).min(usize::BITS - 1) as usize
}

/// The power of two at or below `size` (over `SMALL_MAX`), as an exponent.
fn power_down(size: usize) -> usize {
    (usize::BITS - 1 - size.leading_zeros()) as usize
}

/// The global allocator: the claimed region for its owner, the system's
/// allocator for everyone else.
#[derive(Debug)]
pub struct CompileHeap {
    region: UnsafeCell<Region>,
    /// The region's bounds, fixed once reserved (0, 0 before).
    start: AtomicUsize,
    end: AtomicUsize,
    claimed: AtomicBool,
}

// SAFETY: `region` is only touched by the thread whose OWNER flag is set, and
// at most one thread ever sets it (`claimed`).
unsafe impl Sync for CompileHeap {}

thread_local! {
    static OWNER: Cell<bool> = const { Cell::new(false) };
}

fn owner() -> bool {
    OWNER.try_with(Cell::get).unwrap_or(false)
}

impl CompileHeap {
    pub const fn new() -> CompileHeap {
        CompileHeap {
            region: UnsafeCell::new(Region::empty()),
            start: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            claimed: AtomicBool::new(false),
        }
    }

    fn inside(&self, p: *mut u8) -> bool {
        let p = p as usize;
        p >= self.start.load(Relaxed) && p < self.end.load(Relaxed)
    }

    /// The owner's region.
    #[expect(clippy::mut_from_ref, reason = "only the owner thread calls this")]
    fn region(&self) -> &mut Region {
        // SAFETY: called only where `owner()` holds; see `Sync` above.
        unsafe { &mut *self.region.get() }
    }
}

impl Default for CompileHeap {
    fn default() -> Self {
        CompileHeap::new()
    }
}

// SAFETY: blocks from the region are disjoint (bump or a freed block reused
// whole), aligned as asked, and never handed to the system allocator; other
// pointers go to the system allocator, which gave them.
// Not inlined: every allocation in the program calls these, and inlined at
// each call they made the binary 0.8 MB larger.
unsafe impl GlobalAlloc for CompileHeap {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if owner()
            && let Some(at) = self.region().alloc(layout)
        {
            return at as *mut u8;
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.inside(ptr) {
            // SAFETY: not the region's, so the system allocator's.
            unsafe { System.dealloc(ptr, layout) };
        } else if owner() {
            self.region().free(ptr as usize);
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.inside(ptr) {
            // SAFETY: not the region's, so the system allocator's.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if owner() && self.region().resize_in_place(ptr as usize, new_size) {
            return ptr;
        }
        // SAFETY: a valid layout (the caller guarantees new_size for this
        // alignment); the copy stays within both blocks.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

/// While alive, the thread that claimed the region allocates from it (it
/// cannot be sent to another: its drop ends its own thread's claim).
#[derive(Debug)]
pub struct Claim {
    _same_thread: PhantomData<*const ()>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        OWNER.with(|o| o.set(false));
    }
}

/// Makes the calling thread the region's owner, reserving the region first.
/// `None` if another thread has claimed it before, or if the address space
/// cannot be had: the system allocator serves the compile then.
pub fn claim(heap: &CompileHeap) -> Option<Claim> {
    if heap.claimed.swap(true, Relaxed) {
        return None;
    }
    let (start, end) = reserve()?;
    heap.region().reset(start, end);
    heap.start.store(start, Relaxed);
    heap.end.store(end, Relaxed);
    OWNER.with(|o| o.set(true));
    Some(Claim {
        _same_thread: PhantomData,
    })
}

/// `heap`'s region, once claimed, from its start (a huge-page boundary,
/// where its 4 KiB part begins): where a big compile's memory is, to be
/// faulted in ahead of it.
pub fn region(heap: &CompileHeap) -> Option<(usize, usize)> {
    let (start, end) = (heap.start.load(Relaxed), heap.end.load(Relaxed));
    (end > start).then_some((start, end))
}

/// Maps `RESERVE` bytes of address space from a huge-page boundary, the part
/// after `SMALL_PART` advised onto huge pages.
fn reserve() -> Option<(usize, usize)> {
    let len = RESERVE + HUGE_PAGE;
    // SAFETY: a fresh anonymous mapping, used for nothing else; madvise only
    // advises on addresses inside it.
    unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if base == libc::MAP_FAILED {
            return None;
        }
        let huge = (base as usize + SMALL_PART).next_multiple_of(HUGE_PAGE);
        let start = huge - SMALL_PART;
        let end = start + RESERVE;
        // Refused (no THP in this kernel, or disabled): 4 KiB pages.
        let _ = libc::madvise(huge as *mut libc::c_void, end - huge, libc::MADV_HUGEPAGE);
        Some((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A region over 16 KiB of a vector's memory, for the bookkeeping alone;
    /// the vector must outlive it (its buffer stays where it is when moved).
    fn region() -> (Vec<u128>, Region) {
        let mut mem = vec![0u128; 1024];
        let start = mem.as_mut_ptr() as usize;
        let mut r = Region::empty();
        r.reset(start, start + size_of_val(mem.as_slice()));
        (mem, r)
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap_or_else(|e| panic!("layout: {e}"))
    }

    #[test]
    fn a_freed_small_block_serves_the_next_allocation_of_its_size() {
        let (_mem, mut r) = region();
        let a = r.alloc(layout(24, 8)).expect("room for a");
        assert_eq!(a % GRAIN, 0, "payloads are aligned");
        let b = r.alloc(layout(40, 8)).expect("room for b");
        assert_eq!(
            b,
            a + 32,
            "blocks follow each other, each behind its header"
        );
        r.free(a);
        assert_eq!(r.alloc(layout(17, 8)), Some(a), "a's 24 bytes are reused");
        assert_eq!(
            r.alloc(layout(32, 8)),
            Some(b + 48),
            "the list is empty again: 32 bytes come after b"
        );
    }

    #[test]
    fn the_last_block_grows_and_is_given_back_in_place() {
        let (_mem, mut r) = region();
        let start = r.next;
        let v = r.alloc(layout(2000, 8)).expect("room for v");
        assert_eq!(v, start + HEADER, "the header comes first");
        assert!(r.resize_in_place(v, 6000), "the last block grows");
        let w = r.alloc(layout(1500, 8)).expect("room for w");
        assert!(w > v + 6000, "w comes after v's 6,000 bytes");
        assert!(
            !r.resize_in_place(v, 7000),
            "a block with another after it cannot grow"
        );
        assert!(r.resize_in_place(v, 3000), "but it can shrink");
        r.free(w);
        r.free(v);
        assert_eq!(r.next, start, "freeing the last blocks moves the bump back");
    }

    #[test]
    fn a_large_block_serves_a_later_allocation_it_can_hold() {
        let (_mem, mut r) = region();
        let old = r.alloc(layout(4096, 8)).expect("room for a grown vector");
        let _after = r.alloc(layout(2048, 8)).expect("room");
        r.free(old);
        let top = r.next;
        assert_eq!(
            r.alloc(layout(5000, 8)),
            Some(top + HEADER),
            "5,000 bytes do not fit in it"
        );
        assert_eq!(
            r.alloc(layout(3000, 8)),
            Some(old),
            "3,000 bytes do: their power of two up is what it holds at least"
        );
    }

    #[test]
    fn a_large_block_of_the_same_power_of_two_serves_a_smaller_request() {
        let (_mem, mut r) = region();
        let small = r.alloc(layout(2100, 8)).expect("room");
        let big = r.alloc(layout(3000, 8)).expect("room");
        let _after = r.alloc(layout(16, 8)).expect("room");
        r.free(big);
        r.free(small);
        assert_eq!(
            r.alloc(layout(2500, 8)),
            Some(big),
            "the 2,100-byte block, first in the list, is too small; the 3,000-byte one holds it"
        );
        assert_eq!(r.alloc(layout(2000, 8)), Some(small));
    }

    #[test]
    fn alignment_is_honoured_and_the_end_is_not_passed() {
        let (_mem, mut r) = region();
        let _ = r.alloc(layout(8, 8)).expect("room");
        let aligned = r.alloc(layout(64, 256)).expect("room for an aligned block");
        assert_eq!(aligned % 256, 0, "256-byte alignment");
        let fits = r.end - r.next - 2 * HEADER;
        assert_eq!(r.alloc(layout(fits + 1, 8)), None, "one byte too many");
        assert!(r.alloc(layout(fits, 8)).is_some(), "exactly what is left");
        assert_eq!(r.alloc(layout(1, 8)), None, "nothing left");
    }

    #[test]
    fn only_the_claiming_thread_allocates_from_the_region() {
        let heap: &'static CompileHeap = Box::leak(Box::new(CompileHeap::new()));
        let claim = claim(heap).expect("the first claim gets the region");
        assert!(claim_again_fails(heap), "a second claim is refused");
        let l = layout(48, 8);
        // SAFETY: blocks from this heap, freed with their layouts.
        unsafe {
            let mine = heap.alloc(l);
            assert!(heap.inside(mine), "the owner's block is the region's");
            let theirs = std::thread::spawn(move || heap.alloc(l) as usize)
                .join()
                .unwrap_or_else(|_| panic!("the other thread panicked"));
            assert!(
                !heap.inside(theirs as *mut u8),
                "another thread's block is the system allocator's"
            );
            heap.dealloc(theirs as *mut u8, l);
            let grown = heap.realloc(mine, l, 4096);
            assert!(
                heap.inside(grown),
                "the owner's block grows within the region"
            );
            drop(claim);
            let after = heap.alloc(l);
            assert!(
                !heap.inside(after),
                "after the claim, the system allocator's"
            );
            let moved = heap.realloc(grown, layout(4096, 8), 8192);
            assert!(
                !heap.inside(moved),
                "a region block grown after the claim moves out"
            );
            heap.dealloc(moved, layout(8192, 8));
            heap.dealloc(after, l);
        }
    }

    fn claim_again_fails(heap: &CompileHeap) -> bool {
        claim(heap).is_none()
    }
}
