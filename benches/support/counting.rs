//! A global allocator that counts the live heap bytes the program has
//! requested, for the benchmarks and examples that print what a structure
//! holds. Included by path (`#[path = ...] mod counting;`), it installs
//! itself as the including binary's global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Passes every call to `System`, counting the bytes in use.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed unchanged to `System`, which meets the
// `GlobalAlloc` contract; the bookkeeping around it only updates an atomic,
// so it neither allocates (no reentry) nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: our caller guarantees `layout` has a non-zero size, which is
        // all `System.alloc` requires.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: our caller guarantees `ptr` is a live block this allocator
        // returned for `layout`, and this allocator returns only blocks that
        // `System` allocated for that same layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: our caller guarantees `ptr` is a live block this allocator
        // returned for `layout` (so a `System` block of that layout, as
        // above), that `new_size` is non-zero and that it does not overflow
        // `isize` when rounded up to the alignment: `System.realloc`'s terms.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        // A failed realloc leaves the old block in place: nothing changed.
        if !new.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The heap bytes requested and not yet freed, now. Signed, so that the
/// difference of two readings may be negative when memory was freed
/// between them.
pub fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}
