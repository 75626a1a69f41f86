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
    max_rounds: u32,
    max_spinners: u32,
    spinners: AtomicU32,
}

/// Permission to spin, returned by [`Sched::try_spin`]; dropping it gives
/// the slot back.
pub struct SpinSlot<'a> {
    sched: &'a Sched,
}

impl Sched {
    /// The context for kernels on `hyper`, reading `RUMP_SPIN` and
    /// `RUMP_NCPU` from the platform's parameters.
    pub fn new(hyper: Arc<dyn Hyper>) -> Arc<Sched> {
        let param = |name| {
            hyper
                .param(name)
                .and_then(|v: alloc::string::String| v.trim().parse::<u32>().ok())
        };
        let max_rounds = param("RUMP_SPIN").unwrap_or(DEFAULT_SPIN_ROUNDS);
        let ncpu = param("RUMP_NCPU").unwrap_or_else(|| hyper.ncpu()).max(1);
        Arc::new(Sched {
            max_rounds,
            max_spinners: ncpu - 1,
            spinners: AtomicU32::new(0),
            hyper,
        })
    }

    /// The platform.
    pub fn hyper(&self) -> &Arc<dyn Hyper> {
        &self.hyper
    }

    /// The longest spin, in rounds; 0 when spinning is off.
    pub fn max_rounds(&self) -> u32 {
        self.max_rounds
    }

    /// A spin slot, unless spinning is off or enough threads already spin.
    pub fn try_spin(&self) -> Option<SpinSlot<'_>> {
        if self.max_rounds == 0 {
            return None;
        }
        let mut n = self.spinners.load(Ordering::Relaxed);
        loop {
            if n >= self.max_spinners {
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
