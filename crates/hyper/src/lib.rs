//! The hypercall interface: the only way out of a rump kernel.
//!
//! A rump kernel is `no_std`; whatever it needs from its host (threads,
//! sleeping, clocks, randomness, a console, parameters, block storage,
//! network frames, termination) it asks of a [`Hyper`] implementation, the
//! *platform*. This crate is the contract, in the spirit of NetBSD's
//! `rumpuser(3)`: one trait, plain types, a version number and a blocking rule.
//!
//! Key types: [`Hyper`] (the platform), [`Parker`] (a host thread's sleep
//! slot), [`ThreadHandle`], [`BlockIo`] (a host "file" used as a disk),
//! [`SharedMem`] (memory shared between processes) and [`FrameIo`] (a tap),
//! [`Errno`] (Linux numbering; host errors are translated into it inside the
//! platform, nowhere else).
//!
//! Neighbours: `kern` is the only kernel crate that calls this directly; the
//! POSIX implementation lives in `hyper-posix`. A deterministic simulator
//! (virtual time, seeded randomness, scripted interleavings, injected I/O
//! faults) implements the same trait: kernel code reads time, randomness and
//! threads only through it.
//!
//! # Blocking contract
//!
//! Some hypercalls may block the calling host thread: [`Parker::park_until`],
//! [`Hyper::sleep_until`], [`ThreadHandle::join`], the I/O calls of
//! [`BlockIo`], [`SharedMem::wait_u32`] and [`FrameIo::recv`]. A kernel thread making one of them **must not hold a kernel
//! lock** that the thread which would wake it (or any other kernel thread
//! that the wake-up depends on) needs. All other hypercalls return promptly
//! and may be made with kernel spin locks held.
//!
//! # Versioning
//!
//! [`HYPER_VERSION`] is bumped whenever the meaning of a call changes or a
//! call without a default body is added. The kernel refuses to boot on a
//! platform that reports another version (`rumpuser_init` does the same).
//! Calls added with a default body (returning [`Errno::ENOSYS`]) do not bump
//! the version, which keeps older platforms usable.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod errno;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::any::Any;

pub use errno::Errno;

/// The version of this interface. See the crate docs.
pub const HYPER_VERSION: u32 = 1;

/// Nanoseconds on the platform's monotonic clock.
pub type MonoNs = u64;

/// Wall-clock time: seconds and nanoseconds since the Unix epoch.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: u32,
}

/// An opaque value a platform keeps per host thread: the kernel thread
/// (lwp) the host thread is bound to. See [`Hyper::set_current`].
pub type CurrentContext = Arc<dyn Any + Send + Sync>;

/// The platform a rump kernel runs on.
///
/// One value serves any number of kernels; each kernel holds an
/// `Arc<dyn Hyper>`. Methods take `&self` and must be callable from any
/// host thread.
pub trait Hyper: Send + Sync + 'static {
    /// The interface version the platform implements ([`HYPER_VERSION`]).
    fn version(&self) -> u32;

    // ----- threads ---------------------------------------------------------

    /// Starts a named host thread running `body`. Kernel threads are created
    /// only through this call.
    fn thread_spawn(
        &self,
        name: &str,
        body: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<Box<dyn ThreadHandle>, Errno>;

    /// The sleep slot of the calling host thread. Cheap (no allocation on
    /// the POSIX platform); the kernel calls it each time it prepares to
    /// sleep.
    fn current_parker(&self) -> Arc<dyn Parker>;

    /// Offers the processor to another runnable host thread.
    fn yield_now(&self);

    /// One round of a busy-wait (a `pause` on x86). Every spin loop in the
    /// kernel calls it each round and is bounded, so a platform that runs
    /// one thread at a time (a simulator, a cooperative unikernel) can
    /// count rounds or switch threads here. Returns promptly.
    fn relax(&self) {
        core::hint::spin_loop();
    }

    /// Processors the kernel's threads may run on at once. Spinning for a
    /// lock only pays off while the holder runs on another one, so the
    /// kernel lets at most `ncpu - 1` threads spin. `RUMP_NCPU` overrides
    /// it.
    fn ncpu(&self) -> u32 {
        1
    }

    // ----- the current context (curlwp) ------------------------------------

    /// Binds the calling host thread to a kernel context (or unbinds it with
    /// `None`). Used by the C ABI and the hijack library, which cannot pass
    /// a context explicitly. Returns the previous binding.
    fn set_current(&self, ctx: Option<CurrentContext>) -> Option<CurrentContext>;

    /// The context the calling host thread is bound to.
    fn current(&self) -> Option<CurrentContext>;

    // ----- clocks -----------------------------------------------------------

    /// Monotonic time in nanoseconds since an arbitrary origin.
    fn clock_monotonic(&self) -> MonoNs;

    /// Wall-clock time.
    fn clock_wall(&self) -> Timespec;

    /// Sleeps until the monotonic clock reaches `deadline`. May block.
    fn sleep_until(&self, deadline: MonoNs);

    // ----- randomness, console, parameters ----------------------------------

    /// Fills `buf` with random bytes (cryptographic quality on POSIX).
    fn random_fill(&self, buf: &mut [u8]);

    /// Writes bytes to the console (the platform decides where that is).
    fn console_write(&self, bytes: &[u8]);

    /// The value of a platform parameter (`RUMP_NCPU`, `RUMP_VERBOSE`, ...),
    /// as `rumpuser_getparam` reads them from the environment on POSIX.
    fn param(&self, name: &str) -> Option<String>;

    // ----- block I/O ----------------------------------------------------------

    /// Opens a host "file" by name for use as a block device or a mapped
    /// file (etfs). The name space is the platform's (a path on POSIX).
    fn block_open(&self, name: &str, flags: BlockOpenFlags) -> Result<Box<dyn BlockIo>, Errno> {
        let _ = (name, flags);
        Err(Errno::ENOSYS)
    }

    // ----- network I/O ------------------------------------------------------

    /// Maps a host file of at least `size` bytes as memory shared with every
    /// other process that maps it (creating and growing the file as needed).
    /// The `shmif` network bus lives in such a file. Returns promptly.
    fn shm_map(&self, name: &str, size: usize) -> Result<Box<dyn SharedMem>, Errno> {
        let _ = (name, size);
        Err(Errno::ENOSYS)
    }

    /// Opens a host tap device (an Ethernet link whose other end is the host
    /// kernel) by name. On Linux the name is an interface name (`tap0`),
    /// optionally prefixed with a network namespace (`netns:NAME:tap0`).
    fn tap_open(&self, name: &str) -> Result<Box<dyn FrameIo>, Errno> {
        let _ = name;
        Err(Errno::ENOSYS)
    }

    /// An identifier of the calling host process, unique among live
    /// processes (the pid on POSIX). Shared-memory locks record it so that
    /// a lock held by a process that died can be recovered.
    fn process_id(&self) -> u32 {
        0
    }

    /// Whether the host process `id` (see [`Hyper::process_id`]) is alive.
    /// Platforms that cannot tell answer `true`.
    fn process_alive(&self, id: u32) -> bool {
        let _ = id;
        true
    }

    // ----- termination ------------------------------------------------------

    /// Reports a fatal kernel inconsistency and does not return.
    fn panic(&self, msg: &str) -> !;

    /// Ends the host process (rump_server's `halt -p`).
    fn exit(&self, code: i32) -> !;
}

/// A host thread's sleep slot, with the token semantics of
/// `std::thread::park`: an `unpark` that comes before the `park_until`
/// makes it return at once, so a waker can never be lost between "check
/// the condition" and "sleep".
pub trait Parker: Send + Sync {
    /// Blocks the calling thread, which must be the thread this parker
    /// belongs to, until [`Parker::unpark`] is called, the monotonic clock
    /// passes `deadline`, or spuriously. The caller re-checks its condition.
    fn park_until(&self, deadline: Option<MonoNs>);

    /// Wakes the owning thread (or makes its next park return at once).
    fn unpark(&self);

    /// An identifier unique among the live parkers of this platform.
    fn id(&self) -> u64;
}

/// A thread started with [`Hyper::thread_spawn`].
pub trait ThreadHandle: Send {
    /// Waits for the thread to finish. May block.
    fn join(self: Box<Self>) -> Result<(), Errno>;
}

/// How to open a host file with [`Hyper::block_open`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockOpenFlags {
    /// Open for writing too.
    pub writable: bool,
    /// Create the file if it does not exist (implies `writable`).
    pub create: bool,
}

/// A host file opened with [`Hyper::block_open`]. All calls may block.
pub trait BlockIo: Send + Sync {
    /// Size in bytes.
    fn size(&self) -> Result<u64, Errno>;
    /// Reads into `bufs` in order, starting at byte `offset`. Returns the
    /// number of bytes read; short only at the end of the file.
    fn read_vectored_at(&self, offset: u64, bufs: &mut [&mut [u8]]) -> Result<usize, Errno>;
    /// Writes `bufs` in order at byte `offset`. Returns the bytes written.
    fn write_vectored_at(&self, offset: u64, bufs: &[&[u8]]) -> Result<usize, Errno>;
    /// Makes everything written so far durable (a barrier).
    fn flush(&self) -> Result<(), Errno>;
    /// Changes the size of the file.
    fn set_size(&self, size: u64) -> Result<(), Errno> {
        let _ = size;
        Err(Errno::ENOSYS)
    }
    /// Whether writes are refused.
    fn is_read_only(&self) -> bool;
}

/// Memory shared between host processes, mapped with [`Hyper::shm_map`].
///
/// Every access is atomic, so any number of processes may read and write
/// concurrently without undefined behaviour; what the bytes mean is up to
/// the kernel (the `shmif` bus format lives in the network stack). Offsets
/// come from data other processes wrote, so each call checks its range and
/// alignment and fails with `EINVAL` instead of touching memory outside the
/// mapping. None of these calls blocks except [`SharedMem::wait_u32`].
pub trait SharedMem: Send + Sync {
    /// Size of the mapping in bytes.
    fn len(&self) -> usize;
    /// Atomically loads the 4-byte-aligned word at `off` (acquire).
    fn load_u32(&self, off: usize) -> Result<u32, Errno>;
    /// Atomically stores the word at `off` (release).
    fn store_u32(&self, off: usize, val: u32) -> Result<(), Errno>;
    /// Compare-and-swap: stores `new` if the word equals `old`; returns the
    /// value seen before (equal to `old` on success).
    fn cas_u32(&self, off: usize, old: u32, new: u32) -> Result<u32, Errno>;
    /// Atomically adds `val` to the word, returning the previous value.
    fn fetch_add_u32(&self, off: usize, val: u32) -> Result<u32, Errno>;
    /// Atomically loads the 8-byte-aligned word at `off` (acquire).
    fn load_u64(&self, off: usize) -> Result<u64, Errno>;
    /// Atomically stores the 8-byte word at `off` (release).
    fn store_u64(&self, off: usize, val: u64) -> Result<(), Errno>;
    /// Copies bytes out of the mapping.
    fn read(&self, off: usize, buf: &mut [u8]) -> Result<(), Errno>;
    /// Copies bytes into the mapping.
    fn write(&self, off: usize, data: &[u8]) -> Result<(), Errno>;
    /// Blocks while the word at `off` equals `expected`, until
    /// [`SharedMem::wake_all`] on the same word from any process, the
    /// deadline, or spuriously (a futex on Linux). May block.
    fn wait_u32(&self, off: usize, expected: u32, deadline: Option<MonoNs>) -> Result<(), Errno>;
    /// Wakes every process and thread waiting on the word at `off`.
    fn wake_all(&self, off: usize) -> Result<(), Errno>;
}

/// An Ethernet link to the host (a tap device), opened with
/// [`Hyper::tap_open`]. Frames are whole Ethernet frames without a
/// preamble or FCS.
pub trait FrameIo: Send + Sync {
    /// Sends one frame. Returns promptly (a frame the host cannot take is
    /// dropped, as on a wire).
    fn send(&self, frame: &[u8]) -> Result<(), Errno>;
    /// Receives one frame into `buf`, returning its length. Blocks until a
    /// frame arrives, `deadline` passes (`ETIMEDOUT`) or [`FrameIo::close`]
    /// is called (`ESHUTDOWN`). May block.
    fn recv(&self, buf: &mut [u8], deadline: Option<MonoNs>) -> Result<usize, Errno>;
    /// Wakes a blocked [`FrameIo::recv`]; later calls fail with `ESHUTDOWN`.
    fn close(&self);
}
