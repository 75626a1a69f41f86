//! Partition tables: the MBR (with its four primary entries) and GPT
//! (UEFI specification 2.10, chapter 5), in smoltcp's style: a zero-copy
//! view (`*Packet`) whose constructor checks the length so no accessor can
//! panic, and a `Repr` with `parse`, `emit` and `buffer_len`.
//!
//! [`scan`] reads a device's table and returns its partitions; a
//! protective MBR (type `0xEE`) sends it to the GPT. Extended MBR
//! partitions (types `0x05`, `0x0F`, `0x85`) are listed as they are; their
//! logical partitions are not followed.

use alloc::vec;
use alloc::vec::Vec;

use hyper::Errno;

use crate::dev::{BlockDevice, SECTOR_SIZE};

/// Why a table did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartError {
    /// The buffer is too short for the structure.
    Truncated,
    /// A signature or magic number is wrong.
    BadMagic,
    /// A checksum does not match.
    BadChecksum,
    /// A field holds a value the format forbids.
    Malformed,
}

impl From<PartError> for Errno {
    fn from(e: PartError) -> Errno {
        match e {
            PartError::Truncated | PartError::Malformed => Errno::EINVAL,
            PartError::BadMagic | PartError::BadChecksum => Errno::EIO,
        }
    }
}

mod field {
    use core::ops::Range;
    pub type Field = Range<usize>;

    pub const MBR_ENTRIES: usize = 446;
    pub const MBR_ENTRY_LEN: usize = 16;
    pub const MBR_SIGNATURE: Field = 510..512;
    // Within one MBR entry.
    pub const ME_STATUS: usize = 0;
    pub const ME_TYPE: usize = 4;
    pub const ME_LBA: Field = 8..12;
    pub const ME_SECTORS: Field = 12..16;

    pub const GPT_SIGNATURE: Field = 0..8;
    pub const GPT_REVISION: Field = 8..12;
    pub const GPT_HEADER_SIZE: Field = 12..16;
    pub const GPT_HEADER_CRC: Field = 16..20;
    pub const GPT_MY_LBA: Field = 24..32;
    pub const GPT_ALT_LBA: Field = 32..40;
    pub const GPT_FIRST_USABLE: Field = 40..48;
    pub const GPT_LAST_USABLE: Field = 48..56;
    pub const GPT_DISK_GUID: Field = 56..72;
    pub const GPT_ENTRIES_LBA: Field = 72..80;
    pub const GPT_NUM_ENTRIES: Field = 80..84;
    pub const GPT_ENTRY_SIZE: Field = 84..88;
    pub const GPT_ENTRIES_CRC: Field = 88..92;
    pub const GPT_HEADER_LEN: usize = 92;

    pub const GE_TYPE: Field = 0..16;
    pub const GE_UNIQUE: Field = 16..32;
    pub const GE_FIRST: Field = 32..40;
    pub const GE_LAST: Field = 40..48;
    pub const GE_ATTRS: Field = 48..56;
    pub const GE_NAME: Field = 56..128;
    pub const GE_LEN: usize = 128;
}

fn le32(b: &[u8], f: field::Field) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[f]);
    u32::from_le_bytes(a)
}

fn le64(b: &[u8], f: field::Field) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[f]);
    u64::from_le_bytes(a)
}

fn guid(b: &[u8], f: field::Field) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[f]);
    a
}

/// CRC-32 (IEEE 802.3, reflected, as GPT uses).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

// ----- MBR ------------------------------------------------------------------

/// A view of a master boot record (one 512-byte sector).
#[derive(Debug, Clone)]
pub struct MbrPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MbrPacket<T> {
    /// Wraps `buffer` without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        MbrPacket { buffer }
    }

    /// Wraps `buffer`, checking it holds a whole MBR.
    pub fn new_checked(buffer: T) -> Result<Self, PartError> {
        if buffer.as_ref().len() < SECTOR_SIZE {
            return Err(PartError::Truncated);
        }
        Ok(MbrPacket { buffer })
    }

    /// Whether the boot signature `55 AA` is present.
    pub fn has_signature(&self) -> bool {
        self.buffer.as_ref()[field::MBR_SIGNATURE] == [0x55, 0xAA]
    }

    fn entry(&self, i: usize) -> &[u8] {
        let off = field::MBR_ENTRIES + i * field::MBR_ENTRY_LEN;
        &self.buffer.as_ref()[off..off + field::MBR_ENTRY_LEN]
    }

    /// The partition type byte of entry `i` (0..4).
    pub fn entry_type(&self, i: usize) -> u8 {
        self.entry(i)[field::ME_TYPE]
    }

    /// The boot indicator of entry `i`.
    pub fn entry_status(&self, i: usize) -> u8 {
        self.entry(i)[field::ME_STATUS]
    }

    /// The first sector of entry `i`.
    pub fn entry_lba(&self, i: usize) -> u32 {
        le32(self.entry(i), field::ME_LBA)
    }

    /// The sector count of entry `i`.
    pub fn entry_sectors(&self, i: usize) -> u32 {
        le32(self.entry(i), field::ME_SECTORS)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> MbrPacket<T> {
    fn entry_mut(&mut self, i: usize) -> &mut [u8] {
        let off = field::MBR_ENTRIES + i * field::MBR_ENTRY_LEN;
        &mut self.buffer.as_mut()[off..off + field::MBR_ENTRY_LEN]
    }
}

/// One used MBR entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MbrEntry {
    pub bootable: bool,
    pub kind: u8,
    pub lba: u32,
    pub sectors: u32,
}

/// A parsed MBR: its four slots (`None` for unused ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MbrRepr {
    pub entries: [Option<MbrEntry>; 4],
}

/// The type of a GPT protective MBR entry.
pub const MBR_TYPE_GPT_PROTECTIVE: u8 = 0xEE;

impl MbrRepr {
    /// Parses an MBR; `BadMagic` without the boot signature.
    pub fn parse<T: AsRef<[u8]>>(p: &MbrPacket<T>) -> Result<MbrRepr, PartError> {
        if !p.has_signature() {
            return Err(PartError::BadMagic);
        }
        let mut entries = [None; 4];
        for (i, e) in entries.iter_mut().enumerate() {
            let kind = p.entry_type(i);
            let status = p.entry_status(i);
            if status != 0 && status != 0x80 {
                return Err(PartError::Malformed);
            }
            if kind != 0 && p.entry_sectors(i) != 0 {
                *e = Some(MbrEntry {
                    bootable: status == 0x80,
                    kind,
                    lba: p.entry_lba(i),
                    sectors: p.entry_sectors(i),
                });
            }
        }
        Ok(MbrRepr { entries })
    }

    /// Bytes [`MbrRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        SECTOR_SIZE
    }

    /// Writes the partition entries and signature (the boot code area is
    /// left alone). CHS fields are set to the "use LBA" value.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut MbrPacket<T>) {
        for (i, e) in self.entries.iter().enumerate() {
            let b = p.entry_mut(i);
            b.fill(0);
            if let Some(e) = e {
                b[field::ME_STATUS] = if e.bootable { 0x80 } else { 0 };
                b[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
                b[field::ME_TYPE] = e.kind;
                b[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
                b[field::ME_LBA].copy_from_slice(&e.lba.to_le_bytes());
                b[field::ME_SECTORS].copy_from_slice(&e.sectors.to_le_bytes());
            }
        }
        p.buffer.as_mut()[field::MBR_SIGNATURE].copy_from_slice(&[0x55, 0xAA]);
    }
}

// ----- GPT ------------------------------------------------------------------

/// A view of a GPT header.
#[derive(Debug, Clone)]
pub struct GptHeaderPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GptHeaderPacket<T> {
    /// Wraps `buffer`, checking it holds the header fields and the size
    /// the header claims.
    pub fn new_checked(buffer: T) -> Result<Self, PartError> {
        let b = buffer.as_ref();
        if b.len() < field::GPT_HEADER_LEN {
            return Err(PartError::Truncated);
        }
        let size = le32(b, field::GPT_HEADER_SIZE) as usize;
        if size < field::GPT_HEADER_LEN || size > b.len() {
            return Err(PartError::Truncated);
        }
        Ok(GptHeaderPacket { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn signature(&self) -> &[u8] {
        &self.b()[field::GPT_SIGNATURE]
    }
    pub fn revision(&self) -> u32 {
        le32(self.b(), field::GPT_REVISION)
    }
    pub fn header_size(&self) -> u32 {
        le32(self.b(), field::GPT_HEADER_SIZE)
    }
    pub fn header_crc(&self) -> u32 {
        le32(self.b(), field::GPT_HEADER_CRC)
    }
    pub fn my_lba(&self) -> u64 {
        le64(self.b(), field::GPT_MY_LBA)
    }
    pub fn alternate_lba(&self) -> u64 {
        le64(self.b(), field::GPT_ALT_LBA)
    }
    pub fn first_usable(&self) -> u64 {
        le64(self.b(), field::GPT_FIRST_USABLE)
    }
    pub fn last_usable(&self) -> u64 {
        le64(self.b(), field::GPT_LAST_USABLE)
    }
    pub fn disk_guid(&self) -> [u8; 16] {
        guid(self.b(), field::GPT_DISK_GUID)
    }
    pub fn entries_lba(&self) -> u64 {
        le64(self.b(), field::GPT_ENTRIES_LBA)
    }
    pub fn num_entries(&self) -> u32 {
        le32(self.b(), field::GPT_NUM_ENTRIES)
    }
    pub fn entry_size(&self) -> u32 {
        le32(self.b(), field::GPT_ENTRY_SIZE)
    }
    pub fn entries_crc(&self) -> u32 {
        le32(self.b(), field::GPT_ENTRIES_CRC)
    }

    /// The CRC of the header with its own CRC field zeroed.
    pub fn computed_crc(&self) -> u32 {
        let size = self.header_size() as usize;
        let mut copy = [0u8; SECTOR_SIZE];
        let n = size.min(SECTOR_SIZE);
        copy[..n].copy_from_slice(&self.b()[..n]);
        copy[field::GPT_HEADER_CRC].fill(0);
        crc32(&copy[..n])
    }
}

/// A parsed GPT header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GptHeaderRepr {
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable: u64,
    pub last_usable: u64,
    pub disk_guid: [u8; 16],
    pub entries_lba: u64,
    pub num_entries: u32,
    pub entry_size: u32,
    pub entries_crc: u32,
}

/// `"EFI PART"`.
pub const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";

impl GptHeaderRepr {
    /// Parses and verifies a header (signature, CRC, entry size).
    pub fn parse<T: AsRef<[u8]>>(p: &GptHeaderPacket<T>) -> Result<GptHeaderRepr, PartError> {
        if p.signature() != GPT_SIGNATURE {
            return Err(PartError::BadMagic);
        }
        if p.header_size() as usize > SECTOR_SIZE {
            return Err(PartError::Malformed);
        }
        if p.computed_crc() != p.header_crc() {
            return Err(PartError::BadChecksum);
        }
        let es = p.entry_size();
        if es < field::GE_LEN as u32 || !es.is_multiple_of(8) || es > 4096 {
            return Err(PartError::Malformed);
        }
        if p.num_entries() > 4096 || p.first_usable() > p.last_usable() {
            return Err(PartError::Malformed);
        }
        Ok(GptHeaderRepr {
            my_lba: p.my_lba(),
            alternate_lba: p.alternate_lba(),
            first_usable: p.first_usable(),
            last_usable: p.last_usable(),
            disk_guid: p.disk_guid(),
            entries_lba: p.entries_lba(),
            num_entries: p.num_entries(),
            entry_size: es,
            entries_crc: p.entries_crc(),
        })
    }

    /// Bytes [`GptHeaderRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        field::GPT_HEADER_LEN
    }

    /// Writes the header, computing its CRC. `buf` must hold
    /// [`GptHeaderRepr::buffer_len`] bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), PartError> {
        let b = buf
            .get_mut(..field::GPT_HEADER_LEN)
            .ok_or(PartError::Truncated)?;
        b.fill(0);
        b[field::GPT_SIGNATURE].copy_from_slice(GPT_SIGNATURE);
        b[field::GPT_REVISION].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        b[field::GPT_HEADER_SIZE].copy_from_slice(&(field::GPT_HEADER_LEN as u32).to_le_bytes());
        b[field::GPT_MY_LBA].copy_from_slice(&self.my_lba.to_le_bytes());
        b[field::GPT_ALT_LBA].copy_from_slice(&self.alternate_lba.to_le_bytes());
        b[field::GPT_FIRST_USABLE].copy_from_slice(&self.first_usable.to_le_bytes());
        b[field::GPT_LAST_USABLE].copy_from_slice(&self.last_usable.to_le_bytes());
        b[field::GPT_DISK_GUID].copy_from_slice(&self.disk_guid);
        b[field::GPT_ENTRIES_LBA].copy_from_slice(&self.entries_lba.to_le_bytes());
        b[field::GPT_NUM_ENTRIES].copy_from_slice(&self.num_entries.to_le_bytes());
        b[field::GPT_ENTRY_SIZE].copy_from_slice(&self.entry_size.to_le_bytes());
        b[field::GPT_ENTRIES_CRC].copy_from_slice(&self.entries_crc.to_le_bytes());
        let crc = crc32(b);
        b[field::GPT_HEADER_CRC].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }
}

/// A view of one GPT partition entry.
#[derive(Debug, Clone)]
pub struct GptEntryPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GptEntryPacket<T> {
    /// Wraps `buffer`, checking it holds an entry.
    pub fn new_checked(buffer: T) -> Result<Self, PartError> {
        if buffer.as_ref().len() < field::GE_LEN {
            return Err(PartError::Truncated);
        }
        Ok(GptEntryPacket { buffer })
    }
    pub fn type_guid(&self) -> [u8; 16] {
        guid(self.buffer.as_ref(), field::GE_TYPE)
    }
    pub fn unique_guid(&self) -> [u8; 16] {
        guid(self.buffer.as_ref(), field::GE_UNIQUE)
    }
    pub fn first_lba(&self) -> u64 {
        le64(self.buffer.as_ref(), field::GE_FIRST)
    }
    pub fn last_lba(&self) -> u64 {
        le64(self.buffer.as_ref(), field::GE_LAST)
    }
    pub fn attributes(&self) -> u64 {
        le64(self.buffer.as_ref(), field::GE_ATTRS)
    }
    pub fn name_utf16(&self) -> &[u8] {
        &self.buffer.as_ref()[field::GE_NAME]
    }
}

/// A used GPT entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GptEntryRepr {
    pub type_guid: [u8; 16],
    pub unique_guid: [u8; 16],
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    pub attributes: u64,
}

impl GptEntryRepr {
    /// Parses an entry; `Ok(None)` for an unused one (zero type GUID).
    pub fn parse<T: AsRef<[u8]>>(p: &GptEntryPacket<T>) -> Result<Option<GptEntryRepr>, PartError> {
        if p.type_guid() == [0; 16] {
            return Ok(None);
        }
        if p.first_lba() > p.last_lba() {
            return Err(PartError::Malformed);
        }
        Ok(Some(GptEntryRepr {
            type_guid: p.type_guid(),
            unique_guid: p.unique_guid(),
            first_lba: p.first_lba(),
            last_lba: p.last_lba(),
            attributes: p.attributes(),
        }))
    }

    /// Bytes [`GptEntryRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        field::GE_LEN
    }

    /// Writes the entry (with an empty name).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), PartError> {
        let b = buf.get_mut(..field::GE_LEN).ok_or(PartError::Truncated)?;
        b.fill(0);
        b[field::GE_TYPE].copy_from_slice(&self.type_guid);
        b[field::GE_UNIQUE].copy_from_slice(&self.unique_guid);
        b[field::GE_FIRST].copy_from_slice(&self.first_lba.to_le_bytes());
        b[field::GE_LAST].copy_from_slice(&self.last_lba.to_le_bytes());
        b[field::GE_ATTRS].copy_from_slice(&self.attributes.to_le_bytes());
        Ok(())
    }
}

// ----- scanning -------------------------------------------------------------

/// What kind of table a partition came from, with its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartKind {
    Mbr(u8),
    Gpt([u8; 16]),
}

/// One partition found by [`scan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    /// 1-based slot number (the `N` of `/dev/disk0pN`).
    pub index: u32,
    pub start: u64,
    pub sectors: u64,
    pub kind: PartKind,
}

/// Reads the partition table of `dev`. No table (no MBR signature) gives
/// an empty list; a table that is present but broken gives its error.
/// Partitions that do not fit on the device are skipped.
pub fn scan(dev: &dyn BlockDevice) -> Result<Vec<PartitionInfo>, Errno> {
    if dev.sectors() < 1 {
        return Ok(Vec::new());
    }
    let mut sector0 = [0u8; SECTOR_SIZE];
    dev.read_blocks(0, &mut sector0)?;
    let mbr = MbrPacket::new_checked(&sector0[..])?;
    let repr = match MbrRepr::parse(&mbr) {
        Ok(r) => r,
        Err(PartError::BadMagic) | Err(PartError::Malformed) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let total = dev.sectors();
    if repr
        .entries
        .iter()
        .flatten()
        .any(|e| e.kind == MBR_TYPE_GPT_PROTECTIVE)
    {
        return scan_gpt(dev);
    }
    let mut out = Vec::new();
    for (i, e) in repr.entries.iter().enumerate() {
        let Some(e) = e else { continue };
        let (start, n) = (e.lba as u64, e.sectors as u64);
        if start == 0 || start + n > total {
            continue;
        }
        out.push(PartitionInfo {
            index: i as u32 + 1,
            start,
            sectors: n,
            kind: PartKind::Mbr(e.kind),
        });
    }
    Ok(out)
}

fn scan_gpt(dev: &dyn BlockDevice) -> Result<Vec<PartitionInfo>, Errno> {
    let total = dev.sectors();
    if total < 3 {
        return Err(Errno::EINVAL);
    }
    let mut hdr = [0u8; SECTOR_SIZE];
    dev.read_blocks(1, &mut hdr)?;
    let h = GptHeaderRepr::parse(&GptHeaderPacket::new_checked(&hdr[..])?)?;
    let bytes = h.num_entries as usize * h.entry_size as usize;
    let sectors = bytes.div_ceil(SECTOR_SIZE) as u64;
    match h.entries_lba.checked_add(sectors) {
        Some(end) if end <= total => {}
        _ => return Err(Errno::EINVAL),
    }
    let mut table = vec![0u8; sectors as usize * SECTOR_SIZE];
    dev.read_blocks(h.entries_lba, &mut table)?;
    let entries = table.get(..bytes).ok_or(Errno::EINVAL)?;
    if crc32(entries) != h.entries_crc {
        return Err(PartError::BadChecksum.into());
    }
    let mut out = Vec::new();
    for (i, raw) in entries.chunks_exact(h.entry_size as usize).enumerate() {
        let Some(e) = GptEntryRepr::parse(&GptEntryPacket::new_checked(raw)?)? else {
            continue;
        };
        if e.last_lba >= total {
            continue;
        }
        out.push(PartitionInfo {
            index: i as u32 + 1,
            start: e.first_lba,
            sectors: e.last_lba - e.first_lba + 1,
            kind: PartKind::Gpt(e.type_guid),
        });
    }
    Ok(out)
}

/// Writes a GPT (protective MBR, primary header and entries, backup
/// entries and header) describing `parts` on `dev`. For tests and tools.
pub fn write_gpt(
    dev: &dyn BlockDevice,
    disk_guid: [u8; 16],
    parts: &[GptEntryRepr],
) -> Result<(), Errno> {
    let total = dev.sectors();
    const N: u32 = 128;
    let entry_sectors = (N as u64 * 128).div_ceil(SECTOR_SIZE as u64);
    if total < 2 * entry_sectors + 4 || parts.len() > N as usize {
        return Err(Errno::EINVAL);
    }
    let mut table = vec![0u8; N as usize * 128];
    for (i, p) in parts.iter().enumerate() {
        p.emit(&mut table[i * 128..])?;
    }
    let crc = crc32(&table);
    let mut mbr = [0u8; SECTOR_SIZE];
    let mut entries = [None; 4];
    entries[0] = Some(MbrEntry {
        bootable: false,
        kind: MBR_TYPE_GPT_PROTECTIVE,
        lba: 1,
        sectors: (total - 1).min(u32::MAX as u64) as u32,
    });
    MbrRepr { entries }.emit(&mut MbrPacket::new_unchecked(&mut mbr[..]));
    dev.write_blocks(0, &mbr)?;
    let mut primary = GptHeaderRepr {
        my_lba: 1,
        alternate_lba: total - 1,
        first_usable: 2 + entry_sectors,
        last_usable: total - 2 - entry_sectors,
        disk_guid,
        entries_lba: 2,
        num_entries: N,
        entry_size: 128,
        entries_crc: crc,
    };
    let mut sec = [0u8; SECTOR_SIZE];
    primary.emit(&mut sec)?;
    dev.write_blocks(1, &sec)?;
    dev.write_blocks(2, &table)?;
    dev.write_blocks(total - 1 - entry_sectors, &table)?;
    primary.my_lba = total - 1;
    primary.alternate_lba = 1;
    primary.entries_lba = total - 1 - entry_sectors;
    let mut sec = [0u8; SECTOR_SIZE];
    primary.emit(&mut sec)?;
    dev.write_blocks(total - 1, &sec)?;
    dev.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::MemDevice;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn mbr_round_trip() {
        let mut buf = [0u8; 512];
        let mut entries = [None; 4];
        entries[1] = Some(MbrEntry {
            bootable: true,
            kind: 0x83,
            lba: 2048,
            sectors: 4096,
        });
        let r = MbrRepr { entries };
        assert_eq!(r.buffer_len(), 512);
        r.emit(&mut MbrPacket::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[510..], &[0x55, 0xAA]);
        assert_eq!(buf[446 + 16 + 4], 0x83);
        let p = MbrPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(MbrRepr::parse(&p).unwrap(), r);
    }

    #[test]
    fn mbr_bad_length_and_magic() {
        assert_eq!(
            MbrPacket::new_checked(&[0u8; 511][..]).err(),
            Some(PartError::Truncated)
        );
        let p = MbrPacket::new_checked(&[0u8; 512][..]).unwrap();
        assert_eq!(MbrRepr::parse(&p), Err(PartError::BadMagic));
        let mut buf = [0u8; 512];
        buf[510] = 0x55;
        buf[511] = 0xAA;
        buf[446] = 0x12; // bad status byte
        let p = MbrPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(MbrRepr::parse(&p), Err(PartError::Malformed));
    }

    #[test]
    fn gpt_header_bad_length() {
        assert_eq!(
            GptHeaderPacket::new_checked(&[0u8; 91][..]).err(),
            Some(PartError::Truncated)
        );
        let mut b = [0u8; 92];
        b[12..16].copy_from_slice(&200u32.to_le_bytes());
        assert_eq!(
            GptHeaderPacket::new_checked(&b[..]).err(),
            Some(PartError::Truncated)
        );
        assert_eq!(
            GptEntryPacket::new_checked(&[0u8; 127][..]).err(),
            Some(PartError::Truncated)
        );
        assert!(GptEntryRepr {
            type_guid: [1; 16],
            unique_guid: [2; 16],
            first_lba: 1,
            last_lba: 2,
            attributes: 0
        }
        .emit(&mut [0u8; 100])
        .is_err());
    }

    #[test]
    fn gpt_header_round_trip_and_crc() {
        let h = GptHeaderRepr {
            my_lba: 1,
            alternate_lba: 99,
            first_usable: 34,
            last_usable: 66,
            disk_guid: [9; 16],
            entries_lba: 2,
            num_entries: 128,
            entry_size: 128,
            entries_crc: 0x1234,
        };
        let mut buf = [0u8; 512];
        h.emit(&mut buf).unwrap();
        let p = GptHeaderPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(GptHeaderRepr::parse(&p).unwrap(), h);
        buf[40] ^= 1;
        let p = GptHeaderPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(GptHeaderRepr::parse(&p), Err(PartError::BadChecksum));
    }

    #[test]
    fn scan_mbr_and_gpt_devices() {
        let d = MemDevice::new(8192);
        assert!(scan(&d).unwrap().is_empty());
        let mut mbr = [0u8; 512];
        let mut entries = [None; 4];
        entries[0] = Some(MbrEntry {
            bootable: false,
            kind: 0x83,
            lba: 2048,
            sectors: 2048,
        });
        // Past the end of the device: skipped.
        entries[2] = Some(MbrEntry {
            bootable: false,
            kind: 0x83,
            lba: 8000,
            sectors: 2048,
        });
        MbrRepr { entries }.emit(&mut MbrPacket::new_unchecked(&mut mbr[..]));
        d.write_blocks(0, &mbr).unwrap();
        let parts = scan(&d).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(
            (parts[0].index, parts[0].start, parts[0].sectors),
            (1, 2048, 2048)
        );

        let g = MemDevice::new(8192);
        let linux = [0xAF; 16];
        write_gpt(
            &g,
            [7; 16],
            &[
                GptEntryRepr {
                    type_guid: linux,
                    unique_guid: [1; 16],
                    first_lba: 2048,
                    last_lba: 4095,
                    attributes: 0,
                },
                GptEntryRepr {
                    type_guid: linux,
                    unique_guid: [2; 16],
                    first_lba: 4096,
                    last_lba: 8000,
                    attributes: 0,
                },
            ],
        )
        .unwrap();
        let parts = scan(&g).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].start, 4096);
        assert_eq!(parts[1].sectors, 3905);
        assert_eq!(parts[1].kind, PartKind::Gpt(linux));
        // A corrupted entry table fails its checksum.
        let mut sec = [0u8; 512];
        g.read_blocks(2, &mut sec).unwrap();
        sec[40] ^= 0xFF;
        g.write_blocks(2, &sec).unwrap();
        assert_eq!(scan(&g), Err(Errno::EIO));
    }
}
