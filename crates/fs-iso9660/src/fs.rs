//! The mounted state of an ISO 9660 volume: the volume descriptors it was
//! mounted from, the naming scheme in force (Rock Ridge, Joliet or plain
//! ISO 9660), device reads, and the cache of parsed directories.
//!
//! Directories are parsed whole into a [`Dir`] (its own attributes from
//! its `.` record, its parent, and its entries with multi-extent files
//! joined, relocated directories resolved and hidden ones dropped) and
//! kept in a cache behind a [`SleepRwLock`]. No lock is held during device
//! I/O: a miss reads and parses without the lock, then inserts (two
//! threads missing the same directory both parse it; the second insert
//! is a no-op). Bounds on everything a hostile image controls: directory
//! size, continuation-area hops, name and symlink lengths, extents per
//! file.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use dev_blk::{BlockDevice, Claim, SECTOR_SIZE};
use hyper::{Errno, Hyper, Timespec};
use kern::consts::s;
use kern::sync::{Sched, SleepRwLock};
use kern::vfs::NodeKind;

use crate::format::{
    self, flags, Continuation, DescriptorPacket, DescriptorType, DirRecordPacket, DirRecordRepr,
    FormatError, RockRidge, SuspIter, VolumeRepr, SECTOR,
};
use crate::Options;

/// Largest directory we parse (a hostile size field must not make us
/// allocate gigabytes). Real directories of 100,000 Rock Ridge entries
/// stay well below it.
pub const MAX_DIR_BYTES: u64 = 64 << 20;
/// Most continuation areas followed for one directory record (`CE`
/// chains; a loop ends here).
pub const MAX_CE_HOPS: usize = 32;
/// Most directory records (extents) one multi-extent file may have: 8 TiB
/// of 4 GiB extents.
pub const MAX_EXTENTS: usize = 2048;
/// Bytes of parsed directories kept in the cache before it is emptied.
pub const DIR_CACHE_BYTES: usize = 32 << 20;
/// Volume descriptors read before giving up on a terminator.
const MAX_DESCRIPTORS: u64 = 64;

/// Which names and attributes the volume is read with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// Rock Ridge on the primary tree; `skip` is the SUSP `LEN_SKP`.
    RockRidge { skip: u8 },
    /// Joliet names from the supplementary descriptor's tree.
    Joliet,
    /// Plain ISO 9660 identifiers.
    Plain,
}

/// Attributes of a file, as `getattr` reports them (without `dev`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: NodeKind,
    pub perm: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

/// One extent of a file: where its bytes are on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Byte offset of the data (after any extended attribute record).
    pub start: u64,
    pub len: u64,
}

/// What a directory entry refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A directory: its extent (block) and size.
    Dir {
        extent: u32,
        size: u32,
    },
    /// A regular file's extents, in order; `interleaved` files are listed
    /// but reading them fails.
    File {
        extents: Vec<Extent>,
        interleaved: bool,
    },
    Symlink(Vec<u8>),
    /// Fifos, sockets and device nodes (no data).
    Special,
}

/// One entry of a parsed directory.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: Vec<u8>,
    pub ino: u64,
    pub kind: NodeKind,
    /// Attributes (for directories, those of the parent's record; nodes
    /// take a directory's attributes from its own `.` record).
    pub attr: Attr,
    pub target: Target,
}

/// A parsed directory.
#[derive(Debug)]
pub struct Dir {
    /// From the `.` record.
    pub attr: Attr,
    /// The parent directory (extent, size): `..`, or `PL` when relocated.
    pub parent: (u32, u32),
    pub entries: Vec<Entry>,
}

impl Dir {
    fn approx_bytes(&self) -> usize {
        64 + self
            .entries
            .iter()
            .map(|e| 160 + e.name.len())
            .sum::<usize>()
    }
}

#[derive(Default)]
struct DirCache {
    dirs: BTreeMap<u32, Arc<Dir>>,
    bytes: usize,
}

/// One mounted volume.
pub struct IsoFs {
    dev: Arc<dyn BlockDevice>,
    hyper: Arc<dyn Hyper>,
    pub name: String,
    /// Logical block size.
    pub bs: u64,
    pub dev_bytes: u64,
    pub naming: Naming,
    pub opts: Options,
    /// Root directory (extent, size) of the tree in use.
    pub root: (u32, u32),
    /// Logical blocks in the volume (from the primary descriptor).
    pub space_size: u32,
    cache: SleepRwLock<DirCache>,
    _claim: Option<Claim>,
}

/// What the volume descriptors say, before choosing a tree.
struct Descriptors {
    primary: VolumeRepr,
    joliet: Option<VolumeRepr>,
}

impl IsoFs {
    /// Reads the volume descriptors and the root directory of `dev`.
    pub fn open(
        dev: Arc<dyn BlockDevice>,
        claim: Option<Claim>,
        hyper: Arc<dyn Hyper>,
        sched: &Arc<Sched>,
        name: &str,
        opts: Options,
    ) -> Result<IsoFs, Errno> {
        let mut fs = IsoFs {
            dev_bytes: dev.size_bytes(),
            dev,
            hyper,
            name: String::from(name),
            bs: 2048,
            naming: Naming::Plain,
            opts,
            root: (0, 0),
            space_size: 0,
            cache: SleepRwLock::new(sched, DirCache::default()),
            _claim: claim,
        };
        let d = fs.descriptors()?;
        fs.bs = d.primary.block_size as u64;
        fs.space_size = d.primary.space_size;
        if d.primary.space_size as u64 * fs.bs > fs.dev_bytes {
            fs.log(&format!(
                "warning: volume of {} blocks is larger than the device ({} bytes): truncated image",
                d.primary.space_size, fs.dev_bytes
            ));
        }
        let proot = (d.primary.root.extent, d.primary.root.size);
        // Rock Ridge: an SP entry at the start of the root's "." record
        // (SUSP 5.3).
        let skip = if fs.opts.norock {
            None
        } else {
            fs.root_sp(proot.0)?
        };
        match (skip, &d.joliet) {
            (Some(skip), _) => {
                fs.naming = Naming::RockRidge { skip };
                fs.root = proot;
            }
            (None, Some(j)) if !fs.opts.nojoliet => {
                if j.block_size as u64 != fs.bs {
                    return Err(
                        fs.corrupt("Joliet descriptor's block size differs from the primary's")
                    );
                }
                fs.naming = Naming::Joliet;
                fs.root = (j.root.extent, j.root.size);
            }
            _ => {
                fs.naming = Naming::Plain;
                fs.root = proot;
            }
        }
        // Parse the root now: a volume whose root cannot be read is not
        // worth mounting.
        fs.dir(fs.root.0, fs.root.1)?;
        Ok(fs)
    }

    /// Writes a line to the console.
    pub fn log(&self, msg: &str) {
        let line = format!("[rump] iso9660: {}: {msg}\n", self.name);
        self.hyper.console_write(line.as_bytes());
    }

    /// Logs a corruption and returns the errno for it.
    pub fn corrupt(&self, msg: &str) -> Errno {
        self.log(msg);
        Errno::EUCLEAN
    }

    fn format_err(&self, what: &str, e: FormatError) -> Errno {
        self.corrupt(&format!("{what}: {e}"))
    }

    /// Reads `buf.len()` bytes at byte `off`. Past the end of the device
    /// is `EIO` with a log line.
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let end = off.checked_add(buf.len() as u64).ok_or(Errno::EIO)?;
        if end > self.dev_bytes {
            self.log(&format!(
                "read of {} bytes at {off} is past the end of the device ({} bytes)",
                buf.len(),
                self.dev_bytes
            ));
            return Err(Errno::EIO);
        }
        let ss = SECTOR_SIZE as u64;
        if off.is_multiple_of(ss) && (buf.len() as u64).is_multiple_of(ss) {
            self.dev.read_blocks(off / ss, buf)
        } else {
            dev_blk::read_bytes(&*self.dev, off, buf)
        }
    }

    fn descriptors(&self) -> Result<Descriptors, Errno> {
        let mut primary = None;
        let mut joliet = None;
        let mut sector = vec![0u8; SECTOR];
        for n in 0..MAX_DESCRIPTORS {
            let off = (format::FIRST_DESCRIPTOR + n) * SECTOR as u64;
            if off + SECTOR as u64 > self.dev_bytes {
                break;
            }
            self.read_at(off, &mut sector)?;
            let Ok(p) = DescriptorPacket::new_checked(&sector[..]) else {
                // Not part of the descriptor set: it ended without a
                // terminator (Linux reads on as long as CD001 is there).
                break;
            };
            match p.kind() {
                DescriptorType::Terminator => break,
                DescriptorType::Primary if primary.is_none() => {
                    let v = VolumeRepr::parse(&p)
                        .map_err(|e| self.format_err("primary volume descriptor", e))?;
                    primary = Some(v);
                }
                DescriptorType::Supplementary if joliet.is_none() && p.is_joliet() => {
                    // A bad Joliet descriptor costs only the Joliet names.
                    match VolumeRepr::parse(&p) {
                        Ok(v) => joliet = Some(v),
                        Err(e) => self.log(&format!("ignoring Joliet descriptor: {e}")),
                    }
                }
                _ => {}
            }
        }
        let primary = primary.ok_or_else(|| self.corrupt("no primary volume descriptor"))?;
        Ok(Descriptors { primary, joliet })
    }

    /// The `LEN_SKP` of the SP entry opening the root's "." record.
    fn root_sp(&self, root: u32) -> Result<Option<u8>, Errno> {
        let mut sector = vec![0u8; SECTOR];
        self.read_at(self.block_offset(root)?, &mut sector)?;
        let p = DirRecordPacket::new_checked(&sector[..])
            .map_err(|e| self.format_err("root directory", e))?;
        Ok(match SuspIter::new(p.system_use()).next() {
            Some(Ok(e)) => format::parse_sp(&e),
            _ => None,
        })
    }

    fn block_offset(&self, block: u32) -> Result<u64, Errno> {
        let off = block as u64 * self.bs;
        if off >= self.dev_bytes {
            return Err(self.corrupt(&format!(
                "block {block} is beyond the end of the device ({} bytes)",
                self.dev_bytes
            )));
        }
        Ok(off)
    }

    /// Inode number of a directory: the byte offset of its extent (where
    /// its "." record is).
    pub fn dir_ino(&self, extent: u32) -> u64 {
        extent as u64 * self.bs
    }

    /// The parsed directory at `extent`, from the cache or the device.
    pub fn dir(&self, extent: u32, size: u32) -> Result<Arc<Dir>, Errno> {
        if let Some(d) = self.cache.read().dirs.get(&extent) {
            return Ok(d.clone());
        }
        let d = Arc::new(self.parse_dir(extent, size)?);
        let mut c = self.cache.write();
        if c.bytes + d.approx_bytes() > DIR_CACHE_BYTES {
            c.dirs.clear();
            c.bytes = 0;
        }
        if let Some(old) = c.dirs.get(&extent) {
            return Ok(old.clone());
        }
        c.bytes += d.approx_bytes();
        c.dirs.insert(extent, d.clone());
        Ok(d)
    }

    /// Reads the directory at `extent` of `size` bytes and parses every
    /// record.
    fn parse_dir(&self, extent: u32, size: u32) -> Result<Dir, Errno> {
        let size = size as u64;
        let start = self.block_offset(extent)?;
        if size < 2 * format::DIR_RECORD_MIN as u64 {
            return Err(self.corrupt(&format!(
                "directory at block {extent}: size {size} cannot hold '.' and '..'"
            )));
        }
        if size > MAX_DIR_BYTES {
            return Err(self.corrupt(&format!(
                "directory at block {extent}: size {size} is larger than we accept ({MAX_DIR_BYTES})"
            )));
        }
        if start + size > self.dev_bytes {
            return Err(self.corrupt(&format!(
                "directory at block {extent}: its {size} bytes run past the end of the device"
            )));
        }
        let mut data = vec![0u8; size.div_ceil(SECTOR as u64) as usize * SECTOR];
        let readable = (self.dev_bytes - start).min(data.len() as u64) as usize;
        self.read_at(start, &mut data[..readable])?;
        data.truncate(size as usize);

        let mut b = DirBuilder {
            fs: self,
            extent,
            self_attr: None,
            parent: None,
            entries: Vec::new(),
            pending: None,
            name: Vec::new(),
        };
        let mut pos = 0usize;
        while pos < data.len() {
            let sector_end = ((pos / SECTOR + 1) * SECTOR).min(data.len());
            if data[pos] == 0 {
                // The rest of this sector is padding (ECMA-119 6.8.1.1:
                // records do not cross sector boundaries).
                pos = sector_end;
                continue;
            }
            let rec_off = start + pos as u64;
            let p = DirRecordPacket::new_checked(&data[pos..sector_end]).map_err(|e| {
                self.format_err(&format!("directory at block {extent}, offset {pos}"), e)
            })?;
            let len = p.len();
            b.record(&p, rec_off)?;
            pos += len;
        }
        b.finish()
    }

    /// Collects the SUSP entries of a record (following `CE`) into the
    /// Rock Ridge summary.
    fn rock_ridge(&self, su: &[u8], skip: u8) -> Result<RockRidge, Errno> {
        let mut rr = RockRidge::default();
        let su = su.get(skip as usize..).unwrap_or(&[]);
        let mut next = self.rr_area(su, &mut rr)?;
        let mut hops = 0;
        let mut area = Vec::new();
        while let Some(ce) = next {
            hops += 1;
            if hops > MAX_CE_HOPS {
                return Err(self.corrupt(&format!(
                    "more than {MAX_CE_HOPS} continuation areas (a CE loop?)"
                )));
            }
            if ce.len as u64 > self.bs || ce.offset as u64 + ce.len as u64 > self.bs {
                return Err(self.corrupt(&format!(
                    "continuation area at block {} offset {} length {} leaves its block",
                    ce.block, ce.offset, ce.len
                )));
            }
            let off = self.block_offset(ce.block)? + ce.offset as u64;
            area.resize(ce.len as usize, 0);
            self.read_at(off, &mut area)?;
            next = self.rr_area(&area, &mut rr)?;
        }
        rr.finish()
            .map_err(|e| self.format_err("Rock Ridge entries", e))?;
        Ok(rr)
    }

    fn rr_area(&self, area: &[u8], rr: &mut RockRidge) -> Result<Option<Continuation>, Errno> {
        let mut ce = None;
        for e in SuspIter::new(area) {
            let e = e.map_err(|e| self.format_err("system use area", e))?;
            if &e.sig == b"CE" {
                // At most one CE per area (SUSP 5.1); the last one wins.
                ce = Some(format::parse_ce(&e).map_err(|e| self.format_err("CE entry", e))?);
                continue;
            }
            rr.add(&e)
                .map_err(|e| self.format_err("Rock Ridge entry", e))?;
        }
        Ok(ce)
    }
}

/// A multi-extent file being assembled.
struct Pending {
    name: Vec<u8>,
    first: Entry,
}

struct DirBuilder<'a> {
    fs: &'a IsoFs,
    extent: u32,
    self_attr: Option<Attr>,
    parent: Option<(u32, u32)>,
    entries: Vec<Entry>,
    pending: Option<Pending>,
    name: Vec<u8>,
}

impl DirBuilder<'_> {
    fn rock(&self) -> Option<u8> {
        match self.fs.naming {
            Naming::RockRidge { skip } => Some(skip),
            _ => None,
        }
    }

    fn record(&mut self, p: &DirRecordPacket<&[u8]>, rec_off: u64) -> Result<(), Errno> {
        let fs = self.fs;
        let ctx = |what: &str| format!("directory at block {}: {what}", self.extent);
        let r = DirRecordRepr::parse(p).map_err(|e| fs.format_err(&ctx("record"), e))?;
        let id = p.name();
        let is_dot = id == b"\0";
        let is_dotdot = id == b"\x01";
        let rr = match self.rock() {
            // The root's "." record carries SP first: no LEN_SKP there.
            Some(skip) => Some(fs.rock_ridge(
                p.system_use(),
                if is_dot && self.self_attr.is_none() && self.extent == fs.root.0 {
                    0
                } else {
                    skip
                },
            )?),
            None => None,
        };
        if self.self_attr.is_none() {
            if !is_dot || !r.is_dir() {
                return Err(fs.corrupt(&ctx("first record is not '.'")));
            }
            if r.extent != self.extent {
                return Err(fs.corrupt(&ctx("'.' record names another extent")));
            }
            self.self_attr = Some(self.attr(&r, rr.as_ref(), fs.dir_ino(self.extent), true)?);
            return Ok(());
        }
        if self.parent.is_none() {
            if !is_dotdot || !r.is_dir() {
                return Err(fs.corrupt(&ctx("second record is not '..'")));
            }
            let parent = match rr.as_ref().and_then(|rr| rr.parent_link) {
                Some(pl) => {
                    // A relocated directory: its real parent's size comes
                    // from that parent's own "." record.
                    let mut sector = vec![0u8; SECTOR];
                    fs.read_at(fs.block_offset(pl)?, &mut sector)?;
                    let pp = DirRecordPacket::new_checked(&sector[..])
                        .map_err(|e| fs.format_err(&ctx("PL target"), e))?;
                    let pr = DirRecordRepr::parse(&pp)
                        .map_err(|e| fs.format_err(&ctx("PL target"), e))?;
                    if pp.name() != b"\0" || pr.extent != pl || !pr.is_dir() {
                        return Err(fs.corrupt(&ctx("PL does not point at a directory")));
                    }
                    (pl, pr.size)
                }
                None => (r.extent, r.size),
            };
            self.parent = Some(parent);
            return Ok(());
        }
        if is_dot || is_dotdot {
            return Err(fs.corrupt(&ctx("a second '.' or '..' record")));
        }
        if r.flags & flags::ASSOCIATED != 0 {
            // Associated files (ECMA-119 9.1.6) are hidden, as on Linux.
            return Ok(());
        }
        // The name.
        let rr_name = rr.as_ref().and_then(|rr| rr.name.clone());
        match (&rr_name, fs.naming) {
            (Some(n), _) => {
                self.name.clear();
                self.name.extend_from_slice(n);
            }
            (None, Naming::Joliet) => format::joliet_name(id, &mut self.name),
            (None, _) => format::iso_name(id, fs.opts.map_normal, &mut self.name),
        }
        for c in self.name.iter_mut() {
            if *c == b'/' || *c == 0 {
                *c = b'_';
            }
        }
        let name = core::mem::take(&mut self.name);

        // Multi-extent files: every record but the last has the flag.
        if self.pending.is_some() {
            let ext = self.extent_of(&r)?;
            let Some(pend) = &mut self.pending else {
                return Ok(());
            };
            if pend.name != name || r.is_dir() {
                return Err(fs.corrupt(&ctx("multi-extent file interrupted by another record")));
            }
            let Target::File { extents, .. } = &mut pend.first.target else {
                return Err(fs.corrupt(&ctx("multi-extent record is not a file")));
            };
            if extents.len() >= MAX_EXTENTS {
                return Err(fs.corrupt(&ctx("multi-extent file with too many extents")));
            }
            extents.push(ext);
            pend.first.attr.size += r.size as u64;
            if !r.is_multi_extent() {
                let done = self.pending.take().map(|p| p.first);
                self.push(done);
            }
            self.name = name;
            return Ok(());
        }
        if let Some(rr) = &rr {
            if rr.relocated {
                // The real location of a relocated directory: shown
                // where its CL points (RRIP 4.1.5.2).
                self.name = name;
                return Ok(());
            }
            if rr.name_is_dot && rr_name.is_none() {
                self.name = name;
                return Ok(());
            }
        }
        if name.is_empty() || name.len() > kern::consts::NAME_MAX || name == b"." || name == b".." {
            fs.log(&ctx(&format!(
                "skipping an entry with an unusable name ({} bytes)",
                name.len()
            )));
            self.name = name;
            return Ok(());
        }
        let child_link = rr.as_ref().and_then(|rr| rr.child_link);
        let entry = if let Some(cl) = child_link {
            self.relocated_dir(cl, name.clone())?
        } else {
            let ino = if r.is_dir() {
                fs.dir_ino(r.extent)
            } else {
                match rr.as_ref().map(|rr| (rr.serial, rr.nlink)) {
                    // RRIP 1.12 file serial numbers: hard links share one.
                    Some((Some(sn), _)) if sn != 0 => (1u64 << 48) | sn as u64,
                    // Without serials, the links of a file with data share
                    // its extent (writers record a hard link once); empty
                    // files may all share one dummy block, so they keep
                    // their record's position.
                    Some((_, n)) if n > 1 && r.size > 0 => (1u64 << 49) | (r.extent as u64 * fs.bs),
                    _ => rec_off,
                }
            };
            let attr = self.attr(&r, rr.as_ref(), ino, r.is_dir())?;
            let target = match attr.kind {
                NodeKind::Directory => {
                    if r.extent == self.extent || Some(r.extent) == self.parent.map(|p| p.0) {
                        return Err(fs.corrupt(&ctx(
                            "a subdirectory names this directory or its parent (a loop)",
                        )));
                    }
                    Target::Dir {
                        extent: r.extent,
                        size: r.size,
                    }
                }
                NodeKind::Regular => Target::File {
                    extents: vec![self.extent_of(&r)?],
                    interleaved: r.unit_size != 0 || r.gap != 0,
                },
                NodeKind::Symlink => match rr.as_ref().and_then(|rr| rr.link.clone()) {
                    Some(l) if !l.is_empty() => Target::Symlink(l),
                    _ => return Err(fs.corrupt(&ctx("symbolic link without an SL target"))),
                },
                _ => Target::Special,
            };
            Entry {
                name: name.clone(),
                ino,
                kind: attr.kind,
                attr,
                target,
            }
        };
        self.name = name;
        if r.is_multi_extent() {
            if entry.kind != NodeKind::Regular {
                return Err(fs.corrupt(&ctx("multi-extent flag on a non-file")));
            }
            self.pending = Some(Pending {
                name: entry.name.clone(),
                first: entry,
            });
        } else {
            self.push(Some(entry));
        }
        Ok(())
    }

    fn push(&mut self, e: Option<Entry>) {
        if let Some(e) = e {
            self.entries.push(e);
        }
    }

    fn extent_of(&self, r: &DirRecordRepr) -> Result<Extent, Errno> {
        let start = (r.extent as u64 + r.xar_len as u64) * self.fs.bs;
        // Extents past the end of the device are listed; reading them
        // fails with EIO (read_at).
        Ok(Extent {
            start,
            len: r.size as u64,
        })
    }

    /// The directory a `CL` entry stands for (RRIP 4.1.5.1): its "."
    /// record gives the attributes, and its ".." must point back here
    /// with `PL`, so that every relocated directory has exactly one
    /// parent and relocation cannot make a loop.
    fn relocated_dir(&self, cl: u32, name: Vec<u8>) -> Result<Entry, Errno> {
        let fs = self.fs;
        if cl == self.extent || Some(cl) == self.parent.map(|p| p.0) {
            return Err(fs.corrupt(&format!(
                "directory at block {}: CL points at itself or its parent (a loop)",
                self.extent
            )));
        }
        let mut sector = vec![0u8; SECTOR];
        fs.read_at(fs.block_offset(cl)?, &mut sector)?;
        let bad = |what: &str| {
            fs.corrupt(&format!(
                "directory at block {}: CL to block {cl}: {what}",
                self.extent
            ))
        };
        let p = DirRecordPacket::new_checked(&sector[..]).map_err(|_| bad("no '.' record"))?;
        let r = DirRecordRepr::parse(&p).map_err(|_| bad("bad '.' record"))?;
        if p.name() != b"\0" || !r.is_dir() || r.extent != cl {
            return Err(bad("not a directory"));
        }
        let dot_len = p.len();
        let p2 =
            DirRecordPacket::new_checked(&sector[dot_len..]).map_err(|_| bad("no '..' record"))?;
        if p2.name() != b"\x01" {
            return Err(bad("no '..' record"));
        }
        let skip = self.rock().unwrap_or(0);
        let rr2 = fs.rock_ridge(p2.system_use(), skip)?;
        if rr2.parent_link != Some(self.extent) {
            return Err(bad("its '..' has no PL pointing back here"));
        }
        let rr = fs.rock_ridge(p.system_use(), skip)?;
        let attr = self.attr(&r, Some(&rr), fs.dir_ino(cl), true)?;
        Ok(Entry {
            name,
            ino: attr.ino,
            kind: NodeKind::Directory,
            attr,
            target: Target::Dir {
                extent: cl,
                size: r.size,
            },
        })
    }

    /// The attributes of a record: Rock Ridge where present, else the
    /// mount options (`uid=`, `gid=`, `mode=`, `dmode=`).
    fn attr(
        &self,
        r: &DirRecordRepr,
        rr: Option<&RockRidge>,
        ino: u64,
        is_dir: bool,
    ) -> Result<Attr, Errno> {
        let fs = self.fs;
        let o = &fs.opts;
        let t = r.recorded;
        let mut a = Attr {
            ino,
            kind: if is_dir {
                NodeKind::Directory
            } else {
                NodeKind::Regular
            },
            perm: if is_dir { o.dmode } else { o.fmode },
            // Without Rock Ridge a directory's link count is unknown: 1
            // tells find(1) not to count subdirectories from it, as
            // Linux's isofs does.
            nlink: 1,
            uid: o.uid,
            gid: o.gid,
            rdev: 0,
            size: r.size as u64,
            atime: t,
            mtime: t,
            ctime: t,
        };
        let Some(rr) = rr else { return Ok(a) };
        if let Some(mode) = rr.mode {
            let kind = NodeKind::from_mode(mode);
            match kind {
                Some(NodeKind::Directory) if is_dir => {}
                Some(k) if !is_dir && k != NodeKind::Directory => a.kind = k,
                Some(NodeKind::Directory) if rr.child_link.is_some() => {}
                _ => {
                    return Err(fs.corrupt(&format!(
                        "directory at block {}: PX mode {mode:#o} disagrees with the record",
                        self.extent
                    )))
                }
            }
            a.perm = mode & s::PERM_MASK;
            a.nlink = rr.nlink.max(1) as u64;
            a.uid = rr.uid;
            a.gid = rr.gid;
        }
        if let Some((hi, lo)) = rr.rdev {
            // RRIP 4.1.2: a 64-bit dev_t recorded as two 32-bit halves;
            // mkisofs and libisofs write the host's dev_t, which is what
            // st_rdev reports.
            a.rdev = ((hi as u64) << 32) | lo as u64;
        }
        if let Some(m) = rr.mtime {
            a.mtime = m;
        }
        if let Some(x) = rr.atime {
            a.atime = x;
        }
        if let Some(c) = rr.ctime {
            a.ctime = c;
        }
        if a.kind == NodeKind::Symlink {
            a.size = rr.link.as_ref().map_or(0, |l| l.len() as u64);
        }
        Ok(a)
    }

    fn finish(self) -> Result<Dir, Errno> {
        let fs = self.fs;
        if self.pending.is_some() {
            return Err(fs.corrupt(&format!(
                "directory at block {}: multi-extent file without its last record",
                self.extent
            )));
        }
        let (Some(attr), Some(parent)) = (self.self_attr, self.parent) else {
            return Err(fs.corrupt(&format!(
                "directory at block {}: no '.' and '..' records",
                self.extent
            )));
        };
        Ok(Dir {
            attr,
            parent,
            entries: self.entries,
        })
    }
}
