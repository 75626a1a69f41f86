//! Network hypercalls on Linux: shared-memory files for the `shmif` bus
//! ([`map_shared`], a `MAP_SHARED` mapping with futex waits) and tap
//! devices ([`open_tap`], `/dev/net/tun` with `IFF_TAP | IFF_NO_PI`,
//! optionally inside a named network namespace).
//!
//! Every access to shared memory is atomic, so processes that write the
//! bus while we read it cause no undefined behaviour, only torn frames the
//! kernel's bus code detects and drops. Neighbours: `lib.rs` wires these
//! into [`hyper::Hyper`]; the `shmif` format itself lives in the `net` crate.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use hyper::{Errno, FrameIo, MonoNs, SharedMem};

use crate::{clock_origin, errno_from_io};

/// Largest mapping we agree to make (a bus file is a few MiB).
const MAX_SHM: usize = 1 << 30;

/// A `MAP_SHARED` mapping of a host file.
pub(crate) struct PosixShm {
    base: *mut u8,
    len: usize,
    _file: std::fs::File,
}

// SAFETY: the mapping is plain memory that stays valid until drop, and
// every access through `PosixShm` is atomic, so it may be shared and sent
// between threads.
unsafe impl Send for PosixShm {}
// SAFETY: as above: all accesses are atomic.
unsafe impl Sync for PosixShm {}

/// Opens (creating if needed) `path`, grows it to `size` bytes if it is
/// smaller, and maps it shared.
pub(crate) fn map_shared(path: &str, size: usize) -> Result<Box<dyn SharedMem>, Errno> {
    if size == 0 || size > MAX_SHM {
        return Err(Errno::EINVAL);
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| errno_from_io(&e))?;
    let cur = file.metadata().map_err(|e| errno_from_io(&e))?.len();
    if cur < size as u64 {
        // Growing is idempotent when several processes race: each sets
        // the same length, and new bytes read as zero.
        file.set_len(size as u64).map_err(|e| errno_from_io(&e))?;
    }
    // SAFETY: a fresh shared mapping of `size` bytes of an open file; the
    // kernel chooses the address. The result is checked below.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(errno_from_io(&io::Error::last_os_error()));
    }
    Ok(Box::new(PosixShm {
        base: base.cast(),
        len: size,
        _file: file,
    }))
}

impl PosixShm {
    fn check(&self, off: usize, len: usize, align: usize) -> Result<*mut u8, Errno> {
        let end = off.checked_add(len).ok_or(Errno::EINVAL)?;
        if end > self.len || !off.is_multiple_of(align) {
            return Err(Errno::EINVAL);
        }
        // SAFETY: `off + len <= self.len`, so the pointer stays inside the
        // mapping.
        Ok(unsafe { self.base.add(off) })
    }

    fn word32(&self, off: usize) -> Result<&AtomicU32, Errno> {
        let p = self.check(off, 4, 4)?;
        // SAFETY: `p` is 4-aligned, inside the live mapping for as long as
        // `self` lives, and only ever accessed atomically.
        Ok(unsafe { &*(p as *const AtomicU32) })
    }

    fn word64(&self, off: usize) -> Result<&AtomicU64, Errno> {
        let p = self.check(off, 8, 8)?;
        // SAFETY: as in `word32`, with 8-byte alignment.
        Ok(unsafe { &*(p as *const AtomicU64) })
    }

    /// `[off, off + len)` as bytes.
    fn bytes(&self, off: usize, len: usize) -> Result<&[AtomicU8], Errno> {
        let p = self.check(off, len, 1)?;
        // SAFETY: the range lies inside the live mapping for as long as
        // `self` lives, a byte is always aligned, and the mapping is only
        // ever accessed atomically.
        Ok(unsafe { std::slice::from_raw_parts(p as *const AtomicU8, len) })
    }

    /// `n` words from `off` (8-aligned).
    fn words(&self, off: usize, n: usize) -> Result<&[AtomicU64], Errno> {
        if n == 0 {
            return Ok(&[]);
        }
        let p = self.check(off, n.checked_mul(8).ok_or(Errno::EINVAL)?, 8)?;
        // SAFETY: as in `bytes`, and `p` is 8-aligned: the mapping is
        // page-aligned and `off` a multiple of 8.
        Ok(unsafe { std::slice::from_raw_parts(p as *const AtomicU64, n) })
    }

    /// Splits `[off, off + len)` into the bytes before the first 8-aligned
    /// offset, whole words, and the bytes after them: frames are copied a
    /// word at a time, with the bounds checked once per copy.
    fn split(&self, off: usize, len: usize) -> Result<Split<'_>, Errno> {
        self.check(off, len, 1)?;
        let head = (off.wrapping_neg() % 8).min(len);
        let n = (len - head) / 8;
        let tail = len - head - 8 * n;
        Ok(Split {
            head: self.bytes(off, head)?,
            words: self.words(off + head, n)?,
            tail: self.bytes(off + head + 8 * n, tail)?,
        })
    }
}

/// A range of the mapping, for copying (see [`PosixShm::split`]).
struct Split<'a> {
    head: &'a [AtomicU8],
    words: &'a [AtomicU64],
    tail: &'a [AtomicU8],
}

impl SharedMem for PosixShm {
    fn len(&self) -> usize {
        self.len
    }

    fn load_u32(&self, off: usize) -> Result<u32, Errno> {
        Ok(self.word32(off)?.load(Ordering::Acquire))
    }

    fn store_u32(&self, off: usize, val: u32) -> Result<(), Errno> {
        self.word32(off)?.store(val, Ordering::Release);
        Ok(())
    }

    fn cas_u32(&self, off: usize, old: u32, new: u32) -> Result<u32, Errno> {
        let w = self.word32(off)?;
        Ok(
            match w.compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(v) | Err(v) => v,
            },
        )
    }

    fn fetch_add_u32(&self, off: usize, val: u32) -> Result<u32, Errno> {
        Ok(self.word32(off)?.fetch_add(val, Ordering::AcqRel))
    }

    fn load_u64(&self, off: usize) -> Result<u64, Errno> {
        Ok(self.word64(off)?.load(Ordering::Acquire))
    }

    fn store_u64(&self, off: usize, val: u64) -> Result<(), Errno> {
        self.word64(off)?.store(val, Ordering::Release);
        Ok(())
    }

    fn read(&self, off: usize, buf: &mut [u8]) -> Result<(), Errno> {
        let r = self.split(off, buf.len())?;
        let (head, rest) = buf.split_at_mut(r.head.len());
        let (body, tail) = rest.split_at_mut(8 * r.words.len());
        for (b, m) in head.iter_mut().zip(r.head) {
            *b = m.load(Ordering::Relaxed);
        }
        for (b, m) in body.chunks_exact_mut(8).zip(r.words) {
            b.copy_from_slice(&m.load(Ordering::Relaxed).to_ne_bytes());
        }
        for (b, m) in tail.iter_mut().zip(r.tail) {
            *b = m.load(Ordering::Relaxed);
        }
        std::sync::atomic::fence(Ordering::Acquire);
        Ok(())
    }

    fn write(&self, off: usize, data: &[u8]) -> Result<(), Errno> {
        let r = self.split(off, data.len())?;
        let (head, rest) = data.split_at(r.head.len());
        let (body, tail) = rest.split_at(8 * r.words.len());
        std::sync::atomic::fence(Ordering::Release);
        for (&b, m) in head.iter().zip(r.head) {
            m.store(b, Ordering::Relaxed);
        }
        for (b, m) in body.chunks_exact(8).zip(r.words) {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            m.store(u64::from_ne_bytes(w), Ordering::Relaxed);
        }
        for (&b, m) in tail.iter().zip(r.tail) {
            m.store(b, Ordering::Relaxed);
        }
        Ok(())
    }

    fn wait_u32(&self, off: usize, expected: u32, deadline: Option<MonoNs>) -> Result<(), Errno> {
        let w = self.word32(off)?;
        let ts = match deadline {
            None => None,
            Some(d) => {
                let at = clock_origin() + Duration::from_nanos(d);
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(());
                }
                Some(libc::timespec {
                    tv_sec: left.as_secs() as libc::time_t,
                    tv_nsec: left.subsec_nanos() as libc::c_long,
                })
            }
        };
        let tsp = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: a shared (not FUTEX_PRIVATE) futex wait on a word of the
        // live mapping, so processes mapping the same file wake each other;
        // `tsp` is null or points to a timespec that outlives the call.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                w.as_ptr(),
                FUTEX_WAIT,
                expected,
                tsp,
                std::ptr::null::<u32>(),
                0u32,
            )
        };
        // EAGAIN (value changed), ETIMEDOUT and EINTR all mean "look again".
        Ok(())
    }

    fn wake_all(&self, off: usize) -> Result<(), Errno> {
        let w = self.word32(off)?;
        // SAFETY: a shared futex wake on a word of the live mapping.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                w.as_ptr(),
                FUTEX_WAKE,
                i32::MAX,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                0u32,
            )
        };
        Ok(())
    }
}

impl Drop for PosixShm {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly what mmap returned, and no
        // reference into the mapping outlives `self`.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

const FUTEX_WAIT: libc::c_int = 0;
const FUTEX_WAKE: libc::c_int = 1;

// ----- tap devices -------------------------------------------------------

/// `_IOW('T', 202, int)` from `linux/if_tun.h`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFNAMSIZ: usize = 16;
const CLONE_NEWNET: libc::c_int = 0x4000_0000;

/// A tap device: frames in with `read`, out with `write`; an eventfd wakes
/// a blocked `recv` at close.
pub(crate) struct Tap {
    fd: OwnedFd,
    wake: OwnedFd,
    closed: AtomicBool,
}

/// Opens tap `spec`: `tap0`, or `netns:NAME:tap0` to attach to a tap in
/// the network namespace `NAME` (as made by `ip netns add`) without moving
/// this process into it.
pub(crate) fn open_tap(spec: &str) -> Result<Box<dyn FrameIo>, Errno> {
    let fd = match spec.strip_prefix("netns:") {
        Some(rest) => {
            let (ns, name) = rest.split_once(':').ok_or(Errno::EINVAL)?;
            let (ns, name) = (ns.to_string(), name.to_string());
            // setns changes only the calling thread's namespace, so a
            // short-lived thread enters it, opens the device and ends; the
            // descriptor stays bound to the tap in that namespace.
            std::thread::Builder::new()
                .name("tap-open".into())
                .spawn(move || -> Result<OwnedFd, Errno> {
                    let path = format!("/run/netns/{ns}");
                    let nsf = std::fs::File::open(&path).map_err(|e| errno_from_io(&e))?;
                    // SAFETY: setns on this thread with a descriptor of a
                    // network namespace file we keep open for the call.
                    let r = unsafe { libc::setns(nsf.as_raw_fd(), CLONE_NEWNET) };
                    if r != 0 {
                        return Err(errno_from_io(&io::Error::last_os_error()));
                    }
                    tun_attach(&name)
                })
                .map_err(|e| errno_from_io(&e))?
                .join()
                .map_err(|_| Errno::EIO)??
        }
        None => tun_attach(spec)?,
    };
    // SAFETY: eventfd with valid flags; the result is checked.
    let ev = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if ev < 0 {
        return Err(errno_from_io(&io::Error::last_os_error()));
    }
    Ok(Box::new(Tap {
        fd,
        // SAFETY: `ev` is a fresh descriptor nothing else owns.
        wake: unsafe { OwnedFd::from_raw_fd(ev) },
        closed: AtomicBool::new(false),
    }))
}

fn tun_attach(name: &str) -> Result<OwnedFd, Errno> {
    if name.is_empty() || name.len() >= IFNAMSIZ || name.contains('\0') {
        return Err(Errno::EINVAL);
    }
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| errno_from_io(&e))?;
    // struct ifreq: the name in the first 16 bytes, then a union whose
    // first member is `short ifr_flags`. 40 bytes on 64-bit Linux.
    let mut ifr = [0u8; 40];
    ifr[..name.len()].copy_from_slice(name.as_bytes());
    ifr[IFNAMSIZ..IFNAMSIZ + 2].copy_from_slice(&(IFF_TAP | IFF_NO_PI).to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes one struct ifreq, for which `ifr`
    // has room; the descriptor is open.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), TUNSETIFF as _, ifr.as_mut_ptr()) };
    if r != 0 {
        return Err(errno_from_io(&io::Error::last_os_error()));
    }
    Ok(OwnedFd::from(dev))
}

impl FrameIo for Tap {
    fn send(&self, frame: &[u8]) -> Result<(), Errno> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Errno::ESHUTDOWN);
        }
        // SAFETY: writes `frame.len()` bytes from a valid buffer to an
        // open descriptor.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            // A full host queue or a down interface drops the frame, as a
            // wire would.
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EIO) | Some(libc::ENOBUFS) => Ok(()),
                _ => Err(errno_from_io(&e)),
            };
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8], deadline: Option<MonoNs>) -> Result<usize, Errno> {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(Errno::ESHUTDOWN);
            }
            let timeout_ms: libc::c_int = match deadline {
                None => -1,
                Some(d) => {
                    let at = clock_origin() + Duration::from_nanos(d);
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Errno::ETIMEDOUT);
                    }
                    left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int
                }
            };
            let mut fds = [
                libc::pollfd {
                    fd: self.fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.wake.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is an array of two pollfds that outlives the call.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(errno_from_io(&e));
            }
            if fds[1].revents != 0 {
                return Err(Errno::ESHUTDOWN);
            }
            if fds[0].revents & libc::POLLIN == 0 {
                continue;
            }
            // SAFETY: reads at most `buf.len()` bytes into a valid buffer.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EAGAIN)) {
                    continue;
                }
                return Err(errno_from_io(&e));
            }
            return Ok(n as usize);
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// Whether process `pid` exists (`kill(pid, 0)` does not fail with ESRCH)
/// and is not a zombie (a killed process whose parent has not reaped it
/// yet holds nothing any more).
pub(crate) fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if r != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    // /proc/PID/stat: "pid (comm) S ...", the state after the last ')'.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z') | Some('X')
        ),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shm_is_shared_between_mappings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus");
        let p = path.to_str().unwrap();
        let a = map_shared(p, 4096).unwrap();
        let b = map_shared(p, 4096).unwrap();
        a.store_u32(8, 7).unwrap();
        assert_eq!(b.load_u32(8).unwrap(), 7);
        assert_eq!(b.cas_u32(8, 7, 9).unwrap(), 7);
        assert_eq!(a.cas_u32(8, 7, 1).unwrap(), 9);
        a.write(13, b"hello, shared world").unwrap();
        let mut buf = [0u8; 19];
        b.read(13, &mut buf).unwrap();
        assert_eq!(&buf, b"hello, shared world");
        // Copies of every length at every alignment, bytes and words alike.
        let data: Vec<u8> = (0..64u8).collect();
        for off in 64..80 {
            for len in 0..40 {
                a.write(off, &data[..len]).unwrap();
                let mut got = vec![0u8; len];
                b.read(off, &mut got).unwrap();
                assert_eq!(got, &data[..len], "{len} bytes at {off}");
            }
        }
        assert_eq!(a.load_u32(4094), Err(Errno::EINVAL));
        assert_eq!(a.load_u32(4096), Err(Errno::EINVAL));
        assert_eq!(a.read(4090, &mut buf), Err(Errno::EINVAL));
        // A wait on a word that differs returns at once; one with a past
        // deadline returns too.
        a.wait_u32(8, 0, None).unwrap();
        a.wait_u32(8, 9, Some(0)).unwrap();
        a.wake_all(8).unwrap();
    }

    #[test]
    fn pid_liveness() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        // A child that exited but is not reaped yet is a zombie: dead.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!pid_alive(pid));
        child.wait().unwrap();
        assert!(!pid_alive(pid));
    }
}
