//! `link`, `linkat`.

use kern::consts::at;
use kern::vfs::ops;
use kern::{Errno, Proc};

use crate::util::at_base;

/// Makes `new` another name for the file `old`.
pub fn link(p: &Proc, old: &[u8], new: &[u8]) -> Result<(), Errno> {
    linkat(p, at::FDCWD, old, at::FDCWD, new, 0)
}

/// `link` relative to two directories; `AT_SYMLINK_FOLLOW` follows a
/// final symlink in `old` (by default the link itself is linked, as on
/// Linux).
pub fn linkat(
    p: &Proc,
    olddirfd: i32,
    old: &[u8],
    newdirfd: i32,
    new: &[u8],
    flags: i32,
) -> Result<(), Errno> {
    if flags & !(at::SYMLINK_FOLLOW | at::EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    p.kernel().check()?;
    kern::vfs::namei::check_path(old)?;
    kern::vfs::namei::check_path(new)?;
    let obase = at_base(p, olddirfd, old)?;
    let nbase = at_base(p, newdirfd, new)?;
    let follow = flags & at::SYMLINK_FOLLOW != 0;
    ops::link(p, obase.as_ref(), old, nbase.as_ref(), new, follow)
}
