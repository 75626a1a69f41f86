//! The open-file object for vnodes: reads and writes at the file offset,
//! appends, `lseek` (with `SEEK_DATA`/`SEEK_HOLE` treating the whole file
//! as data), and directory offsets as readdir cookies.

use alloc::boxed::Box;

use hyper::Errno;

use crate::consts::{poll, seek};
use crate::file::{File, FileOps, Pos, Stat};
use crate::vfs::{NodeKind, Vnode, WriteAt};
use crate::{Kernel, Proc};

/// A vnode opened as a file.
pub struct VnodeFile {
    vn: Vnode,
}

/// Opens `vn` as a file with the given `O_*` flags (checks done by the
/// caller).
pub fn open_vnode(vn: Vnode, flags: i32) -> File {
    File::new(flags, Box::new(VnodeFile { vn }))
}

impl FileOps for VnodeFile {
    fn read(&self, p: &Proc, file: &File, buf: &mut [u8], pos: Pos) -> Result<usize, Errno> {
        match self.vn.kind() {
            NodeKind::Directory => return Err(Errno::EISDIR),
            NodeKind::Regular | NodeKind::Symlink => {}
            _ => return Err(Errno::ENXIO),
        }
        match pos {
            Pos::At(off) => {
                check_range(off, buf.len())?;
                self.vn.node.read(off, buf)
            }
            Pos::Current => {
                let mut at = file.lock_offset(p.kernel().sched());
                check_range(*at, buf.len())?;
                let n = self.vn.node.read(*at, buf)?;
                *at += n as u64;
                Ok(n)
            }
        }
    }

    fn write(&self, p: &Proc, file: &File, buf: &[u8], pos: Pos) -> Result<usize, Errno> {
        match self.vn.kind() {
            NodeKind::Directory => return Err(Errno::EISDIR),
            NodeKind::Regular => {}
            _ => return Err(Errno::ENXIO),
        }
        self.vn.check_writable_mount()?;
        match pos {
            Pos::At(off) => {
                check_range(off, buf.len())?;
                // Linux: pwrite on an O_APPEND file appends anyway.
                let at = if file.is_append() {
                    WriteAt::End
                } else {
                    WriteAt::Offset(off)
                };
                Ok(self.vn.node.write(at, buf)?.0)
            }
            Pos::Current => {
                let mut cur = file.lock_offset(p.kernel().sched());
                check_range(*cur, buf.len())?;
                let at = if file.is_append() {
                    WriteAt::End
                } else {
                    WriteAt::Offset(*cur)
                };
                let (n, end) = self.vn.node.write(at, buf)?;
                // Linux moves the offset only when something was written
                // (an empty append leaves it where it was).
                if n > 0 {
                    *cur = end;
                }
                Ok(n)
            }
        }
    }

    fn stat(&self, _k: &Kernel) -> Result<Stat, Errno> {
        self.vn.stat()
    }

    fn poll(&self, _k: &Kernel, events: i16) -> i16 {
        events & (poll::IN | poll::RDNORM | poll::OUT | poll::WRNORM)
    }

    fn seek(&self, k: &Kernel, file: &File, off: i64, whence: i32) -> Result<u64, Errno> {
        let mut cur = file.lock_offset(k.sched());
        let is_dir = self.vn.kind() == NodeKind::Directory;
        let size = || -> Result<i64, Errno> { Ok(self.vn.node.getattr()?.size as i64) };
        let new = match whence {
            seek::SET => off,
            // An offset beyond 2^63 - 1 is EINVAL, as on Linux.
            seek::CUR => (*cur as i64).checked_add(off).ok_or(Errno::EINVAL)?,
            seek::END if !is_dir => size()?.checked_add(off).ok_or(Errno::EINVAL)?,
            seek::DATA | seek::HOLE if !is_dir => {
                let sz = size()?;
                if off < 0 || off >= sz {
                    return Err(Errno::ENXIO);
                }
                let at = self
                    .vn
                    .node
                    .seek_data(off as u64, sz as u64, whence == seek::HOLE)?;
                // A file system's answer stays within [off, size], and
                // data starts before the end.
                if whence == seek::DATA && at >= sz as u64 {
                    return Err(Errno::ENXIO);
                }
                at.clamp(off as u64, sz as u64) as i64
            }
            _ => return Err(Errno::EINVAL),
        };
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        *cur = new as u64;
        Ok(new as u64)
    }

    fn vnode(&self) -> Option<&Vnode> {
        Some(&self.vn)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// `EINVAL` when the bytes from `off` on would pass 2^63 - 1, the largest
/// file offset (Linux's `rw_verify_area`).
fn check_range(off: u64, len: usize) -> Result<(), Errno> {
    match off.checked_add(len as u64) {
        Some(end) if end <= i64::MAX as u64 => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}
