//! `etfs_register`, `etfs_remove`: map a host file into the kernel as a
//! block device (NetBSD's `rump_pub_etfs_register` with `RUMP_ETFS_BLK`).
//!
//! The host file is opened through the platform (`Hyper::block_open`) and
//! added to the kernel's block-device registry under `key` (such as
//! `/dev/disk0`), together with the partitions of an MBR or GPT it holds
//! (`/dev/disk0p1`, ...). A file system then mounts it by that name. Root
//! only: the call reaches the host's files.

use kern::{Errno, Proc};

/// Registers the host file `host_path` as the block device `key`,
/// read-only or read-write. `EEXIST` if `key` is taken, `ENODEV` if the
/// kernel has no block-device layer, the host's errno if the file cannot
/// be opened.
pub fn etfs_register(p: &Proc, key: &[u8], host_path: &[u8], read_only: bool) -> Result<(), Errno> {
    p.kernel().check()?;
    if !p.cred().is_root() {
        return Err(Errno::EPERM);
    }
    let key = core::str::from_utf8(key).map_err(|_| Errno::EINVAL)?;
    let host = core::str::from_utf8(host_path).map_err(|_| Errno::EINVAL)?;
    if key.is_empty() || host.is_empty() || key.contains('\0') || host.contains('\0') {
        return Err(Errno::EINVAL);
    }
    dev_blk::register_host(p.kernel(), key, host, read_only).map(|_| ())
}

/// Removes the block device `key` and its partitions; `EBUSY` while one
/// is mounted, `ENOENT` if there is no such device.
pub fn etfs_remove(p: &Proc, key: &[u8]) -> Result<(), Errno> {
    p.kernel().check()?;
    if !p.cred().is_root() {
        return Err(Errno::EPERM);
    }
    let key = core::str::from_utf8(key).map_err(|_| Errno::EINVAL)?;
    dev_blk::Registry::of(p.kernel())?.remove(key)
}
