//! `getdents64`.

use kern::{Errno, Proc};

/// Size of the fixed part of a `linux_dirent64` record.
const HEADER: usize = 8 + 8 + 2 + 1;

/// Fills `buf` with `linux_dirent64` records (`d_ino`, `d_off`,
/// `d_reclen`, `d_type`, NUL-terminated name, padded to 8 bytes) from the
/// directory's offset. Returns the bytes used; 0 at the end. `EINVAL` if
/// the next entry does not fit.
pub fn getdents64(p: &Proc, fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    p.kernel().check()?;
    let f = p.file(fd)?;
    let vn = f.vnode().ok_or(Errno::ENOTDIR)?;
    let mut used = 0;
    let mut at = f.lock_offset(p.kernel().sched());
    let mut next_off = *at;
    let mut too_small = false;
    kern::vfs::ops::readdir(vn, next_off, &mut |e| {
        let reclen = (HEADER + e.name.len() + 1).next_multiple_of(8);
        if used + reclen > buf.len() {
            too_small = used == 0;
            return false;
        }
        let r = &mut buf[used..used + reclen];
        r[0..8].copy_from_slice(&e.ino.to_ne_bytes());
        r[8..16].copy_from_slice(&(e.next as i64).to_ne_bytes());
        r[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
        r[18] = e.kind.dirent_type();
        r[HEADER..HEADER + e.name.len()].copy_from_slice(e.name);
        r[HEADER + e.name.len()..].fill(0);
        used += reclen;
        next_off = e.next;
        true
    })?;
    if too_small {
        return Err(Errno::EINVAL);
    }
    *at = next_off;
    Ok(used)
}
