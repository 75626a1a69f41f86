//! `mkdir`, `mkdirat`.

use kern::consts::at;
use kern::vfs::ops;
use kern::{Errno, Proc};

use crate::util::base_for;

/// Makes a directory.
pub fn mkdir(p: &Proc, path: &[u8], mode: u32) -> Result<(), Errno> {
    mkdirat(p, at::FDCWD, path, mode)
}

/// Makes a directory relative to `dirfd`.
pub fn mkdirat(p: &Proc, dirfd: i32, path: &[u8], mode: u32) -> Result<(), Errno> {
    let base = base_for(p, dirfd, path)?;
    ops::mkdir(p, base.as_ref(), path, mode).map(drop)
}
