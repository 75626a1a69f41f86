//! `close`.

use kern::{Errno, Proc};

/// Closes a descriptor. The open file is released when its last
/// descriptor goes (outside the table lock).
pub fn close(p: &Proc, fd: i32) -> Result<(), Errno> {
    p.kernel().check()?;
    let file = p.fds().lock().remove(fd)?;
    drop(file);
    Ok(())
}
