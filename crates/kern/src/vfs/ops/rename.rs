//! `rename`: one name of a file or directory replaced by another,
//! possibly in another directory of the same mount.

use hyper::Errno;

use crate::cred::Access;
use crate::proc::Proc;
use crate::vfs::{perm, NodeKind, Vnode};

use super::{is_dot_or_empty, is_mount_point, Caller};

/// Renames `old` (relative to `old_base`) to `new` (relative to
/// `new_base`), replacing what `new` names if the kinds allow.
pub fn rename(
    p: &Proc,
    old_base: Option<&Vnode>,
    old: &[u8],
    new_base: Option<&Vnode>,
    new: &[u8],
) -> Result<(), Errno> {
    p.kernel().check()?;
    crate::vfs::namei::check_path(old)?;
    crate::vfs::namei::check_path(new)?;
    let caller = Caller::of(p)?;
    let octx = caller.ctx(p, old_base);
    let nctx = caller.ctx(p, new_base);
    let op = octx.lookup_parent(old)?;
    let np = nctx.lookup_parent(new)?;
    if is_dot_or_empty(&op.name) || is_dot_or_empty(&np.name) {
        return Err(Errno::EBUSY);
    }
    if op.dir.mnt.id != np.dir.mnt.id {
        return Err(Errno::EXDEV);
    }
    let moving = octx.step(&op.dir, &op.name)?;
    let is_dir = moving.kind() == NodeKind::Directory;
    if !is_dir && (op.trailing_slash || np.trailing_slash) {
        return Err(Errno::ENOTDIR);
    }
    let existing = match nctx.step(&np.dir, &np.name) {
        Ok(v) => Some(v),
        Err(Errno::ENOENT) => None,
        Err(e) => return Err(e),
    };
    // The order of the checks below is Linux's (`do_renameat2`, then
    // `vfs_rename` and `may_delete`), so that a call with several faults
    // gets the same errno. First the "trap": neither name may be an
    // ancestor of the other's directory.
    if is_dir && is_ancestor_or_self(&moving, &np.dir)? {
        return Err(Errno::EINVAL);
    }
    if let Some(e) = existing.as_ref().filter(|e| e.is_dir()) {
        if is_ancestor_or_self(e, &op.dir)? {
            return Err(Errno::ENOTEMPTY);
        }
    }
    if existing.as_ref().is_some_and(|e| e.same(&moving)) {
        return Ok(());
    }
    op.dir.check_writable_mount()?;
    perm::check_delete(&caller.cred, &op.dir, &moving)?;
    match &existing {
        Some(e) => {
            perm::check_delete(&caller.cred, &np.dir, e)?;
            match (is_dir, e.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                _ => {}
            }
        }
        None => perm::check(&caller.cred, &np.dir, Access::WRITE.union(Access::EXEC))?,
    }
    if is_dir && !op.dir.same(&np.dir) {
        // Its ".." entry changes.
        perm::check(&caller.cred, &moving, Access::WRITE)?;
    }
    if is_mount_point(&op.dir, &moving)
        || existing
            .as_ref()
            .is_some_and(|e| is_mount_point(&np.dir, e))
    {
        return Err(Errno::EBUSY);
    }
    let vfs = p.kernel().vfs();
    vfs.removing_name(&op.dir, &op.name, || {
        vfs.removing_name(&np.dir, &np.name, || {
            op.dir.node.rename(&op.name, &np.dir.node, &np.name)
        })
    })
}

/// Whether `anc` is `dir` or one of its ancestors on the same mount.
fn is_ancestor_or_self(anc: &Vnode, dir: &Vnode) -> Result<bool, Errno> {
    let mut cur = dir.clone();
    for _ in 0..65536 {
        if cur.same(anc) {
            return Ok(true);
        }
        if cur.is_mount_root() {
            return Ok(false);
        }
        let up = cur.child(cur.node.lookup(b"..")?);
        if up.same(&cur) {
            return Ok(false);
        }
        cur = up;
    }
    Err(Errno::ELOOP)
}
