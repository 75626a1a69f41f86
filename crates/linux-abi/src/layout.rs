//! Linux x86_64 structure layouts: sizes and field offsets, and the
//! encoders and decoders built on them. Each module is one C structure
//! (`include/uapi/...` and `arch/x86/include/uapi/asm/stat.h`); the tests
//! compare every offset with the `libc` crate's definition.

use alloc::vec;
use alloc::vec::Vec;

use sys::{Stat, StatVfs, Utsname};

/// `struct stat` (x86_64 `asm/stat.h`, 144 bytes).
pub mod stat {
    pub const SIZE: usize = 144;
    pub const DEV: usize = 0;
    pub const INO: usize = 8;
    pub const NLINK: usize = 16;
    pub const MODE: usize = 24;
    pub const UID: usize = 28;
    pub const GID: usize = 32;
    pub const RDEV: usize = 40;
    pub const SIZE_: usize = 48;
    pub const BLKSIZE: usize = 56;
    pub const BLOCKS: usize = 64;
    pub const ATIME: usize = 72;
    pub const ATIME_NSEC: usize = 80;
    pub const MTIME: usize = 88;
    pub const MTIME_NSEC: usize = 96;
    pub const CTIME: usize = 104;
    pub const CTIME_NSEC: usize = 112;
}

/// `struct statx` (`linux/stat.h`, 256 bytes) and its `statx_timestamp`.
pub mod statx {
    pub const SIZE: usize = 256;
    pub const MASK: usize = 0;
    pub const BLKSIZE: usize = 4;
    pub const ATTRIBUTES: usize = 8;
    pub const NLINK: usize = 16;
    pub const UID: usize = 20;
    pub const GID: usize = 24;
    pub const MODE: usize = 28;
    pub const INO: usize = 32;
    pub const SIZE_: usize = 40;
    pub const BLOCKS: usize = 48;
    pub const ATTRIBUTES_MASK: usize = 56;
    pub const ATIME: usize = 64;
    pub const BTIME: usize = 80;
    pub const CTIME: usize = 96;
    pub const MTIME: usize = 112;
    pub const RDEV_MAJOR: usize = 128;
    pub const RDEV_MINOR: usize = 132;
    pub const DEV_MAJOR: usize = 136;
    pub const DEV_MINOR: usize = 140;
    /// `statx_timestamp`: `tv_sec` (i64), `tv_nsec` (u32), padding.
    pub const TS_SIZE: usize = 16;
    pub const TS_NSEC: usize = 8;

    pub const TYPE: u32 = 0x1;
    pub const MODE_: u32 = 0x2;
    pub const NLINK_: u32 = 0x4;
    pub const UID_: u32 = 0x8;
    pub const GID_: u32 = 0x10;
    pub const ATIME_: u32 = 0x20;
    pub const MTIME_: u32 = 0x40;
    pub const CTIME_: u32 = 0x80;
    pub const INO_: u32 = 0x100;
    pub const SIZE__: u32 = 0x200;
    pub const BLOCKS_: u32 = 0x400;
    /// `STATX_BASIC_STATS`: everything in `struct stat`, which is what the
    /// kernel reports (no birth time).
    pub const BASIC_STATS: u32 = 0x7ff;
    /// `STATX__RESERVED`: asking for it is `EINVAL`.
    pub const RESERVED: u32 = 0x8000_0000;
}

/// `struct statfs` (x86_64, 120 bytes).
pub mod statfs {
    pub const SIZE: usize = 120;
    pub const TYPE: usize = 0;
    pub const BSIZE: usize = 8;
    pub const BLOCKS: usize = 16;
    pub const BFREE: usize = 24;
    pub const BAVAIL: usize = 32;
    pub const FILES: usize = 40;
    pub const FFREE: usize = 48;
    pub const FSID: usize = 56;
    pub const NAMELEN: usize = 64;
    pub const FRSIZE: usize = 72;
    pub const FLAGS: usize = 80;
    /// `ST_VALID`: `f_flags` is meaningful (always set by Linux).
    pub const ST_VALID: u64 = 0x20;
}

/// `struct timespec` and `struct timeval` (16 bytes each).
pub mod timespec {
    pub const SIZE: usize = 16;
    pub const SEC: usize = 0;
    pub const NSEC: usize = 8;
}

/// `struct iovec` (16 bytes).
pub mod iovec {
    pub const SIZE: usize = 16;
    pub const BASE: usize = 0;
    pub const LEN: usize = 8;
}

/// `struct msghdr` (56 bytes).
pub mod msghdr {
    pub const SIZE: usize = 56;
    pub const NAME: usize = 0;
    pub const NAMELEN: usize = 8;
    pub const IOV: usize = 16;
    pub const IOVLEN: usize = 24;
    pub const CONTROL: usize = 32;
    pub const CONTROLLEN: usize = 40;
    pub const FLAGS: usize = 48;
}

/// `struct pollfd` (8 bytes).
pub mod pollfd {
    pub const SIZE: usize = 8;
    pub const FD: usize = 0;
    pub const EVENTS: usize = 4;
    pub const REVENTS: usize = 6;
}

/// `struct sockaddr_in` (16), `sockaddr_in6` (28), `sockaddr_un` (110).
pub mod sockaddr {
    pub const IN_SIZE: usize = 16;
    pub const IN_PORT: usize = 2;
    pub const IN_ADDR: usize = 4;
    pub const IN6_SIZE: usize = 28;
    /// The RFC 2133 size, without `sin6_scope_id`, which Linux accepts.
    pub const IN6_SIZE_RFC2133: usize = 24;
    pub const IN6_PORT: usize = 2;
    pub const IN6_FLOWINFO: usize = 4;
    pub const IN6_ADDR: usize = 8;
    pub const IN6_SCOPE_ID: usize = 24;
    pub const UN_SIZE: usize = 110;
    pub const UN_PATH: usize = 2;
    /// The largest address a caller may pass (`sizeof(struct sockaddr_storage)`).
    pub const STORAGE_SIZE: usize = 128;
}

/// `struct linux_dirent64`: `d_ino`, `d_off`, `d_reclen`, `d_type`, name.
pub mod dirent64 {
    pub const INO: usize = 0;
    pub const OFF: usize = 8;
    pub const RECLEN: usize = 16;
    pub const TYPE: usize = 18;
    pub const NAME: usize = 19;
}

/// `struct utsname` (six fields of 65 bytes).
pub mod utsname {
    pub const FIELD: usize = 65;
    pub const SIZE: usize = 6 * FIELD;
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// glibc's `gnu_dev_major`/`gnu_dev_minor` split of an encoded `dev_t`.
pub fn dev_split(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// `struct stat` bytes for `st`.
pub fn encode_stat(st: &Stat) -> Vec<u8> {
    use stat::*;
    let mut b = vec![0u8; SIZE];
    put(&mut b, DEV, &st.dev.to_ne_bytes());
    put(&mut b, INO, &st.ino.to_ne_bytes());
    put(&mut b, NLINK, &st.nlink.to_ne_bytes());
    put(&mut b, MODE, &st.mode.to_ne_bytes());
    put(&mut b, UID, &st.uid.to_ne_bytes());
    put(&mut b, GID, &st.gid.to_ne_bytes());
    put(&mut b, RDEV, &st.rdev.to_ne_bytes());
    put(&mut b, SIZE_, &st.size.to_ne_bytes());
    put(&mut b, BLKSIZE, &(st.blksize as i64).to_ne_bytes());
    put(&mut b, BLOCKS, &st.blocks.to_ne_bytes());
    for (at, t) in [(ATIME, &st.atime), (MTIME, &st.mtime), (CTIME, &st.ctime)] {
        put(&mut b, at, &t.sec.to_ne_bytes());
        put(&mut b, at + 8, &(t.nsec as i64).to_ne_bytes());
    }
    b
}

/// `struct statx` bytes for `st`, reporting the basic fields.
pub fn encode_statx(st: &Stat) -> Vec<u8> {
    use statx::*;
    let mut b = vec![0u8; SIZE];
    put(&mut b, MASK, &BASIC_STATS.to_ne_bytes());
    put(&mut b, BLKSIZE, &st.blksize.to_ne_bytes());
    put(
        &mut b,
        NLINK,
        &(st.nlink.min(u32::MAX as u64) as u32).to_ne_bytes(),
    );
    put(&mut b, UID, &st.uid.to_ne_bytes());
    put(&mut b, GID, &st.gid.to_ne_bytes());
    put(&mut b, MODE, &(st.mode as u16).to_ne_bytes());
    put(&mut b, INO, &st.ino.to_ne_bytes());
    put(&mut b, SIZE_, &st.size.to_ne_bytes());
    put(&mut b, BLOCKS, &st.blocks.to_ne_bytes());
    for (at, t) in [(ATIME, &st.atime), (MTIME, &st.mtime), (CTIME, &st.ctime)] {
        put(&mut b, at, &t.sec.to_ne_bytes());
        put(&mut b, at + TS_NSEC, &t.nsec.to_ne_bytes());
    }
    let (rmaj, rmin) = dev_split(st.rdev);
    let (dmaj, dmin) = dev_split(st.dev);
    put(&mut b, RDEV_MAJOR, &rmaj.to_ne_bytes());
    put(&mut b, RDEV_MINOR, &rmin.to_ne_bytes());
    put(&mut b, DEV_MAJOR, &dmaj.to_ne_bytes());
    put(&mut b, DEV_MINOR, &dmin.to_ne_bytes());
    b
}

/// `struct statfs` bytes for `sv`.
pub fn encode_statfs(sv: &StatVfs) -> Vec<u8> {
    use statfs::*;
    let mut b = vec![0u8; SIZE];
    put(&mut b, TYPE, &sv.fs_type.to_ne_bytes());
    put(&mut b, BSIZE, &sv.bsize.to_ne_bytes());
    put(&mut b, BLOCKS, &sv.blocks.to_ne_bytes());
    put(&mut b, BFREE, &sv.bfree.to_ne_bytes());
    put(&mut b, BAVAIL, &sv.bavail.to_ne_bytes());
    put(&mut b, FILES, &sv.files.to_ne_bytes());
    put(&mut b, FFREE, &sv.ffree.to_ne_bytes());
    // f_fsid is two ints; Linux puts the low and high halves of the id.
    put(&mut b, FSID, &(sv.fsid as u32).to_ne_bytes());
    put(&mut b, FSID + 4, &((sv.fsid >> 32) as u32).to_ne_bytes());
    put(&mut b, NAMELEN, &sv.namemax.to_ne_bytes());
    put(&mut b, FRSIZE, &sv.frsize.to_ne_bytes());
    put(&mut b, FLAGS, &(sv.flag | ST_VALID).to_ne_bytes());
    b
}

/// `struct utsname` bytes (each field cut to 64 bytes and NUL-terminated).
pub fn encode_utsname(u: &Utsname) -> Vec<u8> {
    let mut b = vec![0u8; utsname::SIZE];
    let fields = [
        &u.sysname,
        &u.nodename,
        &u.release,
        &u.version,
        &u.machine,
        &u.domainname,
    ];
    for (i, f) in fields.iter().enumerate() {
        let s = f.as_bytes();
        let n = s.len().min(utsname::FIELD - 1);
        put(&mut b, i * utsname::FIELD, &s[..n]);
    }
    b
}
