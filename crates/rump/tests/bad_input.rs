//! Bad input gets an error, never a panic: invalid descriptors, flags,
//! paths, offsets, lengths and commands, through the typed calls and
//! through [`rump::sys::dispatch`] (the entry the remote protocol and the
//! C ABI use), including a property test that throws random requests at
//! it.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::{boot, get, put};
use proptest::prelude::*;
use rump::kern::sysctl::SysctlValue;
use rump::sys::consts::{access, at, f, o, poll, s, seek};
use rump::sys::{self, PollFd, Request, Response, TimeArg, MAX_IO};
use rump::{Errno, Process};

/// Descriptors that are never valid in a fresh process.
const BAD_FDS: &[i32] = &[-1, -2, i32::MIN, 3, 1000, 65535, 65536, i32::MAX];

/// Calls every descriptor-taking call on `fd` and checks each fails with
/// `EBADF`.
fn assert_all_ebadf(p: &Process, fd: i32) {
    let mut buf = [0u8; 16];
    assert_eq!(
        sys::read(p, fd, &mut buf).err(),
        Some(Errno::EBADF),
        "read {fd}"
    );
    assert_eq!(
        sys::write(p, fd, b"x").err(),
        Some(Errno::EBADF),
        "write {fd}"
    );
    assert_eq!(
        sys::pread(p, fd, &mut buf, 0).err(),
        Some(Errno::EBADF),
        "pread {fd}"
    );
    assert_eq!(
        sys::pwrite(p, fd, b"x", 0).err(),
        Some(Errno::EBADF),
        "pwrite {fd}"
    );
    assert_eq!(
        sys::readv(p, fd, &mut [&mut buf[..]]).err(),
        Some(Errno::EBADF),
        "readv {fd}"
    );
    assert_eq!(
        sys::writev(p, fd, &[&b"x"[..]]).err(),
        Some(Errno::EBADF),
        "writev {fd}"
    );
    assert_eq!(
        sys::lseek(p, fd, 0, seek::SET).err(),
        Some(Errno::EBADF),
        "lseek {fd}"
    );
    assert_eq!(sys::fstat(p, fd).err(), Some(Errno::EBADF), "fstat {fd}");
    assert_eq!(sys::close(p, fd).err(), Some(Errno::EBADF), "close {fd}");
    assert_eq!(sys::dup(p, fd).err(), Some(Errno::EBADF), "dup {fd}");
    assert_eq!(sys::dup2(p, fd, 5).err(), Some(Errno::EBADF), "dup2 {fd}");
    assert_eq!(
        sys::dup3(p, fd, 5, 0).err(),
        Some(Errno::EBADF),
        "dup3 {fd}"
    );
    for cmd in [f::DUPFD, f::GETFD, f::SETFD, f::GETFL, f::SETFL, 9999] {
        assert_eq!(
            sys::fcntl(p, fd, cmd, 0).err(),
            Some(Errno::EBADF),
            "fcntl {fd} {cmd}"
        );
    }
    assert_eq!(sys::fsync(p, fd).err(), Some(Errno::EBADF), "fsync {fd}");
    assert_eq!(
        sys::fdatasync(p, fd).err(),
        Some(Errno::EBADF),
        "fdatasync {fd}"
    );
    assert_eq!(
        sys::ftruncate(p, fd, 0).err(),
        Some(Errno::EBADF),
        "ftruncate {fd}"
    );
    assert_eq!(
        sys::fchmod(p, fd, 0o644).err(),
        Some(Errno::EBADF),
        "fchmod {fd}"
    );
    assert_eq!(
        sys::fchown(p, fd, 0, 0).err(),
        Some(Errno::EBADF),
        "fchown {fd}"
    );
    assert_eq!(
        sys::futimens(p, fd, None).err(),
        Some(Errno::EBADF),
        "futimens {fd}"
    );
    assert_eq!(sys::fchdir(p, fd).err(), Some(Errno::EBADF), "fchdir {fd}");
    assert_eq!(
        sys::fstatvfs(p, fd).err(),
        Some(Errno::EBADF),
        "fstatvfs {fd}"
    );
    assert_eq!(
        sys::getdents64(p, fd, &mut [0u8; 512]).err(),
        Some(Errno::EBADF),
        "getdents64 {fd}"
    );
    if fd != at::FDCWD {
        assert_eq!(
            sys::openat(p, fd, b"rel", o::RDONLY, 0).err(),
            Some(Errno::EBADF),
            "openat {fd}"
        );
        assert_eq!(
            sys::mkdirat(p, fd, b"rel", 0o755).err(),
            Some(Errno::EBADF),
            "mkdirat {fd}"
        );
        assert_eq!(
            sys::fstatat(p, fd, b"rel", 0).err(),
            Some(Errno::EBADF),
            "fstatat {fd}"
        );
        assert_eq!(
            sys::fstatat(p, fd, b"", at::EMPTY_PATH).err(),
            Some(Errno::EBADF),
            "fstatat empty {fd}"
        );
        assert_eq!(
            sys::unlinkat(p, fd, b"rel", 0).err(),
            Some(Errno::EBADF),
            "unlinkat {fd}"
        );
    }
}

#[test]
fn invalid_descriptors_are_ebadf() {
    let (_k, p) = boot();
    for &fd in BAD_FDS {
        assert_all_ebadf(&p, fd);
    }
}

#[test]
fn a_closed_descriptor_is_ebadf() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    let fd = sys::open(&p, b"/f", o::RDWR, 0).unwrap();
    let (r, w) = sys::pipe2(&p, 0).unwrap();
    for x in [fd, r, w] {
        sys::close(&p, x).unwrap();
    }
    for x in [fd, r, w] {
        assert_all_ebadf(&p, x);
    }
}

#[test]
fn descriptor_numbers_at_the_table_limit() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    let fd = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    assert_eq!(sys::dup2(&p, fd, 65535), Ok(65535));
    assert_eq!(sys::dup2(&p, fd, 65536), Err(Errno::EBADF));
    assert_eq!(sys::fcntl(&p, fd, f::DUPFD, 65535), Err(Errno::EMFILE));
    assert_eq!(sys::fcntl(&p, fd, f::DUPFD, 65536), Err(Errno::EINVAL));
    assert_eq!(sys::fcntl(&p, fd, f::DUPFD, -5), Err(Errno::EINVAL));
    sys::close(&p, 65535).unwrap();
}

#[test]
fn a_full_descriptor_table_is_emfile() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    let fd = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    let mut n = 1;
    let err = loop {
        match sys::dup(&p, fd) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert_eq!((err, n), (Errno::EMFILE, 65536));
    assert_eq!(sys::open(&p, b"/f", o::RDONLY, 0), Err(Errno::EMFILE));
    assert_eq!(sys::pipe2(&p, 0), Err(Errno::EMFILE));
    sys::close(&p, 1000).unwrap();
    assert_eq!(sys::pipe2(&p, 0), Err(Errno::EMFILE));
    assert_eq!(sys::dup(&p, fd), Ok(1000));
}

#[test]
fn unknown_open_flags_and_o_accmode_are_einval() {
    // Linux ignores unknown bits; we refuse them so a mistake shows.
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    for flags in [
        o::ACCMODE,
        o::ACCMODE | o::CREAT,
        1 << 30,
        o::RDONLY | 0o40000000,
        o::PATH,
        o::CREAT | o::DIRECTORY,
        -1,
        i32::MIN,
    ] {
        assert_eq!(
            sys::open(&p, b"/f", flags, 0),
            Err(Errno::EINVAL),
            "{flags:#o}"
        );
    }
    // Unknown mode bits are dropped, not refused.
    let fd = sys::open(&p, b"/g", o::WRONLY | o::CREAT, 0xffff_ffff).unwrap();
    assert_eq!(sys::fstat(&p, fd).unwrap().mode, s::IFREG | 0o7755);
}

#[test]
fn invalid_flags_of_other_calls_are_einval() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    let fd = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    let e = Some(Errno::EINVAL);
    assert_eq!(sys::unlinkat(&p, at::FDCWD, b"/f", 1).err(), e);
    assert_eq!(sys::fstatat(&p, at::FDCWD, b"/f", 1).err(), e);
    assert_eq!(sys::faccessat(&p, at::FDCWD, b"/f", 0, 1).err(), e);
    assert_eq!(sys::faccessat(&p, at::FDCWD, b"/f", 8, 0).err(), e);
    assert_eq!(sys::faccessat(&p, at::FDCWD, b"/f", -1, 0).err(), e);
    assert_eq!(
        sys::linkat(&p, at::FDCWD, b"/f", at::FDCWD, b"/g", 1).err(),
        e
    );
    assert_eq!(sys::fchmodat(&p, at::FDCWD, b"/f", 0o644, 1).err(), e);
    assert_eq!(sys::fchownat(&p, at::FDCWD, b"/f", 0, 0, 1).err(), e);
    assert_eq!(sys::utimensat(&p, at::FDCWD, b"/f", None, 1).err(), e);
    assert_eq!(sys::dup3(&p, fd, 7, o::APPEND).err(), e);
    assert_eq!(sys::pipe2(&p, o::APPEND).err(), e);
    assert_eq!(sys::umount2(&p, b"/", 0x100).err(), e);
    assert_eq!(sys::mknod(&p, b"/n", 0o170000, 0).err(), e);
    assert_eq!(
        sys::mknod(&p, b"/n", s::IFDIR | 0o755, 0),
        Err(Errno::EPERM)
    );
    assert_eq!(sys::access(&p, b"/f", access::R_OK | 0x40).err(), e);
}

/// Every path-taking call, with `path` as its (first) path.
fn path_calls(p: &Process, path: &[u8]) -> Vec<(&'static str, Result<(), Errno>)> {
    let u = |r: Result<(), Errno>| r;
    let d = |r: Result<i32, Errno>| r.map(drop);
    vec![
        ("open", d(sys::open(p, path, o::RDONLY, 0))),
        ("creat", d(sys::open(p, path, o::WRONLY | o::CREAT, 0o644))),
        ("stat", sys::stat(p, path).map(drop)),
        ("lstat", sys::lstat(p, path).map(drop)),
        ("mkdir", u(sys::mkdir(p, path, 0o755))),
        ("rmdir", u(sys::rmdir(p, path))),
        ("unlink", u(sys::unlink(p, path))),
        ("rename from", u(sys::rename(p, path, b"/x"))),
        ("rename to", u(sys::rename(p, b"/f", path))),
        ("link from", u(sys::link(p, path, b"/x"))),
        ("link to", u(sys::link(p, b"/f", path))),
        ("symlink at", u(sys::symlink(p, b"/f", path))),
        ("readlink", sys::readlink(p, path).map(drop)),
        ("chmod", u(sys::chmod(p, path, 0o644))),
        ("chown", u(sys::chown(p, path, 0, 0))),
        ("utimensat", u(sys::utimensat(p, at::FDCWD, path, None, 0))),
        ("truncate", u(sys::truncate(p, path, 0))),
        ("access", u(sys::access(p, path, access::F_OK))),
        ("chdir", u(sys::chdir(p, path))),
        ("chroot", u(sys::chroot(p, path))),
        ("statvfs", sys::statvfs(p, path).map(drop)),
        ("mount", u(sys::mount(p, b"tmpfs", path, b"tmpfs", 0, b""))),
        ("umount", u(sys::umount2(p, path, 0))),
        ("mknod", u(sys::mknod(p, path, s::IFIFO | 0o644, 0))),
    ]
}

#[test]
fn paths_containing_nul_are_einval() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    for path in [&b"/f\0"[..], b"\0", b"/f\0/../g", b"/\0x"] {
        for (call, r) in path_calls(&p, path) {
            assert_eq!(r, Err(Errno::EINVAL), "{call} {path:?}");
        }
    }
    assert_eq!(sys::symlink(&p, b"/f\0", b"/l"), Err(Errno::EINVAL));
    // Nothing was created on the way.
    assert_eq!(common::names(&p, b"/").unwrap(), vec![b"f".to_vec()]);
}

#[test]
fn a_path_of_ten_thousand_bytes_is_enametoolong() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    let long_components = b"/abcdefghi".repeat(1000);
    let slashes = [&b"/"[..]; 10_000].concat();
    for path in [&long_components[..], &slashes[..]] {
        assert_eq!(path.len(), 10_000);
        for (call, r) in path_calls(&p, path) {
            assert_eq!(r, Err(Errno::ENAMETOOLONG), "{call}");
        }
    }
    assert_eq!(
        sys::symlink(&p, &long_components, b"/l"),
        Err(Errno::ENAMETOOLONG)
    );
}

#[test]
fn the_empty_path_is_enoent() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    for (call, r) in path_calls(&p, b"") {
        assert_eq!(r, Err(Errno::ENOENT), "{call}");
    }
    assert_eq!(sys::symlink(&p, b"", b"/l"), Err(Errno::ENOENT));
}

#[test]
fn negative_offsets_and_lengths_are_einval() {
    let (_k, p) = boot();
    put(&p, b"/f", b"abc");
    let fd = sys::open(&p, b"/f", o::RDWR, 0).unwrap();
    let mut buf = [0u8; 4];
    for off in [-1, -4096, i64::MIN] {
        assert_eq!(sys::pread(&p, fd, &mut buf, off), Err(Errno::EINVAL));
        assert_eq!(sys::pwrite(&p, fd, b"x", off), Err(Errno::EINVAL));
        assert_eq!(sys::lseek(&p, fd, off, seek::SET), Err(Errno::EINVAL));
        assert_eq!(sys::lseek(&p, fd, off, seek::CUR), Err(Errno::EINVAL));
        // The file has 3 bytes.
        assert_eq!(
            sys::lseek(&p, fd, off.saturating_sub(3), seek::END),
            Err(Errno::EINVAL)
        );
        assert_eq!(sys::truncate(&p, b"/f", off), Err(Errno::EINVAL));
        assert_eq!(sys::ftruncate(&p, fd, off), Err(Errno::EINVAL));
    }
    // Nothing moved or changed.
    assert_eq!(sys::lseek(&p, fd, 0, seek::CUR), Ok(0));
    assert_eq!(get(&p, b"/f").unwrap(), b"abc");
}

#[test]
fn offsets_that_overflow_are_einval() {
    // Linux: an offset plus a length beyond 2^63 - 1 is EINVAL.
    let (_k, p) = boot();
    let fd = sys::open(&p, b"/f", o::RDWR | o::CREAT, 0o644).unwrap();
    let mut buf = [0u8; 2];
    assert_eq!(sys::pwrite(&p, fd, b"xx", i64::MAX - 1), Err(Errno::EINVAL));
    assert_eq!(
        sys::pread(&p, fd, &mut buf, i64::MAX - 1),
        Err(Errno::EINVAL)
    );
    assert_eq!(sys::lseek(&p, fd, i64::MAX, seek::SET), Ok(i64::MAX as u64));
    assert_eq!(sys::lseek(&p, fd, 1, seek::CUR), Err(Errno::EINVAL));
    assert_eq!(sys::write(&p, fd, b"x"), Err(Errno::EINVAL));
    // The largest file tmpfs holds is 2^63 - 1 bytes, and it is sparse.
    sys::ftruncate(&p, fd, i64::MAX).unwrap();
    assert_eq!(sys::lseek(&p, fd, 1, seek::END), Err(Errno::EINVAL));
    assert_eq!(sys::pwrite(&p, fd, b"xx", i64::MAX - 2), Ok(2));
    assert_eq!(sys::pread(&p, fd, &mut buf, i64::MAX - 3), Ok(2));
    assert_eq!(buf, [0, b'x']);
    assert_eq!(sys::fstat(&p, fd).unwrap().blocks, 8);
}

#[test]
fn huge_lengths_are_bounded() {
    let (_k, p) = boot();
    put(&p, b"/f", b"small");
    let fd = sys::open(&p, b"/f", o::RDWR, 0).unwrap();
    // Reads through the request enum are capped, not allocated in full.
    for len in [usize::MAX, usize::MAX / 2, 1 << 40] {
        let r = sys::dispatch(&p, Request::Pread { fd, len, offset: 0 });
        assert_eq!(r, Ok(Response::Bytes(b"small".to_vec())));
        let r = sys::dispatch(&p, Request::Getdents64 { fd, len });
        assert_eq!(r, Err(Errno::ENOTDIR));
    }
    let big = vec![7u8; 3 * MAX_IO];
    sys::pwrite(&p, fd, &big, 0).unwrap();
    match sys::dispatch(
        &p,
        Request::Read {
            fd,
            len: usize::MAX,
        },
    ) {
        Ok(Response::Bytes(b)) => assert_eq!(b.len(), MAX_IO),
        other => panic!("{other:?}"),
    }
    // Too many buffers for readv/writev.
    let mut bufs: Vec<&mut [u8]> = Vec::new();
    let mut store = vec![[0u8; 1]; 1025];
    for b in store.iter_mut() {
        bufs.push(&mut b[..]);
    }
    assert_eq!(sys::readv(&p, fd, &mut bufs), Err(Errno::EINVAL));
    let many: Vec<&[u8]> = vec![&b"x"[..]; 1025];
    assert_eq!(sys::writev(&p, fd, &many), Err(Errno::EINVAL));
    assert_eq!(
        sys::poll(&p, &mut vec![PollFd::default(); 65537], 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(sys::setgroups(&p, &vec![1; 65537]), Err(Errno::EINVAL));
}

#[test]
fn bad_whence_is_einval() {
    let (_k, p) = boot();
    put(&p, b"/f", b"abc");
    let fd = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    for whence in [-1, 5, 100, i32::MAX, i32::MIN] {
        assert_eq!(
            sys::lseek(&p, fd, 0, whence),
            Err(Errno::EINVAL),
            "{whence}"
        );
    }
    // SEEK_DATA and SEEK_HOLE past the end are ENXIO.
    assert_eq!(sys::lseek(&p, fd, 3, seek::DATA), Err(Errno::ENXIO));
    assert_eq!(sys::lseek(&p, fd, 10, seek::HOLE), Err(Errno::ENXIO));
    assert_eq!(sys::lseek(&p, fd, 1, seek::DATA), Ok(1));
}

#[test]
fn bad_fcntl_commands_and_arguments() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    let fd = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    for cmd in [-1, 4096, 9999, i32::MAX, i32::MIN] {
        assert_eq!(sys::fcntl(&p, fd, cmd, 0), Err(Errno::EINVAL), "cmd {cmd}");
    }
    // Garbage in F_SETFD and F_SETFL arguments changes only what it may.
    sys::fcntl(&p, fd, f::SETFD, -1).unwrap();
    assert_eq!(sys::fcntl(&p, fd, f::GETFD, 0), Ok(f::FD_CLOEXEC as i64));
    sys::fcntl(&p, fd, f::SETFL, -1).unwrap();
    let fl = sys::fcntl(&p, fd, f::GETFL, 0).unwrap() as i32;
    assert_eq!(fl & o::ACCMODE, o::RDONLY);
    assert_eq!(fl & (o::CREAT | o::TRUNC | o::EXCL | o::DIRECTORY), 0);
    assert_eq!(fl & (o::APPEND | o::NONBLOCK), o::APPEND | o::NONBLOCK);
}

#[test]
fn other_odd_arguments() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    let e = Some(Errno::EINVAL);
    assert_eq!(sys::setuid(&p, u32::MAX).err(), e);
    assert_eq!(sys::setgid(&p, u32::MAX).err(), e);
    let bad = Some([
        TimeArg {
            sec: i64::MIN,
            nsec: -5,
        },
        TimeArg::NOW,
    ]);
    assert_eq!(sys::utimensat(&p, at::FDCWD, b"/f", bad, 0).err(), e);
    let ok = Some([
        TimeArg {
            sec: i64::MIN,
            nsec: 0,
        },
        TimeArg {
            sec: i64::MAX,
            nsec: 999_999_999,
        },
    ]);
    assert_eq!(sys::utimensat(&p, at::FDCWD, b"/f", ok, 0), Ok(()));
    assert_eq!(sys::sysctl_get(&p, ""), Err(Errno::ENOENT));
    assert_eq!(
        sys::sysctl_get(&p, &"x".repeat(100_000)),
        Err(Errno::ENOENT)
    );
    assert_eq!(sys::sethostname(&p, b"\xff\xfe").err(), e);
    assert_eq!(
        sys::mount(&p, b"", b"/", b"\xff", 0, b""),
        Err(Errno::ENODEV)
    );
    sys::mkdir(&p, b"/m", 0o755).unwrap();
    for data in [
        &b"size=99999999999999999999g"[..],
        b"mode=9",
        b"uid=-1",
        b"size",
        b"=,=,",
    ] {
        assert_eq!(
            sys::mount(&p, b"", b"/m", b"tmpfs", 0, data).err(),
            e,
            "{data:?}"
        );
    }
    // umask keeps only permission bits.
    assert_eq!(sys::umask(&p, u32::MAX), Ok(0o022));
    assert_eq!(sys::umask(&p, 0o022), Ok(0o777));
    // An invalid descriptor in a poll set is POLLNVAL, not an error.
    let mut fds = [PollFd {
        fd: i32::MAX,
        events: -1,
        revents: 0,
    }];
    assert_eq!(sys::poll(&p, &mut fds, 0), Ok(1));
    assert_eq!(fds[0].revents, poll::NVAL);
}

#[test]
fn dispatch_of_odd_requests_gives_errors() {
    let (_k, p) = boot();
    put(&p, b"/f", b"data");
    let e = |r: Result<Response, Errno>| r.err();
    let cases: Vec<(Request, Errno)> = vec![
        (
            Request::Openat {
                dirfd: i32::MIN,
                path: b"rel".to_vec(),
                flags: 0,
                mode: 0,
            },
            Errno::EBADF,
        ),
        (
            Request::Openat {
                dirfd: at::FDCWD,
                path: vec![0; 5],
                flags: 0,
                mode: 0,
            },
            Errno::EINVAL,
        ),
        (
            Request::Openat {
                dirfd: at::FDCWD,
                path: b"/f".to_vec(),
                flags: -1,
                mode: u32::MAX,
            },
            Errno::EINVAL,
        ),
        (Request::Close { fd: -1 }, Errno::EBADF),
        (
            Request::Read {
                fd: i32::MAX,
                len: usize::MAX,
            },
            Errno::EBADF,
        ),
        // Linux checks the offset before the descriptor.
        (
            Request::Pread {
                fd: -1,
                len: 0,
                offset: i64::MIN,
            },
            Errno::EINVAL,
        ),
        (
            Request::Pwrite {
                fd: -1,
                data: vec![],
                offset: -1,
            },
            Errno::EINVAL,
        ),
        (
            Request::Lseek {
                fd: 0,
                offset: 0,
                whence: 0,
            },
            Errno::EBADF,
        ),
        (
            Request::Fstatat {
                dirfd: 77,
                path: vec![],
                flags: at::EMPTY_PATH,
            },
            Errno::EBADF,
        ),
        (
            Request::Mkdirat {
                dirfd: at::FDCWD,
                path: b"/".to_vec(),
                mode: u32::MAX,
            },
            Errno::EEXIST,
        ),
        (
            Request::Unlinkat {
                dirfd: at::FDCWD,
                path: b"/".to_vec(),
                flags: at::REMOVEDIR,
            },
            Errno::EBUSY,
        ),
        (
            Request::Renameat {
                olddirfd: -5,
                old: b"a".to_vec(),
                newdirfd: -5,
                new: b"b".to_vec(),
            },
            Errno::EBADF,
        ),
        (
            Request::Linkat {
                olddirfd: at::FDCWD,
                old: b"/f".to_vec(),
                newdirfd: at::FDCWD,
                new: b"/".to_vec(),
                flags: 0,
            },
            Errno::EEXIST,
        ),
        (
            Request::Symlinkat {
                target: vec![],
                dirfd: at::FDCWD,
                path: b"/l".to_vec(),
            },
            Errno::ENOENT,
        ),
        (
            Request::Readlinkat {
                dirfd: at::FDCWD,
                path: b"/f".to_vec(),
            },
            Errno::EINVAL,
        ),
        (
            Request::Mknodat {
                dirfd: at::FDCWD,
                path: b"/n".to_vec(),
                mode: 0o170000,
                dev: u64::MAX,
            },
            Errno::EINVAL,
        ),
        (Request::Getdents64 { fd: -1, len: 0 }, Errno::EBADF),
        (
            Request::Fchmodat {
                dirfd: at::FDCWD,
                path: b"/f".to_vec(),
                mode: 0,
                flags: -1,
            },
            Errno::EINVAL,
        ),
        (
            Request::Utimensat {
                dirfd: at::FDCWD,
                path: b"/f".to_vec(),
                times: Some(
                    [TimeArg {
                        sec: 0,
                        nsec: i64::MAX,
                    }; 2],
                ),
                flags: 0,
            },
            Errno::EINVAL,
        ),
        (
            Request::Truncate {
                path: b"/f".to_vec(),
                len: i64::MIN,
            },
            Errno::EINVAL,
        ),
        (
            Request::Faccessat {
                dirfd: at::FDCWD,
                path: b"/f".to_vec(),
                mode: i32::MIN,
                flags: 0,
            },
            Errno::EINVAL,
        ),
        (
            Request::Chdir {
                path: b"/f".to_vec(),
            },
            Errno::ENOTDIR,
        ),
        (
            Request::Statvfs {
                path: vec![b'/'; 5000],
            },
            Errno::ENAMETOOLONG,
        ),
        (
            Request::Mount {
                source: vec![],
                target: b"/f".to_vec(),
                fstype: b"tmpfs".to_vec(),
                flags: u64::MAX,
                data: vec![],
            },
            Errno::ENOTDIR,
        ),
        (
            Request::Umount2 {
                target: b"/".to_vec(),
                flags: -1,
            },
            Errno::EINVAL,
        ),
        (Request::Setuid { uid: u32::MAX }, Errno::EINVAL),
        (Request::Pipe2 { flags: -1 }, Errno::EINVAL),
        (Request::Dup2 { old: -1, new: -1 }, Errno::EBADF),
        (
            Request::Dup3 {
                old: 0,
                new: 0,
                flags: 0,
            },
            Errno::EINVAL,
        ),
        (
            Request::Fcntl {
                fd: i32::MIN,
                cmd: i32::MIN,
                arg: i64::MIN,
            },
            Errno::EBADF,
        ),
        (
            Request::SysctlGet {
                name: "no.such.node".into(),
            },
            Errno::ENOENT,
        ),
        (
            Request::SysctlSet {
                name: "kern.maxfiles".into(),
                value: SysctlValue::Int(i64::MIN),
            },
            Errno::EPERM,
        ),
        (
            Request::SysctlSet {
                name: "kern.hostname".into(),
                value: SysctlValue::Int(1),
            },
            Errno::EINVAL,
        ),
    ];
    for (req, want) in cases {
        let shown = format!("{req:?}");
        assert_eq!(e(sys::dispatch(&p, req)), Some(want), "{shown}");
    }
    // The kernel is unharmed.
    assert_eq!(get(&p, b"/f").unwrap(), b"data");
    assert_eq!(
        sys::dispatch(
            &p,
            Request::Poll {
                fds: vec![],
                timeout_ms: 0
            }
        ),
        Ok(Response::Poll { n: 0, fds: vec![] })
    );
}

// ----- random requests ----------------------------------------------------

fn any_fd() -> impl Strategy<Value = i32> {
    prop_oneof![
        4 => 0..8i32,
        1 => Just(at::FDCWD),
        1 => Just(-1),
        1 => any::<i32>(),
    ]
}

fn any_path() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::sample::select(vec![
            &b"/"[..], b"/a", b"/a/b", b"a", b"b/", b".", b"..", b"/mnt", b"/a/../b",
            b"", b"//a//", b"/f", b"l",
        ])
        .prop_map(|p| p.to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..12),
        1 => proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'/'), Just(0u8), Just(b'.')], 0..8),
        1 => (200usize..300).prop_map(|n| [&b"/"[..], &vec![b'n'; n]].concat()),
        1 => (4090usize..4100).prop_map(|n| vec![b'/'; n]),
    ]
}

fn any_flags() -> impl Strategy<Value = i32> {
    prop_oneof![
        3 => (0..3i32, any::<u16>()).prop_map(|(acc, bits)| acc | ((bits as i32) << 6) & o::KNOWN),
        1 => any::<i32>(),
    ]
}

fn any_len() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0..5000usize, 1 => any::<usize>()]
}

fn any_off() -> impl Strategy<Value = i64> {
    prop_oneof![4 => 0..100_000i64, 1 => any::<i64>()]
}

fn any_time() -> impl Strategy<Value = Option<[TimeArg; 2]>> {
    let t = (
        any::<i64>(),
        prop_oneof![
            Just(TimeArg::NOW.nsec),
            Just(TimeArg::OMIT.nsec),
            any::<i64>(),
            0..1_000_000_000i64
        ],
    )
        .prop_map(|(sec, nsec)| TimeArg { sec, nsec });
    proptest::option::of(proptest::array::uniform2(t))
}

fn any_data() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..64)
}

fn any_sysctl() -> impl Strategy<Value = (String, SysctlValue)> {
    (
        proptest::sample::select(vec![
            "kern.hostname",
            "kern.ostype",
            "kern.maxfiles",
            "",
            "nope",
        ]),
        prop_oneof![
            any::<i64>().prop_map(SysctlValue::Int),
            "[a-z]{0,70}".prop_map(SysctlValue::Str)
        ],
    )
        .prop_map(|(n, v)| (n.to_string(), v))
}

/// Random requests. None of them should block: pipes and fifos are
/// always non-blocking (`openat`, `pipe2` and `F_SETFL` always carry
/// `O_NONBLOCK`) and `poll` waits at most a millisecond. [`HangGuard`]
/// turns a call that blocks anyway into a failure.
fn any_request() -> impl Strategy<Value = Request> {
    let files = prop_oneof![
        (any_fd(), any_path(), any_flags(), any::<u32>()).prop_map(|(dirfd, path, flags, mode)| {
            Request::Openat {
                dirfd,
                path,
                flags: flags | o::NONBLOCK,
                mode,
            }
        }),
        any_fd().prop_map(|fd| Request::Close { fd }),
        (any_fd(), any_len()).prop_map(|(fd, len)| Request::Read { fd, len }),
        (any_fd(), any_data()).prop_map(|(fd, data)| Request::Write { fd, data }),
        (any_fd(), any_len(), any_off()).prop_map(|(fd, len, offset)| Request::Pread {
            fd,
            len,
            offset
        }),
        (any_fd(), any_data(), any_off()).prop_map(|(fd, data, offset)| Request::Pwrite {
            fd,
            data,
            offset
        }),
        (any_fd(), any_off(), -1..6i32).prop_map(|(fd, offset, whence)| Request::Lseek {
            fd,
            offset,
            whence
        }),
        any_fd().prop_map(|fd| Request::Fstat { fd }),
        (any_fd(), any_path(), any::<i32>()).prop_map(|(dirfd, path, flags)| Request::Fstatat {
            dirfd,
            path,
            flags
        }),
        (any_fd(), any_len()).prop_map(|(fd, len)| Request::Getdents64 { fd, len }),
    ];
    let names = prop_oneof![
        (any_fd(), any_path(), any::<u32>()).prop_map(|(dirfd, path, mode)| Request::Mkdirat {
            dirfd,
            path,
            mode
        }),
        (any_fd(), any_path(), any::<i32>()).prop_map(|(dirfd, path, flags)| Request::Unlinkat {
            dirfd,
            path,
            flags
        }),
        (any_fd(), any_path(), any_fd(), any_path()).prop_map(|(olddirfd, old, newdirfd, new)| {
            Request::Renameat {
                olddirfd,
                old,
                newdirfd,
                new,
            }
        }),
        (any_fd(), any_path(), any_fd(), any_path(), any::<i32>()).prop_map(
            |(olddirfd, old, newdirfd, new, flags)| Request::Linkat {
                olddirfd,
                old,
                newdirfd,
                new,
                flags
            }
        ),
        (any_path(), any_fd(), any_path()).prop_map(|(target, dirfd, path)| Request::Symlinkat {
            target,
            dirfd,
            path
        }),
        (any_fd(), any_path()).prop_map(|(dirfd, path)| Request::Readlinkat { dirfd, path }),
        (any_fd(), any_path(), any::<u32>(), any::<u64>()).prop_map(|(dirfd, path, mode, dev)| {
            Request::Mknodat {
                dirfd,
                path,
                mode,
                dev,
            }
        }),
        (any_path(), any_off()).prop_map(|(path, len)| Request::Truncate { path, len }),
        (any_fd(), any_off()).prop_map(|(fd, len)| Request::Ftruncate { fd, len }),
        (any_fd(), any_path(), any::<i32>(), any::<i32>()).prop_map(
            |(dirfd, path, mode, flags)| Request::Faccessat {
                dirfd,
                path,
                mode,
                flags
            }
        ),
    ];
    let attrs = prop_oneof![
        (any_fd(), any::<u32>()).prop_map(|(fd, mode)| Request::Fchmod { fd, mode }),
        (any_fd(), any_path(), any::<u32>(), any::<i32>()).prop_map(
            |(dirfd, path, mode, flags)| Request::Fchmodat {
                dirfd,
                path,
                mode,
                flags
            }
        ),
        (any_fd(), any::<u32>(), any::<u32>()).prop_map(|(fd, uid, gid)| Request::Fchown {
            fd,
            uid,
            gid
        }),
        (
            any_fd(),
            any_path(),
            any::<u32>(),
            any::<u32>(),
            any::<i32>()
        )
            .prop_map(|(dirfd, path, uid, gid, flags)| Request::Fchownat {
                dirfd,
                path,
                uid,
                gid,
                flags
            }),
        (any_fd(), any_path(), any_time(), any::<i32>()).prop_map(|(dirfd, path, times, flags)| {
            Request::Utimensat {
                dirfd,
                path,
                times,
                flags,
            }
        }),
        (any_fd(), any_time()).prop_map(|(fd, times)| Request::Futimens { fd, times }),
        any_fd().prop_map(|fd| Request::Fsync { fd }),
        any_fd().prop_map(|fd| Request::Fdatasync { fd }),
        Just(Request::Sync),
        any::<u32>().prop_map(|mask| Request::Umask { mask }),
    ];
    let dirs = prop_oneof![
        any_path().prop_map(|path| Request::Chdir { path }),
        any_fd().prop_map(|fd| Request::Fchdir { fd }),
        Just(Request::Getcwd),
        any_path().prop_map(|path| Request::Chroot { path }),
        any_path().prop_map(|path| Request::Statvfs { path }),
        any_fd().prop_map(|fd| Request::Fstatvfs { fd }),
        (
            any_path(),
            any_path(),
            prop_oneof![Just(b"tmpfs".to_vec()), any_data()],
            any::<u64>(),
            any_data()
        )
            .prop_map(|(source, target, fstype, flags, data)| Request::Mount {
                source,
                target,
                fstype,
                flags,
                data
            }),
        (any_path(), any::<i32>()).prop_map(|(target, flags)| Request::Umount2 { target, flags }),
        Just(Request::Mounts),
        Just(Request::Uname),
    ];
    let ids = prop_oneof![
        Just(Request::Getpid),
        Just(Request::Getppid),
        Just(Request::Getuid),
        Just(Request::Geteuid),
        Just(Request::Getgid),
        Just(Request::Getegid),
        Just(Request::Getgroups),
        prop_oneof![Just(0u32), Just(1000), any::<u32>()].prop_map(|uid| Request::Setuid { uid }),
        prop_oneof![Just(0u32), Just(1000), any::<u32>()].prop_map(|gid| Request::Setgid { gid }),
        proptest::collection::vec(any::<u32>(), 0..5)
            .prop_map(|groups| Request::Setgroups { groups }),
    ];
    let descriptors = prop_oneof![
        any::<i32>().prop_map(|flags| Request::Pipe2 {
            flags: flags | o::NONBLOCK
        }),
        (0..3i32).prop_map(|f| Request::Pipe2 {
            flags: [0, o::CLOEXEC, o::DIRECT][f as usize] | o::NONBLOCK
        }),
        any_fd().prop_map(|fd| Request::Dup { fd }),
        (any_fd(), any_fd()).prop_map(|(old, new)| Request::Dup2 { old, new }),
        (any_fd(), any_fd(), any::<i32>()).prop_map(|(old, new, flags)| Request::Dup3 {
            old,
            new,
            flags
        }),
        (
            any_fd(),
            prop_oneof![0..5i32, Just(f::DUPFD_CLOEXEC), any::<i32>()],
            any::<i64>()
        )
            .prop_map(|(fd, cmd, arg)| {
                let arg = if cmd == f::SETFL {
                    arg | o::NONBLOCK as i64
                } else {
                    arg
                };
                Request::Fcntl { fd, cmd, arg }
            }),
        (
            proptest::collection::vec(
                (any_fd(), any::<i16>()).prop_map(|(fd, events)| PollFd {
                    fd,
                    events,
                    revents: 0
                }),
                0..6,
            ),
            0..2i32,
        )
            .prop_map(|(fds, timeout_ms)| Request::Poll { fds, timeout_ms }),
        any_sysctl().prop_map(|(name, _)| Request::SysctlGet { name }),
        any_sysctl().prop_map(|(name, value)| Request::SysctlSet { name, value }),
        "[a-z.]{0,12}".prop_map(|prefix| Request::SysctlList { prefix }),
    ];
    prop_oneof![
        3 => files,
        2 => names,
        1 => attrs,
        1 => dirs,
        1 => ids,
        2 => descriptors,
    ]
}

/// Checks the shape of a successful response.
fn check_response(req: &Request, resp: &Response) {
    match (req, resp) {
        (Request::Read { len, .. }, Response::Bytes(b))
        | (Request::Pread { len, .. }, Response::Bytes(b))
        | (Request::Getdents64 { len, .. }, Response::Bytes(b)) => {
            assert!(b.len() <= (*len).min(MAX_IO), "{} bytes for {len}", b.len());
        }
        (Request::Write { data, .. }, Response::Size(n))
        | (Request::Pwrite { data, .. }, Response::Size(n)) => {
            assert!(*n as usize <= data.len());
        }
        (Request::Poll { fds, .. }, Response::Poll { n, fds: out }) => {
            assert_eq!(fds.len(), out.len());
            assert_eq!(*n, out.iter().filter(|f| f.revents != 0).count());
        }
        (Request::Openat { .. } | Request::Dup { .. }, Response::Int(fd)) => {
            assert!((0..65536).contains(fd));
        }
        _ => {}
    }
}

/// Halts a kernel whose test case takes too long, so that a blocked call
/// returns (with `ESHUTDOWN`) and the case fails instead of hanging.
struct HangGuard {
    done: Arc<(Mutex<bool>, Condvar)>,
    fired: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HangGuard {
    fn new(k: &rump::Kernel, limit: Duration) -> HangGuard {
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let fired = Arc::new(AtomicBool::new(false));
        let (d, f, kernel) = (done.clone(), fired.clone(), k.raw().clone());
        let thread = std::thread::spawn(move || {
            let (lock, cv) = &*d;
            let guard = lock.lock().unwrap();
            let (guard, _) = cv.wait_timeout_while(guard, limit, |done| !*done).unwrap();
            if !*guard {
                f.store(true, Ordering::SeqCst);
                kernel.halt();
            }
        });
        HangGuard {
            done,
            fired,
            thread: Some(thread),
        }
    }

    /// Whether the guard had to halt the kernel.
    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for HangGuard {
    fn drop(&mut self) {
        *self.done.0.lock().unwrap() = true;
        self.done.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_requests_never_panic(reqs in proptest::collection::vec(any_request(), 1..40)) {
        let (k, p) = boot();
        let guard = HangGuard::new(&k, Duration::from_secs(20));
        put(&p, b"/f", b"file");
        sys::mkdir(&p, b"/a", 0o755).unwrap();
        sys::mkdir(&p, b"/mnt", 0o755).unwrap();
        sys::symlink(&p, b"/a", b"/l").unwrap();
        let _ = sys::open(&p, b"/f", o::RDWR, 0);
        let _ = sys::open(&p, b"/a", o::RDONLY, 0);
        let _ = sys::pipe2(&p, o::NONBLOCK);
        for req in reqs {
            let shown = format!("{req:?}");
            let r = sys::dispatch(&p, req.clone());
            prop_assert!(!guard.fired(), "blocked: {shown}");
            match r {
                Ok(resp) => check_response(&req, &resp),
                Err(e) => prop_assert!(e.raw() > 0 && e.name().is_some(), "{shown}: {e:?}"),
            }
        }
        // The kernel still answers.
        prop_assert!(sys::dispatch(&p, Request::Getpid).is_ok());
        prop_assert!(sys::dispatch(&p, Request::Mounts).is_ok());
    }
}
