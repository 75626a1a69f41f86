//! `fsync`, `fdatasync`, `sync`.

use kern::{Errno, Proc};

/// Makes an open file's data and metadata durable.
pub fn fsync(p: &Proc, fd: i32) -> Result<(), Errno> {
    sync_fd(p, fd, false)
}

/// Makes an open file's data durable.
pub fn fdatasync(p: &Proc, fd: i32) -> Result<(), Errno> {
    sync_fd(p, fd, true)
}

/// Writes back every file system.
pub fn sync(p: &Proc) -> Result<(), Errno> {
    p.kernel().check()?;
    p.kernel().vfs().sync_all()
}

fn sync_fd(p: &Proc, fd: i32, datasync: bool) -> Result<(), Errno> {
    p.kernel().check()?;
    let f = p.file(fd)?;
    match f.vnode() {
        Some(vn) => vn.node.fsync(datasync),
        None => f.ops().fsync(datasync),
    }
}
