//! Open-file objects: [`File`] and the [`FileOps`] each kind implements.
//!
//! A descriptor names a `File`; several descriptors (after `dup`) and
//! several processes (after `rfork`) may name the same one and so share its
//! offset and status flags, as POSIX requires. Vnodes, pipes and (later)
//! sockets are kinds of file, each with its own `FileOps`, like NetBSD's
//! `struct fileops`. The file is closed when its last reference goes.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicI32, Ordering};

use hyper::{Errno, Timespec};

use crate::consts::o;
use crate::sync::{RawSleepMutex, Sched, SleepMutexGuard, WaitQueue};
use crate::vfs::Vnode;
use crate::{Kernel, Proc};

/// Where a read or write happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pos {
    /// At the file's offset, which then advances (`read`, `write`).
    Current,
    /// At this offset, leaving the file's offset alone (`pread`, `pwrite`).
    At(u64),
}

/// File status as `stat(2)` reports it (Linux field meanings).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u32,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

/// The operations of one kind of open file.
pub trait FileOps: Send + Sync {
    /// Reads into `buf`, for process `p` (whose calls a wait must be
    /// cancellable with: [`Proc::wait`]). Blocking kinds consult
    /// `file.is_nonblocking()`.
    fn read(&self, p: &Proc, file: &File, buf: &mut [u8], pos: Pos) -> Result<usize, Errno>;
    /// Writes `buf`, for process `p`.
    fn write(&self, p: &Proc, file: &File, buf: &[u8], pos: Pos) -> Result<usize, Errno>;
    /// Status.
    fn stat(&self, k: &Kernel) -> Result<Stat, Errno>;
    /// The `poll` events that are ready now, out of `events` plus the
    /// always-reported `POLLERR`, `POLLHUP` and `POLLNVAL`.
    fn poll(&self, k: &Kernel, events: i16) -> i16;
    /// The queue woken when the poll state changes; `None` for kinds that
    /// are always ready.
    fn wait_queue(&self) -> Option<&WaitQueue> {
        None
    }
    /// Repositions the offset; kinds without one fail with `ESPIPE`.
    fn seek(&self, k: &Kernel, file: &File, off: i64, whence: i32) -> Result<u64, Errno> {
        let _ = (k, file, off, whence);
        Err(Errno::ESPIPE)
    }
    /// The vnode, for files that are one (`fchdir`, `fstatvfs`, ...).
    fn vnode(&self) -> Option<&Vnode> {
        None
    }
    /// Makes written data durable (`fsync` of a file that is no vnode, a
    /// raw block device); kinds with nothing to sync refuse (`EINVAL`).
    fn fsync(&self, datasync: bool) -> Result<(), Errno> {
        let _ = datasync;
        Err(Errno::EINVAL)
    }
    /// The object behind the file, for kinds defined in higher layers
    /// (sockets) to find their own state.
    fn as_any(&self) -> &dyn core::any::Any;
}

/// An open file.
pub struct File {
    /// Access mode and status flags (`O_*`), changed by `F_SETFL`.
    flags: AtomicI32,
    /// The offset, locked across a whole read, write, seek or readdir at
    /// the offset, so those are atomic with respect to each other (POSIX
    /// 2.9.7; Linux's `f_pos_lock`).
    offset: RawSleepMutex<u64>,
    ops: Box<dyn FileOps>,
}

impl File {
    /// A new open file.
    pub fn new(flags: i32, ops: Box<dyn FileOps>) -> File {
        File {
            flags: AtomicI32::new(
                flags & !(o::CLOEXEC | o::CREAT | o::EXCL | o::TRUNC | o::NOCTTY),
            ),
            offset: RawSleepMutex::new(0),
            ops,
        }
    }

    /// Its operations.
    pub fn ops(&self) -> &dyn FileOps {
        &*self.ops
    }

    /// Access mode and status flags.
    pub fn flags(&self) -> i32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Replaces the status flags that `F_SETFL` may change.
    pub fn set_status_flags(&self, new: i32) {
        let keep = self.flags() & !o::SETFL_MASK;
        self.flags
            .store(keep | (new & o::SETFL_MASK), Ordering::Relaxed);
    }

    /// Whether the file was opened for reading.
    pub fn is_readable(&self) -> bool {
        matches!(self.flags() & o::ACCMODE, o::RDONLY | o::RDWR)
    }

    /// Whether the file was opened for writing.
    pub fn is_writable(&self) -> bool {
        matches!(self.flags() & o::ACCMODE, o::WRONLY | o::RDWR)
    }

    /// Whether calls on this file must not block.
    pub fn is_nonblocking(&self) -> bool {
        self.flags() & o::NONBLOCK != 0
    }

    /// Whether writes go to the end.
    pub fn is_append(&self) -> bool {
        self.flags() & o::APPEND != 0
    }

    /// Locks the offset for one operation at it: hold the guard across
    /// the I/O, then store the new offset through it. Other threads
    /// reading, writing or seeking this open file wait (sleeping, as
    /// `sched` says) until the guard goes.
    pub fn lock_offset(&self, sched: &Sched) -> SleepMutexGuard<'_, u64> {
        self.offset.lock(sched)
    }

    /// The vnode, if this file is one.
    pub fn vnode(&self) -> Option<&Vnode> {
        self.ops.vnode()
    }

    /// Reads for process `p`, checking the access mode.
    pub fn read(&self, p: &Proc, buf: &mut [u8], pos: Pos) -> Result<usize, Errno> {
        if !self.is_readable() {
            return Err(Errno::EBADF);
        }
        self.ops.read(p, self, buf, pos)
    }

    /// Writes for process `p`, checking the access mode.
    pub fn write(&self, p: &Proc, buf: &[u8], pos: Pos) -> Result<usize, Errno> {
        if !self.is_writable() {
            return Err(Errno::EBADF);
        }
        self.ops.write(p, self, buf, pos)
    }
}
