//! `lseek`.

use kern::{Errno, Proc};

/// Moves the file offset; returns the new offset.
pub fn lseek(p: &Proc, fd: i32, offset: i64, whence: i32) -> Result<u64, Errno> {
    p.kernel().check()?;
    let f = p.file(fd)?;
    f.ops().seek(p.kernel(), &f, offset, whence)
}
