//! `chdir`, `fchdir`, `getcwd`, `chroot`.

use alloc::vec::Vec;

use kern::consts::at;
use kern::cred::Access;
use kern::vfs::{perm, NodeKind, Vnode};
use kern::{Cred, Errno, Proc};

use crate::util::with_at;

/// Changes the working directory.
pub fn chdir(p: &Proc, path: &[u8]) -> Result<(), Errno> {
    let vn = with_at(p, at::FDCWD, path, |env, ctx| {
        let vn = ctx.lookup(path, true)?;
        check_dir(&env.cred, &vn)?;
        Ok(vn)
    })?;
    p.set_cwd(vn)
}

/// Changes the working directory to an open directory.
pub fn fchdir(p: &Proc, fd: i32) -> Result<(), Errno> {
    p.kernel().check()?;
    let f = p.file(fd)?;
    let vn = f.vnode().ok_or(Errno::ENOTDIR)?.clone();
    check_dir(&p.cred(), &vn)?;
    p.set_cwd(vn)
}

/// The working directory as a path from the process root.
pub fn getcwd(p: &Proc) -> Result<Vec<u8>, Errno> {
    kern::vfs::ops::getcwd(p)
}

/// Changes the root directory (root only).
pub fn chroot(p: &Proc, path: &[u8]) -> Result<(), Errno> {
    let vn = with_at(p, at::FDCWD, path, |env, ctx| {
        let vn = ctx.lookup(path, true)?;
        check_dir(&env.cred, &vn)?;
        if !env.cred.is_root() {
            return Err(Errno::EPERM);
        }
        Ok(vn)
    })?;
    p.set_root(vn)
}

fn check_dir(cred: &Cred, vn: &Vnode) -> Result<(), Errno> {
    if vn.kind() != NodeKind::Directory {
        return Err(Errno::ENOTDIR);
    }
    perm::check(cred, vn, Access::EXEC)
}
