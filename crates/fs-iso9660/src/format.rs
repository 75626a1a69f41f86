//! The ISO 9660 on-disk structures, in smoltcp's style: zero-copy views
//! (`*Packet<T: AsRef<[u8]>>`) whose `new_checked` verifies every length so
//! that no accessor can panic, with a private `field` module of byte
//! ranges, and `*Repr`s that `parse` them into plain values.
//!
//! Sources: ECMA-119 (4th edition) section 8.4 (primary volume
//! descriptor), 8.5 (supplementary volume descriptor, used by Joliet),
//! 9.1 (directory records), 9.4 (path table records) and 8.4.26.1 / 9.1.5
//! (the two date formats); the System Use Sharing Protocol 1.12 (SUSP:
//! `CE`, `PD`, `SP`, `ST`, `ER`, `ES`) and the Rock Ridge Interchange
//! Protocol 1.12 (RRIP: `PX`, `PN`, `SL`, `NM`, `CL`, `PL`, `RE`, `TF`);
//! the Joliet specification (UCS-2 names, escape sequences `%/@`, `%/C`,
//! `%/E`). Numbers are recorded "both-byte order" (ECMA-119 7.2.3 and
//! 7.3.3): we read the little-endian half and, where a field is used for
//! addressing, insist that the big-endian half agrees.
//!
//! Neighbours: the mounted state (`fs`) reads sectors and hands them here.

use core::ops::Range;

use hyper::Timespec;

/// The logical sector size of ECMA-119 (6.1.2): volume descriptors live
/// in 2048-byte sectors whatever the logical block size.
pub const SECTOR: usize = 2048;
/// Sector of the first volume descriptor (the system area is 0..16).
pub const FIRST_DESCRIPTOR: u64 = 16;
/// The standard identifier of every volume descriptor.
pub const STANDARD_ID: &[u8; 5] = b"CD001";
/// Size of the root directory record inside a volume descriptor.
pub const ROOT_RECORD_LEN: usize = 34;
/// Length of the fixed part of a directory record.
pub const DIR_RECORD_MIN: usize = 33;

/// A parse error: which structure and what was wrong (callers turn it into
/// `EUCLEAN` with a log line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The buffer is shorter than the structure needs.
    Truncated(&'static str),
    /// A field has a value the standard forbids.
    Invalid(&'static str),
}

impl core::fmt::Display for FormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FormatError::Truncated(w) => write!(f, "{w}: truncated"),
            FormatError::Invalid(w) => write!(f, "{w}"),
        }
    }
}

/// Reads a both-endian 32-bit number (ECMA-119 7.3.3) at `at`.
fn both32(b: &[u8], at: usize, what: &'static str) -> Result<u32, FormatError> {
    let s = b.get(at..at + 8).ok_or(FormatError::Truncated(what))?;
    let le = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    let be = u32::from_be_bytes([s[4], s[5], s[6], s[7]]);
    if le != be {
        return Err(FormatError::Invalid(what));
    }
    Ok(le)
}

/// Reads a both-endian 16-bit number (ECMA-119 7.2.3) at `at`.
fn both16(b: &[u8], at: usize, what: &'static str) -> Result<u16, FormatError> {
    let s = b.get(at..at + 4).ok_or(FormatError::Truncated(what))?;
    let le = u16::from_le_bytes([s[0], s[1]]);
    let be = u16::from_be_bytes([s[2], s[3]]);
    if le != be {
        return Err(FormatError::Invalid(what));
    }
    Ok(le)
}

/// A both-endian 32-bit number where only the little-endian half is
/// trusted (RRIP fields that some writers get wrong in the other half and
/// that are never used for addressing).
fn both32_le(b: &[u8], at: usize, what: &'static str) -> Result<u32, FormatError> {
    let s = b.get(at..at + 4).ok_or(FormatError::Truncated(what))?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

// ---------------------------------------------------------------------------
// Volume descriptors (ECMA-119 8)

/// Volume descriptor types (ECMA-119 8.1.1), a total enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescriptorType {
    BootRecord,
    Primary,
    /// Supplementary (Joliet) or enhanced.
    Supplementary,
    Partition,
    Terminator,
    Unknown(u8),
}

impl From<u8> for DescriptorType {
    fn from(v: u8) -> Self {
        match v {
            0 => DescriptorType::BootRecord,
            1 => DescriptorType::Primary,
            2 => DescriptorType::Supplementary,
            3 => DescriptorType::Partition,
            255 => DescriptorType::Terminator,
            n => DescriptorType::Unknown(n),
        }
    }
}

mod vd_field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const ID: Range<usize> = 1..6;
    pub const VERSION: usize = 6;
    pub const FLAGS: usize = 7;
    pub const VOLUME_ID: Range<usize> = 40..72;
    pub const SPACE_SIZE: usize = 80;
    pub const ESCAPES: Range<usize> = 88..120;
    pub const BLOCK_SIZE: usize = 128;
    pub const PATH_TABLE_SIZE: usize = 132;
    pub const L_PATH_TABLE: Range<usize> = 140..144;
    pub const ROOT: Range<usize> = 156..190;
}

/// A view of one 2048-byte volume descriptor.
#[derive(Debug, Clone)]
pub struct DescriptorPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DescriptorPacket<T> {
    /// Checks the length and the standard identifier.
    pub fn new_checked(buffer: T) -> Result<Self, FormatError> {
        let b = buffer.as_ref();
        if b.len() < SECTOR {
            return Err(FormatError::Truncated("volume descriptor"));
        }
        if &b[vd_field::ID] != STANDARD_ID {
            return Err(FormatError::Invalid(
                "volume descriptor: no CD001 identifier",
            ));
        }
        Ok(DescriptorPacket { buffer })
    }

    /// The descriptor type.
    pub fn kind(&self) -> DescriptorType {
        DescriptorType::from(self.buffer.as_ref()[vd_field::TYPE])
    }

    /// The descriptor version (1 for primary and Joliet descriptors).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[vd_field::VERSION]
    }

    /// Whether a supplementary descriptor announces Joliet (one of the
    /// escape sequences `%/@`, `%/C`, `%/E` for UCS-2 levels 1 to 3).
    pub fn is_joliet(&self) -> bool {
        let esc = &self.buffer.as_ref()[vd_field::ESCAPES];
        let flags = self.buffer.as_ref()[vd_field::FLAGS];
        flags & 1 == 0 && esc[0] == b'%' && esc[1] == b'/' && matches!(esc[2], b'@' | b'C' | b'E')
    }
}

/// A parsed primary or supplementary volume descriptor: what mounting
/// needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeRepr {
    pub kind: DescriptorType,
    /// Logical blocks in the volume.
    pub space_size: u32,
    /// Logical block size: 512, 1024 or 2048 (ECMA-119 6.2.2).
    pub block_size: u32,
    pub path_table_size: u32,
    /// First block of the little-endian (type L) path table.
    pub l_path_table: u32,
    /// The volume identifier, trailing blanks removed (d-characters, or
    /// UCS-2 for Joliet: kept raw).
    pub volume_id: [u8; 32],
    pub is_joliet: bool,
    /// The root directory record.
    pub root: DirRecordRepr,
}

impl VolumeRepr {
    /// Parses a primary or supplementary descriptor.
    pub fn parse<T: AsRef<[u8]>>(p: &DescriptorPacket<T>) -> Result<VolumeRepr, FormatError> {
        let b = p.buffer.as_ref();
        let kind = p.kind();
        if !matches!(
            kind,
            DescriptorType::Primary | DescriptorType::Supplementary
        ) {
            return Err(FormatError::Invalid("not a volume descriptor with a root"));
        }
        let space_size = both32(b, vd_field::SPACE_SIZE, "volume space size")?;
        let block_size = both16(b, vd_field::BLOCK_SIZE, "logical block size")? as u32;
        if !matches!(block_size, 512 | 1024 | 2048) {
            return Err(FormatError::Invalid(
                "logical block size not 512, 1024 or 2048",
            ));
        }
        let path_table_size = both32(b, vd_field::PATH_TABLE_SIZE, "path table size")?;
        let l = &b[vd_field::L_PATH_TABLE];
        let l_path_table = u32::from_le_bytes([l[0], l[1], l[2], l[3]]);
        let mut volume_id = [0u8; 32];
        volume_id.copy_from_slice(&b[vd_field::VOLUME_ID]);
        let rp = DirRecordPacket::new_checked(&b[vd_field::ROOT])?;
        let root = DirRecordRepr::parse(&rp)?;
        if !root.is_dir() {
            return Err(FormatError::Invalid(
                "root directory record is not a directory",
            ));
        }
        Ok(VolumeRepr {
            kind,
            space_size,
            block_size,
            path_table_size,
            l_path_table,
            volume_id,
            is_joliet: kind == DescriptorType::Supplementary && p.is_joliet(),
            root,
        })
    }
}

// ---------------------------------------------------------------------------
// Directory records (ECMA-119 9.1)

/// File flags (ECMA-119 9.1.6).
pub mod flags {
    pub const HIDDEN: u8 = 0x01;
    pub const DIRECTORY: u8 = 0x02;
    pub const ASSOCIATED: u8 = 0x04;
    pub const RECORD: u8 = 0x08;
    pub const PROTECTION: u8 = 0x10;
    /// Not the final directory record of the file (multi-extent).
    pub const MULTI_EXTENT: u8 = 0x80;
}

mod dr_field {
    pub const LEN: usize = 0;
    pub const XAR_LEN: usize = 1;
    pub const EXTENT: usize = 2;
    pub const SIZE: usize = 10;
    pub const DATE: core::ops::Range<usize> = 18..25;
    pub const FLAGS: usize = 25;
    pub const UNIT_SIZE: usize = 26;
    pub const GAP: usize = 27;
    pub const NAME_LEN: usize = 32;
    pub const NAME: usize = 33;
}

/// A view of one directory record. After `new_checked` the record length
/// covers the fixed part, the identifier and its padding.
#[derive(Debug, Clone)]
pub struct DirRecordPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DirRecordPacket<T> {
    /// Checks that the record's length field is sane and fits the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, FormatError> {
        let b = buffer.as_ref();
        let len = *b
            .get(dr_field::LEN)
            .ok_or(FormatError::Truncated("directory record"))? as usize;
        if len < DIR_RECORD_MIN {
            return Err(FormatError::Invalid(
                "directory record shorter than 33 bytes",
            ));
        }
        if len > b.len() {
            return Err(FormatError::Invalid(
                "directory record runs past its sector",
            ));
        }
        let name_len = b[dr_field::NAME_LEN] as usize;
        if name_len == 0 {
            return Err(FormatError::Invalid(
                "directory record with an empty identifier",
            ));
        }
        if DIR_RECORD_MIN + name_len > len {
            return Err(FormatError::Invalid(
                "directory record identifier past its end",
            ));
        }
        Ok(DirRecordPacket { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The record length.
    pub fn len(&self) -> usize {
        self.b()[dr_field::LEN] as usize
    }

    /// The identifier (file name, or `\0` / `\1` for `.` and `..`).
    pub fn name(&self) -> &[u8] {
        let n = self.b()[dr_field::NAME_LEN] as usize;
        &self.b()[dr_field::NAME..dr_field::NAME + n]
    }

    /// The system use area (SUSP entries), after the identifier and its
    /// padding byte.
    pub fn system_use(&self) -> &[u8] {
        let n = self.b()[dr_field::NAME_LEN] as usize;
        let start = dr_field::NAME + n + (1 - n % 2);
        let end = self.len();
        self.b().get(start..end).unwrap_or(&[])
    }
}

/// A parsed directory record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirRecordRepr {
    /// Extended attribute record length, in logical blocks.
    pub xar_len: u8,
    /// First logical block of the extent.
    pub extent: u32,
    /// Data length in bytes.
    pub size: u32,
    /// The recording date, converted to UTC.
    pub recorded: Timespec,
    pub flags: u8,
    /// Interleaving (file unit size, gap size); (0, 0) when not interleaved.
    pub unit_size: u8,
    pub gap: u8,
}

impl DirRecordRepr {
    /// Parses the fixed part of a record.
    pub fn parse<T: AsRef<[u8]>>(p: &DirRecordPacket<T>) -> Result<DirRecordRepr, FormatError> {
        let b = p.b();
        let extent = both32(b, dr_field::EXTENT, "directory record extent location")?;
        let size = both32(b, dr_field::SIZE, "directory record data length")?;
        let mut date = [0u8; 7];
        date.copy_from_slice(&b[dr_field::DATE]);
        Ok(DirRecordRepr {
            xar_len: b[dr_field::XAR_LEN],
            extent,
            size,
            recorded: short_date(&date),
            flags: b[dr_field::FLAGS],
            unit_size: b[dr_field::UNIT_SIZE],
            gap: b[dr_field::GAP],
        })
    }

    /// Whether the directory flag is set.
    pub fn is_dir(&self) -> bool {
        self.flags & flags::DIRECTORY != 0
    }

    /// Whether more records of the same file follow (multi-extent).
    pub fn is_multi_extent(&self) -> bool {
        self.flags & flags::MULTI_EXTENT != 0
    }

    /// Length of a record carrying an identifier of `name_len` bytes and
    /// `su_len` bytes of system use.
    pub fn buffer_len(name_len: usize, su_len: usize) -> usize {
        DIR_RECORD_MIN + name_len + (1 - name_len % 2) + su_len
    }

    /// Writes a record with identifier `name` and system use `su` into
    /// `buf` (at least [`Self::buffer_len`] bytes); returns its length.
    /// The recording date is written as 1970-01-01 plus `recorded` seconds
    /// must be representable; only the fields we read are filled in.
    pub fn emit(&self, name: &[u8], su: &[u8], buf: &mut [u8]) -> Result<usize, FormatError> {
        let len = Self::buffer_len(name.len(), su.len());
        if len > 255 || name.is_empty() || name.len() > 222 {
            return Err(FormatError::Invalid("directory record too long"));
        }
        let buf = buf
            .get_mut(..len)
            .ok_or(FormatError::Truncated("directory record"))?;
        buf.fill(0);
        buf[dr_field::LEN] = len as u8;
        buf[dr_field::XAR_LEN] = self.xar_len;
        put_both32(&mut buf[dr_field::EXTENT..], self.extent);
        put_both32(&mut buf[dr_field::SIZE..], self.size);
        buf[dr_field::DATE].copy_from_slice(&emit_short_date(self.recorded));
        buf[dr_field::FLAGS] = self.flags;
        buf[dr_field::UNIT_SIZE] = self.unit_size;
        buf[dr_field::GAP] = self.gap;
        put_both16(&mut buf[28..], 1);
        buf[dr_field::NAME_LEN] = name.len() as u8;
        buf[dr_field::NAME..dr_field::NAME + name.len()].copy_from_slice(name);
        let su_at = len - su.len();
        buf[su_at..].copy_from_slice(su);
        Ok(len)
    }
}

fn put_both32(b: &mut [u8], v: u32) {
    b[..4].copy_from_slice(&v.to_le_bytes());
    b[4..8].copy_from_slice(&v.to_be_bytes());
}

fn put_both16(b: &mut [u8], v: u16) {
    b[..2].copy_from_slice(&v.to_le_bytes());
    b[2..4].copy_from_slice(&v.to_be_bytes());
}

// ---------------------------------------------------------------------------
// Path table records (ECMA-119 9.4)

/// One record of a type L path table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRecordRepr<'a> {
    pub extent: u32,
    /// Number (1-based) of the parent directory's record.
    pub parent: u16,
    pub name: &'a [u8],
}

/// Iterates over a type L path table; yields an error (and then stops) on
/// the first malformed record.
pub struct PathTable<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> PathTable<'a> {
    /// The table in `buf` (exactly `path_table_size` bytes).
    pub fn new(buf: &'a [u8]) -> Self {
        PathTable {
            buf,
            pos: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for PathTable<'a> {
    type Item = Result<PathRecordRepr<'a>, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let b = &self.buf[self.pos..];
        let r = (|| {
            let n = *b
                .first()
                .ok_or(FormatError::Truncated("path table record"))? as usize;
            if n == 0 {
                return Err(FormatError::Invalid("path table record with an empty name"));
            }
            let total = 8 + n + n % 2;
            let rec = b
                .get(..total.min(b.len()))
                .filter(|r| r.len() >= 8 + n)
                .ok_or(FormatError::Truncated("path table record"))?;
            let extent = u32::from_le_bytes([rec[2], rec[3], rec[4], rec[5]]);
            let parent = u16::from_le_bytes([rec[6], rec[7]]);
            if parent == 0 {
                return Err(FormatError::Invalid("path table record with parent 0"));
            }
            Ok((
                PathRecordRepr {
                    extent,
                    parent,
                    name: &rec[8..8 + n],
                },
                total,
            ))
        })();
        match r {
            Ok((rec, total)) => {
                self.pos += total;
                Some(Ok(rec))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Dates (ECMA-119 9.1.5 and 8.4.26.1)

/// Days from 1970-01-01 to the given proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Converts a calendar time with a GMT offset in 15-minute units to UTC.
/// Out-of-range fields are clamped rather than refused: a bad date is not
/// worth an unreadable file.
fn to_utc(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, off: i8) -> i64 {
    let mo = mo.clamp(1, 12);
    let d = d.clamp(1, 31);
    let days = days_from_civil(y, mo, d);
    // ECMA-119 allows -48..=52; writers that record something else
    // (genisoimage does for some dates) get no offset, as on Linux.
    let off = if (-52..=52).contains(&off) {
        off as i64
    } else {
        0
    };
    days * 86400 + h.min(23) as i64 * 3600 + mi.min(59) as i64 * 60 + s.min(60) as i64
        - off * 15 * 60
}

/// The 7-byte date of directory records and RRIP `TF` (short form).
pub fn short_date(b: &[u8; 7]) -> Timespec {
    if b[..6] == [0; 6] {
        return Timespec { sec: 0, nsec: 0 };
    }
    Timespec {
        sec: to_utc(
            1900 + b[0] as i64,
            b[1] as u32,
            b[2] as u32,
            b[3] as u32,
            b[4] as u32,
            b[5] as u32,
            b[6] as i8,
        ),
        nsec: 0,
    }
}

fn emit_short_date(t: Timespec) -> [u8; 7] {
    if t.sec == 0 {
        return [0; 7];
    }
    let days = t.sec.div_euclid(86400);
    let rem = t.sec.rem_euclid(86400);
    // civil_from_days (the inverse of days_from_civil).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    [
        (y - 1900).clamp(0, 255) as u8,
        m as u8,
        d as u8,
        (rem / 3600) as u8,
        (rem / 60 % 60) as u8,
        (rem % 60) as u8,
        0,
    ]
}

/// The 17-byte date (ECMA-119 8.4.26.1: sixteen digits and an offset),
/// used by `TF` with the LONG_FORM flag. All-zero digits mean "not
/// specified".
pub fn long_date(b: &[u8; 17]) -> Timespec {
    let digits = |r: Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as u32;
        }
        Some(v)
    };
    let parsed = (|| {
        Some((
            digits(0..4)?,
            digits(4..6)?,
            digits(6..8)?,
            digits(8..10)?,
            digits(10..12)?,
            digits(12..14)?,
            digits(14..16)?,
        ))
    })();
    match parsed {
        Some((0, ..)) | None => Timespec { sec: 0, nsec: 0 },
        Some((y, mo, d, h, mi, s, cs)) => Timespec {
            sec: to_utc(y as i64, mo, d, h, mi, s, b[16] as i8),
            nsec: cs.min(99) * 10_000_000,
        },
    }
}

// ---------------------------------------------------------------------------
// SUSP entries (SUSP 1.12 section 4)

/// One System Use entry: a two-letter signature, a version and its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuspEntry<'a> {
    pub sig: [u8; 2],
    pub version: u8,
    pub data: &'a [u8],
}

/// Iterates over the entries of one system use area or continuation area.
/// Stops at `ST`, at the end, or at fewer than four bytes left (padding);
/// a length field that is below 4 or runs past the area is an error.
pub struct SuspIter<'a> {
    buf: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> SuspIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        SuspIter {
            buf,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for SuspIter<'a> {
    type Item = Result<SuspEntry<'a>, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        if rest.len() < 4 || rest[0] == 0 {
            // Padding to the end of the record (a zero byte cannot start
            // a signature).
            self.done = true;
            return None;
        }
        let len = rest[2] as usize;
        if len < 4 || len > rest.len() {
            self.done = true;
            return Some(Err(FormatError::Invalid("SUSP entry length out of range")));
        }
        let e = SuspEntry {
            sig: [rest[0], rest[1]],
            version: rest[3],
            data: &rest[4..len],
        };
        self.pos += len;
        if &e.sig == b"ST" {
            self.done = true;
            return None;
        }
        Some(Ok(e))
    }
}

/// A `CE` entry: where the system use area continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Continuation {
    pub block: u32,
    pub offset: u32,
    pub len: u32,
}

/// The `SP` entry's check bytes and skip length (SUSP 5.3), if `e` is a
/// valid `SP`.
pub fn parse_sp(e: &SuspEntry<'_>) -> Option<u8> {
    (&e.sig == b"SP" && e.data.len() >= 3 && e.data[0] == 0xBE && e.data[1] == 0xEF)
        .then(|| e.data[2])
}

/// Parses a `CE` entry (SUSP 5.1).
pub fn parse_ce(e: &SuspEntry<'_>) -> Result<Continuation, FormatError> {
    Ok(Continuation {
        block: both32(e.data, 0, "CE block")?,
        offset: both32(e.data, 8, "CE offset")?,
        len: both32(e.data, 16, "CE length")?,
    })
}

/// Symbolic-link component flags (RRIP 4.1.3.1).
mod sl {
    pub const CONTINUE: u8 = 1;
    pub const CURRENT: u8 = 2;
    pub const PARENT: u8 = 4;
    pub const ROOT: u8 = 8;
}

/// Name flags (RRIP 4.1.4).
mod nm {
    pub const CONTINUE: u8 = 1;
    pub const CURRENT: u8 = 2;
    pub const PARENT: u8 = 4;
}

/// `TF` flags (RRIP 4.1.6).
mod tf {
    pub const CREATION: u8 = 1;
    pub const MODIFY: u8 = 2;
    pub const ACCESS: u8 = 4;
    pub const ATTRIBUTES: u8 = 8;
    pub const LONG_FORM: u8 = 0x80;
}

/// Longest symlink target or name we assemble from Rock Ridge pieces
/// (`PATH_MAX`): a bound on what a hostile image can make us allocate.
pub const RR_MAX: usize = 4096;

/// What the Rock Ridge entries of one directory record say, collected
/// over its system use area and continuation areas.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RockRidge {
    /// `PX`: mode, links, uid, gid, and the file serial number (RRIP 1.12).
    pub mode: Option<u32>,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub serial: Option<u32>,
    /// `PN`: device number (high, low).
    pub rdev: Option<(u32, u32)>,
    /// `NM`: the alternate name, when complete.
    pub name: Option<alloc::vec::Vec<u8>>,
    /// `NM` flagged CURRENT or PARENT (names `.` / `..`).
    pub name_is_dot: bool,
    /// `SL`: the symlink target assembled from components.
    pub link: Option<alloc::vec::Vec<u8>>,
    /// Whether the last SL component asked to be continued.
    link_open_component: bool,
    /// Whether the last SL entry asked to be continued.
    link_continues: bool,
    name_continues: bool,
    /// `CL`: the relocated directory's extent.
    pub child_link: Option<u32>,
    /// `PL`: the real parent's extent (in a relocated directory's `..`).
    pub parent_link: Option<u32>,
    /// `RE`: this record is a relocated directory, hidden here.
    pub relocated: bool,
    pub mtime: Option<Timespec>,
    pub atime: Option<Timespec>,
    pub ctime: Option<Timespec>,
    /// Whether any RRIP entry was seen.
    pub any: bool,
}

impl RockRidge {
    /// Adds one SUSP entry. Unknown signatures are ignored (SUSP 4: a
    /// receiver skips what it does not know).
    pub fn add(&mut self, e: &SuspEntry<'_>) -> Result<(), FormatError> {
        match &e.sig {
            b"PX" => {
                self.mode = Some(both32_le(e.data, 0, "PX mode")?);
                self.nlink = both32_le(e.data, 8, "PX links")?;
                self.uid = both32_le(e.data, 16, "PX uid")?;
                self.gid = both32_le(e.data, 24, "PX gid")?;
                if e.data.len() >= 40 {
                    self.serial = Some(both32_le(e.data, 32, "PX serial")?);
                }
            }
            b"PN" => {
                let hi = both32_le(e.data, 0, "PN high")?;
                let lo = both32_le(e.data, 8, "PN low")?;
                self.rdev = Some((hi, lo));
            }
            b"NM" => {
                let f = *e.data.first().ok_or(FormatError::Truncated("NM"))?;
                if f & (nm::CURRENT | nm::PARENT) != 0 {
                    self.name_is_dot = true;
                } else {
                    let name = self.name.get_or_insert_with(alloc::vec::Vec::new);
                    if !self.name_continues && !name.is_empty() {
                        // A second, unrelated NM: the first one wins.
                        return Ok(());
                    }
                    if name.len() + e.data.len() - 1 > RR_MAX {
                        return Err(FormatError::Invalid("NM name too long"));
                    }
                    name.extend_from_slice(&e.data[1..]);
                    self.name_continues = f & nm::CONTINUE != 0;
                }
            }
            b"SL" => self.add_sl(e.data)?,
            b"CL" => self.child_link = Some(both32(e.data, 0, "CL location")?),
            b"PL" => self.parent_link = Some(both32(e.data, 0, "PL location")?),
            b"RE" => self.relocated = true,
            b"TF" => self.add_tf(e.data)?,
            b"RR" | b"SF" | b"ZF" => {}
            _ => return Ok(()),
        }
        self.any = true;
        Ok(())
    }

    fn add_sl(&mut self, d: &[u8]) -> Result<(), FormatError> {
        let f = *d.first().ok_or(FormatError::Truncated("SL"))?;
        if self.link.is_some() && !self.link_continues {
            return Err(FormatError::Invalid(
                "SL: a second symlink entry without CONTINUE",
            ));
        }
        let link = self.link.get_or_insert_with(alloc::vec::Vec::new);
        let mut comps = &d[1..];
        while !comps.is_empty() {
            if comps.len() < 2 {
                return Err(FormatError::Invalid("SL component header truncated"));
            }
            let (cf, cl) = (comps[0], comps[1] as usize);
            let content = comps
                .get(2..2 + cl)
                .ok_or(FormatError::Invalid("SL component length past the entry"))?;
            let special = cf & (sl::CURRENT | sl::PARENT | sl::ROOT);
            if special != 0 && (cl != 0 || special.count_ones() != 1 || cf & sl::CONTINUE != 0) {
                return Err(FormatError::Invalid("SL component flags inconsistent"));
            }
            // A new component is separated by '/', unless the previous one
            // was a root or continues into this one.
            if !self.link_open_component && !link.is_empty() && link != b"/" {
                link.push(b'/');
            }
            match special {
                sl::CURRENT => link.push(b'.'),
                sl::PARENT => link.extend_from_slice(b".."),
                sl::ROOT => {
                    if !link.is_empty() {
                        return Err(FormatError::Invalid("SL root component not first"));
                    }
                    link.push(b'/');
                }
                _ => link.extend_from_slice(content),
            }
            if link.len() > RR_MAX {
                return Err(FormatError::Invalid("SL target too long"));
            }
            self.link_open_component = cf & sl::CONTINUE != 0;
            comps = &comps[2 + cl..];
        }
        self.link_continues = f & sl::CONTINUE != 0;
        Ok(())
    }

    fn add_tf(&mut self, d: &[u8]) -> Result<(), FormatError> {
        let f = *d.first().ok_or(FormatError::Truncated("TF"))?;
        let long = f & tf::LONG_FORM != 0;
        let w = if long { 17 } else { 7 };
        let mut at = 1;
        for bit in 0..7u8 {
            if f & (1 << bit) == 0 {
                continue;
            }
            let s = d
                .get(at..at + w)
                .ok_or(FormatError::Invalid("TF entry shorter than its flags say"))?;
            let t = if long {
                let mut a = [0u8; 17];
                a.copy_from_slice(s);
                long_date(&a)
            } else {
                let mut a = [0u8; 7];
                a.copy_from_slice(s);
                short_date(&a)
            };
            match 1 << bit {
                tf::MODIFY => self.mtime = Some(t),
                tf::ACCESS => self.atime = Some(t),
                tf::ATTRIBUTES => self.ctime = Some(t),
                tf::CREATION => {}
                _ => {}
            }
            at += w;
        }
        Ok(())
    }

    /// Checks what must hold once every piece was seen: no SL or NM left
    /// waiting for a continuation.
    pub fn finish(&mut self) -> Result<(), FormatError> {
        if self.link.is_some() && (self.link_continues || self.link_open_component) {
            return Err(FormatError::Invalid("SL: symlink target never completed"));
        }
        if self.name_continues {
            // Linux takes the name as far as it goes; so do we.
            self.name_continues = false;
        }
        if self.name.as_ref().is_some_and(|n| n.is_empty()) {
            self.name = None;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Names

/// The name of a plain ISO 9660 identifier as Linux shows it with
/// `map=normal`: the version (`;1`) and a trailing dot dropped, lower case.
/// With `map=off` (`lower == false`), only the identifier as recorded.
pub fn iso_name(id: &[u8], map_normal: bool, out: &mut alloc::vec::Vec<u8>) {
    out.clear();
    if !map_normal {
        out.extend_from_slice(id);
        return;
    }
    let mut n = id;
    if let Some(i) = n.iter().rposition(|&c| c == b';') {
        n = &n[..i];
    }
    if n.len() > 1 && n.last() == Some(&b'.') {
        n = &n[..n.len() - 1];
    }
    out.extend(n.iter().map(|c| c.to_ascii_lowercase()));
}

/// A Joliet identifier (UCS-2 big-endian, SVD escape sequences) as UTF-8,
/// the version (`;1`) dropped. Unpaired surrogates and odd lengths become
/// U+FFFD.
pub fn joliet_name(id: &[u8], out: &mut alloc::vec::Vec<u8>) {
    out.clear();
    let units = id.chunks(2).map(|c| {
        if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            0xFFFD
        }
    });
    let mut tmp = [0u8; 4];
    for ch in char::decode_utf16(units) {
        let ch = ch.unwrap_or(char::REPLACEMENT_CHARACTER);
        // A '/' cannot be part of a name here.
        let ch = if ch == '/' || ch == '\0' { '_' } else { ch };
        out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
    }
    if let Some(i) = out.iter().rposition(|&c| c == b';') {
        if out[i + 1..].iter().all(u8::is_ascii_digit) {
            out.truncate(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn record(name: &[u8], su: &[u8], flags: u8) -> Vec<u8> {
        let r = DirRecordRepr {
            xar_len: 0,
            extent: 20,
            size: 2048,
            recorded: Timespec {
                sec: 1_700_000_000,
                nsec: 0,
            },
            flags,
            unit_size: 0,
            gap: 0,
        };
        let mut b = vec![0u8; 255];
        let n = r.emit(name, su, &mut b).unwrap();
        b.truncate(n);
        b
    }

    #[test]
    fn dir_record_round_trip() {
        let b = record(b"FILE.TXT;1", b"RE\x04\x01", 0);
        let p = DirRecordPacket::new_checked(&b[..]).unwrap();
        let r = DirRecordRepr::parse(&p).unwrap();
        assert_eq!(r.extent, 20);
        assert_eq!(r.size, 2048);
        assert_eq!(r.recorded.sec, 1_700_000_000);
        assert_eq!(p.name(), b"FILE.TXT;1");
        assert_eq!(p.system_use(), b"RE\x04\x01");
    }

    #[test]
    fn dir_record_bad_lengths() {
        let b = record(b"A", b"", 0);
        for cut in 0..b.len() {
            assert!(
                DirRecordPacket::new_checked(&b[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut bad = b.clone();
        bad[0] = 10;
        assert!(DirRecordPacket::new_checked(&bad[..]).is_err());
        let mut bad = b.clone();
        bad[32] = 200;
        assert!(DirRecordPacket::new_checked(&bad[..]).is_err());
        let mut bad = b.clone();
        bad[5] ^= 1; // the big-endian half of the extent disagrees
        let p = DirRecordPacket::new_checked(&bad[..]).unwrap();
        assert!(DirRecordRepr::parse(&p).is_err());
    }

    #[test]
    fn dates() {
        // 2000-01-01 00:00:00 at GMT+1 is 1999-12-31 23:00 UTC.
        let t = short_date(&[100, 1, 1, 0, 0, 0, 4]);
        assert_eq!(t.sec, 946_684_800 - 3600);
        let t = long_date(b"2000010100000050\0");
        assert_eq!((t.sec, t.nsec), (946_684_800, 500_000_000));
        assert_eq!(long_date(b"0000000000000000\0").sec, 0);
        assert_eq!(long_date(b"20x0010100000050\0").sec, 0);
        let t = Timespec {
            sec: 1_234_567_890,
            nsec: 0,
        };
        assert_eq!(short_date(&emit_short_date(t)), t);
    }

    #[test]
    fn susp_iteration_and_errors() {
        let area = b"PX\x24\x01AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHHRE\x04\x01ST\x04\x01ZZ\x04\x01";
        let v: Vec<_> = SuspIter::new(area).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].unwrap().sig, *b"RE");
        let bad = b"PX\x03\x01";
        assert!(SuspIter::new(bad).next().unwrap().is_err());
        let bad = b"PX\x40\x01abcd";
        assert!(SuspIter::new(bad).next().unwrap().is_err());
        assert_eq!(SuspIter::new(b"\0\0\0").count(), 0);
    }

    fn entry<'a>(sig: &[u8; 2], data: &'a [u8]) -> SuspEntry<'a> {
        SuspEntry {
            sig: *sig,
            version: 1,
            data,
        }
    }

    #[test]
    fn symlink_components() {
        let mut rr = RockRidge::default();
        // "/usr/lo" + continued "cal/../x"
        rr.add(&entry(b"SL", b"\x01\x08\x00\x00\x03usr\x01\x02lo"))
            .unwrap();
        rr.add(&entry(b"SL", b"\x00\x00\x03cal\x04\x00\x00\x01x"))
            .unwrap();
        rr.finish().unwrap();
        assert_eq!(rr.link.as_deref(), Some(&b"/usr/local/../x"[..]));

        let mut rr = RockRidge::default();
        rr.add(&entry(b"SL", b"\x00\x02\x00\x00\x01a")).unwrap();
        rr.finish().unwrap();
        assert_eq!(rr.link.as_deref(), Some(&b"./a"[..]));

        // Inconsistent: a CURRENT component with content; a length past
        // the entry; a target left open.
        let mut rr = RockRidge::default();
        assert!(rr.add(&entry(b"SL", b"\x00\x02\x01x")).is_err());
        assert!(RockRidge::default()
            .add(&entry(b"SL", b"\x00\x00\x09ab"))
            .is_err());
        let mut rr = RockRidge::default();
        rr.add(&entry(b"SL", b"\x01\x00\x01a")).unwrap();
        assert!(rr.finish().is_err());
    }

    #[test]
    fn names_and_times() {
        let mut rr = RockRidge::default();
        rr.add(&entry(b"NM", b"\x01long-")).unwrap();
        rr.add(&entry(b"NM", b"\x00name")).unwrap();
        rr.add(&entry(
            b"TF",
            b"\x06\x64\x01\x01\x00\x00\x00\x00\x64\x01\x01\x00\x00\x01\x00",
        ))
        .unwrap();
        rr.finish().unwrap();
        assert_eq!(rr.name.as_deref(), Some(&b"long-name"[..]));
        assert_eq!(rr.mtime.unwrap().sec, 946_684_800);
        assert_eq!(rr.atime.unwrap().sec, 946_684_801);
        assert!(RockRidge::default()
            .add(&entry(b"TF", b"\x06\x64"))
            .is_err());
        let mut out = Vec::new();
        iso_name(b"README.TXT;1", true, &mut out);
        assert_eq!(out, b"readme.txt");
        iso_name(b"DIR.", true, &mut out);
        assert_eq!(out, b"dir");
        joliet_name(b"\x00M\x00i\x00x\x00e\x00d\x00;\x001", &mut out);
        assert_eq!(out, b"Mixed");
        joliet_name(b"\xd8\x00\x00a\x00", &mut out);
        assert_eq!(core::str::from_utf8(&out).unwrap(), "\u{fffd}a\u{fffd}");
    }

    #[test]
    fn path_table_records() {
        let t = b"\x01\x00\x14\x00\x00\x00\x01\x00\x00\x00\x03\x00\x15\x00\x00\x00\x01\x00DIR\x00";
        let v: Vec<_> = PathTable::new(t).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].as_ref().unwrap().name, b"DIR");
        assert_eq!(v[1].as_ref().unwrap().extent, 0x15);
        let v: Vec<_> = PathTable::new(&t[..14]).collect();
        assert!(v[1].is_err());
    }

    #[test]
    fn descriptor_checks() {
        let mut s = vec![0u8; SECTOR];
        assert!(DescriptorPacket::new_checked(&s[..]).is_err());
        s[1..6].copy_from_slice(STANDARD_ID);
        s[0] = 1;
        let p = DescriptorPacket::new_checked(&s[..]).unwrap();
        assert_eq!(p.kind(), DescriptorType::Primary);
        // Block size 0: refused.
        assert!(VolumeRepr::parse(&p).is_err());
        assert!(DescriptorPacket::new_checked(&s[..100]).is_err());
    }
}
