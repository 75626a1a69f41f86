//! Disks and tap links through hypercalls.
//!
//! A disk is named as on the runner's command line (`/dev/disk0`); its
//! hypercall handle is its index in the boot block. Block I/O goes straight
//! between the disk and the caller's buffer (guest memory is identity
//! mapped, so a buffer's address is its guest-physical address). Frames
//! are received without waiting; a thread with nothing to read blocks in
//! the scheduler until the runner's `POLL` says the link has a frame.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, Ordering};

use hyper::{BlockIo, BlockOpenFlags, Errno, FrameIo, MonoNs};
use uk_abi::{BootInfoRepr, Call, Error as AbiError, MAX_IO_LEN};

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
    let index = boot
        .nets()
        .enumerate()
        .find(|(i, n)| {
            n.name.as_str() == name
                || name
                    .strip_prefix("net")
                    .and_then(|s| s.parse::<usize>().ok())
                    == Some(*i)
        })
        .map(|(i, _)| i as u32)
        .ok_or(Errno::ENODEV)?;
    Ok(Box::new(Tap {
        index,
        closed: AtomicBool::new(false),
    }))
}

struct Tap {
    index: u32,
    closed: AtomicBool,
}

impl FrameIo for Tap {
    fn send(&self, frame: &[u8]) -> Result<(), Errno> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Errno::ESHUTDOWN);
        }
        hypercall(&Call::NetSend {
            net: self.index,
            gpa: frame.as_ptr() as u64,
            len: frame.len() as u64,
        })
        .0
        .map(|_| ())
        .map_err(hyper_errno)
    }

    fn recv(&self, buf: &mut [u8], deadline: Option<MonoNs>) -> Result<usize, Errno> {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(Errno::ESHUTDOWN);
            }
            match hypercall(&Call::NetRecv {
                net: self.index,
                gpa: buf.as_mut_ptr() as u64,
                len: buf.len() as u64,
            })
            .0
            {
                Ok(n) => return Ok(n as usize),
                Err(AbiError::Again) => {}
                Err(e) => return Err(hyper_errno(e)),
            }
            if deadline.is_some_and(|d| now_ns() >= d) {
                return Err(Errno::ETIMEDOUT);
            }
            sched::block(deadline, Some(self.index), false);
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        sched::wake_net(self.index);
    }
}
