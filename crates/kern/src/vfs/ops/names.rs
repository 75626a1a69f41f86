//! New names: `mkdir`, `mknod`, `symlink`, `link`.

use hyper::Errno;

use crate::consts::s;
use crate::cred::Access;
use crate::proc::Proc;
use crate::vfs::namei::{check_path, LookupCtx, Parent};
use crate::vfs::{perm, NodeKind, Vnode};

use super::{create_in, is_dot_or_empty, with_path, Caller};

/// The first steps of every call that makes a new name, in Linux's order:
/// find the parent, refuse `.`, `..`, `/` and an existing name with
/// `EEXIST`, a trailing slash (unless `dir_ok`: only `mkdir` makes
/// directories) with `ENOENT`, and a read-only mount with `EROFS`.
/// Permission on the directory is the caller's next check.
pub fn new_name(ctx: &LookupCtx<'_>, path: &[u8], dir_ok: bool) -> Result<Parent, Errno> {
    let parent = ctx.lookup_parent(path)?;
    if is_dot_or_empty(&parent.name) {
        return Err(Errno::EEXIST);
    }
    match ctx.step(&parent.dir, &parent.name) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    if parent.trailing_slash && !dir_ok {
        return Err(Errno::ENOENT);
    }
    parent.dir.check_writable_mount()?;
    Ok(parent)
}

/// Makes a directory `path` with permission bits `mode` (less the umask).
/// In a set-group-ID directory it inherits the group and the bit.
pub fn mkdir(p: &Proc, base: Option<&Vnode>, path: &[u8], mode: u32) -> Result<Vnode, Errno> {
    with_path(p, base, path, |caller, ctx| {
        let parent = new_name(ctx, path, true)?;
        let perm = mode & (0o777 | s::ISVTX) & !caller.umask;
        create_in(
            p.kernel(),
            caller,
            &parent.dir,
            &parent.name,
            NodeKind::Directory,
            perm,
            0,
            b"",
        )
    })
}

/// Makes a special file (or an empty regular one): `mode` holds the type
/// bits (`S_IFIFO`, `S_IFCHR`, ...) and the permission bits. Device nodes
/// need root; directories are made by [`mkdir`] only (`EPERM`).
pub fn mknod(
    p: &Proc,
    base: Option<&Vnode>,
    path: &[u8],
    mode: u32,
    dev: u64,
) -> Result<Vnode, Errno> {
    let kind = mknod_kind(mode)?;
    with_path(p, base, path, |caller, ctx| {
        if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) && !caller.cred.is_root() {
            return Err(Errno::EPERM);
        }
        let parent = new_name(ctx, path, false)?;
        let perm = mode & 0o7777 & !caller.umask;
        create_in(
            p.kernel(),
            caller,
            &parent.dir,
            &parent.name,
            kind,
            perm,
            dev,
            b"",
        )
    })
}

/// The kind of node `mknod`'s `mode` asks for; `EPERM` for a directory,
/// `EINVAL` for an unknown type (checked before any lookup, as Linux's
/// `may_mknod`).
pub fn mknod_kind(mode: u32) -> Result<NodeKind, Errno> {
    Ok(match mode & s::IFMT {
        0 | s::IFREG => NodeKind::Regular,
        s::IFIFO => NodeKind::Fifo,
        s::IFCHR => NodeKind::CharDevice,
        s::IFBLK => NodeKind::BlockDevice,
        s::IFSOCK => NodeKind::Socket,
        s::IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    })
}

/// Makes `path` a symbolic link to `target`.
pub fn symlink(p: &Proc, target: &[u8], base: Option<&Vnode>, path: &[u8]) -> Result<Vnode, Errno> {
    // A target is checked like a path argument (NUL, empty, PATH_MAX).
    check_path(target)?;
    with_path(p, base, path, |caller, ctx| {
        let parent = new_name(ctx, path, false)?;
        create_in(
            p.kernel(),
            caller,
            &parent.dir,
            &parent.name,
            NodeKind::Symlink,
            0o777,
            0,
            target,
        )
    })
}

/// Makes `new` (relative to `new_base`) another name for the file `old`
/// (relative to `old_base`); `follow` follows a final symlink in `old`
/// (by default the link itself is linked, as on Linux).
pub fn link(
    p: &Proc,
    old_base: Option<&Vnode>,
    old: &[u8],
    new_base: Option<&Vnode>,
    new: &[u8],
    follow: bool,
) -> Result<(), Errno> {
    p.kernel().check()?;
    check_path(old)?;
    check_path(new)?;
    let caller = Caller::of(p)?;
    let target = caller.ctx(p, old_base).lookup(old, follow)?;
    link_found(p, &caller, &target, new_base, new)
}

/// Makes `new` (relative to `new_base`) another name for the file
/// `target` that the caller already holds (an inode-based caller's
/// `link`), with the checks of [`link`] after the lookup of the old name.
pub fn link_vnode(
    p: &Proc,
    target: &Vnode,
    new_base: Option<&Vnode>,
    new: &[u8],
) -> Result<(), Errno> {
    p.kernel().check()?;
    check_path(new)?;
    let caller = Caller::of(p)?;
    link_found(p, &caller, target, new_base, new)
}

fn link_found(
    p: &Proc,
    caller: &Caller,
    target: &Vnode,
    new_base: Option<&Vnode>,
    new: &[u8],
) -> Result<(), Errno> {
    let nctx = caller.ctx(p, new_base);
    // Linux's order: EEXIST, ENOENT, EROFS, then EXDEV, EACCES, EPERM.
    let np = new_name(&nctx, new, false)?;
    if np.dir.mnt.id != target.mnt.id {
        return Err(Errno::EXDEV);
    }
    perm::check(&caller.cred, &np.dir, Access::WRITE.union(Access::EXEC))?;
    if target.kind() == NodeKind::Directory {
        return Err(Errno::EPERM);
    }
    np.dir.node.link(&np.name, &target.node)
}
