//! Kernel locks and wait queues.
//!
//! Two tiers, as in NetBSD (spin mutexes vs. sleeping waits):
//!
//! - [`Mutex`] is a spin lock for short critical sections. No hypercall that
//!   may block is made while one is held (the `hyper` blocking contract), so
//!   a holder always makes progress; contenders spin briefly and then offer
//!   the processor to others.
//! - A thread that must wait for a condition sleeps: it registers its host
//!   thread's [`Parker`] on one or more [`WaitQueue`]s and on its kernel's
//!   sleeper list, re-checks the condition, and parks. Whoever changes the
//!   condition calls [`WaitQueue::wake_all`]. Halting a kernel unparks every
//!   sleeper, whose wait then fails with [`crate::Errno::ESHUTDOWN`]. The
//!   sleeping loop itself is [`crate::Kernel::wait`].

use alloc::sync::Arc;
use alloc::vec::Vec;

use hyper::Parker;

/// A spin lock around `T`. See the module docs for when it may be held.
pub type Mutex<T> = spin::Mutex<T>;

/// The guard of a [`Mutex`].
pub type MutexGuard<'a, T> = spin::MutexGuard<'a, T>;

/// A reader-writer spin lock around `T`.
pub type RwLock<T> = spin::RwLock<T>;

/// Threads waiting for something to change.
#[derive(Default)]
pub struct WaitQueue {
    waiters: Mutex<Vec<Arc<dyn Parker>>>,
}

impl WaitQueue {
    /// An empty queue (allocates nothing until a thread waits).
    pub const fn new() -> Self {
        WaitQueue {
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// Wakes every waiting thread. Cheap when nobody waits.
    pub fn wake_all(&self) {
        let mut w = self.waiters.lock();
        if w.is_empty() {
            return;
        }
        let taken = core::mem::take(&mut *w);
        drop(w);
        for p in taken {
            p.unpark();
        }
    }

    /// Whether any thread waits here.
    pub fn has_waiters(&self) -> bool {
        !self.waiters.lock().is_empty()
    }

    pub(crate) fn register(&self, p: &Arc<dyn Parker>) {
        self.waiters.lock().push(p.clone());
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.waiters.lock().retain(|p| p.id() != id);
    }
}

impl core::fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WaitQueue")
            .field("waiters", &self.waiters.lock().len())
            .finish()
    }
}
