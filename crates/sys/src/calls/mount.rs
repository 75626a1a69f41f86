//! `mount`, `umount2`, and the mount table listing.

use alloc::vec::Vec;

use kern::consts::at;
use kern::vfs::MountInfo;
use kern::{Errno, Proc};

use crate::util::{path_of, with_at};

/// Mounts a file system of type `fstype` from `source` on the directory
/// `target` (root only).
pub fn mount(
    p: &Proc,
    source: &[u8],
    target: &[u8],
    fstype: &[u8],
    flags: u64,
    data: &[u8],
) -> Result<(), Errno> {
    with_at(p, at::FDCWD, target, |env, ctx| {
        if !env.cred.is_root() {
            return Err(Errno::EPERM);
        }
        let vn = ctx.lookup(target, true)?;
        let path = path_of(ctx, &vn)?;
        p.kernel()
            .vfs()
            .mount(p.kernel(), &vn, &path, fstype, source, flags, data)
    })
}

/// Unmounts the file system mounted on `target` (root only). Flags:
/// `MNT_FORCE`, `MNT_DETACH`.
pub fn umount2(p: &Proc, target: &[u8], flags: i32) -> Result<(), Errno> {
    if flags & !(kern::vfs::MNT_FORCE | kern::vfs::MNT_DETACH) != 0 {
        return Err(Errno::EINVAL);
    }
    with_at(p, at::FDCWD, target, |env, ctx| {
        if !env.cred.is_root() {
            return Err(Errno::EPERM);
        }
        let vn = ctx.lookup(target, true)?;
        p.kernel().vfs().unmount(vn, flags)
    })
}

/// The mount table.
pub fn mounts(p: &Proc) -> Result<Vec<MountInfo>, Errno> {
    p.kernel().check()?;
    Ok(p.kernel().vfs().mounts())
}
