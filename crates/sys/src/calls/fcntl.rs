//! `fcntl`: descriptor and status flags, duplication.

use kern::consts::{f, o};
use kern::{Errno, Proc};

/// `fcntl(fd, cmd, arg)` for `F_DUPFD`, `F_DUPFD_CLOEXEC`, `F_GETFD`,
/// `F_SETFD`, `F_GETFL` and `F_SETFL`. Other commands get `EINVAL`.
pub fn fcntl(p: &Proc, fd: i32, cmd: i32, arg: i64) -> Result<i64, Errno> {
    p.kernel().check()?;
    let mut fds = p.fds().lock();
    match cmd {
        f::DUPFD | f::DUPFD_CLOEXEC => {
            let file = fds.get(fd)?.clone();
            let min = usize::try_from(arg).map_err(|_| Errno::EINVAL)?;
            if min >= fds.limit() {
                return Err(Errno::EINVAL);
            }
            fds.alloc(file, cmd == f::DUPFD_CLOEXEC, min).map(i64::from)
        }
        f::GETFD => Ok(if fds.cloexec(fd)? {
            f::FD_CLOEXEC as i64
        } else {
            0
        }),
        f::SETFD => {
            fds.set_cloexec(fd, arg & f::FD_CLOEXEC as i64 != 0)?;
            Ok(0)
        }
        f::GETFL => Ok(fds.get(fd)?.flags() as i64),
        f::SETFL => {
            let file = fds.get(fd)?.clone();
            drop(fds);
            file.set_status_flags(arg as i32 & o::SETFL_MASK);
            Ok(0)
        }
        _ => {
            fds.get(fd)?;
            Err(Errno::EINVAL)
        }
    }
}
