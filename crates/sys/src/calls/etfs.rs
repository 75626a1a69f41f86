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
    etfs_register_window(p, key, host_path, read_only, None)
}

/// [`etfs_register`] of the byte window `(offset, size)` of the host file
/// (`rump_pub_etfs_register_withsize`; `size` `u64::MAX`: to the end), or
/// of all of it with `None`. Offset and size must be multiples of 512
/// and inside the file (`EINVAL`).
pub fn etfs_register_window(
    p: &Proc,
    key: &[u8],
    host_path: &[u8],
    read_only: bool,
    window: Option<(u64, u64)>,
) -> Result<(), Errno> {
    p.kernel().check()?;
    if !p.cred().is_root() {
        return Err(Errno::EPERM);
    }
    let key = core::str::from_utf8(key).map_err(|_| Errno::EINVAL)?;
    let host = core::str::from_utf8(host_path).map_err(|_| Errno::EINVAL)?;
    if key.is_empty() || host.is_empty() || key.contains('\0') || host.contains('\0') {
        return Err(Errno::EINVAL);
    }
    let names = dev_blk::register_host_window(p.kernel(), key, host, read_only, window)?;
    make_nodes(p, &names);
    Ok(())
}

/// Gives each registered device with an absolute name a block-special
/// node there (`/dev/disk0`, `/dev/disk0p1`), so `stat` and `open` find
/// it and read and write it raw (`dev_blk::raw`). The registry keeps
/// working by name when a node cannot be made (no root file system, a
/// read-only one): mounting takes the name, not the node.
pub fn make_nodes(p: &Proc, names: &[alloc::string::String]) {
    let Ok(reg) = dev_blk::Registry::of(p.kernel()) else {
        return;
    };
    for name in names.iter().filter(|n| n.starts_with('/')) {
        let Ok(rdev) = reg.rdev_of(name) else {
            continue;
        };
        if let Some((dir, _)) = name.rsplit_once('/') {
            if !dir.is_empty() {
                let _ = crate::mkdir(p, dir.as_bytes(), 0o755);
            }
        }
        let _ = crate::mknod(p, name.as_bytes(), kern::consts::s::IFBLK | 0o600, rdev);
    }
}

/// Removes the block device `key` and its partitions; `EBUSY` while one
/// is mounted, `ENOENT` if there is no such device.
pub fn etfs_remove(p: &Proc, key: &[u8]) -> Result<(), Errno> {
    p.kernel().check()?;
    if !p.cred().is_root() {
        return Err(Errno::EPERM);
    }
    let key = core::str::from_utf8(key).map_err(|_| Errno::EINVAL)?;
    let reg = dev_blk::Registry::of(p.kernel())?;
    let gone: alloc::vec::Vec<_> = reg
        .names()
        .into_iter()
        .filter(|n| n == key || n.strip_prefix(key).is_some_and(|r| r.starts_with('p')))
        .filter_map(|n| reg.rdev_of(&n).ok().map(|r| (n, r)))
        .collect();
    reg.remove(key)?;
    // Their nodes go too (only nodes that still name these devices).
    for (name, rdev) in gone.iter().filter(|(n, _)| n.starts_with('/')) {
        if crate::lstat(p, name.as_bytes()).is_ok_and(|st| {
            st.rdev == *rdev && st.mode & kern::consts::s::IFMT == kern::consts::s::IFBLK
        }) {
            let _ = crate::unlink(p, name.as_bytes());
        }
    }
    Ok(())
}
