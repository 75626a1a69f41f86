//! Geometry, the superblock and the group descriptors: what the mount
//! works out of them, and writing them back.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec::Vec;

use hyper::Errno;

use crate::format::*;

use super::Ext2;

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
    /// Bytes per group descriptor: 32, or `s_desc_size` with 64bit.
    pub desc_size: usize,
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
        let desc_size = if sb.feature_incompat & feature::INCOMPAT_64BIT != 0 {
            let d = sb.desc_size as usize;
            if !(64..=1024).contains(&d) || !d.is_power_of_two() || d > bs as usize {
                return Err("64bit: bad group descriptor size");
            }
            if sb.blocks_count_hi != 0 {
                return Err("more than 2^32 blocks are not supported");
            }
            d
        } else {
            GROUP_DESC_SIZE
        };
        let gdt_blocks = (ngroups as usize * desc_size).div_ceil(bs as usize) as u32;
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
            desc_size,
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

impl Ext2 {
    pub(super) fn load_groups(&mut self) -> Result<(), Errno> {
        let g = self.g.clone();
        let mut groups = Vec::with_capacity(g.ngroups as usize);
        let ds = g.desc_size;
        let per_block = g.bs as usize / ds;
        for i in 0..g.ngroups {
            let blk = g.fdb as u64 + 1 + (i as usize / per_block) as u64;
            let off = (i as usize % per_block) * ds;
            let data = self.cache.read(blk)?;
            let raw = &data[off..off + ds];
            let d = GroupDescPacket::new_checked(raw)
                .and_then(|p| GroupDescRepr::parse(&p))
                .map_err(|_| Errno::EIO)?;
            // 64bit: the high halves of the locations (block bitmap,
            // inode bitmap, inode table) must be zero below 2^32 blocks.
            if ds >= 64 && raw[0x20..0x2C].iter().any(|&b| b != 0) {
                return Err(self.corrupt(&format!(
                    "group {i}: descriptor locations above 2^32 blocks"
                )));
            }
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
    pub(super) fn is_meta_block(&self, b: u64) -> bool {
        self.meta_ranges
            .range(..=b)
            .next_back()
            .is_some_and(|(_, &end)| b < end)
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

    pub(super) fn flush_groups(&mut self) -> Result<(), Errno> {
        if !self.gd_dirty {
            return Ok(());
        }
        let ds = self.g.desc_size;
        let per_block = self.g.bs as usize / ds;
        let fdb = self.g.fdb as u64;
        for (i, d) in self.groups.iter().enumerate() {
            let blk = fdb + 1 + (i / per_block) as u64;
            let off = (i % per_block) * ds;
            let data = self.cache.modify(blk)?;
            let mut p = GroupDescPacket::new_checked(&mut data[off..off + GROUP_DESC_SIZE])
                .map_err(|_| Errno::EIO)?;
            d.emit(&mut p);
        }
        self.gd_dirty = false;
        Ok(())
    }
}
