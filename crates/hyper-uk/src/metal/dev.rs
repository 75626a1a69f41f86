//! Disks and tap links through hypercalls.
//!
//! A disk is named as on the runner's command line (`/dev/disk0`); its
//! hypercall handle is its index in the boot block. Block I/O goes straight
//! between the disk and the caller's buffer (guest memory is identity
//! mapped, so a buffer's address is its guest-physical address). Frames
//! move in batches (`uk_abi::batch`): a receive takes every frame waiting
//! with one hypercall, and sent frames queue until the sender waits or the
//! batch fills. A thread with nothing to read blocks in the scheduler
//! until the runner's `POLL` says the link has a frame.

use alloc::boxed::Box;
use alloc::sync::{Arc, Weak};
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use hyper::{BlockIo, BlockOpenFlags, Errno, FrameIo, MonoNs};
use uk_abi::{batch, BootInfoRepr, Call, Error as AbiError, MAX_IO_LEN};

use super::{hyper_errno, hypercall, now_ns, sched};

pub fn open_disk(
    boot: &BootInfoRepr<'static>,
    name: &str,
    flags: BlockOpenFlags,
) -> Result<Box<dyn BlockIo>, Errno> {
    let (index, d) = boot
        .disks()
        .enumerate()
        .find(|(_, d)| d.name.as_str() == name)
        .ok_or(Errno::ENOENT)?;
    let writable = flags.writable || flags.create;
    if writable && d.read_only {
        return Err(Errno::EROFS);
    }
    Ok(Box::new(Disk {
        index: index as u32,
        size: d.size,
        read_only: !writable,
    }))
}

struct Disk {
    index: u32,
    size: u64,
    read_only: bool,
}

impl Disk {
    fn io(&self, offset: u64, ptr: u64, len: usize, is_write: bool) -> Result<usize, Errno> {
        let mut done = 0usize;
        while done < len {
            let n = (len - done).min(MAX_IO_LEN as usize);
            let (disk, off, gpa, l) = (
                self.index,
                offset + done as u64,
                ptr + done as u64,
                n as u64,
            );
            let call = if is_write {
                Call::BlkWrite {
                    disk,
                    offset: off,
                    gpa,
                    len: l,
                }
            } else {
                Call::BlkRead {
                    disk,
                    offset: off,
                    gpa,
                    len: l,
                }
            };
            hypercall(&call).0.map_err(hyper_errno)?;
            done += n;
        }
        Ok(done)
    }
}

impl BlockIo for Disk {
    fn size(&self) -> Result<u64, Errno> {
        Ok(self.size)
    }

    fn read_vectored_at(&self, offset: u64, bufs: &mut [&mut [u8]]) -> Result<usize, Errno> {
        let mut at = offset;
        let mut total = 0;
        for b in bufs.iter_mut() {
            // Short at the end of the disk, as a file would be.
            let n = (self.size.saturating_sub(at)).min(b.len() as u64) as usize;
            if n == 0 {
                break;
            }
            total += self.io(at, b.as_mut_ptr() as u64, n, false)?;
            at += n as u64;
            if n < b.len() {
                break;
            }
        }
        Ok(total)
    }

    fn write_vectored_at(&self, offset: u64, bufs: &[&[u8]]) -> Result<usize, Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        let mut at = offset;
        let mut total = 0;
        for b in bufs {
            let end = at.checked_add(b.len() as u64).ok_or(Errno::EINVAL)?;
            if end > self.size {
                // A disk does not grow.
                return Err(Errno::ENOSPC);
            }
            total += self.io(at, b.as_ptr() as u64, b.len(), true)?;
            at = end;
        }
        Ok(total)
    }

    fn flush(&self) -> Result<(), Errno> {
        if self.read_only {
            return Ok(());
        }
        hypercall(&Call::BlkFlush { disk: self.index })
            .0
            .map(|_| ())
            .map_err(hyper_errno)
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }
}

pub fn open_tap(boot: &BootInfoRepr<'static>, name: &str) -> Result<Box<dyn FrameIo>, Errno> {
    let (index, mtu) = boot
        .nets()
        .enumerate()
        .find(|(i, n)| {
            n.name.as_str() == name
                || name
                    .strip_prefix("net")
                    .and_then(|s| s.parse::<usize>().ok())
                    == Some(*i)
        })
        .map(|(i, n)| (i as u32, n.mtu))
        .ok_or(Errno::ENODEV)?;
    let inner = Arc::new(TapInner {
        index,
        // An Ethernet header and a VLAN tag on top of the MTU.
        max_frame: (mtu as usize + 18).min(batch::MAX_FRAME_LEN),
        closed: AtomicBool::new(false),
        rx: spin::Mutex::new(Rx {
            buf: vec![0u8; RX_BATCH],
            count: 0,
            taken: 0,
            at: 0,
        }),
        tx: spin::Mutex::new(Tx {
            buf: vec![0u8; TX_BATCH],
            used: 0,
            count: 0,
        }),
    });
    TAPS.lock().push(Arc::downgrade(&inner));
    Ok(Box::new(Tap(inner)))
}

/// Bytes of the receive batch of a link: a burst of about 170 full-size
/// frames comes in with one hypercall.
const RX_BATCH: usize = 256 << 10;
/// Bytes of the send batch: frames queue here until the sending thread
/// waits (the scheduler then sends them with one hypercall) or it fills.
const TX_BATCH: usize = 256 << 10;

// Open links, for the scheduler's flush before it switches threads or
// idles: platform state of the one vCPU, not kernel state.
static TAPS: spin::Mutex<Vec<Weak<TapInner>>> = spin::Mutex::new(Vec::new());

/// Sends every queued frame of every link (the scheduler calls this
/// before it switches threads or idles, so a frame waits at most until
/// its sender waits).
pub fn flush_all() {
    let taps: Vec<Arc<TapInner>> = {
        let mut g = TAPS.lock();
        g.retain(|w| w.strong_count() > 0);
        g.iter().filter_map(|w| w.upgrade()).collect()
    };
    for t in taps {
        let mut tx = t.tx.lock();
        let _ = t.flush(&mut tx);
    }
}

/// Sends the queued frames of the one link and receives into its empty
/// receive batch with one hypercall (`NetIo`), waiting up to `timeout_ns`
/// for a frame. Applies when exactly one link is open and its threads are
/// the ones waiting for frames (`nets`); returns the links with frames
/// then, or `None` where it does not apply (the caller flushes and polls).
pub fn net_io(timeout_ns: u64, nets: u64) -> Option<u64> {
    let t = {
        let mut g = TAPS.lock();
        g.retain(|w| w.strong_count() > 0);
        if g.len() != 1 {
            return None;
        }
        g[0].upgrade()?
    };
    if nets != 1 << t.index || t.closed.load(Ordering::Acquire) {
        return None;
    }
    let mut rx = t.rx.lock();
    if rx.taken < rx.count {
        return None;
    }
    let mut tx = t.tx.lock();
    let desc = batch::IoDesc {
        timeout_ns,
        net: t.index,
        tx_gpa: tx.buf.as_ptr() as u64,
        tx_len: tx.used as u64,
        tx_count: tx.count as u64,
        rx_gpa: rx.buf.as_mut_ptr() as u64,
        rx_len: rx.buf.len() as u64,
        max_frame: t.max_frame as u64,
    };
    let raw = desc.emit();
    let r = hypercall(&Call::NetIo {
        desc: raw.as_ptr() as u64,
    })
    .0;
    tx.used = 0;
    tx.count = 0;
    let n = r.unwrap_or(0) as usize;
    rx.count = n;
    rx.taken = 0;
    rx.at = 0;
    Some(if n > 0 { 1 << t.index } else { 0 })
}

struct Rx {
    buf: Vec<u8>,
    /// Records in the batch, and how many were handed out.
    count: usize,
    taken: usize,
    /// Offset of the next record.
    at: usize,
}

struct Tx {
    buf: Vec<u8>,
    used: usize,
    count: usize,
}

struct TapInner {
    index: u32,
    max_frame: usize,
    closed: AtomicBool,
    rx: spin::Mutex<Rx>,
    tx: spin::Mutex<Tx>,
}

impl TapInner {
    fn flush(&self, tx: &mut Tx) -> Result<(), Errno> {
        if tx.count == 0 {
            return Ok(());
        }
        let r = hypercall(&Call::NetSendBatch {
            net: self.index,
            gpa: tx.buf.as_ptr() as u64,
            len: tx.used as u64,
            count: tx.count as u64,
        })
        .0;
        tx.used = 0;
        tx.count = 0;
        r.map(|_| ()).map_err(hyper_errno)
    }
}

struct Tap(Arc<TapInner>);

impl FrameIo for Tap {
    fn send(&self, frame: &[u8]) -> Result<(), Errno> {
        let t = &self.0;
        if t.closed.load(Ordering::Acquire) {
            return Err(Errno::ESHUTDOWN);
        }
        if frame.len() > batch::MAX_FRAME_LEN {
            // Longer than any link takes: dropped, as on a wire.
            return Ok(());
        }
        let mut tx = t.tx.lock();
        loop {
            let used = tx.used;
            if let Some(end) = batch::append(&mut tx.buf, used, frame) {
                tx.used = end;
                tx.count += 1;
                return Ok(());
            }
            t.flush(&mut tx)?;
        }
    }

    fn recv(&self, buf: &mut [u8], deadline: Option<MonoNs>) -> Result<usize, Errno> {
        let t = &self.0;
        loop {
            if t.closed.load(Ordering::Acquire) {
                return Err(Errno::ESHUTDOWN);
            }
            {
                let mut rx = t.rx.lock();
                if rx.taken < rx.count {
                    let mut header = [0u8; batch::RECORD_HEADER];
                    let at = rx.at;
                    header.copy_from_slice(&rx.buf[at..at + batch::RECORD_HEADER]);
                    let Ok((off, flen, next)) = batch::parse_header(header, at, rx.buf.len())
                    else {
                        // The runner wrote a bad batch: drop the rest.
                        rx.count = 0;
                        continue;
                    };
                    rx.at = next;
                    rx.taken += 1;
                    let n = flen.min(buf.len());
                    buf[..n].copy_from_slice(&rx.buf[off..off + n]);
                    return Ok(n);
                }
                if rx.count > 0 {
                    // A batch just ran out: rather than ask the runner at
                    // once (most often for nothing), wait; the scheduler's
                    // next POLL says when frames are there.
                    rx.count = 0;
                    drop(rx);
                    if deadline.is_some_and(|d| now_ns() >= d) {
                        return Err(Errno::ETIMEDOUT);
                    }
                    sched::block(deadline, Some(t.index), false);
                    continue;
                }
                let len = rx.buf.len() as u64;
                match hypercall(&Call::NetRecvBatch {
                    net: t.index,
                    gpa: rx.buf.as_mut_ptr() as u64,
                    len,
                    max_frame: t.max_frame as u64,
                })
                .0
                {
                    Ok(0) | Err(AbiError::Again) => {}
                    Ok(n) => {
                        rx.count = n as usize;
                        rx.taken = 0;
                        rx.at = 0;
                        continue;
                    }
                    Err(e) => return Err(hyper_errno(e)),
                }
            }
            if deadline.is_some_and(|d| now_ns() >= d) {
                return Err(Errno::ETIMEDOUT);
            }
            sched::block(deadline, Some(t.index), false);
        }
    }

    fn close(&self) {
        let t = &self.0;
        {
            let mut tx = t.tx.lock();
            let _ = t.flush(&mut tx);
        }
        t.closed.store(true, Ordering::Release);
        sched::wake_net(t.index);
    }
}
