//! Opening a path (`open`, `openat`, `creat`) or a vnode already found.

use hyper::Errno;

use crate::consts::{o, NAME_MAX, SYMLOOP_MAX};
use crate::cred::Access;
use crate::file::File;
use crate::proc::Proc;
use crate::vfs::namei::LookupCtx;
use crate::vfs::{perm, vnfile, NodeKind, SetAttr, Vnode};

use super::{create_in, remove_privs, with_path, Caller};

/// How to open: `O_*` flags and the mode of a file `O_CREAT` makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenHow {
    pub flags: i32,
    pub mode: u32,
}

impl OpenHow {
    /// Refuses flags no open can have (`EINVAL`), before any lookup (as
    /// Linux's `build_open_flags` does).
    pub fn check(&self) -> Result<(), Errno> {
        let flags = self.flags;
        if flags & !o::KNOWN != 0 || flags & o::ACCMODE == o::ACCMODE {
            return Err(Errno::EINVAL);
        }
        if flags & o::CREAT != 0 && flags & o::DIRECTORY != 0 {
            // Linux 6.4 and later: O_CREAT|O_DIRECTORY is meaningless.
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}

/// Opens (or with `O_CREAT` creates) `path` relative to `base`, with
/// Linux's checks in Linux's order. Blocks opening a fifo until the other
/// end is there, unless `O_NONBLOCK`. The caller installs the file.
pub fn open(p: &Proc, base: Option<&Vnode>, path: &[u8], how: OpenHow) -> Result<File, Errno> {
    how.check()?;
    with_path(p, base, path, |caller, ctx| {
        let (vn, created) = resolve(caller, ctx, path, how, 0)?;
        finish_open(p, caller, vn, how.flags, created)
    })
}

/// Opens a vnode the caller already holds (an inode-based caller's
/// `open`), with the same checks as [`open`] for an existing file.
pub fn open_vnode(p: &Proc, vn: Vnode, flags: i32) -> Result<File, Errno> {
    if flags & !o::KNOWN != 0 || flags & o::ACCMODE == o::ACCMODE || flags & o::CREAT != 0 {
        return Err(Errno::EINVAL);
    }
    let caller = Caller::of(p)?;
    finish_open(p, &caller, vn, flags, false)
}

fn finish_open(
    p: &Proc,
    caller: &Caller,
    vn: Vnode,
    flags: i32,
    created: bool,
) -> Result<File, Errno> {
    check_open(caller, &vn, flags, created)?;
    if flags & o::TRUNC != 0 && vn.kind() == NodeKind::Regular && !created {
        remove_privs(&caller.cred, &vn)?;
        vn.node.setattr(&SetAttr {
            size: Some(0),
            ..SetAttr::default()
        })?;
    }
    if vn.kind() == NodeKind::Fifo {
        let pipe = p.kernel().vfs().fifo(p.kernel(), &vn);
        return crate::pipe::open_fifo(p, &pipe, vn, flags);
    }
    if vn.kind() == NodeKind::BlockDevice {
        // The driver layer that numbered the device opens it.
        let rdev = vn.node.getattr()?.rdev;
        let sw = crate::vfs::DevSwitch::of(p.kernel()).ok_or(Errno::ENXIO)?;
        return Ok(File::new(flags, (sw.open_block)(p.kernel(), rdev, flags)?));
    }
    Ok(vnfile::open_vnode(vn, flags))
}

/// Finds or creates the file to open. Returns it and whether it was created.
fn resolve(
    caller: &Caller,
    ctx: &LookupCtx<'_>,
    path: &[u8],
    how: OpenHow,
    depth: usize,
) -> Result<(Vnode, bool), Errno> {
    let flags = how.flags;
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
    let perm = how.mode & 0o7777 & !caller.umask;
    // A name the cache does not know is most likely new: try to create
    // it at once, which spares the directory a lookup (and its lock) for
    // every new file. Any failure (it exists, no permission, a read-only
    // mount, a special name) falls through to the lookup-first order
    // below, which gives Linux's answer, so only the work differs.
    let dot = matches!(parent.name.as_slice(), b"." | b"..");
    if !dot
        && parent.name.len() <= NAME_MAX
        && parent.dir.kind() == NodeKind::Directory
        && parent.dir.mnt.cache_names
        && !ctx.kernel.vfs().name_cached(&parent.dir, &parent.name)
        && parent.dir.check_writable_mount().is_ok()
    {
        if let Ok(vn) = create_in(
            ctx.kernel,
            caller,
            &parent.dir,
            &parent.name,
            NodeKind::Regular,
            perm,
            0,
            b"",
        ) {
            return Ok((vn, true));
        }
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
                let sub = LookupCtx {
                    kernel: ctx.kernel,
                    cred: ctx.cred,
                    dirs: ctx.dirs,
                    base: &parent.dir,
                };
                return resolve(caller, &sub, &target, how, depth + 1);
            }
            Ok((vn, false))
        }
        Err(Errno::ENOENT) => {
            parent.dir.check_writable_mount()?;
            let vn = create_in(
                ctx.kernel,
                caller,
                &parent.dir,
                &parent.name,
                NodeKind::Regular,
                perm,
                0,
                b"",
            )?;
            Ok((vn, true))
        }
        Err(e) => Err(e),
    }
}

/// The checks of Linux's `do_open` and `may_open`, in their order.
fn check_open(caller: &Caller, vn: &Vnode, flags: i32, created: bool) -> Result<(), Errno> {
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
        perm::check(&caller.cred, vn, want)?;
    }
    if writes && kind == NodeKind::Regular {
        vn.check_writable_mount()?;
    }
    match kind {
        NodeKind::Regular | NodeKind::Directory | NodeKind::Fifo => Ok(()),
        // Block devices open through the kernel's device switch
        // (`finish_open`; `ENXIO` when no driver layer registered one).
        NodeKind::BlockDevice => Ok(()),
        // Character devices and sockets have no driver behind them yet.
        _ => Err(Errno::ENXIO),
    }
}
