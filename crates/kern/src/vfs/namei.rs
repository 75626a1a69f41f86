//! Path lookup (`namei`).
//!
//! Walks a path from the process's root or working directory (or an `*at`
//! directory), one component at a time: search permission on every
//! directory passed, `.` and `..` (which stops at the process root and
//! climbs out of a mount root to the directory it covers), mount points
//! (descending into the topmost mount), and symbolic links (at most
//! [`SYMLOOP_MAX`], then `ELOOP`). Paths of [`PATH_MAX`] bytes or more and
//! components over [`NAME_MAX`] fail with `ENAMETOOLONG`; a NUL byte with
//! `EINVAL`; an empty path with `ENOENT`.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use hyper::Errno;

use crate::consts::{NAME_MAX, PATH_MAX, SYMLOOP_MAX};
use crate::cred::{Access, Cred};
use crate::proc::ProcDirs;
use crate::vfs::{perm, NodeKind, Vnode};
use crate::Kernel;

/// Where a lookup starts and as whom.
pub struct LookupCtx<'a> {
    pub kernel: &'a Kernel,
    pub cred: &'a Cred,
    pub dirs: &'a ProcDirs,
    /// Start for relative paths (the working directory or an `*at` fd).
    pub base: &'a Vnode,
}

/// The result of a parent lookup.
pub struct Parent {
    /// The directory that holds (or would hold) the last component.
    pub dir: Vnode,
    /// The last component; empty for `/`.
    pub name: Vec<u8>,
    /// Whether the path ended in a slash.
    pub trailing_slash: bool,
}

/// Checks a path argument before any lookup.
pub fn check_path(path: &[u8]) -> Result<(), Errno> {
    if path.contains(&0) {
        return Err(Errno::EINVAL);
    }
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

impl LookupCtx<'_> {
    /// Looks up a whole path. With `follow`, a symbolic link as the last
    /// component is followed (a trailing slash always follows).
    pub fn lookup(&self, path: &[u8], follow: bool) -> Result<Vnode, Errno> {
        match self.walk(path, follow, false)? {
            Walked::Node(v) => Ok(v),
            Walked::Parent(_) => Err(Errno::ENOENT),
        }
    }

    /// Looks up the directory holding the last component, without looking
    /// the last component up.
    pub fn lookup_parent(&self, path: &[u8]) -> Result<Parent, Errno> {
        match self.walk(path, false, true)? {
            Walked::Parent(p) => Ok(p),
            Walked::Node(v) => Ok(Parent {
                dir: v,
                name: Vec::new(),
                trailing_slash: true,
            }),
        }
    }

    /// Looks `name` up in the directory `dir`: `.`, `..` and mount
    /// crossing included, search permission checked.
    pub fn step(&self, dir: &Vnode, name: &[u8]) -> Result<Vnode, Errno> {
        if dir.kind() != NodeKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        perm::check(self.cred, dir, Access::EXEC)?;
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        match name {
            b"." => Ok(dir.clone()),
            b".." => {
                if dir.same(&self.dirs.root) {
                    return Ok(dir.clone());
                }
                let mut d = dir.clone();
                while d.is_mount_root() {
                    match d.mnt.covered() {
                        Some(c) => d = c.clone(),
                        None => return Ok(d),
                    }
                    if d.same(&self.dirs.root) {
                        return Ok(d);
                    }
                }
                let up = d.node.lookup(b"..")?;
                Ok(d.child(up))
            }
            _ => {
                let vfs = self.kernel.vfs();
                let n = vfs.lookup_name(self.kernel, dir, name)?;
                Ok(vfs.cross_mount(dir.child(n)))
            }
        }
    }

    fn walk(&self, path: &[u8], follow_last: bool, want_parent: bool) -> Result<Walked, Errno> {
        check_path(path)?;
        let mut path: Cow<'_, [u8]> = Cow::Borrowed(path);
        let mut cur = if path[0] == b'/' {
            self.dirs.root.clone()
        } else {
            self.base.clone()
        };
        let mut pos = 0;
        let mut links = 0;
        loop {
            while pos < path.len() && path[pos] == b'/' {
                pos += 1;
            }
            if pos == path.len() {
                // Only reached for "/" (or a path of slashes), or after a
                // symlink whose target ended in slashes.
                if cur.kind() != NodeKind::Directory {
                    return Err(Errno::ENOTDIR);
                }
                return Ok(Walked::Node(cur));
            }
            let end = path[pos..]
                .iter()
                .position(|&c| c == b'/')
                .map_or(path.len(), |i| pos + i);
            let mut after = end;
            while after < path.len() && path[after] == b'/' {
                after += 1;
            }
            let is_last = after == path.len();
            let trailing_slash = is_last && end < path.len();
            let comp_range = pos..end;
            if is_last && want_parent {
                // The directory is searched for the last component even
                // though it is not looked up yet: search permission first,
                // then the name's length, as `step` does (Linux checks
                // both in this order too).
                if cur.kind() != NodeKind::Directory {
                    return Err(Errno::ENOTDIR);
                }
                perm::check(self.cred, &cur, Access::EXEC)?;
                if end - pos > NAME_MAX {
                    return Err(Errno::ENAMETOOLONG);
                }
                return Ok(Walked::Parent(Parent {
                    dir: cur,
                    name: path[comp_range].to_vec(),
                    trailing_slash,
                }));
            }
            let next = self.step(&cur, &path[comp_range])?;
            if next.kind() == NodeKind::Symlink && (!is_last || follow_last || trailing_slash) {
                links += 1;
                if links > SYMLOOP_MAX {
                    return Err(Errno::ELOOP);
                }
                let target = next.node.readlink()?;
                if target.is_empty() {
                    return Err(Errno::ENOENT);
                }
                // Linux limits each link body, not the text a walk expands
                // to; with at most SYMLOOP_MAX links the expansion stays
                // bounded.
                if target.len() >= PATH_MAX {
                    return Err(Errno::ENAMETOOLONG);
                }
                let mut np = Vec::with_capacity(target.len() + path.len() - end);
                np.extend_from_slice(&target);
                np.extend_from_slice(&path[end..]);
                if target[0] == b'/' {
                    cur = self.dirs.root.clone();
                }
                path = Cow::Owned(np);
                pos = 0;
                continue;
            }
            if is_last {
                if trailing_slash && next.kind() != NodeKind::Directory {
                    return Err(Errno::ENOTDIR);
                }
                return Ok(Walked::Node(next));
            }
            cur = next;
            pos = end;
        }
    }
}

enum Walked {
    Node(Vnode),
    Parent(Parent),
}
