//! `chown`, `fchown`, `lchown`, `fchownat`.

use kern::consts::at;
use kern::vfs::Vnode;
use kern::{Cred, Errno, Proc};

use crate::util::with_at;

/// "Leave unchanged", as `(uid_t)-1`.
pub const NO_CHANGE: u32 = u32::MAX;

/// Changes owner and group of `path` (following symlinks).
pub fn chown(p: &Proc, path: &[u8], uid: u32, gid: u32) -> Result<(), Errno> {
    fchownat(p, at::FDCWD, path, uid, gid, 0)
}

/// Changes owner and group of a symlink itself.
pub fn lchown(p: &Proc, path: &[u8], uid: u32, gid: u32) -> Result<(), Errno> {
    fchownat(p, at::FDCWD, path, uid, gid, at::SYMLINK_NOFOLLOW)
}

/// Changes owner and group of an open file.
pub fn fchown(p: &Proc, fd: i32, uid: u32, gid: u32) -> Result<(), Errno> {
    p.kernel().check()?;
    let f = p.file(fd)?;
    let vn = f.vnode().ok_or(Errno::EINVAL)?;
    set_owner(&p.cred(), vn, uid, gid)
}

/// `chown` relative to `dirfd`.
pub fn fchownat(
    p: &Proc,
    dirfd: i32,
    path: &[u8],
    uid: u32,
    gid: u32,
    flags: i32,
) -> Result<(), Errno> {
    if flags & !(at::SYMLINK_NOFOLLOW | at::EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    if path.is_empty() && flags & at::EMPTY_PATH != 0 {
        return fchown(p, dirfd, uid, gid);
    }
    with_at(p, dirfd, path, |env, ctx| {
        let vn = ctx.lookup(path, flags & at::SYMLINK_NOFOLLOW == 0)?;
        set_owner(&env.cred, &vn, uid, gid)
    })
}

/// The POSIX rules live in [`kern::vfs::ops::chown`].
fn set_owner(cred: &Cred, vn: &Vnode, uid: u32, gid: u32) -> Result<(), Errno> {
    let new_uid = (uid != NO_CHANGE).then_some(uid);
    let new_gid = (gid != NO_CHANGE).then_some(gid);
    kern::vfs::ops::chown(cred, vn, new_uid, new_gid)
}
