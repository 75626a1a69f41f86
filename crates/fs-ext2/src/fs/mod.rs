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
//!
//! Submodules, along ext2's own seams: `geometry` (geometry, superblock
//! and group descriptors), `sync` (sync and fsync), `inode` (inode I/O),
//! `allocation` (bitmaps), `bmap` (the block map), `data` (file data,
//! truncation, freeing inodes), `dir` (directories).

mod allocation;
mod bmap;
mod data;
mod dir;
mod extent;
mod geometry;
mod inode;
mod sync;

pub(crate) use dir::{find_in_block, DirSlot};
pub use geometry::Geometry;
#[cfg(test)]
pub(crate) use inode::decode_rdev;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use dev_blk::cache::BufCache;
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
    /// The attributes of inodes that nodes hold, as of the last write of
    /// each inode (see [`StatCell`]).
    stat_cells: BTreeMap<u32, Arc<StatCell>>,
    /// Size of `stat_cells` after its last pruning.
    stat_cells_kept: usize,
}

/// An inode's attributes as `stat` reports them, shared between the
/// mount state and the nodes of that inode: `getattr` reads it without
/// the mount lock. It is filled and changed only under the mount lock
/// (every write of the inode refreshes it), so a reader sees the value
/// of the last completed write or of one in progress, never an older one
/// after a write returned.
pub(crate) type StatCell = kern::sync::SpinMutex<Option<kern::Stat>>;

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
        let unsupported =
            sb.feature_incompat & !(feature::INCOMPAT_SUPPORTED | feature::INCOMPAT_READ_ONLY);
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
        let ext4 = sb.feature_incompat & feature::INCOMPAT_READ_ONLY;
        if ext4 != 0 && want_rw {
            let names: Vec<&str> = (0..32)
                .map(|bit| 1u32 << bit)
                .filter(|f| ext4 & f != 0)
                .map(feature::incompat_name)
                .collect();
            log(&format!(
                "ext4 features {ext4:#x} ({}): read but not written by this driver; mounting read-only",
                names.join(", ")
            ));
            read_only = true;
        }
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
            stat_cells: BTreeMap::new(),
            stat_cells_kept: 0,
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
}

#[cfg(test)]
mod tests {
    use super::allocation::find_zero_bit;
    use super::bmap::block_path;
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
