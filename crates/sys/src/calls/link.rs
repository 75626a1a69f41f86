//! `link`, `linkat`.

use kern::consts::at;
use kern::cred::Access;
use kern::vfs::{perm, NodeKind};
use kern::{Errno, Proc};

use crate::util::{at_base, new_name, Env};

/// Makes `new` another name for the file `old`.
pub fn link(p: &Proc, old: &[u8], new: &[u8]) -> Result<(), Errno> {
    linkat(p, at::FDCWD, old, at::FDCWD, new, 0)
}

/// `link` relative to two directories; `AT_SYMLINK_FOLLOW` follows a
/// final symlink in `old` (by default the link itself is linked, as on
/// Linux).
pub fn linkat(
    p: &Proc,
    olddirfd: i32,
    old: &[u8],
    newdirfd: i32,
    new: &[u8],
    flags: i32,
) -> Result<(), Errno> {
    if flags & !(at::SYMLINK_FOLLOW | at::EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    p.kernel().check()?;
    kern::vfs::namei::check_path(old)?;
    kern::vfs::namei::check_path(new)?;
    let env = Env::of(p)?;
    let obase = at_base(p, olddirfd, old)?;
    let nbase = at_base(p, newdirfd, new)?;
    let target = env
        .ctx(p, obase.as_ref())
        .lookup(old, flags & at::SYMLINK_FOLLOW != 0)?;
    let nctx = env.ctx(p, nbase.as_ref());
    // Linux's order: EEXIST, ENOENT, EROFS, then EXDEV, EACCES, EPERM.
    let np = new_name(&nctx, new, false)?;
    if np.dir.mnt.id != target.mnt.id {
        return Err(Errno::EXDEV);
    }
    perm::check(&env.cred, &np.dir, Access::WRITE.union(Access::EXEC))?;
    if target.kind() == NodeKind::Directory {
        return Err(Errno::EPERM);
    }
    np.dir.node.link(&np.name, &target.node)
}
