//! Which kernel a C call goes to.
//!
//! C calls carry no kernel or process argument, so the library finds it:
//! first the calling thread's binding ([`bind_thread`]: `rump_kernel_set_current`,
//! the lwproc calls), else the process-wide default ([`set_default`]:
//! `rump_init`, `rumpclient_init`). These two are the only global state of
//! the C ABI; the kernels themselves keep none.
//!
//! A thread caches the default and notices a change through a generation
//! counter, so a call costs one relaxed load and a thread-local borrow, not
//! a lock.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use rump::sys::{self, Request, Response, Syscalls};
use rump::{Errno, Process};

/// Where calls go: a process of a kernel in this process, or a remote
/// kernel (`rump server`) through the client library.
#[derive(Clone)]
pub enum Target {
    Local(Process),
    Remote(Arc<dyn Syscalls>),
}

impl Target {
    /// Runs one request.
    pub fn call(&self, req: Request) -> Result<Response, Errno> {
        match self {
            Target::Local(p) => sys::dispatch(p, req),
            Target::Remote(r) => r.call(req),
        }
    }
}

static DEFAULT: RwLock<Option<Target>> = RwLock::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(1);

struct ThreadCtx {
    /// Set by [`bind_thread`]; wins over the default.
    bound: Option<Target>,
    /// The default as of `generation`.
    cached: Option<Target>,
    generation: u64,
}

thread_local! {
    static THREAD: RefCell<ThreadCtx> = const {
        RefCell::new(ThreadCtx { bound: None, cached: None, generation: 0 })
    };
}

/// Sets (or with `None` clears) the process-wide default target. Returns
/// the previous one.
pub fn set_default(t: Option<Target>) -> Option<Target> {
    let mut d = DEFAULT.write().unwrap_or_else(|e| e.into_inner());
    let prev = std::mem::replace(&mut *d, t);
    GENERATION.fetch_add(1, Ordering::AcqRel);
    prev
}

/// The process-wide default target.
pub fn default_target() -> Option<Target> {
    DEFAULT.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Binds (or with `None` unbinds) the calling thread to `t`. Returns the
/// previous binding.
pub fn bind_thread(t: Option<Target>) -> Option<Target> {
    THREAD.with(|c| std::mem::replace(&mut c.borrow_mut().bound, t))
}

/// The calling thread's binding, if any.
pub fn thread_binding() -> Option<Target> {
    THREAD.with(|c| c.borrow().bound.clone())
}

/// Drops every cached copy of the default and the thread bindings that
/// match `pred` on this thread (after a kernel is halted, so its processes
/// are released).
pub fn forget(pred: impl Fn(&Target) -> bool) {
    let mut d = DEFAULT.write().unwrap_or_else(|e| e.into_inner());
    if d.as_ref().is_some_and(&pred) {
        *d = None;
    }
    GENERATION.fetch_add(1, Ordering::AcqRel);
    drop(d);
    THREAD.with(|c| {
        let mut c = c.borrow_mut();
        if c.bound.as_ref().is_some_and(&pred) {
            c.bound = None;
        }
    });
}

/// Runs `f` on the calling thread's target: `ENXIO` when there is none
/// (before `rump_init`/`rumpclient_init`, after the kernel was halted).
/// The target is borrowed in place, not cloned, so concurrent calls of
/// many threads do not bounce a reference count between cores.
pub fn with<R>(f: impl FnOnce(&Target) -> Result<R, Errno>) -> Result<R, Errno> {
    THREAD.with(|cell| {
        let g = GENERATION.load(Ordering::Acquire);
        if let Ok(mut c) = cell.try_borrow_mut() {
            if c.bound.is_none() && c.generation != g {
                c.cached = default_target();
                c.generation = g;
            }
        }
        // Calls do not nest, so the cell is free; if it were not, fail
        // rather than panic across the C boundary.
        let c = cell.try_borrow().map_err(|_| Errno::EDEADLK)?;
        match c.bound.as_ref().or(c.cached.as_ref()) {
            Some(t) => f(t),
            None => Err(Errno::ENXIO),
        }
    })
}

/// Runs `req` on the calling thread's target.
pub fn call(req: Request) -> Result<Response, Errno> {
    with(|t| t.call(req))
}
