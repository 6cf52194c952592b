//! A hint to the processor: load a value's cache line now, because it will be read
//! soon. The run loop gives it for the state the next events in the event list
//! will touch, so that their cache misses overlap instead of following one another.
//! It changes nothing but timing; on targets without the instruction it does nothing.

/// Hints the cache line holding `address`.
#[inline(always)]
fn hint(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and reads nothing the program sees, whatever
    // the address; callers pass addresses of live values besides.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(address as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// Hints that `slice[i]` will be read soon; does nothing when `i` is out of range.
#[inline(always)]
pub fn prefetch<T>(slice: &[T], i: usize) {
    if let Some(x) = slice.get(i) {
        hint(x as *const T as *const u8);
    }
}

/// Hints that all of `slice[i]` will be read soon: every cache line of a value
/// larger than one; nothing when `i` is out of range.
#[inline(always)]
pub fn prefetch_whole<T>(slice: &[T], i: usize) {
    if let Some(x) = slice.get(i) {
        let start = x as *const T as *const u8;
        let mut line = 0;
        // From the line `x` starts in to the one it ends in.
        while line < (start as usize % 64) + std::mem::size_of::<T>() {
            hint(start.wrapping_add(line));
            line += 64;
        }
    }
}

/// Hints that `slice[a..b]` will be read soon: one hint per 64-byte cache line.
#[inline(always)]
pub fn prefetch_range<T>(slice: &[T], a: usize, b: usize) {
    let step = (64 / std::mem::size_of::<T>().max(1)).max(1);
    let mut i = a;
    while i < b {
        prefetch(slice, i);
        i += step;
    }
    if b > a {
        prefetch(slice, b - 1);
    }
}

/// Hints row `i` of a compressed-sparse-row list (`items[offsets[i]..offsets[i + 1]]`),
/// reading its bounds: call it once an earlier [`prefetch`] of `offsets[i]` has
/// made them cheap.
#[inline(always)]
pub fn prefetch_row<T>(offsets: &[u32], items: &[T], i: usize) {
    if let (Some(&a), Some(&b)) = (offsets.get(i), offsets.get(i + 1)) {
        prefetch_range(items, a as usize, b as usize);
    }
}
