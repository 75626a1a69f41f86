//! Disk images and ext2: register a host image as a block device (etfs),
//! create a file system on it, mount it.
//!
//! ```no_run
//! let kernel = rump::Kernel::builder().ext2().boot()?;
//! let p = kernel.process()?;
//! rump::ext2::mount_image(&p, "disk.img", "/dev/disk0", "/mnt", false)?;
//! rump::fs::write(&p, "/mnt/hello", b"hi")?;
//! rump::sys::umount2(&p, b"/mnt", 0)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Everything a caller does to the image goes through the system-call
//! layer ([`sys::etfs_register`], [`sys::mount`]); [`newfs`] formats a
//! registered device directly, as `newfs(8)` writes to a raw device.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The block-device layer (registry, memory devices, partitions).
#[cfg(feature = "testing")]
pub use dev_blk;
/// The ext2 driver itself.
#[cfg(feature = "testing")]
pub use fs_ext2;
pub use fs_ext2::mkfs::{MkfsOptions, MkfsSummary};

use crate::{io_error, Errno, Kernel, Process};

/// Registers the host file `image` as the block device `key` (root only).
pub fn register_image<P: AsRef<Path>>(
    p: &Process,
    image: P,
    key: &str,
    read_only: bool,
) -> io::Result<()> {
    sys::etfs_register(
        p,
        key.as_bytes(),
        image.as_ref().as_os_str().as_bytes(),
        read_only,
    )
    .map_err(io_error)
}

/// Registers `image` as `key`, creates the directory `target` if needed and
/// mounts the ext2 file system there (read-only with `read_only`).
pub fn mount_image<P: AsRef<Path>>(
    p: &Process,
    image: P,
    key: &str,
    target: &str,
    read_only: bool,
) -> io::Result<()> {
    register_image(p, image, key, read_only)?;
    mount(p, key, target, read_only)
}

/// Mounts the ext2 file system of the registered device `key` on
/// `target`, creating the directory if needed.
pub fn mount(p: &Process, key: &str, target: &str, read_only: bool) -> io::Result<()> {
    crate::fs::create_dir_all(p, target)?;
    let flags = if read_only {
        sys::consts::ms::RDONLY
    } else {
        0
    };
    sys::mount(p, key.as_bytes(), target.as_bytes(), b"ext2", flags, b"").map_err(io_error)
}

/// Creates an ext2 file system on the registered device `key`.
pub fn newfs(kernel: &Kernel, key: &str, opts: &MkfsOptions) -> Result<MkfsSummary, Errno> {
    let reg = dev_blk::Registry::of(&kernel.k)?;
    let (dev, _claim) = reg.claim(key)?;
    fs_ext2::mkfs::format(&*dev, opts)
}

/// Creates (or resizes) the host file `image` to `size` bytes and writes
/// an ext2 file system on it, through a short-lived kernel. `opts.now`
/// of 0 means the current time; an all-zero `uuid` gets a random one.
pub fn newfs_image<P: AsRef<Path>>(
    image: P,
    size: u64,
    opts: &MkfsOptions,
) -> io::Result<MkfsSummary> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(image.as_ref())?;
    f.set_len(size)?;
    drop(f);
    newfs_existing(image, opts)
}

/// Writes an ext2 file system on the existing host file or block device
/// `image`, using all of it (or `opts.blocks`).
pub fn newfs_existing<P: AsRef<Path>>(image: P, opts: &MkfsOptions) -> io::Result<MkfsSummary> {
    let kernel = Kernel::builder().ext2().boot().map_err(io_error)?;
    let p = kernel.process().map_err(io_error)?;
    register_image(&p, image.as_ref(), "/dev/newfs", false)?;
    let mut o = opts.clone();
    if o.now == 0 {
        o.now = kernel.k.hyper().clock_wall().sec as u32;
    }
    if o.uuid == [0; 16] {
        kernel.k.hyper().random_fill(&mut o.uuid);
        // RFC 4122 version 4, variant 1.
        o.uuid[6] = (o.uuid[6] & 0x0f) | 0x40;
        o.uuid[8] = (o.uuid[8] & 0x3f) | 0x80;
    }
    let r = newfs(&kernel, "/dev/newfs", &o).map_err(io_error);
    kernel.halt();
    r
}

/// Creates an ext2 file system on the raw device node `path` of a kernel
/// reached through `sc` (a local process or a remote server), as
/// newfs(8) writes to a raw disk: the device is opened with `open`, its
/// size taken with `lseek(SEEK_END)`, and every sector written with
/// `pwrite` and made durable with `fsync`, all as system calls. An
/// all-zero `uuid` gets one from the host's randomness, `now` of 0 the
/// host's clock.
pub fn newfs_device(
    sc: &dyn sys::Syscalls,
    path: &str,
    opts: &MkfsOptions,
) -> io::Result<MkfsSummary> {
    use sys::{Request, Response};
    let fd = match sc
        .call(Request::Openat {
            dirfd: sys::consts::at::FDCWD,
            path: path.as_bytes().to_vec(),
            flags: sys::consts::o::RDWR,
            mode: 0,
        })
        .map_err(io_error)?
    {
        Response::Int(fd) => fd as i32,
        _ => return Err(io_error(Errno::EPROTO)),
    };
    let r = (|| {
        let st = match sc.call(Request::Fstat { fd }).map_err(io_error)? {
            Response::Stat(st) => st,
            _ => return Err(io_error(Errno::EPROTO)),
        };
        if st.mode & sys::consts::s::IFMT != sys::consts::s::IFBLK {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path}: not a block device"),
            ));
        }
        let size = match sc
            .call(Request::Lseek {
                fd,
                offset: 0,
                whence: sys::consts::seek::END,
            })
            .map_err(io_error)?
        {
            Response::Size(s) => s,
            _ => return Err(io_error(Errno::EPROTO)),
        };
        let dev = SyscallDevice {
            sc,
            fd,
            sectors: size / dev_blk::SECTOR_SIZE as u64,
        };
        let mut o = opts.clone();
        if o.now == 0 {
            o.now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as u32)
                .unwrap_or(0);
        }
        if o.uuid == [0; 16] {
            let h = hyper_posix::PosixHyper::new();
            hyper::Hyper::random_fill(&h, &mut o.uuid);
            o.uuid[6] = (o.uuid[6] & 0x0f) | 0x40;
            o.uuid[8] = (o.uuid[8] & 0x3f) | 0x80;
        }
        fs_ext2::mkfs::format(&dev, &o).map_err(io_error)
    })();
    let _ = sc.call(Request::Close { fd });
    r
}

/// A raw device node seen through system calls, as a block device for
/// mkfs.
struct SyscallDevice<'a> {
    sc: &'a dyn sys::Syscalls,
    fd: i32,
    sectors: u64,
}

impl dev_blk::BlockDevice for SyscallDevice<'_> {
    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let base = lba * dev_blk::SECTOR_SIZE as u64;
        let mut done = 0;
        while done < buf.len() {
            let len = (buf.len() - done).min(sys::MAX_IO);
            match self.sc.call(sys::Request::Pread {
                fd: self.fd,
                len,
                offset: (base + done as u64) as i64,
            })? {
                sys::Response::Bytes(b) if !b.is_empty() && b.len() <= len => {
                    buf[done..done + b.len()].copy_from_slice(&b);
                    done += b.len();
                }
                sys::Response::Bytes(_) => return Err(Errno::EIO),
                _ => return Err(Errno::EPROTO),
            }
        }
        Ok(())
    }

    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), Errno> {
        let base = lba * dev_blk::SECTOR_SIZE as u64;
        let mut done = 0;
        while done < buf.len() {
            let len = (buf.len() - done).min(sys::MAX_IO);
            match self.sc.call(sys::Request::Pwrite {
                fd: self.fd,
                data: buf[done..done + len].to_vec(),
                offset: (base + done as u64) as i64,
            })? {
                sys::Response::Size(n) if n > 0 && n as usize <= len => done += n as usize,
                sys::Response::Size(_) => return Err(Errno::EIO),
                _ => return Err(Errno::EPROTO),
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), Errno> {
        self.sc
            .call(sys::Request::Fsync { fd: self.fd })
            .map(|_| ())
    }

    fn is_read_only(&self) -> bool {
        false
    }
}
