//! `symlink`, `symlinkat`.

use kern::consts::at;
use kern::vfs::ops;
use kern::{Errno, Proc};

use crate::util::base_for;

/// Makes `linkpath` a symbolic link to `target`.
pub fn symlink(p: &Proc, target: &[u8], linkpath: &[u8]) -> Result<(), Errno> {
    symlinkat(p, target, at::FDCWD, linkpath)
}

/// `symlink` relative to `dirfd`.
pub fn symlinkat(p: &Proc, target: &[u8], dirfd: i32, linkpath: &[u8]) -> Result<(), Errno> {
    kern::vfs::namei::check_path(target)?;
    let base = base_for(p, dirfd, linkpath)?;
    ops::symlink(p, target, base.as_ref(), linkpath).map(drop)
}
