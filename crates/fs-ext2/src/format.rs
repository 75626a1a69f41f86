//! The ext2 on-disk structures, in smoltcp's style: for each a zero-copy
//! view (`*Packet<T: AsRef<[u8]>>`) whose `new_checked` verifies the length
//! so that no accessor can panic, with a private `field` module of byte
//! ranges, and a `*Repr` with `parse`, `emit` and `buffer_len`.
//!
//! Source: "The Second Extended File System: Internal Layout" (Dave Poirier)
//! and the ext4 documentation's "Super Block", "Block Group Descriptors",
//! "Index Nodes" and "Directory Entries" sections, which describe the ext2
//! subset. All fields are little-endian.
//!
//! `emit` writes only the fields a `Repr` knows into an existing buffer, so
//! fields this driver does not interpret (the rest of a superblock, the
//! extended part of a large inode) are preserved.

use core::ops::Range;

/// The ext2 magic number (`s_magic`).
pub const EXT2_MAGIC: u16 = 0xEF53;
/// Byte offset of the primary superblock on the device.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of the superblock.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// Size of a group descriptor without the 64bit feature.
pub const GROUP_DESC_SIZE: usize = 32;
/// Size of a revision 0 inode (the fixed part of every inode).
pub const GOOD_OLD_INODE_SIZE: usize = 128;
/// First non-reserved inode of revision 0.
pub const GOOD_OLD_FIRST_INO: u32 = 11;
/// The root directory's inode.
pub const ROOT_INO: u32 = 2;
/// Number of block pointers in an inode: 12 direct, then single, double
/// and triple indirect.
pub const N_BLOCKS: usize = 15;
/// Index of the single indirect pointer.
pub const IND_BLOCK: usize = 12;
/// Longest symlink target stored in the inode itself ("fast" symlink).
pub const FAST_SYMLINK_MAX: usize = 59;
/// Largest link count (`EXT2_LINK_MAX`).
pub const LINK_MAX: u16 = 32000;

/// Superblock `s_state` bits.
pub mod state {
    /// Cleanly unmounted.
    pub const VALID: u16 = 1;
    /// Errors detected.
    pub const ERROR: u16 = 2;
}

/// Feature flags.
pub mod feature {
    pub const COMPAT_DIR_PREALLOC: u32 = 0x1;
    pub const COMPAT_HAS_JOURNAL: u32 = 0x4;
    pub const COMPAT_EXT_ATTR: u32 = 0x8;
    pub const COMPAT_RESIZE_INODE: u32 = 0x10;
    pub const COMPAT_DIR_INDEX: u32 = 0x20;

    pub const INCOMPAT_COMPRESSION: u32 = 0x1;
    pub const INCOMPAT_FILETYPE: u32 = 0x2;
    pub const INCOMPAT_RECOVER: u32 = 0x4;
    pub const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
    pub const INCOMPAT_META_BG: u32 = 0x10;
    pub const INCOMPAT_EXTENTS: u32 = 0x40;
    pub const INCOMPAT_64BIT: u32 = 0x80;
    pub const INCOMPAT_MMP: u32 = 0x100;
    pub const INCOMPAT_FLEX_BG: u32 = 0x200;
    pub const INCOMPAT_EA_INODE: u32 = 0x400;
    pub const INCOMPAT_DIRDATA: u32 = 0x1000;
    pub const INCOMPAT_CSUM_SEED: u32 = 0x2000;
    pub const INCOMPAT_LARGEDIR: u32 = 0x4000;
    pub const INCOMPAT_INLINE_DATA: u32 = 0x8000;
    pub const INCOMPAT_ENCRYPT: u32 = 0x1_0000;
    pub const INCOMPAT_CASEFOLD: u32 = 0x2_0000;

    pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
    pub const RO_COMPAT_LARGE_FILE: u32 = 0x2;
    pub const RO_COMPAT_BTREE_DIR: u32 = 0x4;
    pub const RO_COMPAT_HUGE_FILE: u32 = 0x8;
    pub const RO_COMPAT_GDT_CSUM: u32 = 0x10;
    pub const RO_COMPAT_DIR_NLINK: u32 = 0x20;
    pub const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

    /// Incompatible features this driver implements.
    pub const INCOMPAT_SUPPORTED: u32 = INCOMPAT_FILETYPE;
    /// Incompatible features of ext4 this driver reads but cannot write
    /// yet: a file system with any of them mounts read-only. (The
    /// checksum seed only matters to writers.)
    pub const INCOMPAT_READ_ONLY: u32 =
        INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG | INCOMPAT_CSUM_SEED;
    /// Read-only-compatible features this driver maintains when writing.
    pub const RO_COMPAT_SUPPORTED: u32 =
        RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR;

    /// Names of incompat bits, for messages.
    pub fn incompat_name(bit: u32) -> &'static str {
        match bit {
            INCOMPAT_COMPRESSION => "compression",
            INCOMPAT_FILETYPE => "filetype",
            INCOMPAT_RECOVER => "needs_recovery",
            INCOMPAT_JOURNAL_DEV => "journal_dev",
            INCOMPAT_META_BG => "meta_bg",
            INCOMPAT_EXTENTS => "extents",
            INCOMPAT_64BIT => "64bit",
            INCOMPAT_MMP => "mmp",
            INCOMPAT_FLEX_BG => "flex_bg",
            INCOMPAT_EA_INODE => "ea_inode",
            INCOMPAT_DIRDATA => "dirdata",
            INCOMPAT_CSUM_SEED => "metadata_csum_seed",
            INCOMPAT_LARGEDIR => "large_dir",
            INCOMPAT_INLINE_DATA => "inline_data",
            INCOMPAT_ENCRYPT => "encrypt",
            INCOMPAT_CASEFOLD => "casefold",
            _ => "unknown",
        }
    }
}

/// Superblock `s_flags` bits.
pub mod sflags {
    /// Directory hashes read name bytes as signed chars.
    pub const SIGNED_HASH: u32 = 0x1;
    /// Directory hashes read name bytes as unsigned chars.
    pub const UNSIGNED_HASH: u32 = 0x2;
    /// A test file system (development code may use it).
    pub const TEST_FILESYS: u32 = 0x4;
}

/// Inode `i_flags` bits that matter here.
pub mod iflags {
    /// Hash-indexed directory (`EXT2_INDEX_FL`).
    pub const INDEX: u32 = 0x1000;
    /// `i_blocks` counts file-system blocks (huge_file).
    pub const HUGE_FILE: u32 = 0x4_0000;
    /// Uses extents.
    pub const EXTENTS: u32 = 0x8_0000;
    /// Inline data.
    pub const INLINE_DATA: u32 = 0x1000_0000;
}

/// Directory entry file types (with the `filetype` feature).
pub mod ftype {
    pub const UNKNOWN: u8 = 0;
    pub const REG: u8 = 1;
    pub const DIR: u8 = 2;
    pub const CHRDEV: u8 = 3;
    pub const BLKDEV: u8 = 4;
    pub const FIFO: u8 = 5;
    pub const SOCK: u8 = 6;
    pub const SYMLINK: u8 = 7;
}

/// Why a structure did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The buffer is shorter than the structure.
    Truncated,
    /// A magic number is wrong.
    BadMagic,
    /// A field holds an impossible value.
    Malformed(&'static str),
}

pub(crate) fn get16(b: &[u8], f: Range<usize>) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[f]);
    u16::from_le_bytes(a)
}

pub(crate) fn get32(b: &[u8], f: Range<usize>) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[f]);
    u32::from_le_bytes(a)
}

pub(crate) fn put16(b: &mut [u8], f: Range<usize>, v: u16) {
    b[f].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put32(b: &mut [u8], f: Range<usize>, v: u32) {
    b[f].copy_from_slice(&v.to_le_bytes());
}

// ----- superblock -------------------------------------------------------------

mod sbf {
    use core::ops::Range;
    type F = Range<usize>;
    pub const INODES_COUNT: F = 0..4;
    pub const BLOCKS_COUNT: F = 4..8;
    pub const R_BLOCKS_COUNT: F = 8..12;
    pub const FREE_BLOCKS: F = 12..16;
    pub const FREE_INODES: F = 16..20;
    pub const FIRST_DATA_BLOCK: F = 20..24;
    pub const LOG_BLOCK_SIZE: F = 24..28;
    pub const LOG_FRAG_SIZE: F = 28..32;
    pub const BLOCKS_PER_GROUP: F = 32..36;
    pub const FRAGS_PER_GROUP: F = 36..40;
    pub const INODES_PER_GROUP: F = 40..44;
    pub const MTIME: F = 44..48;
    pub const WTIME: F = 48..52;
    pub const MNT_COUNT: F = 52..54;
    pub const MAX_MNT_COUNT: F = 54..56;
    pub const MAGIC: F = 56..58;
    pub const STATE: F = 58..60;
    pub const ERRORS: F = 60..62;
    pub const MINOR_REV: F = 62..64;
    pub const LASTCHECK: F = 64..68;
    pub const CHECKINTERVAL: F = 68..72;
    pub const CREATOR_OS: F = 72..76;
    pub const REV_LEVEL: F = 76..80;
    pub const DEF_RESUID: F = 80..82;
    pub const DEF_RESGID: F = 82..84;
    pub const FIRST_INO: F = 84..88;
    pub const INODE_SIZE: F = 88..90;
    pub const BLOCK_GROUP_NR: F = 90..92;
    pub const FEATURE_COMPAT: F = 92..96;
    pub const FEATURE_INCOMPAT: F = 96..100;
    pub const FEATURE_RO_COMPAT: F = 100..104;
    pub const UUID: F = 104..120;
    pub const VOLUME_NAME: F = 120..136;
    pub const RESERVED_GDT_BLOCKS: F = 206..208;
    pub const HASH_SEED: F = 236..252;
    pub const DEF_HASH_VERSION: usize = 252;
    pub const MKFS_TIME: F = 264..268;
    pub const MIN_EXTRA_ISIZE: F = 348..350;
    pub const WANT_EXTRA_ISIZE: F = 350..352;
    pub const FLAGS: F = 352..356;
    pub const DESC_SIZE: F = 254..256;
    pub const BLOCKS_COUNT_HI: F = 336..340;
}

/// A view of a superblock (1024 bytes).
#[derive(Debug, Clone)]
pub struct SuperblockPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SuperblockPacket<T> {
    /// Wraps `buffer`, checking it holds a whole superblock.
    pub fn new_checked(buffer: T) -> Result<Self, FormatError> {
        if buffer.as_ref().len() < SUPERBLOCK_SIZE {
            return Err(FormatError::Truncated);
        }
        Ok(SuperblockPacket { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn magic(&self) -> u16 {
        get16(self.b(), sbf::MAGIC)
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// The superblock fields this driver reads or maintains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SuperblockRepr {
    pub inodes_count: u32,
    pub blocks_count: u32,
    pub r_blocks_count: u32,
    pub free_blocks_count: u32,
    pub free_inodes_count: u32,
    pub first_data_block: u32,
    pub log_block_size: u32,
    pub log_frag_size: u32,
    pub blocks_per_group: u32,
    pub frags_per_group: u32,
    pub inodes_per_group: u32,
    pub mtime: u32,
    pub wtime: u32,
    pub mnt_count: u16,
    pub max_mnt_count: u16,
    pub state: u16,
    pub errors: u16,
    pub minor_rev_level: u16,
    pub lastcheck: u32,
    pub checkinterval: u32,
    pub creator_os: u32,
    pub rev_level: u32,
    pub def_resuid: u16,
    pub def_resgid: u16,
    /// Revision 1 fields (revision 0 reads them as 11 and 128).
    pub first_ino: u32,
    pub inode_size: u16,
    pub block_group_nr: u16,
    pub feature_compat: u32,
    pub feature_incompat: u32,
    pub feature_ro_compat: u32,
    pub uuid: [u8; 16],
    pub volume_name: [u8; 16],
    pub reserved_gdt_blocks: u16,
    pub hash_seed: [u8; 16],
    pub def_hash_version: u8,
    pub mkfs_time: u32,
    pub min_extra_isize: u16,
    pub want_extra_isize: u16,
    /// `s_flags`: see [`sflags`].
    pub flags: u32,
    /// `s_desc_size`: bytes per group descriptor with 64bit (read only;
    /// [`SuperblockRepr::emit`] leaves the field alone).
    pub desc_size: u16,
    /// `s_blocks_count_hi` with 64bit (read only, like `desc_size`).
    pub blocks_count_hi: u32,
}

impl SuperblockRepr {
    /// Parses a superblock: checks the magic, the revision and that the
    /// geometry fields are usable (non-zero, block size at most 64 KiB,
    /// inode size a power of two that fits a block).
    pub fn parse<T: AsRef<[u8]>>(p: &SuperblockPacket<T>) -> Result<SuperblockRepr, FormatError> {
        let b = p.b();
        if p.magic() != EXT2_MAGIC {
            return Err(FormatError::BadMagic);
        }
        let rev_level = get32(b, sbf::REV_LEVEL);
        if rev_level > 1 {
            return Err(FormatError::Malformed("revision level above 1"));
        }
        let (first_ino, inode_size) = if rev_level == 0 {
            (GOOD_OLD_FIRST_INO, GOOD_OLD_INODE_SIZE as u16)
        } else {
            (get32(b, sbf::FIRST_INO), get16(b, sbf::INODE_SIZE))
        };
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[sbf::UUID]);
        let mut volume_name = [0u8; 16];
        volume_name.copy_from_slice(&b[sbf::VOLUME_NAME]);
        let mut hash_seed = [0u8; 16];
        hash_seed.copy_from_slice(&b[sbf::HASH_SEED]);
        let r = SuperblockRepr {
            inodes_count: get32(b, sbf::INODES_COUNT),
            blocks_count: get32(b, sbf::BLOCKS_COUNT),
            r_blocks_count: get32(b, sbf::R_BLOCKS_COUNT),
            free_blocks_count: get32(b, sbf::FREE_BLOCKS),
            free_inodes_count: get32(b, sbf::FREE_INODES),
            first_data_block: get32(b, sbf::FIRST_DATA_BLOCK),
            log_block_size: get32(b, sbf::LOG_BLOCK_SIZE),
            log_frag_size: get32(b, sbf::LOG_FRAG_SIZE),
            blocks_per_group: get32(b, sbf::BLOCKS_PER_GROUP),
            frags_per_group: get32(b, sbf::FRAGS_PER_GROUP),
            inodes_per_group: get32(b, sbf::INODES_PER_GROUP),
            mtime: get32(b, sbf::MTIME),
            wtime: get32(b, sbf::WTIME),
            mnt_count: get16(b, sbf::MNT_COUNT),
            max_mnt_count: get16(b, sbf::MAX_MNT_COUNT),
            state: get16(b, sbf::STATE),
            errors: get16(b, sbf::ERRORS),
            minor_rev_level: get16(b, sbf::MINOR_REV),
            lastcheck: get32(b, sbf::LASTCHECK),
            checkinterval: get32(b, sbf::CHECKINTERVAL),
            creator_os: get32(b, sbf::CREATOR_OS),
            rev_level,
            def_resuid: get16(b, sbf::DEF_RESUID),
            def_resgid: get16(b, sbf::DEF_RESGID),
            first_ino,
            inode_size,
            block_group_nr: get16(b, sbf::BLOCK_GROUP_NR),
            feature_compat: if rev_level == 0 {
                0
            } else {
                get32(b, sbf::FEATURE_COMPAT)
            },
            feature_incompat: if rev_level == 0 {
                0
            } else {
                get32(b, sbf::FEATURE_INCOMPAT)
            },
            feature_ro_compat: if rev_level == 0 {
                0
            } else {
                get32(b, sbf::FEATURE_RO_COMPAT)
            },
            uuid,
            volume_name,
            reserved_gdt_blocks: get16(b, sbf::RESERVED_GDT_BLOCKS),
            hash_seed,
            def_hash_version: b[sbf::DEF_HASH_VERSION],
            mkfs_time: get32(b, sbf::MKFS_TIME),
            min_extra_isize: get16(b, sbf::MIN_EXTRA_ISIZE),
            want_extra_isize: get16(b, sbf::WANT_EXTRA_ISIZE),
            flags: get32(b, sbf::FLAGS),
            desc_size: get16(b, sbf::DESC_SIZE),
            blocks_count_hi: get32(b, sbf::BLOCKS_COUNT_HI),
        };
        if r.log_block_size > 6 {
            return Err(FormatError::Malformed("block size above 64 KiB"));
        }
        let bs = r.block_size();
        if r.blocks_count == 0 || r.inodes_count == 0 {
            return Err(FormatError::Malformed("zero blocks or inodes"));
        }
        if r.blocks_per_group == 0 || r.blocks_per_group > 8 * bs {
            return Err(FormatError::Malformed("blocks per group"));
        }
        if r.inodes_per_group == 0 || r.inodes_per_group > 8 * bs {
            return Err(FormatError::Malformed("inodes per group"));
        }
        let isz = r.inode_size as u32;
        if isz < GOOD_OLD_INODE_SIZE as u32 || !isz.is_power_of_two() || isz > bs {
            return Err(FormatError::Malformed("inode size"));
        }
        if r.first_data_block != u32::from(bs == 1024) {
            return Err(FormatError::Malformed("first data block"));
        }
        if r.first_ino < GOOD_OLD_FIRST_INO || r.first_ino > r.inodes_count {
            return Err(FormatError::Malformed("first inode"));
        }
        if r.blocks_count <= r.first_data_block {
            return Err(FormatError::Malformed("block count"));
        }
        Ok(r)
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> u32 {
        1024 << self.log_block_size
    }

    /// Number of block groups.
    pub fn group_count(&self) -> u32 {
        (self.blocks_count - self.first_data_block).div_ceil(self.blocks_per_group)
    }

    /// Bytes [`SuperblockRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        SUPERBLOCK_SIZE
    }

    /// Writes the known fields into `p` (other bytes are kept).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut SuperblockPacket<T>) {
        let b = p.buffer.as_mut();
        put32(b, sbf::INODES_COUNT, self.inodes_count);
        put32(b, sbf::BLOCKS_COUNT, self.blocks_count);
        put32(b, sbf::R_BLOCKS_COUNT, self.r_blocks_count);
        put32(b, sbf::FREE_BLOCKS, self.free_blocks_count);
        put32(b, sbf::FREE_INODES, self.free_inodes_count);
        put32(b, sbf::FIRST_DATA_BLOCK, self.first_data_block);
        put32(b, sbf::LOG_BLOCK_SIZE, self.log_block_size);
        put32(b, sbf::LOG_FRAG_SIZE, self.log_frag_size);
        put32(b, sbf::BLOCKS_PER_GROUP, self.blocks_per_group);
        put32(b, sbf::FRAGS_PER_GROUP, self.frags_per_group);
        put32(b, sbf::INODES_PER_GROUP, self.inodes_per_group);
        put32(b, sbf::MTIME, self.mtime);
        put32(b, sbf::WTIME, self.wtime);
        put16(b, sbf::MNT_COUNT, self.mnt_count);
        put16(b, sbf::MAX_MNT_COUNT, self.max_mnt_count);
        put16(b, sbf::MAGIC, EXT2_MAGIC);
        put16(b, sbf::STATE, self.state);
        put16(b, sbf::ERRORS, self.errors);
        put16(b, sbf::MINOR_REV, self.minor_rev_level);
        put32(b, sbf::LASTCHECK, self.lastcheck);
        put32(b, sbf::CHECKINTERVAL, self.checkinterval);
        put32(b, sbf::CREATOR_OS, self.creator_os);
        put32(b, sbf::REV_LEVEL, self.rev_level);
        put16(b, sbf::DEF_RESUID, self.def_resuid);
        put16(b, sbf::DEF_RESGID, self.def_resgid);
        if self.rev_level >= 1 {
            put32(b, sbf::FIRST_INO, self.first_ino);
            put16(b, sbf::INODE_SIZE, self.inode_size);
            put16(b, sbf::BLOCK_GROUP_NR, self.block_group_nr);
            put32(b, sbf::FEATURE_COMPAT, self.feature_compat);
            put32(b, sbf::FEATURE_INCOMPAT, self.feature_incompat);
            put32(b, sbf::FEATURE_RO_COMPAT, self.feature_ro_compat);
            b[sbf::UUID].copy_from_slice(&self.uuid);
            b[sbf::VOLUME_NAME].copy_from_slice(&self.volume_name);
            put16(b, sbf::RESERVED_GDT_BLOCKS, self.reserved_gdt_blocks);
            b[sbf::HASH_SEED].copy_from_slice(&self.hash_seed);
            b[sbf::DEF_HASH_VERSION] = self.def_hash_version;
            put32(b, sbf::MKFS_TIME, self.mkfs_time);
            put16(b, sbf::MIN_EXTRA_ISIZE, self.min_extra_isize);
            put16(b, sbf::WANT_EXTRA_ISIZE, self.want_extra_isize);
            put32(b, sbf::FLAGS, self.flags);
        }
    }
}

// ----- group descriptor -------------------------------------------------------

mod gdf {
    use core::ops::Range;
    type F = Range<usize>;
    pub const BLOCK_BITMAP: F = 0..4;
    pub const INODE_BITMAP: F = 4..8;
    pub const INODE_TABLE: F = 8..12;
    pub const FREE_BLOCKS: F = 12..14;
    pub const FREE_INODES: F = 14..16;
    pub const USED_DIRS: F = 16..18;
    pub const FLAGS: F = 18..20;
}

/// A view of one 32-byte group descriptor.
#[derive(Debug, Clone)]
pub struct GroupDescPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GroupDescPacket<T> {
    /// Wraps `buffer`, checking its length.
    pub fn new_checked(buffer: T) -> Result<Self, FormatError> {
        if buffer.as_ref().len() < GROUP_DESC_SIZE {
            return Err(FormatError::Truncated);
        }
        Ok(GroupDescPacket { buffer })
    }
}

/// A group descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GroupDescRepr {
    pub block_bitmap: u32,
    pub inode_bitmap: u32,
    pub inode_table: u32,
    pub free_blocks_count: u16,
    pub free_inodes_count: u16,
    pub used_dirs_count: u16,
    pub flags: u16,
}

impl GroupDescRepr {
    /// Parses a descriptor (locations are checked by the file system,
    /// which knows the geometry).
    pub fn parse<T: AsRef<[u8]>>(p: &GroupDescPacket<T>) -> Result<GroupDescRepr, FormatError> {
        let b = p.buffer.as_ref();
        Ok(GroupDescRepr {
            block_bitmap: get32(b, gdf::BLOCK_BITMAP),
            inode_bitmap: get32(b, gdf::INODE_BITMAP),
            inode_table: get32(b, gdf::INODE_TABLE),
            free_blocks_count: get16(b, gdf::FREE_BLOCKS),
            free_inodes_count: get16(b, gdf::FREE_INODES),
            used_dirs_count: get16(b, gdf::USED_DIRS),
            flags: get16(b, gdf::FLAGS),
        })
    }

    /// Bytes [`GroupDescRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        GROUP_DESC_SIZE
    }

    /// Writes the descriptor (the reserved tail is kept).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut GroupDescPacket<T>) {
        let b = p.buffer.as_mut();
        put32(b, gdf::BLOCK_BITMAP, self.block_bitmap);
        put32(b, gdf::INODE_BITMAP, self.inode_bitmap);
        put32(b, gdf::INODE_TABLE, self.inode_table);
        put16(b, gdf::FREE_BLOCKS, self.free_blocks_count);
        put16(b, gdf::FREE_INODES, self.free_inodes_count);
        put16(b, gdf::USED_DIRS, self.used_dirs_count);
        put16(b, gdf::FLAGS, self.flags);
    }
}

// ----- inode --------------------------------------------------------------------

mod inf {
    use core::ops::Range;
    type F = Range<usize>;
    pub const MODE: F = 0..2;
    pub const UID: F = 2..4;
    pub const SIZE: F = 4..8;
    pub const ATIME: F = 8..12;
    pub const CTIME: F = 12..16;
    pub const MTIME: F = 16..20;
    pub const DTIME: F = 20..24;
    pub const GID: F = 24..26;
    pub const LINKS: F = 26..28;
    pub const BLOCKS: F = 28..32;
    pub const FLAGS: F = 32..36;
    pub const BLOCK: usize = 40;
    pub const GENERATION: F = 100..104;
    pub const FILE_ACL: F = 104..108;
    pub const SIZE_HIGH: F = 108..112;
    pub const BLOCKS_HI: F = 116..118;
    pub const UID_HIGH: F = 120..122;
    pub const GID_HIGH: F = 122..124;
    // The extended part (inode size above 128).
    pub const EXTRA_ISIZE: F = 128..130;
    pub const CTIME_EXTRA: F = 132..136;
    pub const MTIME_EXTRA: F = 136..140;
    pub const ATIME_EXTRA: F = 140..144;
    pub const CRTIME: F = 144..148;
    pub const CRTIME_EXTRA: F = 148..152;
    /// `i_extra_isize` covering every field above.
    pub const EXTRA_END: usize = 152;
}

/// The `i_extra_isize` this driver gives new large inodes (covers the
/// nanosecond timestamps and the creation time, as mke2fs does).
pub const NEW_EXTRA_ISIZE: u16 = 32;

/// A view of one on-disk inode.
#[derive(Debug, Clone)]
pub struct InodePacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> InodePacket<T> {
    /// Wraps `buffer` (the inode's slot, `s_inode_size` bytes), checking
    /// it holds at least a revision 0 inode.
    pub fn new_checked(buffer: T) -> Result<Self, FormatError> {
        if buffer.as_ref().len() < GOOD_OLD_INODE_SIZE {
            return Err(FormatError::Truncated);
        }
        Ok(InodePacket { buffer })
    }

    /// Whether the slot holds the nanosecond fields: it is large enough
    /// and `i_extra_isize` says they are in use.
    fn has_extra_times(&self) -> bool {
        let b = self.buffer.as_ref();
        b.len() >= inf::EXTRA_END
            && (get16(b, inf::EXTRA_ISIZE) as usize + GOOD_OLD_INODE_SIZE) >= inf::EXTRA_END
    }
}

/// A timestamp: seconds since the epoch and nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Time {
    pub sec: i64,
    pub nsec: u32,
}

impl Time {
    /// Splits into the 32-bit seconds field and the `*_extra` field (two
    /// epoch bits, then nanoseconds shifted left by two).
    fn encode(self) -> (u32, u32) {
        let base = self.sec as i32;
        let epoch = ((self.sec - base as i64) >> 32) as u32 & 3;
        (base as u32, epoch | (self.nsec.min(999_999_999) << 2))
    }

    fn decode(base: u32, extra: Option<u32>) -> Time {
        let mut sec = base as i32 as i64;
        let mut nsec = 0;
        if let Some(x) = extra {
            sec += ((x & 3) as i64) << 32;
            nsec = (x >> 2).min(999_999_999);
        }
        Time { sec, nsec }
    }
}

/// The inode fields this driver uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InodeRepr {
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    /// For regular files, `i_size | i_size_high << 32`; for others
    /// `i_size` only (revision 0 keeps `i_dir_acl` in the high word).
    pub size: u64,
    pub atime: Time,
    pub ctime: Time,
    pub mtime: Time,
    pub crtime: Time,
    pub dtime: u32,
    pub links_count: u16,
    /// 512-byte sectors (or blocks with `HUGE_FILE`), including
    /// indirect blocks and the extended-attribute block.
    pub blocks: u64,
    pub flags: u32,
    pub block: [u32; N_BLOCKS],
    pub generation: u32,
    pub file_acl: u32,
    /// Raw high word of the size for non-regular files, kept as found.
    pub size_high_raw: u32,
    /// `i_extra_isize` (0 for 128-byte inodes).
    pub extra_isize: u16,
}

/// `S_IFMT` bits of `i_mode`.
pub const S_IFMT: u16 = 0o170000;
/// Regular file.
pub const S_IFREG: u16 = 0o100000;
/// Directory.
pub const S_IFDIR: u16 = 0o040000;
/// Symbolic link.
pub const S_IFLNK: u16 = 0o120000;

impl InodeRepr {
    /// Parses an inode. Nothing in the fixed part can be malformed by
    /// itself; the file system checks block pointers when it follows them.
    pub fn parse<T: AsRef<[u8]>>(p: &InodePacket<T>) -> Result<InodeRepr, FormatError> {
        let b = p.buffer.as_ref();
        let extra = p.has_extra_times();
        let ex = |f: Range<usize>| if extra { Some(get32(b, f)) } else { None };
        let mode = get16(b, inf::MODE);
        let size_lo = get32(b, inf::SIZE) as u64;
        let size_high_raw = get32(b, inf::SIZE_HIGH);
        let size = if mode & S_IFMT == S_IFREG {
            size_lo | (size_high_raw as u64) << 32
        } else {
            size_lo
        };
        let mut block = [0u32; N_BLOCKS];
        for (i, v) in block.iter_mut().enumerate() {
            let o = inf::BLOCK + 4 * i;
            *v = get32(b, o..o + 4);
        }
        let extra_isize = if b.len() > GOOD_OLD_INODE_SIZE + 1 {
            get16(b, inf::EXTRA_ISIZE)
        } else {
            0
        };
        Ok(InodeRepr {
            mode,
            uid: get16(b, inf::UID) as u32 | (get16(b, inf::UID_HIGH) as u32) << 16,
            gid: get16(b, inf::GID) as u32 | (get16(b, inf::GID_HIGH) as u32) << 16,
            size,
            atime: Time::decode(get32(b, inf::ATIME), ex(inf::ATIME_EXTRA)),
            ctime: Time::decode(get32(b, inf::CTIME), ex(inf::CTIME_EXTRA)),
            mtime: Time::decode(get32(b, inf::MTIME), ex(inf::MTIME_EXTRA)),
            crtime: if extra {
                Time::decode(get32(b, inf::CRTIME), ex(inf::CRTIME_EXTRA))
            } else {
                Time::default()
            },
            dtime: get32(b, inf::DTIME),
            links_count: get16(b, inf::LINKS),
            blocks: get32(b, inf::BLOCKS) as u64 | (get16(b, inf::BLOCKS_HI) as u64) << 32,
            flags: get32(b, inf::FLAGS),
            block,
            generation: get32(b, inf::GENERATION),
            file_acl: get32(b, inf::FILE_ACL),
            size_high_raw,
            extra_isize,
        })
    }

    /// Bytes [`InodeRepr::emit`] may write: 128, or more when the inode
    /// has an extended part.
    pub fn buffer_len(&self) -> usize {
        if self.extra_isize > 0 {
            GOOD_OLD_INODE_SIZE + self.extra_isize as usize
        } else {
            GOOD_OLD_INODE_SIZE
        }
    }

    /// Writes the inode into its slot (bytes it does not know are kept).
    /// The nanosecond fields are written when the slot and
    /// `extra_isize` have room for them.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut InodePacket<T>) {
        let b = p.buffer.as_mut();
        put16(b, inf::MODE, self.mode);
        put16(b, inf::UID, self.uid as u16);
        put16(b, inf::UID_HIGH, (self.uid >> 16) as u16);
        put16(b, inf::GID, self.gid as u16);
        put16(b, inf::GID_HIGH, (self.gid >> 16) as u16);
        put32(b, inf::SIZE, self.size as u32);
        let high = if self.mode & S_IFMT == S_IFREG {
            (self.size >> 32) as u32
        } else {
            self.size_high_raw
        };
        put32(b, inf::SIZE_HIGH, high);
        let (a, ax) = self.atime.encode();
        let (c, cx) = self.ctime.encode();
        let (m, mx) = self.mtime.encode();
        put32(b, inf::ATIME, a);
        put32(b, inf::CTIME, c);
        put32(b, inf::MTIME, m);
        put32(b, inf::DTIME, self.dtime);
        put16(b, inf::LINKS, self.links_count);
        put32(b, inf::BLOCKS, self.blocks as u32);
        put16(b, inf::BLOCKS_HI, (self.blocks >> 32) as u16);
        put32(b, inf::FLAGS, self.flags);
        for (i, v) in self.block.iter().enumerate() {
            let o = inf::BLOCK + 4 * i;
            put32(b, o..o + 4, *v);
        }
        put32(b, inf::GENERATION, self.generation);
        put32(b, inf::FILE_ACL, self.file_acl);
        if b.len() >= GOOD_OLD_INODE_SIZE + 2 {
            put16(b, inf::EXTRA_ISIZE, self.extra_isize);
        }
        if b.len() >= inf::EXTRA_END
            && GOOD_OLD_INODE_SIZE + self.extra_isize as usize >= inf::EXTRA_END
        {
            let (cr, crx) = self.crtime.encode();
            put32(b, inf::CTIME_EXTRA, cx);
            put32(b, inf::MTIME_EXTRA, mx);
            put32(b, inf::ATIME_EXTRA, ax);
            put32(b, inf::CRTIME, cr);
            put32(b, inf::CRTIME_EXTRA, crx);
        }
    }

    /// The file-type bits.
    pub fn file_type(&self) -> u16 {
        self.mode & S_IFMT
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }

    /// Whether this is a regular file.
    pub fn is_reg(&self) -> bool {
        self.file_type() == S_IFREG
    }

    /// Whether this is a symlink whose target lives in `i_block` (Linux's
    /// rule: no data blocks besides an extended-attribute block).
    pub fn is_fast_symlink(&self, block_size: u32) -> bool {
        let ea = if self.file_acl != 0 {
            block_size as u64 / 512
        } else {
            0
        };
        self.file_type() == S_IFLNK && self.blocks.saturating_sub(ea) == 0
    }

    /// The `i_block` array as bytes (a fast symlink's target).
    pub fn block_bytes(&self) -> [u8; 4 * N_BLOCKS] {
        let mut out = [0u8; 4 * N_BLOCKS];
        for (i, v) in self.block.iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Sets `i_block` from bytes (at most 60).
    pub fn set_block_bytes(&mut self, bytes: &[u8]) {
        let mut raw = [0u8; 4 * N_BLOCKS];
        let n = bytes.len().min(raw.len());
        raw[..n].copy_from_slice(&bytes[..n]);
        for (i, v) in self.block.iter_mut().enumerate() {
            let mut a = [0u8; 4];
            a.copy_from_slice(&raw[4 * i..4 * i + 4]);
            *v = u32::from_le_bytes(a);
        }
    }
}

// ----- directory entries --------------------------------------------------------

mod def {
    use core::ops::Range;
    type F = Range<usize>;
    pub const INODE: F = 0..4;
    pub const REC_LEN: F = 4..6;
    pub const NAME_LEN: usize = 6;
    pub const FILE_TYPE: usize = 7;
    pub const NAME: usize = 8;
}

/// Size of a directory entry header.
pub const DIRENT_HEADER: usize = 8;

/// The space an entry with a name of `name_len` bytes needs.
pub const fn dirent_len(name_len: usize) -> usize {
    (DIRENT_HEADER + name_len + 3) & !3
}

/// A view of one directory entry at the start of `buffer` (which extends
/// to the end of the directory block).
#[derive(Debug, Clone)]
pub struct DirEntryPacket<T: AsRef<[u8]>> {
    buffer: T,
    has_filetype: bool,
}

impl<T: AsRef<[u8]>> DirEntryPacket<T> {
    /// Wraps `buffer`, checking that the header fits, that `rec_len` is a
    /// multiple of 4, at least the header, within the buffer, and that
    /// the name fits in the record. Without the `filetype` feature the
    /// name length is 16 bits wide.
    pub fn new_checked(buffer: T, has_filetype: bool) -> Result<Self, FormatError> {
        let b = buffer.as_ref();
        if b.len() < DIRENT_HEADER {
            return Err(FormatError::Truncated);
        }
        let p = DirEntryPacket {
            buffer,
            has_filetype,
        };
        let rec = p.rec_len() as usize;
        if rec < DIRENT_HEADER || !rec.is_multiple_of(4) {
            return Err(FormatError::Malformed("directory entry rec_len"));
        }
        if rec > p.buffer.as_ref().len() {
            return Err(FormatError::Truncated);
        }
        if DIRENT_HEADER + p.name_len() > rec {
            return Err(FormatError::Malformed("directory entry name_len"));
        }
        Ok(p)
    }

    pub fn inode(&self) -> u32 {
        get32(self.buffer.as_ref(), def::INODE)
    }
    pub fn rec_len(&self) -> u16 {
        get16(self.buffer.as_ref(), def::REC_LEN)
    }
    pub fn name_len(&self) -> usize {
        let b = self.buffer.as_ref();
        if self.has_filetype {
            b[def::NAME_LEN] as usize
        } else {
            get16(b, def::NAME_LEN..def::NAME_LEN + 2) as usize
        }
    }
    pub fn file_type(&self) -> u8 {
        if self.has_filetype {
            self.buffer.as_ref()[def::FILE_TYPE]
        } else {
            ftype::UNKNOWN
        }
    }
    pub fn name(&self) -> &[u8] {
        &self.buffer.as_ref()[def::NAME..def::NAME + self.name_len()]
    }
}

/// A directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirEntryRepr<'a> {
    pub inode: u32,
    pub rec_len: u16,
    pub file_type: u8,
    pub name: &'a [u8],
}

impl<'a> DirEntryRepr<'a> {
    /// Parses the entry a checked packet views.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        p: &'a DirEntryPacket<&'a T>,
    ) -> Result<DirEntryRepr<'a>, FormatError> {
        let b: &'a [u8] = p.buffer.as_ref();
        let n = p.name_len();
        Ok(DirEntryRepr {
            inode: p.inode(),
            rec_len: p.rec_len(),
            file_type: p.file_type(),
            name: &b[def::NAME..def::NAME + n],
        })
    }

    /// Bytes the entry's header and name take (`rec_len` may be more).
    pub fn buffer_len(&self) -> usize {
        dirent_len(self.name.len())
    }

    /// Writes the entry at the start of `buf`; `Truncated` if `buf` is
    /// shorter than [`DirEntryRepr::buffer_len`] or `rec_len` is too small.
    pub fn emit(&self, buf: &mut [u8], has_filetype: bool) -> Result<(), FormatError> {
        let need = self.buffer_len();
        if buf.len() < need || (self.rec_len as usize) < need || self.name.len() > 255 {
            return Err(FormatError::Truncated);
        }
        put32(buf, def::INODE, self.inode);
        put16(buf, def::REC_LEN, self.rec_len);
        if has_filetype {
            buf[def::NAME_LEN] = self.name.len() as u8;
            buf[def::FILE_TYPE] = self.file_type;
        } else {
            put16(
                buf,
                def::NAME_LEN..def::NAME_LEN + 2,
                self.name.len() as u16,
            );
        }
        buf[def::NAME..def::NAME + self.name.len()].copy_from_slice(self.name);
        buf[def::NAME + self.name.len()..need].fill(0);
        Ok(())
    }
}

/// Sets only the `rec_len` of the entry at the start of `buf`.
pub fn set_rec_len(buf: &mut [u8], rec_len: u16) -> Result<(), FormatError> {
    if buf.len() < DIRENT_HEADER {
        return Err(FormatError::Truncated);
    }
    put16(buf, def::REC_LEN, rec_len);
    Ok(())
}

/// Sets only the inode number of the entry at the start of `buf`.
pub fn set_dirent_inode(
    buf: &mut [u8],
    inode: u32,
    file_type: Option<u8>,
) -> Result<(), FormatError> {
    if buf.len() < DIRENT_HEADER {
        return Err(FormatError::Truncated);
    }
    put32(buf, def::INODE, inode);
    if let Some(t) = file_type {
        buf[def::FILE_TYPE] = t;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_sb() -> SuperblockRepr {
        SuperblockRepr {
            inodes_count: 256,
            blocks_count: 1024,
            free_blocks_count: 900,
            free_inodes_count: 245,
            first_data_block: 1,
            blocks_per_group: 8192,
            frags_per_group: 8192,
            inodes_per_group: 256,
            state: state::VALID,
            rev_level: 1,
            first_ino: 11,
            inode_size: 256,
            feature_incompat: feature::INCOMPAT_FILETYPE,
            uuid: [5; 16],
            ..Default::default()
        }
    }

    #[test]
    fn superblock_round_trip() {
        let r = sample_sb();
        let mut buf = [0xAAu8; 1024];
        r.emit(&mut SuperblockPacket::new_checked(&mut buf[..]).unwrap());
        assert_eq!(&buf[56..58], &[0x53, 0xEF]);
        // Unknown bytes are kept.
        assert_eq!(buf[1000], 0xAA);
        buf[200..204].fill(0); // s_algorithm_usage_bitmap, not ours
        let p = SuperblockPacket::new_checked(&buf[..]).unwrap();
        let mut back = SuperblockRepr::parse(&p).unwrap();
        back.hash_seed = r.hash_seed;
        back.def_hash_version = 0;
        back.mkfs_time = 0;
        back.min_extra_isize = 0;
        back.want_extra_isize = 0;
        back.reserved_gdt_blocks = 0;
        back.volume_name = r.volume_name;
        back.lastcheck = 0;
        back.checkinterval = 0;
        back.creator_os = 0;
        back.mtime = 0;
        back.wtime = 0;
        back.errors = 0;
        back.def_resuid = 0;
        back.def_resgid = 0;
        back.r_blocks_count = 0;
        back.log_frag_size = 0;
        back.max_mnt_count = 0;
        back.mnt_count = 0;
        back.minor_rev_level = 0;
        back.block_group_nr = 0;
        assert_eq!(back.inodes_count, 256);
        assert_eq!(back.block_size(), 1024);
        assert_eq!(back.group_count(), 1);
        assert_eq!(back.feature_incompat, feature::INCOMPAT_FILETYPE);
        // s_flags (directory hash signedness) at byte 0x160.
        let mut r = sample_sb();
        r.flags = sflags::UNSIGNED_HASH;
        r.emit(&mut SuperblockPacket::new_checked(&mut buf[..]).unwrap());
        assert_eq!(&buf[0x160..0x164], &[2, 0, 0, 0]);
        let p = SuperblockPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(
            SuperblockRepr::parse(&p).unwrap().flags,
            sflags::UNSIGNED_HASH
        );
    }

    #[test]
    fn superblock_bad_length_and_values() {
        assert_eq!(
            SuperblockPacket::new_checked(&[0u8; 1023][..]).err(),
            Some(FormatError::Truncated)
        );
        let p = SuperblockPacket::new_checked(&[0u8; 1024][..]).unwrap();
        assert_eq!(SuperblockRepr::parse(&p), Err(FormatError::BadMagic));
        let mut r = sample_sb();
        r.log_block_size = 30;
        let mut buf = [0u8; 1024];
        r.emit(&mut SuperblockPacket::new_checked(&mut buf[..]).unwrap());
        let p = SuperblockPacket::new_checked(&buf[..]).unwrap();
        assert!(matches!(
            SuperblockRepr::parse(&p),
            Err(FormatError::Malformed(_))
        ));
        let mut r = sample_sb();
        r.blocks_per_group = 0;
        r.emit(&mut SuperblockPacket::new_checked(&mut buf[..]).unwrap());
        let p = SuperblockPacket::new_checked(&buf[..]).unwrap();
        assert!(SuperblockRepr::parse(&p).is_err());
        let mut r = sample_sb();
        r.inode_size = 100;
        r.emit(&mut SuperblockPacket::new_checked(&mut buf[..]).unwrap());
        let p = SuperblockPacket::new_checked(&buf[..]).unwrap();
        assert!(SuperblockRepr::parse(&p).is_err());
    }

    #[test]
    fn revision_0_defaults() {
        let mut r = sample_sb();
        r.rev_level = 0;
        let mut buf = [0u8; 1024];
        r.emit(&mut SuperblockPacket::new_checked(&mut buf[..]).unwrap());
        let back =
            SuperblockRepr::parse(&SuperblockPacket::new_checked(&buf[..]).unwrap()).unwrap();
        assert_eq!((back.first_ino, back.inode_size), (11, 128));
        assert_eq!(back.feature_incompat, 0);
    }

    #[test]
    fn group_desc_round_trip_and_bad_length() {
        let g = GroupDescRepr {
            block_bitmap: 3,
            inode_bitmap: 4,
            inode_table: 5,
            free_blocks_count: 100,
            free_inodes_count: 50,
            used_dirs_count: 2,
            flags: 0,
        };
        let mut buf = [0u8; 32];
        g.emit(&mut GroupDescPacket::new_checked(&mut buf[..]).unwrap());
        assert_eq!(buf[8], 5);
        let back = GroupDescRepr::parse(&GroupDescPacket::new_checked(&buf[..]).unwrap()).unwrap();
        assert_eq!(back, g);
        assert_eq!(g.buffer_len(), 32);
        assert!(GroupDescPacket::new_checked(&[0u8; 31][..]).is_err());
    }

    #[test]
    fn inode_round_trip_with_nanoseconds() {
        let mut i = InodeRepr {
            mode: S_IFREG | 0o644,
            uid: 70000,
            gid: 5,
            size: 5 << 30,
            atime: Time {
                sec: 1_700_000_000,
                nsec: 123,
            },
            mtime: Time {
                sec: 1_700_000_001,
                nsec: 999_999_999,
            },
            ctime: Time { sec: -5, nsec: 0 },
            links_count: 1,
            blocks: 16,
            extra_isize: NEW_EXTRA_ISIZE,
            ..Default::default()
        };
        i.block[0] = 77;
        i.block[14] = 99;
        let mut buf = [0u8; 256];
        i.emit(&mut InodePacket::new_checked(&mut buf[..]).unwrap());
        assert_eq!(&buf[4..8], &0x4000_0000u32.to_le_bytes());
        assert_eq!(&buf[108..112], &1u32.to_le_bytes());
        let back = InodeRepr::parse(&InodePacket::new_checked(&buf[..]).unwrap()).unwrap();
        // The raw high word is reported as found.
        assert_eq!(
            back,
            InodeRepr {
                size_high_raw: 1,
                ..i
            }
        );
        // A 128-byte inode has no nanoseconds.
        let mut small = [0u8; 128];
        let mut j = i;
        j.extra_isize = 0;
        j.emit(&mut InodePacket::new_checked(&mut small[..]).unwrap());
        let back = InodeRepr::parse(&InodePacket::new_checked(&small[..]).unwrap()).unwrap();
        assert_eq!(
            back.mtime,
            Time {
                sec: 1_700_000_001,
                nsec: 0
            }
        );
        assert!(InodePacket::new_checked(&[0u8; 127][..]).is_err());
    }

    #[test]
    fn fast_symlink_bytes() {
        let mut i = InodeRepr {
            mode: S_IFLNK | 0o777,
            ..Default::default()
        };
        i.set_block_bytes(b"target/path");
        assert_eq!(&i.block_bytes()[..11], b"target/path");
        assert!(i.is_fast_symlink(1024));
        i.blocks = 2;
        assert!(!i.is_fast_symlink(1024));
    }

    #[test]
    fn dirent_round_trip_and_bad_input() {
        let mut buf = [0u8; 64];
        let e = DirEntryRepr {
            inode: 12,
            rec_len: 64,
            file_type: ftype::REG,
            name: b"hello",
        };
        assert_eq!(e.buffer_len(), 16);
        e.emit(&mut buf, true).unwrap();
        let p = DirEntryPacket::new_checked(&buf[..], true).unwrap();
        assert_eq!(DirEntryRepr::parse(&p).unwrap(), e);
        // Without filetype, name_len is 16 bits and the type unknown.
        e.emit(&mut buf, false).unwrap();
        let p = DirEntryPacket::new_checked(&buf[..], false).unwrap();
        assert_eq!(p.name(), b"hello");
        assert_eq!(p.file_type(), ftype::UNKNOWN);
        // Bad lengths.
        assert!(DirEntryPacket::new_checked(&buf[..7], true).is_err());
        assert!(DirEntryPacket::new_checked(&buf[..32], true).is_err());
        let mut bad = buf;
        bad[4] = 0;
        bad[5] = 0;
        assert!(DirEntryPacket::new_checked(&bad[..], true).is_err());
        let mut bad = buf;
        bad[4] = 10;
        bad[5] = 0;
        assert!(DirEntryPacket::new_checked(&bad[..], true).is_err());
        let mut bad = buf;
        bad[4] = 12;
        bad[5] = 0;
        bad[6] = 200;
        assert!(DirEntryPacket::new_checked(&bad[..], true).is_err());
        assert!(e.emit(&mut [0u8; 10], true).is_err());
    }
}
