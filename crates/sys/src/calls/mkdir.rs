//! `mkdir`, `mkdirat`.

use kern::consts::{at, s};
use kern::cred::Access;
use kern::vfs::{perm, NewNode, NodeKind};
use kern::{Errno, Proc};

use super::open::new_owner;
use crate::util::{new_name, with_at};

/// Makes a directory.
pub fn mkdir(p: &Proc, path: &[u8], mode: u32) -> Result<(), Errno> {
    mkdirat(p, at::FDCWD, path, mode)
}

/// Makes a directory relative to `dirfd`.
pub fn mkdirat(p: &Proc, dirfd: i32, path: &[u8], mode: u32) -> Result<(), Errno> {
    with_at(p, dirfd, path, |env, ctx| {
        let parent = new_name(ctx, path, true)?;
        let dir = &parent.dir;
        perm::check(&env.cred, dir, Access::WRITE.union(Access::EXEC))?;
        let mut bits = mode & (0o777 | s::ISVTX) & !p.umask();
        let (uid, gid, _) = new_owner(env, dir, bits)?;
        if dir.node.getattr()?.mode & s::ISGID != 0 {
            bits |= s::ISGID;
        }
        dir.node.create(
            &parent.name,
            &NewNode {
                kind: NodeKind::Directory,
                perm: bits,
                uid,
                gid,
                rdev: 0,
                target: b"",
            },
        )?;
        Ok(())
    })
}
