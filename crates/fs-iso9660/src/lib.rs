//! iso9660: the CD-ROM file system (ECMA-119), read-only, for rump
//! kernels, with the Rock Ridge (RRIP 1.12 over SUSP 1.12) and Joliet
//! extensions and multi-extent files.
//!
//! Mount with `mount(source, target, "iso9660", MS_RDONLY, options)`
//! where `source` names a block device of the kernel's `dev-blk` registry;
//! `mount -t auto` finds it by the `CD001` identifier at sector 16. A
//! read-write mount is refused with `EROFS` (see `docs/iso9660.md`).
//! Names and attributes come from Rock Ridge when the root carries an
//! `SP` entry, else from the Joliet tree when there is one, else from the
//! plain ISO 9660 identifiers. Options (as Linux's isofs): `norock`,
//! `nojoliet`, `uid=N`, `gid=N`, `mode=OCTAL` (files), `dmode=OCTAL`
//! (directories), `map=normal|off`; `ro`, `defaults` are accepted.
//!
//! Modules: [`format`] (descriptors, directory records, path tables,
//! SUSP/RRIP entries, names and dates), `fs` (the mounted state and the
//! directory cache), `node` (the VFS operations). Neighbours: `dev-blk`
//! below (devices), `kern` (the VFS traits), `sys` above.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod format;
mod fs;
mod node;

use alloc::sync::Arc;

use dev_blk::Registry;
use hyper::Errno;
use kern::consts::ms;
use kern::vfs::{FileSystem, FsType};
use kern::{Component, Kernel, Stage};

pub use fs::{MAX_CE_HOPS, MAX_DIR_BYTES, MAX_EXTENTS};
pub use node::{IsoFileSystem, IsoNode, ISOFS_SUPER_MAGIC};

/// The component that registers `iso9660` with the VFS. Boot it together
/// with `dev_blk::BlkComponent`.
#[derive(Debug, Default)]
pub struct Iso9660Component;

impl Component for Iso9660Component {
    fn name(&self) -> &'static str {
        "iso9660"
    }
    fn stage(&self) -> Stage {
        Stage::Vfs
    }
    fn init(&self, kernel: &Kernel) -> Result<(), Errno> {
        kernel.vfs().register_fstype(Arc::new(Iso9660Type));
        Ok(())
    }
}

/// Mount options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Ignore Rock Ridge.
    pub norock: bool,
    /// Ignore Joliet.
    pub nojoliet: bool,
    /// Owner and group of files without Rock Ridge attributes.
    pub uid: u32,
    pub gid: u32,
    /// Permissions of files and directories without Rock Ridge.
    pub fmode: u32,
    pub dmode: u32,
    /// `map=normal`: plain names lower-cased, `;1` and a trailing dot
    /// dropped (Linux's default); `map=off` shows them as recorded.
    pub map_normal: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            norock: false,
            nojoliet: false,
            uid: 0,
            gid: 0,
            // r-x for everyone, as Linux's isofs.
            fmode: 0o555,
            dmode: 0o555,
            map_normal: true,
        }
    }
}

impl Options {
    /// Parses a comma-separated option string.
    pub fn parse(data: &[u8]) -> Result<Options, &[u8]> {
        let mut o = Options::default();
        for opt in data.split(|&c| c == b',').filter(|o| !o.is_empty()) {
            let (key, val) = match opt.iter().position(|&c| c == b'=') {
                Some(i) => (&opt[..i], Some(&opt[i + 1..])),
                None => (opt, None),
            };
            let num = |radix: u32| -> Result<u32, &[u8]> {
                val.and_then(|v| core::str::from_utf8(v).ok())
                    .and_then(|v| u32::from_str_radix(v, radix).ok())
                    .ok_or(opt)
            };
            match (key, val) {
                (b"ro" | b"defaults" | b"rock" | b"joliet", None) => {}
                (b"norock", None) => o.norock = true,
                (b"nojoliet", None) => o.nojoliet = true,
                (b"uid", Some(_)) => o.uid = num(10)?,
                (b"gid", Some(_)) => o.gid = num(10)?,
                (b"mode", Some(_)) => o.fmode = num(8)? & 0o7777,
                (b"dmode", Some(_)) => o.dmode = num(8)? & 0o7777,
                (b"map", Some(b"normal" | b"n")) => o.map_normal = true,
                (b"map", Some(b"off" | b"o")) => o.map_normal = false,
                _ => return Err(opt),
            }
        }
        Ok(o)
    }
}

/// The `iso9660` file-system type.
#[derive(Debug, Default)]
pub struct Iso9660Type;

impl FsType for Iso9660Type {
    fn name(&self) -> &'static str {
        "iso9660"
    }

    fn mount(
        &self,
        k: &Kernel,
        source: &[u8],
        flags: u64,
        data: &[u8],
    ) -> Result<Arc<dyn FileSystem>, Errno> {
        let name = core::str::from_utf8(source).map_err(|_| Errno::EINVAL)?;
        let opts = Options::parse(data).map_err(|bad| {
            k.log(&alloc::format!(
                "iso9660: {name}: unknown or bad mount option {:?}",
                alloc::string::String::from_utf8_lossy(bad)
            ));
            Errno::EINVAL
        })?;
        if flags & ms::RDONLY == 0 {
            k.log(&alloc::format!(
                "iso9660: {name}: read-only file system; mount it read-only (MS_RDONLY)"
            ));
            return Err(Errno::EROFS);
        }
        let reg = Registry::of(k).inspect_err(|_| {
            k.log("iso9660: no block-device registry (boot the dev-blk component)")
        })?;
        let (dev, claim) = reg.claim(name)?;
        let st = fs::IsoFs::open(dev, Some(claim), k.hyper().clone(), k.sched(), name, opts)?;
        Ok(Arc::new(IsoFileSystem::new(st)))
    }

    /// The `CD001` standard identifier of a volume descriptor at sector
    /// 16 (ECMA-119 8.1.2), with a known descriptor type and version 1.
    fn probe(&self, k: &Kernel, source: &[u8]) -> Result<bool, Errno> {
        let name = core::str::from_utf8(source).map_err(|_| Errno::ENXIO)?;
        let dev = Registry::of(k)?.lookup(name)?;
        let off = format::FIRST_DESCRIPTOR * format::SECTOR as u64;
        if dev.size_bytes() < off + format::SECTOR as u64 {
            return Ok(false);
        }
        let mut vd = [0u8; 8];
        dev_blk::read_bytes(&*dev, off, &mut vd)?;
        Ok(is_volume_descriptor(&vd))
    }
}

/// Whether the first bytes of sector 16 look like an ISO 9660 volume
/// descriptor.
pub fn is_volume_descriptor(b: &[u8]) -> bool {
    b.len() >= 7 && &b[1..6] == format::STANDARD_ID && matches!(b[0], 0..=3 | 255) && b[6] == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let o = Options::parse(b"ro,norock,uid=1000,gid=100,mode=0444,dmode=755,map=off").unwrap();
        assert!(o.norock && !o.nojoliet && !o.map_normal);
        assert_eq!((o.uid, o.gid, o.fmode, o.dmode), (1000, 100, 0o444, 0o755));
        assert_eq!(Options::parse(b"").unwrap(), Options::default());
        assert_eq!(Options::parse(b"uid=x"), Err(&b"uid=x"[..]));
        assert_eq!(Options::parse(b"mode=9"), Err(&b"mode=9"[..]));
        assert_eq!(Options::parse(b"bogus"), Err(&b"bogus"[..]));
        assert_eq!(Options::parse(b"norock=1"), Err(&b"norock=1"[..]));
    }

    #[test]
    fn descriptor_identifier() {
        assert!(is_volume_descriptor(b"\x01CD001\x01\x00"));
        assert!(is_volume_descriptor(b"\xffCD001\x01\x00"));
        assert!(!is_volume_descriptor(b"\x01CD001\x02\x00"));
        assert!(!is_volume_descriptor(b"\x09CD001\x01\x00"));
        assert!(!is_volume_descriptor(b"\x01CD00"));
        assert!(!is_volume_descriptor(&[0u8; 8]));
    }
}
