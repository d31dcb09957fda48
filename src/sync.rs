//! Locking that survives a panic elsewhere.
//!
//! Every mutex in muster guards state that each critical section leaves
//! whole (a value replaced, a counter added to), so a panic while one was
//! held leaves nothing half-written, and refusing the lock afterwards
//! would turn one failed actor into a failure of everything that shares
//! the state.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, taking it as it is if a panic poisoned it.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
