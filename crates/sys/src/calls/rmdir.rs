//! `rmdir`.

use kern::vfs::ops;
use kern::{Errno, Proc};

/// Removes an empty directory.
pub fn rmdir(p: &Proc, path: &[u8]) -> Result<(), Errno> {
    ops::rmdir(p, None, path)
}
