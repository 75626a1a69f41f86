//! `rmdir`.

use kern::vfs::{perm, NodeKind};
use kern::{Errno, Proc};

use crate::util::{is_mount_point, with_at};

/// Removes an empty directory.
pub fn rmdir(p: &Proc, path: &[u8]) -> Result<(), Errno> {
    rmdir_at(p, kern::consts::at::FDCWD, path)
}

pub(crate) fn rmdir_at(p: &Proc, dirfd: i32, path: &[u8]) -> Result<(), Errno> {
    with_at(p, dirfd, path, |env, ctx| {
        let parent = ctx.lookup_parent(path)?;
        match parent.name.as_slice() {
            b"" => return Err(Errno::EBUSY),
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let victim = ctx.step(&parent.dir, &parent.name)?;
        if victim.kind() != NodeKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        if is_mount_point(&parent.dir, &victim) || victim.same(&env.dirs.root) {
            return Err(Errno::EBUSY);
        }
        parent.dir.check_writable_mount()?;
        perm::check_delete(&env.cred, &parent.dir, &victim)?;
        parent.dir.node.rmdir(&parent.name)
    })
}
