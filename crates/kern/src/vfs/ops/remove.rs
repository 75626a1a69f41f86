//! Removing names: `unlink`, `rmdir`.

use hyper::Errno;

use crate::proc::Proc;
use crate::vfs::{perm, NodeKind, Vnode};

use super::{is_dot_or_empty, is_mount_point, with_path};

/// Removes a name that is not a directory.
pub fn unlink(p: &Proc, base: Option<&Vnode>, path: &[u8]) -> Result<(), Errno> {
    with_path(p, base, path, |caller, ctx| {
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
        perm::check_delete(&caller.cred, &parent.dir, &victim)?;
        p.kernel()
            .vfs()
            .removing_name(&parent.dir, &parent.name, || {
                parent.dir.node.unlink(&parent.name)
            })
    })
}

/// Removes an empty directory.
pub fn rmdir(p: &Proc, base: Option<&Vnode>, path: &[u8]) -> Result<(), Errno> {
    with_path(p, base, path, |caller, ctx| {
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
        if is_mount_point(&parent.dir, &victim) || victim.same(&caller.dirs.root) {
            return Err(Errno::EBUSY);
        }
        parent.dir.check_writable_mount()?;
        perm::check_delete(&caller.cred, &parent.dir, &victim)?;
        p.kernel()
            .vfs()
            .removing_name(&parent.dir, &parent.name, || {
                parent.dir.node.rmdir(&parent.name)
            })
    })
}
