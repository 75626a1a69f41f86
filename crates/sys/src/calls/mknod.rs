//! `mknod`, `mknodat`: fifos, device nodes and socket nodes as files.

use kern::consts::at;
use kern::vfs::ops;
use kern::{Errno, Proc};

use crate::util::base_for;

/// Makes a special file. Device nodes need root.
pub fn mknod(p: &Proc, path: &[u8], mode: u32, dev: u64) -> Result<(), Errno> {
    mknodat(p, at::FDCWD, path, mode, dev)
}

/// `mknod` relative to `dirfd`.
pub fn mknodat(p: &Proc, dirfd: i32, path: &[u8], mode: u32, dev: u64) -> Result<(), Errno> {
    ops::mknod_kind(mode)?;
    let base = base_for(p, dirfd, path)?;
    ops::mknod(p, base.as_ref(), path, mode, dev).map(drop)
}
