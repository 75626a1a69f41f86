//! rump-rs: boot a kernel inside your process and use it.
//!
//! A rump kernel is a real kernel's subsystems (a VFS with tmpfs, ...)
//! packaged as a library. Each [`Kernel`] is independent: boot as many as
//! you like in one process, each with its own file-system tree, processes
//! and descriptors. Everything enters through the system-call layer
//! ([`sys`]); this crate adds a builder, process handles and std-like file
//! types on top.
//!
//! ```
//! use std::io::{Read, Write};
//!
//! let kernel = rump::Kernel::builder().hostname("test").boot()?;
//! let p = kernel.process()?;
//! rump::fs::create_dir_all(&p, "/etc/app")?;
//! let mut f = rump::fs::File::create(&p, "/etc/app/config")?;
//! f.write_all(b"answer = 42\n")?;
//! drop(f);
//! assert_eq!(rump::fs::read_to_string(&p, "/etc/app/config")?, "answer = 42\n");
//!
//! // Raw system calls, with Linux flags and errno values:
//! use rump::sys::consts::o;
//! let err = rump::sys::open(&p, b"/missing", o::RDONLY, 0).unwrap_err();
//! assert_eq!(err, rump::Errno::ENOENT);
//! kernel.halt();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ops::Deref;
use std::sync::Arc;

pub mod ext2;
pub mod fat;
pub mod fs;
pub mod iso9660;
pub mod net;
pub mod remote;

pub use hyper::{Errno, Hyper, Timespec};
pub use hyper_posix::PosixHyper;
pub use kern::sysctl::SysctlValue;
pub use kern::{Component, Cred, ForkFds, Stage, Stat};
pub use sys;

/// The kernel's internal crates, for tests and tools built with the
/// `testing` feature (calls through them can skip the system-call layer's
/// checks).
#[cfg(feature = "testing")]
pub use {hyper, hyper_posix};

/// The kernel crate, for front ends built with the `frontend` feature
/// (the FUSE server, later the C ABI) that share the kernel's typed
/// file-system core (`kern::vfs::ops`) with the system-call layer, and
/// for tests.
#[cfg(feature = "frontend")]
pub use kern;

/// A rump kernel. Dropping it halts the kernel; [`Kernel::halt`] does so
/// explicitly.
///
/// ```
/// // Kernels are independent: a file made in one is absent in the other.
/// let a = rump::Kernel::boot()?;
/// let b = rump::Kernel::builder().hostname("b").boot()?;
/// let (pa, pb) = (a.process()?, b.process()?);
/// rump::fs::write(&pa, "/only-in-a", b"1")?;
/// assert!(rump::fs::exists(&pa, "/only-in-a"));
/// assert!(!rump::fs::exists(&pb, "/only-in-a"));
/// assert_eq!(rump::sys::uname(&pb)?.nodename, "b");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Kernel {
    pub(crate) k: kern::Kernel,
}

/// Configures a kernel before boot; see [`Kernel::builder`].
pub struct KernelBuilder {
    hyper: Option<Arc<dyn Hyper>>,
    components: Vec<Arc<dyn Component>>,
    params: Vec<(String, String)>,
    root_fs: Option<String>,
    tmpfs: bool,
}

impl Kernel {
    /// A builder for a kernel with tmpfs as its root file system, on the
    /// POSIX platform.
    pub fn builder() -> KernelBuilder {
        KernelBuilder {
            hyper: None,
            components: Vec::new(),
            params: Vec::new(),
            root_fs: Some("tmpfs".into()),
            tmpfs: true,
        }
    }

    /// Boots a default kernel (tmpfs root).
    pub fn boot() -> Result<Kernel, Errno> {
        Kernel::builder().boot()
    }

    /// A new process running as root, with its working directory at `/`.
    pub fn process(&self) -> Result<Process, Errno> {
        self.process_as(Cred::root())
    }

    /// A new process with the given credentials.
    pub fn process_as(&self, cred: Cred) -> Result<Process, Errno> {
        Ok(Process {
            p: self.k.new_process(cred)?,
        })
    }

    /// Halts the kernel: blocked calls wake with `ESHUTDOWN`, later calls
    /// fail with it, threads stop, file systems are unmounted.
    pub fn halt(&self) {
        self.k.halt();
    }

    /// The kernel underneath, for components, front ends and lower-level
    /// use (`frontend` feature).
    #[cfg(feature = "frontend")]
    pub fn raw(&self) -> &kern::Kernel {
        &self.k
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        self.k.halt();
    }
}

impl KernelBuilder {
    /// Runs on this platform instead of the POSIX one.
    pub fn platform(mut self, hyper: Arc<dyn Hyper>) -> Self {
        self.hyper = Some(hyper);
        self
    }

    /// Adds a component. A component whose name is already there is not
    /// added again (`.ext2().iso9660()` both bring the block-device layer).
    pub fn component(mut self, c: Arc<dyn Component>) -> Self {
        if !self.components.iter().any(|x| x.name() == c.name()) {
            self.components.push(c);
        }
        self
    }

    /// Sets a sysctl parameter at boot (`"kern.hostname"`, `"box"`).
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Sets the host name.
    pub fn hostname(self, name: &str) -> Self {
        self.param("kern.hostname", name)
    }

    /// Chooses the root file system type (`None`: no root file system).
    pub fn root_fs(mut self, fstype: Option<&str>) -> Self {
        self.root_fs = fstype.map(Into::into);
        self
    }

    /// Adds the block-device layer (etfs registration) and the ext2 file
    /// system; see [`ext2`].
    pub fn ext2(self) -> Self {
        self.block_devices()
            .component(Arc::new(fs_ext2::Ext2Component))
    }

    /// Adds the block-device layer (etfs registration) and the FAT file
    /// system (`msdos`, `vfat`: FAT12/16/32 with long names); see [`fat`].
    pub fn fat(self) -> Self {
        self.block_devices()
            .component(Arc::new(fs_fat::FatComponent))
    }

    /// Adds the block-device layer and the read-only ISO 9660 file system
    /// (Rock Ridge, Joliet); see [`iso9660`].
    pub fn iso9660(self) -> Self {
        self.block_devices()
            .component(Arc::new(fs_iso9660::Iso9660Component))
    }

    /// The block-device layer, once however many file systems need it.
    fn block_devices(self) -> Self {
        let blk = dev_blk::BlkComponent;
        if self.components.iter().any(|c| c.name() == blk.name()) {
            self
        } else {
            self.component(Arc::new(blk))
        }
    }

    /// Adds the network stack (sockets, `lo0`, interfaces); its `busN`
    /// interfaces share this process's bus registry; see [`net`].
    pub fn net(self) -> Self {
        self.component(crate::net::component())
    }

    /// Leaves tmpfs out (then choose another root or none).
    pub fn without_tmpfs(mut self) -> Self {
        self.tmpfs = false;
        if self.root_fs.as_deref() == Some("tmpfs") {
            self.root_fs = None;
        }
        self
    }

    /// Boots the kernel.
    pub fn boot(self) -> Result<Kernel, Errno> {
        let hyper = self.hyper.unwrap_or_else(PosixHyper::shared);
        let mut components = Vec::with_capacity(self.components.len() + 1);
        if self.tmpfs {
            components.push(Arc::new(fs_tmpfs::TmpfsComponent) as Arc<dyn Component>);
        }
        components.extend(self.components);
        let k = kern::Kernel::boot(
            hyper,
            kern::KernelConfig {
                components,
                params: self.params,
                root_fs: self.root_fs,
            },
        )?;
        Ok(Kernel { k })
    }
}

/// A process of a rump kernel: the context system calls run in. Cheap to
/// clone (clones share the process) and usable from any thread.
///
/// It dereferences to [`kern::Proc`], so it can be passed straight to the
/// calls in [`sys`]: `rump::sys::getpid(&p)`.
///
/// ```
/// use rump::sys::{self, consts::o};
/// use rump::ForkFds;
///
/// let k = rump::Kernel::boot()?;
/// let parent = k.process()?;
/// let fd = sys::open(&parent, b"/log", o::CREAT | o::WRONLY, 0o644)?;
/// // A child sharing the descriptor table sees the same descriptor.
/// let child = parent.rfork(ForkFds::Share)?;
/// sys::write(&child, fd, b"from the child\n")?;
/// // A child with a cleared table does not.
/// let other = parent.rfork(ForkFds::Clear)?;
/// assert_eq!(sys::write(&other, fd, b"x"), Err(rump::Errno::EBADF));
/// assert_ne!(sys::getpid(&child)?, sys::getpid(&parent)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Process {
    p: Arc<kern::Proc>,
}

impl Process {
    /// Wraps a kernel process.
    pub fn from_raw(p: Arc<kern::Proc>) -> Process {
        Process { p }
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.p.pid()
    }

    /// A child process that shares, copies or does not get this process's
    /// descriptors (`rump_lwproc_rfork`).
    pub fn rfork(&self, fds: ForkFds) -> Result<Process, Errno> {
        Ok(Process {
            p: self.p.rfork(fds)?,
        })
    }

    /// Interrupts every system call this process is blocked in (a `read`
    /// of an empty pipe, `accept`, `recv`, `poll`, ...): each returns
    /// `EINTR`, as after a signal without `SA_RESTART`. Calls of other
    /// processes keep waiting, and calls this process makes afterwards
    /// wait normally. A server uses it when the client a process serves
    /// goes away mid-call.
    pub fn cancel_calls(&self) {
        self.p.cancel_calls();
    }

    /// The kernel process underneath (`frontend` feature).
    #[cfg(feature = "frontend")]
    pub fn raw(&self) -> &Arc<kern::Proc> {
        &self.p
    }

    /// A new thread context of this process, bound to the calling host
    /// thread, for code that finds its context implicitly (the C ABI, the
    /// hijack library). Returns the lwp.
    pub fn bind_current_thread(&self) -> Arc<kern::Lwp> {
        let lwp = self.p.new_lwp();
        lwp.bind_current();
        lwp
    }
}

impl sys::Syscalls for Process {
    fn call(&self, req: sys::Request) -> Result<sys::Response, Errno> {
        sys::dispatch(&self.p, req)
    }
}

impl Deref for Process {
    type Target = kern::Proc;
    fn deref(&self) -> &kern::Proc {
        &self.p
    }
}

/// Converts a kernel error into `std::io::Error` (same numbering as Linux).
pub fn io_error(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw())
}
