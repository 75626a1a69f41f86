//! `stat`, `lstat`, `fstat`, `fstatat`.

use kern::consts::at;
use kern::{Errno, Proc, Stat};

use crate::util::with_at;

/// Status of the file `path` names, following a final symlink.
pub fn stat(p: &Proc, path: &[u8]) -> Result<Stat, Errno> {
    fstatat(p, at::FDCWD, path, 0)
}

/// Status of `path` itself, not following a final symlink.
pub fn lstat(p: &Proc, path: &[u8]) -> Result<Stat, Errno> {
    fstatat(p, at::FDCWD, path, at::SYMLINK_NOFOLLOW)
}

/// Status of an open file.
pub fn fstat(p: &Proc, fd: i32) -> Result<Stat, Errno> {
    p.kernel().check()?;
    let f = p.file(fd)?;
    f.ops().stat(p.kernel())
}

/// Status relative to `dirfd`; flags `AT_SYMLINK_NOFOLLOW`, `AT_EMPTY_PATH`.
pub fn fstatat(p: &Proc, dirfd: i32, path: &[u8], flags: i32) -> Result<Stat, Errno> {
    if flags & !(at::SYMLINK_NOFOLLOW | at::EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    if path.is_empty() && flags & at::EMPTY_PATH != 0 {
        if dirfd == at::FDCWD {
            return stat(p, b".");
        }
        return fstat(p, dirfd);
    }
    with_at(p, dirfd, path, |_, ctx| {
        ctx.lookup(path, flags & at::SYMLINK_NOFOLLOW == 0)?.stat()
    })
}
