//! Process contexts (`rump_lwproc(3)`).
//!
//! A [`Proc`] has a pid, credentials, a root and working directory, a umask
//! and a descriptor table, and belongs to one kernel. The Rust API passes a
//! `&Proc` to every system call; the C ABI and hijack library bind a host
//! thread to an [`Lwp`] of a process instead. [`Proc::rfork`] makes a child
//! that shares, copies or starts without the parent's descriptors.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use portable_atomic::AtomicU64;

use hyper::MonoNs;

use hyper::Errno;

use crate::cred::Cred;
use crate::fd::FdTable;
use crate::file::File;
use crate::sync::{SleepMutex, Sleepers, WaitQueue};
use crate::vfs::Vnode;
use crate::Kernel;

/// What a child made by [`Proc::rfork`] gets of its parent's descriptors
/// (NetBSD's `RUMP_RFFDG`, `RUMP_RFCFDG` and sharing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkFds {
    /// The same table: a descriptor opened by one is seen by the other.
    Share,
    /// A copy: the same open files, independent slots.
    Copy,
    /// An empty table.
    Clear,
}

/// Root and working directory.
#[derive(Clone)]
pub struct ProcDirs {
    pub root: Vnode,
    pub cwd: Vnode,
}

/// A process.
pub struct Proc {
    pid: i32,
    ppid: i32,
    kernel: Kernel,
    cred: SleepMutex<Arc<Cred>>,
    dirs: SleepMutex<Option<ProcDirs>>,
    umask: AtomicU32,
    fds: Arc<SleepMutex<FdTable>>,
    next_lid: AtomicI32,
    /// Threads sleeping in this process's calls (for halt and
    /// cancellation).
    sleepers: Sleepers,
    /// Bumped by [`Proc::cancel_calls`]; a wait that began before the bump
    /// fails with `EINTR`.
    cancel_gen: AtomicU64,
}

/// A thread of a process, for binding host threads (the C ABI, hijack).
pub struct Lwp {
    pub lid: i32,
    pub proc: Arc<Proc>,
}

impl Proc {
    pub(crate) fn new(
        kernel: Kernel,
        pid: i32,
        cred: Cred,
        root: Option<Vnode>,
        ppid: Option<i32>,
    ) -> Proc {
        let sched = kernel.sched().clone();
        Proc {
            pid,
            ppid: ppid.unwrap_or(0),
            kernel,
            cred: SleepMutex::new(&sched, Arc::new(cred)),
            dirs: SleepMutex::new(
                &sched,
                root.map(|r| ProcDirs {
                    cwd: r.clone(),
                    root: r,
                }),
            ),
            umask: AtomicU32::new(0o022),
            fds: Arc::new(SleepMutex::new(&sched, FdTable::new())),
            next_lid: AtomicI32::new(1),
            sleepers: Sleepers::new(),
            cancel_gen: AtomicU64::new(0),
        }
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The parent's pid (0 for processes made by the kernel).
    pub fn ppid(&self) -> i32 {
        self.ppid
    }

    /// The kernel this process lives in.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// Current credentials (a snapshot).
    pub fn cred(&self) -> Arc<Cred> {
        self.cred.lock().clone()
    }

    /// Replaces the credentials.
    pub fn set_cred(&self, cred: Cred) {
        *self.cred.lock() = Arc::new(cred);
    }

    /// Root and working directory; `ENOENT` in a kernel without a root
    /// file system, `ESHUTDOWN` after halt.
    pub fn dirs(&self) -> Result<ProcDirs, Errno> {
        self.kernel.check()?;
        self.dirs.lock().clone().ok_or(Errno::ENOENT)
    }

    /// Sets the working directory.
    pub fn set_cwd(&self, cwd: Vnode) -> Result<(), Errno> {
        let mut d = self.dirs.lock();
        let dirs = d.as_mut().ok_or(Errno::ENOENT)?;
        let old = core::mem::replace(&mut dirs.cwd, cwd);
        drop(d);
        drop(old);
        Ok(())
    }

    /// Sets the root directory (`chroot`).
    pub fn set_root(&self, root: Vnode) -> Result<(), Errno> {
        let mut d = self.dirs.lock();
        let dirs = d.as_mut().ok_or(Errno::ENOENT)?;
        let old = core::mem::replace(&mut dirs.root, root);
        drop(d);
        drop(old);
        Ok(())
    }

    /// The file-creation mask.
    pub fn umask(&self) -> u32 {
        self.umask.load(Ordering::Relaxed)
    }

    /// Sets the umask, returning the old one.
    pub fn set_umask(&self, mask: u32) -> u32 {
        self.umask.swap(mask & 0o777, Ordering::Relaxed)
    }

    /// The descriptor table.
    pub fn fds(&self) -> &SleepMutex<FdTable> {
        &self.fds
    }

    /// The file behind a descriptor.
    #[inline]
    pub fn file(&self, fd: i32) -> Result<Arc<File>, Errno> {
        self.fds.lock().get(fd).cloned()
    }

    /// Installs a file at the lowest free descriptor.
    pub fn install(&self, file: Arc<File>, cloexec: bool) -> Result<i32, Errno> {
        self.fds.lock().alloc(file, cloexec, 0)
    }

    /// Makes a child process (`rump_lwproc_rfork`): same credentials,
    /// directories and umask; descriptors as `fds` says.
    pub fn rfork(&self, fds: ForkFds) -> Result<Arc<Proc>, Errno> {
        self.kernel.check()?;
        let sched = self.kernel.sched();
        let table = match fds {
            ForkFds::Share => self.fds.clone(),
            ForkFds::Copy => Arc::new(SleepMutex::new(sched, self.fds.lock().clone())),
            ForkFds::Clear => Arc::new(SleepMutex::new(sched, FdTable::new())),
        };
        let child = Arc::new(Proc {
            pid: self.kernel.alloc_pid(),
            ppid: self.pid,
            kernel: self.kernel.clone(),
            cred: SleepMutex::new(sched, self.cred()),
            dirs: SleepMutex::new(sched, self.dirs.lock().clone()),
            umask: AtomicU32::new(self.umask()),
            fds: table,
            next_lid: AtomicI32::new(1),
            sleepers: Sleepers::new(),
            cancel_gen: AtomicU64::new(0),
        });
        self.kernel.register_proc(&child);
        Ok(child)
    }

    /// A new thread of this process.
    pub fn new_lwp(self: &Arc<Self>) -> Arc<Lwp> {
        Arc::new(Lwp {
            lid: self.next_lid.fetch_add(1, Ordering::Relaxed),
            proc: self.clone(),
        })
    }

    /// Sleeps, for a call of this process, until `ready` returns `Some`,
    /// the deadline passes (`ETIMEDOUT`), the kernel halts (`ESHUTDOWN`)
    /// or the process's calls are cancelled (`EINTR`). See
    /// [`Kernel::wait`] for the rules `ready` and `queues` follow.
    pub fn wait<R>(
        &self,
        queues: &[&WaitQueue],
        deadline: Option<MonoNs>,
        ready: impl FnMut() -> Result<Option<R>, Errno>,
    ) -> Result<R, Errno> {
        self.kernel
            .wait_for(Some(self), true, queues, deadline, ready)
    }

    /// [`Proc::wait`] without its short spin, for a caller that has just
    /// spun on a cheaper signal of its own (a socket's event counter) and
    /// should not go on spinning on `ready`.
    pub fn wait_without_spin<R>(
        &self,
        queues: &[&WaitQueue],
        deadline: Option<MonoNs>,
        ready: impl FnMut() -> Result<Option<R>, Errno>,
    ) -> Result<R, Errno> {
        self.kernel
            .wait_for(Some(self), false, queues, deadline, ready)
    }

    /// Interrupts every call this process is blocked in right now: each
    /// returns `EINTR` (as a signal would, without `SA_RESTART`). Calls
    /// that begin afterwards wait normally; other processes' calls, even
    /// on the same descriptors, are not disturbed. For a server whose
    /// client went away mid-call.
    pub fn cancel_calls(&self) {
        self.cancel_gen.fetch_add(1, Ordering::SeqCst);
        self.wake_sleepers();
    }

    pub(crate) fn cancel_generation(&self) -> u64 {
        self.cancel_gen.load(Ordering::SeqCst)
    }

    pub(crate) fn sleepers(&self) -> &Sleepers {
        &self.sleepers
    }

    pub(crate) fn wake_sleepers(&self) {
        self.sleepers.wake_all();
    }

    /// Closes every descriptor marked close-on-exec.
    pub fn exec_close(&self) {
        let closed = self.fds.lock().close_on_exec();
        drop(closed);
    }

    /// Drops descriptors and directories (at halt). Files are dropped
    /// outside the table lock.
    pub(crate) fn release_resources(&self) {
        let files = self.fds.lock().clear();
        drop(files);
        let dirs = self.dirs.lock().take();
        drop(dirs);
    }
}

impl Lwp {
    /// Binds the calling host thread to this thread context, so calls that
    /// cannot pass a context (the C ABI, the hijack library) find it with
    /// [`Lwp::current`]. Returns the previous binding's lwp, if any.
    pub fn bind_current(self: &Arc<Self>) -> Option<Arc<Lwp>> {
        let hyper = self.proc.kernel().hyper();
        let prev = hyper.set_current(Some(self.clone()));
        prev.and_then(|c| c.downcast::<Lwp>().ok())
    }

    /// Unbinds the calling host thread.
    pub fn unbind_current(hyper: &dyn hyper::Hyper) -> Option<Arc<Lwp>> {
        hyper
            .set_current(None)
            .and_then(|c| c.downcast::<Lwp>().ok())
    }

    /// The thread context the calling host thread is bound to.
    pub fn current(hyper: &dyn hyper::Hyper) -> Option<Arc<Lwp>> {
        hyper.current().and_then(|c| c.downcast::<Lwp>().ok())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kernel.unregister_proc(self.pid);
    }
}
