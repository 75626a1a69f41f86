//! `chmod`, `fchmod`, `fchmodat`.

use kern::consts::at;
use kern::vfs::Vnode;
use kern::{Cred, Errno, Proc};

use crate::util::{with_at, Env};

/// Changes the permission bits of `path`.
pub fn chmod(p: &Proc, path: &[u8], mode: u32) -> Result<(), Errno> {
    fchmodat(p, at::FDCWD, path, mode, 0)
}

/// Changes the permission bits of an open file.
pub fn fchmod(p: &Proc, fd: i32, mode: u32) -> Result<(), Errno> {
    p.kernel().check()?;
    let f = p.file(fd)?;
    let vn = f.vnode().ok_or(Errno::EINVAL)?;
    set_mode(&p.cred(), vn, mode)
}

/// `chmod` relative to `dirfd`. Linux refuses `AT_SYMLINK_NOFOLLOW` with
/// `EOPNOTSUPP` for symlinks; we do the same.
pub fn fchmodat(p: &Proc, dirfd: i32, path: &[u8], mode: u32, flags: i32) -> Result<(), Errno> {
    if flags & !at::SYMLINK_NOFOLLOW != 0 {
        return Err(Errno::EINVAL);
    }
    with_at(p, dirfd, path, |env: &Env, ctx| {
        let vn = ctx.lookup(path, flags & at::SYMLINK_NOFOLLOW == 0)?;
        if vn.kind() == kern::vfs::NodeKind::Symlink {
            return Err(Errno::EOPNOTSUPP);
        }
        set_mode(&env.cred, &vn, mode)
    })
}

fn set_mode(cred: &Cred, vn: &Vnode, mode: u32) -> Result<(), Errno> {
    kern::vfs::ops::chmod(cred, vn, mode)
}
