//! A global allocator that counts the live heap bytes the program has
//! requested, for the benchmarks and examples that print what a structure
//! holds. Included by path (`#[path = ...] mod counting;`), it installs
//! itself as the including binary's global allocator.
//!
//! The counting allocator is `cap`'s, so that the project itself holds no
//! `unsafe` code.

use std::alloc::System;

use cap::Cap;

#[global_allocator]
static GLOBAL: Cap<System> = Cap::new(System, usize::MAX);

/// The heap bytes requested and not yet freed, now. Signed, so that the
/// difference of two readings may be negative when memory was freed
/// between them.
pub fn live() -> isize {
    GLOBAL.allocated() as isize
}
