//! Callouts: functions run at a time in the future (`callout(9)`).
//!
//! Protocols use them for retransmission and keep-alive timers. The kernel
//! thread that runs them ("callout") is created by the first
//! [`Callouts::schedule`], so a kernel that never sets a timer runs no
//! thread. Callbacks run on that thread without any callout lock held.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use hyper::{Errno, MonoNs, Parker, ThreadHandle};

use crate::sync::SpinMutex;
use crate::Kernel;

/// Identifies a scheduled callout, for [`Callouts::cancel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CalloutId(u64);

type Callback = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Shared {
    /// Pending callouts by (deadline, id).
    queue: BTreeMap<(MonoNs, u64), Callback>,
    deadlines: BTreeMap<u64, MonoNs>,
    next_id: u64,
    stopping: bool,
    worker: Option<Arc<dyn Parker>>,
}

/// The callouts of one kernel.
pub struct Callouts {
    shared: Arc<SpinMutex<Shared>>,
    thread: SpinMutex<Option<Box<dyn ThreadHandle>>>,
}

impl Callouts {
    pub(crate) fn new() -> Self {
        Callouts {
            shared: Arc::new(SpinMutex::new(Shared::default())),
            thread: SpinMutex::new(None),
        }
    }

    /// Runs `f` once the monotonic clock reaches `deadline`.
    pub fn schedule(
        &self,
        k: &Kernel,
        deadline: MonoNs,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<CalloutId, Errno> {
        k.check()?;
        self.ensure_thread(k)?;
        let mut sh = self.shared.lock();
        sh.next_id += 1;
        let id = sh.next_id;
        let was_first = sh.queue.keys().next().is_none_or(|&(d, _)| deadline < d);
        sh.queue.insert((deadline, id), Box::new(f));
        sh.deadlines.insert(id, deadline);
        let worker = if was_first { sh.worker.clone() } else { None };
        drop(sh);
        if let Some(w) = worker {
            w.unpark();
        }
        Ok(CalloutId(id))
    }

    /// Cancels a callout that has not run yet. Returns whether it was
    /// pending.
    pub fn cancel(&self, id: CalloutId) -> bool {
        let mut sh = self.shared.lock();
        match sh.deadlines.remove(&id.0) {
            Some(d) => {
                let cb = sh.queue.remove(&(d, id.0));
                drop(sh);
                drop(cb);
                true
            }
            None => false,
        }
    }

    /// Number of pending callouts.
    pub fn pending(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Whether the callout thread has been started.
    pub fn has_thread(&self) -> bool {
        self.thread.lock().is_some()
    }

    fn ensure_thread(&self, k: &Kernel) -> Result<(), Errno> {
        let mut t = self.thread.lock();
        if t.is_some() {
            return Ok(());
        }
        let shared = self.shared.clone();
        let hyper = k.hyper().clone();
        // Returns once the worker runs, with its parker registered first,
        // so the first schedule's wake-up cannot be lost.
        let (handle, _) = k.spawn_thread_parked(
            "callout",
            Box::new(move |parker| {
                shared.lock().worker = Some(parker);
                run_worker(&*hyper, &shared);
            }),
        )?;
        *t = Some(handle);
        Ok(())
    }

    pub(crate) fn halt(&self, _k: &Kernel) {
        let worker = {
            let mut sh = self.shared.lock();
            sh.stopping = true;
            sh.queue.clear();
            sh.deadlines.clear();
            sh.worker.clone()
        };
        if let Some(w) = worker {
            w.unpark();
        }
        let handle = self.thread.lock().take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn run_worker(hyper: &dyn hyper::Hyper, shared: &SpinMutex<Shared>) {
    let parker = hyper.current_parker();
    loop {
        let (due, next) = {
            let mut sh = shared.lock();
            if sh.stopping {
                return;
            }
            let now = hyper.clock_monotonic();
            match sh.queue.keys().next().copied() {
                Some((d, id)) if d <= now => {
                    let cb = sh.queue.remove(&(d, id));
                    sh.deadlines.remove(&id);
                    (cb, None)
                }
                Some((d, _)) => (None, Some(d)),
                None => (None, None),
            }
        };
        match due {
            Some(cb) => cb(),
            None => parker.park_until(next),
        }
    }
}
