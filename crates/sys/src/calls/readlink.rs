//! `readlink`, `readlinkat`.

use alloc::vec::Vec;

use kern::consts::at;
use kern::vfs::NodeKind;
use kern::{Errno, Proc};

use crate::util::with_at;

/// The target of the symbolic link `path`.
pub fn readlink(p: &Proc, path: &[u8]) -> Result<Vec<u8>, Errno> {
    readlinkat(p, at::FDCWD, path)
}

/// `readlink` relative to `dirfd`.
pub fn readlinkat(p: &Proc, dirfd: i32, path: &[u8]) -> Result<Vec<u8>, Errno> {
    with_at(p, dirfd, path, |_, ctx| {
        let v = ctx.lookup(path, false)?;
        if v.kind() != NodeKind::Symlink {
            return Err(Errno::EINVAL);
        }
        v.node.readlink()
    })
}
