//! The FAT on-disk structures, in smoltcp's style: a zero-copy view
//! (`*Packet<T: AsRef<[u8]>>`) whose `new_checked` verifies the length so
//! no accessor can panic, with a private `field` module of byte ranges,
//! and a `*Repr` with `parse`, `emit` and `buffer_len`.
//!
//! Source: Microsoft's "FAT: General Overview of On-Disk Format" (the FAT
//! specification, version 1.03), which defines the boot sector and BIOS
//! parameter block (BPB), the FSInfo sector, the 32-byte directory entry
//! and the long-name (LFN) entry, and the rule that the *count of data
//! clusters* alone decides between FAT12, FAT16 and FAT32. All fields are
//! little-endian.
//!
//! [`Geometry`] is what a parsed boot sector means: where the FATs, the
//! fixed root directory (FAT12/16) and the data area are, in sectors. It
//! is built only from a boot sector whose every field passed its check,
//! so the rest of the driver does arithmetic on it without overflow
//! worries.

use core::ops::Range;

/// Size of one directory entry (short or long).
pub const DIR_ENTRY_SIZE: usize = 32;
/// First byte of a deleted directory entry.
pub const DELETED: u8 = 0xE5;
/// First byte 0x05 stands for a name starting with 0xE5 (spec §6.1).
pub const KANJI_E5: u8 = 0x05;
/// Largest number of entries in a directory (spec §6: 65,536).
pub const MAX_DIR_ENTRIES: u32 = 65536;
/// Longest long name, in UTF-16 code units.
pub const MAX_LFN_UNITS: usize = 255;
/// Largest file size.
pub const MAX_FILE_SIZE: u64 = 0xFFFF_FFFF;

/// The FSInfo signatures (spec §5).
pub const FSINFO_LEAD_SIG: u32 = 0x4161_5252;
pub const FSINFO_STRUC_SIG: u32 = 0x6141_7272;
pub const FSINFO_TRAIL_SIG: u32 = 0xAA55_0000;
/// "Unknown" in FSInfo's free count and next-free hint.
pub const FSINFO_UNKNOWN: u32 = 0xFFFF_FFFF;

/// Directory-entry attribute bits (spec §6, `DIR_Attr`).
pub mod attr {
    pub const READ_ONLY: u8 = 0x01;
    pub const HIDDEN: u8 = 0x02;
    pub const SYSTEM: u8 = 0x04;
    pub const VOLUME_ID: u8 = 0x08;
    pub const DIRECTORY: u8 = 0x10;
    pub const ARCHIVE: u8 = 0x20;
    /// The combination that marks a long-name entry.
    pub const LONG_NAME: u8 = READ_ONLY | HIDDEN | SYSTEM | VOLUME_ID;
}

/// `DIR_NTRes` bits Windows NT uses to show an 8.3 name in lower case
/// without a long name.
pub mod ntres {
    pub const LOWER_BASE: u8 = 0x08;
    pub const LOWER_EXT: u8 = 0x10;
}

/// The three FAT widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

impl FatType {
    /// The type a count of data clusters implies (spec §3.5).
    pub fn for_clusters(clusters: u32) -> FatType {
        if clusters < 4085 {
            FatType::Fat12
        } else if clusters < 65525 {
            FatType::Fat16
        } else {
            FatType::Fat32
        }
    }

    /// The smallest value meaning end of chain.
    pub fn eoc_min(self) -> u32 {
        match self {
            FatType::Fat12 => 0xFF8,
            FatType::Fat16 => 0xFFF8,
            FatType::Fat32 => 0x0FFF_FFF8,
        }
    }

    /// The value meaning "bad cluster".
    pub fn bad(self) -> u32 {
        self.eoc_min() - 1
    }

    /// The end-of-chain value we write.
    pub fn eoc(self) -> u32 {
        match self {
            FatType::Fat12 => 0xFFF,
            FatType::Fat16 => 0xFFFF,
            FatType::Fat32 => 0x0FFF_FFFF,
        }
    }

    /// The name in `BS_FilSysType`.
    pub fn label(self) -> &'static [u8; 8] {
        match self {
            FatType::Fat12 => b"FAT12   ",
            FatType::Fat16 => b"FAT16   ",
            FatType::Fat32 => b"FAT32   ",
        }
    }

    /// The "cleanly unmounted" bit of FAT[1] (spec §4.2), none for FAT12.
    pub fn clean_bit(self) -> u32 {
        match self {
            FatType::Fat12 => 0,
            FatType::Fat16 => 0x8000,
            FatType::Fat32 => 0x0800_0000,
        }
    }
}

/// Why a structure was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The buffer is shorter than the structure.
    Truncated,
    /// A field has a value the specification does not allow; the string
    /// names the field.
    Bad(&'static str),
}

impl From<FormatError> for hyper::Errno {
    fn from(_: FormatError) -> hyper::Errno {
        hyper::Errno::EUCLEAN
    }
}

fn le16(b: &[u8], r: Range<usize>) -> u16 {
    u16::from_le_bytes([b[r.start], b[r.start + 1]])
}

fn le32(b: &[u8], r: Range<usize>) -> u32 {
    u32::from_le_bytes([b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3]])
}

fn put16(b: &mut [u8], r: Range<usize>, v: u16) {
    b[r].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], r: Range<usize>, v: u32) {
    b[r].copy_from_slice(&v.to_le_bytes());
}

// ---------------------------------------------------------------- boot sector

mod bs {
    use core::ops::Range;
    pub const JMP: Range<usize> = 0..3;
    pub const OEM: Range<usize> = 3..11;
    pub const BYTES_PER_SEC: Range<usize> = 11..13;
    pub const SEC_PER_CLUS: usize = 13;
    pub const RSVD_SEC: Range<usize> = 14..16;
    pub const NUM_FATS: usize = 16;
    pub const ROOT_ENT: Range<usize> = 17..19;
    pub const TOT_SEC16: Range<usize> = 19..21;
    pub const MEDIA: usize = 21;
    pub const FAT_SZ16: Range<usize> = 22..24;
    pub const SEC_PER_TRK: Range<usize> = 24..26;
    pub const NUM_HEADS: Range<usize> = 26..28;
    pub const HIDD_SEC: Range<usize> = 28..32;
    pub const TOT_SEC32: Range<usize> = 32..36;
    // FAT32 extension.
    pub const FAT_SZ32: Range<usize> = 36..40;
    pub const EXT_FLAGS: Range<usize> = 40..42;
    pub const FS_VER: Range<usize> = 42..44;
    pub const ROOT_CLUS: Range<usize> = 44..48;
    pub const FS_INFO: Range<usize> = 48..50;
    pub const BK_BOOT: Range<usize> = 50..52;
    /// Offset of the drive number in the FAT12/16 and FAT32 extensions;
    /// boot signature, volume id, label and type follow at +2, +3, +7,
    /// +18.
    pub const EXT16: usize = 36;
    pub const EXT32: usize = 64;
    pub const SIG: Range<usize> = 510..512;
}

/// A view of a boot sector (at least 512 bytes).
#[derive(Debug, Clone)]
pub struct BootSectorPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> BootSectorPacket<T> {
    pub fn new_checked(buf: T) -> Result<Self, FormatError> {
        if buf.as_ref().len() < 512 {
            return Err(FormatError::Truncated);
        }
        Ok(BootSectorPacket { buf })
    }
    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    pub fn jump(&self) -> [u8; 3] {
        let b = self.b();
        [b[0], b[1], b[2]]
    }
    pub fn bytes_per_sector(&self) -> u16 {
        le16(self.b(), bs::BYTES_PER_SEC)
    }
    pub fn sectors_per_cluster(&self) -> u8 {
        self.b()[bs::SEC_PER_CLUS]
    }
    pub fn reserved_sectors(&self) -> u16 {
        le16(self.b(), bs::RSVD_SEC)
    }
    pub fn num_fats(&self) -> u8 {
        self.b()[bs::NUM_FATS]
    }
    pub fn root_entries(&self) -> u16 {
        le16(self.b(), bs::ROOT_ENT)
    }
    pub fn total_sectors16(&self) -> u16 {
        le16(self.b(), bs::TOT_SEC16)
    }
    pub fn media(&self) -> u8 {
        self.b()[bs::MEDIA]
    }
    pub fn fat_size16(&self) -> u16 {
        le16(self.b(), bs::FAT_SZ16)
    }
    pub fn total_sectors32(&self) -> u32 {
        le32(self.b(), bs::TOT_SEC32)
    }
    pub fn hidden_sectors(&self) -> u32 {
        le32(self.b(), bs::HIDD_SEC)
    }
    pub fn fat_size32(&self) -> u32 {
        le32(self.b(), bs::FAT_SZ32)
    }
    pub fn ext_flags(&self) -> u16 {
        le16(self.b(), bs::EXT_FLAGS)
    }
    pub fn fs_version(&self) -> u16 {
        le16(self.b(), bs::FS_VER)
    }
    pub fn root_cluster(&self) -> u32 {
        le32(self.b(), bs::ROOT_CLUS)
    }
    pub fn fsinfo_sector(&self) -> u16 {
        le16(self.b(), bs::FS_INFO)
    }
    pub fn backup_boot_sector(&self) -> u16 {
        le16(self.b(), bs::BK_BOOT)
    }
    pub fn signature(&self) -> u16 {
        le16(self.b(), bs::SIG)
    }
    /// The volume id and label of the extension at `ext` (36 or 64),
    /// when its boot signature (0x29) says they are there.
    fn volume(&self, ext: usize) -> Option<(u32, [u8; 11])> {
        let b = self.b();
        if b[ext + 2] != 0x29 {
            return None;
        }
        let mut label = [0u8; 11];
        label.copy_from_slice(&b[ext + 7..ext + 18]);
        Some((le32(b, ext + 3..ext + 7), label))
    }
}

/// What a boot sector says, every field checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootSectorRepr {
    pub bytes_per_sector: u16,
    pub sectors_per_cluster: u8,
    pub reserved_sectors: u16,
    pub num_fats: u8,
    /// Entries of the fixed root directory (0 on FAT32).
    pub root_entries: u16,
    pub total_sectors: u32,
    pub media: u8,
    pub fat_size: u32,
    pub hidden_sectors: u32,
    /// Whether the BPB is the FAT32 one (`BPB_FATSz16` is 0).
    pub is_fat32_bpb: bool,
    pub ext_flags: u16,
    pub root_cluster: u32,
    pub fsinfo_sector: u16,
    pub backup_boot_sector: u16,
    pub volume_id: u32,
    pub label: [u8; 11],
}

impl BootSectorRepr {
    /// Parses and checks the BPB. The 0x55AA signature is not required
    /// here (some formatters leave it out; Linux mounts those too): the
    /// probe requires it.
    pub fn parse<T: AsRef<[u8]>>(p: &BootSectorPacket<T>) -> Result<BootSectorRepr, FormatError> {
        let bps = p.bytes_per_sector();
        if !matches!(bps, 512 | 1024 | 2048 | 4096) {
            return Err(FormatError::Bad("bytes per sector"));
        }
        let spc = p.sectors_per_cluster();
        if spc == 0 || !spc.is_power_of_two() {
            return Err(FormatError::Bad("sectors per cluster"));
        }
        if (bps as u32) * (spc as u32) > 256 * 1024 {
            return Err(FormatError::Bad("cluster size"));
        }
        let reserved = p.reserved_sectors();
        if reserved == 0 {
            return Err(FormatError::Bad("reserved sectors"));
        }
        let nfats = p.num_fats();
        if nfats == 0 || nfats > 4 {
            return Err(FormatError::Bad("number of FATs"));
        }
        let media = p.media();
        if media != 0xF0 && media < 0xF8 {
            return Err(FormatError::Bad("media descriptor"));
        }
        let total = match p.total_sectors16() {
            0 => p.total_sectors32(),
            n => n as u32,
        };
        if total == 0 {
            return Err(FormatError::Bad("total sectors"));
        }
        let is32 = p.fat_size16() == 0;
        let (fat_size, ext_flags, root_cluster, fsinfo, backup, vol) = if is32 {
            if p.fs_version() != 0 {
                return Err(FormatError::Bad("FAT32 version"));
            }
            if p.root_entries() != 0 {
                return Err(FormatError::Bad("FAT32 root entries"));
            }
            (
                p.fat_size32(),
                p.ext_flags(),
                p.root_cluster(),
                p.fsinfo_sector(),
                p.backup_boot_sector(),
                p.volume(bs::EXT32),
            )
        } else {
            if p.root_entries() == 0 {
                return Err(FormatError::Bad("root entries"));
            }
            (p.fat_size16() as u32, 0, 0, 0, 0, p.volume(bs::EXT16))
        };
        if fat_size == 0 {
            return Err(FormatError::Bad("FAT size"));
        }
        let (volume_id, label) = vol.unwrap_or((0, *b"NO NAME    "));
        Ok(BootSectorRepr {
            bytes_per_sector: bps,
            sectors_per_cluster: spc,
            reserved_sectors: reserved,
            num_fats: nfats,
            root_entries: p.root_entries(),
            total_sectors: total,
            media,
            fat_size,
            hidden_sectors: p.hidden_sectors(),
            is_fat32_bpb: is32,
            ext_flags,
            root_cluster,
            fsinfo_sector: fsinfo,
            backup_boot_sector: backup,
            volume_id,
            label,
        })
    }

    pub fn buffer_len(&self) -> usize {
        512
    }

    /// Writes a whole boot sector (jump, OEM name "RUMP-RS ", BPB,
    /// extension, a boot stub that halts, signature) into `buf`.
    pub fn emit(&self, buf: &mut [u8]) {
        let b = &mut buf[..512];
        b.fill(0);
        // EB xx 90: jump over the BPB to the stub.
        let stub = if self.is_fat32_bpb { 0x5A } else { 0x3E };
        b[bs::JMP].copy_from_slice(&[0xEB, stub - 2, 0x90]);
        b[bs::OEM].copy_from_slice(b"RUMP-RS ");
        put16(b, bs::BYTES_PER_SEC, self.bytes_per_sector);
        b[bs::SEC_PER_CLUS] = self.sectors_per_cluster;
        put16(b, bs::RSVD_SEC, self.reserved_sectors);
        b[bs::NUM_FATS] = self.num_fats;
        put16(b, bs::ROOT_ENT, self.root_entries);
        if self.total_sectors < 0x10000 && !self.is_fat32_bpb {
            put16(b, bs::TOT_SEC16, self.total_sectors as u16);
        } else {
            put32(b, bs::TOT_SEC32, self.total_sectors);
        }
        b[bs::MEDIA] = self.media;
        put16(b, bs::SEC_PER_TRK, 32);
        put16(b, bs::NUM_HEADS, 64);
        put32(b, bs::HIDD_SEC, self.hidden_sectors);
        let ext = if self.is_fat32_bpb {
            put32(b, bs::FAT_SZ32, self.fat_size);
            put16(b, bs::EXT_FLAGS, self.ext_flags);
            put32(b, bs::ROOT_CLUS, self.root_cluster);
            put16(b, bs::FS_INFO, self.fsinfo_sector);
            put16(b, bs::BK_BOOT, self.backup_boot_sector);
            bs::EXT32
        } else {
            put16(b, bs::FAT_SZ16, self.fat_size as u16);
            bs::EXT16
        };
        b[ext] = 0x80;
        b[ext + 2] = 0x29;
        put32(b, ext + 3..ext + 7, self.volume_id);
        b[ext + 7..ext + 18].copy_from_slice(&self.label);
        let ty: &[u8; 8] = if self.is_fat32_bpb {
            b"FAT32   "
        } else if self.fat_type_hint() == FatType::Fat12 {
            b"FAT12   "
        } else {
            b"FAT16   "
        };
        b[ext + 18..ext + 26].copy_from_slice(ty);
        // The stub: int 18h (no bootable disk), then halt forever.
        let s = stub as usize;
        b[s..s + 5].copy_from_slice(&[0xCD, 0x18, 0xF4, 0xEB, 0xFD]);
        put16(b, bs::SIG, 0xAA55);
    }

    fn fat_type_hint(&self) -> FatType {
        Geometry::new(self)
            .map(|g| g.fat_type)
            .unwrap_or(FatType::Fat16)
    }
}

/// Where everything is, in sectors of `bytes_per_sector`, derived from a
/// checked boot sector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub fat_type: FatType,
    pub bytes_per_sector: u32,
    pub sectors_per_cluster: u32,
    pub cluster_bytes: u32,
    pub total_sectors: u32,
    /// First sector of FAT number 0.
    pub fat_start: u32,
    pub fat_sectors: u32,
    pub num_fats: u32,
    /// FAT12/16: the fixed root directory.
    pub root_start: u32,
    pub root_sectors: u32,
    pub root_entries: u32,
    /// FAT32: the root directory's first cluster.
    pub root_cluster: u32,
    pub data_start: u32,
    /// Number of data clusters; valid cluster numbers are
    /// `2 .. clusters + 2`.
    pub clusters: u32,
    /// The FAT copy read (FAT32 may disable mirroring).
    pub active_fat: u32,
    /// Whether writes go to every FAT copy.
    pub mirror: bool,
    /// FAT32: the FSInfo sector, if any.
    pub fsinfo_sector: Option<u32>,
    pub volume_id: u32,
    pub label: [u8; 11],
}

impl Geometry {
    /// The layout a boot sector describes; checks that the regions fit
    /// in the volume and that the FAT is large enough for its clusters.
    pub fn new(r: &BootSectorRepr) -> Result<Geometry, FormatError> {
        let bps = r.bytes_per_sector as u32;
        let spc = r.sectors_per_cluster as u32;
        let root_sectors = (r.root_entries as u32 * DIR_ENTRY_SIZE as u32).div_ceil(bps);
        let fats = (r.num_fats as u64) * (r.fat_size as u64);
        let data_start = r.reserved_sectors as u64 + fats + root_sectors as u64;
        if data_start >= r.total_sectors as u64 {
            return Err(FormatError::Bad("data area beyond the volume"));
        }
        let data_start = data_start as u32;
        let clusters = (r.total_sectors - data_start) / spc;
        if clusters == 0 {
            return Err(FormatError::Bad("no data clusters"));
        }
        let fat_type = FatType::for_clusters(clusters);
        if (fat_type == FatType::Fat32) != r.is_fat32_bpb {
            return Err(FormatError::Bad(
                "BPB kind does not match the cluster count",
            ));
        }
        let entries = clusters as u64 + 2;
        let need = match fat_type {
            FatType::Fat12 => (entries * 3).div_ceil(2),
            FatType::Fat16 => entries * 2,
            FatType::Fat32 => entries * 4,
        };
        if (r.fat_size as u64) * (bps as u64) < need {
            return Err(FormatError::Bad("FAT too small for the clusters"));
        }
        let (active_fat, mirror) = if fat_type == FatType::Fat32 && r.ext_flags & 0x80 != 0 {
            ((r.ext_flags & 0xF) as u32, false)
        } else {
            (0, true)
        };
        if active_fat >= r.num_fats as u32 {
            return Err(FormatError::Bad("active FAT"));
        }
        let root_cluster = if fat_type == FatType::Fat32 {
            if r.root_cluster < 2 || r.root_cluster >= clusters + 2 {
                return Err(FormatError::Bad("root cluster"));
            }
            r.root_cluster
        } else {
            0
        };
        let fsinfo_sector = match r.fsinfo_sector {
            0 | 0xFFFF => None,
            s if fat_type == FatType::Fat32 && (s as u32) < r.reserved_sectors as u32 => {
                Some(s as u32)
            }
            _ => None,
        };
        Ok(Geometry {
            fat_type,
            bytes_per_sector: bps,
            sectors_per_cluster: spc,
            cluster_bytes: bps * spc,
            total_sectors: r.total_sectors,
            fat_start: r.reserved_sectors as u32,
            fat_sectors: r.fat_size,
            num_fats: r.num_fats as u32,
            root_start: r.reserved_sectors as u32 + r.num_fats as u32 * r.fat_size,
            root_sectors,
            root_entries: r.root_entries as u32,
            root_cluster,
            data_start,
            clusters,
            active_fat,
            mirror,
            fsinfo_sector,
            volume_id: r.volume_id,
            label: r.label,
        })
    }

    /// First sector of cluster `c` (2 ..= clusters + 1).
    pub fn cluster_sector(&self, c: u32) -> u64 {
        self.data_start as u64 + (c as u64 - 2) * self.sectors_per_cluster as u64
    }

    /// Whether `c` names a data cluster.
    pub fn is_cluster(&self, c: u32) -> bool {
        c >= 2 && c - 2 < self.clusters
    }
}

// ---------------------------------------------------------------- FSInfo

mod fsi {
    use core::ops::Range;
    pub const LEAD: Range<usize> = 0..4;
    pub const STRUC: Range<usize> = 484..488;
    pub const FREE: Range<usize> = 488..492;
    pub const NEXT: Range<usize> = 492..496;
    pub const TRAIL: Range<usize> = 508..512;
}

/// A view of the FAT32 FSInfo sector.
#[derive(Debug, Clone)]
pub struct FsInfoPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> FsInfoPacket<T> {
    pub fn new_checked(buf: T) -> Result<Self, FormatError> {
        if buf.as_ref().len() < 512 {
            return Err(FormatError::Truncated);
        }
        Ok(FsInfoPacket { buf })
    }
    pub fn has_signatures(&self) -> bool {
        let b = self.buf.as_ref();
        le32(b, fsi::LEAD) == FSINFO_LEAD_SIG
            && le32(b, fsi::STRUC) == FSINFO_STRUC_SIG
            && le32(b, fsi::TRAIL) == FSINFO_TRAIL_SIG
    }
    pub fn free_count(&self) -> u32 {
        le32(self.buf.as_ref(), fsi::FREE)
    }
    pub fn next_free(&self) -> u32 {
        le32(self.buf.as_ref(), fsi::NEXT)
    }
}

/// The FSInfo hints (`FSINFO_UNKNOWN` when unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsInfoRepr {
    pub free_count: u32,
    pub next_free: u32,
}

impl FsInfoRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &FsInfoPacket<T>) -> Result<FsInfoRepr, FormatError> {
        if !p.has_signatures() {
            return Err(FormatError::Bad("FSInfo signature"));
        }
        Ok(FsInfoRepr {
            free_count: p.free_count(),
            next_free: p.next_free(),
        })
    }
    pub fn buffer_len(&self) -> usize {
        512
    }
    /// Writes signatures and hints, keeping the reserved bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        let b = &mut buf[..512];
        put32(b, fsi::LEAD, FSINFO_LEAD_SIG);
        put32(b, fsi::STRUC, FSINFO_STRUC_SIG);
        put32(b, fsi::FREE, self.free_count);
        put32(b, fsi::NEXT, self.next_free);
        put32(b, fsi::TRAIL, FSINFO_TRAIL_SIG);
    }
}

// ---------------------------------------------------------------- directory entries

mod de {
    use core::ops::Range;
    pub const NAME: Range<usize> = 0..11;
    pub const ATTR: usize = 11;
    pub const NTRES: usize = 12;
    pub const CTIME_TENTH: usize = 13;
    pub const CTIME: Range<usize> = 14..16;
    pub const CDATE: Range<usize> = 16..18;
    pub const ADATE: Range<usize> = 18..20;
    pub const CLUS_HI: Range<usize> = 20..22;
    pub const MTIME: Range<usize> = 22..24;
    pub const MDATE: Range<usize> = 24..26;
    pub const CLUS_LO: Range<usize> = 26..28;
    pub const SIZE: Range<usize> = 28..32;
    // Long-name entries.
    pub const ORD: usize = 0;
    pub const NAME1: Range<usize> = 1..11;
    pub const LTYPE: usize = 12;
    pub const CHKSUM: usize = 13;
    pub const NAME2: Range<usize> = 14..26;
    pub const NAME3: Range<usize> = 28..32;
}

/// A view of one 32-byte directory slot.
#[derive(Debug, Clone)]
pub struct DirEntryPacket<T: AsRef<[u8]>> {
    buf: T,
}

/// What a directory slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Never used: this and every later slot are free.
    End,
    Deleted,
    Long(LfnRepr),
    Short(DirEntryRepr),
    /// A volume label (skipped).
    Volume,
}

impl<T: AsRef<[u8]>> DirEntryPacket<T> {
    pub fn new_checked(buf: T) -> Result<Self, FormatError> {
        if buf.as_ref().len() < DIR_ENTRY_SIZE {
            return Err(FormatError::Truncated);
        }
        Ok(DirEntryPacket { buf })
    }
    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    pub fn first_byte(&self) -> u8 {
        self.b()[0]
    }
    pub fn attr(&self) -> u8 {
        self.b()[de::ATTR]
    }
    /// Classifies and parses the slot.
    pub fn slot(&self) -> Result<Slot, FormatError> {
        match self.first_byte() {
            0 => return Ok(Slot::End),
            DELETED => return Ok(Slot::Deleted),
            _ => {}
        }
        let a = self.attr();
        if a & 0x3F == attr::LONG_NAME {
            return LfnRepr::parse(self).map(Slot::Long);
        }
        if a & (attr::VOLUME_ID | attr::DIRECTORY) == attr::VOLUME_ID {
            return Ok(Slot::Volume);
        }
        DirEntryRepr::parse(self).map(Slot::Short)
    }
}

/// A short (8.3) directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DirEntryRepr {
    /// The name as stored: 8 bytes of base, 3 of extension, space-padded
    /// (with 0x05 already turned back into 0xE5).
    pub name: [u8; 11],
    pub attr: u8,
    pub ntres: u8,
    pub ctime_tenth: u8,
    pub ctime: u16,
    pub cdate: u16,
    pub adate: u16,
    pub mtime: u16,
    pub mdate: u16,
    pub first_cluster: u32,
    pub size: u32,
}

impl DirEntryRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &DirEntryPacket<T>) -> Result<DirEntryRepr, FormatError> {
        let b = p.b();
        let mut name = [0u8; 11];
        name.copy_from_slice(&b[de::NAME]);
        if name[0] == KANJI_E5 {
            name[0] = DELETED;
        }
        if name[0] == b' ' {
            return Err(FormatError::Bad("short name starts with a space"));
        }
        Ok(DirEntryRepr {
            name,
            attr: b[de::ATTR],
            ntres: b[de::NTRES],
            ctime_tenth: b[de::CTIME_TENTH],
            ctime: le16(b, de::CTIME),
            cdate: le16(b, de::CDATE),
            adate: le16(b, de::ADATE),
            mtime: le16(b, de::MTIME),
            mdate: le16(b, de::MDATE),
            first_cluster: (le16(b, de::CLUS_HI) as u32) << 16 | le16(b, de::CLUS_LO) as u32,
            size: le32(b, de::SIZE),
        })
    }

    pub fn buffer_len(&self) -> usize {
        DIR_ENTRY_SIZE
    }

    pub fn emit(&self, buf: &mut [u8]) {
        let b = &mut buf[..DIR_ENTRY_SIZE];
        b[de::NAME].copy_from_slice(&self.name);
        if b[0] == DELETED {
            b[0] = KANJI_E5;
        }
        b[de::ATTR] = self.attr;
        b[de::NTRES] = self.ntres;
        b[de::CTIME_TENTH] = self.ctime_tenth;
        put16(b, de::CTIME, self.ctime);
        put16(b, de::CDATE, self.cdate);
        put16(b, de::ADATE, self.adate);
        put16(b, de::CLUS_HI, (self.first_cluster >> 16) as u16);
        put16(b, de::MTIME, self.mtime);
        put16(b, de::MDATE, self.mdate);
        put16(b, de::CLUS_LO, self.first_cluster as u16);
        put32(b, de::SIZE, self.size);
    }

    pub fn is_dir(&self) -> bool {
        self.attr & attr::DIRECTORY != 0
    }
}

/// One long-name entry: 13 UTF-16 units of the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LfnRepr {
    /// Sequence number 1..=20.
    pub seq: u8,
    /// Whether this is the last (first stored) entry of the name.
    pub is_last: bool,
    pub checksum: u8,
    pub units: [u16; 13],
}

impl LfnRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &DirEntryPacket<T>) -> Result<LfnRepr, FormatError> {
        let b = p.b();
        let ord = b[de::ORD];
        let seq = ord & 0x1F;
        if seq == 0 || seq > 20 || ord & 0xA0 != 0 {
            return Err(FormatError::Bad("long-name sequence number"));
        }
        if b[de::LTYPE] != 0 {
            return Err(FormatError::Bad("long-name entry type"));
        }
        let mut units = [0u16; 13];
        let mut i = 0;
        for r in [de::NAME1, de::NAME2, de::NAME3] {
            for k in (r.start..r.end).step_by(2) {
                units[i] = le16(b, k..k + 2);
                i += 1;
            }
        }
        Ok(LfnRepr {
            seq,
            is_last: ord & 0x40 != 0,
            checksum: b[de::CHKSUM],
            units,
        })
    }

    pub fn buffer_len(&self) -> usize {
        DIR_ENTRY_SIZE
    }

    pub fn emit(&self, buf: &mut [u8]) {
        let b = &mut buf[..DIR_ENTRY_SIZE];
        b.fill(0);
        b[de::ORD] = self.seq | if self.is_last { 0x40 } else { 0 };
        b[de::ATTR] = attr::LONG_NAME;
        b[de::CHKSUM] = self.checksum;
        let mut i = 0;
        for r in [de::NAME1, de::NAME2, de::NAME3] {
            for k in (r.start..r.end).step_by(2) {
                put16(b, k..k + 2, self.units[i]);
                i += 1;
            }
        }
    }
}

/// The checksum of a short name that each of its long-name entries
/// carries (spec §7.2: rotate right by one, add the next byte).
pub fn short_name_checksum(name: &[u8; 11]) -> u8 {
    let mut sum: u8 = 0;
    for &c in name {
        sum = sum.rotate_right(1).wrapping_add(c);
    }
    sum
}

// ---------------------------------------------------------------- times

/// DOS date and time (local time, which we take as UTC) of Unix seconds,
/// clamped to 1980..=2107; the time has 2-second resolution.
pub fn dos_datetime(unix: i64) -> (u16, u16) {
    const MIN: i64 = 315_532_800; // 1980-01-01
    const MAX: i64 = 4_354_819_198; // 2107-12-31 23:59:58
    let t = unix.clamp(MIN, MAX);
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let date = (((y - 1980) as u16) << 9) | ((m as u16) << 5) | d as u16;
    let time =
        ((secs / 3600) as u16) << 11 | (((secs / 60) % 60) as u16) << 5 | ((secs % 60) / 2) as u16;
    (date, time)
}

/// Unix seconds of a DOS date and time; out-of-range fields are clamped
/// (a corrupt time is shown, not refused).
pub fn unix_time(date: u16, time: u16) -> i64 {
    if date == 0 {
        return 315_532_800;
    }
    let y = 1980 + (date >> 9) as i64;
    let m = ((date >> 5) & 0xF).clamp(1, 12) as i64;
    let d = (date & 0x1F).max(1) as i64;
    let h = ((time >> 11) as i64).min(23);
    let mi = (((time >> 5) & 0x3F) as i64).min(59);
    let s = (((time & 0x1F) * 2) as i64).min(59);
    days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + s
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the usual
/// era-of-400-years computation).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fat16_boot() -> [u8; 512] {
        let r = BootSectorRepr {
            bytes_per_sector: 512,
            sectors_per_cluster: 4,
            reserved_sectors: 4,
            num_fats: 2,
            root_entries: 512,
            total_sectors: 65536,
            media: 0xF8,
            fat_size: 64,
            hidden_sectors: 0,
            is_fat32_bpb: false,
            ext_flags: 0,
            root_cluster: 0,
            fsinfo_sector: 0,
            backup_boot_sector: 0,
            volume_id: 0x1234_5678,
            label: *b"RUMP       ",
        };
        let mut b = [0u8; 512];
        r.emit(&mut b);
        b
    }

    #[test]
    fn boot_sector_round_trip() {
        let b = fat16_boot();
        let p = BootSectorPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.signature(), 0xAA55);
        let r = BootSectorRepr::parse(&p).unwrap();
        assert_eq!(r.volume_id, 0x1234_5678);
        let g = Geometry::new(&r).unwrap();
        assert_eq!(g.fat_type, FatType::Fat16);
        assert_eq!(g.root_start, 4 + 128);
        assert_eq!(g.root_sectors, 32);
        assert_eq!(g.data_start, 164);
        assert_eq!(g.clusters, (65536 - 164) / 4);
        assert_eq!(&b[54..62], b"FAT16   ");
    }

    #[test]
    fn boot_sector_bad_fields() {
        assert_eq!(
            BootSectorPacket::new_checked(&[0u8; 100][..]).err(),
            Some(FormatError::Truncated)
        );
        for (off, val) in [(11usize, 3u8), (13, 3), (16, 0), (21, 0x12)] {
            let mut b = fat16_boot();
            b[off] = val;
            let p = BootSectorPacket::new_checked(&b[..]).unwrap();
            assert!(BootSectorRepr::parse(&p).is_err(), "offset {off}");
        }
        // A FAT too small for its clusters.
        let mut b = fat16_boot();
        b[22] = 1;
        b[23] = 0;
        let r = BootSectorRepr::parse(&BootSectorPacket::new_checked(&b[..]).unwrap()).unwrap();
        assert!(Geometry::new(&r).is_err());
    }

    #[test]
    fn dir_entries_round_trip() {
        let e = DirEntryRepr {
            name: *b"HELLO   TXT",
            attr: attr::ARCHIVE,
            first_cluster: 0x0012_3456,
            size: 77,
            mdate: 0x5A21,
            mtime: 0x1234,
            ..Default::default()
        };
        let mut b = [0u8; 32];
        e.emit(&mut b);
        let p = DirEntryPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.slot().unwrap(), Slot::Short(e));
        let l = LfnRepr {
            seq: 2,
            is_last: true,
            checksum: short_name_checksum(&e.name),
            units: [0x41; 13],
        };
        l.emit(&mut b);
        assert_eq!(
            DirEntryPacket::new_checked(&b[..]).unwrap().slot().unwrap(),
            Slot::Long(l)
        );
        b[0] = 0x40; // sequence 0
        assert!(DirEntryPacket::new_checked(&b[..]).unwrap().slot().is_err());
        assert!(DirEntryPacket::new_checked(&b[..31]).is_err());
    }

    #[test]
    fn checksum_known_value() {
        // Computed by hand for "FOO     BAR".
        let mut s: u8 = 0;
        for &c in b"FOO     BAR" {
            s = ((s & 1) << 7 | s >> 1).wrapping_add(c);
        }
        assert_eq!(short_name_checksum(b"FOO     BAR"), s);
    }

    #[test]
    fn times() {
        // 2024-02-29 13:45:58 UTC
        let t = 1_709_214_358;
        let (d, tm) = dos_datetime(t);
        assert_eq!(d >> 9, 44);
        assert_eq!((d >> 5) & 0xF, 2);
        assert_eq!(d & 0x1F, 29);
        assert_eq!(unix_time(d, tm), t);
        // Odd seconds are stored as the even second before.
        assert_eq!(unix_time(dos_datetime(t + 1).0, dos_datetime(t + 1).1), t);
        assert_eq!(dos_datetime(0), dos_datetime(315_532_800));
        assert!(unix_time(0xFFFF, 0xFFFF) > 0);
    }
}
