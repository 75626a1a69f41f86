//! `dup`, `dup2`, `dup3`.

use kern::consts::o;
use kern::{Errno, Proc};

/// Duplicates `fd` onto the lowest free descriptor.
pub fn dup(p: &Proc, fd: i32) -> Result<i32, Errno> {
    p.kernel().check()?;
    let mut fds = p.fds().lock();
    let f = fds.get(fd)?.clone();
    fds.alloc(f, false, 0)
}

/// Duplicates `old` onto `new`, closing what `new` was. `old == new`
/// returns `new` if it is valid.
pub fn dup2(p: &Proc, old: i32, new: i32) -> Result<i32, Errno> {
    if old == new {
        p.kernel().check()?;
        p.file(old)?;
        return Ok(new);
    }
    dup3(p, old, new, 0)
}

/// Like `dup2`, with `O_CLOEXEC` allowed in `flags`; `old == new` is
/// `EINVAL`.
pub fn dup3(p: &Proc, old: i32, new: i32, flags: i32) -> Result<i32, Errno> {
    p.kernel().check()?;
    if flags & !o::CLOEXEC != 0 || old == new {
        return Err(Errno::EINVAL);
    }
    let mut fds = p.fds().lock();
    let f = fds.get(old)?.clone();
    if new < 0 || new as usize >= fds.limit() {
        return Err(Errno::EBADF);
    }
    let replaced = fds.install_at(new, f, flags & o::CLOEXEC != 0)?;
    drop(fds);
    drop(replaced);
    Ok(new)
}
