//! `truncate`, `ftruncate`.

use kern::vfs::ops::TruncateBy;
use kern::{Errno, Proc};

use crate::util::with_at;

/// Sets the size of the file `path`.
pub fn truncate(p: &Proc, path: &[u8], len: i64) -> Result<(), Errno> {
    let len = u64::try_from(len).map_err(|_| Errno::EINVAL)?;
    with_at(p, kern::consts::at::FDCWD, path, |env, ctx| {
        let vn = ctx.lookup(path, true)?;
        kern::vfs::ops::truncate(&env.cred, &vn, len, TruncateBy::Path)
    })
}

/// Sets the size of an open file, which must be open for writing.
pub fn ftruncate(p: &Proc, fd: i32, len: i64) -> Result<(), Errno> {
    p.kernel().check()?;
    let len = u64::try_from(len).map_err(|_| Errno::EINVAL)?;
    let f = p.file(fd)?;
    let vn = f.vnode().ok_or(Errno::EINVAL)?;
    let by = TruncateBy::OpenFile {
        writable: f.is_writable(),
    };
    kern::vfs::ops::truncate(&p.cred(), vn, len, by)
}
