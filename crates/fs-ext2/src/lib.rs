//! ext2: the second extended file system, read-write, for rump kernels.
//!
//! Mount with `mount(source, target, "ext2", flags, options)` where
//! `source` names a block device in the kernel's `dev-blk` registry (for
//! example `/dev/disk0`, registered from a host image with
//! `sys::etfs_register`). `MS_RDONLY` mounts read-only. Options:
//! `cache=SIZE[k|m|g]` (buffer-cache budget, default 32 MiB).
//!
//! Supported: block sizes 1 to 32 KiB; revision 0 and revision 1 with the
//! `filetype`, `sparse_super` and `large_file` features; `dir_index`
//! directories: name lookups use the hash index (legacy, half-MD4 and
//! TEA hashes, signed and unsigned; a bad index falls back to a linear
//! search), other operations read them linearly, and a directory loses
//! its index flag when we modify it (which the ext2 documentation
//! allows); direct to triple-indirect block
//! maps; sparse files; fast and slow symlinks; hard links; device nodes,
//! fifos and sockets as inodes; nanosecond timestamps in large inodes;
//! the clean/dirty state of the superblock as Linux keeps it. Images with
//! incompatible features this driver lacks (extents, 64bit, flex_bg,
//! meta_bg, a journal needing recovery, ...) are refused with `EINVAL` and
//! a log line naming them; unknown read-only-compatible features (such as
//! metadata checksums) give a read-only mount, where writes fail with
//! `EROFS`.
//!
//! Modules: [`format`] (on-disk structures), `fs` (the mounted state, split
//! into geometry, sync, inodes, allocation, block map, file data and
//! directories), [`htree`] (hash-indexed directories) and [`dirhash`]
//! (their name hashes), `node` (the VFS operations), [`mkfs`] (creating a
//! file system). Neighbours: `dev-blk` below (devices, buffer cache), `kern`
//! (the VFS traits), `sys` above.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod dirhash;
pub mod format;
mod fs;
pub mod htree;
pub mod mkfs;
mod node;

use alloc::sync::Arc;

use dev_blk::Registry;
use hyper::Errno;
use kern::consts::ms;
use kern::vfs::{FileSystem, FsType};
use kern::{Component, Kernel, Stage};

pub use node::{Ext2Fs, Ext2Node, EXT2_SUPER_MAGIC};

/// The component that registers `ext2` with the VFS. Boot it together
/// with `dev_blk::BlkComponent`.
#[derive(Debug, Default)]
pub struct Ext2Component;

impl Component for Ext2Component {
    fn name(&self) -> &'static str {
        "ext2"
    }
    fn stage(&self) -> Stage {
        Stage::Vfs
    }
    fn init(&self, kernel: &Kernel) -> Result<(), Errno> {
        kernel.vfs().register_fstype(Arc::new(Ext2Type));
        Ok(())
    }
}

/// The `ext2` file-system type.
#[derive(Debug, Default)]
pub struct Ext2Type;

impl FsType for Ext2Type {
    fn name(&self) -> &'static str {
        "ext2"
    }

    fn mount(
        &self,
        k: &Kernel,
        source: &[u8],
        flags: u64,
        data: &[u8],
    ) -> Result<Arc<dyn FileSystem>, Errno> {
        let name = core::str::from_utf8(source).map_err(|_| Errno::EINVAL)?;
        let cache = parse_options(data).inspect_err(|_| {
            k.log(&alloc::format!(
                "ext2: {name}: bad mount options {:?}",
                alloc::string::String::from_utf8_lossy(data)
            ))
        })?;
        let reg = Registry::of(k).inspect_err(|_| {
            k.log("ext2: no block-device registry (boot the dev-blk component)")
        })?;
        let (dev, claim) = reg.claim(name)?;
        let want_rw = flags & ms::RDONLY == 0;
        if want_rw && dev.is_read_only() {
            k.log(&alloc::format!(
                "ext2: {name}: device is read-only; mount it read-only"
            ));
            return Err(Errno::EROFS);
        }
        let st = fs::Ext2::open(dev, want_rw, k.hyper().clone(), name, cache)?;
        Ok(Arc::new(Ext2Fs::new(st, claim, k.sched())?))
    }

    /// The ext2 superblock magic at byte 1024+56. ext3 and ext4 carry the
    /// same magic: they probe as ext2, and mounting names the features
    /// this driver does not support.
    fn probe(&self, k: &Kernel, source: &[u8]) -> Result<bool, Errno> {
        let name = core::str::from_utf8(source).map_err(|_| Errno::ENXIO)?;
        let dev = Registry::of(k)?.lookup(name)?;
        let mut magic = [0u8; 2];
        match dev_blk::read_bytes(&*dev, 1024 + 56, &mut magic) {
            // Too small to hold a superblock: not ext2.
            Err(Errno::EIO) if dev.size_bytes() < 2048 => Ok(false),
            Err(e) => Err(e),
            Ok(()) => Ok(u16::from_le_bytes(magic) == format::EXT2_MAGIC),
        }
    }
}

fn parse_options(data: &[u8]) -> Result<usize, Errno> {
    let mut cache = fs::DEFAULT_CACHE_BYTES;
    for opt in data.split(|&c| c == b',').filter(|o| !o.is_empty()) {
        match opt {
            b"ro" | b"rw" | b"defaults" => {}
            _ if opt.starts_with(b"cache=") => {
                let v = &opt[6..];
                let (digits, mul) = match v.last() {
                    Some(b'k' | b'K') => (&v[..v.len() - 1], 1usize << 10),
                    Some(b'm' | b'M') => (&v[..v.len() - 1], 1 << 20),
                    Some(b'g' | b'G') => (&v[..v.len() - 1], 1 << 30),
                    _ => (v, 1),
                };
                let n: usize = core::str::from_utf8(digits)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(Errno::EINVAL)?;
                cache = n.checked_mul(mul).ok_or(Errno::EINVAL)?;
            }
            _ => return Err(Errno::EINVAL),
        }
    }
    Ok(cache)
}
