//! `mknod`, `mknodat`: fifos, device nodes and socket nodes as files.

use kern::consts::{at, s};
use kern::cred::Access;
use kern::vfs::{perm, NewNode, NodeKind};
use kern::{Errno, Proc};

use crate::util::{new_name, with_at};

/// Makes a special file. Device nodes need root.
pub fn mknod(p: &Proc, path: &[u8], mode: u32, dev: u64) -> Result<(), Errno> {
    mknodat(p, at::FDCWD, path, mode, dev)
}

/// `mknod` relative to `dirfd`.
pub fn mknodat(p: &Proc, dirfd: i32, path: &[u8], mode: u32, dev: u64) -> Result<(), Errno> {
    let kind = match mode & s::IFMT {
        0 | s::IFREG => NodeKind::Regular,
        s::IFIFO => NodeKind::Fifo,
        s::IFCHR => NodeKind::CharDevice,
        s::IFBLK => NodeKind::BlockDevice,
        s::IFSOCK => NodeKind::Socket,
        s::IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    };
    with_at(p, dirfd, path, |env, ctx| {
        if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) && !env.cred.is_root() {
            return Err(Errno::EPERM);
        }
        let parent = new_name(ctx, path, false)?;
        let dir = &parent.dir;
        perm::check(&env.cred, dir, Access::WRITE.union(Access::EXEC))?;
        let bits = mode & 0o7777 & !p.umask();
        let (uid, gid, _) = super::open::new_owner(env, dir, bits)?;
        dir.node.create(
            &parent.name,
            &NewNode {
                kind,
                perm: bits,
                uid,
                gid,
                rdev: dev,
                target: b"",
            },
        )?;
        Ok(())
    })
}
