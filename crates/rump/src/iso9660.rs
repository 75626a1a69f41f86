//! ISO 9660 images (CD and DVD images, installation media): register a
//! host image as a read-only block device and mount it, with Rock Ridge
//! and Joliet names; see `docs/iso9660.md` for the options.
//!
//! ```no_run
//! let kernel = rump::Kernel::builder().iso9660().boot()?;
//! let p = kernel.process()?;
//! rump::iso9660::mount_image(&p, "cd.iso", "/dev/cd0", "/cdrom", "")?;
//! let motd = rump::fs::read(&p, "/cdrom/etc/motd")?;
//! rump::sys::umount2(&p, b"/cdrom", 0)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Everything goes through the system-call layer ([`sys::etfs_register`],
//! [`sys::mount`]).

use std::io;
use std::path::Path;

/// The ISO 9660 driver itself.
#[cfg(feature = "testing")]
pub use fs_iso9660;

use crate::{io_error, Process};

/// Registers the host file `image` as the read-only block device `key`,
/// creates the directory `target` if needed and mounts the ISO 9660 file
/// system there (always read-only) with `options` (`"norock,uid=1000"`).
pub fn mount_image<P: AsRef<Path>>(
    p: &Process,
    image: P,
    key: &str,
    target: &str,
    options: &str,
) -> io::Result<()> {
    crate::ext2::register_image(p, image, key, true)?;
    mount(p, key, target, options)
}

/// Mounts the ISO 9660 file system of the registered device `key` on
/// `target` (read-only), creating the directory if needed.
pub fn mount(p: &Process, key: &str, target: &str, options: &str) -> io::Result<()> {
    crate::fs::create_dir_all(p, target)?;
    sys::mount(
        p,
        key.as_bytes(),
        target.as_bytes(),
        b"iso9660",
        sys::consts::ms::RDONLY,
        options.as_bytes(),
    )
    .map_err(io_error)
}
