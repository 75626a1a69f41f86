//! The personality against a real local kernel, with the caller's memory
//! a `Vec`: each call as a program would make it (raw numbers and
//! registers), results read back in Linux's layouts.

use std::cell::Cell;

use linux_abi::layout::{msghdr, pollfd, stat, statx};
use linux_abi::{nr, Direct, Linux, VecMemory};
use rump::sys::{self, consts::*};
use rump::Errno;

const BASE: u64 = 0x10_0000;
const SIZE: usize = 4 << 20;

/// A kernel, a process and a caller's memory with a bump allocator.
struct T {
    _k: rump::Kernel,
    p: rump::Process,
    mem: VecMemory,
    next: Cell<u64>,
}

impl T {
    fn new() -> T {
        let k = rump::Kernel::builder().net().boot().expect("boot");
        let p = k.process().expect("process");
        T {
            _k: k,
            p,
            mem: VecMemory::new(BASE, SIZE),
            next: Cell::new(BASE + 4096),
        }
    }

    fn sc(&self, n: u64, a: &[u64]) -> i64 {
        let mut args = [0u64; 6];
        args[..a.len()].copy_from_slice(a);
        Linux {
            sys: &self.p,
            mem: &self.mem,
            ns: &Direct,
        }
        .syscall(n, args)
    }

    /// Memory for `n` bytes (8-aligned).
    fn alloc(&self, n: usize) -> u64 {
        let a = self.next.get();
        self.next.set(a + (n as u64).next_multiple_of(8));
        assert!(self.next.get() < BASE + SIZE as u64);
        a
    }

    fn bytes(&self, b: &[u8]) -> u64 {
        let a = self.alloc(b.len().max(1));
        linux_abi::write_bytes(&self.mem, a, b).unwrap();
        a
    }

    fn cstr(&self, s: &str) -> u64 {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.bytes(&v)
    }

    fn peek(&self, a: u64, n: usize) -> Vec<u8> {
        self.mem.peek(a, n).unwrap()
    }

    fn u64_at(&self, a: u64) -> u64 {
        u64::from_ne_bytes(self.peek(a, 8).try_into().unwrap())
    }

    fn u32_at(&self, a: u64) -> u32 {
        u32::from_ne_bytes(self.peek(a, 4).try_into().unwrap())
    }

    fn open(&self, path: &str, flags: i32, mode: u32) -> i64 {
        let p = self.cstr(path);
        self.sc(
            nr::OPENAT,
            &[at::FDCWD as u32 as u64, p, flags as u64, mode as u64],
        )
    }
}

fn err(e: Errno) -> i64 {
    -(e.0 as i64)
}

#[test]
fn open_write_read_seek_close() {
    let t = T::new();
    let fd = t.open("/f", o::CREAT | o::RDWR | o::EXCL, 0o640);
    assert!(fd >= 0, "{fd}");
    let data = t.bytes(b"hello, world");
    assert_eq!(t.sc(nr::WRITE, &[fd as u64, data, 12]), 12);
    assert_eq!(t.sc(nr::LSEEK, &[fd as u64, 0, seek::SET as u64]), 0);
    let buf = t.alloc(64);
    assert_eq!(t.sc(nr::READ, &[fd as u64, buf, 64]), 12);
    assert_eq!(t.peek(buf, 12), b"hello, world");
    assert_eq!(t.sc(nr::PREAD64, &[fd as u64, buf, 5, 7]), 5);
    assert_eq!(t.peek(buf, 5), b"world");
    let w = t.bytes(b"W");
    assert_eq!(t.sc(nr::PWRITE64, &[fd as u64, w, 1, 7]), 1);
    assert_eq!(t.sc(nr::PREAD64, &[fd as u64, buf, 64, 0]), 12);
    assert_eq!(t.peek(buf, 12), b"hello, World");
    // A negative offset, a bad buffer, a closed descriptor.
    assert_eq!(
        t.sc(nr::PREAD64, &[fd as u64, buf, 1, (-1i64) as u64]),
        err(Errno::EINVAL)
    );
    assert_eq!(t.sc(nr::WRITE, &[fd as u64, 8, 4]), err(Errno::EFAULT));
    assert_eq!(t.sc(nr::PREAD64, &[fd as u64, 8, 4, 0]), err(Errno::EFAULT));
    assert_eq!(t.sc(nr::CLOSE, &[fd as u64]), 0);
    assert_eq!(t.sc(nr::READ, &[fd as u64, buf, 1]), err(Errno::EBADF));
    // O_EXCL on an existing file; creat truncates.
    assert_eq!(
        t.open("/f", o::CREAT | o::EXCL | o::WRONLY, 0),
        err(Errno::EEXIST)
    );
    let p = t.cstr("/f");
    let fd = t.sc(nr::CREAT, &[p, 0o600]);
    assert!(fd >= 0);
    let sb = t.alloc(stat::SIZE);
    assert_eq!(t.sc(nr::FSTAT, &[fd as u64, sb]), 0);
    assert_eq!(t.u64_at(sb + stat::SIZE_ as u64), 0);
    // Unknown open flags are ignored, as Linux does.
    assert!(t.open("/f", o::RDONLY | 0o40000000, 0) >= 0);
}

#[test]
fn stat_layouts_carry_the_kernels_values() {
    let t = T::new();
    let fd = t.open("/s", o::CREAT | o::WRONLY, 0o751);
    let d = t.bytes(&[7u8; 5000]);
    assert_eq!(t.sc(nr::WRITE, &[fd as u64, d, 5000]), 5000);
    let want = sys::stat(&t.p, b"/s").unwrap();
    let sb = t.alloc(stat::SIZE);
    let p = t.cstr("/s");
    assert_eq!(t.sc(nr::STAT, &[p, sb]), 0);
    let got = |off: usize| t.u64_at(sb + off as u64);
    assert_eq!(got(stat::INO), want.ino);
    assert_eq!(got(stat::DEV), want.dev);
    assert_eq!(got(stat::NLINK), 1);
    assert_eq!(t.u32_at(sb + stat::MODE as u64), s::IFREG | 0o751);
    assert_eq!(got(stat::SIZE_), 5000);
    assert_eq!(got(stat::BLOCKS), want.blocks);
    assert_eq!(got(stat::MTIME) as i64, want.mtime.sec);
    assert_eq!(got(stat::MTIME_NSEC), want.mtime.nsec as u64);

    // statx: mask, the same values, dev split.
    let sx = t.alloc(statx::SIZE);
    let r = t.sc(
        nr::STATX,
        &[at::FDCWD as u32 as u64, p, 0, statx::BASIC_STATS as u64, sx],
    );
    assert_eq!(r, 0);
    assert_eq!(t.u32_at(sx + statx::MASK as u64), statx::BASIC_STATS);
    assert_eq!(t.u64_at(sx + statx::INO as u64), want.ino);
    assert_eq!(t.u64_at(sx + statx::SIZE_ as u64), 5000);
    let mode = u16::from_ne_bytes(t.peek(sx + statx::MODE as u64, 2).try_into().unwrap());
    assert_eq!(mode as u32, s::IFREG | 0o751);
    let (maj, min) = linux_abi::layout::dev_split(want.dev);
    assert_eq!(t.u32_at(sx + statx::DEV_MAJOR as u64), maj);
    assert_eq!(t.u32_at(sx + statx::DEV_MINOR as u64), min);
    // Reserved mask bit, both sync flags, unknown flags: EINVAL.
    let bad =
        |flags: u64, mask: u64| t.sc(nr::STATX, &[at::FDCWD as u32 as u64, p, flags, mask, sx]);
    assert_eq!(bad(0, statx::RESERVED as u64), err(Errno::EINVAL));
    assert_eq!(bad(0x6000, 0x7ff), err(Errno::EINVAL));
    assert_eq!(bad(0x1, 0x7ff), err(Errno::EINVAL));
    // AT_EMPTY_PATH with a NULL path is fstat of the descriptor.
    let r = t.sc(nr::STATX, &[fd as u64, 0, at::EMPTY_PATH as u64, 0x7ff, sx]);
    assert_eq!(r, 0);
    assert_eq!(t.u64_at(sx + statx::INO as u64), want.ino);

    // lstat of a symlink; newfstatat follows or not.
    let target = t.cstr("/s");
    let link = t.cstr("/l");
    assert_eq!(t.sc(nr::SYMLINK, &[target, link]), 0);
    assert_eq!(t.sc(nr::LSTAT, &[link, sb]), 0);
    assert_eq!(t.u32_at(sb + stat::MODE as u64) & s::IFMT, s::IFLNK);
    let r = t.sc(nr::NEWFSTATAT, &[at::FDCWD as u32 as u64, link, sb, 0]);
    assert_eq!(r, 0);
    assert_eq!(t.u32_at(sb + stat::MODE as u64) & s::IFMT, s::IFREG);
    let r = t.sc(nr::NEWFSTATAT, &[at::FDCWD as u32 as u64, link, sb, 0x8000]);
    assert_eq!(r, err(Errno::EINVAL));
    // A stat buffer that is not writable.
    assert_eq!(
        t.sc(nr::STAT, &[p, BASE + SIZE as u64 - 8]),
        err(Errno::EFAULT)
    );
}

#[test]
fn path_strings_are_bounded_and_checked() {
    let t = T::new();
    let sb = t.alloc(stat::SIZE);
    // NULL and wild pointers.
    assert_eq!(t.sc(nr::STAT, &[0, sb]), err(Errno::EFAULT));
    assert_eq!(t.sc(nr::MKDIR, &[u64::MAX - 3, 0o755]), err(Errno::EFAULT));
    // No NUL within PATH_MAX bytes.
    let long = t.bytes(&vec![b'a'; PATH_MAX + 10]);
    assert_eq!(t.sc(nr::STAT, &[long, sb]), err(Errno::ENAMETOOLONG));
    // Exactly PATH_MAX - 1 bytes plus the NUL is a path (too long a
    // component here, but not too long a path).
    let mut p = vec![b'a'; PATH_MAX - 1];
    p.push(0);
    let ok = t.bytes(&p);
    assert_eq!(t.sc(nr::STAT, &[ok, sb]), err(Errno::ENAMETOOLONG));
    let mut p = b"/".to_vec();
    p.extend(std::iter::repeat_n(b"a/../".as_slice(), PATH_MAX / 5).flatten());
    p.truncate(PATH_MAX - 1);
    while p.last() != Some(&b'/') && p.len() > 1 {
        p.pop();
    }
    p.push(0);
    let deep = t.bytes(&p);
    assert_eq!(t.sc(nr::STAT, &[deep, sb]), err(Errno::ENOENT));
    let a = t.cstr("/a");
    assert_eq!(t.sc(nr::MKDIR, &[a, 0o755]), 0);
    assert_eq!(t.sc(nr::STAT, &[deep, sb]), 0);
    // A string running into the end of the mapping without a NUL.
    let end = BASE + SIZE as u64 - 5;
    linux_abi::write_bytes(&t.mem, end, b"/abcd").unwrap();
    assert_eq!(t.sc(nr::STAT, &[end, sb]), err(Errno::EFAULT));
}

#[test]
fn names_directories_and_links() {
    let t = T::new();
    let d = t.cstr("/d");
    assert_eq!(t.sc(nr::MKDIR, &[d, 0o755]), 0);
    assert_eq!(t.sc(nr::MKDIR, &[d, 0o755]), err(Errno::EEXIST));
    let dfd = t.open("/d", o::RDONLY | o::DIRECTORY, 0);
    assert!(dfd >= 0);
    let a = t.cstr("a");
    assert_eq!(t.sc(nr::MKDIRAT, &[dfd as u64, a, 0o700]), 0);
    let f = t.cstr("f");
    let fd = t.sc(
        nr::OPENAT,
        &[dfd as u64, f, (o::CREAT | o::WRONLY) as u64, 0o644],
    );
    assert!(fd >= 0);
    // getdents64 lists ., .., a, f in linux_dirent64 records.
    let buf = t.alloc(4096);
    let n = t.sc(nr::GETDENTS64, &[dfd as u64, buf, 4096]);
    assert!(n > 0);
    let raw = t.peek(buf, n as usize);
    let mut names = Vec::new();
    let mut off = 0;
    while off < raw.len() {
        let reclen = u16::from_ne_bytes([raw[off + 16], raw[off + 17]]) as usize;
        let name = &raw[off + 19..off + reclen];
        let end = name.iter().position(|&b| b == 0).unwrap();
        names.push(String::from_utf8(name[..end].to_vec()).unwrap());
        off += reclen;
    }
    names.sort();
    assert_eq!(names, [".", "..", "a", "f"]);
    assert_eq!(t.sc(nr::GETDENTS64, &[dfd as u64, buf, 4096]), 0);
    assert_eq!(
        t.sc(nr::GETDENTS64, &[fd as u64, buf, 4096]),
        err(Errno::ENOTDIR)
    );
    // rename, renameat2 NOREPLACE, link, unlink, rmdir.
    let df = t.cstr("/d/f");
    let dg = t.cstr("/d/g");
    assert_eq!(t.sc(nr::RENAME, &[df, dg]), 0);
    let r = t.sc(
        nr::RENAMEAT2,
        &[at::FDCWD as u32 as u64, dg, at::FDCWD as u32 as u64, d, 1],
    );
    assert_eq!(r, err(Errno::EEXIST));
    let r = t.sc(
        nr::RENAMEAT2,
        &[at::FDCWD as u32 as u64, dg, at::FDCWD as u32 as u64, df, 1],
    );
    assert_eq!(r, 0);
    let r = t.sc(
        nr::RENAMEAT2,
        &[at::FDCWD as u32 as u64, df, at::FDCWD as u32 as u64, dg, 2],
    );
    assert_eq!(r, err(Errno::EINVAL));
    assert_eq!(t.sc(nr::LINK, &[df, dg]), 0);
    let sb = t.alloc(stat::SIZE);
    assert_eq!(t.sc(nr::STAT, &[dg, sb]), 0);
    assert_eq!(t.u64_at(sb + stat::NLINK as u64), 2);
    assert_eq!(t.sc(nr::UNLINK, &[dg]), 0);
    assert_eq!(t.sc(nr::RMDIR, &[d]), err(Errno::ENOTEMPTY));
    assert_eq!(
        t.sc(nr::UNLINKAT, &[dfd as u64, a, 0x1]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.sc(nr::UNLINKAT, &[dfd as u64, a, at::REMOVEDIR as u64]),
        0
    );
    // readlink truncates to the buffer and reports its length.
    let l = t.cstr("/d/l");
    let target = t.cstr("some/where");
    assert_eq!(t.sc(nr::SYMLINK, &[target, l]), 0);
    let out = t.alloc(64);
    assert_eq!(t.sc(nr::READLINK, &[l, out, 64]), 10);
    assert_eq!(t.peek(out, 10), b"some/where");
    assert_eq!(t.sc(nr::READLINK, &[l, out, 4]), 4);
    assert_eq!(t.sc(nr::READLINK, &[l, out, 0]), err(Errno::EINVAL));
    assert_eq!(t.sc(nr::READLINK, &[df, out, 64]), err(Errno::EINVAL));
    // chdir, getcwd (ERANGE when too small), fchdir.
    assert_eq!(t.sc(nr::CHDIR, &[d]), 0);
    let cwd = t.alloc(64);
    assert_eq!(t.sc(nr::GETCWD, &[cwd, 64]), 3);
    assert_eq!(t.peek(cwd, 3), b"/d\0");
    assert_eq!(t.sc(nr::GETCWD, &[cwd, 2]), err(Errno::ERANGE));
    let r = t.sc(nr::ACCESS, &[f, access::W_OK as u64]);
    assert_eq!(r, 0);
    let root = t.open("/", o::RDONLY | o::DIRECTORY, 0);
    assert_eq!(t.sc(nr::FCHDIR, &[root as u64]), 0);
    assert_eq!(t.sc(nr::GETCWD, &[cwd, 64]), 2);
    assert_eq!(t.sc(nr::ACCESS, &[f, 0]), err(Errno::ENOENT));
}

#[test]
fn attributes_times_and_truncation() {
    let t = T::new();
    let fd = t.open("/a", o::CREAT | o::RDWR, 0o600);
    let p = t.cstr("/a");
    let sb = t.alloc(stat::SIZE);
    assert_eq!(t.sc(nr::CHMOD, &[p, 0o4755]), 0);
    assert_eq!(t.sc(nr::FSTAT, &[fd as u64, sb]), 0);
    assert_eq!(t.u32_at(sb + stat::MODE as u64), s::IFREG | 0o4755);
    assert_eq!(t.sc(nr::FCHMOD, &[fd as u64, 0o600]), 0);
    assert_eq!(t.sc(nr::CHOWN, &[p, 12, 34]), 0);
    assert_eq!(t.sc(nr::FSTAT, &[fd as u64, sb]), 0);
    assert_eq!(t.u32_at(sb + stat::UID as u64), 12);
    assert_eq!(t.u32_at(sb + stat::GID as u64), 34);
    // -1 leaves an id alone.
    assert_eq!(t.sc(nr::FCHOWN, &[fd as u64, u32::MAX as u64, 56]), 0);
    assert_eq!(t.sc(nr::FSTAT, &[fd as u64, sb]), 0);
    assert_eq!(t.u32_at(sb + stat::UID as u64), 12);
    assert_eq!(t.u32_at(sb + stat::GID as u64), 56);
    // utimensat with explicit times, then futimens through a NULL path.
    let mut ts = Vec::new();
    for (sec, nsec) in [(1000i64, 5i64), (2000, 7)] {
        ts.extend_from_slice(&sec.to_ne_bytes());
        ts.extend_from_slice(&nsec.to_ne_bytes());
    }
    let tp = t.bytes(&ts);
    assert_eq!(t.sc(nr::UTIMENSAT, &[at::FDCWD as u32 as u64, p, tp, 0]), 0);
    assert_eq!(t.sc(nr::STAT, &[p, sb]), 0);
    assert_eq!(t.u64_at(sb + stat::ATIME as u64), 1000);
    assert_eq!(t.u64_at(sb + stat::MTIME as u64), 2000);
    assert_eq!(t.u64_at(sb + stat::MTIME_NSEC as u64), 7);
    let mut ts2 = ts.clone();
    ts2[24..32].copy_from_slice(&1_000_000_000i64.to_ne_bytes());
    let bad = t.bytes(&ts2);
    assert_eq!(
        t.sc(nr::UTIMENSAT, &[fd as u64, 0, bad, 0]),
        err(Errno::EINVAL)
    );
    ts[16..24].copy_from_slice(&3000i64.to_ne_bytes());
    let tp = t.bytes(&ts);
    assert_eq!(t.sc(nr::UTIMENSAT, &[fd as u64, 0, tp, 0]), 0);
    assert_eq!(t.sc(nr::STAT, &[p, sb]), 0);
    assert_eq!(t.u64_at(sb + stat::MTIME as u64), 3000);
    // truncate and ftruncate.
    assert_eq!(t.sc(nr::TRUNCATE, &[p, 10000]), 0);
    assert_eq!(t.sc(nr::FSTAT, &[fd as u64, sb]), 0);
    assert_eq!(t.u64_at(sb + stat::SIZE_ as u64), 10000);
    assert_eq!(t.sc(nr::FTRUNCATE, &[fd as u64, 3]), 0);
    assert_eq!(t.sc(nr::FSTAT, &[fd as u64, sb]), 0);
    assert_eq!(t.u64_at(sb + stat::SIZE_ as u64), 3);
    assert_eq!(
        t.sc(nr::FTRUNCATE, &[fd as u64, (-1i64) as u64]),
        err(Errno::EINVAL)
    );
    assert_eq!(t.sc(nr::FSYNC, &[fd as u64]), 0);
    assert_eq!(t.sc(nr::FDATASYNC, &[fd as u64]), 0);
    assert_eq!(t.sc(nr::SYNC, &[]), 0);
    // statfs of tmpfs: the magic and ST_VALID.
    let sf = t.alloc(linux_abi::layout::statfs::SIZE);
    assert_eq!(t.sc(nr::STATFS, &[p, sf]), 0);
    assert_eq!(t.u64_at(sf), 0x0102_1994);
    assert_eq!(t.u64_at(sf + 80) & 0x20, 0x20);
    assert_eq!(t.sc(nr::FSTATFS, &[fd as u64, sf]), 0);
    assert_eq!(t.u64_at(sf), 0x0102_1994);
    // mknod of a FIFO.
    let fifo = t.cstr("/fifo");
    assert_eq!(t.sc(nr::MKNOD, &[fifo, (s::IFIFO | 0o644) as u64, 0]), 0);
    assert_eq!(t.sc(nr::LSTAT, &[fifo, sb]), 0);
    assert_eq!(t.u32_at(sb + stat::MODE as u64) & s::IFMT, s::IFIFO);
}

#[test]
fn vectored_io() {
    let t = T::new();
    let fd = t.open("/v", o::CREAT | o::RDWR, 0o600) as u64;
    let a = t.bytes(b"abc");
    let b = t.bytes(b"defgh");
    let mut iov = Vec::new();
    for (base, len) in [(a, 3u64), (b, 5)] {
        iov.extend_from_slice(&base.to_ne_bytes());
        iov.extend_from_slice(&len.to_ne_bytes());
    }
    let iovp = t.bytes(&iov);
    assert_eq!(t.sc(nr::WRITEV, &[fd, iovp, 2]), 8);
    assert_eq!(t.sc(nr::PWRITEV, &[fd, iovp, 2, 8]), 8);
    // Read back scattered into a 2-byte and a 20-byte buffer.
    let x = t.alloc(2);
    let y = t.alloc(20);
    let mut iov = Vec::new();
    for (base, len) in [(x, 2u64), (y, 20)] {
        iov.extend_from_slice(&base.to_ne_bytes());
        iov.extend_from_slice(&len.to_ne_bytes());
    }
    let iovp2 = t.bytes(&iov);
    assert_eq!(t.sc(nr::PREADV, &[fd, iovp2, 2, 0]), 16);
    assert_eq!(t.peek(x, 2), b"ab");
    assert_eq!(t.peek(y, 14), b"cdefghabcdefgh");
    assert_eq!(t.sc(nr::LSEEK, &[fd, 4, seek::SET as u64]), 4);
    assert_eq!(t.sc(nr::READV, &[fd, iovp2, 2]), 12);
    assert_eq!(t.peek(x, 2), b"ef");
    // Too many iovecs, a total beyond isize::MAX, a bad array.
    assert_eq!(t.sc(nr::READV, &[fd, iovp2, 1025]), err(Errno::EINVAL));
    let mut huge = Vec::new();
    for _ in 0..2 {
        huge.extend_from_slice(&x.to_ne_bytes());
        huge.extend_from_slice(&(u64::MAX / 2).to_ne_bytes());
    }
    let hp = t.bytes(&huge);
    assert_eq!(t.sc(nr::WRITEV, &[fd, hp, 2]), err(Errno::EINVAL));
    assert_eq!(t.sc(nr::WRITEV, &[fd, 16, 2]), err(Errno::EFAULT));
    assert_eq!(
        t.sc(nr::PREADV, &[fd, iovp2, 2, (-5i64) as u64]),
        err(Errno::EINVAL)
    );
}

#[test]
fn descriptors_fcntl_ioctl_poll() {
    let t = T::new();
    let fd = t.open("/p", o::CREAT | o::RDWR, 0o600) as u64;
    let d = t.sc(nr::DUP, &[fd]);
    assert!(d > fd as i64);
    assert_eq!(t.sc(nr::DUP2, &[fd, 50]), 50);
    assert_eq!(t.sc(nr::DUP3, &[fd, 51, o::CLOEXEC as u64]), 51);
    assert_eq!(
        t.sc(nr::FCNTL, &[51, f::GETFD as u64]),
        f::FD_CLOEXEC as i64
    );
    assert_eq!(t.sc(nr::DUP3, &[fd, fd, 0]), err(Errno::EINVAL));
    let r = t.sc(nr::FCNTL, &[fd, f::DUPFD_CLOEXEC as u64, 100]);
    assert!(r >= 100);
    assert_eq!(
        t.sc(nr::FCNTL, &[fd, f::GETFL as u64]) as i32 & o::ACCMODE,
        o::RDWR
    );
    assert_eq!(t.sc(nr::FCNTL, &[fd, f::SETFL as u64, o::APPEND as u64]), 0);
    assert_ne!(
        t.sc(nr::FCNTL, &[fd, f::GETFL as u64]) as i32 & o::APPEND,
        0
    );
    // Locks are refused plainly, on valid descriptors only.
    assert_eq!(t.sc(nr::FCNTL, &[fd, 6, 0]), err(Errno::ENOLCK));
    assert_eq!(t.sc(nr::FCNTL, &[999, 6, 0]), err(Errno::EBADF));
    assert_eq!(t.sc(nr::FLOCK, &[fd, 2]), err(Errno::ENOLCK));
    // ioctl: FIONBIO works; a terminal ioctl is ENOTTY; EBADF first.
    let one = t.bytes(&1u32.to_ne_bytes());
    assert_eq!(t.sc(nr::IOCTL, &[fd, 0x5421, one]), 0);
    assert_ne!(
        t.sc(nr::FCNTL, &[fd, f::GETFL as u64]) as i32 & o::NONBLOCK,
        0
    );
    assert_eq!(t.sc(nr::IOCTL, &[fd, 0x5401, one]), err(Errno::ENOTTY));
    assert_eq!(t.sc(nr::IOCTL, &[999, 0x5401, one]), err(Errno::EBADF));
    assert_eq!(t.sc(nr::IOCTL, &[fd, 0x5451, 0]), 0);
    assert_eq!(
        t.sc(nr::FCNTL, &[fd, f::GETFD as u64]),
        f::FD_CLOEXEC as i64
    );
    // poll: a regular file is ready; a closed descriptor is POLLNVAL; a
    // negative one is skipped.
    let mut pf = Vec::new();
    for (fdv, ev) in [
        (fd as i32, poll::IN | poll::OUT),
        (777, poll::IN),
        (-1, poll::IN),
    ] {
        pf.extend_from_slice(&fdv.to_ne_bytes());
        pf.extend_from_slice(&ev.to_ne_bytes());
        pf.extend_from_slice(&0i16.to_ne_bytes());
    }
    let pp = t.bytes(&pf);
    assert_eq!(t.sc(nr::POLL, &[pp, 3, 0]), 2);
    let rev = |i: u64| {
        i16::from_ne_bytes(
            t.peek(pp + i * 8 + pollfd::REVENTS as u64, 2)
                .try_into()
                .unwrap(),
        )
    };
    assert_eq!(rev(0), poll::IN | poll::OUT);
    assert_eq!(rev(1), poll::NVAL);
    assert_eq!(rev(2), 0);
    // ppoll with a zero timeout; a bad timespec is EINVAL.
    let ts = t.bytes(&[0u8; 16]);
    assert_eq!(t.sc(nr::PPOLL, &[pp, 1, ts, 0, 8]), 1);
    let mut bad = [0u8; 16];
    bad[8..].copy_from_slice(&2_000_000_000i64.to_ne_bytes());
    let bad = t.bytes(&bad);
    assert_eq!(t.sc(nr::PPOLL, &[pp, 1, bad, 0, 8]), err(Errno::EINVAL));
    assert_eq!(t.sc(nr::POLL, &[8, 1, 0]), err(Errno::EFAULT));
    // select: the file is readable and writable.
    let mut set = [0u64; 2];
    set[fd as usize / 64] |= 1 << (fd % 64);
    let rd = t.bytes(&set.iter().flat_map(|w| w.to_ne_bytes()).collect::<Vec<_>>());
    let wr = t.bytes(&set.iter().flat_map(|w| w.to_ne_bytes()).collect::<Vec<_>>());
    let tv = t.bytes(&[0u8; 16]);
    assert_eq!(t.sc(nr::SELECT, &[fd + 1, rd, wr, 0, tv]), 2);
    assert_eq!(t.u64_at(rd + (fd / 64) * 8), 1 << (fd % 64));
    let mut closed = [0u64; 2];
    closed[0] = 1 << 40;
    let cs = t.bytes(
        &closed
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect::<Vec<_>>(),
    );
    assert_eq!(t.sc(nr::SELECT, &[41, cs, 0, 0, tv]), err(Errno::EBADF));
}

#[test]
fn identity_calls_unknown_numbers_and_refusals() {
    let t = T::new();
    assert_eq!(t.sc(nr::GETPID, &[]), t.p.pid() as i64);
    assert_eq!(t.sc(nr::GETUID, &[]), 0);
    assert_eq!(t.sc(nr::GETEGID, &[]), 0);
    assert!(t.sc(nr::GETPPID, &[]) >= 0);
    let n = t.sc(nr::GETGROUPS, &[0, 0]);
    assert!(n >= 0);
    assert_eq!(
        t.sc(nr::GETGROUPS, &[(-1i32) as u32 as u64, 0]),
        err(Errno::EINVAL)
    );
    let old = t.sc(nr::UMASK, &[0o077]);
    assert!(old >= 0);
    assert_eq!(t.sc(nr::UMASK, &[old as u64]), 0o077);
    let u = t.alloc(linux_abi::layout::utsname::SIZE);
    assert_eq!(t.sc(nr::UNAME, &[u]), 0);
    let machine = t.peek(u + 4 * 65, 65);
    assert!(machine.starts_with(b"x86_64") || machine[0] != 0);
    assert_eq!(t.sc(nr::UNAME, &[8]), err(Errno::EFAULT));
    for n in [10_000u64, 335, 1 << 40, u64::MAX] {
        assert_eq!(t.sc(n, &[1, 2, 3]), err(Errno::ENOSYS));
    }
    assert_eq!(t.sc(nr::IO_URING_SETUP, &[8, 0]), err(Errno::ENOSYS));
    let fd = t.open("/m", o::CREAT | o::RDWR, 0o600) as u64;
    assert_eq!(t.sc(nr::MMAP, &[0, 4096, 1, 1, fd, 0]), err(Errno::ENODEV));
    assert_eq!(t.sc(nr::SOCKETPAIR, &[1, 1, 0, 0]), err(Errno::EOPNOTSUPP));
}

fn sockaddr_in(port: u16, ip: [u8; 4]) -> Vec<u8> {
    let mut v = (af::INET as u16).to_ne_bytes().to_vec();
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(&ip);
    v.resize(16, 0);
    v
}

#[test]
fn udp_sockets_through_sockaddr_and_msghdr() {
    let t = T::new();
    let up = |name: &str| sys::if_set_up(&t.p, name, true);
    let _ = up("lo0");
    let a = t.sc(nr::SOCKET, &[af::INET as u64, sock::DGRAM as u64, 0]);
    let b = t.sc(
        nr::SOCKET,
        &[af::INET as u64, (sock::DGRAM | sock::CLOEXEC) as u64, 0],
    );
    assert!(a >= 0 && b >= 0, "{a} {b}");
    assert_eq!(
        t.sc(nr::FCNTL, &[b as u64, f::GETFD as u64]),
        f::FD_CLOEXEC as i64
    );
    let addr_a = t.bytes(&sockaddr_in(4000, [127, 0, 0, 1]));
    assert_eq!(t.sc(nr::BIND, &[a as u64, addr_a, 16]), 0);
    // Short sockaddr_in, oversized address, unknown family.
    assert_eq!(t.sc(nr::BIND, &[b as u64, addr_a, 8]), err(Errno::EINVAL));
    assert_eq!(t.sc(nr::BIND, &[b as u64, addr_a, 129]), err(Errno::EINVAL));
    let unix = t.bytes(&[1, 0, b'/', b'x', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        t.sc(nr::BIND, &[b as u64, unix, 16]),
        err(Errno::EAFNOSUPPORT)
    );
    // getsockname: truncated to the room given, full length reported.
    let name = t.alloc(16);
    let len = t.bytes(&16u32.to_ne_bytes());
    assert_eq!(t.sc(nr::GETSOCKNAME, &[a as u64, name, len]), 0);
    assert_eq!(t.peek(name, 16), sockaddr_in(4000, [127, 0, 0, 1]));
    let small = t.bytes(&4u32.to_ne_bytes());
    let name2 = t.alloc(16);
    assert_eq!(t.sc(nr::GETSOCKNAME, &[a as u64, name2, small]), 0);
    assert_eq!(t.u32_at(small), 16);
    assert_eq!(t.peek(name2, 4), sockaddr_in(4000, [127, 0, 0, 1])[..4]);
    let neg = t.bytes(&(-1i32).to_ne_bytes());
    assert_eq!(
        t.sc(nr::GETSOCKNAME, &[a as u64, name2, neg]),
        err(Errno::EINVAL)
    );
    // sendto, recvfrom with the sender's address.
    let msg = t.bytes(b"ping");
    let r = t.sc(nr::SENDTO, &[b as u64, msg, 4, 0, addr_a, 16]);
    assert_eq!(r, 4);
    let buf = t.alloc(64);
    let from = t.alloc(16);
    let flen = t.bytes(&16u32.to_ne_bytes());
    assert_eq!(t.sc(nr::RECVFROM, &[a as u64, buf, 64, 0, from, flen]), 4);
    assert_eq!(t.peek(buf, 4), b"ping");
    assert_eq!(t.u32_at(flen), 16);
    let from_b = t.peek(from, 16);
    assert_eq!(&from_b[..2], &(af::INET as u16).to_ne_bytes());
    assert_eq!(&from_b[4..8], &[127, 0, 0, 1]);
    // sendmsg with two iovecs back to the sender, recvmsg scattering it.
    let p1 = t.bytes(b"po");
    let p2 = t.bytes(b"ng!");
    let mut iov = Vec::new();
    for (base, l) in [(p1, 2u64), (p2, 3)] {
        iov.extend_from_slice(&base.to_ne_bytes());
        iov.extend_from_slice(&l.to_ne_bytes());
    }
    let iovp = t.bytes(&iov);
    let mut h = vec![0u8; msghdr::SIZE];
    h[msghdr::NAME..msghdr::NAME + 8].copy_from_slice(&from.to_ne_bytes());
    h[msghdr::NAMELEN..msghdr::NAMELEN + 4].copy_from_slice(&16u32.to_ne_bytes());
    h[msghdr::IOV..msghdr::IOV + 8].copy_from_slice(&iovp.to_ne_bytes());
    h[msghdr::IOVLEN..msghdr::IOVLEN + 8].copy_from_slice(&2u64.to_ne_bytes());
    let hp = t.bytes(&h);
    assert_eq!(t.sc(nr::SENDMSG, &[a as u64, hp, 0]), 5);
    let r1 = t.alloc(3);
    let r2 = t.alloc(10);
    let mut iov = Vec::new();
    for (base, l) in [(r1, 3u64), (r2, 10)] {
        iov.extend_from_slice(&base.to_ne_bytes());
        iov.extend_from_slice(&l.to_ne_bytes());
    }
    let riov = t.bytes(&iov);
    let rname = t.alloc(32);
    let mut h = vec![0u8; msghdr::SIZE];
    h[msghdr::NAME..msghdr::NAME + 8].copy_from_slice(&rname.to_ne_bytes());
    h[msghdr::NAMELEN..msghdr::NAMELEN + 4].copy_from_slice(&32u32.to_ne_bytes());
    h[msghdr::IOV..msghdr::IOV + 8].copy_from_slice(&riov.to_ne_bytes());
    h[msghdr::IOVLEN..msghdr::IOVLEN + 8].copy_from_slice(&2u64.to_ne_bytes());
    h[msghdr::FLAGS..msghdr::FLAGS + 4].copy_from_slice(&(-1i32).to_ne_bytes());
    let rh = t.bytes(&h);
    assert_eq!(t.sc(nr::RECVMSG, &[b as u64, rh, 0]), 5);
    assert_eq!(t.peek(r1, 3), b"pon");
    assert_eq!(t.peek(r2, 2), b"g!");
    assert_eq!(t.u32_at(rh + msghdr::NAMELEN as u64), 16);
    assert_eq!(t.peek(rname, 16), sockaddr_in(4000, [127, 0, 0, 1]));
    assert_eq!(t.u32_at(rh + msghdr::FLAGS as u64), 0);
    assert_eq!(t.u64_at(rh + msghdr::CONTROLLEN as u64), 0);
    // Options: SO_RCVBUF is doubled, as on Linux; an unknown one is
    // ENOPROTOOPT; a short value EINVAL.
    let v = t.bytes(&8192i32.to_ne_bytes());
    let r = t.sc(
        nr::SETSOCKOPT,
        &[a as u64, so::SOL_SOCKET as u64, so::RCVBUF as u64, v, 4],
    );
    assert_eq!(r, 0);
    let out = t.alloc(8);
    let olen = t.bytes(&8u32.to_ne_bytes());
    let r = t.sc(
        nr::GETSOCKOPT,
        &[
            a as u64,
            so::SOL_SOCKET as u64,
            so::RCVBUF as u64,
            out,
            olen,
        ],
    );
    assert_eq!(r, 0);
    assert_eq!(t.u32_at(olen), 4);
    assert_eq!(t.u32_at(out), 16384);
    let r = t.sc(
        nr::SETSOCKOPT,
        &[a as u64, so::SOL_SOCKET as u64, 9999, v, 4],
    );
    assert_eq!(r, err(Errno::ENOPROTOOPT));
    let r = t.sc(
        nr::SETSOCKOPT,
        &[a as u64, so::SOL_SOCKET as u64, so::RCVBUF as u64, v, 2],
    );
    assert_eq!(r, err(Errno::EINVAL));
    // A socket call on a file: ENOTSOCK.
    let fd = t.open("/notsock", o::CREAT | o::RDWR, 0o600) as u64;
    assert_eq!(t.sc(nr::LISTEN, &[fd, 5]), err(Errno::ENOTSOCK));
    assert_eq!(t.sc(nr::SHUTDOWN, &[a as u64, 0]), err(Errno::ENOTCONN));
}

#[test]
fn tcp_accept_and_peer_names() {
    let t = T::new();
    let _ = sys::if_set_up(&t.p, "lo0", true);
    let l = t.sc(nr::SOCKET, &[af::INET as u64, sock::STREAM as u64, 0]) as u64;
    let addr = t.bytes(&sockaddr_in(5000, [127, 0, 0, 1]));
    assert_eq!(t.sc(nr::BIND, &[l, addr, 16]), 0);
    assert_eq!(t.sc(nr::LISTEN, &[l, 8]), 0);
    let c = t.sc(nr::SOCKET, &[af::INET as u64, sock::STREAM as u64, 0]) as u64;
    assert_eq!(t.sc(nr::CONNECT, &[c, addr, 16]), 0);
    let peer = t.alloc(16);
    let plen = t.bytes(&16u32.to_ne_bytes());
    let s = t.sc(nr::ACCEPT4, &[l, peer, plen, sock::CLOEXEC as u64]);
    assert!(s >= 0, "{s}");
    assert_eq!(t.u32_at(plen), 16);
    assert_eq!(&t.peek(peer, 8)[4..8], &[127, 0, 0, 1]);
    assert_eq!(
        t.sc(nr::FCNTL, &[s as u64, f::GETFD as u64]),
        f::FD_CLOEXEC as i64
    );
    assert_eq!(t.sc(nr::ACCEPT4, &[l, 0, 0, 0x1]), err(Errno::EINVAL));
    let pn = t.alloc(16);
    let pl = t.bytes(&16u32.to_ne_bytes());
    assert_eq!(t.sc(nr::GETPEERNAME, &[c, pn, pl]), 0);
    assert_eq!(t.peek(pn, 16), sockaddr_in(5000, [127, 0, 0, 1]));
    let data = t.bytes(b"over tcp");
    assert_eq!(t.sc(nr::WRITE, &[c, data, 8]), 8);
    let buf = t.alloc(16);
    assert_eq!(t.sc(nr::READ, &[s as u64, buf, 16]), 8);
    assert_eq!(t.peek(buf, 8), b"over tcp");
    assert_eq!(t.sc(nr::SHUTDOWN, &[c, shut::WR as u64]), 0);
    assert_eq!(t.sc(nr::READ, &[s as u64, buf, 16]), 0);
}

/// Every call number with arbitrary arguments: an errno or a value,
/// never a panic. Calls that may wait (reads, accepts, polls, connects)
/// are left out, since random arguments could make them wait forever.
#[test]
fn arbitrary_arguments_never_panic() {
    let t = T::new();
    // Some real objects for the numbers to land on.
    t.open("/x", o::CREAT | o::RDWR, 0o600);
    let waits = [
        nr::READ,
        nr::READV,
        nr::PREAD64,
        nr::PREADV,
        nr::POLL,
        nr::PPOLL,
        nr::SELECT,
        nr::PSELECT6,
        nr::ACCEPT,
        nr::ACCEPT4,
        nr::CONNECT,
        nr::RECVFROM,
        nr::RECVMSG,
        nr::OPEN,
        nr::OPENAT,
        nr::WRITE,
        nr::WRITEV,
        nr::SENDTO,
        nr::SENDMSG,
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pick = |r: u64| -> u64 {
        match r % 6 {
            0 => r % 8,
            1 => BASE + (r >> 8) % SIZE as u64,
            2 => u64::MAX - (r >> 8) % 4096,
            3 => (r >> 8) % 5000,
            4 => at::FDCWD as u32 as u64,
            _ => r,
        }
    };
    for _ in 0..20_000 {
        let n = rand() % 460;
        if waits.contains(&n) {
            continue;
        }
        let a = [
            pick(rand()),
            pick(rand()),
            pick(rand()),
            pick(rand()),
            pick(rand()),
            pick(rand()),
        ];
        let r = t.sc(n, &a);
        assert!(r >= -4095, "call {n} gave {r}");
    }
}
