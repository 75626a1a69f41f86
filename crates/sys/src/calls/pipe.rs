//! `pipe2`.

use alloc::sync::Arc;

use kern::consts::o;
use kern::{Errno, Proc};

/// Makes a pipe; returns (read end, write end). Flags: `O_CLOEXEC`,
/// `O_NONBLOCK`, `O_DIRECT` (accepted, packet mode not implemented).
pub fn pipe2(p: &Proc, flags: i32) -> Result<(i32, i32), Errno> {
    p.kernel().check()?;
    if flags & !(o::CLOEXEC | o::NONBLOCK | o::DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    let (r, w) = kern::pipe::pipe(p.kernel(), flags);
    let cloexec = flags & o::CLOEXEC != 0;
    let mut fds = p.fds().lock();
    let rfd = fds.alloc(Arc::new(r), cloexec, 0)?;
    match fds.alloc(Arc::new(w), cloexec, 0) {
        Ok(wfd) => Ok((rfd, wfd)),
        Err(e) => {
            let r = fds.remove(rfd);
            drop(fds);
            drop(r);
            Err(e)
        }
    }
}
