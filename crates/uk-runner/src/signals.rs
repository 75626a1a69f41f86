//! Stopping a running guest from a signal (SIGINT, SIGTERM) or a timeout
//! (SIGALRM from `setitimer`).
//!
//! A guest that spins never exits to the runner, so a flag alone is not
//! enough: the handler also sets `kvm_run.immediate_exit` (the KVM API's
//! documented way for a signal handler to make `KVM_RUN` return `EINTR`,
//! closing the race with a signal that arrives just before the ioctl) and
//! writes a byte to a pipe that the runner's `POLL` waits on. The state is
//! process-wide because signal dispositions are: one guest per process
//! takes signals (the CLI runner); library users who run several guests
//! leave `handle_signals` off.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering};
use std::time::Duration;

static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
static IMMEDIATE_EXIT: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// The vCPU's thread (a `pthread_t`), 0 before `arm_immediate_exit`.
static VCPU_THREAD: AtomicU64 = AtomicU64::new(0);

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGALRM];

extern "C" fn on_signal(sig: libc::c_int) {
    STOP_SIGNAL.store(sig, Ordering::SeqCst);
    let p = IMMEDIATE_EXIT.load(Ordering::SeqCst);
    if !p.is_null() {
        // SAFETY: `p` points at `immediate_exit` in the vCPU's mapped
        // `kvm_run` page; `Guard::drop` clears it before that mapping goes,
        // and the handler is async-signal-safe (one byte store).
        unsafe { std::ptr::write_volatile(p, 1) };
    }
    // The signal may have landed on another thread of the process while
    // the vCPU spins in KVM_RUN: pass it on so KVM_RUN returns.
    let vcpu = VCPU_THREAD.load(Ordering::SeqCst);
    // SAFETY: pthread_self and pthread_kill are async-signal-safe; `vcpu`
    // is the running vCPU thread (cleared by `Guard::drop` before it ends).
    if vcpu != 0 && unsafe { libc::pthread_self() } as u64 != vcpu {
        // SAFETY: as above: an async-signal-safe call on a live thread.
        unsafe { libc::pthread_kill(vcpu as libc::pthread_t, sig) };
    }
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; `b` is a valid one-byte
        // buffer; a full pipe just drops the byte (it is non-blocking).
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

/// Installed handlers; dropping it restores the defaults.
pub struct Guard {
    wake_read: OwnedFd,
    _wake_write: OwnedFd,
}

impl Guard {
    /// Installs the handlers and arms a timeout (SIGALRM) if asked.
    pub fn install(timeout: Option<Duration>) -> std::io::Result<Guard> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both descriptors are fresh and ours.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        STOP_SIGNAL.store(0, Ordering::SeqCst);
        WAKE_FD.store(w.as_raw_fd(), Ordering::SeqCst);
        for sig in SIGNALS {
            // SAFETY: a zeroed sigaction is valid; the handler is an
            // `extern "C" fn(c_int)` doing only async-signal-safe work. No
            // SA_RESTART: KVM_RUN and ppoll must return EINTR.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
        if let Some(t) = timeout {
            let t = t.max(Duration::from_micros(1));
            let it = libc::itimerval {
                it_interval: libc::timeval {
                    tv_sec: 0,
                    tv_usec: 0,
                },
                it_value: libc::timeval {
                    tv_sec: t.as_secs() as libc::time_t,
                    tv_usec: t.subsec_micros() as libc::suseconds_t,
                },
            };
            // SAFETY: `it` is a valid itimerval; no old value is asked for.
            if unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(Guard {
            wake_read: r,
            _wake_write: w,
        })
    }

    /// Points the handler at the vCPU's `immediate_exit` byte and notes the
    /// calling thread as the vCPU's.
    ///
    /// # Safety
    ///
    /// `p` must point at `immediate_exit` in the `kvm_run` page of a vCPU
    /// that outlives this guard, run on the calling thread.
    pub unsafe fn arm_immediate_exit(&self, p: *mut u8) {
        IMMEDIATE_EXIT.store(p, Ordering::SeqCst);
        // SAFETY: pthread_self has no preconditions.
        VCPU_THREAD.store(unsafe { libc::pthread_self() } as u64, Ordering::SeqCst);
        if STOP_SIGNAL.load(Ordering::SeqCst) != 0 {
            // SAFETY: the caller guarantees `p` is the live vCPU's
            // `immediate_exit` byte.
            unsafe { std::ptr::write_volatile(p, 1) };
        }
    }

    /// The read end of the wake-up pipe, for `ppoll`.
    pub fn wake_fd(&self) -> libc::c_int {
        self.wake_read.as_raw_fd()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        IMMEDIATE_EXIT.store(std::ptr::null_mut(), Ordering::SeqCst);
        VCPU_THREAD.store(0, Ordering::SeqCst);
        WAKE_FD.store(-1, Ordering::SeqCst);
        let off = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        };
        // SAFETY: disarming the timer and restoring default dispositions
        // touches no memory of ours.
        unsafe {
            libc::setitimer(libc::ITIMER_REAL, &off, std::ptr::null_mut());
            for sig in SIGNALS {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

/// The signal that asked the guest to stop, if any.
pub fn stop_signal() -> Option<i32> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}
