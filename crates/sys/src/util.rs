//! Helpers shared by the calls: the lookup context of a process, `*at`
//! base directories, and the path of a vnode.

use alloc::sync::Arc;
use alloc::vec::Vec;

use kern::consts::{at, s};
use kern::vfs::namei::{LookupCtx, Parent};
use kern::vfs::{NodeKind, SetAttr, Vnode};
use kern::{Cred, Errno, Proc, ProcDirs};

/// What a path lookup needs of a process, taken once per call.
pub(crate) struct Env {
    pub cred: Arc<Cred>,
    pub dirs: ProcDirs,
}

impl Env {
    pub fn of(p: &Proc) -> Result<Env, Errno> {
        let dirs = p.dirs()?;
        Ok(Env {
            cred: p.cred(),
            dirs,
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

/// The directory a relative path of an `*at` call starts from: `None` for
/// `AT_FDCWD` and for absolute paths (where `dirfd` is not consulted,
/// as on Linux).
pub(crate) fn at_base(p: &Proc, dirfd: i32, path: &[u8]) -> Result<Option<Vnode>, Errno> {
    if dirfd == at::FDCWD || path.first() == Some(&b'/') {
        return Ok(None);
    }
    let f = p.file(dirfd)?;
    let v = f.vnode().ok_or(Errno::ENOTDIR)?;
    if v.kind() != NodeKind::Directory {
        return Err(Errno::ENOTDIR);
    }
    Ok(Some(v.clone()))
}

/// Runs `f` with a lookup context for `path` relative to `dirfd`.
pub(crate) fn with_at<R>(
    p: &Proc,
    dirfd: i32,
    path: &[u8],
    f: impl FnOnce(&Env, &LookupCtx<'_>) -> Result<R, Errno>,
) -> Result<R, Errno> {
    p.kernel().check()?;
    kern::vfs::namei::check_path(path)?;
    let env = Env::of(p)?;
    let base = at_base(p, dirfd, path)?;
    let ctx = env.ctx(p, base.as_ref());
    f(&env, &ctx)
}

/// The path of directory `v` as seen from the process root, by walking
/// `..` and finding each directory's name in its parent.
pub(crate) fn path_of(ctx: &LookupCtx<'_>, v: &Vnode) -> Result<Vec<u8>, Errno> {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut cur = v.clone();
    let mut reachable = true;
    for _ in 0..4096 {
        if cur.same(&ctx.dirs.root) {
            break;
        }
        // Step out of mount roots to the covered directory, whose name is
        // in its own parent.
        let mut named = cur.clone();
        while named.is_mount_root() {
            match named.mnt.covered() {
                Some(c) => named = c.clone(),
                None => break,
            }
        }
        if named.is_mount_root() && named.mnt.covered().is_none() {
            // The real root, but not the process root: outside a chroot.
            reachable = false;
            break;
        }
        let parent = named.child(named.node.lookup(b"..")?);
        let ino = named.node.ino();
        let mut found = None;
        parent.node.readdir(0, &mut |e| {
            if e.ino == ino && e.name != b"." && e.name != b".." {
                found = Some(e.name.to_vec());
                false
            } else {
                true
            }
        })?;
        parts.push(found.ok_or(Errno::ENOENT)?);
        cur = parent;
    }
    let mut out = Vec::new();
    if !reachable {
        out.extend_from_slice(b"(unreachable)");
    }
    for part in parts.iter().rev() {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if out.is_empty() || !reachable && parts.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

/// The first steps of every call that makes a new name (`mkdir`,
/// `mknod`, `symlink`, `link`), in Linux's order: find the parent, refuse
/// `.`, `..`, `/` and an existing name with `EEXIST`, a trailing slash
/// (unless `dir_ok`: only `mkdir` makes directories) with `ENOENT`, and a
/// read-only mount with `EROFS`. Permission on the directory is the
/// caller's next check.
pub(crate) fn new_name(ctx: &LookupCtx<'_>, path: &[u8], dir_ok: bool) -> Result<Parent, Errno> {
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

/// Whether `v`, found by looking a name up in `dir`, is the root of a
/// mount on top of that name (a mount point).
pub(crate) fn is_mount_point(dir: &Vnode, v: &Vnode) -> bool {
    v.mnt.id != dir.mnt.id
}

/// Checks a single name for calls that create or remove it: `.` and `..`
/// and the empty name (the path was `/`) get `err`.
pub(crate) fn is_dot_or_empty(name: &[u8]) -> bool {
    name.is_empty() || name == b"." || name == b".."
}

/// Clears the set-user-ID bit, and the set-group-ID bit where it means
/// "run as the group", of a regular file that an unprivileged process
/// writes or truncates (Linux's `file_remove_privs`; root keeps them, as
/// a holder of `CAP_FSETID` does).
pub(crate) fn remove_privs(cred: &Cred, vn: &Vnode) -> Result<(), Errno> {
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
