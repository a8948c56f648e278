//! The compile's heap: one thread's allocations, from a reserved region,
//! while it parses, checks, lowers and generates code.
//!
//! A big script's compile makes tens of thousands of small allocations
//! (tokens' strings, tree nodes, instruction vectors) and frees few of them
//! before the process exits. glibc's allocator spent a tenth of that time in
//! `malloc` and `free`, and its heap began with up to 2 MiB of 4 KiB pages,
//! each a fault to map and another to unmap at exit. Here a small block is
//! the next of its size in a span of such blocks, a large one the next bytes
//! of the region; a freed block waits in a list for the next allocation its
//! size fits; and the region is on huge pages after its first MiB (where a
//! small script's compile stays).
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
/// in it and leaves no huge page resident while its probes run.
const SMALL_PART: usize = 1 << 20;
/// Blocks up to this size are small: each comes from a span of blocks of its
/// size, and waits in that size's list once freed. Larger ones are vectors
/// that grew, each behind a header that holds its size.
const SMALL_MAX: usize = 1024;
/// Every block's size is a multiple of this, which is also its alignment.
const GRAIN: usize = 16;
const CLASSES: usize = SMALL_MAX / GRAIN + 1;
const PAGE: usize = 4 << 10;
/// A span of small blocks: whole pages, taken from the bump.
const SPAN: usize = 16 << 10;
const HEADER: usize = GRAIN;

/// The bump pointer and the free lists over one region.
///
/// A block's size is found from its address (the size class of its page, or
/// a large block's header), not from what the caller says when it frees it:
/// then the size need not be passed at every `free` in the program, which
/// made the binary 130 KB larger.
struct Region {
    start: usize,
    next: usize,
    end: usize,
    /// Per size class (`size / GRAIN`): the first free block (each free block
    /// holds the address of the next in its first word), and the unused part
    /// of the class's latest span.
    free: [usize; CLASSES],
    fresh: [(usize, usize); CLASSES],
    /// Free large blocks by the power of two their size is at least, listed
    /// the same way: a vector's old buffer, left when it grew, serves another
    /// vector's growth.
    large: [usize; usize::BITS as usize],
    /// Each page's size class; 0 for the pages of large blocks.
    classes: [u8; RESERVE / PAGE],
}

impl Region {
    const fn empty() -> Region {
        Region {
            start: 0,
            next: 0,
            end: 0,
            free: [0; CLASSES],
            fresh: [(0, 0); CLASSES],
            large: [0; usize::BITS as usize],
            classes: [0; RESERVE / PAGE],
        }
    }

    fn reset(&mut self, start: usize, end: usize) {
        self.start = start;
        self.next = start;
        self.end = end.min(start + RESERVE);
    }

    fn alloc(&mut self, layout: Layout) -> Option<usize> {
        let size = rounded(layout.size());
        if layout.align() <= GRAIN && size <= SMALL_MAX {
            return self.alloc_small(size / GRAIN);
        }
        self.alloc_large(size, layout.align())
    }

    fn alloc_small(&mut self, class: usize) -> Option<usize> {
        let size = class * GRAIN;
        if let Some(block) = pop(self.free.get_mut(class)?) {
            return Some(block);
        }
        let (at, limit) = *self.fresh.get(class)?;
        if at + size <= limit && at != 0 {
            self.fresh[class].0 = at + size;
            return Some(at);
        }
        let span = self.start + (self.next - self.start).next_multiple_of(PAGE);
        if span + SPAN > self.end {
            return None;
        }
        let first = (span - self.start) / PAGE;
        for page in self.classes.get_mut(first..first + SPAN / PAGE)? {
            *page = class as u8;
        }
        self.next = span + SPAN;
        self.fresh[class] = (span + size, span + SPAN);
        Some(span)
    }

    fn alloc_large(&mut self, size: usize, align: usize) -> Option<usize> {
        if align <= GRAIN
            && let Some(block) = pop(&mut self.large[power_up(size)])
        {
            return Some(block);
        }
        let align = align.max(GRAIN);
        let at = (self.next + HEADER + align - 1) & !(align - 1);
        let end = at.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        set_header(at, size);
        Some(at)
    }

    /// The size class of the page `block` is in; 0 for a large block.
    fn class_of(&self, block: usize) -> u8 {
        let page = (block - self.start) / PAGE;
        self.classes.get(page).copied().unwrap_or(0)
    }

    fn free(&mut self, block: usize) {
        let class = usize::from(self.class_of(block));
        if class != 0 {
            if let Some(list) = self.free.get_mut(class) {
                push(list, block);
            }
            return;
        }
        let size = header(block);
        if block + size == self.next {
            self.next = block - HEADER;
        } else if let Some(list) = self.large.get_mut(power_down(size)) {
            push(list, block);
        }
    }

    /// Grows or shrinks `block` where it is, if it can: a small block within
    /// its size class, a large one that is the region's last or shrinks.
    fn resize_in_place(&mut self, block: usize, new_size: usize) -> bool {
        let new = rounded(new_size);
        let class = usize::from(self.class_of(block));
        if class != 0 {
            return new <= class * GRAIN;
        }
        let size = header(block);
        if block + size == self.next && block + new <= self.end {
            self.next = block + new;
            set_header(block, new);
            return true;
        }
        new <= size
    }
}

// Nothing here may panic: an allocator that can unwind puts a cleanup path
// at every call that frees memory.

fn header(block: usize) -> usize {
    // SAFETY: every large block has its size in the word before it.
    unsafe { *((block - size_of::<usize>()) as *const usize) }
}

fn set_header(block: usize, size: usize) {
    // SAFETY: the header's bytes are the block's own, before its start.
    unsafe { *((block - size_of::<usize>()) as *mut usize) = size };
}

/// Takes the first block of a free list.
fn pop(list: &mut usize) -> Option<usize> {
    let block = *list;
    if block == 0 {
        return None;
    }
    // SAFETY: a listed block is free and at least GRAIN bytes, its first
    // word written by `push`.
    *list = unsafe { *(block as *const usize) };
    Some(block)
}

fn push(list: &mut usize, block: usize) {
    // SAFETY: the block is free and at least GRAIN bytes.
    unsafe { *(block as *mut usize) = *list };
    *list = block;
}

fn rounded(size: usize) -> usize {
    (size.max(1) + GRAIN - 1) & !(GRAIN - 1)
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

/// The part of `heap`'s region on huge pages, once claimed: where a big
/// compile's memory is, to be faulted in ahead of it.
pub fn huge_part(heap: &CompileHeap) -> Option<(usize, usize)> {
    let (start, end) = (heap.start.load(Relaxed), heap.end.load(Relaxed));
    (end > start + SMALL_PART).then_some((start + SMALL_PART, end))
}

/// Maps `RESERVE` bytes of address space whose part after `SMALL_PART` starts
/// on a huge-page boundary and is advised onto huge pages.
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

    /// A region over a vector's memory, for the bookkeeping alone.
    fn region(bytes: &mut [u128]) -> Box<Region> {
        let start = bytes.as_mut_ptr() as usize;
        let mut r = Box::new(Region::empty());
        r.reset(start, start + size_of_val(bytes));
        r
    }

    fn memory() -> Vec<u128> {
        vec![0u128; (4 * SPAN) / size_of::<u128>()]
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap_or_else(|e| panic!("layout: {e}"))
    }

    #[test]
    fn a_freed_small_block_serves_the_next_allocation_of_its_size() {
        let mut mem = memory();
        let mut r = region(&mut mem);
        let a = r.alloc(layout(24, 8)).expect("room for a");
        let b = r.alloc(layout(40, 8)).expect("room for b");
        assert_eq!(b, a + SPAN, "each size has a span of its own");
        let c = r.alloc(layout(30, 8)).expect("room for c");
        assert_eq!(c, a + 32, "blocks of a size follow each other in its span");
        r.free(a);
        assert_eq!(r.alloc(layout(17, 8)), Some(a), "a's 32 bytes are reused");
        assert_eq!(
            r.alloc(layout(32, 8)),
            Some(c + 32),
            "the list is empty again"
        );
        r.free(b);
        assert_eq!(
            r.alloc(layout(48, 8)),
            Some(b),
            "b's class is found from its page"
        );
    }

    #[test]
    fn a_span_full_of_blocks_is_followed_by_another() {
        let mut mem = memory();
        let mut r = region(&mut mem);
        let blocks: Vec<usize> = (0..SPAN / 512 + 1)
            .map(|_| r.alloc(layout(512, 8)).expect("room"))
            .collect();
        let last = *blocks.last().expect("blocks");
        assert_eq!(
            last,
            blocks[0] + SPAN,
            "the first span holds {} blocks",
            SPAN / 512
        );
        r.free(last);
        r.free(blocks[3]);
        assert_eq!(r.alloc(layout(500, 8)), Some(blocks[3]));
        assert_eq!(r.alloc(layout(500, 8)), Some(last));
    }

    #[test]
    fn the_last_large_block_grows_and_is_given_back_in_place() {
        let mut mem = memory();
        let mut r = region(&mut mem);
        let start = r.next;
        let v = r.alloc(layout(2000, 8)).expect("room for v");
        assert_eq!(v, start + HEADER, "the header comes first");
        assert!(r.resize_in_place(v, 6000), "the last block grows");
        assert_eq!(r.next, v + 6000);
        let w = r.alloc(layout(1500, 8)).expect("room for w");
        assert!(
            !r.resize_in_place(v, 7000),
            "a block with another after it cannot grow"
        );
        assert!(r.resize_in_place(v, 3000), "but it can shrink");
        r.free(w);
        assert_eq!(
            r.next,
            v + 6000,
            "freeing the last block moves the bump back"
        );
        r.free(v);
        assert_eq!(r.next, start);
    }

    #[test]
    fn a_large_block_serves_a_later_allocation_it_can_hold() {
        let mut mem = memory();
        let mut r = region(&mut mem);
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
            "3,000 bytes do: their power of two up is its size"
        );
    }

    #[test]
    fn alignment_is_honoured_and_the_end_is_not_passed() {
        let mut mem = memory();
        let mut r = region(&mut mem);
        let _ = r.alloc(layout(8, 8)).expect("room");
        let aligned = r.alloc(layout(64, 256)).expect("room for an aligned block");
        assert_eq!(aligned % 256, 0, "256-byte alignment");
        let left = r.end - r.next - HEADER;
        assert_eq!(r.alloc(layout(left + 1, 8)), None, "one byte too many");
        assert!(r.alloc(layout(left, 8)).is_some(), "exactly what is left");
        assert_eq!(r.alloc(layout(160, 8)), None, "no room for another span");
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
