//! [`Sched`]: what the kernel's locks and waits know about scheduling.
//!
//! A user-space kernel cannot ask whether a lock's owner is running (the
//! test NetBSD's adaptive mutex makes), so spinning is rationed instead:
//! at most `ncpu - 1` threads of a kernel spin at any moment (a spinner
//! only pays off while the thread it waits for runs on another processor;
//! with more spinners than that, they steal the processors the holders
//! need), and each lock adapts its spin length to how often spinning
//! succeeded. `RUMP_SPIN=0` turns spinning off (every contention sleeps,
//! as a deterministic simulator wants); `RUMP_SPIN=N` caps a spin at `N`
//! rounds; `RUMP_NCPU` overrides the processor count the platform reports.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, Ordering};

use hyper::Hyper;

/// Default upper bound of one spin, in [`Hyper::relax`] rounds (each a
/// `pause`, tens of nanoseconds on x86: a few microseconds in all).
pub const DEFAULT_SPIN_ROUNDS: u32 = 256;

/// The scheduling context shared by the locks and waits of one kernel.
pub struct Sched {
    hyper: Arc<dyn Hyper>,
    /// Read from the platform at the first contention, not at boot (a
    /// parameter lookup costs more than a whole tmpfs kernel's boot);
    /// `UNSET` until then.
    max_rounds: AtomicU32,
    max_spinners: AtomicU32,
    spinners: AtomicU32,
}

const UNSET: u32 = u32::MAX;

/// Permission to spin, returned by [`Sched::try_spin`]; dropping it gives
/// the slot back.
pub struct SpinSlot<'a> {
    sched: &'a Sched,
}

impl Sched {
    /// The context for kernels on `hyper`, reading `RUMP_SPIN` and
    /// `RUMP_NCPU` from the platform's parameters.
    pub fn new(hyper: Arc<dyn Hyper>) -> Arc<Sched> {
        Arc::new(Sched {
            max_rounds: AtomicU32::new(UNSET),
            max_spinners: AtomicU32::new(UNSET),
            spinners: AtomicU32::new(0),
            hyper,
        })
    }

    /// `(max_rounds, max_spinners)`, read from the platform once.
    fn limits(&self) -> (u32, u32) {
        let rounds = self.max_rounds.load(Ordering::Relaxed);
        let spinners = self.max_spinners.load(Ordering::Relaxed);
        if rounds != UNSET && spinners != UNSET {
            return (rounds, spinners);
        }
        let param = |name| {
            self.hyper
                .param(name)
                .and_then(|v: alloc::string::String| v.trim().parse::<u32>().ok())
        };
        // Racing first contentions compute the same values.
        let rounds = param("RUMP_SPIN")
            .unwrap_or(DEFAULT_SPIN_ROUNDS)
            .min(UNSET - 1);
        let ncpu = param("RUMP_NCPU")
            .unwrap_or_else(|| self.hyper.ncpu())
            .clamp(1, UNSET);
        self.max_rounds.store(rounds, Ordering::Relaxed);
        self.max_spinners.store(ncpu - 1, Ordering::Relaxed);
        (rounds, ncpu - 1)
    }

    /// The platform.
    pub fn hyper(&self) -> &Arc<dyn Hyper> {
        &self.hyper
    }

    /// The longest spin, in rounds; 0 when spinning is off.
    pub fn max_rounds(&self) -> u32 {
        self.limits().0
    }

    /// A spin slot, unless spinning is off or enough threads already spin.
    pub fn try_spin(&self) -> Option<SpinSlot<'_>> {
        let (rounds, max_spinners) = self.limits();
        if rounds == 0 {
            return None;
        }
        let mut n = self.spinners.load(Ordering::Relaxed);
        loop {
            if n >= max_spinners {
                return None;
            }
            match self.spinners.compare_exchange_weak(
                n,
                n + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(SpinSlot { sched: self }),
                Err(seen) => n = seen,
            }
        }
    }

    /// One round of a spin (a hypercall, so a platform can schedule).
    #[inline]
    pub fn relax(&self) {
        self.hyper.relax();
    }

    /// Threads spinning right now.
    pub fn spinners(&self) -> u32 {
        self.spinners.load(Ordering::Relaxed)
    }
}

impl Drop for SpinSlot<'_> {
    fn drop(&mut self) {
        self.sched.spinners.fetch_sub(1, Ordering::Release);
    }
}

/// An adaptive spin length: grows when a spin succeeds, halves when it
/// fails (glibc's adaptive mutex does the same), within `1..=max`.
pub(crate) struct SpinBudget(AtomicU32);

impl SpinBudget {
    pub(crate) const fn new() -> SpinBudget {
        SpinBudget(AtomicU32::new(32))
    }

    pub(crate) fn rounds(&self, max: u32) -> u32 {
        self.0.load(Ordering::Relaxed).min(max)
    }

    pub(crate) fn paid_off(&self, max: u32) {
        let r = self.0.load(Ordering::Relaxed);
        self.0
            .store((r + r / 4 + 1).min(max.max(1)), Ordering::Relaxed);
    }

    pub(crate) fn failed(&self) {
        let r = self.0.load(Ordering::Relaxed);
        self.0.store((r / 2).max(1), Ordering::Relaxed);
    }
}
