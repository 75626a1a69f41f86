//! Creating a FAT volume (`newfs -t msdos`): chooses the FAT width and
//! cluster size for the device's size (or takes them), lays out the
//! reserved area, the FATs, the root directory and (FAT32) the FSInfo
//! sector and the backup boot sector at sector 6, and writes them. The
//! result passes `fsck.fat -n`.
//!
//! Defaults follow the FAT specification's recommendations: FAT32 from
//! 512 MiB up, FAT16 below, FAT12 when the volume is too small for 4085
//! clusters; clusters of 2 KiB (FAT16, up to 128 MiB), growing with the
//! size, 4 KiB for FAT32 up to 8 GiB; two FATs; 512 root entries on
//! FAT12/16; 32 reserved sectors on FAT32.

use alloc::vec;

use dev_blk::{BlockDevice, SECTOR_SIZE};
use hyper::Errno;

use crate::format::*;

/// What to create.
#[derive(Clone, Debug)]
pub struct MkfsOptions {
    /// The width; `None` chooses by size.
    pub fat_type: Option<FatType>,
    /// Sectors per cluster (a power of two up to 128); `None` chooses.
    pub sectors_per_cluster: Option<u8>,
    /// Volume label (up to 11 bytes, stored upper-case, space-padded).
    pub label: [u8; 11],
    pub volume_id: u32,
    /// Sectors before the volume on its disk (`BPB_HiddSec`).
    pub hidden_sectors: u32,
    /// Use only this many 512-byte sectors (default: the whole device).
    pub sectors: Option<u64>,
}

impl Default for MkfsOptions {
    fn default() -> MkfsOptions {
        MkfsOptions {
            fat_type: None,
            sectors_per_cluster: None,
            label: *b"NO NAME    ",
            volume_id: 0,
            hidden_sectors: 0,
            sectors: None,
        }
    }
}

/// What was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MkfsSummary {
    pub fat_type: FatType,
    pub clusters: u32,
    pub cluster_bytes: u32,
    pub free_clusters: u32,
    pub fat_sectors: u32,
    pub total_sectors: u32,
}

/// Formats `dev`.
pub fn format(dev: &dyn BlockDevice, o: &MkfsOptions) -> Result<MkfsSummary, Errno> {
    let total64 = o.sectors.unwrap_or(dev.sectors()).min(dev.sectors());
    if total64 > u32::MAX as u64 {
        return Err(Errno::EFBIG);
    }
    let total = total64 as u32;
    if total < 64 {
        return Err(Errno::ENOSPC);
    }
    let bytes = total64 * SECTOR_SIZE as u64;
    let ty = match o.fat_type {
        Some(t) => t,
        None if bytes >= 512 << 20 => FatType::Fat32,
        None if bytes >= 16 << 20 => FatType::Fat16,
        None => {
            // FAT16 needs 4085 clusters: with 2 KiB clusters, 8 MiB.
            if bytes >= 8 << 20 {
                FatType::Fat16
            } else {
                FatType::Fat12
            }
        }
    };
    let mut spc: u32 = match o.sectors_per_cluster {
        Some(s) if s.is_power_of_two() && s <= 128 => s as u32,
        Some(_) => return Err(Errno::EINVAL),
        None => match ty {
            FatType::Fat12 => 1,
            FatType::Fat16 => match bytes {
                b if b <= 128 << 20 => 4,
                b if b <= 256 << 20 => 8,
                b if b <= 512 << 20 => 16,
                b if b <= 1 << 30 => 32,
                _ => 64,
            },
            FatType::Fat32 => match bytes {
                b if b <= 8 << 30 => 8,
                b if b <= 16 << 30 => 16,
                b if b <= 32 << 30 => 32,
                _ => 64,
            },
        },
    };
    let (reserved, root_entries) = match ty {
        FatType::Fat32 => (32u32, 0u32),
        _ => (1, 512),
    };
    let nfats = 2u32;
    let root_sectors = root_entries * 32 / SECTOR_SIZE as u32;
    // Find a cluster size (when not given) and FAT size that make the
    // cluster count fit the width.
    let (fat_size, clusters) = loop {
        let (fs, cl) = layout(ty, total, reserved, nfats, root_sectors, spc)?;
        if FatType::for_clusters(cl) == ty && cl > 0 {
            break (fs, cl);
        }
        if o.sectors_per_cluster.is_some() {
            return Err(Errno::EINVAL);
        }
        let too_many = match ty {
            FatType::Fat12 => cl >= 4085,
            FatType::Fat16 => cl >= 65525,
            FatType::Fat32 => false,
        };
        if too_many && spc < 128 {
            spc *= 2;
        } else if !too_many && spc > 1 {
            spc /= 2;
        } else {
            // The size does not suit this width.
            return Err(Errno::EINVAL);
        }
    };
    let r = BootSectorRepr {
        bytes_per_sector: SECTOR_SIZE as u16,
        sectors_per_cluster: spc as u8,
        reserved_sectors: reserved as u16,
        num_fats: nfats as u8,
        root_entries: root_entries as u16,
        total_sectors: total,
        media: 0xF8,
        fat_size,
        hidden_sectors: o.hidden_sectors,
        is_fat32_bpb: ty == FatType::Fat32,
        ext_flags: 0,
        root_cluster: if ty == FatType::Fat32 { 2 } else { 0 },
        fsinfo_sector: if ty == FatType::Fat32 { 1 } else { 0 },
        backup_boot_sector: if ty == FatType::Fat32 { 6 } else { 0 },
        volume_id: o.volume_id,
        label: o.label,
    };
    let g = Geometry::new(&r).map_err(|_| Errno::EINVAL)?;
    debug_assert_eq!(g.fat_type, ty);

    // Zero the reserved area, the FATs and the root directory (or the
    // root cluster).
    let zero_end = match ty {
        FatType::Fat32 => g.cluster_sector(2) + spc as u64,
        _ => g.data_start as u64,
    };
    let chunk = 2048u64;
    let zeros = vec![0u8; (chunk as usize) * SECTOR_SIZE];
    let mut s = 0u64;
    while s < zero_end {
        let n = chunk.min(zero_end - s);
        dev.write_blocks(s, &zeros[..n as usize * SECTOR_SIZE])?;
        s += n;
    }
    let mut boot = vec![0u8; SECTOR_SIZE];
    r.emit(&mut boot);
    dev.write_blocks(0, &boot)?;
    let free = clusters - u32::from(ty == FatType::Fat32);
    if ty == FatType::Fat32 {
        let mut fsinfo = vec![0u8; SECTOR_SIZE];
        FsInfoRepr {
            free_count: free,
            next_free: 3,
        }
        .emit(&mut fsinfo);
        dev.write_blocks(1, &fsinfo)?;
        dev.write_blocks(6, &boot)?;
        dev.write_blocks(7, &fsinfo)?;
    }
    // FAT[0] holds the media byte, FAT[1] the end-of-chain value with the
    // clean bit set; FAT32's root directory is cluster 2.
    let mut first = vec![0u8; SECTOR_SIZE];
    match ty {
        FatType::Fat12 => first[..3].copy_from_slice(&[0xF8, 0xFF, 0xFF]),
        FatType::Fat16 => first[..4].copy_from_slice(&[0xF8, 0xFF, 0xFF, 0xFF]),
        FatType::Fat32 => {
            first[..4].copy_from_slice(&0x0FFF_FFF8u32.to_le_bytes());
            first[4..8].copy_from_slice(&0x0FFF_FFFFu32.to_le_bytes());
            first[8..12].copy_from_slice(&0x0FFF_FFFFu32.to_le_bytes());
        }
    }
    for k in 0..nfats {
        dev.write_blocks((reserved + k * fat_size) as u64, &first)?;
    }
    if o.label != *b"NO NAME    " {
        // The label also as a volume-id entry in the root directory.
        let e = DirEntryRepr {
            name: o.label,
            attr: attr::VOLUME_ID,
            ..Default::default()
        };
        let mut sec = vec![0u8; SECTOR_SIZE];
        e.emit(&mut sec);
        let at = match ty {
            FatType::Fat32 => g.cluster_sector(2),
            _ => g.root_start as u64,
        };
        dev.write_blocks(at, &sec)?;
    }
    dev.flush()?;
    Ok(MkfsSummary {
        fat_type: ty,
        clusters,
        cluster_bytes: g.cluster_bytes,
        free_clusters: free,
        fat_sectors: fat_size,
        total_sectors: total,
    })
}

/// The FAT size (sectors) and cluster count of a layout: the smallest
/// FAT that holds an entry for every cluster the rest of the volume
/// leaves room for.
fn layout(
    ty: FatType,
    total: u32,
    reserved: u32,
    nfats: u32,
    root_sectors: u32,
    spc: u32,
) -> Result<(u32, u32), Errno> {
    let entry_bytes = |n: u64| match ty {
        FatType::Fat12 => (n * 3).div_ceil(2),
        FatType::Fat16 => n * 2,
        FatType::Fat32 => n * 4,
    };
    let mut fs = 1u32;
    loop {
        let used = reserved as u64 + nfats as u64 * fs as u64 + root_sectors as u64;
        if used >= total as u64 {
            return Err(Errno::ENOSPC);
        }
        let clusters = ((total as u64 - used) / spc as u64) as u32;
        let need = entry_bytes(clusters as u64 + 2).div_ceil(SECTOR_SIZE as u64) as u32;
        if need <= fs {
            return Ok((fs, clusters));
        }
        fs = need;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dev_blk::MemDevice;

    #[test]
    fn each_width_checks_out() {
        for (sectors, ty) in [
            (2880u64, FatType::Fat12),
            (40960, FatType::Fat16),
            (80000, FatType::Fat32),
        ] {
            let d = MemDevice::new(sectors);
            let s = format(
                &d,
                &MkfsOptions {
                    fat_type: Some(ty),
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(s.fat_type, ty);
            let mut b = [0u8; 512];
            d.read_blocks(0, &mut b).unwrap();
            let r = BootSectorRepr::parse(&BootSectorPacket::new_checked(&b[..]).unwrap()).unwrap();
            let g = Geometry::new(&r).unwrap();
            assert_eq!(g.fat_type, ty);
            assert_eq!(g.clusters, s.clusters);
            assert!(crate::probe_boot_sector(&b, sectors * 512));
        }
        // Too small for FAT32.
        let d = MemDevice::new(20000);
        let o = MkfsOptions {
            fat_type: Some(FatType::Fat32),
            ..Default::default()
        };
        assert_eq!(format(&d, &o), Err(Errno::EINVAL));
    }
}
