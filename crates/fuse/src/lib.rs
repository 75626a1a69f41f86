//! The FUSE file server: mounts a disk image on the host through a rump
//! kernel's own file-system driver (`rump fuse IMAGE MOUNTPOINT`).
//!
//! An in-process kernel (tmpfs root, the block-device layer and ext2)
//! registers the image as a block device and mounts it inside the kernel
//! with the probed (or given) type. The host's FUSE requests then enter
//! the kernel's typed file-system core, [`kern::vfs::ops`], the same one
//! the system-call layer uses, with the directory vnode a request names as
//! the base of a one-component path: no path is re-resolved and no POSIX
//! rule is implemented a second time here.
//!
//! Key types: [`Options`] (the `-o` list), [`Server`] (the booted kernel
//! with the image mounted), [`Server::mount`] (the FUSE session, on
//! several worker threads with cloned `/dev/fuse` descriptors). The
//! request handlers are in `fs`; the protocol choices (timeouts,
//! capabilities, what is cached) are written down in `docs/fuse.md`.
//!
//! Neighbours: the `rump` facade (with its `frontend` feature) below, the
//! `rump fuse` subcommand of the command-line tool above.

mod fs;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rump::kern;
use rump::{Errno, Kernel, Process};

pub use fs::RumpFs;

/// Where the image's file system is mounted inside the kernel.
const KERNEL_MOUNT: &str = "/mnt";
/// The block device the image is registered as.
const DEVICE: &str = "/dev/disk0";

/// Mount options (`-o ro,allow_other,uid=1000,...`, `-t TYPE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Mount read-only: the image is opened read-only and nothing is
    /// ever written to it.
    pub read_only: bool,
    /// Let users other than the mounting one use the mount.
    pub allow_other: bool,
    /// Accepted for compatibility: kernel-side permission checks are
    /// always on (see `docs/fuse.md`), and the kernel's own checks run as
    /// well.
    pub default_permissions: bool,
    /// Host uid swapped with the image's uid 0 (`uid=N`).
    pub uid: Option<u32>,
    /// Host gid swapped with the image's gid 0 (`gid=N`).
    pub gid: Option<u32>,
    /// Partition number of an MBR or GPT disk (`part=N`, from 1).
    pub part: Option<u32>,
    /// Every change is written through to the image before the reply.
    pub sync: bool,
    /// Log every request to standard error (implies foreground).
    pub debug: bool,
    /// File-system type inside the kernel; `None`: probe the image.
    pub fstype: Option<String>,
    /// Worker threads reading `/dev/fuse` (`threads=N`).
    pub threads: usize,
    /// Let the host kernel cache writes (`writeback`); off by default.
    pub writeback: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            read_only: false,
            allow_other: false,
            default_permissions: true,
            uid: None,
            gid: None,
            part: None,
            sync: false,
            debug: false,
            fstype: None,
            threads: 4,
            writeback: false,
        }
    }
}

/// A bad option or a failure to set the mount up, as one line.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl Options {
    /// Applies a comma-separated `-o` list.
    pub fn apply(&mut self, list: &str) -> Result<(), Error> {
        for opt in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let (key, value) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            let num = |v: Option<&str>| -> Result<u32, Error> {
                v.and_then(|v| v.parse().ok())
                    .ok_or_else(|| Error(format!("option {key}: expected a number, got {opt:?}")))
            };
            match (key, value) {
                ("ro", None) => self.read_only = true,
                ("rw", None) => self.read_only = false,
                ("allow_other", None) => self.allow_other = true,
                ("default_permissions", None) => self.default_permissions = true,
                ("sync", None) => self.sync = true,
                ("async", None) => self.sync = false,
                ("debug", None) => self.debug = true,
                ("writeback", None) => self.writeback = true,
                ("uid", _) => self.uid = Some(num(value)?),
                ("gid", _) => self.gid = Some(num(value)?),
                ("part", _) => {
                    let n = num(value)?;
                    if n == 0 {
                        return Err(Error("option part: partitions count from 1".into()));
                    }
                    self.part = Some(n);
                }
                ("threads", _) => {
                    let n = num(value)?;
                    if !(1..=64).contains(&n) {
                        return Err(Error("option threads: expected 1 to 64".into()));
                    }
                    self.threads = n as usize;
                }
                _ => return Err(Error(format!("unknown option {opt:?}"))),
            }
        }
        Ok(())
    }
}

/// A booted kernel with the image mounted inside it, ready to serve.
pub struct Server {
    kernel: Kernel,
    root_proc: Process,
    image: PathBuf,
    options: Options,
    fstype: String,
}

impl Server {
    /// Boots a kernel, registers `image` and mounts its file system (the
    /// probed type, or `options.fstype`). A corrupt or unknown image is
    /// refused here with one line saying what was wrong.
    pub fn open(image: &Path, options: &Options) -> Result<Server, Error> {
        let shown = image.display();
        if !image.exists() {
            return Err(Error(format!("{shown}: no such file")));
        }
        let kernel = Kernel::builder()
            .ext2()
            .boot()
            .map_err(|e| Error(format!("cannot boot the kernel: {e}")))?;
        let p = kernel
            .process()
            .map_err(|e| Error(format!("cannot make a process: {e}")))?;
        rump::ext2::register_image(&p, image, DEVICE, options.read_only)
            .map_err(|e| Error(format!("{shown}: cannot open the image: {e}")))?;
        let source = match options.part {
            Some(n) => format!("{DEVICE}p{n}"),
            None => DEVICE.to_string(),
        };
        let fstype = match &options.fstype {
            Some(t) => t.clone(),
            None => {
                let t = kernel
                    .raw()
                    .vfs()
                    .probe(kernel.raw(), source.as_bytes())
                    .map_err(|e| match (e, options.part) {
                        (Errno::ENXIO, Some(n)) => {
                            Error(format!("{shown}: no partition {n} on this disk"))
                        }
                        (Errno::ENODEV, _) => Error(format!(
                            "{shown}: no file system this kernel knows (types: {})",
                            kernel.raw().vfs().fstype_names().join(", ")
                        )),
                        (e, _) => Error(format!("{shown}: cannot probe the image: {e}")),
                    })?;
                t.to_string()
            }
        };
        rump::fs::create_dir_all(&p, KERNEL_MOUNT)
            .map_err(|e| Error(format!("cannot make the kernel's mount point: {e}")))?;
        let flags = if options.read_only {
            rump::sys::consts::ms::RDONLY
        } else {
            0
        };
        rump::sys::mount(
            kproc(&p),
            source.as_bytes(),
            KERNEL_MOUNT.as_bytes(),
            fstype.as_bytes(),
            flags,
            b"",
        )
        .map_err(|e| Error(format!("{shown}: cannot mount as {fstype}: {e}")))?;
        Ok(Server {
            kernel,
            root_proc: p,
            image: image.to_path_buf(),
            options: options.clone(),
            fstype,
        })
    }

    /// The file-system type mounted.
    pub fn fstype(&self) -> &str {
        &self.fstype
    }

    /// The FUSE file system object for this server (for tests and
    /// callers that run their own session).
    pub fn filesystem(self) -> Result<RumpFs, Error> {
        RumpFs::new(self.kernel, self.root_proc, self.options)
    }

    /// Mounts on the host directory `mountpoint` and serves in background
    /// threads. Dropping the session (or `umount_and_join`) unmounts.
    pub fn mount(self, mountpoint: &Path) -> Result<fuser::BackgroundSession, Error> {
        let options = self.options.clone();
        let fsname = self.image.display().to_string();
        let fstype = self.fstype.clone();
        let fs = self.filesystem()?;
        let mut cfg = fuser::Config::default();
        let mut mo = vec![
            fuser::MountOption::FSName(fsname),
            fuser::MountOption::Subtype(format!("rump-{fstype}")),
            fuser::MountOption::DefaultPermissions,
            // Device nodes and set-id programs on an image are files of
            // the image, not the host's to honour.
            fuser::MountOption::NoDev,
            fuser::MountOption::NoSuid,
        ];
        mo.push(if options.read_only {
            fuser::MountOption::RO
        } else {
            fuser::MountOption::RW
        });
        if options.sync {
            mo.push(fuser::MountOption::Sync);
        }
        cfg.mount_options = mo;
        cfg.acl = if options.allow_other {
            fuser::SessionACL::All
        } else {
            fuser::SessionACL::Owner
        };
        cfg.n_threads = Some(options.threads);
        cfg.clone_fd = true;
        let session = fuser::Session::new(fs, mountpoint, &cfg)
            .map_err(|e| Error(format!("{}: cannot mount: {e}", mountpoint.display())))?;
        session
            .spawn()
            .map_err(|e| Error(format!("cannot start the session: {e}")))
    }
}

/// Converts a kernel error for a FUSE reply.
pub(crate) fn fuse_errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.raw())
}

/// The process handle's kernel process.
pub(crate) fn kproc(p: &Process) -> &Arc<kern::Proc> {
    p.raw()
}

/// Serves `image` on `mountpoint` until the mount goes away (`umount`,
/// `fusermount3 -u`) or a SIGINT, SIGTERM or SIGHUP arrives, then flushes
/// the image and returns. `ready` runs once the mount is up (the command
/// line uses it to let a backgrounded parent exit).
pub fn serve(
    image: &Path,
    mountpoint: &Path,
    options: &Options,
    ready: impl FnOnce(),
) -> Result<(), Error> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    if options.debug {
        DebugLog::install();
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| Error(format!("cannot catch signal {sig}: {e}")))?;
    }
    let server = Server::open(image, options)?;
    let flusher = kproc(&server.root_proc).clone();
    let session = server.mount(mountpoint)?;
    ready();
    loop {
        if session.guard.is_finished() {
            // Unmounted from outside: the session has flushed the image
            // and halted the kernel (`destroy`).
            return session
                .join()
                .map_err(|e| Error(format!("session ended: {e}")));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A signal: make everything durable first, then detach the mount
    // and let the session finish (it flushes again and unmounts in the
    // kernel). Files still open on the mount keep it alive: wait a
    // little, then leave with the image flushed.
    let _ = rump::sys::sync(&flusher);
    let mut session = Some(session);
    let unmounted = std::thread::spawn(move || {
        if let Some(s) = session.take() {
            let _ = s.umount_and_join();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !unmounted.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if !unmounted.is_finished() {
        let _ = rump::sys::sync(&flusher);
        log::warn!("rump fuse: files still open on the mount; detached with the image flushed");
    }
    Ok(())
}

/// `-o debug`: every log line of the server and of fuser (which logs
/// each request) to standard error.
struct DebugLog;

impl DebugLog {
    fn install() {
        static LOGGER: DebugLog = DebugLog;
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
    }
}

impl log::Log for DebugLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "{} {}: {}",
            r.level(),
            r.target(),
            r.args()
        );
    }
    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_refuse() {
        let mut o = Options::default();
        o.apply("ro,allow_other,uid=1000,gid=100,part=2,sync,threads=8")
            .unwrap();
        assert!(o.read_only && o.allow_other && o.sync);
        assert_eq!(
            (o.uid, o.gid, o.part, o.threads),
            (Some(1000), Some(100), Some(2), 8)
        );
        o.apply("rw").unwrap();
        assert!(!o.read_only);
        for bad in ["uid=x", "part=0", "threads=0", "bogus", "uid"] {
            let mut o = Options::default();
            let e = o.apply(bad).unwrap_err();
            assert!(!e.0.contains('\n'), "{e}");
        }
    }

    #[test]
    fn missing_image_is_one_line() {
        let e = Server::open(Path::new("/nonexistent/img"), &Options::default())
            .err()
            .unwrap();
        assert!(e.0.contains("/nonexistent/img") && !e.0.contains('\n'));
    }
}
