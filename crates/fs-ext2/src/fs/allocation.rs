//! Block and inode allocation: the bitmaps and the free counts of the
//! group descriptors and the superblock.

use alloc::format;

use hyper::Errno;

use super::Ext2;

/// The first zero bit in `bm` in `from..to`, if any.
pub(super) fn find_zero_bit(bm: &[u8], from: usize, to: usize) -> Option<usize> {
    let mut i = from;
    while i < to {
        let byte = *bm.get(i / 8)?;
        if i.is_multiple_of(8) && byte == 0xFF {
            i += 8;
            continue;
        }
        if byte & (1 << (i % 8)) == 0 {
            return Some(i);
        }
        i += 1;
    }
    None
}

impl Ext2 {
    // ----- allocation ------------------------------------------------------------

    /// Allocates a block, preferring `goal` and what follows it.
    pub fn alloc_block(&mut self, goal: u64) -> Result<u32, Errno> {
        self.check_writable()?;
        if self.sb.free_blocks_count == 0 {
            return Err(Errno::ENOSPC);
        }
        let g = &self.g;
        let goal = goal.clamp(g.fdb as u64, g.blocks_count as u64 - 1);
        let g0 = ((goal - g.fdb as u64) / g.bpg as u64) as u32;
        let ngroups = g.ngroups;
        for k in 0..=ngroups {
            let grp = (g0 + k) % ngroups;
            if self.groups[grp as usize].free_blocks_count == 0 {
                continue;
            }
            let nbits = self.g.group_blocks(grp) as usize;
            let start = if k == 0 {
                ((goal - self.g.fdb as u64) % self.g.bpg as u64) as usize
            } else {
                0
            };
            let bm_blk = self.groups[grp as usize].block_bitmap as u64;
            let bm = self.cache.read(bm_blk)?;
            let found =
                find_zero_bit(bm, start, nbits).or_else(|| find_zero_bit(bm, 0, start.min(nbits)));
            let Some(bit) = found else {
                continue;
            };
            let blk = self.g.group_first_block(grp) + bit as u64;
            if self.is_meta_block(blk) {
                return Err(self.corrupt(&format!(
                    "group {grp}: block bitmap marks metadata block {blk} free"
                )));
            }
            let bm = self.cache.modify(bm_blk)?;
            bm[bit / 8] |= 1 << (bit % 8);
            self.groups[grp as usize].free_blocks_count -= 1;
            self.sb.free_blocks_count -= 1;
            self.gd_dirty = true;
            return Ok((self.g.group_first_block(grp) + bit as u64) as u32);
        }
        Err(Errno::ENOSPC)
    }

    /// Frees block `b`.
    pub fn free_block(&mut self, b: u32) -> Result<(), Errno> {
        if b < self.g.fdb || b >= self.g.blocks_count {
            return Err(self.corrupt(&format!(
                "freeing block {b}, beyond end of device ({} blocks)",
                self.g.blocks_count
            )));
        }
        if self.is_meta_block(b as u64) {
            return Err(self.corrupt(&format!("freeing block {b}, which holds metadata")));
        }
        let rel = b as u64 - self.g.fdb as u64;
        let grp = (rel / self.g.bpg as u64) as usize;
        let bit = (rel % self.g.bpg as u64) as usize;
        let bm_blk = self.groups[grp].block_bitmap as u64;
        let bm = self.cache.modify(bm_blk)?;
        if bm[bit / 8] & (1 << (bit % 8)) == 0 {
            return Err(self.corrupt(&format!("freeing block {b}, which is already free")));
        }
        bm[bit / 8] &= !(1 << (bit % 8));
        self.cache.forget(b as u64);
        self.groups[grp].free_blocks_count = self.groups[grp].free_blocks_count.saturating_add(1);
        self.sb.free_blocks_count = self.sb.free_blocks_count.saturating_add(1);
        self.gd_dirty = true;
        Ok(())
    }

    /// Allocates an inode near `parent` (directories are spread over
    /// groups with more free inodes than average and few directories).
    pub fn alloc_inode(&mut self, parent: u32, is_dir: bool) -> Result<u32, Errno> {
        self.check_writable()?;
        if self.sb.free_inodes_count == 0 {
            return Err(Errno::ENOSPC);
        }
        let n = self.g.ngroups;
        let pgrp = (parent.max(1) - 1) / self.g.ipg;
        let start = if is_dir && n > 1 {
            let avg = self.sb.free_inodes_count / n;
            let mut best: Option<(u32, u16)> = None;
            for k in 0..n {
                let grp = (pgrp + 1 + k) % n;
                let d = &self.groups[grp as usize];
                if d.free_inodes_count as u32 >= avg.max(1)
                    && d.free_blocks_count > 0
                    && best.is_none_or(|(_, dirs)| d.used_dirs_count < dirs)
                {
                    best = Some((grp, d.used_dirs_count));
                }
            }
            best.map_or(pgrp, |(g, _)| g)
        } else {
            pgrp
        };
        for k in 0..n {
            let grp = (start + k) % n;
            if self.groups[grp as usize].free_inodes_count == 0 {
                continue;
            }
            let from = if grp == 0 {
                self.g.first_ino as usize - 1
            } else {
                0
            };
            let bm_blk = self.groups[grp as usize].inode_bitmap as u64;
            let ipg = self.g.ipg as usize;
            let bm = self.cache.read(bm_blk)?;
            let Some(bit) = find_zero_bit(bm, from, ipg) else {
                continue;
            };
            let bm = self.cache.modify(bm_blk)?;
            bm[bit / 8] |= 1 << (bit % 8);
            let d = &mut self.groups[grp as usize];
            d.free_inodes_count -= 1;
            if is_dir {
                d.used_dirs_count = d.used_dirs_count.saturating_add(1);
            }
            self.sb.free_inodes_count -= 1;
            self.gd_dirty = true;
            return Ok(grp * self.g.ipg + bit as u32 + 1);
        }
        Err(Errno::ENOSPC)
    }

    /// Frees inode `ino`'s bitmap bit.
    pub(super) fn free_inode_bit(&mut self, ino: u32, is_dir: bool) -> Result<(), Errno> {
        if ino == 0 || ino > self.g.inodes_count {
            return Err(Errno::EIO);
        }
        let grp = ((ino - 1) / self.g.ipg) as usize;
        let bit = ((ino - 1) % self.g.ipg) as usize;
        let bm_blk = self.groups[grp].inode_bitmap as u64;
        let bm = self.cache.modify(bm_blk)?;
        if bm[bit / 8] & (1 << (bit % 8)) == 0 {
            return Err(self.corrupt(&format!("freeing inode {ino}, which is already free")));
        }
        bm[bit / 8] &= !(1 << (bit % 8));
        let d = &mut self.groups[grp];
        d.free_inodes_count = d.free_inodes_count.saturating_add(1);
        if is_dir {
            d.used_dirs_count = d.used_dirs_count.saturating_sub(1);
        }
        self.sb.free_inodes_count = self.sb.free_inodes_count.saturating_add(1);
        self.gd_dirty = true;
        Ok(())
    }
}
