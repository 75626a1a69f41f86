//! `utimensat`, `futimens`.

use kern::consts::{at, utime};
use kern::vfs::ops::TimeSet;
use kern::vfs::Vnode;
use kern::{Cred, Errno, Proc, Timespec};

use crate::util::with_at;

/// A time argument: seconds and nanoseconds, where the nanoseconds may be
/// `UTIME_NOW` or `UTIME_OMIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimeArg {
    pub sec: i64,
    pub nsec: i64,
}

impl TimeArg {
    /// The current time.
    pub const NOW: TimeArg = TimeArg {
        sec: 0,
        nsec: utime::NOW,
    };
    /// Leave unchanged.
    pub const OMIT: TimeArg = TimeArg {
        sec: 0,
        nsec: utime::OMIT,
    };
}

/// Sets access and modification times of `path` (`None`: both now).
/// With both times `UTIME_OMIT` there is nothing to do and, as on Linux
/// (utimensat(2) NOTES), the path, descriptor and flags are not checked.
pub fn utimensat(
    p: &Proc,
    dirfd: i32,
    path: &[u8],
    times: Option<[TimeArg; 2]>,
    flags: i32,
) -> Result<(), Errno> {
    if omits_both(times) {
        return p.kernel().check();
    }
    if flags & !(at::SYMLINK_NOFOLLOW | at::EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    if path.is_empty() && flags & at::EMPTY_PATH != 0 {
        return futimens(p, dirfd, times);
    }
    with_at(p, dirfd, path, |env, ctx| {
        let vn = ctx.lookup(path, flags & at::SYMLINK_NOFOLLOW == 0)?;
        set_times(p, &env.cred, &vn, times)
    })
}

/// Sets the times of an open file (both `UTIME_OMIT`: see [`utimensat`]).
pub fn futimens(p: &Proc, fd: i32, times: Option<[TimeArg; 2]>) -> Result<(), Errno> {
    p.kernel().check()?;
    if omits_both(times) {
        return Ok(());
    }
    let f = p.file(fd)?;
    let vn = f.vnode().ok_or(Errno::EINVAL)?;
    set_times(p, &p.cred(), vn, times)
}

fn omits_both(times: Option<[TimeArg; 2]>) -> bool {
    times.is_some_and(|t| t.iter().all(|t| t.nsec == utime::OMIT))
}

fn set_times(p: &Proc, cred: &Cred, vn: &Vnode, times: Option<[TimeArg; 2]>) -> Result<(), Errno> {
    let times = times.unwrap_or([TimeArg::NOW, TimeArg::NOW]);
    let conv = |t: &TimeArg| match t.nsec {
        utime::OMIT => Ok(TimeSet::Omit),
        utime::NOW => Ok(TimeSet::Now),
        n if (0..1_000_000_000).contains(&n) => Ok(TimeSet::At(Timespec {
            sec: t.sec,
            nsec: n as u32,
        })),
        _ => Err(Errno::EINVAL),
    };
    let (atime, mtime) = (conv(&times[0])?, conv(&times[1])?);
    let now = p.kernel().hyper().clock_wall();
    kern::vfs::ops::set_times(cred, vn, atime, mtime, now)
}
