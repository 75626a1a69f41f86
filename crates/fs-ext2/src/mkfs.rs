//! Creating an ext2 file system on a block device (`rump newfs`).
//!
//! The layout follows mke2fs for ext2: block groups of `8 * block_size`
//! blocks; in each group a superblock and group-descriptor copy where
//! sparse_super wants one (groups 0, 1 and powers of 3, 5, 7), then the
//! block bitmap, the inode bitmap and the inode table; a root directory
//! and a `lost+found` directory (which e2fsck expects). Revision 1 gets
//! the `filetype`, `sparse_super` and `large_file` features; revision 0
//! gets none, 128-byte inodes and 16-bit name lengths. A last group too
//! small to be useful is dropped, as mke2fs does.

use alloc::vec;
use alloc::vec::Vec;

use dev_blk::{BlockDevice, SECTOR_SIZE};
use hyper::Errno;

use crate::format::*;
use crate::fs::Geometry;

/// What to create.
#[derive(Clone, Debug)]
pub struct MkfsOptions {
    /// 1024, 2048 or 4096 (up to 32768 is accepted).
    pub block_size: u32,
    /// Number of blocks; `None` for the whole device.
    pub blocks: Option<u64>,
    /// Number of inodes; `None` for one per `bytes_per_inode`.
    pub inodes: Option<u32>,
    pub bytes_per_inode: u32,
    /// 128 or 256 (revision 1 only; revision 0 is always 128).
    pub inode_size: u16,
    /// 0 or 1.
    pub revision: u32,
    /// Percentage of blocks reserved for root.
    pub reserved_percent: u32,
    pub label: [u8; 16],
    pub uuid: [u8; 16],
    /// Creation time (seconds since the epoch).
    pub now: u32,
}

impl Default for MkfsOptions {
    fn default() -> Self {
        MkfsOptions {
            block_size: 4096,
            blocks: None,
            inodes: None,
            bytes_per_inode: 16384,
            inode_size: 256,
            revision: 1,
            reserved_percent: 5,
            label: [0; 16],
            uuid: [0; 16],
            now: 0,
        }
    }
}

/// What [`format`] made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MkfsSummary {
    pub block_size: u32,
    pub blocks: u32,
    pub inodes: u32,
    pub groups: u32,
    pub free_blocks: u32,
    pub free_inodes: u32,
}

/// Blocks of `lost+found` (mke2fs makes it 16 KiB; direct blocks only
/// here).
fn lost_found_blocks(bs: u32) -> u32 {
    (16384 / bs).clamp(1, 12)
}

/// Writes a new, empty ext2 file system on `dev`.
pub fn format(dev: &dyn BlockDevice, o: &MkfsOptions) -> Result<MkfsSummary, Errno> {
    let bs = o.block_size;
    if !(1024..=32768).contains(&bs) || !bs.is_power_of_two() || o.revision > 1 {
        return Err(Errno::EINVAL);
    }
    let isz: u16 = if o.revision == 0 { 128 } else { o.inode_size };
    if !(128..=1024).contains(&isz) || !isz.is_power_of_two() || isz as u32 > bs {
        return Err(Errno::EINVAL);
    }
    if dev.is_read_only() {
        return Err(Errno::EROFS);
    }
    let dev_blocks = dev.size_bytes() / bs as u64;
    let mut blocks = o
        .blocks
        .unwrap_or(dev_blocks)
        .min(dev_blocks)
        .min(u32::MAX as u64) as u32;
    let fdb = u32::from(bs == 1024);
    let bpg = 8 * bs;
    let first_ino = GOOD_OLD_FIRST_INO;
    let nlf = lost_found_blocks(bs);
    let mut sb;
    let geo;
    loop {
        if blocks < 64 {
            return Err(Errno::ENOSPC);
        }
        let ngroups = (blocks - fdb).div_ceil(bpg);
        let want_inodes = match o.inodes {
            Some(n) => n as u64,
            None => (blocks as u64 * bs as u64 / o.bytes_per_inode.max(1024) as u64).max(16),
        };
        let per_block = bs / isz as u32;
        let align = per_block.max(8);
        let mut ipg = (want_inodes.div_ceil(ngroups as u64) as u32).max(16);
        ipg = ipg.div_ceil(align) * align;
        ipg = ipg.min(8 * bs / align * align);
        sb = SuperblockRepr {
            inodes_count: ipg * ngroups,
            blocks_count: blocks,
            r_blocks_count: (blocks as u64 * o.reserved_percent.min(50) as u64 / 100) as u32,
            first_data_block: fdb,
            log_block_size: bs.trailing_zeros() - 10,
            log_frag_size: bs.trailing_zeros() - 10,
            blocks_per_group: bpg,
            frags_per_group: bpg,
            inodes_per_group: ipg,
            wtime: o.now,
            max_mnt_count: 0xFFFF,
            state: state::VALID,
            errors: 1,
            lastcheck: o.now,
            rev_level: o.revision,
            first_ino,
            inode_size: isz,
            feature_incompat: if o.revision == 1 {
                feature::INCOMPAT_FILETYPE
            } else {
                0
            },
            feature_ro_compat: if o.revision == 1 {
                feature::RO_COMPAT_SPARSE_SUPER | feature::RO_COMPAT_LARGE_FILE
            } else {
                0
            },
            uuid: o.uuid,
            volume_name: o.label,
            hash_seed: o.uuid,
            mkfs_time: o.now,
            min_extra_isize: if isz >= 160 { NEW_EXTRA_ISIZE } else { 0 },
            want_extra_isize: if isz >= 160 { NEW_EXTRA_ISIZE } else { 0 },
            ..Default::default()
        };
        let g = Geometry::from_super(&sb).map_err(|_| Errno::EINVAL)?;
        let last = g.ngroups - 1;
        let last_overhead = if g.group_has_super(last) {
            1 + g.gdt_blocks
        } else {
            0
        } + 2
            + g.itable_blocks;
        if g.ngroups > 1 && g.group_blocks(last) < last_overhead + 50 {
            blocks -= g.group_blocks(last);
            continue;
        }
        let first_overhead = 1 + g.gdt_blocks + 2 + g.itable_blocks;
        if g.group_blocks(0) < first_overhead + 1 + nlf + 8 {
            return Err(Errno::ENOSPC);
        }
        geo = g;
        break;
    }
    let g = geo;
    let spb = (bs as usize / SECTOR_SIZE) as u64;
    let write = |blk: u64, buf: &[u8]| dev.write_blocks(blk * spb, buf);
    let zero_block = vec![0u8; bs as usize];

    // Per-group layout.
    let mut groups = Vec::with_capacity(g.ngroups as usize);
    for grp in 0..g.ngroups {
        let mut off = g.group_first_block(grp);
        if g.group_has_super(grp) {
            off += 1 + g.gdt_blocks as u64;
        }
        groups.push(GroupDescRepr {
            block_bitmap: off as u32,
            inode_bitmap: off as u32 + 1,
            inode_table: off as u32 + 2,
            free_blocks_count: 0,
            free_inodes_count: g.ipg as u16,
            used_dirs_count: 0,
            flags: 0,
        });
    }
    let root_blk = groups[0].inode_table as u64 + g.itable_blocks as u64;
    let lf_blk = root_blk + 1;
    let lf_ino = first_ino;

    // Bitmaps and inode tables.
    let mut total_free_blocks = 0u32;
    for grp in 0..g.ngroups {
        let d = &mut groups[grp as usize];
        let start = g.group_first_block(grp);
        let nblocks = g.group_blocks(grp) as usize;
        let mut used = (d.inode_table as u64 + g.itable_blocks as u64 - start) as usize;
        if grp == 0 {
            used += 1 + nlf as usize;
        }
        let mut bm = vec![0u8; bs as usize];
        for bit in (0..used).chain(nblocks..8 * bs as usize) {
            bm[bit / 8] |= 1 << (bit % 8);
        }
        write(d.block_bitmap as u64, &bm)?;
        d.free_blocks_count = (nblocks - used) as u16;
        total_free_blocks += (nblocks - used) as u32;
        let mut im = vec![0u8; bs as usize];
        let reserved = if grp == 0 { lf_ino as usize } else { 0 };
        for bit in (0..reserved).chain(g.ipg as usize..8 * bs as usize) {
            im[bit / 8] |= 1 << (bit % 8);
        }
        write(d.inode_bitmap as u64, &im)?;
        d.free_inodes_count = (g.ipg as usize - reserved) as u16;
        // Zero the inode table in large writes.
        let chunk_blocks = ((1 << 20) / bs as usize).max(1);
        let chunk = vec![0u8; chunk_blocks * bs as usize];
        let mut b = 0;
        while b < g.itable_blocks as usize {
            let n = chunk_blocks.min(g.itable_blocks as usize - b);
            write(d.inode_table as u64 + b as u64, &chunk[..n * bs as usize])?;
            b += n;
        }
    }
    groups[0].used_dirs_count = 2;

    // Directories.
    let ft = o.revision == 1;
    let t = if ft { ftype::DIR } else { 0 };
    let mut blk = vec![0u8; bs as usize];
    let emit = |buf: &mut [u8], ino: u32, rec: u32, name: &[u8]| {
        DirEntryRepr {
            inode: ino,
            rec_len: rec as u16,
            file_type: t,
            name,
        }
        .emit(buf, ft)
        .map_err(|_| Errno::EINVAL)
    };
    emit(&mut blk[0..], ROOT_INO, 12, b".")?;
    emit(&mut blk[12..], ROOT_INO, 12, b"..")?;
    emit(&mut blk[24..], lf_ino, bs - 24, b"lost+found")?;
    write(root_blk, &blk)?;
    blk.fill(0);
    emit(&mut blk[0..], lf_ino, 12, b".")?;
    emit(&mut blk[12..], ROOT_INO, bs - 12, b"..")?;
    write(lf_blk, &blk)?;
    blk.fill(0);
    emit(&mut blk[0..], 0, bs, b"")?;
    for i in 1..nlf as u64 {
        write(lf_blk + i, &blk)?;
    }

    // Inodes 2 and 11.
    let now = Time {
        sec: o.now as i64,
        nsec: 0,
    };
    let extra = if isz as usize >= GOOD_OLD_INODE_SIZE + NEW_EXTRA_ISIZE as usize {
        NEW_EXTRA_ISIZE
    } else {
        0
    };
    let mut root = InodeRepr {
        mode: S_IFDIR | 0o755,
        size: bs as u64,
        atime: now,
        ctime: now,
        mtime: now,
        crtime: now,
        links_count: 3,
        blocks: bs as u64 / 512,
        extra_isize: extra,
        ..Default::default()
    };
    root.block[0] = root_blk as u32;
    let mut lf = root;
    lf.mode = S_IFDIR | 0o700;
    lf.links_count = 2;
    lf.size = nlf as u64 * bs as u64;
    lf.blocks = nlf as u64 * bs as u64 / 512;
    lf.block = [0; N_BLOCKS];
    for i in 0..nlf as usize {
        lf.block[i] = lf_blk as u32 + i as u32;
    }
    for (ino, inode) in [(ROOT_INO, &root), (lf_ino, &lf)] {
        let byte = (ino as u64 - 1) * isz as u64;
        let tblk = groups[0].inode_table as u64 + byte / bs as u64;
        let off = (byte % bs as u64) as usize;
        let mut buf = vec![0u8; bs as usize];
        dev.read_blocks(tblk * spb, &mut buf)?;
        let mut p = InodePacket::new_checked(&mut buf[off..off + isz as usize])
            .map_err(|_| Errno::EINVAL)?;
        inode.emit(&mut p);
        write(tblk, &buf)?;
    }

    // Group descriptors and superblocks, last.
    let total_free_inodes: u32 = groups.iter().map(|d| d.free_inodes_count as u32).sum();
    sb.free_blocks_count = total_free_blocks;
    sb.free_inodes_count = total_free_inodes;
    let mut gdt = vec![0u8; g.gdt_blocks as usize * bs as usize];
    for (i, d) in groups.iter().enumerate() {
        let mut p = GroupDescPacket::new_checked(&mut gdt[i * GROUP_DESC_SIZE..])
            .map_err(|_| Errno::EINVAL)?;
        d.emit(&mut p);
    }
    for grp in 0..g.ngroups {
        if !g.group_has_super(grp) {
            continue;
        }
        let start = g.group_first_block(grp);
        write(start + 1, &gdt)?;
        let mut copy = sb;
        copy.block_group_nr = grp as u16;
        let mut raw = [0u8; SUPERBLOCK_SIZE];
        copy.emit(&mut SuperblockPacket::new_checked(&mut raw[..]).map_err(|_| Errno::EINVAL)?);
        if grp == 0 {
            dev.write_blocks(SUPERBLOCK_OFFSET / SECTOR_SIZE as u64, &raw)?;
        } else {
            let mut b = zero_block.clone();
            b[..SUPERBLOCK_SIZE].copy_from_slice(&raw);
            write(start, &b)?;
        }
    }
    dev.flush()?;
    Ok(MkfsSummary {
        block_size: bs,
        blocks: sb.blocks_count,
        inodes: sb.inodes_count,
        groups: g.ngroups,
        free_blocks: sb.free_blocks_count,
        free_inodes: sb.free_inodes_count,
    })
}
