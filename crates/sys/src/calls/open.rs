//! `open`, `openat`, `creat`.

use alloc::sync::Arc;

use kern::consts::{at, o, SYMLOOP_MAX};
use kern::cred::Access;
use kern::vfs::namei::LookupCtx;
use kern::vfs::{perm, vnfile, NewNode, NodeKind, SetAttr, Vnode};
use kern::{Errno, Proc};

use crate::util::{remove_privs, with_at, Env};

/// Opens `path` relative to the working directory.
pub fn open(p: &Proc, path: &[u8], flags: i32, mode: u32) -> Result<i32, Errno> {
    openat(p, at::FDCWD, path, flags, mode)
}

/// `creat(path, mode)` is `open(path, O_CREAT|O_WRONLY|O_TRUNC, mode)`.
pub fn creat(p: &Proc, path: &[u8], mode: u32) -> Result<i32, Errno> {
    open(p, path, o::CREAT | o::WRONLY | o::TRUNC, mode)
}

/// Opens `path` relative to `dirfd`.
pub fn openat(p: &Proc, dirfd: i32, path: &[u8], flags: i32, mode: u32) -> Result<i32, Errno> {
    if flags & !o::KNOWN != 0 || flags & o::ACCMODE == o::ACCMODE {
        return Err(Errno::EINVAL);
    }
    if flags & o::CREAT != 0 && flags & o::DIRECTORY != 0 {
        // Linux 6.4 and later: O_CREAT|O_DIRECTORY is meaningless.
        return Err(Errno::EINVAL);
    }
    let file = with_at(p, dirfd, path, |env, ctx| {
        let (vn, created) = resolve(p, env, ctx, path, flags, mode, 0)?;
        check_open(env, &vn, flags, created)?;
        if flags & o::TRUNC != 0 && vn.kind() == NodeKind::Regular && !created {
            remove_privs(&env.cred, &vn)?;
            vn.node.setattr(&SetAttr {
                size: Some(0),
                ..SetAttr::default()
            })?;
        }
        if vn.kind() == NodeKind::Fifo {
            let pipe = p.kernel().vfs().fifo(p.kernel(), &vn);
            return kern::pipe::open_fifo(p, &pipe, vn, flags);
        }
        Ok(vnfile::open_vnode(vn, flags))
    })?;
    p.install(Arc::new(file), flags & o::CLOEXEC != 0)
}

/// Finds or creates the file to open. Returns it and whether it was created.
fn resolve(
    p: &Proc,
    env: &Env,
    ctx: &LookupCtx<'_>,
    path: &[u8],
    flags: i32,
    mode: u32,
    depth: usize,
) -> Result<(Vnode, bool), Errno> {
    let nofollow = flags & o::NOFOLLOW != 0;
    if flags & o::CREAT == 0 {
        // With O_NOFOLLOW a final symlink comes back as itself, and
        // `check_open` refuses it.
        return Ok((ctx.lookup(path, !nofollow)?, false));
    }
    let parent = ctx.lookup_parent(path)?;
    if parent.name.is_empty() || parent.trailing_slash {
        return Err(Errno::EISDIR);
    }
    match ctx.step(&parent.dir, &parent.name) {
        Ok(vn) => {
            if flags & o::EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            if vn.kind() == NodeKind::Symlink && !nofollow {
                if depth >= SYMLOOP_MAX {
                    return Err(Errno::ELOOP);
                }
                // Follow the link; a dangling one creates its target.
                let target = vn.node.readlink()?;
                let sub = kern::vfs::namei::LookupCtx {
                    kernel: ctx.kernel,
                    cred: ctx.cred,
                    dirs: ctx.dirs,
                    base: &parent.dir,
                };
                return resolve(p, env, &sub, &target, flags, mode, depth + 1);
            }
            Ok((vn, false))
        }
        Err(Errno::ENOENT) => {
            let dir = &parent.dir;
            dir.check_writable_mount()?;
            perm::check(&env.cred, dir, Access::WRITE.union(Access::EXEC))?;
            let (uid, gid, perm_bits) = new_owner(env, dir, mode & 0o7777 & !p.umask())?;
            let node = dir.node.create(
                &parent.name,
                &NewNode {
                    kind: NodeKind::Regular,
                    perm: perm_bits,
                    uid,
                    gid,
                    rdev: 0,
                    target: b"",
                },
            )?;
            Ok((dir.child(node), true))
        }
        Err(e) => Err(e),
    }
}

/// Owner, group and permission bits of a new file in `dir`: the group is
/// the directory's when the directory is set-group-ID (BSD semantics, and
/// Linux's for such directories), the caller's effective group otherwise.
pub(crate) fn new_owner(env: &Env, dir: &Vnode, perm: u32) -> Result<(u32, u32, u32), Errno> {
    let st = dir.node.getattr()?;
    if st.mode & kern::consts::s::ISGID != 0 {
        Ok((env.cred.euid, st.gid, perm))
    } else {
        Ok((env.cred.euid, env.cred.egid, perm))
    }
}

/// The checks of Linux's `do_open` and `may_open`, in their order.
fn check_open(env: &Env, vn: &Vnode, flags: i32, created: bool) -> Result<(), Errno> {
    let acc = flags & o::ACCMODE;
    let kind = vn.kind();
    if flags & o::CREAT != 0 && kind == NodeKind::Directory {
        return Err(Errno::EISDIR);
    }
    if flags & o::DIRECTORY != 0 && kind != NodeKind::Directory {
        return Err(Errno::ENOTDIR);
    }
    if kind == NodeKind::Symlink {
        // Only reached with O_NOFOLLOW (O_PATH is refused above).
        return Err(Errno::ELOOP);
    }
    let writes = acc != o::RDONLY || flags & o::TRUNC != 0;
    if kind == NodeKind::Directory && writes {
        return Err(Errno::EISDIR);
    }
    if !created {
        let mut want = Access::NONE;
        if acc != o::WRONLY {
            want = want.union(Access::READ);
        }
        if writes {
            want = want.union(Access::WRITE);
        }
        perm::check(&env.cred, vn, want)?;
    }
    if writes && kind == NodeKind::Regular {
        vn.check_writable_mount()?;
    }
    match kind {
        NodeKind::Regular | NodeKind::Directory | NodeKind::Fifo => Ok(()),
        // Devices and sockets have no driver behind them yet.
        _ => Err(Errno::ENXIO),
    }
}
