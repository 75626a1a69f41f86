//! The caller's memory: the [`Memory`] trait, a `Vec`-backed
//! implementation for tests ([`VecMemory`]), and the readers the calls are
//! built on (bounded C strings, integers, `iovec` arrays).

use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use sys::consts::{IOV_MAX, PATH_MAX};
use sys::Errno;

use crate::layout::iovec;

/// The memory of the process whose system call is being served. Both
/// methods move the whole range or fail with `EFAULT` (an address range
/// that is not mapped, or not writable, or wraps).
pub trait Memory {
    /// Copies `buf.len()` bytes from `addr` into `buf`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Copies `data` to `addr`.
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno>;
}

/// The page size the string reader steps by, so that a read never
/// crosses into a page the string does not reach.
const PAGE: u64 = 4096;

/// Reads the NUL-terminated string at `addr`, without the NUL. A string
/// with no NUL within `PATH_MAX` bytes is `ENAMETOOLONG` (Linux counts the
/// NUL in `PATH_MAX`); an unreadable byte before the NUL is `EFAULT`.
pub fn read_cstr(mem: &dyn Memory, addr: u64) -> Result<Vec<u8>, Errno> {
    read_cstr_max(mem, addr, PATH_MAX)
}

/// [`read_cstr`] with a bound of `max` bytes including the NUL.
pub fn read_cstr_max(mem: &dyn Memory, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < max {
        // Up to the end of the page, and never beyond `max`.
        let to_page_end = PAGE - (at % PAGE);
        let n = (to_page_end as usize).min(max - out.len());
        let mut chunk = vec![0u8; n];
        mem.read(at, &mut chunk)?;
        if let Some(end) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Ok(out);
        }
        out.extend_from_slice(&chunk);
        at = at.checked_add(n as u64).ok_or(Errno::EFAULT)?;
    }
    Err(Errno::ENAMETOOLONG)
}

/// Reads `len` bytes at `addr` (no access for `len == 0`, as Linux
/// accepts any pointer for an empty buffer).
pub fn read_bytes(mem: &dyn Memory, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut b = vec![0u8; len];
    if len > 0 {
        mem.read(addr, &mut b)?;
    }
    Ok(b)
}

/// Writes `data` at `addr` (nothing for an empty slice).
pub fn write_bytes(mem: &dyn Memory, addr: u64, data: &[u8]) -> Result<(), Errno> {
    if data.is_empty() {
        return Ok(());
    }
    mem.write(addr, data)
}

pub fn read_u32(mem: &dyn Memory, addr: u64) -> Result<u32, Errno> {
    let mut b = [0u8; 4];
    mem.read(addr, &mut b)?;
    Ok(u32::from_ne_bytes(b))
}

pub fn read_u64(mem: &dyn Memory, addr: u64) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    mem.read(addr, &mut b)?;
    Ok(u64::from_ne_bytes(b))
}

/// Native-endian field `at..at+8` of `b` (which the caller sized).
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(a)
}

/// One `struct iovec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iovec {
    pub base: u64,
    pub len: u64,
}

/// Reads `cnt` iovecs at `addr`. `EINVAL` for more than `IOV_MAX` of
/// them or a total length beyond `isize::MAX` (readv(2)).
pub fn read_iovecs(mem: &dyn Memory, addr: u64, cnt: u64) -> Result<Vec<Iovec>, Errno> {
    if cnt > IOV_MAX as u64 {
        return Err(Errno::EINVAL);
    }
    let raw = read_bytes(mem, addr, cnt as usize * iovec::SIZE)?;
    let mut total: u64 = 0;
    let mut v = Vec::with_capacity(cnt as usize);
    for i in 0..cnt as usize {
        let at = i * iovec::SIZE;
        let iov = Iovec {
            base: u64_at(&raw, at + iovec::BASE),
            len: u64_at(&raw, at + iovec::LEN),
        };
        total = total.checked_add(iov.len).ok_or(Errno::EINVAL)?;
        if total > isize::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        v.push(iov);
    }
    Ok(v)
}

/// Gathers up to `max` bytes from `iovs` (what `writev` sends).
pub fn gather(mem: &dyn Memory, iovs: &[Iovec], max: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    for iov in iovs {
        let room = max - out.len();
        if room == 0 {
            break;
        }
        let n = (iov.len as usize).min(room);
        out.extend_from_slice(&read_bytes(mem, iov.base, n)?);
    }
    Ok(out)
}

/// Scatters `data` over `iovs` (what `readv` fills). `EFAULT` if nothing
/// could be written; otherwise the bytes placed before a bad buffer.
pub fn scatter(mem: &dyn Memory, iovs: &[Iovec], data: &[u8]) -> Result<usize, Errno> {
    let mut done = 0;
    for iov in iovs {
        if done == data.len() {
            break;
        }
        let n = (iov.len as usize).min(data.len() - done);
        if let Err(e) = write_bytes(mem, iov.base, &data[done..done + n]) {
            return if done == 0 { Err(e) } else { Ok(done) };
        }
        done += n;
    }
    Ok(done)
}

/// A process's memory as one `Vec`, mapped at `base` (so that small
/// addresses, NULL among them, fault). For tests and tools; not `Sync`.
#[derive(Debug)]
pub struct VecMemory {
    base: u64,
    bytes: RefCell<Vec<u8>>,
}

impl VecMemory {
    /// `len` zero bytes at `base`.
    pub fn new(base: u64, len: usize) -> VecMemory {
        VecMemory {
            base,
            bytes: RefCell::new(vec![0u8; len]),
        }
    }

    /// The first mapped address.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// One past the last mapped address.
    pub fn end(&self) -> u64 {
        self.base + self.bytes.borrow().len() as u64
    }

    fn range(&self, addr: u64, len: usize) -> Result<core::ops::Range<usize>, Errno> {
        let off = addr.checked_sub(self.base).ok_or(Errno::EFAULT)?;
        let end = off.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        if end > self.bytes.borrow().len() as u64 {
            return Err(Errno::EFAULT);
        }
        Ok(off as usize..end as usize)
    }

    /// A copy of `len` bytes at `addr` (`EFAULT` outside the mapping).
    pub fn peek(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let r = self.range(addr, len)?;
        Ok(self.bytes.borrow()[r].to_vec())
    }
}

impl Memory for VecMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.bytes.borrow()[r]);
        Ok(())
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        let r = self.range(addr, data.len())?;
        self.bytes.borrow_mut()[r].copy_from_slice(data);
        Ok(())
    }
}
