//! Attribute changes and queries on a vnode already found: `chmod`,
//! `chown`, `utimensat`, `truncate`, `access`, and directory listing.
//!
//! These are the POSIX rules of the calls (who may change what, which
//! set-id bits a change clears); the system-call layer resolves a path or
//! a descriptor to the vnode and calls them, and so does an inode-based
//! caller such as the FUSE server.

use hyper::{Errno, Timespec};

use crate::consts::s;
use crate::cred::{Access, Cred};
use crate::vfs::{perm, DirEntry, NodeKind, SetAttr, Vnode};

/// One time argument of [`set_times`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSet {
    /// Leave unchanged (`UTIME_OMIT`).
    Omit,
    /// The current time (`UTIME_NOW`).
    Now,
    /// This time.
    At(Timespec),
}

/// How a size change was asked for: by name (`truncate`: write
/// permission needed) or through an open file (`ftruncate`: the file must
/// be open for writing, and permission is not checked again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TruncateBy {
    Path,
    OpenFile { writable: bool },
}

/// `chmod`: only the owner (or root) changes the mode; a caller outside
/// the file's group cannot set the set-group-ID bit (it is dropped, as
/// Linux does); `EROFS` on a read-only mount.
pub fn chmod(cred: &Cred, vn: &Vnode, mode: u32) -> Result<(), Errno> {
    let st = vn.node.getattr()?;
    if !cred.owns(st.uid) {
        return Err(Errno::EPERM);
    }
    vn.check_writable_mount()?;
    let mut bits = mode & s::PERM_MASK;
    if !cred.is_root() && !cred.in_group(st.gid) {
        bits &= !s::ISGID;
    }
    vn.node.setattr(&SetAttr {
        perm: Some(bits),
        ..SetAttr::default()
    })
}

/// `chown` (`None`: leave unchanged). Only root changes the owner; the
/// owner may change the group to one of its own groups. A change clears
/// the set-user-ID bit and, if the file is group-executable, the
/// set-group-ID bit of non-directories (Linux behaviour).
pub fn chown(cred: &Cred, vn: &Vnode, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
    let st = vn.node.getattr()?;
    if !cred.is_root() {
        if uid.is_some_and(|u| u != st.uid) {
            return Err(Errno::EPERM);
        }
        if let Some(g) = gid {
            if cred.euid != st.uid || (g != st.gid && !cred.in_group(g)) {
                return Err(Errno::EPERM);
            }
        }
        if uid.is_some() && cred.euid != st.uid {
            return Err(Errno::EPERM);
        }
    }
    vn.check_writable_mount()?;
    let mut set = SetAttr {
        uid,
        gid,
        ..SetAttr::default()
    };
    if (uid.is_some() || gid.is_some()) && vn.kind() != NodeKind::Directory {
        let mut perm = st.mode & s::PERM_MASK;
        let before = perm;
        perm &= !s::ISUID;
        if perm & 0o010 != 0 {
            perm &= !s::ISGID;
        }
        if perm != before {
            set.perm = Some(perm);
        }
    }
    vn.node.setattr(&set)
}

/// `utimensat`: explicit times need ownership (or root); setting both to
/// "now" needs ownership or write permission. `now` is the wall clock.
pub fn set_times(
    cred: &Cred,
    vn: &Vnode,
    atime: TimeSet,
    mtime: TimeSet,
    now: Timespec,
) -> Result<(), Errno> {
    if atime == TimeSet::Omit && mtime == TimeSet::Omit {
        return Ok(());
    }
    let st = vn.node.getattr()?;
    let only_now = [atime, mtime]
        .iter()
        .all(|t| matches!(t, TimeSet::Now | TimeSet::Omit));
    if !cred.owns(st.uid) {
        if !only_now {
            return Err(Errno::EPERM);
        }
        perm::check(cred, vn, Access::WRITE)?;
    }
    vn.check_writable_mount()?;
    let conv = |t: TimeSet| match t {
        TimeSet::Omit => None,
        TimeSet::Now => Some(now),
        TimeSet::At(ts) => Some(ts),
    };
    vn.node.setattr(&SetAttr {
        atime: conv(atime),
        mtime: conv(mtime),
        ..SetAttr::default()
    })
}

/// `truncate`/`ftruncate`: regular files only (`EISDIR` for a directory
/// by name, `EINVAL` otherwise), permission as `by` says, set-id bits
/// cleared for an unprivileged caller.
pub fn truncate(cred: &Cred, vn: &Vnode, len: u64, by: TruncateBy) -> Result<(), Errno> {
    match (vn.kind(), by) {
        (NodeKind::Regular, TruncateBy::Path) => perm::check(cred, vn, Access::WRITE)?,
        (NodeKind::Regular, TruncateBy::OpenFile { writable: true }) => {}
        (NodeKind::Directory, TruncateBy::Path) => return Err(Errno::EISDIR),
        _ => return Err(Errno::EINVAL),
    }
    vn.check_writable_mount()?;
    super::remove_privs(cred, vn)?;
    vn.node.setattr(&SetAttr {
        size: Some(len),
        ..SetAttr::default()
    })
}

/// `access`: whether `cred` may access `vn` as `want` (an empty `want`
/// is `F_OK`), with the real ids unless `effective`. Write access to a
/// regular file on a read-only mount is `EROFS`.
pub fn access(cred: &Cred, vn: &Vnode, want: Access, effective: bool) -> Result<(), Errno> {
    if want.0 == 0 {
        return Ok(());
    }
    let st = vn.node.getattr()?;
    let ok = if effective {
        cred.may_access(st.mode, st.uid, st.gid, want)
    } else {
        cred.may_access_real(st.mode, st.uid, st.gid, want)
    };
    if !ok {
        return Err(Errno::EACCES);
    }
    if want.0 & Access::WRITE.0 != 0 && vn.kind() == NodeKind::Regular {
        vn.check_writable_mount()?;
    }
    Ok(())
}

/// Lists the directory `vn` from `cookie` (see
/// [`crate::vfs::Node::readdir`]); `ENOTDIR` for anything else.
pub fn readdir(
    vn: &Vnode,
    cookie: u64,
    sink: &mut dyn FnMut(DirEntry<'_>) -> bool,
) -> Result<(), Errno> {
    if vn.kind() != NodeKind::Directory {
        return Err(Errno::ENOTDIR);
    }
    vn.node.readdir(cookie, sink)
}
