//! shmif: an Ethernet bus in a shared host file (after NetBSD's shmif(4);
//! the format is ours).
//!
//! Any number of kernels in any number of processes map the same file
//! (through `Hyper::shm_map`, no privileges needed) and see every frame
//! any of them sends, as on a hub. It is a test network: there is no
//! protection against a malicious member.
//!
//! # File format
//!
//! All integers are in host byte order (a bus file is not portable between
//! hosts of different byte order) and accessed atomically.
//!
//! ```text
//! offset  size  field
//!  0      4     magic        0x52534946 ("RSIF"), written last at creation
//!  4      4     version      1
//!  8      4     lock         0 = free, else the holder's process id
//! 12      4     (reserved)
//! 16      4     generation   bumped after every frame: the futex word
//! 20      4     waiters      readers sleeping on `generation`
//! 24      4     data size    D, bytes in the ring (a multiple of 8)
//! 28      4     (reserved)
//! 32      8     head         bytes ever published (a stream position)
//! 40      8     reserve      head + the record being written, if any
//! 48     16     (reserved)
//! 64      D     ring         records at stream position mod D
//! ```
//!
//! A record is a 24-byte header — `u32` frame length, `u32` flags (0),
//! `u64` sender id (random per interface, so a sender skips its own
//! frames), `u64` wall-clock time in ns — then the frame, padded to 8
//! bytes. Records wrap around the end of the ring.
//!
//! # Locking and crashes
//!
//! Writers serialise on the lock word (compare-and-swap 0 → pid). A writer
//! sets `reserve`, copies its record into the ring, sets `head`, releases
//! the lock, bumps `generation` and wakes sleepers (only if `waiters` is
//! non-zero). Readers take no lock: each keeps its own stream position,
//! copies a record, then checks `reserve` to see whether a writer lapped
//! it meanwhile (a seqlock); a lapped reader drops what it lost and
//! resynchronises at `head`, as an overrun Ethernet receiver would.
//!
//! A process that dies holding the lock does not wedge the bus: a writer
//! that has spun a while checks whether the holder's process still exists
//! (`Hyper::process_alive`) and takes the lock over if not. A writer that
//! died mid-copy never published its record (`head` did not move), so the
//! next writer simply overwrites it. A reader that dies leaves at most a
//! stale `waiters` count, which only costs writers a spurious wake-up.

use alloc::boxed::Box;
use alloc::format;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use hyper::{Hyper, SharedMem, ThreadHandle};
use kern::sync::{Sched, SleepMutex, SpinMutex};
use kern::Errno;

use crate::iface::Link;
use crate::stack::Stack;

pub const MAGIC: u32 = 0x5253_4946;
pub const VERSION: u32 = 1;
pub const OFF_MAGIC: usize = 0;
pub const OFF_VERSION: usize = 4;
pub const OFF_LOCK: usize = 8;
pub const OFF_GEN: usize = 16;
pub const OFF_WAITERS: usize = 20;
pub const OFF_DATA_SIZE: usize = 24;
pub const OFF_HEAD: usize = 32;
pub const OFF_RESERVE: usize = 40;
pub const HEADER_LEN: usize = 64;
/// Ring size of a new bus.
pub const DEFAULT_DATA_SIZE: usize = 4 << 20;
/// Record header length.
pub const REC_HDR: usize = 24;
/// Longest frame carried.
pub const MAX_FRAME: usize = 65536 + 64;

/// A bus mapped into this process.
pub struct ShmBus {
    mem: Box<dyn SharedMem>,
    data_size: u64,
    hyper: Arc<dyn Hyper>,
}

/// Why a read found nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// A frame of this length was copied out.
    Frame(usize),
    /// Our own frame: skipped.
    Own,
    /// Nothing new.
    Empty,
    /// We were lapped or found garbage; frames were lost.
    Resync,
}

fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

impl ShmBus {
    /// Maps the bus file `path`, creating and formatting it if needed.
    pub fn open(hyper: Arc<dyn Hyper>, path: &str) -> Result<ShmBus, Errno> {
        let mem = hyper.shm_map(path, HEADER_LEN + DEFAULT_DATA_SIZE)?;
        let mut bus = ShmBus {
            mem,
            data_size: 0,
            hyper,
        };
        bus.lock()?;
        let r = bus.format();
        bus.unlock();
        r?;
        Ok(bus)
    }

    fn format(&mut self) -> Result<(), Errno> {
        let m = &*self.mem;
        if m.load_u32(OFF_MAGIC)? == MAGIC {
            if m.load_u32(OFF_VERSION)? != VERSION {
                return Err(Errno::EPROTO);
            }
            let d = m.load_u32(OFF_DATA_SIZE)? as usize;
            if d == 0 || !d.is_multiple_of(8) || HEADER_LEN + d > m.len() {
                return Err(Errno::EPROTO);
            }
            self.data_size = d as u64;
            return Ok(());
        }
        let d = m.len() - HEADER_LEN;
        let d = d & !7;
        m.store_u32(OFF_VERSION, VERSION)?;
        m.store_u32(OFF_DATA_SIZE, d as u32)?;
        m.store_u64(OFF_HEAD, 0)?;
        m.store_u64(OFF_RESERVE, 0)?;
        m.store_u32(OFF_MAGIC, MAGIC)?;
        self.data_size = d as u64;
        Ok(())
    }

    /// Takes the writer lock, recovering it from a dead holder.
    fn lock(&self) -> Result<(), Errno> {
        let me = self.hyper.process_id().max(1);
        let mut spins: u32 = 0;
        loop {
            if self.mem.cas_u32(OFF_LOCK, 0, me)? == 0 {
                return Ok(());
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) {
                self.hyper.yield_now();
            }
            if spins.is_multiple_of(1024) {
                let owner = self.mem.load_u32(OFF_LOCK)?;
                if owner != 0
                    && owner != me
                    && !self.hyper.process_alive(owner)
                    && self.mem.cas_u32(OFF_LOCK, owner, me)? == owner
                {
                    return Ok(());
                }
            }
        }
    }

    fn unlock(&self) {
        let _ = self.mem.store_u32(OFF_LOCK, 0);
    }

    /// The current head: where a new reader starts.
    pub fn head(&self) -> u64 {
        self.mem.load_u64(OFF_HEAD).unwrap_or(0)
    }

    fn ring_write(&self, pos: u64, data: &[u8]) -> Result<(), Errno> {
        let off = (pos % self.data_size) as usize;
        let first = data.len().min(self.data_size as usize - off);
        self.mem.write(HEADER_LEN + off, &data[..first])?;
        if first < data.len() {
            self.mem.write(HEADER_LEN, &data[first..])?;
        }
        Ok(())
    }

    fn ring_read(&self, pos: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let off = (pos % self.data_size) as usize;
        let first = buf.len().min(self.data_size as usize - off);
        self.mem.read(HEADER_LEN + off, &mut buf[..first])?;
        if first < buf.len() {
            self.mem.read(HEADER_LEN, &mut buf[first..])?;
        }
        Ok(())
    }

    /// Publishes one frame from `sender`.
    pub fn send(&self, sender: u64, stamp_ns: u64, frame: &[u8]) -> Result<(), Errno> {
        self.send_batch(sender, stamp_ns, &[frame])
    }

    /// Publishes several frames under one lock and one wake-up. Frames too
    /// large for the bus are skipped (`EMSGSIZE` if all were).
    pub fn send_batch(&self, sender: u64, stamp_ns: u64, frames: &[&[u8]]) -> Result<(), Errno> {
        let fits = |f: &&[u8]| {
            f.len() <= MAX_FRAME && (REC_HDR + pad8(f.len())) as u64 <= self.data_size / 4
        };
        // Keep a batch within a quarter of the ring, so readers that keep
        // up are never lapped by one batch.
        let mut start = 0;
        let mut sent = false;
        while start < frames.len() {
            let mut end = start;
            let mut total = 0u64;
            while end < frames.len() {
                if fits(&frames[end]) {
                    let rec = (REC_HDR + pad8(frames[end].len())) as u64;
                    if total + rec > self.data_size / 4 && end > start {
                        break;
                    }
                    total += rec;
                }
                end += 1;
            }
            if total > 0 {
                self.publish(sender, stamp_ns, &frames[start..end], total, &fits)?;
                sent = true;
            }
            start = end;
        }
        if !sent && !frames.is_empty() {
            return Err(Errno::EMSGSIZE);
        }
        self.mem.fetch_add_u32(OFF_GEN, 1)?;
        if self.mem.load_u32(OFF_WAITERS)? != 0 {
            self.mem.wake_all(OFF_GEN)?;
        }
        Ok(())
    }

    fn publish(
        &self,
        sender: u64,
        stamp_ns: u64,
        frames: &[&[u8]],
        total: u64,
        fits: &dyn Fn(&&[u8]) -> bool,
    ) -> Result<(), Errno> {
        self.lock()?;
        let r = (|| {
            let head = self.mem.load_u64(OFF_HEAD)?;
            self.mem.store_u64(OFF_RESERVE, head + total)?;
            let mut at = head;
            for f in frames.iter().filter(|f| fits(f)) {
                let mut hdr = [0u8; REC_HDR];
                hdr[0..4].copy_from_slice(&(f.len() as u32).to_ne_bytes());
                hdr[8..16].copy_from_slice(&sender.to_ne_bytes());
                hdr[16..24].copy_from_slice(&stamp_ns.to_ne_bytes());
                self.ring_write(at, &hdr)?;
                self.ring_write(at + REC_HDR as u64, f)?;
                at += (REC_HDR + pad8(f.len())) as u64;
            }
            self.mem.store_u64(OFF_HEAD, head + total)
        })();
        self.unlock();
        r
    }

    /// Reads the record at `*pos` into a buffer from `alloc` (given the
    /// frame's length) and advances `*pos`.
    pub fn recv_into(
        &self,
        pos: &mut u64,
        me: u64,
        alloc: &mut dyn FnMut(usize) -> Vec<u8>,
    ) -> (ReadOutcome, Option<Vec<u8>>) {
        let head = self.head();
        if *pos == head {
            return (ReadOutcome::Empty, None);
        }
        if head < *pos || head - *pos > self.data_size {
            *pos = head;
            return (ReadOutcome::Resync, None);
        }
        let mut hdr = [0u8; REC_HDR];
        if self.ring_read(*pos, &mut hdr).is_err() {
            *pos = head;
            return (ReadOutcome::Resync, None);
        }
        let len = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let mut sb = [0u8; 8];
        sb.copy_from_slice(&hdr[8..16]);
        let sender = u64::from_ne_bytes(sb);
        let rec = (REC_HDR + pad8(len)) as u64;
        if len > MAX_FRAME || rec > head - *pos {
            *pos = head;
            return (ReadOutcome::Resync, None);
        }
        let mut frame = None;
        if sender != me {
            let mut b = alloc(len);
            if self
                .ring_read(*pos + REC_HDR as u64, &mut b[..len])
                .is_err()
            {
                *pos = head;
                return (ReadOutcome::Resync, None);
            }
            frame = Some(b);
        }
        // Seqlock check: had a writer begun to overwrite what we read?
        let reserve = self.mem.load_u64(OFF_RESERVE).unwrap_or(u64::MAX);
        if reserve.saturating_sub(*pos) > self.data_size {
            *pos = self.head();
            return (ReadOutcome::Resync, None);
        }
        *pos += rec;
        match frame {
            Some(f) => (ReadOutcome::Frame(len), Some(f)),
            None => (ReadOutcome::Own, None),
        }
    }

    /// Reads the record at `*pos` into `buf` (which must hold
    /// [`MAX_FRAME`] bytes) and advances `*pos`.
    pub fn recv(&self, pos: &mut u64, me: u64, buf: &mut [u8]) -> ReadOutcome {
        let (out, frame) = self.recv_into(pos, me, &mut |len| alloc::vec![0u8; len]);
        if let Some(f) = frame {
            buf[..f.len()].copy_from_slice(&f);
        }
        out
    }

    /// Sleeps until the bus may have a frame past `pos`, or `deadline`.
    pub fn wait(&self, pos: u64, deadline: Option<u64>) {
        let Ok(gen) = self.mem.load_u32(OFF_GEN) else {
            return;
        };
        let _ = self.mem.fetch_add_u32(OFF_WAITERS, 1);
        if self.head() == pos {
            let _ = self.mem.wait_u32(OFF_GEN, gen, deadline);
        }
        let _ = self.mem.fetch_add_u32(OFF_WAITERS, u32::MAX);
    }

    /// Wakes every sleeper on the bus (used to stop our own reader).
    pub fn wake(&self) {
        let _ = self.mem.fetch_add_u32(OFF_GEN, 1);
        let _ = self.mem.wake_all(OFF_GEN);
    }
}

/// An interface attached to a shmif bus: sends in the caller's thread,
/// receives on a kernel thread, and also in any thread of this kernel that
/// spins waiting on a socket (see [`RxPort`]).
struct ShmifLink {
    bus: Arc<ShmBus>,
    me: u64,
    hyper: Arc<dyn Hyper>,
    stop: Arc<AtomicBool>,
    thread: SpinMutex<Option<Box<dyn ThreadHandle>>>,
    port: Arc<RxPort>,
}

/// The receiving end of an attachment: the read position in the ring,
/// under a lock that whoever drains the ring holds until the frames it took
/// are processed, so frames enter the stack in bus order. That takes a
/// while (TCP work, transmits), so the lock is a sleeping one: a thread
/// that needs it while another drains sleeps instead of spinning.
///
/// The reader thread drains it after waking on the bus futex; a thread
/// spinning in a blocking socket call drains it too ([`Stack::poll_rx`]),
/// so a reply that is microseconds away is taken in by the thread waiting
/// for it, without a hand-off through the reader thread (two wake-ups per
/// round trip fewer between processes).
pub(crate) struct RxPort {
    pos: SleepMutex<u64>,
    bus: Arc<ShmBus>,
    me: u64,
    ifindex: usize,
    /// The interface let go of the bus; its index may soon name another.
    detached: AtomicBool,
    /// The reader thread's parker, woken when the last spinning socket
    /// call of the kernel stops draining for it.
    reader: SpinMutex<Option<Arc<dyn hyper::Parker>>>,
}

impl RxPort {
    /// Takes the frames that arrived (up to a burst) and processes them;
    /// whether there were any. `wait`: take the lock even if another
    /// thread holds it (the reader thread); otherwise give up at once.
    pub(crate) fn drain(&self, s: &Stack, wait: bool) -> bool {
        if self.detached.load(Ordering::Acquire) {
            return false;
        }
        let mut pos = match self.pos.try_lock() {
            Some(p) => p,
            None if wait => self.pos.lock(),
            None => return false,
        };
        let mut burst = Vec::new();
        while burst.len() < 64 {
            match self
                .bus
                .recv_into(&mut pos, self.me, &mut |len| s.pool.get(len))
            {
                (ReadOutcome::Frame(_), Some(f)) => burst.push(f),
                (ReadOutcome::Empty, _) => break,
                _ => {}
            }
        }
        if burst.is_empty() {
            return false;
        }
        s.input_batch(self.ifindex, burst);
        true
    }

    fn position(&self) -> u64 {
        *self.pos.lock()
    }

    /// Whether the ring may hold frames this port has not taken (or
    /// another thread is taking them right now).
    fn pending(&self) -> bool {
        match self.pos.try_lock() {
            Some(p) => self.bus.head() != *p,
            None => true,
        }
    }

    /// Wakes the reader thread (no thread spins for it any more).
    pub(crate) fn wake_reader(&self) {
        if let Some(p) = self.reader.lock().as_ref() {
            p.unpark();
        }
    }
}

/// Opens bus file `path` for interface `ifindex` and starts its reader.
pub(crate) fn attach(
    stack: &Stack,
    path: &str,
    ifindex: usize,
    ifname: &str,
) -> Result<Arc<dyn Link>, Errno> {
    let k = stack.kernel.upgrade().ok_or(Errno::ESHUTDOWN)?;
    kern::hostpolicy::check(&k, kern::hostpolicy::HostAccess::ShmBus, path)?;
    let bus = Arc::new(ShmBus::open(stack.hyper.clone(), path)?);
    let mut id = [0u8; 8];
    stack.hyper.random_fill(&mut id);
    let me = u64::from_ne_bytes(id) | 1;
    let stop = Arc::new(AtomicBool::new(false));
    let weak = stack.this.clone();
    let port = Arc::new(RxPort {
        pos: SleepMutex::new(&stack.sched, bus.head()),
        bus: bus.clone(),
        me,
        ifindex,
        detached: AtomicBool::new(false),
        reader: SpinMutex::new(None),
    });
    let (b2, p2, s2, h2) = (bus.clone(), port.clone(), stop.clone(), stack.hyper.clone());
    let sched = stack.sched.clone();
    let handle = k.spawn_thread(
        &format!("{ifname}.rx"),
        Box::new(move || reader(&b2, &p2, &weak, &s2, &*h2, &sched)),
    )?;
    stack.add_rx_port(&port);
    Ok(Arc::new(ShmifLink {
        bus,
        me,
        hyper: stack.hyper.clone(),
        stop,
        thread: SpinMutex::new(Some(handle)),
        port,
    }))
}

/// Longest spin of the reader thread before it sleeps on the bus futex.
const READER_SPIN_MAX_NS: u64 = 50_000;
/// Shortest (the spin adapts between the two).
const READER_SPIN_MIN_NS: u64 = 1_000;

fn reader(
    bus: &ShmBus,
    port: &RxPort,
    stack: &Weak<Stack>,
    stop: &AtomicBool,
    hyper: &dyn Hyper,
    sched: &Sched,
) {
    let parker = hyper.current_parker();
    *port.reader.lock() = Some(parker.clone());
    // How long to spin before the futex sleep: doubled when a spin found
    // a frame, halved when it did not (a bus that is quiet for long costs
    // next to nothing; one with a frame every few microseconds avoids the
    // futex round trip).
    let mut spin_ns = READER_SPIN_MAX_NS / 4;
    while !stop.load(Ordering::Acquire) {
        let Some(s) = stack.upgrade() else {
            return;
        };
        // Take what is there (up to a burst) and hand it over at once.
        if port.drain(&s, true) {
            continue;
        }
        // A socket call of this kernel is spinning and drains the bus
        // itself: stay out of its way (no spinning, no futex wake-ups per
        // frame) until it stops.
        if s.rx_pollers() > 0 {
            drop(s);
            parker.park_until(Some(hyper.clock_monotonic() + 10_000_000));
            continue;
        }
        drop(s);
        // Spin a little (a frame is often microseconds away), through the
        // platform and only with a spin slot, then sleep on the futex.
        let now = hyper.clock_monotonic();
        let mut found = false;
        if let Some(_slot) = sched.try_spin() {
            let end = now.saturating_add(spin_ns);
            let mut rounds = 0u32;
            loop {
                sched.relax();
                if port.pending() || stop.load(Ordering::Acquire) {
                    found = true;
                    break;
                }
                rounds = rounds.wrapping_add(1);
                if rounds.is_multiple_of(8) && hyper.clock_monotonic() >= end {
                    break;
                }
            }
        }
        if found {
            spin_ns = (spin_ns * 2).min(READER_SPIN_MAX_NS);
            continue;
        }
        spin_ns = (spin_ns / 2).max(READER_SPIN_MIN_NS);
        bus.wait(port.position(), Some(now + 100_000_000));
    }
}

impl ShmifLink {
    fn stamp(&self) -> u64 {
        let w = self.hyper.clock_wall();
        (w.sec.max(0) as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(w.nsec as u64)
    }
}

impl Link for ShmifLink {
    fn transmit(&self, frame: Vec<u8>) -> Option<Vec<u8>> {
        let _ = self.bus.send(self.me, self.stamp(), &frame);
        Some(frame)
    }

    fn transmit_batch(&self, frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        let _ = self.bus.send_batch(self.me, self.stamp(), &refs);
        frames
    }

    fn detach(&self) {
        self.stop.store(true, Ordering::Release);
        self.port.detached.store(true, Ordering::Release);
        self.port.wake_reader();
        self.bus.wake();
        let t = self.thread.lock().take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

impl Drop for ShmifLink {
    fn drop(&mut self) {
        self.detach();
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use hyper_posix::PosixHyper;

    fn open(path: &std::path::Path) -> ShmBus {
        ShmBus::open(Arc::new(PosixHyper::new()), path.to_str().unwrap()).unwrap()
    }

    #[test]
    fn frames_cross_mappings_and_wrap() {
        let dir = std::env::temp_dir().join(format!("shmif-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("bus1");
        let _ = std::fs::remove_file(&path);
        let a = open(&path);
        let b = open(&path);
        let mut pos = b.head();
        let mut buf = alloc::vec![0u8; MAX_FRAME];
        assert_eq!(b.recv(&mut pos, 2, &mut buf), ReadOutcome::Empty);
        // Enough frames to wrap the ring several times, read as we go.
        for i in 0..20_000u32 {
            let frame: Vec<u8> = (0..(60 + i % 1400)).map(|j| (i + j) as u8).collect();
            a.send(1, 0, &frame).unwrap();
            assert_eq!(
                b.recv(&mut pos, 2, &mut buf),
                ReadOutcome::Frame(frame.len())
            );
            assert_eq!(&buf[..frame.len()], &frame[..]);
        }
        // The sender skips its own frames.
        let mut apos = a.head();
        a.send(1, 0, b"mine").unwrap();
        assert_eq!(a.recv(&mut apos, 1, &mut buf), ReadOutcome::Own);
        // A reader that falls a whole ring behind resynchronises.
        let mut slow = b.head();
        for _ in 0..(DEFAULT_DATA_SIZE / 1000 + 10) {
            a.send(1, 0, &[7u8; 1000]).unwrap();
        }
        assert_eq!(b.recv(&mut slow, 2, &mut buf), ReadOutcome::Resync);
        assert_eq!(slow, b.head());
        assert_eq!(
            a.send(1, 0, &alloc::vec![0u8; MAX_FRAME + 1]),
            Err(Errno::EMSGSIZE)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn lock_of_a_dead_process_is_recovered() {
        let dir = std::env::temp_dir().join(format!("shmif-lock-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("bus2");
        let _ = std::fs::remove_file(&path);
        let a = open(&path);
        // A pid that cannot exist holds the lock, as if it died holding it.
        a.mem.store_u32(OFF_LOCK, 0x7fff_fff0).unwrap();
        a.send(1, 0, b"after the crash").unwrap();
        assert_eq!(a.mem.load_u32(OFF_LOCK).unwrap(), 0);
        // A file with a foreign version is refused, not misread.
        let other = dir.join("bus3");
        let c = open(&other);
        c.mem.store_u32(OFF_VERSION, 99).unwrap();
        assert_eq!(
            ShmBus::open(Arc::new(PosixHyper::new()), other.to_str().unwrap()).err(),
            Some(Errno::EPROTO)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
