//! `rename`, `renameat`.

use kern::consts::at;
use kern::cred::Access;
use kern::vfs::{perm, NodeKind, Vnode};
use kern::{Errno, Proc};

use crate::util::{at_base, is_dot_or_empty, is_mount_point, Env};

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
    let env = Env::of(p)?;
    let obase = at_base(p, olddirfd, old)?;
    let nbase = at_base(p, newdirfd, new)?;
    let octx = env.ctx(p, obase.as_ref());
    let nctx = env.ctx(p, nbase.as_ref());
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
    perm::check_delete(&env.cred, &op.dir, &moving)?;
    match &existing {
        Some(e) => {
            perm::check_delete(&env.cred, &np.dir, e)?;
            match (is_dir, e.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                _ => {}
            }
        }
        None => perm::check(&env.cred, &np.dir, Access::WRITE.union(Access::EXEC))?,
    }
    if is_dir && !op.dir.same(&np.dir) {
        // Its ".." entry changes.
        perm::check(&env.cred, &moving, Access::WRITE)?;
    }
    if is_mount_point(&op.dir, &moving)
        || existing
            .as_ref()
            .is_some_and(|e| is_mount_point(&np.dir, e))
    {
        return Err(Errno::EBUSY);
    }
    op.dir.node.rename(&op.name, &np.dir.node, &np.name)
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
