//! `symlink`, `symlinkat`.

use kern::consts::{at, PATH_MAX};
use kern::cred::Access;
use kern::vfs::{perm, NewNode, NodeKind};
use kern::{Errno, Proc};

use crate::util::{new_name, with_at};

/// Makes `linkpath` a symbolic link to `target`.
pub fn symlink(p: &Proc, target: &[u8], linkpath: &[u8]) -> Result<(), Errno> {
    symlinkat(p, target, at::FDCWD, linkpath)
}

/// `symlink` relative to `dirfd`.
pub fn symlinkat(p: &Proc, target: &[u8], dirfd: i32, linkpath: &[u8]) -> Result<(), Errno> {
    if target.contains(&0) {
        return Err(Errno::EINVAL);
    }
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    if target.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    with_at(p, dirfd, linkpath, |env, ctx| {
        let parent = new_name(ctx, linkpath, false)?;
        let dir = &parent.dir;
        perm::check(&env.cred, dir, Access::WRITE.union(Access::EXEC))?;
        let (uid, gid, _) = super::open::new_owner(env, dir, 0o777)?;
        dir.node.create(
            &parent.name,
            &NewNode {
                kind: NodeKind::Symlink,
                perm: 0o777,
                uid,
                gid,
                rdev: 0,
                target,
            },
        )?;
        Ok(())
    })
}
