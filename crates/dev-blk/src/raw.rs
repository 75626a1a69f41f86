//! Raw block devices as files: what opening a node like `/dev/disk0`
//! gives (as newfs(8) and dd(1) use a raw disk). Reads and writes go
//! straight to the device, sector-aligned: offsets and lengths must be
//! multiples of [`SECTOR_SIZE`] (`EINVAL` otherwise), a read at the end
//! returns 0 and one across it is short, a write past the end is
//! `ENOSPC`. `lseek(fd, 0, SEEK_END)` gives the size; `fsync` flushes the
//! device. Opening a mounted device for writing is `EBUSY`, so a raw
//! writer cannot corrupt a file system under its driver.
//!
//! [`install`] registers the opener as the kernel's
//! [`kern::vfs::DevSwitch`]; the registry numbers the devices.

use alloc::boxed::Box;
use alloc::sync::Arc;

use hyper::Errno;
use kern::consts::{o, poll, s, seek};
use kern::file::{File, FileOps, Pos};
use kern::vfs::DevSwitch;
use kern::{Kernel, Proc, Stat};

use crate::dev::{BlockDevice, SECTOR_SIZE};
use crate::registry::Registry;

/// The major number of registered disks (Linux's SCSI disk major).
pub const DISK_MAJOR: u32 = 8;

/// Linux's `makedev` encoding.
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (major as u64, minor as u64);
    (mi & 0xff) | ((ma & 0xfff) << 8) | ((mi & !0xff) << 12) | ((ma & !0xfff) << 32)
}

/// Installs the raw-device opener in `kernel`.
pub fn install(kernel: &Kernel) {
    DevSwitch::install(
        kernel,
        DevSwitch {
            open_block: Box::new(open),
        },
    );
}

fn open(k: &Kernel, rdev: u64, flags: i32) -> Result<Box<dyn FileOps>, Errno> {
    let reg = Registry::of(k)?;
    let (name, dev) = reg.by_rdev(rdev)?;
    let writes = flags & o::ACCMODE != o::RDONLY;
    if writes && dev.is_read_only() {
        return Err(Errno::EROFS);
    }
    if writes && reg.is_claimed(&name) {
        return Err(Errno::EBUSY);
    }
    Ok(Box::new(RawDevice { dev, rdev }))
}

/// An open raw device.
struct RawDevice {
    dev: Arc<dyn BlockDevice>,
    rdev: u64,
}

fn aligned(off: u64, len: usize) -> Result<(), Errno> {
    if !off.is_multiple_of(SECTOR_SIZE as u64) || !len.is_multiple_of(SECTOR_SIZE) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl RawDevice {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        aligned(off, buf.len())?;
        let size = self.dev.size_bytes();
        if off >= size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(size - off) as usize;
        self.dev
            .read_blocks(off / SECTOR_SIZE as u64, &mut buf[..n])?;
        Ok(n)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        aligned(off, buf.len())?;
        let size = self.dev.size_bytes();
        if buf.is_empty() {
            return Ok(0);
        }
        if off >= size {
            return Err(Errno::ENOSPC);
        }
        let n = (buf.len() as u64).min(size - off) as usize;
        self.dev.write_blocks(off / SECTOR_SIZE as u64, &buf[..n])?;
        Ok(n)
    }
}

impl FileOps for RawDevice {
    fn read(&self, p: &Proc, file: &File, buf: &mut [u8], pos: Pos) -> Result<usize, Errno> {
        match pos {
            Pos::At(off) => self.read_at(off, buf),
            Pos::Current => {
                let mut at = file.lock_offset(p.kernel().sched());
                let n = self.read_at(*at, buf)?;
                *at += n as u64;
                Ok(n)
            }
        }
    }

    fn write(&self, p: &Proc, file: &File, buf: &[u8], pos: Pos) -> Result<usize, Errno> {
        match pos {
            Pos::At(off) => self.write_at(off, buf),
            Pos::Current => {
                let mut at = file.lock_offset(p.kernel().sched());
                let n = self.write_at(*at, buf)?;
                *at += n as u64;
                Ok(n)
            }
        }
    }

    fn stat(&self, _k: &Kernel) -> Result<Stat, Errno> {
        Ok(Stat {
            mode: s::IFBLK | 0o600,
            nlink: 1,
            rdev: self.rdev,
            blksize: SECTOR_SIZE as u32,
            ..Stat::default()
        })
    }

    fn poll(&self, _k: &Kernel, events: i16) -> i16 {
        events & (poll::IN | poll::RDNORM | poll::OUT | poll::WRNORM)
    }

    fn seek(&self, k: &Kernel, file: &File, off: i64, whence: i32) -> Result<u64, Errno> {
        let mut cur = file.lock_offset(k.sched());
        let new = match whence {
            seek::SET => off,
            seek::CUR => (*cur as i64).checked_add(off).ok_or(Errno::EINVAL)?,
            seek::END => (self.dev.size_bytes() as i64)
                .checked_add(off)
                .ok_or(Errno::EINVAL)?,
            _ => return Err(Errno::EINVAL),
        };
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        *cur = new as u64;
        Ok(*cur)
    }

    fn fsync(&self, _datasync: bool) -> Result<(), Errno> {
        self.dev.flush()
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}
