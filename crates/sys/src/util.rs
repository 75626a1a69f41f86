//! Helpers shared by the calls: `*at` base directories (descriptor
//! decoding) and the VFS core's lookup context. The semantics of the calls
//! live in `kern::vfs::ops`.

use kern::consts::at;
use kern::vfs::namei::LookupCtx;
use kern::vfs::{NodeKind, Vnode};
use kern::{Errno, Proc};

/// What a path lookup needs of a process (the VFS core's snapshot).
pub(crate) use kern::vfs::ops::Caller as Env;
pub(crate) use kern::vfs::ops::{path_of, remove_privs};

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

/// The first steps of a path call, in Linux's order: the kernel is up,
/// the path is well formed, then `dirfd` names a directory.
pub(crate) fn base_for(p: &Proc, dirfd: i32, path: &[u8]) -> Result<Option<Vnode>, Errno> {
    p.kernel().check()?;
    kern::vfs::namei::check_path(path)?;
    at_base(p, dirfd, path)
}

/// Runs `f` with a lookup context for `path` relative to `dirfd`.
pub(crate) fn with_at<R>(
    p: &Proc,
    dirfd: i32,
    path: &[u8],
    f: impl FnOnce(&Env, &LookupCtx<'_>) -> Result<R, Errno>,
) -> Result<R, Errno> {
    let base = base_for(p, dirfd, path)?;
    kern::vfs::ops::with_path(p, base.as_ref(), path, f)
}
