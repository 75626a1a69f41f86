//! Inode I/O: where an inode lives in its group's table, reading and
//! writing it through the buffer cache, and fresh inode values.

use alloc::format;
use alloc::sync::Arc;

use hyper::{Errno, Timespec};
use kern::Stat;

use crate::format::*;

use super::{Ext2, StatCell};

/// Cells kept before the first pruning of ones no node holds.
const STAT_CELLS_PRUNE_AT: usize = 1024;

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
        self.refresh_stat(ino, inode);
        Ok(())
    }

    /// The attribute cell of `ino` for a new node of it (see
    /// [`StatCell`]). Cells no node holds any more are pruned now and
    /// then; a freed inode's cell goes with it.
    pub(crate) fn stat_cell(&mut self, ino: u32) -> Arc<StatCell> {
        if let Some(c) = self.stat_cells.get(&ino) {
            return c.clone();
        }
        if self.stat_cells.len() >= STAT_CELLS_PRUNE_AT.max(2 * self.stat_cells_kept) {
            self.stat_cells.retain(|_, c| Arc::strong_count(c) > 1);
            self.stat_cells_kept = self.stat_cells.len();
        }
        let c = Arc::new(StatCell::new(None));
        self.stat_cells.insert(ino, c.clone());
        c
    }

    /// Forgets the attribute cell of a freed inode.
    pub(super) fn drop_stat_cell(&mut self, ino: u32) {
        if let Some(c) = self.stat_cells.remove(&ino) {
            *c.lock() = None;
        }
    }

    fn refresh_stat(&mut self, ino: u32, inode: &InodeRepr) {
        if let Some(c) = self.stat_cells.get(&ino) {
            let st = self.stat_of(ino, inode);
            *c.lock() = Some(st);
        }
    }

    /// `stat` of inode `ino` with value `i`.
    pub(crate) fn stat_of(&self, ino: u32, i: &InodeRepr) -> Stat {
        let rdev = match i.file_type() {
            0o020000 | 0o060000 => decode_rdev(i.block[0], i.block[1]),
            _ => 0,
        };
        let blocks = if i.flags & iflags::HUGE_FILE != 0 {
            i.blocks * (self.g.bs as u64 / 512)
        } else {
            i.blocks
        };
        let ts = |t: Time| Timespec {
            sec: t.sec,
            nsec: t.nsec,
        };
        Stat {
            dev: 0,
            ino: ino as u64,
            mode: i.mode as u32,
            nlink: i.links_count as u64,
            uid: i.uid,
            gid: i.gid,
            rdev,
            size: i.size,
            blksize: self.g.bs,
            blocks,
            atime: ts(i.atime),
            mtime: ts(i.mtime),
            ctime: ts(i.ctime),
        }
    }

    /// Zeroes inode `ino`'s slot and writes `inode` into it.
    pub(super) fn init_inode(&mut self, ino: u32, inode: &InodeRepr) -> Result<(), Errno> {
        let (blk, off) = self.inode_slot(ino)?;
        let isz = self.g.inode_size;
        let data = self.cache.modify(blk)?;
        data[off..off + isz].fill(0);
        let mut p = InodePacket::new_checked(&mut data[off..off + isz]).map_err(|_| Errno::EIO)?;
        inode.emit(&mut p);
        self.refresh_stat(ino, inode);
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

/// The user-space `dev_t` (glibc's `makedev` layout) of a device inode's
/// `i_block[0..2]` (Linux's `new_decode_dev`/`old_decode_dev`).
pub(crate) fn decode_rdev(b0: u32, b1: u32) -> u64 {
    let (major, minor) = if b0 != 0 {
        (((b0 >> 8) & 0xff) as u64, (b0 & 0xff) as u64)
    } else {
        (
            ((b1 & 0xfff00) >> 8) as u64,
            ((b1 & 0xff) | ((b1 >> 12) & 0xfff00)) as u64,
        )
    };
    ((major & 0xfff) << 8) | ((major & !0xfff) << 32) | (minor & 0xff) | ((minor & !0xff) << 12)
}
