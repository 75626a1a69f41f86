//! [`FramePool`]: recycled frame buffers, so that moving a frame costs no
//! allocation once a connection is warm.
//!
//! Buffers travel: a frame built by one kernel is delivered on an
//! in-process bus to another, which returns it to its own pool after
//! processing. Every pool hands out buffers of any length up to the
//! largest frame, and keeps at most [`POOL_MAX`] idle ones.

use alloc::vec::Vec;

use kern::sync::SpinMutex;

/// Idle buffers kept per pool.
pub(crate) const POOL_MAX: usize = 256;

/// Capacity every pooled buffer gets: the largest frame we send (a
/// 64 KiB IP packet plus an Ethernet header), so any buffer fits any frame.
pub(crate) const FRAME_CAP: usize = 65536 + 64;

pub(crate) struct FramePool {
    free: SpinMutex<Vec<Vec<u8>>>,
}

impl FramePool {
    pub fn new() -> Self {
        FramePool {
            free: SpinMutex::new(Vec::new()),
        }
    }

    /// A buffer of exactly `len` bytes (contents unspecified).
    pub fn get(&self, len: usize) -> Vec<u8> {
        let reused = self.free.lock().pop();
        let mut b = reused.unwrap_or_else(|| Vec::with_capacity(FRAME_CAP.max(len)));
        if b.len() > len {
            b.truncate(len);
        } else {
            b.resize(len, 0);
        }
        b
    }

    /// Returns a buffer for reuse.
    pub fn put(&self, b: Vec<u8>) {
        if b.capacity() < FRAME_CAP {
            return;
        }
        let mut f = self.free.lock();
        if f.len() < POOL_MAX {
            f.push(b);
        }
    }
}
