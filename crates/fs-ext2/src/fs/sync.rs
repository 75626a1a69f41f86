//! Writing back: `sync` (everything) and `fsync` (one file and the
//! allocation metadata it depends on), and unmount.

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;

use dev_blk::cache::DirectIo;
use hyper::Errno;

use crate::format::*;

use super::{rd32, Ext2, MAX_NEW_ENTRIES};

impl Ext2 {
    /// Writes everything dirty: descriptors and cached blocks, then the
    /// superblock, then a device barrier.
    pub fn sync(&mut self) -> Result<(), Errno> {
        if self.read_only {
            return Ok(());
        }
        self.flush_groups()?;
        self.cache.write_back()?;
        self.sb.wtime = self.now().sec as u32;
        self.write_super()?;
        self.cache.device_io(|d| d.flush())?;
        self.meta_dirty.clear();
        self.new_entries.clear();
        self.new_entries_overflow = false;
        Ok(())
    }

    /// Notes that `ino`'s size or block map changed (see `meta_dirty`).
    pub fn note_meta(&mut self, ino: u32) {
        self.meta_dirty.insert(ino);
    }

    /// Notes that `ino` got an entry in directory `dir` (see
    /// `new_entries`).
    pub fn note_entry(&mut self, ino: u32, dir: u32) {
        if self.new_entries.len() >= MAX_NEW_ENTRIES {
            self.new_entries.clear();
            self.new_entries_overflow = true;
        }
        if !self.new_entries_overflow {
            self.new_entries.insert(ino, dir);
        }
    }

    /// Makes file `ino` durable: its dirty data and indirect blocks, its
    /// inode's block (unless `datasync` and only its times changed), the
    /// allocation metadata (dirty bitmaps and descriptor blocks, and the
    /// superblock if a feature flag changed), and, for a file given a
    /// directory entry since the last sync, that directory the same way;
    /// then the device barrier. Other files' dirty blocks stay in the
    /// cache. Returns the number of cached blocks written.
    pub fn fsync_inode(&mut self, ino: u32, datasync: bool) -> Result<usize, Errno> {
        if self.read_only {
            return Ok(0);
        }
        if self.new_entries_overflow {
            let n = self.cache.dirty_count();
            self.sync()?;
            return Ok(n);
        }
        let mut set = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut todo = vec![ino];
        while let Some(i) = todo.pop() {
            if !seen.insert(i) {
                continue;
            }
            let inode = self.read_inode(i)?;
            self.dirty_blocks_of(i, &inode, &mut set)?;
            if !(datasync && i == ino && !self.meta_dirty.contains(&i)) {
                set.insert(self.inode_slot(i)?.0);
            }
            if let Some(&dir) = self.new_entries.get(&i) {
                todo.push(dir);
            }
        }
        self.flush_groups()?;
        for d in &self.groups {
            set.insert(d.block_bitmap as u64);
            set.insert(d.inode_bitmap as u64);
        }
        let per_block = (self.g.bs as usize / GROUP_DESC_SIZE) as u64;
        let gd_blocks = (self.g.ngroups as u64).div_ceil(per_block);
        let fdb = self.g.fdb as u64;
        set.extend(fdb + 1..fdb + 1 + gd_blocks);
        let n = self.cache.write_blocks(&set)?;
        if self.sb_dirty {
            self.write_super()?;
        }
        self.cache.device_io(|d| d.flush())?;
        for i in seen {
            self.meta_dirty.remove(&i);
            self.new_entries.remove(&i);
        }
        Ok(n)
    }

    /// Adds to `out` the dirty cached blocks of file `ino`: data,
    /// directory and indirect blocks.
    pub(super) fn dirty_blocks_of(
        &mut self,
        ino: u32,
        inode: &InodeRepr,
        out: &mut BTreeSet<u64>,
    ) -> Result<(), Errno> {
        let has_blocks = match inode.file_type() {
            S_IFREG | S_IFDIR => true,
            S_IFLNK => !inode.is_fast_symlink(self.g.bs),
            _ => false,
        };
        if !has_blocks || self.cache.dirty_count() == 0 {
            return Ok(());
        }
        for &b in inode.block.iter().take(12) {
            if b != 0 && self.cache.is_dirty(b as u64) {
                out.insert(b as u64);
            }
        }
        for level in 1..=3usize {
            let ptr = inode.block[IND_BLOCK + level - 1];
            if ptr != 0 {
                self.dirty_tree(ino, ptr, level, out)?;
            }
        }
        Ok(())
    }

    /// [`Ext2::dirty_blocks_of`] for the tree under indirect block `ptr`.
    pub(super) fn dirty_tree(
        &mut self,
        ino: u32,
        ptr: u32,
        level: usize,
        out: &mut BTreeSet<u64>,
    ) -> Result<(), Errno> {
        let b = self.check_data_block(ptr, ino)?;
        if self.cache.is_dirty(b) {
            out.insert(b);
        }
        let p = self.g.ppb as usize;
        let entries: Vec<u32> = {
            let data = self.cache.read(b)?;
            (0..p).map(|i| rd32(data, i)).filter(|&c| c != 0).collect()
        };
        for child in entries {
            if level == 1 {
                let c = self.check_data_block(child, ino)?;
                if self.cache.is_dirty(c) {
                    out.insert(c);
                }
            } else {
                self.dirty_tree(ino, child, level - 1, out)?;
            }
        }
        Ok(())
    }

    /// A reader of the device for [`ReadRuns`], usable without the lock.
    pub fn direct_io(&self) -> DirectIo {
        self.cache.direct_io()
    }

    /// Syncs and marks the file system clean: the clean flag reaches the
    /// device only after everything else is durable.
    pub fn unmount(&mut self) -> Result<(), Errno> {
        if self.read_only {
            return Ok(());
        }
        self.sync()?;
        self.sb.state |= state::VALID;
        self.write_super()?;
        self.cache.device_io(|d| d.flush())?;
        self.read_only = true;
        Ok(())
    }
}
