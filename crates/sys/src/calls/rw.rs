//! `read`, `write`, `pread`, `pwrite`, `readv`, `writev`.

use kern::consts::IOV_MAX;
use kern::{Errno, File, Pos, Proc};

use crate::util::remove_privs;

/// Reads from the file's offset.
pub fn read(p: &Proc, fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    p.kernel().check()?;
    let f = p.file(fd)?;
    f.read(p, buf, Pos::Current)
}

/// Writes at the file's offset (or the end, with `O_APPEND`).
pub fn write(p: &Proc, fd: i32, buf: &[u8]) -> Result<usize, Errno> {
    p.kernel().check()?;
    let f = p.file(fd)?;
    let n = f.write(p, buf, Pos::Current)?;
    wrote(p, &f, n)
}

/// Reads at `offset`; the file offset does not move. A negative offset is
/// `EINVAL` even for a bad descriptor (Linux checks it first).
pub fn pread(p: &Proc, fd: i32, buf: &mut [u8], offset: i64) -> Result<usize, Errno> {
    p.kernel().check()?;
    let off = u64::try_from(offset).map_err(|_| Errno::EINVAL)?;
    let f = p.file(fd)?;
    f.read(p, buf, Pos::At(off))
}

/// Writes at `offset`; the file offset does not move. Offsets are checked
/// as for [`pread`].
pub fn pwrite(p: &Proc, fd: i32, buf: &[u8], offset: i64) -> Result<usize, Errno> {
    p.kernel().check()?;
    let off = u64::try_from(offset).map_err(|_| Errno::EINVAL)?;
    let f = p.file(fd)?;
    let n = f.write(p, buf, Pos::At(off))?;
    wrote(p, &f, n)
}

/// Reads into several buffers in order.
pub fn readv(p: &Proc, fd: i32, bufs: &mut [&mut [u8]]) -> Result<usize, Errno> {
    check_iov(bufs.iter().map(|b| b.len()))?;
    p.kernel().check()?;
    let f = p.file(fd)?;
    let mut total = 0;
    for b in bufs.iter_mut() {
        if b.is_empty() {
            continue;
        }
        let n = match f.read(p, b, Pos::Current) {
            Ok(n) => n,
            Err(e) if total > 0 && e == Errno::EAGAIN => break,
            Err(e) => return Err(e),
        };
        total += n;
        if n < b.len() {
            break;
        }
    }
    Ok(total)
}

/// Writes several buffers in order.
pub fn writev(p: &Proc, fd: i32, bufs: &[&[u8]]) -> Result<usize, Errno> {
    check_iov(bufs.iter().map(|b| b.len()))?;
    p.kernel().check()?;
    let f = p.file(fd)?;
    let mut total = 0;
    for b in bufs {
        if b.is_empty() {
            continue;
        }
        let n = match f.write(p, b, Pos::Current) {
            Ok(n) => n,
            Err(e) if total > 0 => {
                let _ = e;
                break;
            }
            Err(e) => return Err(e),
        };
        total += n;
        if n < b.len() {
            break;
        }
    }
    wrote(p, &f, total)
}

/// After `n` bytes went to `f`: a written file loses its set-id bits
/// unless the writer is privileged.
fn wrote(p: &Proc, f: &File, n: usize) -> Result<usize, Errno> {
    if n > 0 {
        if let Some(vn) = f.vnode() {
            remove_privs(&p.cred(), vn)?;
        }
    }
    Ok(n)
}

fn check_iov(lens: impl ExactSizeIterator<Item = usize>) -> Result<(), Errno> {
    if lens.len() > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut total: usize = 0;
    for l in lens {
        total = total.checked_add(l).ok_or(Errno::EINVAL)?;
    }
    if total > isize::MAX as usize {
        return Err(Errno::EINVAL);
    }
    Ok(())
}
