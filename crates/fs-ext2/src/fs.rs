//! The mounted ext2 file system's state and its algorithms: geometry,
//! inode I/O, bitmap allocation, the block map (direct, indirect, double
//! and triple indirect), file data, directories, and sync.
//!
//! Everything here runs under the file system's mount lock (see
//! `node.rs`), so the functions take `&mut Ext2` and need no locking of
//! their own; the one exception is the second half of a read
//! ([`Ext2::plan_read`]), which the caller does without it.
//! Metadata goes through the buffer cache; whole data blocks bypass it
//! (`BufCache::read_direct`/`write_direct`), partial ones use it.
//!
//! Untrusted input: every block number read from the image is checked
//! against the geometry before it is followed, every directory entry is
//! parsed with `DirEntryPacket::new_checked`, and any inconsistency is
//! logged and reported as `EUCLEAN` (never a panic).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use dev_blk::cache::{BufCache, DirectReader};
use dev_blk::BlockDevice;
use hyper::{Errno, Hyper};

use crate::format::*;

/// Default buffer-cache budget per mount.
pub const DEFAULT_CACHE_BYTES: usize = 32 << 20;
/// Largest run of whole blocks read or written with one device call.
const MAX_DIRECT_RUN: usize = 1 << 20;
/// Most new directory entries remembered for `fsync`; past it, the next
/// `fsync` syncs everything.
const MAX_NEW_ENTRIES: usize = 1 << 16;

/// Geometry and feature facts fixed at mount.
#[derive(Clone, Debug)]
pub struct Geometry {
    pub bs: u32,
    pub ppb: u64,
    pub ipg: u32,
    pub bpg: u32,
    pub fdb: u32,
    pub ngroups: u32,
    pub blocks_count: u32,
    pub inodes_count: u32,
    pub inode_size: usize,
    pub first_ino: u32,
    pub has_filetype: bool,
    pub sparse_super: bool,
    pub rev: u32,
    pub gdt_blocks: u32,
    pub itable_blocks: u32,
    pub max_file_size: u64,
    /// Blocks that are never free space (statfs's "bsddf" overhead).
    pub overhead: u64,
}

impl Geometry {
    /// Works the geometry out of a parsed superblock.
    pub fn from_super(sb: &SuperblockRepr) -> Result<Geometry, &'static str> {
        let bs = sb.block_size();
        if bs > 32768 {
            return Err("block sizes above 32 KiB are not supported");
        }
        let ngroups = sb.group_count();
        if (ngroups as u64) * (sb.inodes_per_group as u64) != sb.inodes_count as u64 {
            return Err("inode count does not match groups times inodes per group");
        }
        let inode_size = sb.inode_size as usize;
        let gdt_blocks = (ngroups as usize * GROUP_DESC_SIZE).div_ceil(bs as usize) as u32;
        let itable_blocks =
            (sb.inodes_per_group as usize * inode_size).div_ceil(bs as usize) as u32;
        let ppb = bs as u64 / 4;
        let sparse_super = sb.feature_ro_compat & feature::RO_COMPAT_SPARSE_SUPER != 0;
        let mut max = (12 + ppb + ppb * ppb + ppb * ppb * ppb) * bs as u64;
        // i_blocks is 32 bits of 512-byte sectors without huge_file; keep
        // a margin for the indirect blocks.
        max = max.min((1u64 << 41) - (1u64 << 32));
        if sb.rev_level == 0 {
            max = max.min(i32::MAX as u64);
        }
        let mut g = Geometry {
            bs,
            ppb,
            ipg: sb.inodes_per_group,
            bpg: sb.blocks_per_group,
            fdb: sb.first_data_block,
            ngroups,
            blocks_count: sb.blocks_count,
            inodes_count: sb.inodes_count,
            inode_size,
            first_ino: sb.first_ino,
            has_filetype: sb.feature_incompat & feature::INCOMPAT_FILETYPE != 0,
            sparse_super,
            rev: sb.rev_level,
            gdt_blocks,
            itable_blocks,
            max_file_size: max,
            overhead: 0,
        };
        let mut overhead = g.fdb as u64;
        for grp in 0..ngroups {
            if g.group_has_super(grp) {
                overhead += 1 + gdt_blocks as u64;
            }
            overhead += 2 + itable_blocks as u64;
        }
        g.overhead = overhead;
        Ok(g)
    }

    /// First block of group `g`.
    pub fn group_first_block(&self, g: u32) -> u64 {
        self.fdb as u64 + g as u64 * self.bpg as u64
    }

    /// Number of blocks in group `g` (the last one may be short).
    pub fn group_blocks(&self, g: u32) -> u32 {
        let first = self.group_first_block(g);
        (self.blocks_count as u64 - first).min(self.bpg as u64) as u32
    }

    /// Whether group `g` holds a copy of the superblock (all groups
    /// without sparse_super; else 0, 1 and powers of 3, 5 and 7).
    pub fn group_has_super(&self, g: u32) -> bool {
        if !self.sparse_super || g <= 1 {
            return true;
        }
        let is_pow = |mut n: u32, b: u32| {
            while n.is_multiple_of(b) {
                n /= b;
            }
            n == 1
        };
        is_pow(g, 3) || is_pow(g, 5) || is_pow(g, 7)
    }
}

/// One directory entry, owned.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Byte position in the directory (the readdir cookie of this entry).
    pub pos: u64,
    /// Position of the next entry.
    pub next: u64,
    pub ino: u32,
    pub ftype: u8,
    pub name: Vec<u8>,
}

/// The state of one mounted ext2 file system.
pub struct Ext2 {
    pub cache: BufCache,
    pub g: Geometry,
    pub sb: SuperblockRepr,
    sb_raw: Box<[u8]>,
    pub groups: Vec<GroupDescRepr>,
    gd_dirty: bool,
    pub read_only: bool,
    hyper: Arc<dyn Hyper>,
    name: String,
    next_generation: u32,
    /// Hash indexes judged so far (`htree`): directory inode to the
    /// directory's size when judged and whether its index is usable.
    pub(crate) dx_judged: BTreeMap<u32, (u64, bool)>,
    /// Inodes whose size or block map changed since they were last
    /// synced: `fdatasync` must write them (for others, only times may
    /// have changed).
    meta_dirty: BTreeSet<u32>,
    /// Inodes given a directory entry since the last sync, with that
    /// directory: their `fsync` writes the directory too, as ext2 has no
    /// journal to make the entry durable (ext4 without a journal does the
    /// same).
    new_entries: BTreeMap<u32, u32>,
    /// More new entries than [`MAX_NEW_ENTRIES`] came: the next `fsync`
    /// syncs everything.
    new_entries_overflow: bool,
    /// The in-memory superblock has a change `fsync` must write (a
    /// feature flag).
    sb_dirty: bool,
    /// Blocks that hold metadata (superblock copies, descriptor tables
    /// and their reserve, bitmaps, inode tables): first block to one past
    /// the last. Allocation refuses them even where a (corrupt) bitmap
    /// marks them free.
    meta_ranges: BTreeMap<u64, u64>,
}

/// Whole-block runs of a read, to be read from the device after the
/// file-system lock is released: (first block, offset in the buffer,
/// length in bytes). None of the blocks was cached when planned.
pub type ReadRuns = Vec<(u64, usize, usize)>;

fn rd32(b: &[u8], i: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[4 * i..4 * i + 4]);
    u32::from_le_bytes(a)
}

fn wr32(b: &mut [u8], i: usize, v: u32) {
    b[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
}

/// The first zero bit in `bm` in `from..to`, if any.
fn find_zero_bit(bm: &[u8], from: usize, to: usize) -> Option<usize> {
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

/// The path to logical block `lblk` with `p` pointers per block: depth
/// (0 = direct) and the index at each level. `EFBIG` beyond triple
/// indirect.
fn block_path(p: u64, lblk: u64) -> Result<(usize, [usize; 4]), Errno> {
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

/// Maps a node type to a directory-entry file type.
pub fn ftype_of_mode(mode: u16) -> u8 {
    match mode & S_IFMT {
        0o100000 => ftype::REG,
        0o040000 => ftype::DIR,
        0o020000 => ftype::CHRDEV,
        0o060000 => ftype::BLKDEV,
        0o010000 => ftype::FIFO,
        0o140000 => ftype::SOCK,
        0o120000 => ftype::SYMLINK,
        _ => ftype::UNKNOWN,
    }
}

impl Ext2 {
    /// Reads and checks the superblock and group descriptors of `dev`.
    /// `want_rw`: the mount asks for writing. Unsupported incompat
    /// features are refused with `EINVAL`; unknown ro_compat features
    /// make the file system read-only.
    pub fn open(
        dev: Arc<dyn BlockDevice>,
        want_rw: bool,
        hyper: Arc<dyn Hyper>,
        name: &str,
        cache_bytes: usize,
    ) -> Result<Ext2, Errno> {
        let log = |msg: &str| {
            let line = format!("[rump] ext2: {name}: {msg}\n");
            hyper.console_write(line.as_bytes());
        };
        let mut raw = vec![0u8; SUPERBLOCK_SIZE].into_boxed_slice();
        if dev.sectors() < 4 {
            log("device too small for a superblock");
            return Err(Errno::EINVAL);
        }
        dev.read_blocks(SUPERBLOCK_OFFSET / 512, &mut raw)?;
        let sb =
            match SuperblockPacket::new_checked(&raw[..]).and_then(|p| SuperblockRepr::parse(&p)) {
                Ok(sb) => sb,
                Err(FormatError::BadMagic) => {
                    log("bad magic number in superblock (not an ext2 file system)");
                    return Err(Errno::EINVAL);
                }
                Err(e) => {
                    log(&format!("invalid superblock: {e:?}"));
                    return Err(Errno::EINVAL);
                }
            };
        let dev_blocks = dev.sectors() / (sb.block_size() as u64 / 512);
        if sb.blocks_count as u64 > dev_blocks {
            log(&format!(
                "file system has {} blocks but the device only {dev_blocks}",
                sb.blocks_count
            ));
            return Err(Errno::EINVAL);
        }
        let unsupported = sb.feature_incompat & !feature::INCOMPAT_SUPPORTED;
        if unsupported != 0 {
            let mut names = String::new();
            for bit in 0..32 {
                let f = 1u32 << bit;
                if unsupported & f != 0 {
                    if !names.is_empty() {
                        names.push_str(", ");
                    }
                    names.push_str(feature::incompat_name(f));
                    if f == feature::INCOMPAT_RECOVER {
                        names.push_str(" (journal needs recovery)");
                    }
                }
            }
            log(&format!(
                "unsupported incompatible features {unsupported:#x} ({names}); refusing to mount"
            ));
            return Err(Errno::EINVAL);
        }
        let g = match Geometry::from_super(&sb) {
            Ok(g) => g,
            Err(msg) => {
                log(msg);
                return Err(Errno::EINVAL);
            }
        };
        let mut read_only = !want_rw || dev.is_read_only();
        let ro_unknown = sb.feature_ro_compat & !feature::RO_COMPAT_SUPPORTED;
        if ro_unknown != 0 && want_rw {
            log(&format!(
                "unsupported read-only-compatible features {ro_unknown:#x}; mounting read-only"
            ));
            read_only = true;
        }
        let cache = BufCache::new(dev.clone(), g.bs as usize, cache_bytes)?;
        if g.blocks_count as u64 > cache.blocks() {
            log(&format!(
                "file system has {} blocks but the device only {}",
                g.blocks_count,
                cache.blocks()
            ));
            return Err(Errno::EINVAL);
        }
        let mut fs = Ext2 {
            cache,
            g,
            sb,
            sb_raw: raw,
            groups: Vec::new(),
            gd_dirty: false,
            read_only,
            hyper: hyper.clone(),
            name: name.into(),
            next_generation: 0,
            dx_judged: BTreeMap::new(),
            meta_dirty: BTreeSet::new(),
            new_entries: BTreeMap::new(),
            new_entries_overflow: false,
            sb_dirty: false,
            meta_ranges: BTreeMap::new(),
        };
        fs.load_groups()?;
        // Free counts come from the descriptors, as Linux recomputes them.
        let free_blocks: u64 = fs.groups.iter().map(|d| d.free_blocks_count as u64).sum();
        let free_inodes: u64 = fs.groups.iter().map(|d| d.free_inodes_count as u64).sum();
        if free_blocks > fs.g.blocks_count as u64 || free_inodes > fs.g.inodes_count as u64 {
            return Err(fs.corrupt("group descriptor free counts exceed the totals"));
        }
        fs.sb.free_blocks_count = free_blocks as u32;
        fs.sb.free_inodes_count = free_inodes as u32;
        let mut seed = [0u8; 4];
        hyper.random_fill(&mut seed);
        fs.next_generation = u32::from_le_bytes(seed);
        if !fs.read_only {
            if fs.sb.state & state::VALID == 0 {
                fs.log(
                    "warning: mounting a file system that was not cleanly unmounted; run e2fsck",
                );
            } else if fs.sb.state & state::ERROR != 0 {
                fs.log("warning: mounting a file system with errors; run e2fsck");
            }
            if fs.sb.max_mnt_count as i16 > 0 && fs.sb.mnt_count >= fs.sb.max_mnt_count {
                fs.log("warning: maximal mount count reached; running e2fsck is recommended");
            }
            fs.sb.state &= !state::VALID;
            fs.sb.mnt_count = fs.sb.mnt_count.wrapping_add(1);
            fs.sb.mtime = fs.now().sec as u32;
            fs.write_super()?;
            fs.cache.device_io(|d| d.flush())?;
        }
        Ok(fs)
    }

    fn load_groups(&mut self) -> Result<(), Errno> {
        let g = self.g.clone();
        let mut groups = Vec::with_capacity(g.ngroups as usize);
        let per_block = g.bs as usize / GROUP_DESC_SIZE;
        for i in 0..g.ngroups {
            let blk = g.fdb as u64 + 1 + (i as usize / per_block) as u64;
            let off = (i as usize % per_block) * GROUP_DESC_SIZE;
            let data = self.cache.read(blk)?;
            let d = GroupDescPacket::new_checked(&data[off..off + GROUP_DESC_SIZE])
                .and_then(|p| GroupDescRepr::parse(&p))
                .map_err(|_| Errno::EIO)?;
            groups.push(d);
        }
        for (i, d) in groups.iter().enumerate() {
            let end = g.blocks_count as u64;
            let ok = (d.block_bitmap as u64) < end
                && d.block_bitmap >= g.fdb
                && (d.inode_bitmap as u64) < end
                && d.inode_bitmap >= g.fdb
                && d.inode_table >= g.fdb
                && d.inode_table as u64 + g.itable_blocks as u64 <= end
                && (d.free_blocks_count as u32) <= g.group_blocks(i as u32)
                && (d.free_inodes_count as u32) <= g.ipg;
            if !ok {
                return Err(self.corrupt(&format!(
                    "group {i}: descriptor out of range (block bitmap {}, inode bitmap {}, inode table {})",
                    d.block_bitmap, d.inode_bitmap, d.inode_table
                )));
            }
        }
        let mut meta = BTreeMap::new();
        let reserved = self.sb.reserved_gdt_blocks as u64;
        let mut add = |from: u64, to: u64| {
            let e = meta.entry(from).or_insert(to);
            *e = (*e).max(to);
        };
        for (i, d) in groups.iter().enumerate() {
            let first = g.group_first_block(i as u32);
            if g.group_has_super(i as u32) {
                add(first, first + 1 + g.gdt_blocks as u64 + reserved);
            }
            add(d.block_bitmap as u64, d.block_bitmap as u64 + 1);
            add(d.inode_bitmap as u64, d.inode_bitmap as u64 + 1);
            add(
                d.inode_table as u64,
                d.inode_table as u64 + g.itable_blocks as u64,
            );
        }
        if g.fdb > 0 {
            add(0, g.fdb as u64);
        }
        self.meta_ranges = meta;
        self.groups = groups;
        Ok(())
    }

    /// Whether block `b` holds metadata (see `meta_ranges`).
    fn is_meta_block(&self, b: u64) -> bool {
        self.meta_ranges
            .range(..=b)
            .next_back()
            .is_some_and(|(_, &end)| b < end)
    }

    /// Writes a line to the console.
    pub fn log(&self, msg: &str) {
        let line = format!("[rump] ext2: {}: {msg}\n", self.name);
        self.hyper.console_write(line.as_bytes());
    }

    /// Logs a corruption and returns the errno for it.
    pub fn corrupt(&self, msg: &str) -> Errno {
        self.log(msg);
        Errno::EUCLEAN
    }

    /// The wall-clock time.
    pub fn now(&self) -> Time {
        let t = self.hyper.clock_wall();
        Time {
            sec: t.sec,
            nsec: t.nsec,
        }
    }

    /// `EROFS` on a read-only mount.
    pub fn check_writable(&self) -> Result<(), Errno> {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    // ----- superblock and descriptors ---------------------------------------

    /// Writes the primary superblock straight to the device.
    pub fn write_super(&mut self) -> Result<(), Errno> {
        let mut p = SuperblockPacket::new_checked(&mut self.sb_raw[..]).map_err(|_| Errno::EIO)?;
        self.sb.emit(&mut p);
        let raw = &self.sb_raw;
        self.cache
            .device_io(|d| d.write_blocks(SUPERBLOCK_OFFSET / 512, raw))?;
        self.sb_dirty = false;
        Ok(())
    }

    fn flush_groups(&mut self) -> Result<(), Errno> {
        if !self.gd_dirty {
            return Ok(());
        }
        let per_block = self.g.bs as usize / GROUP_DESC_SIZE;
        let fdb = self.g.fdb as u64;
        for (i, d) in self.groups.iter().enumerate() {
            let blk = fdb + 1 + (i / per_block) as u64;
            let off = (i % per_block) * GROUP_DESC_SIZE;
            let data = self.cache.modify(blk)?;
            let mut p = GroupDescPacket::new_checked(&mut data[off..off + GROUP_DESC_SIZE])
                .map_err(|_| Errno::EIO)?;
            d.emit(&mut p);
        }
        self.gd_dirty = false;
        Ok(())
    }

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
    fn dirty_blocks_of(
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
    fn dirty_tree(
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
    pub fn direct_reader(&self) -> DirectReader {
        self.cache.direct_reader()
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

    // ----- inodes ------------------------------------------------------------------

    fn inode_slot(&self, ino: u32) -> Result<(u64, usize), Errno> {
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
    fn init_inode(&mut self, ino: u32, inode: &InodeRepr) -> Result<(), Errno> {
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
    fn spb(&self) -> u64 {
        self.g.bs as u64 / 512
    }

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
    fn free_inode_bit(&mut self, ino: u32, is_dir: bool) -> Result<(), Errno> {
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

    // ----- block map -----------------------------------------------------------------

    /// Checks that `b` is a block number inside the data area.
    fn check_data_block(&self, b: u32, ino: u32) -> Result<u64, Errno> {
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
    fn block_path(&self, lblk: u64) -> Result<(usize, [usize; 4]), Errno> {
        block_path(self.g.ppb, lblk)
    }

    /// The physical block of logical block `lblk` of a file (0 for a
    /// hole).
    pub fn bmap(&mut self, ino: u32, inode: &InodeRepr, lblk: u64) -> Result<u32, Errno> {
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
    fn free_tree(
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
    fn goal_for(&mut self, ino: u32, inode: &InodeRepr, lblk: u64) -> u64 {
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
    /// [`DirectReader`], after releasing the file-system lock if it holds
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
        self.check_writable()?;
        if buf.is_empty() {
            return Ok(0);
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
            if chunk == bs {
                match &mut run {
                    Some((first, start, rlen))
                        if *first + (*rlen / bs) as u64 == pblk as u64
                            && *start + *rlen == done
                            && *rlen < MAX_DIRECT_RUN =>
                    {
                        *rlen += bs
                    }
                    _ => {
                        if let Some((first, start, rlen)) = run.take() {
                            self.cache.write_direct(first, &buf[start..start + rlen])?;
                        }
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
        if let Some((first, start, rlen)) = run {
            self.cache.write_direct(first, &buf[start..start + rlen])?;
        }
        if done == 0 {
            return Err(err.unwrap_or(Errno::ENOSPC));
        }
        let end = off + done as u64;
        if end > inode.size {
            inode.size = end;
            self.note_size(end);
        }
        Ok(done)
    }

    /// Sets the large_file feature once a file reaches 2 GiB.
    fn note_size(&mut self, size: u64) {
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
        self.free_inode_bit(ino, inode.is_dir())?;
        result
    }

    /// Drops one reference to a shared extended-attribute block, freeing
    /// it with the last.
    fn release_xattr_block(&mut self, b: u32) -> Result<(), Errno> {
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
    fn dir_locate(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_path_boundaries() {
        let p = 256;
        assert_eq!(block_path(p, 11).unwrap(), (0, [11, 0, 0, 0]));
        assert_eq!(block_path(p, 12).unwrap(), (1, [12, 0, 0, 0]));
        assert_eq!(block_path(p, 12 + 255).unwrap(), (1, [12, 255, 0, 0]));
        assert_eq!(block_path(p, 12 + 256).unwrap(), (2, [13, 0, 0, 0]));
        assert_eq!(block_path(p, 12 + 256 + 257).unwrap(), (2, [13, 1, 1, 0]));
        let t = 12 + 256 + 256 * 256;
        assert_eq!(block_path(p, t).unwrap(), (3, [14, 0, 0, 0]));
        assert_eq!(
            block_path(p, t + 256 * 256 + 3).unwrap(),
            (3, [14, 1, 0, 3])
        );
        assert_eq!(
            block_path(p, t + 256 * 256 * 256 - 1).unwrap(),
            (3, [14, 255, 255, 255])
        );
        assert_eq!(block_path(p, t + 256 * 256 * 256), Err(Errno::EFBIG));
    }

    #[test]
    fn zero_bit_search() {
        let bm = [0xFFu8, 0xFF, 0b1110_1111, 0xFF];
        assert_eq!(find_zero_bit(&bm, 0, 32), Some(20));
        assert_eq!(find_zero_bit(&bm, 21, 32), None);
        assert_eq!(find_zero_bit(&bm, 0, 20), None);
        assert_eq!(find_zero_bit(&bm, 0, 100), Some(20));
        assert_eq!(find_zero_bit(&[0xFF], 0, 100), None);
    }

    #[test]
    fn sparse_super_groups() {
        let sb = SuperblockRepr {
            inodes_count: 99 * 8,
            blocks_count: 100 * 8192,
            blocks_per_group: 8192,
            inodes_per_group: 8,
            log_block_size: 0,
            first_data_block: 1,
            first_ino: 11,
            inode_size: 128,
            rev_level: 1,
            feature_ro_compat: feature::RO_COMPAT_SPARSE_SUPER,
            ..Default::default()
        };
        let mut sb = sb;
        sb.blocks_count = 99 * 8192 + 1;
        let g = Geometry::from_super(&sb).unwrap();
        let with: Vec<u32> = (0..g.ngroups).filter(|&i| g.group_has_super(i)).collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
    }
}
