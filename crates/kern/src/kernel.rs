//! [`Kernel`]: one rump kernel instance, its boot, its components and halt.
//!
//! Everything a kernel owns hangs off its `Kernel` value (no statics), so a
//! process can hold any number of them. A kernel is built from
//! [`Component`]s initialised in [`Stage`] order, like `RUMP_COMPONENT`.
//! Halting wakes every sleeping call with `ESHUTDOWN`, stops the kernel's
//! threads, unmounts the file systems and closes every descriptor.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use alloc::collections::BTreeMap;
use hyper::{Errno, Hyper, MonoNs, Parker, HYPER_VERSION};

use crate::callout::Callouts;
use crate::cred::Cred;
use crate::proc::Proc;
use crate::sync::{Sched, Sleepers, SpinMutex, WaitQueue};
use crate::sysctl::Sysctl;
use crate::vfs::Vfs;

/// When a component is initialised. Earlier stages first; within a stage,
/// in the order the config lists them. Mirrors NetBSD's component types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Device drivers and block devices.
    Dev,
    /// Network protocols.
    Net,
    /// Network interfaces.
    NetIf,
    /// Interface configuration.
    NetIfCfg,
    /// File-system types (register with the VFS).
    Vfs,
    /// After the root file system is mounted.
    PostInit,
    /// System-call providers.
    Syscall,
}

/// A piece of the kernel chosen at boot (a file system, a protocol, a
/// driver).
pub trait Component: Send + Sync {
    /// A short name (`"tmpfs"`, `"net"`).
    fn name(&self) -> &'static str;
    /// The stage at which [`Component::init`] runs.
    fn stage(&self) -> Stage;
    /// Registers the component with the kernel being booted.
    fn init(&self, kernel: &Kernel) -> Result<(), Errno>;
    /// Called at halt, in reverse initialisation order, before the file
    /// systems are unmounted. Stop threads here.
    fn halt(&self, kernel: &Kernel) {
        let _ = kernel;
    }
}

/// Rounds of `ready` a wait tries before it sleeps (when a processor is
/// free to spin on; see [`Sched`]).
const WAIT_SPIN_ROUNDS: u32 = 64;

/// What to boot.
#[derive(Clone, Default)]
pub struct KernelConfig {
    /// Components, in the order they initialise within a stage.
    pub components: Vec<Arc<dyn Component>>,
    /// Initial values for sysctl nodes (`("kern.hostname", "box")`).
    pub params: Vec<(String, String)>,
    /// The file-system type mounted on `/` (needs the matching component).
    /// `None` boots a kernel without a root file system.
    pub root_fs: Option<String>,
}

/// A rump kernel. Cloning gives another handle to the same kernel.
#[derive(Clone)]
pub struct Kernel {
    inner: Arc<KernelInner>,
}

/// A non-owning handle, for objects that must not keep their kernel alive.
#[derive(Clone)]
pub struct WeakKernel(Weak<KernelInner>);

struct KernelInner {
    hyper: Arc<dyn Hyper>,
    sched: Arc<Sched>,
    halted: AtomicBool,
    /// Threads sleeping in waits made for no process (kernel threads);
    /// waits for a process register with it ([`Proc::wait`]).
    sleepers: Sleepers,
    next_pid: AtomicI32,
    procs: SpinMutex<BTreeMap<i32, Weak<Proc>>>,
    components: SpinMutex<Vec<Arc<dyn Component>>>,
    vfs: Vfs,
    sysctl: Sysctl,
    callouts: Callouts,
    extensions: SpinMutex<BTreeMap<&'static str, Arc<dyn Any + Send + Sync>>>,
}

impl Kernel {
    /// Boots a kernel on `hyper`. Checks the hypercall version, runs every
    /// component's init in stage order and mounts the root file system.
    pub fn boot(hyper: Arc<dyn Hyper>, config: KernelConfig) -> Result<Kernel, Errno> {
        if hyper.version() != HYPER_VERSION {
            hyper.console_write(
                alloc::format!(
                    "[rump] boot: the platform implements hypercall version {}, this kernel needs {}\n",
                    hyper.version(),
                    HYPER_VERSION
                )
                .as_bytes(),
            );
            return Err(Errno::ENOSYS);
        }
        let sched = Sched::new(hyper.clone());
        let kernel = Kernel {
            inner: Arc::new(KernelInner {
                sched: sched.clone(),
                hyper,
                halted: AtomicBool::new(false),
                sleepers: Sleepers::new(),
                next_pid: AtomicI32::new(1),
                procs: SpinMutex::new(BTreeMap::new()),
                components: SpinMutex::new(Vec::new()),
                vfs: Vfs::new(sched),
                sysctl: Sysctl::new(),
                callouts: Callouts::new(),
                extensions: SpinMutex::new(BTreeMap::new()),
            }),
        };
        kernel.inner.sysctl.install_base();
        let mut comps = config.components.clone();
        comps.sort_by_key(|c| c.stage());
        let mut root_done = config.root_fs.is_none();
        for c in &comps {
            if !root_done && c.stage() > Stage::Vfs {
                kernel.mount_root(&config)?;
                root_done = true;
            }
            if let Err(e) = c.init(&kernel) {
                kernel.halt();
                return Err(e);
            }
            kernel.inner.components.lock().push(c.clone());
        }
        if !root_done {
            kernel.mount_root(&config)?;
        }
        if let Err(e) = kernel.inner.sysctl.apply_params(&config.params) {
            kernel.halt();
            return Err(e);
        }
        Ok(kernel)
    }

    fn mount_root(&self, config: &KernelConfig) -> Result<(), Errno> {
        if let Some(fstype) = &config.root_fs {
            if let Err(e) = self.inner.vfs.mount_root(self, fstype) {
                self.halt();
                return Err(e);
            }
        }
        Ok(())
    }

    /// The platform this kernel runs on.
    pub fn hyper(&self) -> &Arc<dyn Hyper> {
        &self.inner.hyper
    }

    /// The scheduling context of this kernel's locks and waits.
    pub fn sched(&self) -> &Arc<Sched> {
        &self.inner.sched
    }

    /// The VFS: mount table and file-system types.
    pub fn vfs(&self) -> &Vfs {
        &self.inner.vfs
    }

    /// The sysctl parameter tree.
    pub fn sysctl(&self) -> &Sysctl {
        &self.inner.sysctl
    }

    /// Timers.
    pub fn callouts(&self) -> &Callouts {
        &self.inner.callouts
    }

    /// A non-owning handle.
    pub fn downgrade(&self) -> WeakKernel {
        WeakKernel(Arc::downgrade(&self.inner))
    }

    /// Whether two handles name the same kernel.
    pub fn same(&self, other: &Kernel) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Fails with `ESHUTDOWN` once the kernel has halted. Every system call
    /// starts here.
    #[inline]
    pub fn check(&self) -> Result<(), Errno> {
        if self.inner.halted.load(Ordering::Acquire) {
            Err(Errno::ESHUTDOWN)
        } else {
            Ok(())
        }
    }

    /// Whether the kernel has halted.
    pub fn is_halted(&self) -> bool {
        self.inner.halted.load(Ordering::Acquire)
    }

    /// State a component keeps per kernel, by name (the network stack, ...).
    pub fn set_extension(&self, name: &'static str, value: Arc<dyn Any + Send + Sync>) {
        self.inner.extensions.lock().insert(name, value);
    }

    /// See [`Kernel::set_extension`].
    pub fn extension(&self, name: &'static str) -> Option<Arc<dyn Any + Send + Sync>> {
        self.inner.extensions.lock().get(name).cloned()
    }

    /// Monotonic time.
    pub fn now(&self) -> MonoNs {
        self.inner.hyper.clock_monotonic()
    }

    /// Creates a new process with the given credentials, rooted at `/`,
    /// with an empty descriptor table.
    pub fn new_process(&self, cred: Cred) -> Result<Arc<Proc>, Errno> {
        self.check()?;
        let root = self.inner.vfs.root();
        let pid = self.alloc_pid();
        let p = Arc::new(Proc::new(self.clone(), pid, cred, root, None));
        self.register_proc(&p);
        Ok(p)
    }

    pub(crate) fn alloc_pid(&self) -> i32 {
        self.inner.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn register_proc(&self, p: &Arc<Proc>) {
        let mut procs = self.inner.procs.lock();
        // Forget processes that are gone, so the table does not grow with
        // every process ever made.
        if procs.len() >= 64 && procs.len().is_power_of_two() {
            procs.retain(|_, w| w.strong_count() > 0);
        }
        procs.insert(p.pid(), Arc::downgrade(p));
    }

    pub(crate) fn unregister_proc(&self, pid: i32) {
        self.inner.procs.lock().remove(&pid);
    }

    /// Number of live processes.
    pub fn process_count(&self) -> usize {
        self.inner
            .procs
            .lock()
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// Sleeps until `ready` returns `Some`, the deadline passes
    /// (`ETIMEDOUT`) or the kernel halts (`ESHUTDOWN`), for a kernel thread
    /// (no process: nothing can cancel it but halt; system calls use
    /// [`Proc::wait`]). The calling thread is registered on every queue in
    /// `queues`; whoever changes what `ready` looks at must wake one of
    /// them. `ready` runs with no lock of ours held and may take its own.
    pub fn wait<R>(
        &self,
        queues: &[&WaitQueue],
        deadline: Option<MonoNs>,
        ready: impl FnMut() -> Result<Option<R>, Errno>,
    ) -> Result<R, Errno> {
        self.wait_for(None, true, queues, deadline, ready)
    }

    /// The sleeping loop behind [`Kernel::wait`] and [`Proc::wait`]: when
    /// `who` is given, the wait registers with that process and fails with
    /// `EINTR` once [`Proc::cancel_calls`] is called after it began. With
    /// `spin`, a few rounds of `ready` come first (when a spin slot is
    /// free); callers that spun their own, cheaper way pass `false`.
    pub(crate) fn wait_for<R>(
        &self,
        who: Option<&Proc>,
        spin: bool,
        queues: &[&WaitQueue],
        deadline: Option<MonoNs>,
        mut ready: impl FnMut() -> Result<Option<R>, Errno>,
    ) -> Result<R, Errno> {
        self.check()?;
        let began = who.map(|p| (p, p.cancel_generation()));
        let cancelled = || began.is_some_and(|(p, g)| p.cancel_generation() != g);
        if let Some(r) = ready()? {
            return Ok(r);
        }
        // A short spin first, when a processor is free for it: a wake-up
        // through the host costs tens of microseconds, a round of `ready`
        // a few hundred nanoseconds.
        let sched = &self.inner.sched;
        if let Some(_slot) = spin.then(|| sched.try_spin()).flatten() {
            for _ in 0..WAIT_SPIN_ROUNDS.min(sched.max_rounds()) {
                sched.relax();
                if let Some(r) = ready()? {
                    return Ok(r);
                }
            }
        }
        let hyper = &self.inner.hyper;
        let parker = hyper.current_parker();
        let id = parker.id();
        let registry = match who {
            Some(p) => p.sleepers(),
            None => &self.inner.sleepers,
        };
        loop {
            for q in queues {
                q.register(&parker);
            }
            registry.push(&parker);
            // Halt wins over readiness: halting closes descriptors, which
            // may make a condition true (EOF), but a woken call must fail.
            let outcome = if self.is_halted() {
                Some(Err(Errno::ESHUTDOWN))
            } else if cancelled() {
                Some(Err(Errno::EINTR))
            } else {
                match ready() {
                    Ok(Some(r)) => Some(Ok(r)),
                    Err(e) => Some(Err(e)),
                    Ok(None) => match deadline {
                        Some(d) if hyper.clock_monotonic() >= d => Some(Err(Errno::ETIMEDOUT)),
                        // Woken (taken off a queue), cancelled or halted
                        // while `ready` ran: look again instead of
                        // sleeping. The wake-up's token may be gone: a
                        // sleeping lock that `ready` waited for parks this
                        // same thread, and a queue's wake-up is one-shot.
                        _ if queues.iter().any(|q| !q.is_registered(id))
                            || cancelled()
                            || self.is_halted() =>
                        {
                            None
                        }
                        _ => {
                            parker.park_until(deadline);
                            None
                        }
                    },
                }
            };
            for q in queues {
                q.unregister(id);
            }
            registry.withdraw(id);
            if let Some(out) = outcome {
                return out;
            }
        }
    }

    /// Sleeps for `ns` nanoseconds, or until halt (`ESHUTDOWN`).
    pub fn sleep_ns(&self, ns: u64) -> Result<(), Errno> {
        let deadline = self.now().saturating_add(ns);
        match self.wait(&[], Some(deadline), || Ok(None::<()>)) {
            Err(Errno::ETIMEDOUT) => Ok(()),
            other => other,
        }
    }

    /// Stops the kernel: later calls fail with `ESHUTDOWN`, sleeping calls
    /// wake and fail, kernel threads stop, file systems are synced and
    /// unmounted, and every descriptor is closed. Idempotent.
    pub fn halt(&self) {
        if self.inner.halted.swap(true, Ordering::AcqRel) {
            return;
        }
        self.wake_sleepers();
        self.inner.callouts.halt(self);
        let comps: Vec<_> = core::mem::take(&mut *self.inner.components.lock());
        for c in comps.iter().rev() {
            c.halt(self);
        }
        let procs: Vec<Arc<Proc>> = {
            let mut t = self.inner.procs.lock();
            let live = t.values().filter_map(|w| w.upgrade()).collect();
            t.clear();
            live
        };
        for p in &procs {
            p.release_resources();
        }
        self.inner.vfs.unmount_all();
        self.inner.extensions.lock().clear();
        // A sleeper that registered after the first wake-up sees the flag
        // on its re-check; wake once more for those that raced with it.
        self.wake_sleepers();
        for p in &procs {
            p.wake_sleepers();
        }
    }

    fn wake_sleepers(&self) {
        self.inner.sleepers.wake_all();
        let procs: Vec<Arc<Proc>> = self
            .inner
            .procs
            .lock()
            .values()
            .filter_map(|w| w.upgrade())
            .collect();
        for p in procs {
            p.wake_sleepers();
        }
    }

    /// Spawns a named kernel thread through the platform.
    pub fn spawn_thread(
        &self,
        name: &str,
        body: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<Box<dyn hyper::ThreadHandle>, Errno> {
        self.check()?;
        self.inner.hyper.thread_spawn(name, body)
    }

    /// Spawns a named kernel thread that is handed its own parker, and
    /// returns once the thread runs, with that parker: wake-ups sent to it
    /// from then on cannot be lost, whenever the thread starts waiting.
    /// The caller sleeps meanwhile (a platform that runs one thread at a
    /// time must run the new one), and gets back any wake-up token its
    /// sleep took from a wait it is inside of.
    pub fn spawn_thread_parked(
        &self,
        name: &str,
        body: Box<dyn FnOnce(Arc<dyn Parker>) + Send + 'static>,
    ) -> Result<(Box<dyn hyper::ThreadHandle>, Arc<dyn Parker>), Errno> {
        let slot: Arc<SpinMutex<Option<Arc<dyn Parker>>>> = Arc::new(SpinMutex::new(None));
        let (slot2, hyper) = (slot.clone(), self.inner.hyper.clone());
        let me = hyper.current_parker();
        let spawner = me.clone();
        let handle = self.spawn_thread(
            name,
            Box::new(move || {
                let parker = hyper.current_parker();
                *slot2.lock() = Some(parker.clone());
                spawner.unpark();
                body(parker);
            }),
        )?;
        let parker = loop {
            if let Some(p) = slot.lock().clone() {
                break p;
            }
            // Bounded: a stale or lost wake-up token costs a millisecond.
            let soon = self.inner.hyper.clock_monotonic().saturating_add(1_000_000);
            me.park_until(Some(soon));
        };
        me.unpark();
        Ok((handle, parker))
    }

    /// Writes a line to the console, prefixed like a kernel message.
    pub fn log(&self, msg: &str) {
        let mut line = String::with_capacity(msg.len() + 8);
        line.push_str("[rump] ");
        line.push_str(msg);
        line.push('\n');
        self.inner.hyper.console_write(line.as_bytes());
    }
}

impl WeakKernel {
    /// The kernel, if it is still around.
    pub fn upgrade(&self) -> Option<Kernel> {
        self.0.upgrade().map(|inner| Kernel { inner })
    }
}

impl core::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Kernel")
            .field("halted", &self.is_halted())
            .finish_non_exhaustive()
    }
}
