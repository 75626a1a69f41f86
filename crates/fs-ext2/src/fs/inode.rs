//! Inode I/O: where an inode lives in its group's table, reading and
//! writing it through the buffer cache, and fresh inode values.

use alloc::format;

use hyper::Errno;

use crate::format::*;

use super::Ext2;

impl Ext2 {
    // ----- inodes ------------------------------------------------------------------

    pub(super) fn inode_slot(&self, ino: u32) -> Result<(u64, usize), Errno> {
        if ino == 0 || ino > self.g.inodes_count {
            return Err(self.corrupt(&format!("inode {ino} out of range")));
        }
        let grp = (ino - 1) / self.g.ipg;
        let idx = ((ino - 1) % self.g.ipg) as u64;
        let byte = idx * self.g.inode_size as u64;
        let d = self.groups.get(grp as usize).ok_or(Errno::EIO)?;
        let blk = d.inode_table as u64 + byte / self.g.bs as u64;
        Ok((blk, (byte % self.g.bs as u64) as usize))
    }

    /// Reads inode `ino`.
    pub fn read_inode(&mut self, ino: u32) -> Result<InodeRepr, Errno> {
        let (blk, off) = self.inode_slot(ino)?;
        let isz = self.g.inode_size;
        let data = self.cache.read(blk)?;
        let p = InodePacket::new_checked(&data[off..off + isz]).map_err(|_| Errno::EIO)?;
        InodeRepr::parse(&p).map_err(|_| Errno::EIO)
    }

    /// Writes inode `ino` (into the cache).
    pub fn write_inode(&mut self, ino: u32, inode: &InodeRepr) -> Result<(), Errno> {
        self.check_writable()?;
        let (blk, off) = self.inode_slot(ino)?;
        let isz = self.g.inode_size;
        let data = self.cache.modify(blk)?;
        let mut p = InodePacket::new_checked(&mut data[off..off + isz]).map_err(|_| Errno::EIO)?;
        inode.emit(&mut p);
        Ok(())
    }

    /// Zeroes inode `ino`'s slot and writes `inode` into it.
    pub(super) fn init_inode(&mut self, ino: u32, inode: &InodeRepr) -> Result<(), Errno> {
        let (blk, off) = self.inode_slot(ino)?;
        let isz = self.g.inode_size;
        let data = self.cache.modify(blk)?;
        data[off..off + isz].fill(0);
        let mut p = InodePacket::new_checked(&mut data[off..off + isz]).map_err(|_| Errno::EIO)?;
        inode.emit(&mut p);
        Ok(())
    }

    /// A fresh inode value for a new file.
    pub fn new_inode_repr(&mut self, mode: u16, uid: u32, gid: u32) -> InodeRepr {
        let now = self.now();
        self.next_generation = self.next_generation.wrapping_add(1);
        InodeRepr {
            mode,
            uid,
            gid,
            atime: now,
            ctime: now,
            mtime: now,
            crtime: now,
            links_count: 1,
            generation: self.next_generation,
            extra_isize: if self.g.inode_size >= GOOD_OLD_INODE_SIZE + NEW_EXTRA_ISIZE as usize {
                NEW_EXTRA_ISIZE
            } else {
                0
            },
            ..Default::default()
        }
    }

    /// 512-byte sectors per block.
    pub(super) fn spb(&self) -> u64 {
        self.g.bs as u64 / 512
    }
}
