//! File and file-system calls: `rump_sys_open` ... `rump_sys_umount2`.
//!
//! Calls to a kernel in this process go straight to the typed functions
//! of the system-call layer where a request would cost a copy (reads,
//! writes, `open`, `stat`); everything else, and every call to a remote
//! kernel, is one [`Request`].

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};

use rump::sys::{self, consts, Request, TimeArg, MAX_IO};
use rump::Errno;

use crate::ctx::{self, Target};
use crate::ffi::{cstr, cstr_opt, put, put_cstring, ret_int, ret_size, ret_unit, slice, slice_mut};
use crate::resp;

const AT_FDCWD: c_int = consts::at::FDCWD;

fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    ret_int((|| {
        let path = cstr(path)?;
        ctx::with(|t| match t {
            Target::Local(p) => sys::openat(p, dirfd, path, flags, mode).map(i64::from),
            Target::Remote(_) => resp::int(Request::Openat {
                dirfd,
                path: path.to_vec(),
                flags,
                mode,
            }),
        })
    })())
}

/// Opens `path`. Unlike `open(2)`, the mode is always passed (C cannot
/// define variadic functions portably; pass 0 when not creating).
#[no_mangle]
pub extern "C" fn rump_sys_open(path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    openat(AT_FDCWD, path, flags, mode)
}

/// `openat(2)`, with the mode always passed.
#[no_mangle]
pub extern "C" fn rump_sys_openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: libc::mode_t,
) -> c_int {
    openat(dirfd, path, flags, mode)
}

/// `creat(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_creat(path: *const c_char, mode: libc::mode_t) -> c_int {
    openat(
        AT_FDCWD,
        path,
        consts::o::CREAT | consts::o::WRONLY | consts::o::TRUNC,
        mode,
    )
}

/// `close(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_close(fd: c_int) -> c_int {
    ret_unit(ctx::with(|t| match t {
        Target::Local(p) => sys::close(p, fd),
        Target::Remote(_) => resp::unit(Request::Close { fd }),
    }))
}

/// Reads through `read_req` into the caller's buffer.
fn read_into(
    buf: *mut c_void,
    len: usize,
    local: impl FnOnce(&rump::Process, &mut [u8]) -> Result<usize, Errno>,
    remote: impl FnOnce(usize) -> Request,
) -> libc::ssize_t {
    ret_size((|| {
        let out = slice_mut(buf as *mut u8, len)?;
        ctx::with(|t| match t {
            Target::Local(p) => local(p, out),
            Target::Remote(_) => {
                let data = resp::bytes(remote(out.len().min(MAX_IO)))?;
                let n = data.len().min(out.len());
                out[..n].copy_from_slice(&data[..n]);
                Ok(n)
            }
        })
    })())
}

/// `read(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_read(fd: c_int, buf: *mut c_void, len: usize) -> libc::ssize_t {
    read_into(
        buf,
        len,
        |p, b| sys::read(p, fd, b),
        |len| Request::Read { fd, len },
    )
}

/// `pread(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_pread(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    offset: libc::off_t,
) -> libc::ssize_t {
    read_into(
        buf,
        len,
        |p, b| sys::pread(p, fd, b, offset),
        |len| Request::Pread { fd, len, offset },
    )
}

fn write_from(
    buf: *const c_void,
    len: usize,
    local: impl FnOnce(&rump::Process, &[u8]) -> Result<usize, Errno>,
    remote: impl FnOnce(Vec<u8>) -> Request,
) -> libc::ssize_t {
    ret_size((|| {
        let data = slice(buf as *const u8, len)?;
        ctx::with(|t| match t {
            Target::Local(p) => local(p, data),
            Target::Remote(_) => resp::size(remote(data.to_vec())),
        })
    })())
}

/// `write(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_write(fd: c_int, buf: *const c_void, len: usize) -> libc::ssize_t {
    write_from(
        buf,
        len,
        |p, d| sys::write(p, fd, d),
        |data| Request::Write { fd, data },
    )
}

/// `pwrite(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_pwrite(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    offset: libc::off_t,
) -> libc::ssize_t {
    write_from(
        buf,
        len,
        |p, d| sys::pwrite(p, fd, d, offset),
        |data| Request::Pwrite { fd, data, offset },
    )
}

/// `readv(2)`: one read per buffer, stopping at the first short one.
#[no_mangle]
pub extern "C" fn rump_sys_readv(
    fd: c_int,
    iov: *const libc::iovec,
    iovcnt: c_int,
) -> libc::ssize_t {
    ret_size((|| {
        let iov = iovecs(iov, iovcnt)?;
        let mut total = 0usize;
        for v in iov {
            let n = rump_sys_read(fd, v.iov_base, v.iov_len);
            if n < 0 {
                return if total > 0 {
                    Ok(total)
                } else {
                    Err(last_errno())
                };
            }
            total += n as usize;
            if (n as usize) < v.iov_len {
                break;
            }
        }
        Ok(total)
    })())
}

/// `writev(2)`: the buffers are gathered into one write, so a stream
/// socket or pipe sees them as one message.
#[no_mangle]
pub extern "C" fn rump_sys_writev(
    fd: c_int,
    iov: *const libc::iovec,
    iovcnt: c_int,
) -> libc::ssize_t {
    ret_size((|| {
        let data = gather(iov, iovcnt)?;
        ctx::with(|t| match t {
            Target::Local(p) => sys::write(p, fd, &data),
            Target::Remote(_) => resp::size(Request::Write { fd, data }),
        })
    })())
}

/// The caller's `iovec` array: `EINVAL` for a negative count or more than
/// `IOV_MAX` (1024) entries, or a total longer than `isize::MAX`.
pub(crate) fn iovecs<'a>(iov: *const libc::iovec, n: c_int) -> Result<&'a [libc::iovec], Errno> {
    let n = usize::try_from(n).map_err(|_| Errno::EINVAL)?;
    if n > 1024 {
        return Err(Errno::EINVAL);
    }
    let v = slice(iov, n)?;
    let mut total = 0usize;
    for e in v {
        total = total.checked_add(e.iov_len).ok_or(Errno::EINVAL)?;
        if e.iov_base.is_null() && e.iov_len > 0 {
            return Err(Errno::EFAULT);
        }
    }
    if total > isize::MAX as usize {
        return Err(Errno::EINVAL);
    }
    Ok(v)
}

/// The bytes of an `iovec` array in one buffer.
pub(crate) fn gather(iov: *const libc::iovec, n: c_int) -> Result<Vec<u8>, Errno> {
    let mut data = Vec::new();
    for v in iovecs(iov, n)? {
        data.extend_from_slice(slice(v.iov_base as *const u8, v.iov_len)?);
    }
    Ok(data)
}

fn last_errno() -> Errno {
    // SAFETY: the calling thread's errno slot.
    Errno(unsafe { *libc::__errno_location() })
}

/// `lseek(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_lseek(fd: c_int, offset: libc::off_t, whence: c_int) -> libc::off_t {
    match resp::int(Request::Lseek { fd, offset, whence }) {
        Ok(v) => v,
        Err(e) => crate::ffi::fail(e),
    }
}

/// `fstat(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_fstat(fd: c_int, st: *mut libc::stat) -> c_int {
    ret_unit((|| {
        if st.is_null() {
            return Err(Errno::EFAULT);
        }
        let s = ctx::with(|t| match t {
            Target::Local(p) => sys::fstat(p, fd),
            Target::Remote(_) => resp::stat(Request::Fstat { fd }),
        })?;
        put(st, resp::c_stat(&s))
    })())
}

/// `fstatat(2)` (`AT_SYMLINK_NOFOLLOW`, `AT_EMPTY_PATH`).
#[no_mangle]
pub extern "C" fn rump_sys_fstatat(
    dirfd: c_int,
    path: *const c_char,
    st: *mut libc::stat,
    flags: c_int,
) -> c_int {
    ret_unit((|| {
        let path = cstr(path)?;
        if st.is_null() {
            return Err(Errno::EFAULT);
        }
        let s = ctx::with(|t| match t {
            Target::Local(p) => sys::fstatat(p, dirfd, path, flags),
            Target::Remote(_) => resp::stat(Request::Fstatat {
                dirfd,
                path: path.to_vec(),
                flags,
            }),
        })?;
        put(st, resp::c_stat(&s))
    })())
}

/// `stat(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_stat(path: *const c_char, st: *mut libc::stat) -> c_int {
    rump_sys_fstatat(AT_FDCWD, path, st, 0)
}

/// `lstat(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_lstat(path: *const c_char, st: *mut libc::stat) -> c_int {
    rump_sys_fstatat(AT_FDCWD, path, st, consts::at::SYMLINK_NOFOLLOW)
}

/// Runs a request built from one path argument.
fn path_call(path: *const c_char, req: impl FnOnce(Vec<u8>) -> Request) -> c_int {
    ret_unit(cstr(path).and_then(|p| resp::unit(req(p.to_vec()))))
}

/// Runs a request built from two path arguments.
fn paths_call(
    a: *const c_char,
    b: *const c_char,
    req: impl FnOnce(Vec<u8>, Vec<u8>) -> Request,
) -> c_int {
    ret_unit((|| resp::unit(req(cstr(a)?.to_vec(), cstr(b)?.to_vec())))())
}

/// `mkdir(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_mkdir(path: *const c_char, mode: libc::mode_t) -> c_int {
    rump_sys_mkdirat(AT_FDCWD, path, mode)
}

/// `mkdirat(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_mkdirat(dirfd: c_int, path: *const c_char, mode: libc::mode_t) -> c_int {
    path_call(path, |path| Request::Mkdirat { dirfd, path, mode })
}

/// `unlink(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_unlink(path: *const c_char) -> c_int {
    rump_sys_unlinkat(AT_FDCWD, path, 0)
}

/// `unlinkat(2)` (`AT_REMOVEDIR`).
#[no_mangle]
pub extern "C" fn rump_sys_unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    path_call(path, |path| Request::Unlinkat { dirfd, path, flags })
}

/// `rmdir(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_rmdir(path: *const c_char) -> c_int {
    rump_sys_unlinkat(AT_FDCWD, path, consts::at::REMOVEDIR)
}

/// `rename(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_rename(old: *const c_char, new: *const c_char) -> c_int {
    rump_sys_renameat(AT_FDCWD, old, AT_FDCWD, new)
}

/// `renameat(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_renameat(
    olddirfd: c_int,
    old: *const c_char,
    newdirfd: c_int,
    new: *const c_char,
) -> c_int {
    paths_call(old, new, |old, new| Request::Renameat {
        olddirfd,
        old,
        newdirfd,
        new,
    })
}

/// `link(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_link(old: *const c_char, new: *const c_char) -> c_int {
    rump_sys_linkat(AT_FDCWD, old, AT_FDCWD, new, 0)
}

/// `linkat(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_linkat(
    olddirfd: c_int,
    old: *const c_char,
    newdirfd: c_int,
    new: *const c_char,
    flags: c_int,
) -> c_int {
    paths_call(old, new, |old, new| Request::Linkat {
        olddirfd,
        old,
        newdirfd,
        new,
        flags,
    })
}

/// `symlink(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_symlink(target: *const c_char, path: *const c_char) -> c_int {
    rump_sys_symlinkat(target, AT_FDCWD, path)
}

/// `symlinkat(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_symlinkat(
    target: *const c_char,
    dirfd: c_int,
    path: *const c_char,
) -> c_int {
    paths_call(target, path, |target, path| Request::Symlinkat {
        target,
        dirfd,
        path,
    })
}

/// `readlink(2)`: the target, not terminated, truncated to `len`.
#[no_mangle]
pub extern "C" fn rump_sys_readlink(
    path: *const c_char,
    buf: *mut c_char,
    len: usize,
) -> libc::ssize_t {
    rump_sys_readlinkat(AT_FDCWD, path, buf, len)
}

/// `readlinkat(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_readlinkat(
    dirfd: c_int,
    path: *const c_char,
    buf: *mut c_char,
    len: usize,
) -> libc::ssize_t {
    ret_size((|| {
        let path = cstr(path)?.to_vec();
        let out = slice_mut(buf as *mut u8, len)?;
        if out.is_empty() {
            return Err(Errno::EINVAL);
        }
        let target = resp::bytes(Request::Readlinkat { dirfd, path })?;
        let n = target.len().min(out.len());
        out[..n].copy_from_slice(&target[..n]);
        Ok(n)
    })())
}

/// `mknod(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_mknod(
    path: *const c_char,
    mode: libc::mode_t,
    dev: libc::dev_t,
) -> c_int {
    rump_sys_mknodat(AT_FDCWD, path, mode, dev)
}

/// `mknodat(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_mknodat(
    dirfd: c_int,
    path: *const c_char,
    mode: libc::mode_t,
    dev: libc::dev_t,
) -> c_int {
    path_call(path, |path| Request::Mknodat {
        dirfd,
        path,
        mode,
        dev,
    })
}

/// `getdents64(2)`: `struct linux_dirent64` records.
#[no_mangle]
pub extern "C" fn rump_sys_getdents64(fd: c_int, buf: *mut c_void, len: usize) -> libc::ssize_t {
    read_into(
        buf,
        len,
        |p, b| sys::getdents64(p, fd, b),
        |len| Request::Getdents64 { fd, len },
    )
}

/// `chmod(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_chmod(path: *const c_char, mode: libc::mode_t) -> c_int {
    rump_sys_fchmodat(AT_FDCWD, path, mode, 0)
}

/// `fchmod(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_fchmod(fd: c_int, mode: libc::mode_t) -> c_int {
    ret_unit(resp::unit(Request::Fchmod { fd, mode }))
}

/// `fchmodat(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_fchmodat(
    dirfd: c_int,
    path: *const c_char,
    mode: libc::mode_t,
    flags: c_int,
) -> c_int {
    path_call(path, |path| Request::Fchmodat {
        dirfd,
        path,
        mode,
        flags,
    })
}

/// `chown(2)` (`(uid_t)-1` leaves the owner as it is).
#[no_mangle]
pub extern "C" fn rump_sys_chown(path: *const c_char, uid: libc::uid_t, gid: libc::gid_t) -> c_int {
    rump_sys_fchownat(AT_FDCWD, path, uid, gid, 0)
}

/// `lchown(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_lchown(
    path: *const c_char,
    uid: libc::uid_t,
    gid: libc::gid_t,
) -> c_int {
    rump_sys_fchownat(AT_FDCWD, path, uid, gid, consts::at::SYMLINK_NOFOLLOW)
}

/// `fchown(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_fchown(fd: c_int, uid: libc::uid_t, gid: libc::gid_t) -> c_int {
    ret_unit(resp::unit(Request::Fchown { fd, uid, gid }))
}

/// `fchownat(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_fchownat(
    dirfd: c_int,
    path: *const c_char,
    uid: libc::uid_t,
    gid: libc::gid_t,
    flags: c_int,
) -> c_int {
    path_call(path, |path| Request::Fchownat {
        dirfd,
        path,
        uid,
        gid,
        flags,
    })
}

/// Two `struct timespec`s (NULL: both now), `UTIME_NOW`/`UTIME_OMIT`
/// honoured.
fn times(ts: *const libc::timespec) -> Result<Option<[TimeArg; 2]>, Errno> {
    if ts.is_null() {
        return Ok(None);
    }
    let t = slice(ts, 2)?;
    let arg = |t: &libc::timespec| TimeArg {
        sec: t.tv_sec,
        nsec: t.tv_nsec,
    };
    Ok(Some([arg(&t[0]), arg(&t[1])]))
}

/// `utimensat(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_utimensat(
    dirfd: c_int,
    path: *const c_char,
    ts: *const libc::timespec,
    flags: c_int,
) -> c_int {
    ret_unit((|| {
        resp::unit(Request::Utimensat {
            dirfd,
            path: cstr(path)?.to_vec(),
            times: times(ts)?,
            flags,
        })
    })())
}

/// `futimens(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_futimens(fd: c_int, ts: *const libc::timespec) -> c_int {
    ret_unit(times(ts).and_then(|times| resp::unit(Request::Futimens { fd, times })))
}

/// `truncate(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_truncate(path: *const c_char, len: libc::off_t) -> c_int {
    path_call(path, |path| Request::Truncate { path, len })
}

/// `ftruncate(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_ftruncate(fd: c_int, len: libc::off_t) -> c_int {
    ret_unit(resp::unit(Request::Ftruncate { fd, len }))
}

/// `fsync(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_fsync(fd: c_int) -> c_int {
    ret_unit(resp::unit(Request::Fsync { fd }))
}

/// `fdatasync(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_fdatasync(fd: c_int) -> c_int {
    ret_unit(resp::unit(Request::Fdatasync { fd }))
}

/// `sync(2)`; returns 0, or -1 with errno when there is no kernel.
#[no_mangle]
pub extern "C" fn rump_sys_sync() -> c_int {
    ret_unit(resp::unit(Request::Sync))
}

/// `access(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_access(path: *const c_char, mode: c_int) -> c_int {
    rump_sys_faccessat(AT_FDCWD, path, mode, 0)
}

/// `faccessat(2)` (`AT_EACCESS`, `AT_SYMLINK_NOFOLLOW`).
#[no_mangle]
pub extern "C" fn rump_sys_faccessat(
    dirfd: c_int,
    path: *const c_char,
    mode: c_int,
    flags: c_int,
) -> c_int {
    path_call(path, |path| Request::Faccessat {
        dirfd,
        path,
        mode,
        flags,
    })
}

/// `chdir(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_chdir(path: *const c_char) -> c_int {
    path_call(path, |path| Request::Chdir { path })
}

/// `fchdir(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_fchdir(fd: c_int) -> c_int {
    ret_unit(resp::unit(Request::Fchdir { fd }))
}

/// `chroot(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_chroot(path: *const c_char) -> c_int {
    path_call(path, |path| Request::Chroot { path })
}

/// The working directory, NUL-terminated, as the Linux `getcwd` system
/// call: returns the length including the terminator, or -1 with
/// `ERANGE` when `len` is too small.
#[no_mangle]
pub extern "C" fn rump_sys_getcwd(buf: *mut c_char, len: usize) -> c_int {
    ret_int((|| {
        let cwd = resp::bytes(Request::Getcwd)?;
        let out = slice_mut(buf as *mut u8, len)?;
        if cwd.len() + 1 > out.len() {
            return Err(Errno::ERANGE);
        }
        put_cstring(buf, len, &cwd)?;
        Ok(cwd.len() as i64 + 1)
    })())
}

/// `umask(2)`: the previous mask (this call cannot fail on a live
/// kernel; with none it returns -1 and sets errno).
#[no_mangle]
pub extern "C" fn rump_sys_umask(mask: c_uint) -> c_int {
    ret_int(resp::int(Request::Umask { mask }))
}

/// `statvfs(3)`.
#[no_mangle]
pub extern "C" fn rump_sys_statvfs(path: *const c_char, out: *mut libc::statvfs) -> c_int {
    ret_unit((|| {
        let path = cstr(path)?.to_vec();
        let s = resp::statvfs(Request::Statvfs { path })?;
        put(out, resp::c_statvfs(&s))
    })())
}

/// `fstatvfs(3)`.
#[no_mangle]
pub extern "C" fn rump_sys_fstatvfs(fd: c_int, out: *mut libc::statvfs) -> c_int {
    ret_unit((|| {
        let s = resp::statvfs(Request::Fstatvfs { fd })?;
        put(out, resp::c_statvfs(&s))
    })())
}

/// `statfs(2)`, with the file system's magic number in `f_type`.
#[no_mangle]
pub extern "C" fn rump_sys_statfs(path: *const c_char, out: *mut libc::statfs) -> c_int {
    ret_unit((|| {
        let path = cstr(path)?.to_vec();
        let s = resp::statvfs(Request::Statvfs { path })?;
        put(out, resp::c_statfs(&s))
    })())
}

/// `fstatfs(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_fstatfs(fd: c_int, out: *mut libc::statfs) -> c_int {
    ret_unit((|| {
        let s = resp::statvfs(Request::Fstatvfs { fd })?;
        put(out, resp::c_statfs(&s))
    })())
}

/// `mount(2)` in Linux's argument order: `source` is a device path
/// (`/dev/disk0` from etfs) or NULL for tmpfs, `data` an option string or
/// NULL.
#[no_mangle]
pub extern "C" fn rump_sys_mount(
    source: *const c_char,
    target: *const c_char,
    fstype: *const c_char,
    flags: c_ulong,
    data: *const c_void,
) -> c_int {
    ret_unit((|| {
        resp::unit(Request::Mount {
            source: cstr_opt(source)?.unwrap_or_default().to_vec(),
            target: cstr(target)?.to_vec(),
            fstype: cstr(fstype)?.to_vec(),
            flags,
            data: cstr_opt(data as *const c_char)?
                .unwrap_or_default()
                .to_vec(),
        })
    })())
}

/// `umount2(2)` (`MNT_FORCE`, `MNT_DETACH`).
#[no_mangle]
pub extern "C" fn rump_sys_umount2(target: *const c_char, flags: c_int) -> c_int {
    path_call(target, |target| Request::Umount2 { target, flags })
}

/// The mount table as JSON (`[{"source": ..., "target": ..., "fstype":
/// ..., "flags": N}, ...]`), NUL-terminated in `buf` and truncated to
/// fit; returns the full length (without terminator), as `snprintf` does.
#[no_mangle]
pub extern "C" fn rump_sys_getmounts(buf: *mut c_char, len: usize) -> libc::ssize_t {
    crate::json_list(buf, len, Request::Mounts)
}
