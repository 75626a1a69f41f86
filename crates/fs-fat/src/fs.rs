//! The mounted state of a FAT volume ([`Fat`]): geometry, the buffer
//! cache, the allocation table (reading and writing entries of any
//! width, walking cluster chains with loop and range checks, allocating
//! and freeing), the free-cluster count kept in FSInfo, the clean/dirty
//! state, directories (slots, long-name assembly, adding and removing
//! entries) and file data. Everything here runs under the mount lock
//! (see `node`).
//!
//! Cache blocks are logical sectors (`BPB_BytsPerSec` bytes), so the
//! FAT, directories and data all go through one [`BufCache`]; runs of
//! whole sectors of file data move with `read_direct`/`write_direct`,
//! which stay coherent with cached copies.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use dev_blk::cache::BufCache;
use dev_blk::BlockDevice;
use hyper::{Errno, Hyper};

use crate::format::*;
use crate::name;

/// Default buffer-cache budget.
pub const DEFAULT_CACHE_BYTES: usize = 16 << 20;

/// Largest transfer of file data made with one device call.
const MAX_RUN: usize = 1 << 20;

/// A directory: the fixed root of FAT12/16, or a cluster chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DirRef {
    Root16,
    Chain(u32),
}

impl DirRef {
    /// A number naming the directory (its first cluster; 0 for the fixed
    /// root).
    pub fn key(self) -> u32 {
        match self {
            DirRef::Root16 => 0,
            DirRef::Chain(c) => c,
        }
    }
}

/// A name found in a directory.
#[derive(Clone, Debug)]
pub struct Found {
    /// The long name if there is a valid one, else the short name.
    pub name: String,
    pub entry: DirEntryRepr,
    /// Slot of the short entry.
    pub idx: u32,
    /// First slot of the name (its first long-name entry, or `idx`).
    pub first: u32,
}

/// One mounted FAT volume.
pub struct Fat {
    pub cache: BufCache,
    pub g: Geometry,
    pub read_only: bool,
    pub hyper: Arc<dyn Hyper>,
    /// The device name, for log lines.
    pub dev_name: String,
    /// Free clusters (counted at mount).
    pub free: u32,
    /// Where the next allocation starts looking.
    next_free: u32,
    /// Whether the volume was marked dirty when we mounted it.
    pub was_dirty: bool,
}

impl Fat {
    /// Reads and checks the boot sector, counts free clusters and, for a
    /// read-write mount, marks the volume dirty until unmount.
    pub fn open(
        dev: Arc<dyn BlockDevice>,
        want_rw: bool,
        hyper: Arc<dyn Hyper>,
        dev_name: &str,
        cache_bytes: usize,
    ) -> Result<Fat, Errno> {
        let mut boot = vec![0u8; 512];
        dev.read_blocks(0, &mut boot)?;
        let log = |m: &str| hyper.console_write(format!("fat: {dev_name}: {m}\n").as_bytes());
        let repr = BootSectorPacket::new_checked(&boot[..])
            .and_then(|p| BootSectorRepr::parse(&p))
            .and_then(|r| Geometry::new(&r).map(|g| (r, g)));
        let (_, g) = match repr {
            Ok(v) => v,
            Err(FormatError::Bad(what)) => {
                log(&format!("bad boot sector: {what}"));
                return Err(Errno::EINVAL);
            }
            Err(FormatError::Truncated) => return Err(Errno::EINVAL),
        };
        let dev_bytes = dev.size_bytes();
        if (g.total_sectors as u64) * (g.bytes_per_sector as u64) > dev_bytes {
            log(&format!(
                "volume of {} sectors of {} bytes does not fit the device ({dev_bytes} bytes)",
                g.total_sectors, g.bytes_per_sector
            ));
            return Err(Errno::EINVAL);
        }
        let cache = BufCache::new(dev.clone(), g.bytes_per_sector as usize, cache_bytes)?;
        let mut fat = Fat {
            cache,
            g,
            read_only: !want_rw,
            hyper: hyper.clone(),
            dev_name: dev_name.into(),
            free: 0,
            next_free: 2,
            was_dirty: false,
        };
        fat.count_free()?;
        let clean = fat.is_marked_clean()?;
        if !clean {
            fat.was_dirty = true;
            fat.log("volume was not properly unmounted; some data may be corrupt (run fsck.fat)");
        }
        if want_rw {
            fat.set_clean(false)?;
            fat.cache.sync()?;
        }
        Ok(fat)
    }

    /// One kernel log line about this volume.
    pub fn log(&self, msg: &str) {
        self.hyper
            .console_write(format!("fat: {}: {msg}\n", self.dev_name).as_bytes());
    }

    /// Logs `what` and returns the errno for a corrupt volume.
    pub fn corrupt(&self, what: &str) -> Errno {
        self.log(&format!("corrupt file system: {what}"));
        Errno::EUCLEAN
    }

    pub fn check_writable(&self) -> Result<(), Errno> {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    pub fn now(&self) -> i64 {
        self.hyper.clock_wall().sec
    }

    // ------------------------------------------------------------ the FAT

    /// Byte offset of cluster `c`'s entry within one FAT.
    fn fat_offset(&self, c: u32) -> u64 {
        match self.g.fat_type {
            FatType::Fat12 => c as u64 + c as u64 / 2,
            FatType::Fat16 => c as u64 * 2,
            FatType::Fat32 => c as u64 * 4,
        }
    }

    fn fat_byte(&mut self, copy: u32, off: u64) -> Result<u8, Errno> {
        let bps = self.g.bytes_per_sector as u64;
        let sec = self.g.fat_start as u64 + copy as u64 * self.g.fat_sectors as u64 + off / bps;
        let b = self.cache.read(sec)?;
        b.get((off % bps) as usize).copied().ok_or(Errno::EIO)
    }

    fn set_fat_byte(&mut self, copy: u32, off: u64, v: u8) -> Result<(), Errno> {
        let bps = self.g.bytes_per_sector as u64;
        let sec = self.g.fat_start as u64 + copy as u64 * self.g.fat_sectors as u64 + off / bps;
        let b = self.cache.modify(sec)?;
        *b.get_mut((off % bps) as usize).ok_or(Errno::EIO)? = v;
        Ok(())
    }

    /// The raw FAT entry of cluster `c` (0 ..= clusters + 1).
    pub fn fat_get(&mut self, c: u32) -> Result<u32, Errno> {
        let off = self.fat_offset(c);
        let copy = self.g.active_fat;
        Ok(match self.g.fat_type {
            FatType::Fat12 => {
                let w =
                    u16::from_le_bytes([self.fat_byte(copy, off)?, self.fat_byte(copy, off + 1)?]);
                if c & 1 == 1 {
                    (w >> 4) as u32
                } else {
                    (w & 0xFFF) as u32
                }
            }
            FatType::Fat16 => {
                u16::from_le_bytes([self.fat_byte(copy, off)?, self.fat_byte(copy, off + 1)?])
                    as u32
            }
            FatType::Fat32 => {
                let mut b = [0u8; 4];
                for (i, x) in b.iter_mut().enumerate() {
                    *x = self.fat_byte(copy, off + i as u64)?;
                }
                u32::from_le_bytes(b) & 0x0FFF_FFFF
            }
        })
    }

    /// Sets the FAT entry of `c` in every copy written (FAT32 keeps the
    /// top four bits).
    pub fn fat_set(&mut self, c: u32, v: u32) -> Result<(), Errno> {
        let off = self.fat_offset(c);
        let copies: Vec<u32> = if self.g.mirror {
            (0..self.g.num_fats).collect()
        } else {
            vec![self.g.active_fat]
        };
        for copy in copies {
            match self.g.fat_type {
                FatType::Fat12 => {
                    let lo = self.fat_byte(copy, off)?;
                    let hi = self.fat_byte(copy, off + 1)?;
                    let mut w = u16::from_le_bytes([lo, hi]);
                    let v = (v & 0xFFF) as u16;
                    w = if c & 1 == 1 {
                        (w & 0x000F) | (v << 4)
                    } else {
                        (w & 0xF000) | v
                    };
                    let [lo, hi] = w.to_le_bytes();
                    self.set_fat_byte(copy, off, lo)?;
                    self.set_fat_byte(copy, off + 1, hi)?;
                }
                FatType::Fat16 => {
                    let [lo, hi] = (v as u16).to_le_bytes();
                    self.set_fat_byte(copy, off, lo)?;
                    self.set_fat_byte(copy, off + 1, hi)?;
                }
                FatType::Fat32 => {
                    let top = self.fat_byte(copy, off + 3)? & 0xF0;
                    let mut b = (v & 0x0FFF_FFFF).to_le_bytes();
                    b[3] |= top;
                    for (i, x) in b.iter().enumerate() {
                        self.set_fat_byte(copy, off + i as u64, *x)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The successor of `c` in its chain: `Some(next)`, or `None` at the
    /// end. Free, reserved, bad and out-of-range values are corruption.
    fn next_cluster(&mut self, c: u32) -> Result<Option<u32>, Errno> {
        let v = self.fat_get(c)?;
        if v >= self.g.fat_type.eoc_min() {
            return Ok(None);
        }
        if self.g.is_cluster(v) {
            return Ok(Some(v));
        }
        Err(self.corrupt(&format!(
            "cluster {c}: FAT entry {v:#x} is {}",
            if v == 0 {
                "free inside a chain"
            } else if v == self.g.fat_type.bad() {
                "a bad cluster inside a chain"
            } else {
                "beyond the end of the volume"
            }
        )))
    }

    /// The clusters of the chain starting at `first` (empty for 0). A
    /// chain longer than the volume has clusters loops: `EUCLEAN`.
    pub fn chain(&mut self, first: u32) -> Result<Vec<u32>, Errno> {
        let mut out = Vec::new();
        if first == 0 {
            return Ok(out);
        }
        if !self.g.is_cluster(first) {
            return Err(self.corrupt(&format!("first cluster {first} beyond the volume")));
        }
        let mut c = first;
        loop {
            out.push(c);
            if out.len() as u64 > self.g.clusters as u64 {
                return Err(self.corrupt(&format!("cluster chain from {first} loops")));
            }
            match self.next_cluster(c)? {
                Some(n) => c = n,
                None => return Ok(out),
            }
        }
    }

    /// Allocates `n` clusters, links them into a chain and appends it to
    /// `last` (0: a new chain). Returns the new clusters. `ENOSPC` with
    /// nothing changed if too few are free.
    pub fn alloc(&mut self, last: u32, n: u32) -> Result<Vec<u32>, Errno> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if n > self.free {
            return Err(Errno::ENOSPC);
        }
        let mut got = Vec::with_capacity(n as usize);
        let total = self.g.clusters;
        let mut c = if self.g.is_cluster(self.next_free) {
            self.next_free
        } else {
            2
        };
        let mut scanned = 0u32;
        while (got.len() as u32) < n && scanned < total {
            if self.fat_get(c)? == 0 {
                got.push(c);
            }
            scanned += 1;
            c = if c + 1 >= total + 2 { 2 } else { c + 1 };
        }
        if (got.len() as u32) < n {
            // The free count was wrong: correct it.
            self.log(&format!(
                "free cluster count was {}, found {}",
                self.free,
                got.len()
            ));
            self.free = got.len() as u32;
            return Err(Errno::ENOSPC);
        }
        let eoc = self.g.fat_type.eoc();
        for i in 0..got.len() {
            let next = got.get(i + 1).copied().unwrap_or(eoc);
            self.fat_set(got[i], next)?;
        }
        if last != 0 {
            self.fat_set(last, got[0])?;
        }
        self.free -= n;
        self.next_free = c;
        Ok(got)
    }

    /// Frees every cluster of `chain`.
    pub fn free_clusters(&mut self, chain: &[u32]) -> Result<(), Errno> {
        for &c in chain {
            self.fat_set(c, 0)?;
            self.forget_cluster(c);
        }
        self.free = (self.free + chain.len() as u32).min(self.g.clusters);
        Ok(())
    }

    /// Frees the chain starting at `first`.
    pub fn free_chain(&mut self, first: u32) -> Result<(), Errno> {
        let chain = self.chain(first)?;
        self.free_clusters(&chain)
    }

    /// Marks `c` as the end of its chain.
    pub fn set_eoc(&mut self, c: u32) -> Result<(), Errno> {
        let eoc = self.g.fat_type.eoc();
        self.fat_set(c, eoc)
    }

    fn forget_cluster(&mut self, c: u32) {
        let s = self.g.cluster_sector(c);
        for i in 0..self.g.sectors_per_cluster as u64 {
            self.cache.forget(s + i);
        }
    }

    /// Counts free clusters, reading the FAT in large runs without
    /// filling the cache.
    fn count_free(&mut self) -> Result<(), Errno> {
        let bps = self.g.bytes_per_sector as u64;
        let first = self.g.fat_start as u64 + self.g.active_fat as u64 * self.g.fat_sectors as u64;
        let entries = self.g.clusters as u64 + 2;
        let fat_bytes = match self.g.fat_type {
            FatType::Fat12 => (entries * 3).div_ceil(2),
            FatType::Fat16 => entries * 2,
            FatType::Fat32 => entries * 4,
        };
        let sectors = fat_bytes.div_ceil(bps);
        let chunk = (MAX_RUN as u64 / bps).max(1);
        let mut fat = Vec::with_capacity((sectors * bps) as usize);
        let mut s = 0;
        while s < sectors {
            let n = chunk.min(sectors - s);
            let mut buf = vec![0u8; (n * bps) as usize];
            self.cache.read_direct(first + s, &mut buf)?;
            fat.extend_from_slice(&buf);
            s += n;
        }
        let mut free = 0u32;
        let mut first_free = 0u32;
        for c in 2..(self.g.clusters + 2) {
            let o = self.fat_offset(c) as usize;
            let v = match self.g.fat_type {
                FatType::Fat12 => {
                    let w = u16::from_le_bytes([fat[o], fat[o + 1]]);
                    if c & 1 == 1 {
                        (w >> 4) as u32
                    } else {
                        (w & 0xFFF) as u32
                    }
                }
                FatType::Fat16 => u16::from_le_bytes([fat[o], fat[o + 1]]) as u32,
                FatType::Fat32 => {
                    u32::from_le_bytes([fat[o], fat[o + 1], fat[o + 2], fat[o + 3]]) & 0x0FFF_FFFF
                }
            };
            if v == 0 {
                free += 1;
                if first_free == 0 {
                    first_free = c;
                }
            }
        }
        self.free = free;
        self.next_free = if first_free == 0 { 2 } else { first_free };
        Ok(())
    }

    // ------------------------------------------------------------ clean state

    /// Offset of the boot sector's state byte (`BS_Reserved1`), whose bit
    /// 0 Linux sets while the volume is mounted.
    fn state_byte(&self) -> usize {
        if self.g.fat_type == FatType::Fat32 {
            65
        } else {
            37
        }
    }

    fn is_marked_clean(&mut self) -> Result<bool, Errno> {
        let bit = self.g.fat_type.clean_bit();
        let fat1_clean = bit == 0 || self.fat_get(1)? & bit != 0;
        let sb = self.state_byte();
        let boot_clean = self.cache.read(0)?.get(sb).is_some_and(|b| b & 1 == 0);
        Ok(fat1_clean && boot_clean)
    }

    /// Sets or clears the clean markers: the "clean shutdown" bit of
    /// FAT[1] (FAT16/32) and the dirty bit of the boot sector.
    pub fn set_clean(&mut self, clean: bool) -> Result<(), Errno> {
        let bit = self.g.fat_type.clean_bit();
        if bit != 0 {
            let v = self.fat_get(1)?;
            let nv = if clean { v | bit } else { v & !bit };
            if nv != v {
                self.fat_set(1, nv)?;
            }
        }
        let sb = self.state_byte();
        let cur = *self.cache.read(0)?.get(sb).ok_or(Errno::EIO)?;
        let want = if clean { cur & !1 } else { cur | 1 };
        if want != cur {
            *self.cache.modify(0)?.get_mut(sb).ok_or(Errno::EIO)? = want;
        }
        Ok(())
    }

    /// Writes the FSInfo hints (FAT32).
    fn write_fsinfo(&mut self) -> Result<(), Errno> {
        let Some(s) = self.g.fsinfo_sector else {
            return Ok(());
        };
        let ok = FsInfoPacket::new_checked(self.cache.read(s as u64)?)
            .map(|p| p.has_signatures())
            .unwrap_or(false);
        if !ok {
            // Not an FSInfo sector we recognise: leave it alone.
            return Ok(());
        }
        let r = FsInfoRepr {
            free_count: self.free,
            next_free: self.next_free,
        };
        let cur = FsInfoRepr::parse(&FsInfoPacket::new_checked(self.cache.read(s as u64)?)?)?;
        if cur != r {
            r.emit(self.cache.modify(s as u64)?);
        }
        Ok(())
    }

    /// Writes everything dirty (with the FSInfo hints) and issues a
    /// barrier.
    pub fn sync(&mut self) -> Result<(), Errno> {
        if !self.read_only {
            self.write_fsinfo()?;
        }
        self.cache.sync()
    }

    /// Final sync of a read-write mount: data and metadata, barrier, then
    /// the clean markers, barrier.
    pub fn unmount(&mut self) -> Result<(), Errno> {
        if self.read_only {
            return Ok(());
        }
        self.sync()?;
        if !self.was_dirty {
            self.set_clean(true)?;
        }
        self.cache.sync()
    }

    // ------------------------------------------------------------ directories

    /// The sectors of a directory, in order.
    pub fn dir_sectors(&mut self, d: DirRef) -> Result<Vec<u64>, Errno> {
        match d {
            DirRef::Root16 => Ok((0..self.g.root_sectors as u64)
                .map(|i| self.g.root_start as u64 + i)
                .collect()),
            DirRef::Chain(first) => {
                let chain = self.chain(first)?;
                let spc = self.g.sectors_per_cluster as u64;
                let mut out = Vec::with_capacity(chain.len() * spc as usize);
                for c in chain {
                    let s = self.g.cluster_sector(c);
                    out.extend(s..s + spc);
                }
                let max = (MAX_DIR_ENTRIES as u64 * DIR_ENTRY_SIZE as u64)
                    .div_ceil(self.g.bytes_per_sector as u64);
                if out.len() as u64 > max {
                    return Err(self.corrupt(&format!(
                        "directory at cluster {first} larger than 65536 entries"
                    )));
                }
                Ok(out)
            }
        }
    }

    fn slots_per_sector(&self) -> u32 {
        self.g.bytes_per_sector / DIR_ENTRY_SIZE as u32
    }

    /// The 32 bytes of slot `idx`.
    pub fn slot(&mut self, sectors: &[u64], idx: u32) -> Result<[u8; 32], Errno> {
        let sps = self.slots_per_sector();
        let sec = *sectors.get((idx / sps) as usize).ok_or(Errno::EIO)?;
        let off = (idx % sps) as usize * DIR_ENTRY_SIZE;
        let b = self.cache.read(sec)?;
        let mut out = [0u8; 32];
        out.copy_from_slice(b.get(off..off + 32).ok_or(Errno::EIO)?);
        Ok(out)
    }

    /// Writes slot `idx`.
    pub fn set_slot(&mut self, sectors: &[u64], idx: u32, bytes: &[u8; 32]) -> Result<(), Errno> {
        let sps = self.slots_per_sector();
        let sec = *sectors.get((idx / sps) as usize).ok_or(Errno::EIO)?;
        let off = (idx % sps) as usize * DIR_ENTRY_SIZE;
        let b = self.cache.modify(sec)?;
        b.get_mut(off..off + 32)
            .ok_or(Errno::EIO)?
            .copy_from_slice(bytes);
        Ok(())
    }

    /// Walks the names of a directory from slot `start`, calling `visit`
    /// for each (the volume label, `.` and `..` included, as stored) until
    /// it returns false. Long names whose entries are out of order or
    /// whose checksum does not match their short entry are ignored (the
    /// short name is used), as the specification asks.
    pub fn scan(
        &mut self,
        d: DirRef,
        start: u32,
        mut visit: impl FnMut(&Found) -> bool,
    ) -> Result<(), Errno> {
        let sectors = self.dir_sectors(d)?;
        let n = sectors.len() as u32 * self.slots_per_sector();
        // (expected next sequence, checksum, units, first slot)
        let mut lfn: Option<(u8, u8, Vec<u16>, u32)> = None;
        let mut idx = start;
        while idx < n {
            let raw = self.slot(&sectors, idx)?;
            let p = DirEntryPacket::new_checked(&raw[..])?;
            match p.slot() {
                Ok(Slot::End) => break,
                Ok(Slot::Deleted) | Ok(Slot::Volume) | Err(_) => lfn = None,
                Ok(Slot::Long(l)) => {
                    if l.is_last {
                        let mut units = vec![0u16; l.seq as usize * 13];
                        let at = (l.seq as usize - 1) * 13;
                        units[at..at + 13].copy_from_slice(&l.units);
                        lfn = Some((l.seq - 1, l.checksum, units, idx));
                    } else {
                        match &mut lfn {
                            Some((next, sum, units, _)) if *next == l.seq && *sum == l.checksum => {
                                let at = (l.seq as usize - 1) * 13;
                                units[at..at + 13].copy_from_slice(&l.units);
                                *next -= 1;
                            }
                            _ => lfn = None,
                        }
                    }
                }
                Ok(Slot::Short(e)) => {
                    let long = match lfn.take() {
                        Some((0, sum, units, first)) if sum == short_name_checksum(&e.name) => {
                            name::lfn_to_string(&units).map(|s| (s, first))
                        }
                        _ => None,
                    };
                    let (name, first) = match long {
                        Some(v) => v,
                        None => (name::short_to_string(&e.name, e.ntres), idx),
                    };
                    let f = Found {
                        name,
                        entry: e,
                        idx,
                        first,
                    };
                    if !visit(&f) {
                        return Ok(());
                    }
                }
            }
            idx += 1;
        }
        Ok(())
    }

    /// Finds `wanted` (case-insensitively, by long or short name) in `d`.
    pub fn find(&mut self, d: DirRef, wanted: &str) -> Result<Option<Found>, Errno> {
        let short =
            name::exact_short(wanted.to_ascii_uppercase().as_bytes()).filter(|_| wanted.is_ascii());
        let mut hit = None;
        self.scan(d, 0, |f| {
            if f.name == "." || f.name == ".." {
                return true;
            }
            if name::same_name(&f.name, wanted) || short.is_some_and(|s| s == f.entry.name) {
                hit = Some(f.clone());
                return false;
            }
            true
        })?;
        Ok(hit)
    }

    /// Whether `d` holds nothing but `.` and `..`.
    pub fn is_empty_dir(&mut self, d: DirRef) -> Result<bool, Errno> {
        let mut empty = true;
        self.scan(d, 0, |f| {
            if f.name == "." || f.name == ".." {
                return true;
            }
            empty = false;
            false
        })?;
        Ok(empty)
    }

    /// Counts the subdirectories of `d` (for its link count).
    pub fn count_subdirs(&mut self, d: DirRef) -> Result<u32, Errno> {
        let mut n = 0;
        self.scan(d, 0, |f| {
            if f.entry.is_dir() && f.name != "." && f.name != ".." {
                n += 1;
            }
            true
        })?;
        Ok(n)
    }

    /// Adds `name` to `d` with the short entry `e` (whose name is filled
    /// in here). Returns the slot of the short entry. The caller checked
    /// that the name is not there.
    pub fn add_entry(
        &mut self,
        d: DirRef,
        name_bytes: &[u8],
        mut e: DirEntryRepr,
    ) -> Result<(u32, [u8; 11]), Errno> {
        let stored = name::classify(name_bytes)?;
        let mut slots: Vec<[u8; 32]> = Vec::new();
        match stored {
            name::Stored::ShortOnly(s) => e.name = s,
            name::Stored::Long {
                units,
                base,
                ext,
                needs_tail,
            } => {
                let mut taken = BTreeSet::new();
                self.scan(d, 0, |f| {
                    taken.insert(f.entry.name);
                    true
                })?;
                let mut n = u32::from(needs_tail);
                loop {
                    let a = name::alias(&base, &ext, n);
                    if !taken.contains(&a) {
                        e.name = a;
                        break;
                    }
                    n += 1;
                    if n > 999_999 {
                        return Err(Errno::ENOSPC);
                    }
                }
                let sum = short_name_checksum(&e.name);
                let count = units.len().div_ceil(13);
                for seq in (1..=count).rev() {
                    let mut u = [0xFFFFu16; 13];
                    for (i, slot) in u.iter_mut().enumerate() {
                        let at = (seq - 1) * 13 + i;
                        if at < units.len() {
                            *slot = units[at];
                        } else if at == units.len() {
                            *slot = 0;
                        }
                    }
                    let l = LfnRepr {
                        seq: seq as u8,
                        is_last: seq == count,
                        checksum: sum,
                        units: u,
                    };
                    let mut b = [0u8; 32];
                    l.emit(&mut b);
                    slots.push(b);
                }
            }
        }
        let mut b = [0u8; 32];
        e.emit(&mut b);
        slots.push(b);
        let first = self.free_run(d, slots.len() as u32)?;
        let sectors = self.dir_sectors(d)?;
        for (i, s) in slots.iter().enumerate() {
            self.set_slot(&sectors, first + i as u32, s)?;
        }
        Ok((first + slots.len() as u32 - 1, e.name))
    }

    /// Finds (or makes, by growing the directory) `n` consecutive free
    /// slots; returns the first. Slots after the end marker are free, and
    /// the one following the run is made an end marker again.
    fn free_run(&mut self, d: DirRef, n: u32) -> Result<u32, Errno> {
        loop {
            let sectors = self.dir_sectors(d)?;
            let total = sectors.len() as u32 * self.slots_per_sector();
            let mut run_start = 0;
            let mut run = 0;
            let mut idx = 0;
            while idx < total {
                let raw = self.slot(&sectors, idx)?;
                if raw[0] == 0 {
                    // Everything from here on is free.
                    if total - idx + run >= n {
                        let start = if run > 0 { run_start } else { idx };
                        let after = start + n;
                        if after < total && self.slot(&sectors, after)?[0] != 0 {
                            self.set_slot(&sectors, after, &[0u8; 32])?;
                        }
                        return Ok(start);
                    }
                    break;
                }
                if raw[0] == DELETED {
                    if run == 0 {
                        run_start = idx;
                    }
                    run += 1;
                    if run == n {
                        return Ok(run_start);
                    }
                } else {
                    run = 0;
                }
                idx += 1;
            }
            // Grow the directory by a cluster.
            let DirRef::Chain(first) = d else {
                return Err(Errno::ENOSPC);
            };
            if total + self.slots_per_sector() * self.g.sectors_per_cluster > MAX_DIR_ENTRIES {
                return Err(Errno::ENOSPC);
            }
            let chain = self.chain(first)?;
            let last = *chain.last().ok_or(Errno::EIO)?;
            let new = self.alloc(last, 1)?;
            self.zero_cluster(new[0])?;
            // If the old end had no end marker (all slots used), slot
            // `total` is the first of the new cluster: zeroed.
        }
    }

    /// Writes zeros over cluster `c` (in the cache).
    pub fn zero_cluster(&mut self, c: u32) -> Result<(), Errno> {
        let s = self.g.cluster_sector(c);
        for i in 0..self.g.sectors_per_cluster as u64 {
            self.cache.zeroed(s + i)?;
        }
        Ok(())
    }

    /// Marks the slots `first ..= last` of `d` deleted.
    pub fn remove_slots(&mut self, d: DirRef, first: u32, last: u32) -> Result<(), Errno> {
        let sectors = self.dir_sectors(d)?;
        for idx in first..=last {
            let mut raw = self.slot(&sectors, idx)?;
            raw[0] = DELETED;
            self.set_slot(&sectors, idx, &raw)?;
        }
        Ok(())
    }

    /// Rewrites the short entry at slot `idx` of `d` with `e`.
    pub fn write_entry(&mut self, d: DirRef, idx: u32, e: &DirEntryRepr) -> Result<(), Errno> {
        let sectors = self.dir_sectors(d)?;
        let mut raw = self.slot(&sectors, idx)?;
        e.emit(&mut raw);
        self.set_slot(&sectors, idx, &raw)
    }

    /// Reads the short entry at slot `idx` of `d`.
    pub fn read_entry(&mut self, d: DirRef, idx: u32) -> Result<DirEntryRepr, Errno> {
        let sectors = self.dir_sectors(d)?;
        let raw = self.slot(&sectors, idx)?;
        match DirEntryPacket::new_checked(&raw[..])?.slot() {
            Ok(Slot::Short(e)) => Ok(e),
            _ => Err(self.corrupt(&format!(
                "directory {}: slot {idx} is not an entry",
                d.key()
            ))),
        }
    }

    // ------------------------------------------------------------ file data

    /// Reads `buf.len()` bytes at `off` of the file whose clusters are
    /// `chain` (the caller keeps the range within the chain).
    pub fn read_data(&mut self, chain: &[u32], off: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.transfer(chain, off, buf.len(), |fat, sec, in_sec, range, whole| {
            if whole {
                fat.cache.read_direct(sec, &mut buf[range])
            } else {
                let b = fat.cache.read(sec)?;
                let len = range.len();
                buf[range].copy_from_slice(b.get(in_sec..in_sec + len).ok_or(Errno::EIO)?);
                Ok(())
            }
        })
    }

    /// Writes `buf` at `off` of the file whose clusters are `chain`.
    pub fn write_data(&mut self, chain: &[u32], off: u64, buf: &[u8]) -> Result<(), Errno> {
        self.transfer(chain, off, buf.len(), |fat, sec, in_sec, range, whole| {
            if whole {
                fat.cache.write_direct(sec, &buf[range])
            } else {
                let b = fat.cache.modify(sec)?;
                let len = range.len();
                b.get_mut(in_sec..in_sec + len)
                    .ok_or(Errno::EIO)?
                    .copy_from_slice(&buf[range]);
                Ok(())
            }
        })
    }

    /// Walks `len` bytes at `off` of a chain as pieces: `f(fat, sector,
    /// offset in sector, range of the caller's buffer, whole)` where
    /// `whole` pieces are runs of whole, consecutive sectors.
    fn transfer(
        &mut self,
        chain: &[u32],
        off: u64,
        len: usize,
        mut f: impl FnMut(&mut Fat, u64, usize, core::ops::Range<usize>, bool) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let bps = self.g.bytes_per_sector as u64;
        let cb = self.g.cluster_bytes as u64;
        let mut done = 0usize;
        while done < len {
            let pos = off + done as u64;
            let ci = (pos / cb) as usize;
            let c = *chain.get(ci).ok_or(Errno::EIO)?;
            let in_cl = pos % cb;
            let sec = self.g.cluster_sector(c) + in_cl / bps;
            let in_sec = (pos % bps) as usize;
            let left = len - done;
            if in_sec == 0 && left as u64 >= bps {
                // A run of whole sectors: to the end of this cluster, and
                // on through clusters that follow it on the disk.
                let mut run = (cb - in_cl).min(left as u64 / bps * bps);
                let mut k = ci;
                while run < left as u64 / bps * bps
                    && (run as usize) < MAX_RUN
                    && chain.get(k + 1).is_some_and(|&n| n == chain[k] + 1)
                {
                    k += 1;
                    run = (run + cb).min(left as u64 / bps * bps);
                }
                let run =
                    (run as usize).min(MAX_RUN.max(bps as usize) / bps as usize * bps as usize);
                f(self, sec, 0, done..done + run, true)?;
                done += run;
            } else {
                let n = ((bps as usize) - in_sec).min(left);
                f(self, sec, in_sec, done..done + n, false)?;
                done += n;
            }
        }
        Ok(())
    }
}
