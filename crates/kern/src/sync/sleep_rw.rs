//! [`SleepRwLock`]: an adaptive reader-writer lock that prefers writers.
//!
//! Data lives in a `spin::RwLock<T>`; the sleeping, spinning and fairness
//! are ours. A writer that wants the lock counts itself in
//! `writers_wanting` first, and new readers then stay out, so a stream of
//! readers cannot starve a writer (spin's own lock would let it). Readers
//! woken by a writer's release may enter once even while another writer
//! waits, so a stream of writers cannot starve readers either: readers and
//! writers alternate in batches.

use alloc::sync::Arc;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering};

use super::sched::{Sched, SpinBudget};
use super::Sleepers;

/// A reader-writer lock whose contenders spin briefly, then sleep.
pub struct SleepRwLock<T> {
    raw: RawSleepRwLock<T>,
    sched: Arc<Sched>,
}

/// A [`SleepRwLock`] that does not keep its [`Sched`]: callers pass it to
/// each `read` and `write` (for locks in many small objects).
pub struct RawSleepRwLock<T> {
    data: spin::RwLock<T>,
    readers: Sleepers,
    writers: Sleepers,
    /// Writers spinning or queued for the lock.
    writers_wanting: AtomicU32,
    /// Writers spinning right now (a release then need not wake a
    /// sleeping one; see `RawSleepMutex`).
    writers_spinning: AtomicU32,
    skipped_wakes: AtomicU32,
    /// Bumped by every write release: a queued reader that sees it move
    /// was let in by a writer (not woken spuriously) and may enter even
    /// though another writer waits.
    write_releases: AtomicU32,
    budget: SpinBudget,
}

/// As for the mutex: releases in a row that may leave a sleeping writer to
/// a spinning one.
const MAX_SKIPPED_WAKES: u32 = 8;

/// Shared access to a [`SleepRwLock`].
pub struct SleepRwLockReadGuard<'a, T> {
    inner: spin::RwLockReadGuard<'a, T>,
    _wake: ReadRelease<'a, T>,
}

/// Exclusive access to a [`SleepRwLock`].
pub struct SleepRwLockWriteGuard<'a, T> {
    inner: spin::RwLockWriteGuard<'a, T>,
    _wake: WriteRelease<'a, T>,
}

struct ReadRelease<'a, T> {
    l: &'a RawSleepRwLock<T>,
}

struct WriteRelease<'a, T> {
    l: &'a RawSleepRwLock<T>,
}

impl<T> Drop for ReadRelease<'_, T> {
    fn drop(&mut self) {
        // Only writers can be waiting for readers to leave (a queued
        // reader waits for a writer, whose release wakes it).
        if self.l.writers.any_after_release() && self.l.data.reader_count() == 0 {
            self.l.wake_writer();
        }
    }
}

impl<T> Drop for WriteRelease<'_, T> {
    fn drop(&mut self) {
        let l = self.l;
        l.write_releases.fetch_add(1, Ordering::SeqCst);
        let writers = l.writers.any_after_release();
        if l.readers.len() != 0 {
            l.readers.wake_all();
        }
        if writers {
            l.wake_writer();
        }
    }
}

impl<T> SleepRwLock<T> {
    /// A new, unlocked lock scheduled by `sched`.
    pub fn new(sched: &Arc<Sched>, value: T) -> SleepRwLock<T> {
        SleepRwLock {
            raw: RawSleepRwLock::new(value),
            sched: sched.clone(),
        }
    }

    /// Shared access, sleeping while a writer holds or wants the lock.
    #[inline]
    pub fn read(&self) -> SleepRwLockReadGuard<'_, T> {
        self.raw.read(&self.sched)
    }

    /// Exclusive access, sleeping while anyone else holds the lock.
    #[inline]
    pub fn write(&self) -> SleepRwLockWriteGuard<'_, T> {
        self.raw.write(&self.sched)
    }

    /// Writers waiting right now (a snapshot).
    pub fn writers_waiting(&self) -> u32 {
        self.raw.writers_waiting()
    }
}

impl<T> RawSleepRwLock<T> {
    /// A new, unlocked lock.
    pub const fn new(value: T) -> RawSleepRwLock<T> {
        RawSleepRwLock {
            data: spin::RwLock::new(value),
            readers: Sleepers::new(),
            writers: Sleepers::new(),
            writers_wanting: AtomicU32::new(0),
            writers_spinning: AtomicU32::new(0),
            skipped_wakes: AtomicU32::new(0),
            write_releases: AtomicU32::new(0),
            budget: SpinBudget::new(),
        }
    }

    /// Shared access, sleeping while a writer holds or wants the lock.
    #[inline]
    pub fn read(&self, sched: &Sched) -> SleepRwLockReadGuard<'_, T> {
        if self.writers_wanting.load(Ordering::Relaxed) == 0 {
            if let Some(g) = self.try_read_data() {
                return self.wrap_read(g);
            }
        }
        self.read_contended(sched)
    }

    /// Exclusive access, sleeping while anyone else holds the lock.
    #[inline]
    pub fn write(&self, sched: &Sched) -> SleepRwLockWriteGuard<'_, T> {
        match self.data.try_write() {
            Some(g) => self.wrap_write(g),
            None => self.write_contended(sched),
        }
    }

    /// Writers waiting right now (a snapshot).
    pub fn writers_waiting(&self) -> u32 {
        self.writers_wanting.load(Ordering::Relaxed)
    }

    /// `try_read` of the data lock. A failed attempt briefly counts as a
    /// reader (spin's lock adds, sees a writer, subtracts), and a writer
    /// whose own attempt saw only that count has queued itself to sleep:
    /// the subtraction is a release it must hear of, or it sleeps with the
    /// lock free. So a failed attempt wakes a queued writer, as a read
    /// release does.
    fn try_read_data(&self) -> Option<spin::RwLockReadGuard<'_, T>> {
        let g = self.data.try_read();
        if g.is_none() && self.writers.any_after_release() && self.data.reader_count() == 0 {
            self.writers.wake_one();
        }
        g
    }

    /// Wakes a sleeping writer, unless one is spinning (it will take the
    /// lock, or queue itself and re-check), at most a few times in a row.
    fn wake_writer(&self) {
        if self.writers_spinning.load(Ordering::SeqCst) != 0
            && self.skipped_wakes.fetch_add(1, Ordering::Relaxed) < MAX_SKIPPED_WAKES
        {
            return;
        }
        self.skipped_wakes.store(0, Ordering::Relaxed);
        self.writers.wake_one();
    }

    #[cold]
    fn read_contended(&self, sched: &Sched) -> SleepRwLockReadGuard<'_, T> {
        let max = sched.max_rounds();
        if let Some(_slot) = sched.try_spin() {
            for _ in 0..self.budget.rounds(max) {
                sched.relax();
                if self.writers_wanting.load(Ordering::Relaxed) == 0 {
                    if let Some(g) = self.try_read_data() {
                        self.budget.paid_off(max);
                        return self.wrap_read(g);
                    }
                }
            }
            self.budget.failed();
        }
        let me = sched.hyper().current_parker();
        // Whether a writer released the lock since this reader queued: such
        // a reader enters even if another writer already waits (batches
        // alternate; see the module docs). A spurious wake-up (a token left
        // by another wait) does not count.
        let mut let_in = false;
        let mut parked = false;
        loop {
            let releases = self.write_releases.load(Ordering::SeqCst);
            self.readers.push(&me);
            if let_in || self.writers_wanting.load(Ordering::SeqCst) == 0 {
                if let Some(g) = self.try_read_data() {
                    self.readers.withdraw(me.id());
                    if parked {
                        // A park may have taken an outer wait's token: give
                        // it back (see `SleepMutex`).
                        me.unpark();
                    }
                    return self.wrap_read(g);
                }
            }
            me.park_until(None);
            parked = true;
            self.readers.withdraw(me.id());
            let_in = self.write_releases.load(Ordering::SeqCst) != releases;
        }
    }

    #[cold]
    fn write_contended(&self, sched: &Sched) -> SleepRwLockWriteGuard<'_, T> {
        self.writers_wanting.fetch_add(1, Ordering::SeqCst);
        let g = self.write_wait(sched);
        self.writers_wanting.fetch_sub(1, Ordering::SeqCst);
        self.wrap_write(g)
    }

    fn write_wait(&self, sched: &Sched) -> spin::RwLockWriteGuard<'_, T> {
        let max = sched.max_rounds();
        if let Some(_slot) = sched.try_spin() {
            self.writers_spinning.fetch_add(1, Ordering::SeqCst);
            let mut got = None;
            for _ in 0..self.budget.rounds(max) {
                sched.relax();
                if let Some(g) = self.data.try_write() {
                    got = Some(g);
                    break;
                }
            }
            // Before queueing: `Sleepers::push`'s fence orders it.
            self.writers_spinning.fetch_sub(1, Ordering::SeqCst);
            if let Some(g) = got {
                self.budget.paid_off(max);
                return g;
            }
            self.budget.failed();
        }
        let me = sched.hyper().current_parker();
        let mut parked = false;
        loop {
            self.writers.push(&me);
            if let Some(g) = self.data.try_write() {
                self.writers.withdraw(me.id());
                if parked {
                    me.unpark();
                }
                return g;
            }
            parked = true;
            me.park_until(None);
            self.writers.withdraw(me.id());
            if let Some(g) = self.data.try_write() {
                me.unpark();
                return g;
            }
        }
    }

    fn wrap_read<'a>(&'a self, inner: spin::RwLockReadGuard<'a, T>) -> SleepRwLockReadGuard<'a, T> {
        SleepRwLockReadGuard {
            inner,
            _wake: ReadRelease { l: self },
        }
    }

    fn wrap_write<'a>(
        &'a self,
        inner: spin::RwLockWriteGuard<'a, T>,
    ) -> SleepRwLockWriteGuard<'a, T> {
        SleepRwLockWriteGuard {
            inner,
            _wake: WriteRelease { l: self },
        }
    }
}

impl<T> Deref for SleepRwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> Deref for SleepRwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for SleepRwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}
