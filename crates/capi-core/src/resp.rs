//! Taking typed values out of a [`Response`], and the structures C
//! callers know (`struct stat`, `struct statvfs`, ...) filled from the
//! kernel's own.

use rump::sys::{Request, Response, StatVfs};
use rump::{Errno, Stat};

use crate::ctx;

/// A response of the wrong kind can only come from a confused server.
const WRONG: Errno = Errno::EIO;

pub fn unit(req: Request) -> Result<(), Errno> {
    match ctx::call(req)? {
        Response::Unit => Ok(()),
        _ => Err(WRONG),
    }
}

pub fn int(req: Request) -> Result<i64, Errno> {
    match ctx::call(req)? {
        Response::Int(v) => Ok(v),
        Response::Size(v) => i64::try_from(v).map_err(|_| Errno::EOVERFLOW),
        _ => Err(WRONG),
    }
}

pub fn size(req: Request) -> Result<usize, Errno> {
    match ctx::call(req)? {
        Response::Size(v) => usize::try_from(v).map_err(|_| Errno::EOVERFLOW),
        Response::Int(v) => usize::try_from(v).map_err(|_| Errno::EOVERFLOW),
        _ => Err(WRONG),
    }
}

pub fn bytes(req: Request) -> Result<Vec<u8>, Errno> {
    match ctx::call(req)? {
        Response::Bytes(v) => Ok(v),
        _ => Err(WRONG),
    }
}

pub fn stat(req: Request) -> Result<Stat, Errno> {
    match ctx::call(req)? {
        Response::Stat(s) => Ok(s),
        _ => Err(WRONG),
    }
}

pub fn statvfs(req: Request) -> Result<StatVfs, Errno> {
    match ctx::call(req)? {
        Response::StatVfs(s) => Ok(s),
        _ => Err(WRONG),
    }
}

/// A value the kernel produced that the caller's type cannot hold.
pub fn narrow<T: TryFrom<u64>>(v: u64) -> Result<T, Errno> {
    T::try_from(v).map_err(|_| Errno::EOVERFLOW)
}

/// `struct stat` (Linux x86_64) from the kernel's [`Stat`].
pub fn c_stat(s: &Stat) -> libc::stat {
    // SAFETY: libc::stat is a plain C structure of integers, for which all
    // zero bytes are a valid value (its private padding included).
    let mut c: libc::stat = unsafe { std::mem::zeroed() };
    c.st_dev = s.dev;
    c.st_ino = s.ino;
    c.st_mode = s.mode;
    c.st_nlink = s.nlink;
    c.st_uid = s.uid;
    c.st_gid = s.gid;
    c.st_rdev = s.rdev;
    c.st_size = s.size as i64;
    c.st_blksize = s.blksize as i64;
    c.st_blocks = s.blocks as i64;
    c.st_atime = s.atime.sec;
    c.st_atime_nsec = s.atime.nsec as i64;
    c.st_mtime = s.mtime.sec;
    c.st_mtime_nsec = s.mtime.nsec as i64;
    c.st_ctime = s.ctime.sec;
    c.st_ctime_nsec = s.ctime.nsec as i64;
    c
}

/// `struct statvfs` from [`StatVfs`].
pub fn c_statvfs(s: &StatVfs) -> libc::statvfs {
    // SAFETY: a plain C structure of integers; all zeroes is valid.
    let mut c: libc::statvfs = unsafe { std::mem::zeroed() };
    c.f_bsize = s.bsize;
    c.f_frsize = s.frsize;
    c.f_blocks = s.blocks;
    c.f_bfree = s.bfree;
    c.f_bavail = s.bavail;
    c.f_files = s.files;
    c.f_ffree = s.ffree;
    c.f_favail = s.favail;
    c.f_fsid = s.fsid;
    c.f_flag = s.flag;
    c.f_namemax = s.namemax;
    c
}

/// `struct statfs` (with the file-system magic in `f_type`) from
/// [`StatVfs`].
pub fn c_statfs(s: &StatVfs) -> libc::statfs {
    // SAFETY: a plain C structure of integers; all zeroes is valid.
    let mut c: libc::statfs = unsafe { std::mem::zeroed() };
    c.f_type = s.fs_type as _;
    c.f_bsize = s.bsize as _;
    c.f_blocks = s.blocks;
    c.f_bfree = s.bfree;
    c.f_bavail = s.bavail;
    c.f_files = s.files;
    c.f_ffree = s.ffree;
    c.f_namelen = s.namemax as _;
    c.f_frsize = s.frsize as _;
    c
}

/// Copies a Rust string into a fixed C array (`struct utsname`),
/// truncated to leave room for the terminator.
pub fn fill_chars(dst: &mut [libc::c_char], src: &str) {
    let n = src.len().min(dst.len().saturating_sub(1));
    for (d, s) in dst.iter_mut().zip(src.as_bytes()[..n].iter()) {
        *d = *s as libc::c_char;
    }
    if let Some(t) = dst.get_mut(n) {
        *t = 0;
    }
}
