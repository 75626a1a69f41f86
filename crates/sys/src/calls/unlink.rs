//! `unlink`, `unlinkat`.

use kern::consts::at;
use kern::vfs::ops;
use kern::{Errno, Proc};

use crate::util::base_for;

/// Removes a name that is not a directory.
pub fn unlink(p: &Proc, path: &[u8]) -> Result<(), Errno> {
    unlinkat(p, at::FDCWD, path, 0)
}

/// Removes a name relative to `dirfd`; with `AT_REMOVEDIR` acts as `rmdir`.
pub fn unlinkat(p: &Proc, dirfd: i32, path: &[u8], flags: i32) -> Result<(), Errno> {
    if flags & !at::REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let base = base_for(p, dirfd, path)?;
    if flags & at::REMOVEDIR != 0 {
        ops::rmdir(p, base.as_ref(), path)
    } else {
        ops::unlink(p, base.as_ref(), path)
    }
}
