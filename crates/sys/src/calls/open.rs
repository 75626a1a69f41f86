//! `open`, `openat`, `creat`: decode, then the VFS core's
//! [`kern::vfs::ops::open`].

use alloc::sync::Arc;

use kern::consts::{at, o};
use kern::vfs::ops::{self, OpenHow};
use kern::{Errno, Proc};

use crate::util::base_for;

/// Opens `path` relative to the working directory.
pub fn open(p: &Proc, path: &[u8], flags: i32, mode: u32) -> Result<i32, Errno> {
    openat(p, at::FDCWD, path, flags, mode)
}

/// `creat(path, mode)` is `open(path, O_CREAT|O_WRONLY|O_TRUNC, mode)`.
pub fn creat(p: &Proc, path: &[u8], mode: u32) -> Result<i32, Errno> {
    open(p, path, o::CREAT | o::WRONLY | o::TRUNC, mode)
}

/// Opens `path` relative to `dirfd`.
pub fn openat(p: &Proc, dirfd: i32, path: &[u8], flags: i32, mode: u32) -> Result<i32, Errno> {
    let how = OpenHow { flags, mode };
    how.check()?;
    let base = base_for(p, dirfd, path)?;
    let file = ops::open(p, base.as_ref(), path, how)?;
    p.install(Arc::new(file), flags & o::CLOEXEC != 0)
}
