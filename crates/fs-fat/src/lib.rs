//! FAT12, FAT16 and FAT32 with VFAT long names, read-write, for rump
//! kernels.
//!
//! Mount with `mount(source, target, "msdos", flags, options)` (`vfat`
//! and `fat` are the same type under other names, and `mount -t auto`
//! finds it) where `source` names a block device in the kernel's
//! `dev-blk` registry. `MS_RDONLY` mounts read-only. Options, as Linux's
//! vfat takes them: `uid=N`, `gid=N` (the owner every file shows; default
//! 0), `umask=OOO` (default 022), `fmask=OOO` and `dmask=OOO` (masks for
//! files and for directories, defaulting to `umask`), and `cache=SIZE`
//! (buffer-cache budget with a k, m or g suffix).
//!
//! Modes: directories `0777 & ~dmask`, files `0666 & ~fmask` (FAT has no
//! execute bit; Linux shows `0777 & ~fmask` unless `showexec`), and the
//! read-only attribute clears a file's write bits. `chmod` can change
//! only the write bits of a file (clearing all of them sets the read-only
//! attribute, setting any clears it); `chown` to anyone but the mount's
//! owner is `EPERM`, as are hard links, symbolic links and device nodes.
//! Times are DOS local times, taken as UTC, with 2-second resolution.
//!
//! Modules: [`format`] (on-disk structures), [`name`] (long and short
//! names), `fs` (the mounted state: FAT, chains, directories, data),
//! `node` (the VFS operations), [`mkfs`] (creating a volume). Neighbours:
//! `dev-blk` below (devices, buffer cache), `kern` (the VFS traits), `sys`
//! above. The design notes are in the repository's `docs/fat.md`.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod format;
mod fs;
pub mod mkfs;
pub mod name;
mod node;

use alloc::format;
use alloc::sync::Arc;

use dev_blk::Registry;
use hyper::Errno;
use kern::consts::ms;
use kern::vfs::{FileSystem, FsType};
use kern::{Component, Kernel, Stage};

pub use node::{FatFs, FatNode, MSDOS_SUPER_MAGIC};

/// The component that registers `msdos` (and its aliases `vfat` and
/// `fat`) with the VFS. Boot it together with `dev_blk::BlkComponent`.
#[derive(Debug, Default)]
pub struct FatComponent;

impl Component for FatComponent {
    fn name(&self) -> &'static str {
        "fat"
    }
    fn stage(&self) -> Stage {
        Stage::Vfs
    }
    fn init(&self, kernel: &Kernel) -> Result<(), Errno> {
        let vfs = kernel.vfs();
        vfs.register_fstype(Arc::new(FatType { name: "msdos" }));
        vfs.register_fstype(Arc::new(FatType { name: "vfat" }));
        vfs.register_fstype(Arc::new(FatType { name: "fat" }));
        Ok(())
    }
}

/// Mount options (see the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub uid: u32,
    pub gid: u32,
    pub fmask: u32,
    pub dmask: u32,
    pub cache_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            uid: 0,
            gid: 0,
            fmask: 0o022,
            dmask: 0o022,
            cache_bytes: fs::DEFAULT_CACHE_BYTES,
        }
    }
}

impl Options {
    /// Parses `uid=1000,umask=077,...`.
    pub fn parse(data: &[u8]) -> Result<Options, Errno> {
        let mut o = Options::default();
        let (mut fmask, mut dmask, mut umask) = (None, None, None);
        for opt in data.split(|&c| c == b',').filter(|o| !o.is_empty()) {
            let s = core::str::from_utf8(opt).map_err(|_| Errno::EINVAL)?;
            let (k, v) = s.split_once('=').unwrap_or((s, ""));
            let num = |radix| u32::from_str_radix(v, radix).map_err(|_| Errno::EINVAL);
            let mask = || num(8).and_then(|m| if m > 0o777 { Err(Errno::EINVAL) } else { Ok(m) });
            match k {
                "ro" | "rw" | "defaults" => {}
                "uid" => o.uid = num(10)?,
                "gid" => o.gid = num(10)?,
                "umask" => umask = Some(mask()?),
                "fmask" => fmask = Some(mask()?),
                "dmask" => dmask = Some(mask()?),
                "cache" => {
                    let b = v.as_bytes();
                    let (digits, mul) = match b.last() {
                        Some(b'k' | b'K') => (&v[..v.len() - 1], 1usize << 10),
                        Some(b'm' | b'M') => (&v[..v.len() - 1], 1 << 20),
                        Some(b'g' | b'G') => (&v[..v.len() - 1], 1 << 30),
                        _ => (v, 1),
                    };
                    let n: usize = digits.parse().map_err(|_| Errno::EINVAL)?;
                    o.cache_bytes = n.checked_mul(mul).ok_or(Errno::EINVAL)?;
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        let u = umask.unwrap_or(0o022);
        o.fmask = fmask.unwrap_or(u);
        o.dmask = dmask.unwrap_or(u);
        Ok(o)
    }
}

/// The FAT file-system type.
#[derive(Debug)]
pub struct FatType {
    name: &'static str,
}

impl Default for FatType {
    fn default() -> FatType {
        FatType { name: "msdos" }
    }
}

impl FsType for FatType {
    fn name(&self) -> &'static str {
        self.name
    }

    fn mount(
        &self,
        k: &Kernel,
        source: &[u8],
        flags: u64,
        data: &[u8],
    ) -> Result<Arc<dyn FileSystem>, Errno> {
        let name = core::str::from_utf8(source).map_err(|_| Errno::EINVAL)?;
        let opts = Options::parse(data).inspect_err(|_| {
            k.log(&format!(
                "fat: {name}: bad mount options {:?}",
                alloc::string::String::from_utf8_lossy(data)
            ))
        })?;
        let reg = Registry::of(k)
            .inspect_err(|_| k.log("fat: no block-device registry (boot the dev-blk component)"))?;
        let (dev, claim) = reg.claim(name)?;
        let want_rw = flags & ms::RDONLY == 0;
        if want_rw && dev.is_read_only() {
            k.log(&format!(
                "fat: {name}: device is read-only; mount it read-only"
            ));
            return Err(Errno::EROFS);
        }
        let st = fs::Fat::open(dev, want_rw, k.hyper().clone(), name, opts.cache_bytes)?;
        Ok(Arc::new(FatFs::new(st, claim, k.sched(), opts)?))
    }

    /// A FAT boot sector: the 0x55AA signature, an x86 jump (EB xx 90 or
    /// E9 xx xx) and a BPB whose geometry checks out and fits the device.
    /// ext2 (a zero boot block) and ISO 9660 (a zero system area) fail
    /// the jump test; random data fails the BPB.
    fn probe(&self, k: &Kernel, source: &[u8]) -> Result<bool, Errno> {
        if self.name != "msdos" {
            // One answer for the three names.
            return Ok(false);
        }
        let name = core::str::from_utf8(source).map_err(|_| Errno::ENXIO)?;
        let dev = Registry::of(k)?.lookup(name)?;
        let mut b = [0u8; 512];
        match dev_blk::read_bytes(&*dev, 0, &mut b) {
            Err(Errno::EIO) if dev.size_bytes() < 512 => return Ok(false),
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        Ok(probe_boot_sector(&b, dev.size_bytes()))
    }
}

/// Whether `b` (the first 512 bytes of a device of `dev_bytes` bytes) is
/// a FAT boot sector.
pub fn probe_boot_sector(b: &[u8], dev_bytes: u64) -> bool {
    let Ok(p) = format::BootSectorPacket::new_checked(b) else {
        return false;
    };
    if p.signature() != 0xAA55 {
        return false;
    }
    let j = p.jump();
    if !((j[0] == 0xEB && j[2] == 0x90) || j[0] == 0xE9) {
        return false;
    }
    let Ok(r) = format::BootSectorRepr::parse(&p) else {
        return false;
    };
    let Ok(g) = format::Geometry::new(&r) else {
        return false;
    };
    (g.total_sectors as u64) * (g.bytes_per_sector as u64) <= dev_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let o = Options::parse(b"uid=1000,gid=100,umask=077").unwrap();
        assert_eq!((o.uid, o.gid, o.fmask, o.dmask), (1000, 100, 0o077, 0o077));
        let o = Options::parse(b"fmask=133,dmask=022").unwrap();
        assert_eq!((o.fmask, o.dmask), (0o133, 0o022));
        assert_eq!(Options::parse(b"").unwrap(), Options::default());
        for bad in [&b"uid=x"[..], b"umask=999", b"bogus", b"cache=1q"] {
            assert_eq!(Options::parse(bad), Err(Errno::EINVAL), "{bad:?}");
        }
    }

    #[test]
    fn probe_refuses_other_formats() {
        assert!(!probe_boot_sector(&[0u8; 512], 1 << 20));
        assert!(!probe_boot_sector(&[0u8; 100], 1 << 20));
        let mut b = [0u8; 512];
        b[510] = 0x55;
        b[511] = 0xAA;
        b[0] = 0xEB;
        b[2] = 0x90;
        assert!(!probe_boot_sector(&b, 1 << 20)); // no BPB
    }
}
