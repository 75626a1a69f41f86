//! `access`, `faccessat`.

use kern::consts::{access, at};
use kern::{Errno, Proc};

use crate::util::with_at;

/// Checks whether the real user may access `path` as `mode` says.
pub fn access(p: &Proc, path: &[u8], mode: i32) -> Result<(), Errno> {
    faccessat(p, at::FDCWD, path, mode, 0)
}

/// `access` relative to `dirfd`; `AT_EACCESS` checks with the effective
/// ids, `AT_SYMLINK_NOFOLLOW` checks a symlink itself.
pub fn faccessat(p: &Proc, dirfd: i32, path: &[u8], mode: i32, flags: i32) -> Result<(), Errno> {
    if mode & !(access::R_OK | access::W_OK | access::X_OK) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & !(at::EACCESS | at::SYMLINK_NOFOLLOW | at::EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    with_at(p, dirfd, path, |env, ctx| {
        let vn = ctx.lookup(path, flags & at::SYMLINK_NOFOLLOW == 0)?;
        let want = kern::Access(mode as u8);
        kern::vfs::ops::access(&env.cred, &vn, want, flags & at::EACCESS != 0)
    })
}
