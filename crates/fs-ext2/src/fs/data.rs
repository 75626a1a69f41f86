//! File data: reads (planned under the mount lock, finished outside
//! it), writes, size changes, and freeing an inode's blocks.

use alloc::format;
use alloc::vec::Vec;

use hyper::Errno;

use crate::format::*;

use super::{rd32, wr32, Ext2, ReadRuns, MAX_DIRECT_RUN};

impl Ext2 {
    // ----- file data --------------------------------------------------------------------

    /// Reads file data at `off`; holes read as zeros.
    pub fn read_data(
        &mut self,
        ino: u32,
        inode: &InodeRepr,
        off: u64,
        buf: &mut [u8],
    ) -> Result<usize, Errno> {
        let (n, runs) = self.plan_read(ino, inode, off, buf)?;
        for (first, start, len) in runs {
            let dst = buf.get_mut(start..start + len).ok_or(Errno::EIO)?;
            self.cache.read_direct(first, dst)?;
        }
        Ok(n)
    }

    /// The first half of a read at `off`: fills `buf` with holes, partial
    /// blocks and blocks the cache holds (which may be newer than the
    /// device), and returns the byte count and the runs of whole uncached
    /// blocks left to read from the device. The caller reads them with a
    /// [`DirectIo`], after releasing the file-system lock if it holds
    /// the file's data lock (see `node.rs`), so none of them can be freed
    /// or rewritten meanwhile.
    pub fn plan_read(
        &mut self,
        ino: u32,
        inode: &InodeRepr,
        off: u64,
        buf: &mut [u8],
    ) -> Result<(usize, ReadRuns), Errno> {
        let mut runs = Vec::new();
        if off >= inode.size || buf.is_empty() {
            return Ok((0, runs));
        }
        let n = (buf.len() as u64).min(inode.size - off) as usize;
        let bs = self.g.bs as usize;
        let mut done = 0;
        // The run of whole blocks being gathered.
        let mut run: Option<(u64, usize, usize)> = None;
        while done < n {
            let pos = off + done as u64;
            let lblk = pos / bs as u64;
            let in_blk = (pos % bs as u64) as usize;
            let chunk = (bs - in_blk).min(n - done);
            let pblk = self.bmap(ino, inode, lblk)?;
            if chunk == bs && pblk != 0 && !self.cache.contains(pblk as u64) {
                match &mut run {
                    Some((first, start, len))
                        if *first + (*len / bs) as u64 == pblk as u64
                            && *start + *len == done
                            && *len < MAX_DIRECT_RUN =>
                    {
                        *len += bs
                    }
                    _ => {
                        runs.extend(run.take());
                        run = Some((pblk as u64, done, bs));
                    }
                }
            } else {
                let dst = &mut buf[done..done + chunk];
                if pblk == 0 {
                    dst.fill(0);
                } else {
                    let data = self.cache.read(pblk as u64)?;
                    dst.copy_from_slice(&data[in_blk..in_blk + chunk]);
                }
            }
            done += chunk;
        }
        runs.extend(run);
        Ok((n, runs))
    }

    /// Writes file data at `off`, allocating blocks. Returns the bytes
    /// written (short only when the disk fills after some were written).
    pub fn write_data(
        &mut self,
        ino: u32,
        inode: &mut InodeRepr,
        off: u64,
        buf: &[u8],
    ) -> Result<usize, Errno> {
        let (done, runs, err) = self.plan_write(ino, inode, off, buf)?;
        for (first, start, len) in runs {
            let src = buf.get(start..start + len).ok_or(Errno::EIO)?;
            self.cache.write_direct(first, src)?;
        }
        if done == 0 {
            return Err(err.unwrap_or(Errno::ENOSPC));
        }
        self.extend_size(inode, off + done as u64);
        Ok(done)
    }

    /// The first half of a write at `off`: allocates the blocks (changing
    /// `inode`'s block map, not its size), copies partial blocks and
    /// blocks the cache holds into the cache, and returns the bytes
    /// planned (short when the disk fills: the error is returned too) and
    /// the runs of whole uncached blocks left to write to the device. The
    /// caller writes them with a [`DirectIo`], after releasing the
    /// file-system lock if it holds the file's data lock exclusively (see
    /// `node.rs`), then extends the size ([`Ext2::extend_size`]) to what
    /// was written.
    pub fn plan_write(
        &mut self,
        ino: u32,
        inode: &mut InodeRepr,
        off: u64,
        buf: &[u8],
    ) -> Result<(usize, ReadRuns, Option<Errno>), Errno> {
        self.check_writable()?;
        let mut runs = Vec::new();
        if buf.is_empty() {
            return Ok((0, runs, None));
        }
        if off >= self.g.max_file_size {
            return Err(Errno::EFBIG);
        }
        let len = (buf.len() as u64).min(self.g.max_file_size - off) as usize;
        let bs = self.g.bs as usize;
        let mut done = 0;
        let mut run: Option<(u64, usize, usize)> = None;
        let mut goal = self.goal_for(ino, inode, off / bs as u64);
        let mut err = None;
        while done < len {
            let pos = off + done as u64;
            let lblk = pos / bs as u64;
            let in_blk = (pos % bs as u64) as usize;
            let chunk = (bs - in_blk).min(len - done);
            let (pblk, fresh) = match self.bmap_alloc(ino, inode, lblk, goal) {
                Ok(x) => x,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            };
            goal = pblk as u64 + 1;
            if chunk == bs && !self.cache.contains(pblk as u64) {
                match &mut run {
                    Some((first, start, rlen))
                        if *first + (*rlen / bs) as u64 == pblk as u64
                            && *start + *rlen == done
                            && *rlen < MAX_DIRECT_RUN =>
                    {
                        *rlen += bs
                    }
                    _ => {
                        runs.extend(run.take());
                        run = Some((pblk as u64, done, bs));
                    }
                }
            } else {
                let data = if fresh {
                    self.cache.zeroed(pblk as u64)?
                } else {
                    self.cache.modify(pblk as u64)?
                };
                data[in_blk..in_blk + chunk].copy_from_slice(&buf[done..done + chunk]);
            }
            done += chunk;
        }
        runs.extend(run);
        Ok((done, runs, err))
    }

    /// Grows `inode`'s size to `end` if it is smaller (the second half of
    /// a write).
    pub fn extend_size(&mut self, inode: &mut InodeRepr, end: u64) {
        if end > inode.size {
            inode.size = end;
            self.note_size(end);
        }
    }

    /// Sets the large_file feature once a file reaches 2 GiB.
    pub(super) fn note_size(&mut self, size: u64) {
        if size > i32::MAX as u64
            && self.g.rev >= 1
            && self.sb.feature_ro_compat & feature::RO_COMPAT_LARGE_FILE == 0
        {
            self.sb.feature_ro_compat |= feature::RO_COMPAT_LARGE_FILE;
            self.sb_dirty = true;
        }
    }

    /// Truncates or extends a regular file to `size`.
    pub fn set_size(&mut self, ino: u32, inode: &mut InodeRepr, size: u64) -> Result<(), Errno> {
        self.check_writable()?;
        if size > self.g.max_file_size {
            return Err(Errno::EFBIG);
        }
        let bs = self.g.bs as u64;
        if size < inode.size {
            let keep = size.div_ceil(bs);
            self.truncate_blocks(ino, inode, keep)?;
            // Zero the cut-off tail of the last block, so a later
            // extension reads zeros there.
            let tail = (size % bs) as usize;
            if tail != 0 {
                let pblk = self.bmap(ino, inode, size / bs)?;
                if pblk != 0 {
                    self.cache.modify(pblk as u64)?[tail..].fill(0);
                }
            }
        }
        inode.size = size;
        self.note_size(size);
        Ok(())
    }

    /// Frees an inode whose link count dropped to zero: its blocks, its
    /// extended-attribute block, and its bitmap bit.
    pub fn release_inode(&mut self, ino: u32) -> Result<(), Errno> {
        self.check_writable()?;
        let mut inode = self.read_inode(ino)?;
        if inode.links_count != 0 {
            return Ok(());
        }
        let has_blocks = match inode.file_type() {
            S_IFREG | S_IFDIR => true,
            S_IFLNK => !inode.is_fast_symlink(self.g.bs),
            _ => false,
        };
        let mut result = Ok(());
        if has_blocks {
            result = self.truncate_blocks(ino, &mut inode, 0);
        }
        if inode.file_acl != 0 {
            if let Err(e) = self.release_xattr_block(inode.file_acl) {
                result = Err(e);
            }
            inode.file_acl = 0;
        }
        inode.block = [0; N_BLOCKS];
        inode.blocks = 0;
        inode.size = 0;
        inode.dtime = self.now().sec as u32;
        self.write_inode(ino, &inode)?;
        self.drop_stat_cell(ino);
        self.free_inode_bit(ino, inode.is_dir())?;
        result
    }

    /// Drops one reference to a shared extended-attribute block, freeing
    /// it with the last.
    pub(super) fn release_xattr_block(&mut self, b: u32) -> Result<(), Errno> {
        if b < self.g.fdb || b >= self.g.blocks_count {
            return Err(self.corrupt(&format!("extended attribute block {b} out of range")));
        }
        let blk = b as u64;
        let data = self.cache.read(blk)?;
        if rd32(data, 0) != 0xEA02_0000 {
            return Err(self.corrupt(&format!("extended attribute block {b}: bad magic")));
        }
        let refs = rd32(data, 1);
        if refs > 1 {
            wr32(self.cache.modify(blk)?, 1, refs - 1);
            Ok(())
        } else {
            self.free_block(b)
        }
    }
}
