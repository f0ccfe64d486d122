//! A counting global allocator for the heap-per-connection examples: live
//! bytes, and live allocations by size, so an example can say what one
//! connection keeps and in which pieces.
//!
//! An example installs it with
//! `#[global_allocator] static GLOBAL: Counting = Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// The system allocator, counting what is live.
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Live allocations by size (exact up to 4 KiB, one bucket above).
static BY_SIZE: [AtomicIsize; 4097] = [const { AtomicIsize::new(0) }; 4097];

fn bucket(size: usize) -> &'static AtomicIsize {
    &BY_SIZE[size.min(4096)]
}

fn signed(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

// SAFETY: every call goes to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(signed(layout.size()), Ordering::Relaxed);
        bucket(layout.size()).fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(signed(layout.size()), Ordering::Relaxed);
        bucket(layout.size()).fetch_sub(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Heap bytes live now.
pub fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Live allocations by size now (index = size, the last bucket = larger).
pub fn by_size() -> Vec<isize> {
    BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

/// Prints the allocation sizes that grew between two [`by_size`]
/// snapshots, per one of `n` connections: what one connection keeps.
pub fn print_growth(before: &[isize], after: &[isize], n: isize) {
    for (size, (b, a)) in before.iter().zip(after).enumerate() {
        let grown = (a - b) as f64 / n.max(1) as f64;
        if grown >= 0.5 {
            println!("  {size:>5} B x {grown:.2}");
        }
    }
}
