//! Kernel locks and wait queues.
//!
//! Three tiers, as in NetBSD (spin mutexes, adaptive mutexes, sleeping
//! waits):
//!
//! - [`SpinMutex`] and [`SpinRwLock`] are plain spin locks, for sections of
//!   a few hundred nanoseconds that make **no hypercall** (a table insert, a
//!   counter). Contenders never give up the processor, so nothing slow may
//!   happen under them.
//! - [`SleepMutex`] and [`SleepRwLock`] are adaptive: a contender spins a
//!   little (only while spinning has recently paid off, and only while
//!   fewer threads spin than the platform has processors, see [`Sched`]),
//!   then sleeps on its host thread's [`Parker`]; a release wakes one
//!   sleeper. They are the locks for anything held longer, or across a
//!   hypercall that may block; a holder about to block says so with
//!   [`SleepMutexGuard::blocking`], and contenders then sleep at once. The
//!   reader-writer lock prefers writers, so readers cannot starve one.
//! - A thread that must wait for a condition sleeps: it registers its host
//!   thread's parker on one or more [`WaitQueue`]s and with its kernel (so
//!   halt and cancellation can find it), re-checks the condition, and
//!   parks. Whoever changes the condition calls [`WaitQueue::wake_all`] or
//!   [`WaitQueue::wake_one`]. The sleeping loop is [`crate::Kernel::wait`].
//!
//! Every spin goes through the platform ([`hyper::Hyper::relax`]) and is
//! bounded, so a platform that runs one thread at a time (a deterministic
//! simulator, a unikernel) can always schedule around it; with the
//! parameter `RUMP_SPIN=0` nothing spins at all.

mod sched;
mod sleep;
mod sleep_rw;

use alloc::collections::VecDeque;
use alloc::sync::Arc;

use hyper::Parker;

pub use sched::{Sched, SpinSlot};
pub use sleep::{RawSleepMutex, SleepMutex, SleepMutexGuard};
pub use sleep_rw::{RawSleepRwLock, SleepRwLock, SleepRwLockReadGuard, SleepRwLockWriteGuard};

/// A spin lock around `T`, for short sections without hypercalls. See the
/// module docs.
pub type SpinMutex<T> = spin::Mutex<T>;

/// The guard of a [`SpinMutex`].
pub type SpinMutexGuard<'a, T> = spin::MutexGuard<'a, T>;

/// A reader-writer spin lock around `T` (readers may starve writers; use
/// it only where writes are rare and short).
pub type SpinRwLock<T> = spin::RwLock<T>;

/// Threads waiting for something to change: the same queue as a lock's
/// sleepers ([`Sleepers`]), so a waker with nobody to wake takes no lock.
#[derive(Default)]
pub struct WaitQueue {
    waiters: Sleepers,
}

impl WaitQueue {
    /// An empty queue (allocates nothing until a thread waits).
    pub const fn new() -> Self {
        WaitQueue {
            waiters: Sleepers::new(),
        }
    }

    /// Wakes every waiting thread. Cheap when nobody waits.
    pub fn wake_all(&self) {
        if self.has_waiters() {
            self.waiters.wake_all();
        }
    }

    /// Wakes the longest-waiting thread, if any. For conditions only one
    /// waiter can consume (a connection to accept, a lock to take); the
    /// woken thread must wake the next one if it leaves the condition true.
    pub fn wake_one(&self) {
        if self.has_waiters() {
            self.waiters.wake_one();
        }
    }

    /// Whether any thread waits here. Ordered after the caller's earlier
    /// stores (a fence): a waiter that registered and then looked at the
    /// condition either saw the change, or is seen here.
    pub fn has_waiters(&self) -> bool {
        self.waiters.any_after_release()
    }

    pub(crate) fn register(&self, p: &Arc<dyn Parker>) {
        self.waiters.push(p);
    }

    /// Whether the thread with parker `id` is still queued here (a wake-up
    /// takes it off the queue).
    pub(crate) fn is_registered(&self, id: u64) -> bool {
        self.waiters.contains(id)
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.waiters.withdraw(id);
    }
}

impl core::fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WaitQueue")
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

/// The sleepers of a lock: parkers in arrival order, with their count
/// readable without the lock (the fast path of a release reads only the
/// count).
#[derive(Default)]
pub(crate) struct Sleepers {
    queue: SpinMutex<VecDeque<Arc<dyn Parker>>>,
    count: core::sync::atomic::AtomicUsize,
}

impl Sleepers {
    pub(crate) const fn new() -> Sleepers {
        Sleepers {
            queue: SpinMutex::new(VecDeque::new()),
            count: core::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Queues `p`, then orders the registration before the caller's next
    /// look at the lock word (pairs with [`Sleepers::any_after_release`]).
    pub(crate) fn push(&self, p: &Arc<dyn Parker>) {
        let mut q = self.queue.lock();
        q.push_back(p.clone());
        self.count
            .store(q.len(), core::sync::atomic::Ordering::SeqCst);
        drop(q);
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    }

    /// Removes `id` if it is still queued (after a wake-up that was not a
    /// pop, or after taking the lock without sleeping).
    pub(crate) fn withdraw(&self, id: u64) {
        let mut q = self.queue.lock();
        let before = q.len();
        q.retain(|p| p.id() != id);
        if q.len() != before {
            self.count
                .store(q.len(), core::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Called right after the lock word was released: whether anyone may
    /// sleep. Either this sees a sleeper's registration, or that sleeper's
    /// re-check sees the lock free (the two SeqCst fences forbid both
    /// missing each other).
    pub(crate) fn any_after_release(&self) -> bool {
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.count.load(core::sync::atomic::Ordering::SeqCst) != 0
    }

    /// Wakes the longest sleeper.
    pub(crate) fn wake_one(&self) {
        let mut q = self.queue.lock();
        let next = q.pop_front();
        self.count
            .store(q.len(), core::sync::atomic::Ordering::SeqCst);
        drop(q);
        if let Some(p) = next {
            p.unpark();
        }
    }

    /// Wakes every sleeper.
    pub(crate) fn wake_all(&self) {
        let mut q = self.queue.lock();
        let all = core::mem::take(&mut *q);
        self.count.store(0, core::sync::atomic::Ordering::SeqCst);
        drop(q);
        for p in all {
            p.unpark();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.count.load(core::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the parker `id` is queued.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.queue.lock().iter().any(|p| p.id() == id)
    }
}
