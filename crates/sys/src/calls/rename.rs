//! `rename`, `renameat`.

use kern::consts::at;
use kern::vfs::ops;
use kern::{Errno, Proc};

use crate::util::at_base;

/// Renames `old` to `new`.
pub fn rename(p: &Proc, old: &[u8], new: &[u8]) -> Result<(), Errno> {
    renameat(p, at::FDCWD, old, at::FDCWD, new)
}

/// Renames relative to two directory descriptors.
pub fn renameat(
    p: &Proc,
    olddirfd: i32,
    old: &[u8],
    newdirfd: i32,
    new: &[u8],
) -> Result<(), Errno> {
    p.kernel().check()?;
    kern::vfs::namei::check_path(old)?;
    kern::vfs::namei::check_path(new)?;
    let obase = at_base(p, olddirfd, old)?;
    let nbase = at_base(p, newdirfd, new)?;
    ops::rename(p, obase.as_ref(), old, nbase.as_ref(), new)
}
