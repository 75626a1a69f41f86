//! [`SleepMutex`]: an adaptive mutex in safe code.
//!
//! Built from three parts, none of them unsafe: a `spin::Mutex<T>` owns the
//! data (so a guard hands out `&mut T` without an `UnsafeCell` of ours), a
//! queue of sleeping threads' [`hyper::Parker`]s, and the kernel's
//! [`Sched`] for spin rationing. Acquisition tries the lock, spins a little
//! if [`Sched::try_spin`] grants a slot and the holder has not announced a
//! blocking hypercall, then queues itself, re-checks and parks. Release
//! unlocks first and then wakes one sleeper (the guard's fields drop in
//! that order). A running thread may take the lock ahead of a woken one
//! (barging, as NetBSD's mutexes allow): throughput over strict FIFO.

use alloc::sync::Arc;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering};

use super::sched::{Sched, SpinBudget};
use super::Sleepers;

/// A mutex whose contenders spin briefly, then sleep. See the module docs.
pub struct SleepMutex<T> {
    raw: RawSleepMutex<T>,
    sched: Arc<Sched>,
}

/// A [`SleepMutex`] that does not keep its [`Sched`]: the caller passes it
/// to [`RawSleepMutex::lock`]. For locks embedded in many small objects
/// (every open file's offset), where a pointer per lock would add up.
pub struct RawSleepMutex<T> {
    data: spin::Mutex<T>,
    sleepers: Sleepers,
    /// Non-zero while the holder is inside a blocking hypercall.
    owner_blocked: AtomicU32,
    /// Threads spinning for the lock right now.
    spinning: AtomicU32,
    /// Releases in a row that left the sleepers to a spinner.
    skipped_wakes: AtomicU32,
    budget: SpinBudget,
}

/// Releases in a row that may leave the sleepers asleep because a spinner
/// will take the lock; then one is woken anyway, so none waits forever.
const MAX_SKIPPED_WAKES: u32 = 8;

/// Holds a [`SleepMutex`] or [`RawSleepMutex`]; releases it (and wakes a
/// sleeper) when dropped.
pub struct SleepMutexGuard<'a, T> {
    // Field order matters: the data lock is released first, then a
    // sleeper is woken.
    inner: spin::MutexGuard<'a, T>,
    _wake: WakeOne<'a, T>,
}

struct WakeOne<'a, T> {
    m: &'a RawSleepMutex<T>,
}

impl<T> Drop for WakeOne<'_, T> {
    fn drop(&mut self) {
        let m = self.m;
        if !m.sleepers.any_after_release() {
            return;
        }
        // A thread spinning for the lock will take it (or, failing, queue
        // itself and re-check before it sleeps), so waking a sleeper now
        // would only pay for a wake-up that loses the race. Bounded, so the
        // sleepers get their turn.
        if m.spinning.load(Ordering::SeqCst) != 0
            && m.skipped_wakes.fetch_add(1, Ordering::Relaxed) < MAX_SKIPPED_WAKES
        {
            return;
        }
        m.skipped_wakes.store(0, Ordering::Relaxed);
        m.sleepers.wake_one();
    }
}

impl<T> SleepMutex<T> {
    /// A new, unlocked mutex scheduled by `sched`.
    pub fn new(sched: &Arc<Sched>, value: T) -> SleepMutex<T> {
        SleepMutex {
            raw: RawSleepMutex::new(value),
            sched: sched.clone(),
        }
    }

    /// Takes the lock, sleeping while another thread holds it.
    #[inline]
    pub fn lock(&self) -> SleepMutexGuard<'_, T> {
        self.raw.lock(&self.sched)
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<SleepMutexGuard<'_, T>> {
        self.raw.try_lock()
    }

    /// Whether some thread holds the lock (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Threads sleeping on the lock (a snapshot, for tests and statistics).
    pub fn sleepers(&self) -> usize {
        self.raw.sleepers()
    }

    /// The value, when nobody else can hold the lock.
    pub fn get_mut(&mut self) -> &mut T {
        self.raw.get_mut()
    }

    /// Like [`SleepMutexGuard::blocking`], for a holder that cannot reach
    /// its guard (the blocking call is deep inside the protected value,
    /// such as a buffer cache's device I/O). Call it only while this
    /// thread holds the lock; it changes nothing but how contenders wait.
    pub fn holder_blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        self.raw.holder_blocking(f)
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.raw.into_inner()
    }
}

impl<T> RawSleepMutex<T> {
    /// A new, unlocked mutex.
    pub const fn new(value: T) -> RawSleepMutex<T> {
        RawSleepMutex {
            data: spin::Mutex::new(value),
            sleepers: Sleepers::new(),
            owner_blocked: AtomicU32::new(0),
            spinning: AtomicU32::new(0),
            skipped_wakes: AtomicU32::new(0),
            budget: SpinBudget::new(),
        }
    }

    /// Takes the lock, spinning and sleeping as `sched` allows.
    #[inline]
    pub fn lock(&self, sched: &Sched) -> SleepMutexGuard<'_, T> {
        match self.data.try_lock() {
            Some(g) => self.wrap(g),
            None => self.lock_contended(sched),
        }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<SleepMutexGuard<'_, T>> {
        self.data.try_lock().map(|g| self.wrap(g))
    }

    /// Whether some thread holds the lock (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.data.is_locked()
    }

    /// Threads sleeping on the lock (a snapshot).
    pub fn sleepers(&self) -> usize {
        self.sleepers.len()
    }

    /// The value, when nobody else can hold the lock.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// See [`SleepMutex::holder_blocking`].
    pub fn holder_blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        self.owner_blocked.fetch_add(1, Ordering::Relaxed);
        let r = f();
        self.owner_blocked.fetch_sub(1, Ordering::Relaxed);
        r
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }

    #[cold]
    fn lock_contended(&self, sched: &Sched) -> SleepMutexGuard<'_, T> {
        let max = sched.max_rounds();
        if let Some(_slot) = sched.try_spin() {
            let rounds = self.budget.rounds(max);
            self.spinning.fetch_add(1, Ordering::SeqCst);
            let mut got = None;
            for _ in 0..rounds {
                if self.owner_blocked.load(Ordering::Relaxed) != 0 {
                    break;
                }
                sched.relax();
                if !self.data.is_locked() {
                    if let Some(g) = self.data.try_lock() {
                        got = Some(g);
                        break;
                    }
                }
            }
            // Before queueing (whose fence orders this against a release's
            // look at `spinning`).
            self.spinning.fetch_sub(1, Ordering::SeqCst);
            if let Some(g) = got {
                self.budget.paid_off(max);
                return self.wrap(g);
            }
            self.budget.failed();
        }
        let me = sched.hyper().current_parker();
        let mut parked = false;
        loop {
            self.sleepers.push(&me);
            if let Some(g) = self.data.try_lock() {
                self.sleepers.withdraw(me.id());
                if parked {
                    me.unpark();
                }
                return self.wrap(g);
            }
            parked = true;
            me.park_until(None);
            // Woken by a release (which popped us), or by a token meant
            // for a wait this thread is inside of (a wait queue's): either
            // way, leave and re-try.
            self.sleepers.withdraw(me.id());
            if let Some(g) = self.data.try_lock() {
                // Give back the token the park may have taken from that
                // outer wait (which would otherwise sleep through its
                // wake-up); to it, this is one spurious wake-up.
                me.unpark();
                return self.wrap(g);
            }
        }
    }

    fn wrap<'a>(&'a self, inner: spin::MutexGuard<'a, T>) -> SleepMutexGuard<'a, T> {
        SleepMutexGuard {
            inner,
            _wake: WakeOne { m: self },
        }
    }
}

impl<T> SleepMutexGuard<'_, T> {
    /// Runs `f`, which makes a hypercall that may block or take long
    /// (block I/O, a file write), with the lock held: contenders stop
    /// spinning and sleep at once until the holder is back.
    pub fn blocking<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        let m = self._wake.m;
        m.owner_blocked.fetch_add(1, Ordering::Relaxed);
        let r = f(&mut self.inner);
        m.owner_blocked.fetch_sub(1, Ordering::Relaxed);
        r
    }
}

impl<T> Deref for SleepMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for SleepMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for SleepMutex<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("SleepMutex");
        match self.raw.data.try_lock() {
            Some(g) => d.field("data", &*g),
            None => d.field("data", &"<locked>"),
        };
        d.field("sleepers", &self.raw.sleepers.len()).finish()
    }
}
