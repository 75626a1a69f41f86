//! The [`BlockDevice`] trait and its backends: [`HostDevice`] (a host file
//! through `hyper`), [`MemDevice`] (memory) and [`Partition`] (a window on
//! another device).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use hyper::{BlockIo, Errno};
use kern::sync::SpinRwLock;

/// The unit of addressing: every offset and length is a multiple of it.
pub const SECTOR_SIZE: usize = 512;

/// An array of [`SECTOR_SIZE`]-byte sectors.
///
/// Offsets are sector numbers (logical block addresses) and buffer lengths
/// are multiples of the sector size; anything else is `EINVAL`, and access
/// past the end is `EIO`. Writes to a read-only device are `EROFS`.
/// Implementations may block (they make block I/O hypercalls), so callers
/// must honour the `hyper` blocking contract.
pub trait BlockDevice: Send + Sync {
    /// Number of sectors.
    fn sectors(&self) -> u64;
    /// Reads `buf.len() / SECTOR_SIZE` sectors starting at `lba`.
    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Writes `buf` starting at sector `lba`.
    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), Errno>;
    /// Makes every completed write durable (a barrier).
    fn flush(&self) -> Result<(), Errno>;
    /// Whether writes are refused.
    fn is_read_only(&self) -> bool;
    /// Size in bytes.
    fn size_bytes(&self) -> u64 {
        self.sectors() * SECTOR_SIZE as u64
    }
}

/// Reads `buf.len()` bytes at byte `offset` of `dev`, whatever their
/// alignment (a file-system probe reading a superblock or a volume
/// descriptor). Past the end is `EIO`, as for sector reads.
pub fn read_bytes(dev: &dyn BlockDevice, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
    if buf.is_empty() {
        return Ok(());
    }
    let ss = SECTOR_SIZE as u64;
    let end = offset.checked_add(buf.len() as u64).ok_or(Errno::EIO)?;
    if end > dev.size_bytes() {
        return Err(Errno::EIO);
    }
    let first = offset / ss;
    let last = end.div_ceil(ss);
    let mut tmp = alloc::vec![0u8; ((last - first) * ss) as usize];
    dev.read_blocks(first, &mut tmp)?;
    let skip = (offset - first * ss) as usize;
    buf.copy_from_slice(&tmp[skip..skip + buf.len()]);
    Ok(())
}

/// Checks alignment and bounds of an access of `len` bytes at `lba`.
pub(crate) fn check_access(sectors: u64, lba: u64, len: usize) -> Result<(), Errno> {
    if !len.is_multiple_of(SECTOR_SIZE) {
        return Err(Errno::EINVAL);
    }
    let n = (len / SECTOR_SIZE) as u64;
    match lba.checked_add(n) {
        Some(end) if end <= sectors => Ok(()),
        _ => Err(Errno::EIO),
    }
}

/// A host file (or host block device) opened with `Hyper::block_open`.
pub struct HostDevice {
    io: Box<dyn BlockIo>,
    sectors: u64,
    read_only: bool,
}

impl HostDevice {
    /// Wraps an opened host file. A trailing partial sector is not
    /// addressable. `read_only` also forces a writable file read-only.
    pub fn new(io: Box<dyn BlockIo>, read_only: bool) -> Result<HostDevice, Errno> {
        let sectors = io.size()? / SECTOR_SIZE as u64;
        let read_only = read_only || io.is_read_only();
        Ok(HostDevice {
            io,
            sectors,
            read_only,
        })
    }
}

impl BlockDevice for HostDevice {
    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), Errno> {
        check_access(self.sectors, lba, buf.len())?;
        let want = buf.len();
        let n = self
            .io
            .read_vectored_at(lba * SECTOR_SIZE as u64, &mut [buf])?;
        if n != want {
            // The file shrank under us.
            return Err(Errno::EIO);
        }
        Ok(())
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        check_access(self.sectors, lba, buf.len())?;
        let n = self
            .io
            .write_vectored_at(lba * SECTOR_SIZE as u64, &[buf])?;
        if n != buf.len() {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), Errno> {
        if self.read_only {
            return Ok(());
        }
        self.io.flush()
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }
}

/// A device in memory.
pub struct MemDevice {
    data: SpinRwLock<Vec<u8>>,
    read_only: bool,
}

impl MemDevice {
    /// A zero-filled device of `sectors` sectors.
    pub fn new(sectors: u64) -> MemDevice {
        MemDevice {
            data: SpinRwLock::new(vec![0; sectors as usize * SECTOR_SIZE]),
            read_only: false,
        }
    }

    /// A device holding `bytes` (rounded down to whole sectors).
    pub fn from_bytes(mut bytes: Vec<u8>, read_only: bool) -> MemDevice {
        bytes.truncate(bytes.len() / SECTOR_SIZE * SECTOR_SIZE);
        MemDevice {
            data: SpinRwLock::new(bytes),
            read_only,
        }
    }

    /// A copy of the contents.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.data.read().clone()
    }
}

impl BlockDevice for MemDevice {
    fn sectors(&self) -> u64 {
        (self.data.read().len() / SECTOR_SIZE) as u64
    }

    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let d = self.data.read();
        check_access((d.len() / SECTOR_SIZE) as u64, lba, buf.len())?;
        let off = lba as usize * SECTOR_SIZE;
        let src = d.get(off..off + buf.len()).ok_or(Errno::EIO)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        let mut d = self.data.write();
        check_access((d.len() / SECTOR_SIZE) as u64, lba, buf.len())?;
        let off = lba as usize * SECTOR_SIZE;
        let dst = d.get_mut(off..off + buf.len()).ok_or(Errno::EIO)?;
        dst.copy_from_slice(buf);
        Ok(())
    }

    fn flush(&self) -> Result<(), Errno> {
        Ok(())
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }
}

/// A contiguous range of sectors of another device (a partition).
pub struct Partition {
    parent: Arc<dyn BlockDevice>,
    start: u64,
    sectors: u64,
    read_only: bool,
}

impl Partition {
    /// The window `start .. start + sectors` of `parent`. `EINVAL` if it
    /// does not fit in the parent.
    pub fn new(
        parent: Arc<dyn BlockDevice>,
        start: u64,
        sectors: u64,
        read_only: bool,
    ) -> Result<Partition, Errno> {
        match start.checked_add(sectors) {
            Some(end) if end <= parent.sectors() && sectors > 0 => {}
            _ => return Err(Errno::EINVAL),
        }
        let read_only = read_only || parent.is_read_only();
        Ok(Partition {
            parent,
            start,
            sectors,
            read_only,
        })
    }

    /// First sector on the parent.
    pub fn start(&self) -> u64 {
        self.start
    }
}

impl BlockDevice for Partition {
    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), Errno> {
        check_access(self.sectors, lba, buf.len())?;
        self.parent.read_blocks(self.start + lba, buf)
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        check_access(self.sectors, lba, buf.len())?;
        self.parent.write_blocks(self.start + lba, buf)
    }

    fn flush(&self) -> Result<(), Errno> {
        self.parent.flush()
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_round_trip_and_bounds() {
        let d = MemDevice::new(4);
        let buf = [7u8; 1024];
        d.write_blocks(2, &buf).unwrap();
        let mut out = [0u8; 512];
        d.read_blocks(3, &mut out).unwrap();
        assert_eq!(out, [7u8; 512]);
        assert_eq!(d.read_blocks(4, &mut out), Err(Errno::EIO));
        assert_eq!(d.read_blocks(3, &mut [0u8; 1024]), Err(Errno::EIO));
        assert_eq!(d.read_blocks(0, &mut [0u8; 100]), Err(Errno::EINVAL));
        assert_eq!(d.read_blocks(u64::MAX, &mut out), Err(Errno::EIO));
    }

    #[test]
    fn partition_window() {
        let d: Arc<dyn BlockDevice> = Arc::new(MemDevice::new(10));
        let p = Partition::new(d.clone(), 4, 3, false).unwrap();
        p.write_blocks(0, &[1u8; 512]).unwrap();
        let mut out = [0u8; 512];
        d.read_blocks(4, &mut out).unwrap();
        assert_eq!(out, [1u8; 512]);
        assert_eq!(p.read_blocks(3, &mut out), Err(Errno::EIO));
        assert!(Partition::new(d.clone(), 8, 3, false).is_err());
        assert!(Partition::new(d, u64::MAX, 3, false).is_err());
    }

    #[test]
    fn read_only_refuses_writes() {
        let d = MemDevice::from_bytes(vec![0; 1024], true);
        assert_eq!(d.write_blocks(0, &[0u8; 512]), Err(Errno::EROFS));
    }
}
