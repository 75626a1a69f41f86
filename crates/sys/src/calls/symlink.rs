//! `symlink`, `symlinkat`.

use kern::consts::{at, PATH_MAX};
use kern::cred::Access;
use kern::vfs::{perm, NewNode, NodeKind};
use kern::{Errno, Proc};

use crate::util::{is_dot_or_empty, with_at};

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
        let parent = ctx.lookup_parent(linkpath)?;
        if is_dot_or_empty(&parent.name) {
            return Err(Errno::EEXIST);
        }
        match ctx.step(&parent.dir, &parent.name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        if parent.trailing_slash {
            return Err(Errno::ENOENT);
        }
        let dir = &parent.dir;
        dir.check_writable_mount()?;
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
