//! The block map: direct, indirect, double and triple indirect
//! pointers; lookup, allocation and truncation.

use alloc::format;
use alloc::vec::Vec;

use hyper::Errno;

use crate::format::*;

use super::{rd32, wr32, Ext2};

/// The path to logical block `lblk` with `p` pointers per block: depth
/// (0 = direct) and the index at each level. `EFBIG` beyond triple
/// indirect.
pub(super) fn block_path(p: u64, lblk: u64) -> Result<(usize, [usize; 4]), Errno> {
    if lblk < 12 {
        return Ok((0, [lblk as usize, 0, 0, 0]));
    }
    let l = lblk - 12;
    if l < p {
        return Ok((1, [IND_BLOCK, l as usize, 0, 0]));
    }
    let l = l - p;
    if l < p * p {
        return Ok((2, [IND_BLOCK + 1, (l / p) as usize, (l % p) as usize, 0]));
    }
    let l = l - p * p;
    if l < p * p * p {
        return Ok((
            3,
            [
                IND_BLOCK + 2,
                (l / (p * p)) as usize,
                ((l / p) % p) as usize,
                (l % p) as usize,
            ],
        ));
    }
    Err(Errno::EFBIG)
}

impl Ext2 {
    // ----- block map -----------------------------------------------------------------

    /// Checks that `b` is a block number inside the data area.
    pub(super) fn check_data_block(&self, b: u32, ino: u32) -> Result<u64, Errno> {
        if b < self.g.fdb || b >= self.g.blocks_count {
            return Err(self.corrupt(&format!(
                "inode {ino}: block {b} beyond end of device ({} blocks)",
                self.g.blocks_count
            )));
        }
        Ok(b as u64)
    }

    /// The path to logical block `lblk`: depth (0 = direct) and the index
    /// at each level. `EFBIG` beyond triple indirect.
    pub(super) fn block_path(&self, lblk: u64) -> Result<(usize, [usize; 4]), Errno> {
        block_path(self.g.ppb, lblk)
    }

    /// The physical block of logical block `lblk` of a file (0 for a
    /// hole).
    pub fn bmap(&mut self, ino: u32, inode: &InodeRepr, lblk: u64) -> Result<u32, Errno> {
        if inode.flags & iflags::EXTENTS != 0 {
            return self.extent_bmap(ino, inode, lblk);
        }
        let (depth, idx) = self.block_path(lblk)?;
        let mut ptr = inode.block[idx[0]];
        for &i in idx.iter().take(depth + 1).skip(1) {
            if ptr == 0 {
                return Ok(0);
            }
            let b = self.check_data_block(ptr, ino)?;
            ptr = rd32(self.cache.read(b)?, i);
        }
        if ptr != 0 {
            self.check_data_block(ptr, ino)?;
        }
        Ok(ptr)
    }

    /// `SEEK_DATA`/`SEEK_HOLE` from `off` (below `size`): the first
    /// offset at or after it where data (`hole` false) or a hole begins,
    /// by the block map. At most a bounded number of blocks is looked at
    /// per call (the mount lock is held); past that the answer errs
    /// towards data, which is always correct to read.
    pub fn seek_data(
        &mut self,
        ino: u32,
        inode: &InodeRepr,
        off: u64,
        size: u64,
        hole: bool,
    ) -> Result<u64, Errno> {
        const SCAN: u64 = 1 << 16;
        let bs = self.g.bs as u64;
        let end = size.div_ceil(bs);
        let start = |l: u64| (l * bs).max(off);
        let mut lblk = off / bs;
        for _ in 0..SCAN {
            if lblk >= end {
                return if hole { Ok(size) } else { Err(Errno::ENXIO) };
            }
            let mapped = self.bmap(ino, inode, lblk)? != 0;
            if mapped != hole {
                return Ok(start(lblk));
            }
            lblk += 1;
        }
        Ok(if hole { size } else { start(lblk) })
    }

    /// Like [`Ext2::bmap`], allocating the block (and any missing
    /// indirect blocks) if it is a hole. Returns the block and whether it
    /// is new (its contents are then undefined: the caller fills it).
    /// Space for the whole path is checked first, so an `ENOSPC` leaves
    /// nothing half-allocated.
    pub fn bmap_alloc(
        &mut self,
        ino: u32,
        inode: &mut InodeRepr,
        lblk: u64,
        goal: u64,
    ) -> Result<(u32, bool), Errno> {
        let existing = self.bmap(ino, inode, lblk)?;
        if existing != 0 {
            return Ok((existing, false));
        }
        self.check_writable()?;
        let (depth, idx) = self.block_path(lblk)?;
        if (self.sb.free_blocks_count as usize) < depth + 1 {
            return Err(Errno::ENOSPC);
        }
        let spb = self.spb();
        let mut goal = goal;
        if depth == 0 {
            let b = self.alloc_block(goal)?;
            inode.block[idx[0]] = b;
            inode.blocks += spb;
            return Ok((b, true));
        }
        let mut ptr = inode.block[idx[0]];
        if ptr == 0 {
            ptr = self.alloc_block(goal)?;
            self.cache.zeroed(ptr as u64)?;
            inode.block[idx[0]] = ptr;
            inode.blocks += spb;
            goal = ptr as u64 + 1;
        }
        for (level, &i) in idx.iter().enumerate().take(depth + 1).skip(1) {
            let b = self.check_data_block(ptr, ino)?;
            let next = rd32(self.cache.read(b)?, i);
            if next != 0 {
                if level == depth {
                    return Ok((next, false));
                }
                ptr = next;
                continue;
            }
            let nb = self.alloc_block(goal)?;
            goal = nb as u64 + 1;
            if level < depth {
                self.cache.zeroed(nb as u64)?;
            }
            wr32(self.cache.modify(b)?, i, nb);
            inode.blocks += spb;
            if level == depth {
                return Ok((nb, true));
            }
            ptr = nb;
        }
        Err(Errno::EIO)
    }

    /// Frees every block of the file at logical index `from` and beyond,
    /// and the indirect blocks left with nothing to map.
    pub fn truncate_blocks(
        &mut self,
        ino: u32,
        inode: &mut InodeRepr,
        from: u64,
    ) -> Result<(), Errno> {
        let mut freed = 0u64;
        let mut result = Ok(());
        for i in (from.min(12) as usize)..12 {
            let b = inode.block[i];
            if b != 0 {
                if let Err(e) = self.free_block(b) {
                    result = Err(e);
                    break;
                }
                inode.block[i] = 0;
                freed += 1;
            }
        }
        let p = self.g.ppb;
        let mut start = 12u64;
        let mut span = p;
        for level in 1..=3usize {
            let slot = IND_BLOCK + level - 1;
            let ptr = inode.block[slot];
            if result.is_ok() && ptr != 0 && from < start + span {
                match self.free_tree(ino, ptr, level, start, from, &mut freed) {
                    Ok(true) => inode.block[slot] = 0,
                    Ok(false) => {}
                    Err(e) => result = Err(e),
                }
            }
            start += span;
            span = span.saturating_mul(p);
        }
        inode.blocks = inode.blocks.saturating_sub(freed * self.spb());
        result
    }

    /// Frees what the indirect block `ptr` (at `level`, mapping logical
    /// blocks from `start`) maps at or beyond `from`. Returns whether
    /// `ptr` itself was freed.
    pub(super) fn free_tree(
        &mut self,
        ino: u32,
        ptr: u32,
        level: usize,
        start: u64,
        from: u64,
        freed: &mut u64,
    ) -> Result<bool, Errno> {
        let b = self.check_data_block(ptr, ino)?;
        let p = self.g.ppb;
        let child_span = p.pow(level as u32 - 1);
        let entries: Vec<u32> = {
            let data = self.cache.read(b)?;
            (0..p as usize).map(|i| rd32(data, i)).collect()
        };
        let first = if from <= start {
            0
        } else {
            ((from - start) / child_span) as usize
        };
        let mut zeroed = Vec::new();
        for (i, &child) in entries.iter().enumerate().skip(first) {
            if child == 0 {
                continue;
            }
            let cstart = start + i as u64 * child_span;
            let whole = if level == 1 {
                if cstart >= from {
                    self.free_block(child)?;
                    *freed += 1;
                    true
                } else {
                    false
                }
            } else {
                self.free_tree(ino, child, level - 1, cstart, from, freed)?
            };
            if whole {
                zeroed.push(i);
            }
        }
        if from <= start {
            self.free_block(ptr)?;
            *freed += 1;
            return Ok(true);
        }
        if !zeroed.is_empty() {
            let data = self.cache.modify(b)?;
            for i in zeroed {
                wr32(data, i, 0);
            }
        }
        Ok(false)
    }

    /// A block near which to allocate logical block `lblk` of `ino`.
    pub(super) fn goal_for(&mut self, ino: u32, inode: &InodeRepr, lblk: u64) -> u64 {
        if lblk > 0 {
            if let Ok(prev) = self.bmap(ino, inode, lblk - 1) {
                if prev != 0 {
                    return prev as u64 + 1;
                }
            }
        }
        let grp = (ino.max(1) - 1) / self.g.ipg;
        self.g.group_first_block(grp)
    }
}
