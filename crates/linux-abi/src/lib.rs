//! The Linux x86_64 personality: a Linux system call (its number and six
//! register arguments) served by the system-call layer.
//!
//! [`Linux::call`] decodes the arguments exactly as Linux x86_64 does
//! (`int` arguments are the low 32 bits of their register, pointers are
//! read and written through [`Memory`]), runs one or a few
//! [`sys::Request`]s on a [`sys::Syscalls`] implementation (a local
//! process or a remote kernel), and writes results back in Linux's
//! structure layouts ([`layout`]). Errors are Linux errno values; an
//! unknown number is `ENOSYS`; a bad pointer is `EFAULT` and a bad length
//! `EINVAL`, never a panic.
//!
//! A [`Namespace`] lets the caller of the personality (the `rump run`
//! supervisor) translate between the traced program's view and the
//! kernel's: paths (the `/rump` prefix is stripped there) and descriptor
//! numbers (the program holds host placeholders for kernel descriptors).
//! [`Direct`] translates nothing, for tests and for programs that hold
//! kernel numbers themselves.
//!
//! Neighbours: below is `sys` (and, through it, the kernel's constants,
//! which already use Linux values); above is the `rump run` supervisor
//! in the `rump` binary, which feeds it seccomp notifications.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod files;
pub mod layout;
mod mem;
pub mod nr;
mod sockets;

pub use sockets::read_sockaddr;

pub use mem::{
    gather, read_bytes, read_cstr, read_cstr_max, read_iovecs, read_u32, read_u64, scatter,
    write_bytes, Iovec, Memory, VecMemory,
};

use alloc::vec::Vec;

use sys::consts::at;
use sys::{Errno, Request, Response, Syscalls};

/// How the caller's names map onto the kernel's.
pub trait Namespace {
    /// The kernel's path for a path the caller passed (`EXDEV`, say, for
    /// one that does not belong to the kernel). Symbolic-link targets are
    /// contents, not names, and are not passed here.
    fn path(&self, path: Vec<u8>) -> Result<Vec<u8>, Errno> {
        Ok(path)
    }
    /// The caller's path for a path of the kernel's (`getcwd`).
    fn caller_path(&self, path: Vec<u8>) -> Vec<u8> {
        path
    }
    /// The kernel's descriptor for the caller's `fd` (also called for
    /// `dirfd` arguments, `AT_FDCWD` included).
    fn fd(&self, fd: i32) -> Result<i32, Errno> {
        Ok(fd)
    }
    /// Gives the caller kernel descriptor `kfd`, just created; returns the
    /// caller's number for it. On an error the personality closes `kfd`.
    fn install(&self, kfd: i32, cloexec: bool) -> Result<i32, Errno> {
        let _ = cloexec;
        Ok(kfd)
    }
}

/// The identity namespace: the caller uses the kernel's paths and
/// descriptor numbers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Direct;

impl Namespace for Direct {}

/// One caller's system calls, served by `sys`.
pub struct Linux<'a> {
    pub sys: &'a dyn Syscalls,
    pub mem: &'a dyn Memory,
    pub ns: &'a dyn Namespace,
}

/// `rax` for a result: the value, or the negated errno.
pub fn ret(r: Result<u64, Errno>) -> i64 {
    match r {
        Ok(v) => v as i64,
        Err(e) => -(e.0 as i64),
    }
}

/// The `int` in the low 32 bits of a register (seccomp and the syscall
/// entry zero-extend nothing: `fd = -1` arrives as `0xffff_ffff`).
pub(crate) fn int(a: u64) -> i32 {
    a as u32 as i32
}

impl Linux<'_> {
    /// Serves system call `nr` with arguments `a`; the result is what
    /// Linux would put in `rax` on success.
    pub fn call(&self, nr: u64, a: [u64; 6]) -> Result<u64, Errno> {
        use nr::*;
        match nr {
            // ----- files -------------------------------------------------
            OPEN => self.openat(at::FDCWD as u64, a[0], a[1], a[2]),
            CREAT => {
                let flags =
                    (sys::consts::o::CREAT | sys::consts::o::WRONLY | sys::consts::o::TRUNC) as u64;
                self.openat(at::FDCWD as u64, a[0], flags, a[1])
            }
            OPENAT => self.openat(a[0], a[1], a[2], a[3]),
            CLOSE => self.unit(Request::Close { fd: self.fd(a[0])? }),
            READ => self.read(a[0], a[1], a[2], None),
            WRITE => self.write(a[0], a[1], a[2], None),
            PREAD64 => self.read(a[0], a[1], a[2], Some(a[3] as i64)),
            PWRITE64 => self.write(a[0], a[1], a[2], Some(a[3] as i64)),
            READV => self.readv(a[0], a[1], a[2], None),
            WRITEV => self.writev(a[0], a[1], a[2], None),
            // pos_l carries the whole offset on 64-bit (pos_from_hilo).
            PREADV => self.readv(a[0], a[1], a[2], Some(a[3] as i64)),
            PWRITEV => self.writev(a[0], a[1], a[2], Some(a[3] as i64)),
            LSEEK => match self.req(Request::Lseek {
                fd: self.fd(a[0])?,
                offset: a[1] as i64,
                whence: int(a[2]),
            })? {
                Response::Size(n) => Ok(n),
                _ => Err(Errno::EIO),
            },
            FSTAT => self.fstat(a[0], a[1]),
            STAT => self.fstatat(at::FDCWD as u64, a[0], a[1], 0),
            LSTAT => self.fstatat(at::FDCWD as u64, a[0], a[1], at::SYMLINK_NOFOLLOW as u64),
            NEWFSTATAT => self.fstatat(a[0], a[1], a[2], a[3]),
            STATX => self.statx(a[0], a[1], a[2], a[3], a[4]),
            GETDENTS64 => self.getdents64(a[0], a[1], a[2]),
            MKDIR => self.mkdirat(at::FDCWD as u64, a[0], a[1]),
            MKDIRAT => self.mkdirat(a[0], a[1], a[2]),
            UNLINK => self.unlinkat(at::FDCWD as u64, a[0], 0),
            RMDIR => self.unlinkat(at::FDCWD as u64, a[0], at::REMOVEDIR as u64),
            UNLINKAT => self.unlinkat(a[0], a[1], a[2]),
            RENAME => self.renameat2(at::FDCWD as u64, a[0], at::FDCWD as u64, a[1], 0),
            RENAMEAT => self.renameat2(a[0], a[1], a[2], a[3], 0),
            RENAMEAT2 => self.renameat2(a[0], a[1], a[2], a[3], a[4]),
            LINK => self.linkat(at::FDCWD as u64, a[0], at::FDCWD as u64, a[1], 0),
            LINKAT => self.linkat(a[0], a[1], a[2], a[3], a[4]),
            SYMLINK => self.symlinkat(a[0], at::FDCWD as u64, a[1]),
            SYMLINKAT => self.symlinkat(a[0], a[1], a[2]),
            READLINK => self.readlinkat(at::FDCWD as u64, a[0], a[1], a[2]),
            READLINKAT => self.readlinkat(a[0], a[1], a[2], a[3]),
            CHMOD => self.fchmodat(at::FDCWD as u64, a[0], a[1]),
            FCHMODAT => self.fchmodat(a[0], a[1], a[2]),
            FCHMOD => self.unit(Request::Fchmod {
                fd: self.fd(a[0])?,
                mode: a[1] as u32 & sys::consts::s::PERM_MASK,
            }),
            CHOWN => self.fchownat(at::FDCWD as u64, a[0], a[1], a[2], 0),
            LCHOWN => self.fchownat(
                at::FDCWD as u64,
                a[0],
                a[1],
                a[2],
                at::SYMLINK_NOFOLLOW as u64,
            ),
            FCHOWNAT => self.fchownat(a[0], a[1], a[2], a[3], a[4]),
            FCHOWN => self.unit(Request::Fchown {
                fd: self.fd(a[0])?,
                uid: a[1] as u32,
                gid: a[2] as u32,
            }),
            UTIMENSAT => self.utimensat(a[0], a[1], a[2], a[3]),
            TRUNCATE => {
                let path = self.path(a[0])?;
                self.unit(Request::Truncate {
                    path,
                    len: a[1] as i64,
                })
            }
            FTRUNCATE => self.unit(Request::Ftruncate {
                fd: self.fd(a[0])?,
                len: a[1] as i64,
            }),
            FSYNC => self.unit(Request::Fsync { fd: self.fd(a[0])? }),
            FDATASYNC => self.unit(Request::Fdatasync { fd: self.fd(a[0])? }),
            SYNC => self.unit(Request::Sync),
            ACCESS => self.faccessat(at::FDCWD as u64, a[0], a[1], 0),
            FACCESSAT => self.faccessat(a[0], a[1], a[2], 0),
            FACCESSAT2 => self.faccessat(a[0], a[1], a[2], a[3]),
            CHDIR => {
                let path = self.path(a[0])?;
                self.unit(Request::Chdir { path })
            }
            FCHDIR => self.unit(Request::Fchdir { fd: self.fd(a[0])? }),
            GETCWD => self.getcwd(a[0], a[1]),
            STATFS => self.statfs(Some(a[0]), None, a[1]),
            FSTATFS => self.statfs(None, Some(a[0]), a[1]),
            FCNTL => self.fcntl(a[0], a[1], a[2]),
            IOCTL => self.ioctl(a[0], a[1], a[2]),
            FLOCK => {
                // No file locks in the kernel yet: say so rather than
                // pretend the lock is held.
                self.fd_valid(a[0])?;
                Err(Errno::ENOLCK)
            }
            DUP => {
                let kfd = self.int_of(Request::Dup { fd: self.fd(a[0])? })?;
                self.install(kfd, false)
            }
            DUP2 => self.int_of(Request::Dup2 {
                old: self.fd(a[0])?,
                new: int(a[1]),
            }),
            DUP3 => self.int_of(Request::Dup3 {
                old: self.fd(a[0])?,
                new: int(a[1]),
                flags: int(a[2]),
            }),
            MKNOD => self.mknodat(at::FDCWD as u64, a[0], a[1], a[2]),
            MKNODAT => self.mknodat(a[0], a[1], a[2], a[3]),
            POLL => self.poll(a[0], a[1], PollTimeout::Ms(int(a[2]))),
            PPOLL => self.poll(a[0], a[1], PollTimeout::Timespec(a[2])),
            SELECT => self.select(a[0], a[1], a[2], a[3], a[4], false),
            PSELECT6 => self.select(a[0], a[1], a[2], a[3], a[4], true),
            // Rump files cannot back host memory mappings (yet).
            MMAP => Err(Errno::ENODEV),
            // ----- sockets -----------------------------------------------
            SOCKET => self.socket(a[0], a[1], a[2]),
            // The kernel has no socket pairs (AF_UNIX stays on the host);
            // Linux says the same for AF_INET.
            SOCKETPAIR => Err(Errno::EOPNOTSUPP),
            BIND => self.bind_connect(a[0], a[1], a[2], true),
            CONNECT => self.bind_connect(a[0], a[1], a[2], false),
            LISTEN => self.unit(Request::Listen {
                fd: self.fd(a[0])?,
                backlog: int(a[1]),
            }),
            ACCEPT => self.accept4(a[0], a[1], a[2], 0),
            ACCEPT4 => self.accept4(a[0], a[1], a[2], a[3]),
            SENDTO => self.sendto(a[0], a[1], a[2], a[3], a[4], a[5]),
            RECVFROM => self.recvfrom(a[0], a[1], a[2], a[3], a[4], a[5]),
            SENDMSG => self.sendmsg(a[0], a[1], a[2]),
            RECVMSG => self.recvmsg(a[0], a[1], a[2]),
            SHUTDOWN => self.unit(Request::Shutdown {
                fd: self.fd(a[0])?,
                how: int(a[1]),
            }),
            GETSOCKNAME => self.sockname(a[0], a[1], a[2], false),
            GETPEERNAME => self.sockname(a[0], a[1], a[2], true),
            SETSOCKOPT => self.setsockopt(a[0], a[1], a[2], a[3], a[4]),
            GETSOCKOPT => self.getsockopt(a[0], a[1], a[2], a[3], a[4]),
            // ----- identity ----------------------------------------------
            GETPID => self.int_of(Request::Getpid),
            GETPPID => self.int_of(Request::Getppid),
            GETUID => self.int_of(Request::Getuid),
            GETEUID => self.int_of(Request::Geteuid),
            GETGID => self.int_of(Request::Getgid),
            GETEGID => self.int_of(Request::Getegid),
            GETGROUPS => self.getgroups(a[0], a[1]),
            UMASK => self.int_of(Request::Umask {
                mask: a[0] as u32 & 0o777,
            }),
            UNAME => match self.req(Request::Uname)? {
                Response::Uname(u) => {
                    write_bytes(self.mem, a[0], &layout::encode_utsname(&u))?;
                    Ok(0)
                }
                _ => Err(Errno::EIO),
            },
            // io_uring would bypass whoever serves these calls; ENOSYS
            // makes libraries fall back to plain calls.
            IO_URING_SETUP => Err(Errno::ENOSYS),
            _ => Err(Errno::ENOSYS),
        }
    }

    /// [`Linux::call`] as Linux's `rax`: the value or `-errno`.
    pub fn syscall(&self, nr: u64, a: [u64; 6]) -> i64 {
        ret(self.call(nr, a))
    }

    // ----- helpers shared by the call modules ---------------------------

    pub(crate) fn req(&self, r: Request) -> Result<Response, Errno> {
        self.sys.call(r)
    }

    pub(crate) fn unit(&self, r: Request) -> Result<u64, Errno> {
        self.req(r).map(|_| 0)
    }

    /// A call returning a number (`Int` or `Size`).
    pub(crate) fn int_of(&self, r: Request) -> Result<u64, Errno> {
        match self.req(r)? {
            Response::Int(v) => Ok(v as u64),
            Response::Size(v) => Ok(v),
            Response::Unit => Ok(0),
            _ => Err(Errno::EIO),
        }
    }

    /// The kernel's descriptor for a descriptor argument.
    pub(crate) fn fd(&self, a: u64) -> Result<i32, Errno> {
        self.ns.fd(int(a))
    }

    /// A `dirfd` argument (`AT_FDCWD` goes through the namespace too).
    pub(crate) fn dirfd(&self, a: u64) -> Result<i32, Errno> {
        self.ns.fd(int(a))
    }

    /// The kernel's path for the path argument at `addr`.
    pub(crate) fn path(&self, addr: u64) -> Result<Vec<u8>, Errno> {
        self.ns.path(read_cstr(self.mem, addr)?)
    }

    /// Hands a new kernel descriptor to the caller (closing it if that
    /// fails).
    pub(crate) fn install(&self, kfd: u64, cloexec: bool) -> Result<u64, Errno> {
        let kfd = kfd as i32;
        match self.ns.install(kfd, cloexec) {
            Ok(fd) => Ok(fd as u64),
            Err(e) => {
                let _ = self.req(Request::Close { fd: kfd });
                Err(e)
            }
        }
    }

    /// `EBADF` unless the argument names an open descriptor.
    pub(crate) fn fd_valid(&self, a: u64) -> Result<i32, Errno> {
        let fd = self.fd(a)?;
        self.req(Request::Fcntl {
            fd,
            cmd: sys::consts::f::GETFD,
            arg: 0,
        })?;
        Ok(fd)
    }

    fn getgroups(&self, size: u64, list: u64) -> Result<u64, Errno> {
        let size = int(size);
        if size < 0 {
            return Err(Errno::EINVAL);
        }
        let groups = match self.req(Request::Getgroups)? {
            Response::Ids(g) => g,
            _ => return Err(Errno::EIO),
        };
        if size == 0 {
            return Ok(groups.len() as u64);
        }
        if (size as usize) < groups.len() {
            return Err(Errno::EINVAL);
        }
        let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_ne_bytes()).collect();
        write_bytes(self.mem, list, &bytes)?;
        Ok(groups.len() as u64)
    }
}

/// How a poll call gives its timeout.
pub(crate) enum PollTimeout {
    /// `poll`: milliseconds, negative for none.
    Ms(i32),
    /// `ppoll`: a `struct timespec` pointer, NULL for none.
    Timespec(u64),
}
