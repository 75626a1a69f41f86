//! The typed file-system core: the POSIX semantics of opening, creating,
//! naming, removing and renaming files, of attribute changes (mode,
//! owner, times, size), access checks and directory listing, and of
//! privilege stripping and the working directory's path, as typed operations on vnodes and paths.
//!
//! Everything that enters the VFS goes through here: the system-call
//! layer (`sys`) only decodes its arguments (descriptors, flags, buffers)
//! and calls these; an inode-based caller (a FUSE server) calls the same
//! operations with the directory vnode it already holds as the `base` of a
//! one-component path. The checks follow Linux's order (`do_sys_open`,
//! `may_open`, `do_renameat2`, `may_delete`, `file_remove_privs`), so that
//! a call with several faults gets Linux's errno.
//!
//! Paths are relative to `base` (`None`: the working directory), like the
//! `*at` calls with a directory descriptor already resolved.
//!
//! Neighbours: path lookup is [`super::namei`], permission checks are
//! [`super::perm`], opened vnodes become files through [`super::vnfile`].

mod attr;
mod cwd;
mod names;
mod open;
mod remove;
mod rename;

use alloc::sync::Arc;

use hyper::Errno;

use crate::consts::s;
use crate::cred::Access;
use crate::cred::Cred;
use crate::proc::{Proc, ProcDirs};
use crate::vfs::namei::{check_path, LookupCtx};
use crate::vfs::{perm, NewNode, NodeKind, SetAttr, Vnode};
use crate::Kernel;

pub use attr::{access, chmod, chown, readdir, set_times, truncate, TimeSet, TruncateBy};
pub use cwd::{getcwd, path_of};
pub use names::{link, link_vnode, mkdir, mknod, mknod_kind, new_name, symlink};
pub use open::{open, open_vnode, OpenHow};
pub use remove::{rmdir, unlink};
pub use rename::rename;

/// What a call needs of its process, taken once per call: credentials,
/// root and working directory, umask.
pub struct Caller {
    pub cred: Arc<Cred>,
    pub dirs: ProcDirs,
    pub umask: u32,
}

impl Caller {
    /// A snapshot of `p` (`ESHUTDOWN` after halt, `ENOENT` without a root
    /// file system).
    pub fn of(p: &Proc) -> Result<Caller, Errno> {
        p.kernel().check()?;
        let dirs = p.dirs()?;
        Ok(Caller {
            cred: p.cred(),
            dirs,
            umask: p.umask(),
        })
    }

    /// A lookup context relative to the working directory or `base`.
    pub fn ctx<'a>(&'a self, p: &'a Proc, base: Option<&'a Vnode>) -> LookupCtx<'a> {
        LookupCtx {
            kernel: p.kernel(),
            cred: &self.cred,
            dirs: &self.dirs,
            base: base.unwrap_or(&self.dirs.cwd),
        }
    }
}

/// Checks `path`, takes the caller's snapshot and runs `f` with a lookup
/// context for paths relative to `base`.
pub fn with_path<R>(
    p: &Proc,
    base: Option<&Vnode>,
    path: &[u8],
    f: impl FnOnce(&Caller, &LookupCtx<'_>) -> Result<R, Errno>,
) -> Result<R, Errno> {
    p.kernel().check()?;
    check_path(path)?;
    let caller = Caller::of(p)?;
    let ctx = caller.ctx(p, base);
    f(&caller, &ctx)
}

/// Whether `v`, found by looking a name up in `dir`, is the root of a
/// mount on top of that name (a mount point).
pub fn is_mount_point(dir: &Vnode, v: &Vnode) -> bool {
    v.mnt.id != dir.mnt.id
}

/// Whether a single name is `.`, `..` or empty (the path was `/`): names
/// that calls creating or removing a name refuse.
pub fn is_dot_or_empty(name: &[u8]) -> bool {
    name.is_empty() || name == b"." || name == b".."
}

/// Clears the set-user-ID bit, and the set-group-ID bit where it means
/// "run as the group", of a regular file that an unprivileged process
/// writes or truncates (Linux's `file_remove_privs`; root keeps them, as
/// a holder of `CAP_FSETID` does).
pub fn remove_privs(cred: &Cred, vn: &Vnode) -> Result<(), Errno> {
    if cred.is_root() || vn.kind() != NodeKind::Regular {
        return Ok(());
    }
    let st = vn.node.getattr()?;
    let mut perm = st.mode & s::PERM_MASK;
    let before = perm;
    perm &= !s::ISUID;
    if perm & s::ISGID != 0 && (perm & 0o010 != 0 || !cred.in_group(st.gid)) {
        perm &= !s::ISGID;
    }
    if perm == before {
        return Ok(());
    }
    vn.node.setattr(&SetAttr {
        perm: Some(perm),
        ..SetAttr::default()
    })
}

/// Creates `name` in `dir` for `caller`, after the new-name checks: write
/// and search permission on the directory, then the file system's create.
/// The owner is the caller's effective uid; the group is the directory's
/// when the directory is set-group-ID (BSD semantics, and Linux's for such
/// directories), where a new directory also inherits the bit; the
/// caller's effective group otherwise. `perm` is final (umask applied).
pub(crate) fn create_in(
    k: &Kernel,
    caller: &Caller,
    dir: &Vnode,
    name: &[u8],
    kind: NodeKind,
    bits: u32,
    rdev: u64,
    target: &[u8],
) -> Result<Vnode, Errno> {
    perm::check(&caller.cred, dir, Access::WRITE.union(Access::EXEC))?;
    let st = dir.node.getattr()?;
    let sgid_dir = st.mode & s::ISGID != 0;
    let (gid, bits) = match (sgid_dir, kind) {
        (true, NodeKind::Directory) => (st.gid, bits | s::ISGID),
        (true, _) => (st.gid, bits),
        (false, _) => (caller.cred.egid, bits),
    };
    let vfs = k.vfs();
    let gen = vfs.name_generation(dir, name);
    let node = dir.node.create(
        name,
        &NewNode {
            kind,
            perm: bits,
            uid: caller.cred.euid,
            gid,
            rdev,
            target,
        },
    )?;
    vfs.name_added(k, dir, name, &node, gen);
    Ok(dir.child(node))
}
