//! The buffer cache: file-system blocks of one device kept in memory, with
//! write-back.
//!
//! A [`BufCache`] holds blocks of one size (the file system's) read from a
//! [`BlockDevice`]. Modified blocks stay dirty in memory until
//! [`BufCache::write_back`] (or memory pressure) writes them, in ascending
//! block order with contiguous runs coalesced into one device write.
//! [`BufCache::sync`] writes back and then issues the device barrier, so a
//! file system that writes its superblock after a `sync` and flushes again
//! gets the ordering "data and metadata, barrier, superblock, barrier"
//! that `fsync`, `sync` and unmount need.
//!
//! Memory is bounded: past the limit, dirty blocks are written back and the
//! least recently used clean blocks dropped. Large data transfers can skip
//! the cache with [`BufCache::read_direct`] and [`BufCache::write_direct`],
//! which stay coherent with cached copies.
//!
//! The cache has no lock of its own: its owner (one mounted file system)
//! serialises access. Every device call the cache makes runs through the
//! owner's [`IoGate`], if it set one, so the owner can tell contenders for
//! its lock that the holder is about to block (see
//! `kern::sync::SleepMutex::holder_blocking`). A [`DirectIo`] reads and
//! writes the device with no access to the cache at all, for transfers the
//! owner makes after releasing its lock.
//!
//! Fetching outside the owner's lock: in *no-miss* mode
//! ([`BufCache::set_no_miss`]) a miss, or any other device call, fails
//! with `EAGAIN` and is recorded ([`BufCache::take_aborted`]) instead of
//! being made, so a read-only operation can give up, release the lock,
//! read the block with a [`DirectIo`] and retry. The block is
//! registered as being fetched ([`BufCache::begin_fetch`]); anything that
//! changes it meanwhile (it is loaded, zeroed, written directly or
//! forgotten) marks the fetch stale, and [`BufCache::finish_fetch`] then
//! drops the data instead of caching an old copy. (A block that is not
//! cached is current on the device: dirty blocks are never dropped.)

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use hyper::Errno;

use crate::dev::{BlockDevice, SECTOR_SIZE};

/// Largest run written back with one device call.
const MAX_RUN_BYTES: usize = 1 << 20;

/// Runs the cache's device calls (block I/O that may block), so the
/// cache's owner can announce them to contenders for its lock.
pub trait IoGate: Send + Sync {
    /// Runs `f`, which makes a blocking device call.
    fn blocking(&self, f: &mut dyn FnMut());
}

fn gated(
    gate: &Option<Arc<dyn IoGate>>,
    f: impl FnOnce() -> Result<(), Errno>,
) -> Result<(), Errno> {
    match gate {
        None => f(),
        Some(g) => {
            let mut f = Some(f);
            // EIO should a gate fail to run the call.
            let mut r = Err(Errno::EIO);
            g.blocking(&mut || {
                if let Some(f) = f.take() {
                    r = f();
                }
            });
            r
        }
    }
}

/// Reads and writes whole blocks straight on a cache's device, without
/// the cache (see [`BufCache::direct_io`]). It neither sees nor updates
/// cached copies: the caller transfers only blocks it knows are not
/// cached (and cannot become cached meanwhile).
#[derive(Clone)]
pub struct DirectIo {
    dev: Arc<dyn BlockDevice>,
    bsize: usize,
    sectors_per_block: u64,
    nblocks: u64,
}

impl DirectIo {
    /// Reads `buf.len() / block_size` consecutive blocks from `first`.
    pub fn read(&self, first: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let n = (buf.len() / self.bsize) as u64;
        if !buf.len().is_multiple_of(self.bsize)
            || first.checked_add(n).is_none_or(|e| e > self.nblocks)
        {
            return Err(Errno::EIO);
        }
        self.dev.read_blocks(first * self.sectors_per_block, buf)
    }

    /// Writes `buf.len() / block_size` consecutive blocks from `first`.
    pub fn write(&self, first: u64, buf: &[u8]) -> Result<(), Errno> {
        let n = (buf.len() / self.bsize) as u64;
        if !buf.len().is_multiple_of(self.bsize)
            || first.checked_add(n).is_none_or(|e| e > self.nblocks)
        {
            return Err(Errno::EIO);
        }
        self.dev.write_blocks(first * self.sectors_per_block, buf)
    }

    /// The block size.
    pub fn block_size(&self) -> usize {
        self.bsize
    }
}

/// Why a no-miss attempt gave up (see [`BufCache::set_no_miss`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aborted {
    /// This block is not cached.
    Block(u64),
    /// Some other device call was needed.
    Io,
}

/// Counters, for tests and tuning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub writes: u64,
    pub evictions: u64,
}

struct Buf {
    data: Box<[u8]>,
    used: u64,
}

/// A write-back cache of fixed-size blocks over a device.
pub struct BufCache {
    dev: Arc<dyn BlockDevice>,
    bsize: usize,
    sectors_per_block: u64,
    nblocks: u64,
    bufs: BTreeMap<u64, Buf>,
    dirty: BTreeSet<u64>,
    limit: usize,
    tick: u64,
    stats: CacheStats,
    gate: Option<Arc<dyn IoGate>>,
    no_miss: bool,
    aborted: Option<Aborted>,
    /// Blocks being fetched outside the owner's lock: fetches in flight,
    /// and whether the block changed since the first began.
    fetching: BTreeMap<u64, (u32, bool)>,
}

impl BufCache {
    /// A cache of `block_size`-byte blocks (a multiple of the sector size)
    /// holding at most about `limit_bytes` of them.
    pub fn new(
        dev: Arc<dyn BlockDevice>,
        block_size: usize,
        limit_bytes: usize,
    ) -> Result<BufCache, Errno> {
        if block_size == 0 || !block_size.is_multiple_of(SECTOR_SIZE) {
            return Err(Errno::EINVAL);
        }
        let spb = (block_size / SECTOR_SIZE) as u64;
        Ok(BufCache {
            nblocks: dev.sectors() / spb,
            dev,
            bsize: block_size,
            sectors_per_block: spb,
            bufs: BTreeMap::new(),
            dirty: BTreeSet::new(),
            limit: (limit_bytes / block_size).max(16),
            tick: 0,
            stats: CacheStats::default(),
            gate: None,
            no_miss: false,
            aborted: None,
            fetching: BTreeMap::new(),
        })
    }

    /// The block size.
    pub fn block_size(&self) -> usize {
        self.bsize
    }

    /// Number of whole blocks on the device.
    pub fn blocks(&self) -> u64 {
        self.nblocks
    }

    /// The device underneath. Calls on it bypass the [`IoGate`]: prefer
    /// [`BufCache::device_io`].
    pub fn device(&self) -> &Arc<dyn BlockDevice> {
        &self.dev
    }

    /// Sets the gate every later device call of the cache runs through.
    pub fn set_gate(&mut self, gate: Arc<dyn IoGate>) {
        self.gate = Some(gate);
    }

    /// Runs `f` on the device, through the gate.
    pub fn device_io(
        &mut self,
        f: impl FnOnce(&dyn BlockDevice) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        if self.no_miss {
            return Err(self.abort(Aborted::Io));
        }
        let dev = &*self.dev;
        gated(&self.gate, || f(dev))
    }

    /// A reader of the device that needs no access to the cache.
    pub fn direct_io(&self) -> DirectIo {
        DirectIo {
            dev: self.dev.clone(),
            bsize: self.bsize,
            sectors_per_block: self.sectors_per_block,
            nblocks: self.nblocks,
        }
    }

    /// In no-miss mode, misses and every other device call fail with
    /// `EAGAIN` (and are recorded) instead of being made.
    pub fn set_no_miss(&mut self, on: bool) {
        self.no_miss = on;
    }

    /// What made a no-miss attempt give up, if anything (and forgets it).
    pub fn take_aborted(&mut self) -> Option<Aborted> {
        self.aborted.take()
    }

    /// Whether a no-miss attempt has given up (its errors mean nothing).
    pub fn has_aborted(&self) -> bool {
        self.aborted.is_some()
    }

    fn abort(&mut self, why: Aborted) -> Errno {
        if self.aborted.is_none() {
            self.aborted = Some(why);
        }
        Errno::EAGAIN
    }

    fn changed(&mut self, blk: u64) {
        if let Some(f) = self.fetching.get_mut(&blk) {
            f.1 = true;
        }
    }

    /// Registers a fetch of `blk` from the device by the caller, outside
    /// the owner's lock. False if `blk` is cached or beyond the device.
    pub fn begin_fetch(&mut self, blk: u64) -> bool {
        if blk >= self.nblocks || self.bufs.contains_key(&blk) {
            return false;
        }
        self.fetching.entry(blk).or_insert((0, false)).0 += 1;
        true
    }

    /// Ends a fetch [`BufCache::begin_fetch`] registered: `data` (what
    /// the device returned, `None` on an error) is cached, clean, unless
    /// the block changed or was cached meanwhile.
    pub fn finish_fetch(&mut self, blk: u64, data: Option<Box<[u8]>>) -> Result<(), Errno> {
        let stale = match self.fetching.get_mut(&blk) {
            Some(f) => {
                f.0 = f.0.saturating_sub(1);
                let stale = f.1;
                if f.0 == 0 {
                    self.fetching.remove(&blk);
                }
                stale
            }
            None => true,
        };
        let Some(data) = data else {
            return Ok(());
        };
        if stale || data.len() != self.bsize || self.bufs.contains_key(&blk) {
            return Ok(());
        }
        self.make_room()?;
        self.tick += 1;
        self.insert_clean(blk, data);
        Ok(())
    }

    /// Whether `blk` is cached and dirty.
    pub fn is_dirty(&self, blk: u64) -> bool {
        self.dirty.contains(&blk)
    }

    /// The dirty blocks in `range`, ascending.
    pub fn dirty_in(&self, range: core::ops::Range<u64>) -> impl Iterator<Item = u64> + '_ {
        self.dirty.range(range).copied()
    }

    /// Counters.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Number of dirty blocks.
    pub fn dirty_count(&self) -> usize {
        self.dirty.len()
    }

    fn check(&self, blk: u64) -> Result<(), Errno> {
        if blk >= self.nblocks {
            Err(Errno::EIO)
        } else {
            Ok(())
        }
    }

    fn load(&mut self, blk: u64) -> Result<(), Errno> {
        self.check(blk)?;
        self.tick += 1;
        if let Some(b) = self.bufs.get_mut(&blk) {
            b.used = self.tick;
            self.stats.hits += 1;
            return Ok(());
        }
        if self.no_miss {
            return Err(self.abort(Aborted::Block(blk)));
        }
        self.stats.misses += 1;
        self.changed(blk);
        self.make_room()?;
        let mut data = vec![0u8; self.bsize].into_boxed_slice();
        let (dev, lba) = (&self.dev, blk * self.sectors_per_block);
        gated(&self.gate, || dev.read_blocks(lba, &mut data))?;
        self.insert_clean(blk, data);
        Ok(())
    }

    /// Caches `data` as block `blk`, clean, used now.
    fn insert_clean(&mut self, blk: u64, data: Box<[u8]>) {
        self.bufs.insert(
            blk,
            Buf {
                data,
                used: self.tick,
            },
        );
    }

    /// The contents of block `blk`.
    pub fn read(&mut self, blk: u64) -> Result<&[u8], Errno> {
        self.load(blk)?;
        self.bufs.get(&blk).map(|b| &*b.data).ok_or(Errno::EIO)
    }

    /// Block `blk` for modification (read first if not cached); marked
    /// dirty.
    pub fn modify(&mut self, blk: u64) -> Result<&mut [u8], Errno> {
        if self.dev.is_read_only() {
            return Err(Errno::EROFS);
        }
        self.load(blk)?;
        self.dirty.insert(blk);
        self.bufs
            .get_mut(&blk)
            .map(|b| &mut *b.data)
            .ok_or(Errno::EIO)
    }

    /// A newly allocated block: zero-filled without reading, dirty.
    pub fn zeroed(&mut self, blk: u64) -> Result<&mut [u8], Errno> {
        if self.dev.is_read_only() {
            return Err(Errno::EROFS);
        }
        self.check(blk)?;
        if self.no_miss && !self.bufs.contains_key(&blk) {
            return Err(self.abort(Aborted::Io));
        }
        self.changed(blk);
        self.tick += 1;
        if !self.bufs.contains_key(&blk) {
            self.make_room()?;
        }
        let tick = self.tick;
        let bsize = self.bsize;
        let b = self.bufs.entry(blk).or_insert_with(|| Buf {
            data: vec![0u8; bsize].into_boxed_slice(),
            used: tick,
        });
        b.data.fill(0);
        b.used = tick;
        self.dirty.insert(blk);
        Ok(&mut b.data)
    }

    /// Drops a block without writing it (it was freed).
    pub fn forget(&mut self, blk: u64) {
        self.changed(blk);
        self.bufs.remove(&blk);
        self.dirty.remove(&blk);
    }

    /// Whether `blk` is cached.
    pub fn contains(&self, blk: u64) -> bool {
        self.bufs.contains_key(&blk)
    }

    /// Reads `buf.len() / block_size` consecutive blocks from `first`
    /// straight from the device, then overlays cached copies (which may be
    /// newer). Does not populate the cache.
    pub fn read_direct(&mut self, first: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let n = (buf.len() / self.bsize) as u64;
        if !buf.len().is_multiple_of(self.bsize)
            || first.checked_add(n).is_none_or(|e| e > self.nblocks)
        {
            return Err(Errno::EIO);
        }
        if self.no_miss {
            return Err(self.abort(Aborted::Io));
        }
        let (dev, lba) = (&self.dev, first * self.sectors_per_block);
        gated(&self.gate, || dev.read_blocks(lba, buf))?;
        for (&blk, b) in self.bufs.range(first..first + n) {
            let off = (blk - first) as usize * self.bsize;
            buf[off..off + self.bsize].copy_from_slice(&b.data);
        }
        Ok(())
    }

    /// Writes consecutive whole blocks from `first` straight to the device;
    /// cached copies are updated and become clean.
    pub fn write_direct(&mut self, first: u64, buf: &[u8]) -> Result<(), Errno> {
        let n = (buf.len() / self.bsize) as u64;
        if !buf.len().is_multiple_of(self.bsize)
            || first.checked_add(n).is_none_or(|e| e > self.nblocks)
        {
            return Err(Errno::EIO);
        }
        if self.no_miss {
            return Err(self.abort(Aborted::Io));
        }
        for blk in first..first + n {
            self.changed(blk);
        }
        let (dev, lba) = (&self.dev, first * self.sectors_per_block);
        gated(&self.gate, || dev.write_blocks(lba, buf))?;
        self.stats.writes += 1;
        let bsize = self.bsize;
        for (&blk, b) in self.bufs.range_mut(first..first + n) {
            let off = (blk - first) as usize * bsize;
            b.data.copy_from_slice(&buf[off..off + bsize]);
            self.dirty.remove(&blk);
        }
        Ok(())
    }

    /// Writes every dirty block, in ascending order, coalescing runs.
    pub fn write_back(&mut self) -> Result<(), Errno> {
        let dirty: Vec<u64> = self.dirty.iter().copied().collect();
        self.write_sorted(&dirty)
    }

    /// Writes those of `blocks` that are dirty, in ascending order,
    /// coalescing runs; the others stay dirty. Returns how many blocks
    /// were written.
    pub fn write_blocks(&mut self, blocks: &BTreeSet<u64>) -> Result<usize, Errno> {
        let dirty: Vec<u64> = blocks
            .iter()
            .copied()
            .filter(|b| self.dirty.contains(b))
            .collect();
        self.write_sorted(&dirty)?;
        Ok(dirty.len())
    }

    /// Writes `dirty` (ascending, all dirty), coalescing runs.
    fn write_sorted(&mut self, dirty: &[u64]) -> Result<(), Errno> {
        if self.no_miss && !dirty.is_empty() {
            return Err(self.abort(Aborted::Io));
        }
        let max_run = (MAX_RUN_BYTES / self.bsize).max(1);
        let mut i = 0;
        let mut run = Vec::new();
        while i < dirty.len() {
            let start = dirty[i];
            let mut j = i + 1;
            while j < dirty.len() && dirty[j] == start + (j - i) as u64 && j - i < max_run {
                j += 1;
            }
            run.clear();
            for blk in &dirty[i..j] {
                let b = self.bufs.get(blk).ok_or(Errno::EIO)?;
                run.extend_from_slice(&b.data);
            }
            let (dev, lba) = (&self.dev, start * self.sectors_per_block);
            gated(&self.gate, || dev.write_blocks(lba, &run))?;
            self.stats.writes += 1;
            for blk in &dirty[i..j] {
                self.dirty.remove(blk);
            }
            i = j;
        }
        Ok(())
    }

    /// Writes back and issues the device barrier.
    pub fn sync(&mut self) -> Result<(), Errno> {
        self.write_back()?;
        self.device_io(|d| d.flush())
    }

    /// Drops every clean block.
    pub fn drop_clean(&mut self) {
        let dirty = &self.dirty;
        self.bufs.retain(|k, _| dirty.contains(k));
    }

    /// Keeps the cache under its limit before a block is added: writes
    /// back when dirty blocks fill half of it, then drops the least
    /// recently used quarter of the clean blocks.
    fn make_room(&mut self) -> Result<(), Errno> {
        if self.bufs.len() < self.limit {
            return Ok(());
        }
        if self.dirty.len() >= self.limit / 2 {
            self.write_back()?;
        }
        let mut clean: Vec<(u64, u64)> = self
            .bufs
            .iter()
            .filter(|(k, _)| !self.dirty.contains(k))
            .map(|(k, b)| (b.used, *k))
            .collect();
        clean.sort_unstable();
        let n = (self.limit / 4).max(1).min(clean.len());
        for (_, k) in &clean[..n] {
            self.bufs.remove(k);
        }
        self.stats.evictions += n as u64;
        if self.bufs.len() >= self.limit {
            // Everything left is dirty: write it so it can go next time.
            self.write_back()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::MemDevice;

    fn dev() -> Arc<MemDevice> {
        Arc::new(MemDevice::new(64))
    }

    #[test]
    fn write_back_is_deferred_until_sync() {
        let d = dev();
        let mut c = BufCache::new(d.clone(), 1024, 1 << 20).unwrap();
        c.modify(3).unwrap().fill(9);
        let mut raw = [0u8; 1024];
        d.read_blocks(6, &mut raw).unwrap();
        assert_eq!(raw, [0u8; 1024]);
        assert_eq!(c.read(3).unwrap()[0], 9);
        c.sync().unwrap();
        d.read_blocks(6, &mut raw).unwrap();
        assert_eq!(raw, [9u8; 1024]);
        assert_eq!(c.dirty_count(), 0);
    }

    #[test]
    fn coalesces_runs() {
        let d = dev();
        let mut c = BufCache::new(d.clone(), 1024, 1 << 20).unwrap();
        for b in [1, 2, 3, 7] {
            c.zeroed(b).unwrap().fill(b as u8);
        }
        c.write_back().unwrap();
        assert_eq!(c.stats().writes, 2);
        let bytes = d.to_bytes();
        assert_eq!(bytes[2048], 2);
        assert_eq!(bytes[7 * 1024 + 5], 7);
    }

    #[test]
    fn limit_evicts_and_writes_back() {
        let d = Arc::new(MemDevice::new(2 * 100));
        let mut c = BufCache::new(d.clone(), 1024, 16 * 1024).unwrap();
        for b in 0..100 {
            c.modify(b).unwrap()[0] = b as u8 + 1;
        }
        assert!(c.bufs.len() <= 16);
        c.sync().unwrap();
        let bytes = d.to_bytes();
        for b in 0..100usize {
            assert_eq!(bytes[b * 1024], b as u8 + 1);
        }
    }

    #[test]
    fn direct_io_is_coherent() {
        let d = dev();
        let mut c = BufCache::new(d.clone(), 1024, 1 << 20).unwrap();
        c.modify(5).unwrap().fill(1);
        let mut buf = vec![0u8; 3 * 1024];
        c.read_direct(4, &mut buf).unwrap();
        assert_eq!(buf[1024], 1);
        assert_eq!(buf[0], 0);
        c.write_direct(4, &vec![2u8; 2048]).unwrap();
        assert_eq!(c.read(5).unwrap()[0], 2);
        assert_eq!(c.dirty_count(), 0);
        assert_eq!(c.read(100), Err(Errno::EIO));
        assert_eq!(c.read_direct(63, &mut buf), Err(Errno::EIO));
    }

    #[test]
    fn write_blocks_writes_only_those_asked_for() {
        let d = dev();
        let mut c = BufCache::new(d.clone(), 1024, 1 << 20).unwrap();
        for b in [1, 2, 3, 5, 9] {
            c.zeroed(b).unwrap().fill(b as u8);
        }
        c.read(4).unwrap();
        let want: BTreeSet<u64> = [2, 3, 4, 9, 20].into_iter().collect();
        // 4 and 20 are not dirty; 2-3 is one run, 9 another.
        assert_eq!(c.write_blocks(&want).unwrap(), 3);
        assert_eq!(c.stats().writes, 2);
        let bytes = d.to_bytes();
        assert_eq!(
            (bytes[2 * 1024], bytes[3 * 1024], bytes[9 * 1024]),
            (2, 3, 9)
        );
        assert_eq!((bytes[1024], bytes[5 * 1024]), (0, 0));
        assert!(c.is_dirty(1) && c.is_dirty(5) && !c.is_dirty(2));
        assert_eq!(c.dirty_in(0..4).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn device_calls_go_through_the_gate() {
        use core::sync::atomic::{AtomicUsize, Ordering};
        struct Count(AtomicUsize);
        impl IoGate for Count {
            fn blocking(&self, f: &mut dyn FnMut()) {
                self.0.fetch_add(1, Ordering::Relaxed);
                f()
            }
        }
        let gate = Arc::new(Count(AtomicUsize::new(0)));
        let mut c = BufCache::new(dev(), 1024, 1 << 20).unwrap();
        c.set_gate(gate.clone());
        c.read(1).unwrap(); // miss: one call
        c.read(1).unwrap(); // hit: none
        c.modify(1).unwrap()[0] = 7;
        c.sync().unwrap(); // write and barrier
        let mut buf = vec![0u8; 2048];
        c.read_direct(0, &mut buf).unwrap();
        assert_eq!(buf[1024], 7);
        assert_eq!(gate.0.load(Ordering::Relaxed), 4);
        // A direct reader sees the device, without the gate.
        let r = c.direct_io();
        let mut one = vec![0u8; 1024];
        r.read(1, &mut one).unwrap();
        assert_eq!(one[0], 7);
        assert_eq!(r.read(64, &mut one), Err(Errno::EIO));
        assert_eq!(gate.0.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn no_miss_mode_and_fetches_outside_the_owner() {
        let d = dev();
        let mut c = BufCache::new(d.clone(), 1024, 1 << 20).unwrap();
        c.read(1).unwrap();
        c.set_no_miss(true);
        assert!(c.read(1).is_ok());
        assert_eq!(c.read(2).err(), Some(Errno::EAGAIN));
        assert_eq!(c.read(3).err(), Some(Errno::EAGAIN));
        assert!(c.has_aborted());
        // The first reason is kept.
        assert_eq!(c.take_aborted(), Some(Aborted::Block(2)));
        assert_eq!(c.device_io(|d| d.flush()), Err(Errno::EAGAIN));
        assert_eq!(c.take_aborted(), Some(Aborted::Io));
        c.set_no_miss(false);
        // A fetch nothing disturbs is cached.
        let r = c.direct_io();
        assert!(c.begin_fetch(2));
        let mut data = vec![0u8; 1024].into_boxed_slice();
        r.read(2, &mut data).unwrap();
        c.finish_fetch(2, Some(data)).unwrap();
        assert!(c.contains(2));
        assert!(!c.begin_fetch(2));
        // A fetch during which the block is written directly (or loaded,
        // zeroed, forgotten) is dropped: its data may be old.
        assert!(c.begin_fetch(3));
        let old = vec![0u8; 1024].into_boxed_slice();
        c.write_direct(3, &[5u8; 1024]).unwrap();
        c.finish_fetch(3, Some(old)).unwrap();
        assert!(!c.contains(3));
        assert_eq!(c.read(3).unwrap()[0], 5);
        for change in 0..3 {
            let blk = 10 + change;
            assert!(c.begin_fetch(blk));
            match change {
                0 => c.zeroed(blk).map(|_| ()).unwrap(),
                1 => c.read(blk).map(|_| ()).unwrap(),
                _ => c.forget(blk),
            }
            c.forget(blk);
            c.finish_fetch(blk, Some(vec![9u8; 1024].into_boxed_slice()))
                .unwrap();
            assert!(!c.contains(blk), "change {change}");
        }
        // A failed fetch caches nothing.
        assert!(c.begin_fetch(20));
        c.finish_fetch(20, None).unwrap();
        assert!(!c.contains(20));
    }

    #[test]
    fn read_only_device_refuses_modify() {
        let d = Arc::new(MemDevice::from_bytes(vec![0; 4096], true));
        let mut c = BufCache::new(d, 1024, 1 << 20).unwrap();
        assert!(c.read(1).is_ok());
        assert_eq!(c.modify(1).err(), Some(Errno::EROFS));
    }
}
