//! `unlink`, `unlinkat`.

use kern::consts::at;
use kern::vfs::{perm, NodeKind};
use kern::{Errno, Proc};

use crate::util::{is_dot_or_empty, is_mount_point, with_at};

/// Removes a name that is not a directory.
pub fn unlink(p: &Proc, path: &[u8]) -> Result<(), Errno> {
    unlinkat(p, at::FDCWD, path, 0)
}

/// Removes a name relative to `dirfd`; with `AT_REMOVEDIR` acts as `rmdir`.
pub fn unlinkat(p: &Proc, dirfd: i32, path: &[u8], flags: i32) -> Result<(), Errno> {
    if flags & !at::REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & at::REMOVEDIR != 0 {
        return super::rmdir::rmdir_at(p, dirfd, path);
    }
    with_at(p, dirfd, path, |env, ctx| {
        let parent = ctx.lookup_parent(path)?;
        if is_dot_or_empty(&parent.name) {
            return Err(Errno::EISDIR);
        }
        let victim = ctx.step(&parent.dir, &parent.name)?;
        if victim.kind() == NodeKind::Directory {
            return Err(Errno::EISDIR);
        }
        if parent.trailing_slash {
            return Err(Errno::ENOTDIR);
        }
        if is_mount_point(&parent.dir, &victim) {
            return Err(Errno::EBUSY);
        }
        parent.dir.check_writable_mount()?;
        perm::check_delete(&env.cred, &parent.dir, &victim)?;
        parent.dir.node.unlink(&parent.name)
    })
}
