//! `statvfs`, `fstatvfs`.

use kern::consts::at;
use kern::vfs::{StatVfs, Vnode};
use kern::{Errno, Proc};

use crate::util::with_at;

/// `f_flag` bit for read-only mounts.
pub const ST_RDONLY: u64 = 1;

/// Statistics of the file system holding `path`.
pub fn statvfs(p: &Proc, path: &[u8]) -> Result<StatVfs, Errno> {
    with_at(p, at::FDCWD, path, |_, ctx| of(&ctx.lookup(path, true)?))
}

/// Statistics of the file system holding an open file.
pub fn fstatvfs(p: &Proc, fd: i32) -> Result<StatVfs, Errno> {
    p.kernel().check()?;
    let f = p.file(fd)?;
    of(f.vnode().ok_or(Errno::EINVAL)?)
}

fn of(vn: &Vnode) -> Result<StatVfs, Errno> {
    let mut st = vn.mnt.fs.statvfs()?;
    st.fsid = vn.mnt.dev;
    if vn.mnt.is_read_only() {
        st.flag |= ST_RDONLY;
    }
    Ok(st)
}
