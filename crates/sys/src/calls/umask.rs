//! `umask`.

use kern::{Errno, Proc};

/// Sets the file-creation mask; returns the previous one.
pub fn umask(p: &Proc, mask: u32) -> Result<u32, Errno> {
    p.kernel().check()?;
    Ok(p.set_umask(mask))
}
