//! [`Pump`]: delivers queued items in the calling thread, one thread at a
//! time, without recursion.
//!
//! Delivering a frame to a stack makes that stack answer (an ACK, more
//! data), and the answer must be delivered too. Doing it recursively
//! would nest without bound, and a thread-per-link hand-off costs tens of
//! microseconds per wake-up. Instead the first thread to push becomes the
//! pump and delivers until the queue is empty; pushes from inside a
//! delivery, or from other threads meanwhile, only enqueue. No lock is held
//! while an item is delivered.
//!
//! Items queued in order under some lock ([`Pump::enqueue`]) are delivered
//! in that order by whichever thread drains ([`Pump::drain`]) after the
//! lock is released: this keeps a stack's segments in order on the wire
//! when several threads send on it.

use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicBool, Ordering};

use kern::sync::SpinMutex;

/// A queue drained by whichever thread finds it idle.
pub(crate) struct Pump<T> {
    queue: SpinMutex<VecDeque<T>>,
    active: AtomicBool,
}

impl<T> Pump<T> {
    pub fn new() -> Self {
        Pump {
            queue: SpinMutex::new(VecDeque::new()),
            active: AtomicBool::new(false),
        }
    }

    /// Queues `item`; if no thread is pumping, becomes the pump and
    /// delivers everything queued (including what deliveries queue).
    pub fn push(&self, item: T, deliver: impl FnMut(T)) {
        self.enqueue(item);
        self.drain(deliver);
    }

    /// Queues `item` without delivering (callable under a lock whose
    /// order the queue must preserve).
    pub fn enqueue(&self, item: T) {
        self.queue.lock().push_back(item);
    }

    /// Delivers everything queued, unless another thread is already at it
    /// (it will deliver what we queued).
    pub fn drain(&self, mut deliver: impl FnMut(T)) {
        if self.queue.lock().is_empty() {
            return;
        }
        loop {
            if self
                .active
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                // The pump checks the queue after clearing its flag, so the
                // item cannot be stranded.
                return;
            }
            loop {
                let next = self.queue.lock().pop_front();
                match next {
                    Some(i) => deliver(i),
                    None => break,
                }
            }
            self.active.store(false, Ordering::Release);
            if self.queue.lock().is_empty() {
                return;
            }
        }
    }

    /// Like [`Pump::drain`], but hands over everything queued at once.
    pub fn drain_batches(&self, mut deliver: impl FnMut(VecDeque<T>)) {
        if self.queue.lock().is_empty() {
            return;
        }
        loop {
            if self
                .active
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                return;
            }
            loop {
                let batch = core::mem::take(&mut *self.queue.lock());
                if batch.is_empty() {
                    break;
                }
                deliver(batch);
            }
            self.active.store(false, Ordering::Release);
            if self.queue.lock().is_empty() {
                return;
            }
        }
    }

    /// Drops everything queued.
    pub fn clear(&self) {
        let q = core::mem::take(&mut *self.queue.lock());
        drop(q);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    #[test]
    fn nested_pushes_are_delivered_in_order_without_recursion() {
        let pump = Pump::new();
        let seen = RefCell::new(Vec::new());
        let depth = RefCell::new(0);
        fn go(pump: &Pump<u32>, seen: &RefCell<Vec<u32>>, depth: &RefCell<u32>, n: u32) {
            pump.push(n, |i| {
                *depth.borrow_mut() += 1;
                assert_eq!(*depth.borrow(), 1, "delivery nested");
                seen.borrow_mut().push(i);
                if i < 5 {
                    go(pump, seen, depth, i + 1);
                }
                *depth.borrow_mut() -= 1;
            });
        }
        go(&pump, &seen, &depth, 0);
        assert_eq!(*seen.borrow(), [0, 1, 2, 3, 4, 5]);
    }
}
