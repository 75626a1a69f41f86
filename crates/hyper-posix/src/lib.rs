//! The POSIX platform: [`hyper::Hyper`] on Linux with `std`.
//!
//! Threads are `std::thread`s, sleeping is `std::thread::park` (a futex on
//! Linux), clocks are `clock_gettime` through `std::time`, randomness is
//! `getrandom(2)`, parameters are environment variables, and block I/O is
//! `pread`/`pwrite`/`fdatasync` on host files; network I/O (shared-memory
//! bus files and tap devices) is in the `net` module. Host errors become
//! [`Errno`] in [`errno_from_io`], the one translation point.
//!
//! Key types: [`PosixHyper`], and [`observed::Observed`] for tests that
//! watch what a kernel asks of its platform. Neighbours: the `rump` facade boots kernels on
//! it by default; kernel crates never see it.

mod net;
pub mod observed;

use std::cell::RefCell;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::{
    BlockIo, BlockOpenFlags, CurrentContext, Errno, Hyper, MonoNs, Parker, ThreadHandle, Timespec,
    HYPER_VERSION,
};

/// The POSIX platform. It holds no state of its own (the clock origin is
/// the process's), so one value, or many, may serve any number of kernels.
#[derive(Debug, Clone, Copy)]
pub struct PosixHyper {
    origin: Instant,
}

/// The origin of the monotonic clock: fixed once per process, so that all
/// platform values and all parkers agree on what a deadline means.
fn clock_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl PosixHyper {
    /// The platform.
    pub fn new() -> Self {
        PosixHyper {
            origin: clock_origin(),
        }
    }

    /// A shared platform value for callers that do not care which one they
    /// get (the facade's default).
    pub fn shared() -> Arc<dyn Hyper> {
        static SHARED: OnceLock<Arc<PosixHyper>> = OnceLock::new();
        SHARED.get_or_init(|| Arc::new(PosixHyper::new())).clone()
    }

    fn mono_to_instant(&self, t: MonoNs) -> Instant {
        self.origin + Duration::from_nanos(t)
    }
}

impl Default for PosixHyper {
    fn default() -> Self {
        Self::new()
    }
}

/// Translates a host I/O error into the kernel's errno. Linux numbering is
/// ours, so a raw OS error passes through; other kinds are mapped by meaning.
pub fn errno_from_io(e: &io::Error) -> Errno {
    if let Some(raw) = e.raw_os_error() {
        return Errno(raw);
    }
    match e.kind() {
        io::ErrorKind::NotFound => Errno::ENOENT,
        io::ErrorKind::PermissionDenied => Errno::EACCES,
        io::ErrorKind::AlreadyExists => Errno::EEXIST,
        io::ErrorKind::InvalidInput => Errno::EINVAL,
        io::ErrorKind::UnexpectedEof => Errno::EIO,
        io::ErrorKind::OutOfMemory => Errno::ENOMEM,
        io::ErrorKind::Unsupported => Errno::ENOSYS,
        _ => Errno::EIO,
    }
}

thread_local! {
    static CURRENT: RefCell<Option<CurrentContext>> = const { RefCell::new(None) };
    static PARKER: Arc<ThreadParker> = Arc::new(ThreadParker::for_current());
}

struct ThreadParker {
    thread: Thread,
    id: u64,
}

impl ThreadParker {
    fn for_current() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ThreadParker {
            thread: thread::current(),
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl Parker for ThreadParker {
    fn park_until(&self, deadline: Option<MonoNs>) {
        debug_assert_eq!(thread::current().id(), self.thread.id());
        match deadline {
            None => thread::park(),
            Some(d) => {
                let at = clock_origin() + Duration::from_nanos(d);
                let now = Instant::now();
                if at > now {
                    thread::park_timeout(at - now);
                }
            }
        }
    }

    fn unpark(&self) {
        self.thread.unpark();
    }

    fn id(&self) -> u64 {
        self.id
    }
}

struct PosixThread(thread::JoinHandle<()>);

impl ThreadHandle for PosixThread {
    fn join(self: Box<Self>) -> Result<(), Errno> {
        self.0.join().map_err(|_| Errno::EINTR)
    }
}

impl Hyper for PosixHyper {
    fn version(&self) -> u32 {
        HYPER_VERSION
    }

    fn thread_spawn(
        &self,
        name: &str,
        body: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<Box<dyn ThreadHandle>, Errno> {
        let handle = thread::Builder::new()
            .name(name.to_string())
            .spawn(body)
            .map_err(|e| errno_from_io(&e))?;
        Ok(Box::new(PosixThread(handle)))
    }

    fn current_parker(&self) -> Arc<dyn Parker> {
        PARKER.with(|p| p.clone())
    }

    fn yield_now(&self) {
        thread::yield_now();
    }

    fn ncpu(&self) -> u32 {
        // Asking the host reads the affinity mask and cgroup quota files
        // (tens of microseconds); every boot asks, so ask once.
        static NCPU: OnceLock<u32> = OnceLock::new();
        *NCPU.get_or_init(|| {
            thread::available_parallelism().map_or(1, |n| n.get().min(u32::MAX as usize) as u32)
        })
    }

    fn set_current(&self, ctx: Option<CurrentContext>) -> Option<CurrentContext> {
        CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), ctx))
    }

    fn current(&self) -> Option<CurrentContext> {
        CURRENT.with(|c| c.borrow().clone())
    }

    fn clock_monotonic(&self) -> MonoNs {
        self.origin.elapsed().as_nanos() as u64
    }

    fn clock_wall(&self) -> Timespec {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timespec {
                sec: d.as_secs() as i64,
                nsec: d.subsec_nanos(),
            },
            Err(e) => {
                // Before 1970: negative seconds, nanoseconds counted upwards.
                let d = e.duration();
                let mut sec = -(d.as_secs() as i64);
                let mut nsec = d.subsec_nanos();
                if nsec > 0 {
                    sec -= 1;
                    nsec = 1_000_000_000 - nsec;
                }
                Timespec { sec, nsec }
            }
        }
    }

    fn sleep_until(&self, deadline: MonoNs) {
        let at = self.mono_to_instant(deadline);
        let now = Instant::now();
        if at > now {
            thread::sleep(at - now);
        }
    }

    fn random_fill(&self, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let rest = &mut buf[done..];
            // SAFETY: `rest` is a valid writable buffer of `rest.len()` bytes
            // for the duration of the call; getrandom writes at most that many.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            if n > 0 {
                done += n as usize;
            } else if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                self.panic("getrandom failed");
            }
        }
    }

    fn console_write(&self, bytes: &[u8]) {
        use std::io::Write;
        let _ = io::stderr().lock().write_all(bytes);
    }

    fn param(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn block_open(&self, name: &str, flags: BlockOpenFlags) -> Result<Box<dyn BlockIo>, Errno> {
        let writable = flags.writable || flags.create;
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .create(flags.create)
            .truncate(false)
            .open(name)
            .map_err(|e| errno_from_io(&e))?;
        Ok(Box::new(HostFile {
            file,
            read_only: !writable,
        }))
    }

    fn shm_map(&self, name: &str, size: usize) -> Result<Box<dyn hyper::SharedMem>, Errno> {
        net::map_shared(name, size)
    }

    fn tap_open(&self, name: &str) -> Result<Box<dyn hyper::FrameIo>, Errno> {
        net::open_tap(name)
    }

    fn process_id(&self) -> u32 {
        std::process::id()
    }

    fn process_alive(&self, id: u32) -> bool {
        net::pid_alive(id)
    }

    fn panic(&self, msg: &str) -> ! {
        panic!("rump kernel panic: {msg}");
    }

    fn exit(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// A host file used as a block device.
struct HostFile {
    file: std::fs::File,
    read_only: bool,
}

impl BlockIo for HostFile {
    fn size(&self) -> Result<u64, Errno> {
        let meta = self.file.metadata().map_err(|e| errno_from_io(&e))?;
        if meta.file_type().is_file() {
            return Ok(meta.len());
        }
        // A block device reports size 0 in its metadata: seek to the end.
        use std::io::Seek;
        let mut f = &self.file;
        f.seek(io::SeekFrom::End(0)).map_err(|e| errno_from_io(&e))
    }

    fn read_vectored_at(&self, offset: u64, bufs: &mut [&mut [u8]]) -> Result<usize, Errno> {
        let mut total = 0usize;
        let mut pos = offset;
        for buf in bufs.iter_mut() {
            let mut done = 0;
            while done < buf.len() {
                match self.file.read_at(&mut buf[done..], pos) {
                    Ok(0) => return Ok(total + done),
                    Ok(n) => {
                        done += n;
                        pos += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(errno_from_io(&e)),
                }
            }
            total += done;
        }
        Ok(total)
    }

    fn write_vectored_at(&self, offset: u64, bufs: &[&[u8]]) -> Result<usize, Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        let mut pos = offset;
        let mut total = 0;
        for buf in bufs {
            self.file
                .write_all_at(buf, pos)
                .map_err(|e| errno_from_io(&e))?;
            pos += buf.len() as u64;
            total += buf.len();
        }
        Ok(total)
    }

    fn flush(&self) -> Result<(), Errno> {
        self.file.sync_data().map_err(|e| errno_from_io(&e))
    }

    fn set_size(&self, size: u64) -> Result<(), Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        self.file.set_len(size).map_err(|e| errno_from_io(&e))
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn park_unpark_token() {
        let h = PosixHyper::new();
        let p = h.current_parker();
        p.unpark();
        // The token makes this return at once.
        p.park_until(None);
        let t0 = h.clock_monotonic();
        p.park_until(Some(t0 + 1_000_000));
        assert!(h.clock_monotonic() >= t0 + 1_000_000 || h.clock_monotonic() > t0);
    }

    #[test]
    fn block_io_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let h = PosixHyper::new();
        let dev = h
            .block_open(
                path.to_str().unwrap(),
                BlockOpenFlags {
                    writable: true,
                    create: true,
                },
            )
            .unwrap();
        dev.set_size(8192).unwrap();
        assert_eq!(dev.size().unwrap(), 8192);
        dev.write_vectored_at(100, &[b"abc", b"def"]).unwrap();
        let mut a = [0u8; 2];
        let mut b = [0u8; 4];
        let n = dev.read_vectored_at(100, &mut [&mut a, &mut b]).unwrap();
        assert_eq!(n, 6);
        assert_eq!(&a, b"ab");
        assert_eq!(&b, b"cdef");
        let ro = h
            .block_open(path.to_str().unwrap(), BlockOpenFlags::default())
            .unwrap();
        assert_eq!(ro.write_vectored_at(0, &[b"x"]), Err(Errno::EROFS));
        assert_eq!(
            h.block_open("/nonexistent/x", BlockOpenFlags::default())
                .err(),
            Some(Errno::ENOENT)
        );
    }

    #[test]
    fn current_context_is_per_thread() {
        let h = Arc::new(PosixHyper::new());
        let ctx: CurrentContext = Arc::new(5u32);
        h.set_current(Some(ctx));
        let h2 = h.clone();
        std::thread::spawn(move || assert!(h2.current().is_none()))
            .join()
            .unwrap();
        assert!(h.current().is_some());
    }
}
