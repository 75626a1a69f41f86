//! Directories: entries in blocks, lookup, insertion, removal and
//! retargeting, and creating inodes with their entries.

use alloc::format;
use alloc::vec::Vec;

use hyper::Errno;

use crate::format::*;

use super::{Entry, Ext2};

impl Ext2 {
    // ----- directories --------------------------------------------------------------

    /// Number of blocks in directory `dir`.
    pub(crate) fn dir_blocks(&self, dir: &InodeRepr) -> u64 {
        dir.size / self.g.bs as u64
    }

    /// The entries of block `lblk` of a directory (a hole gives none).
    pub fn dir_block_entries(
        &mut self,
        ino: u32,
        dir: &InodeRepr,
        lblk: u64,
    ) -> Result<Vec<Entry>, Errno> {
        let pblk = self.bmap(ino, dir, lblk)?;
        if pblk == 0 {
            return Ok(Vec::new());
        }
        let bs = self.g.bs as usize;
        let ft = self.g.has_filetype;
        let base = lblk * bs as u64;
        let data = self.cache.read(pblk as u64)?;
        let mut out = Vec::new();
        let mut off = 0;
        let mut bad = false;
        while off < bs {
            let Ok(p) = DirEntryPacket::new_checked(&data[off..], ft) else {
                bad = true;
                break;
            };
            let rec = p.rec_len() as usize;
            if p.inode() != 0 {
                out.push(Entry {
                    pos: base + off as u64,
                    next: base + (off + rec) as u64,
                    ino: p.inode(),
                    ftype: p.file_type(),
                    name: p.name().to_vec(),
                });
            }
            off += rec;
        }
        if bad {
            return Err(self.corrupt(&format!(
                "directory inode {ino}: block {lblk}: bad entry at offset {off}"
            )));
        }
        Ok(out)
    }

    /// Finds `name` in a directory: its inode and file type.
    pub fn dir_find(
        &mut self,
        ino: u32,
        dir: &InodeRepr,
        name: &[u8],
    ) -> Result<Option<(u32, u8)>, Errno> {
        Ok(self
            .dir_locate(ino, dir, name)?
            .map(|slot| (slot.ino, slot.file_type)))
    }

    /// Whether a directory has entries besides `.` and `..`.
    pub fn dir_is_empty(&mut self, ino: u32, dir: &InodeRepr) -> Result<bool, Errno> {
        for lblk in 0..self.dir_blocks(dir) {
            for e in self.dir_block_entries(ino, dir, lblk)? {
                if e.name != b"." && e.name != b".." {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Adds the entry `name` → `target` to a directory, growing it by a
    /// block when no block has room. Clears the hash-index flag: the
    /// index is not maintained.
    pub fn dir_add(
        &mut self,
        ino: u32,
        dir: &mut InodeRepr,
        name: &[u8],
        target: u32,
        ftype: u8,
    ) -> Result<(), Errno> {
        self.check_writable()?;
        let need = dirent_len(name.len());
        let bs = self.g.bs as usize;
        let ft = self.g.has_filetype;
        let file_type = if ft { ftype } else { 0 };
        if dir.flags & iflags::INDEX != 0 {
            // The new entry may land in any block, not the leaf its hash
            // belongs in: the index must be off on disk before the entry
            // is there, or an indexed lookup could miss it (even if the
            // caller fails before writing the directory's inode).
            dir.flags &= !iflags::INDEX;
            self.write_inode(ino, dir)?;
        }
        for lblk in 0..self.dir_blocks(dir) {
            let pblk = self.bmap(ino, dir, lblk)?;
            if pblk == 0 {
                continue;
            }
            // Find a slot: an unused entry big enough, or the slack after
            // a used one.
            let slot = {
                let data = self.cache.read(pblk as u64)?;
                let mut off = 0;
                let mut slot = None;
                let mut bad = false;
                while off < bs {
                    let Ok(p) = DirEntryPacket::new_checked(&data[off..], ft) else {
                        bad = true;
                        break;
                    };
                    let rec = p.rec_len() as usize;
                    if p.inode() == 0 && rec >= need {
                        slot = Some((off, 0, rec));
                        break;
                    }
                    let used = dirent_len(p.name_len());
                    if p.inode() != 0 && rec >= used + need {
                        slot = Some((off, used, rec));
                        break;
                    }
                    off += rec;
                }
                if bad {
                    return Err(self.corrupt(&format!(
                        "directory inode {ino}: block {lblk}: bad entry at offset {off}"
                    )));
                }
                slot
            };
            if let Some((off, used, rec)) = slot {
                let data = self.cache.modify(pblk as u64)?;
                let (at, rec_len) = if used == 0 {
                    (off, rec)
                } else {
                    set_rec_len(&mut data[off..], used as u16).map_err(|_| Errno::EIO)?;
                    (off + used, rec - used)
                };
                DirEntryRepr {
                    inode: target,
                    rec_len: rec_len as u16,
                    file_type,
                    name,
                }
                .emit(&mut data[at..], ft)
                .map_err(|_| Errno::EIO)?;
                return Ok(());
            }
        }
        // No room: append a block.
        let lblk = self.dir_blocks(dir);
        let goal = self.goal_for(ino, dir, lblk);
        let (pblk, _) = self.bmap_alloc(ino, dir, lblk, goal)?;
        let data = self.cache.zeroed(pblk as u64)?;
        DirEntryRepr {
            inode: target,
            rec_len: bs as u16,
            file_type,
            name,
        }
        .emit(data, ft)
        .map_err(|_| Errno::EIO)?;
        dir.size += bs as u64;
        Ok(())
    }

    /// Locates `name` in a directory (see [`DirSlot`]): through its hash
    /// index when it has a usable one (see `htree`), else linearly.
    pub(super) fn dir_locate(
        &mut self,
        ino: u32,
        dir: &InodeRepr,
        name: &[u8],
    ) -> Result<Option<DirSlot>, Errno> {
        // "." and ".." live in block 0, outside the index.
        if self.is_indexed(ino, dir) && name != b"." && name != b".." {
            match self.dx_locate(ino, dir, name) {
                Ok(found) => return Ok(found),
                Err(why) => self.dx_unusable(ino, dir, &why),
            }
        }
        let bs = self.g.bs as usize;
        let ft = self.g.has_filetype;
        for lblk in 0..self.dir_blocks(dir) {
            let pblk = self.bmap(ino, dir, lblk)?;
            if pblk == 0 {
                continue;
            }
            let data = self.cache.read(pblk as u64)?;
            match find_in_block(data, bs, ft, name) {
                Ok(Some(hit)) => return Ok(Some(hit.at(pblk as u64))),
                Ok(None) => {}
                Err(off) => {
                    return Err(self.corrupt(&format!(
                        "directory inode {ino}: block {lblk}: bad entry at offset {off}"
                    )))
                }
            }
        }
        Ok(None)
    }

    /// Removes `name` from a directory; returns the inode it named.
    pub fn dir_remove(&mut self, ino: u32, dir: &mut InodeRepr, name: &[u8]) -> Result<u32, Errno> {
        self.check_writable()?;
        let ft = self.g.has_filetype;
        let DirSlot {
            pblk,
            off,
            prev,
            ino: target,
            ..
        } = self.dir_locate(ino, dir, name)?.ok_or(Errno::ENOENT)?;
        dir.flags &= !iflags::INDEX;
        let data = self.cache.modify(pblk)?;
        match prev {
            Some(poff) => {
                // Merge into the previous entry (Linux does the same).
                let rec = DirEntryPacket::new_checked(&data[off..], ft)
                    .map_err(|_| Errno::EIO)?
                    .rec_len();
                let prec = DirEntryPacket::new_checked(&data[poff..], ft)
                    .map_err(|_| Errno::EIO)?
                    .rec_len();
                set_rec_len(&mut data[poff..], prec + rec).map_err(|_| Errno::EIO)?;
            }
            None => set_dirent_inode(&mut data[off..], 0, None).map_err(|_| Errno::EIO)?,
        }
        Ok(target)
    }

    /// Points the existing entry `name` at `target` (rename over a file,
    /// or a moved directory's `..`).
    pub fn dir_retarget(
        &mut self,
        ino: u32,
        dir: &mut InodeRepr,
        name: &[u8],
        target: u32,
        ftype: u8,
    ) -> Result<(), Errno> {
        self.check_writable()?;
        let ft = self.g.has_filetype;
        let DirSlot { pblk, off, .. } = self.dir_locate(ino, dir, name)?.ok_or(Errno::ENOENT)?;
        dir.flags &= !iflags::INDEX;
        let data = self.cache.modify(pblk)?;
        set_dirent_inode(&mut data[off..], target, ft.then_some(ftype)).map_err(|_| Errno::EIO)
    }

    /// Creates the first block of a new directory (`.` and `..`).
    pub fn dir_init(&mut self, ino: u32, dir: &mut InodeRepr, parent: u32) -> Result<(), Errno> {
        let bs = self.g.bs as usize;
        let ft = self.g.has_filetype;
        let goal = self.goal_for(ino, dir, 0);
        let (pblk, _) = self.bmap_alloc(ino, dir, 0, goal)?;
        let data = self.cache.zeroed(pblk as u64)?;
        let t = if ft { ftype::DIR } else { 0 };
        DirEntryRepr {
            inode: ino,
            rec_len: 12,
            file_type: t,
            name: b".",
        }
        .emit(data, ft)
        .map_err(|_| Errno::EIO)?;
        DirEntryRepr {
            inode: parent,
            rec_len: (bs - 12) as u16,
            file_type: t,
            name: b"..",
        }
        .emit(&mut data[12..], ft)
        .map_err(|_| Errno::EIO)?;
        dir.size = bs as u64;
        Ok(())
    }

    /// Allocates and initialises a new inode.
    pub fn create_inode(&mut self, parent: u32, inode: &InodeRepr) -> Result<u32, Errno> {
        let ino = self.alloc_inode(parent, inode.is_dir())?;
        if let Err(e) = self.init_inode(ino, inode) {
            let _ = self.free_inode_bit(ino, inode.is_dir());
            return Err(e);
        }
        Ok(ino)
    }

    /// Undoes [`Ext2::create_inode`] after a later step failed.
    pub fn abandon_inode(&mut self, ino: u32, mut inode: InodeRepr) {
        inode.links_count = 0;
        if self.write_inode(ino, &inode).is_ok() {
            let _ = self.release_inode(ino);
        }
    }

    /// Validates an inode number found in a directory entry.
    pub fn check_entry_ino(&self, dir: u32, ino: u32) -> Result<(), Errno> {
        if ino == 0 || ino > self.g.inodes_count || (ino < self.g.first_ino && ino != ROOT_INO) {
            return Err(self.corrupt(&format!(
                "directory inode {dir}: entry names bad inode {ino}"
            )));
        }
        Ok(())
    }
}

/// Where a directory entry lives, as `dir_locate` finds it.
pub(crate) struct DirSlot {
    /// Physical block holding the entry.
    pblk: u64,
    /// Offset of the entry in that block.
    off: usize,
    /// Offset of the previous entry in the same block, if any.
    prev: Option<usize>,
    /// The inode the entry names.
    ino: u32,
    /// Its file type (0 without the `filetype` feature).
    file_type: u8,
}

/// An entry [`find_in_block`] found: a [`DirSlot`] without its block.
pub(crate) struct BlockHit {
    off: usize,
    prev: Option<usize>,
    ino: u32,
    file_type: u8,
}

impl BlockHit {
    /// The slot, in physical block `pblk`.
    pub(crate) fn at(self, pblk: u64) -> DirSlot {
        DirSlot {
            pblk,
            off: self.off,
            prev: self.prev,
            ino: self.ino,
            file_type: self.file_type,
        }
    }
}

/// Looks for the live entry `name` in one directory block of `bs` bytes.
/// `Err(off)`: the entry at `off` does not parse.
pub(crate) fn find_in_block(
    data: &[u8],
    bs: usize,
    ft: bool,
    name: &[u8],
) -> Result<Option<BlockHit>, usize> {
    let mut off = 0;
    let mut prev = None;
    while off < bs {
        let Some(Ok(p)) = data.get(off..).map(|b| DirEntryPacket::new_checked(b, ft)) else {
            return Err(off);
        };
        if p.inode() != 0 && p.name() == name {
            return Ok(Some(BlockHit {
                off,
                prev,
                ino: p.inode(),
                file_type: p.file_type(),
            }));
        }
        prev = Some(off);
        off += p.rec_len() as usize;
    }
    Ok(None)
}
