//! FAT volumes (FAT12/16/32 with VFAT long names): create one on an
//! image, mount it.
//!
//! ```no_run
//! let kernel = rump::Kernel::builder().fat().boot()?;
//! let p = kernel.process()?;
//! rump::fat::newfs_image("esp.img", 64 << 20, &rump::fat::MkfsOptions::default())?;
//! rump::ext2::register_image(&p, "esp.img", "/dev/disk0", false)?;
//! rump::fat::mount(&p, "/dev/disk0", "/mnt", false, "uid=1000,umask=077")?;
//! rump::fs::write(&p, "/mnt/Hello World.txt", b"hi")?;
//! rump::sys::umount2(&p, b"/mnt", 0)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Mount options and the mapping of FAT attributes to modes are described
//! in the `fs_fat` crate docs and `docs/fat.md`.

use std::io;
use std::path::Path;

/// The FAT driver itself.
#[cfg(feature = "testing")]
pub use fs_fat;
pub use fs_fat::format::FatType;
pub use fs_fat::mkfs::{MkfsOptions, MkfsSummary};

use crate::{io_error, Errno, Kernel, Process};

/// Mounts the FAT volume of the registered device `key` on `target`
/// (created if needed) with the mount options `options` (`uid=`, `gid=`,
/// `umask=`, `fmask=`, `dmask=`).
pub fn mount(
    p: &Process,
    key: &str,
    target: &str,
    read_only: bool,
    options: &str,
) -> io::Result<()> {
    crate::fs::create_dir_all(p, target)?;
    let flags = if read_only {
        sys::consts::ms::RDONLY
    } else {
        0
    };
    sys::mount(
        p,
        key.as_bytes(),
        target.as_bytes(),
        b"msdos",
        flags,
        options.as_bytes(),
    )
    .map_err(io_error)
}

/// Creates a FAT volume on the registered device `key`.
pub fn newfs(kernel: &Kernel, key: &str, opts: &MkfsOptions) -> Result<MkfsSummary, Errno> {
    let reg = dev_blk::Registry::of(&kernel.k)?;
    let (dev, _claim) = reg.claim(key)?;
    fs_fat::mkfs::format(&*dev, opts)
}

/// Creates (or resizes) the host file `image` to `size` bytes and writes
/// a FAT volume on it. A zero `volume_id` gets a random one.
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

/// Writes a FAT volume on the existing host file or block device `image`.
pub fn newfs_existing<P: AsRef<Path>>(image: P, opts: &MkfsOptions) -> io::Result<MkfsSummary> {
    let kernel = Kernel::builder().fat().boot().map_err(io_error)?;
    let p = kernel.process().map_err(io_error)?;
    crate::ext2::register_image(&p, image.as_ref(), "/dev/newfs", false)?;
    let mut o = opts.clone();
    if o.volume_id == 0 {
        let mut b = [0u8; 4];
        kernel.k.hyper().random_fill(&mut b);
        o.volume_id = u32::from_le_bytes(b) | 1;
    }
    let r = newfs(&kernel, "/dev/newfs", &o).map_err(io_error);
    kernel.halt();
    r
}
