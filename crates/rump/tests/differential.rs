//! Differential test against the host kernel.
//!
//! Proptest generates sequences of file operations over a small alphabet
//! of names (so that names collide, files turn into directories and links
//! point at each other). Each sequence runs twice: on a fresh rump kernel,
//! in a fresh directory `/w`, and on the host through libc, in a fresh
//! `tempfile::tempdir()`. Every operation's result, including the errno of
//! a failure, must be the same on both sides.
//!
//! Deliberate differences, kept out of the generated operations or
//! normalised before comparing:
//!
//! - `F_GETFL` on the host shows `O_LARGEFILE` (Linux adds it to every
//!   open on 64-bit); it is masked out.
//! - Unknown `open` flags and an access mode of `O_ACCMODE` are `EINVAL`
//!   for us (Linux ignores unknown bits and gives `O_ACCMODE` a special
//!   meaning); they are not generated. `bad_input.rs` covers them.
//! - Directory sizes and `st_blocks` depend on the host file system (the
//!   temporary directory is usually on ext4, ours is tmpfs): not compared.
//!   Inode and device numbers, owners and times are not compared either.
//! - `lseek` on directories, `SEEK_DATA`/`SEEK_HOLE` (we treat a whole
//!   file as data, which POSIX allows) and offsets near 2^63 (limited by
//!   the host file system's maximum file size) depend on the file system:
//!   seeks on directories are skipped, whence is `SEEK_SET`, `SEEK_CUR`,
//!   `SEEK_END` or an invalid value, and offsets stay small.
//! - `F_SETFL` with `O_ASYNC` or `O_DIRECT` depends on the file system:
//!   only `O_APPEND` and `O_NONBLOCK` are set.
//! - Descriptors are compared by identity, not number: the operation that
//!   opened a descriptor names it, and later operations refer to the
//!   descriptors still open by position.
//! - Each side acts with the same identity: the test's own (root on
//!   both when the test runs as root, which bypasses permission checks on
//!   both) and, in a second property, user and group 65534 (the host
//!   thread drops to them with `setfsuid`/`setfsgid`), so that permission
//!   checks are compared too.
//! - Paths never contain `..` and symlink targets are relative without
//!   `..`, so nothing the host side does can leave its temporary directory.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rump::sys::{self, consts::f, consts::o};
use rump::{Cred, Errno, Kernel, Process};

/// Paths the operations use, relative to the test directory.
const PATHS: &[&str] = &[
    "a", "b", "c", "d", "d/e", "d/f", "a/x", "d/e/g", "d/", "a/", ".",
];
/// Symlink targets, relative to the link's directory.
const TARGETS: &[&str] = &["a", "b", "d", "d/e", "e", "nowhere", ".", "a/x", "d/"];
/// Permission bits for open, mkdir and chmod.
const MODES: &[u32] = &[
    0o644, 0o600, 0o755, 0o000, 0o777, 0o444, 0o4755, 0o2755, 0o1777,
];
const LENS: &[usize] = &[0, 1, 5, 100, 4095, 4096, 4097, 10000];
const OFFSETS: &[i64] = &[-1, 0, 1, 3, 4095, 4096, 5000, 65536, 1 << 20];
const SIZES: &[i64] = &[-1, 0, 1, 100, 4096, 5000, 1 << 20];
/// Optional open flags, each with the chance it is set.
const OPEN_FLAGS: &[(i32, f64)] = &[
    (o::CREAT, 0.6),
    (o::EXCL, 0.15),
    (o::TRUNC, 0.25),
    (o::APPEND, 0.25),
    (o::DIRECTORY, 0.1),
    (o::NOFOLLOW, 0.15),
    (o::NONBLOCK, 0.1),
    (o::CLOEXEC, 0.2),
];
const SETFL: &[i32] = &[0, o::APPEND, o::NONBLOCK, o::APPEND | o::NONBLOCK];

#[derive(Clone, Debug)]
enum Op {
    Open {
        path: usize,
        flags: i32,
        mode: u32,
    },
    Close {
        h: usize,
    },
    Dup {
        h: usize,
    },
    Read {
        h: usize,
        len: usize,
    },
    Write {
        h: usize,
        len: usize,
        byte: u8,
    },
    Pread {
        h: usize,
        len: usize,
        off: i64,
    },
    Pwrite {
        h: usize,
        len: usize,
        byte: u8,
        off: i64,
    },
    Lseek {
        h: usize,
        off: i64,
        whence: i32,
    },
    Ftruncate {
        h: usize,
        len: i64,
    },
    Fstat {
        h: usize,
    },
    GetFl {
        h: usize,
    },
    SetFl {
        h: usize,
        flags: i32,
    },
    Mkdir {
        path: usize,
        mode: u32,
    },
    Rmdir {
        path: usize,
    },
    Unlink {
        path: usize,
    },
    Rename {
        from: usize,
        to: usize,
    },
    Link {
        from: usize,
        to: usize,
    },
    Symlink {
        target: usize,
        path: usize,
    },
    Readlink {
        path: usize,
    },
    Truncate {
        path: usize,
        len: i64,
    },
    Stat {
        path: usize,
    },
    Lstat {
        path: usize,
    },
    Chmod {
        path: usize,
        mode: u32,
    },
    List {
        path: usize,
    },
}

/// The part of `stat` that must agree.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CmpStat {
    kind: u32,
    perm: u32,
    nlink: u64,
    /// `None` for directories (their size is file-system specific).
    size: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Unit,
    /// A new descriptor (numbers are not compared).
    Fd,
    Count(u64),
    Bytes(Vec<u8>),
    Stat(CmpStat),
    Names(Vec<Vec<u8>>),
    Flags(i32),
    /// No open descriptor to act on, or not comparable (see the top).
    Skipped,
}

/// A result: the value or the errno.
type Res = Result<Out, i32>;

fn idx<T>(choices: &'static [T]) -> impl Strategy<Value = usize> {
    0..choices.len()
}

fn pick<T: Copy + std::fmt::Debug + 'static>(choices: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(choices)
}

fn open_flags() -> impl Strategy<Value = i32> {
    let bits: Vec<_> = OPEN_FLAGS
        .iter()
        .map(|&(flag, chance)| {
            proptest::bool::weighted(chance).prop_map(move |on| if on { flag } else { 0 })
        })
        .collect();
    (0..3i32, bits).prop_map(|(acc, bits)| bits.into_iter().fold(acc, |f, b| f | b))
}

/// A path, the short ones more often (they exist more often).
fn path() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0..5usize, 1 => idx(PATHS)]
}

fn op() -> impl Strategy<Value = Op> {
    let h = || 0..4usize;
    prop_oneof![
        8 => (path(), open_flags(), pick(MODES))
            .prop_map(|(path, flags, mode)| Op::Open { path, flags, mode }),
        2 => h().prop_map(|h| Op::Close { h }),
        1 => h().prop_map(|h| Op::Dup { h }),
        2 => (h(), pick(LENS)).prop_map(|(h, len)| Op::Read { h, len }),
        3 => (h(), pick(LENS), any::<u8>()).prop_map(|(h, len, byte)| Op::Write { h, len, byte }),
        2 => (h(), pick(LENS), pick(OFFSETS)).prop_map(|(h, len, off)| Op::Pread { h, len, off }),
        2 => (h(), pick(LENS), any::<u8>(), pick(OFFSETS))
            .prop_map(|(h, len, byte, off)| Op::Pwrite { h, len, byte, off }),
        2 => (h(), pick(OFFSETS), pick(&[0, 1, 2, 7][..]))
            .prop_map(|(h, off, whence)| Op::Lseek { h, off, whence }),
        1 => (h(), pick(SIZES)).prop_map(|(h, len)| Op::Ftruncate { h, len }),
        1 => h().prop_map(|h| Op::Fstat { h }),
        1 => h().prop_map(|h| Op::GetFl { h }),
        1 => (h(), pick(SETFL)).prop_map(|(h, flags)| Op::SetFl { h, flags }),
        3 => (path(), pick(MODES)).prop_map(|(path, mode)| Op::Mkdir { path, mode }),
        2 => path().prop_map(|path| Op::Rmdir { path }),
        2 => path().prop_map(|path| Op::Unlink { path }),
        2 => (path(), path()).prop_map(|(from, to)| Op::Rename { from, to }),
        1 => (path(), path()).prop_map(|(from, to)| Op::Link { from, to }),
        2 => (idx(TARGETS), path()).prop_map(|(target, path)| Op::Symlink { target, path }),
        1 => path().prop_map(|path| Op::Readlink { path }),
        1 => (path(), pick(SIZES)).prop_map(|(path, len)| Op::Truncate { path, len }),
        2 => path().prop_map(|path| Op::Stat { path }),
        2 => path().prop_map(|path| Op::Lstat { path }),
        1 => (path(), pick(MODES)).prop_map(|(path, mode)| Op::Chmod { path, mode }),
        2 => path().prop_map(|path| Op::List { path }),
    ]
}

/// Both sides of one run.
struct Run {
    host: Host,
    rump: Rump,
    /// Open descriptors: (host fd, rump fd), in the order they opened.
    handles: Vec<(i32, i32)>,
}

impl Run {
    /// Both sides acting as `ids` (the host side already does: see
    /// [`host_ids`] and [`drop_privilege`]).
    fn new(ids: (u32, u32)) -> Run {
        Run {
            host: Host::new(),
            rump: Rump::new(ids),
            handles: Vec::new(),
        }
    }

    /// Runs `op` on both sides.
    fn step(&mut self, op: &Op) -> (Res, Res) {
        let on_fd = |h: usize| -> Option<(usize, (i32, i32))> {
            let i = h.checked_rem(self.handles.len())?;
            Some((i, self.handles[i]))
        };
        match *op {
            Op::Open { path, flags, mode } => {
                let p = PATHS[path];
                let r = (
                    self.host.open(p, flags, mode),
                    self.rump.open(p, flags, mode),
                );
                self.keep(r)
            }
            Op::Dup { h } => {
                let Some((_, (hf, rf))) = on_fd(h) else {
                    return skipped();
                };
                let r = (host_fd(host_sys::dup(hf)), rerr(sys::dup(&self.rump.p, rf)));
                self.keep(r)
            }
            Op::Close { h } => {
                let Some((i, (hf, rf))) = on_fd(h) else {
                    return skipped();
                };
                self.handles.remove(i);
                (
                    host_unit(host_sys::close(hf)),
                    rump_unit(sys::close(&self.rump.p, rf)),
                )
            }
            Op::Read { h, len } => {
                let Some((_, (hf, rf))) = on_fd(h) else {
                    return skipped();
                };
                (self.host.read(hf, len, None), self.rump.read(rf, len, None))
            }
            Op::Pread { h, len, off } => {
                let Some((_, (hf, rf))) = on_fd(h) else {
                    return skipped();
                };
                (
                    self.host.read(hf, len, Some(off)),
                    self.rump.read(rf, len, Some(off)),
                )
            }
            Op::Write { h, len, byte } => {
                let Some((_, (hf, rf))) = on_fd(h) else {
                    return skipped();
                };
                let data = vec![byte; len];
                (
                    self.host.write(hf, &data, None),
                    self.rump.write(rf, &data, None),
                )
            }
            Op::Pwrite { h, len, byte, off } => {
                let Some((_, (hf, rf))) = on_fd(h) else {
                    return skipped();
                };
                let data = vec![byte; len];
                (
                    self.host.write(hf, &data, Some(off)),
                    self.rump.write(rf, &data, Some(off)),
                )
            }
            Op::Lseek { h, off, whence } => {
                let Some((_, (hf, rf))) = on_fd(h) else {
                    return skipped();
                };
                if host_sys::is_dir_fd(hf) {
                    return skipped();
                }
                (
                    host_count(host_sys::lseek(hf, off, whence)),
                    rerr(sys::lseek(&self.rump.p, rf, off, whence)).map(Out::Count),
                )
            }
            Op::Ftruncate { h, len } => {
                let Some((_, (hf, rf))) = on_fd(h) else {
                    return skipped();
                };
                (
                    host_unit(host_sys::ftruncate(hf, len)),
                    rump_unit(sys::ftruncate(&self.rump.p, rf, len)),
                )
            }
            Op::Fstat { h } => {
                let Some((_, (hf, rf))) = on_fd(h) else {
                    return skipped();
                };
                (
                    host_sys::fstat(hf).map(Out::Stat),
                    rerr(sys::fstat(&self.rump.p, rf))
                        .map(|st| Out::Stat(cmp_stat(st.mode, st.nlink, st.size))),
                )
            }
            Op::GetFl { h } => {
                let Some((_, (hf, rf))) = on_fd(h) else {
                    return skipped();
                };
                (
                    host_sys::getfl(hf).map(|f| Out::Flags(f & !o::LARGEFILE)),
                    rerr(sys::fcntl(&self.rump.p, rf, f::GETFL, 0)).map(|f| Out::Flags(f as i32)),
                )
            }
            Op::SetFl { h, flags } => {
                let Some((_, (hf, rf))) = on_fd(h) else {
                    return skipped();
                };
                (
                    host_unit(host_sys::setfl(hf, flags)),
                    rump_unit(sys::fcntl(&self.rump.p, rf, f::SETFL, flags as i64).map(drop)),
                )
            }
            Op::Mkdir { path, mode } => (
                self.host.mkdir(PATHS[path], mode),
                rump_unit(sys::mkdir(&self.rump.p, PATHS[path].as_bytes(), mode)),
            ),
            Op::Rmdir { path } => (
                self.host.unlink(PATHS[path], libc::AT_REMOVEDIR),
                rump_unit(sys::rmdir(&self.rump.p, PATHS[path].as_bytes())),
            ),
            Op::Unlink { path } => (
                self.host.unlink(PATHS[path], 0),
                rump_unit(sys::unlink(&self.rump.p, PATHS[path].as_bytes())),
            ),
            Op::Rename { from, to } => (
                self.host.rename(PATHS[from], PATHS[to]),
                rump_unit(sys::rename(
                    &self.rump.p,
                    PATHS[from].as_bytes(),
                    PATHS[to].as_bytes(),
                )),
            ),
            Op::Link { from, to } => (
                self.host.link(PATHS[from], PATHS[to]),
                rump_unit(sys::link(
                    &self.rump.p,
                    PATHS[from].as_bytes(),
                    PATHS[to].as_bytes(),
                )),
            ),
            Op::Symlink { target, path } => (
                self.host.symlink(TARGETS[target], PATHS[path]),
                rump_unit(sys::symlink(
                    &self.rump.p,
                    TARGETS[target].as_bytes(),
                    PATHS[path].as_bytes(),
                )),
            ),
            Op::Readlink { path } => (
                self.host.readlink(PATHS[path]),
                rerr(sys::readlink(&self.rump.p, PATHS[path].as_bytes())).map(Out::Bytes),
            ),
            Op::Truncate { path, len } => (
                self.host.truncate(PATHS[path], len),
                rump_unit(sys::truncate(&self.rump.p, PATHS[path].as_bytes(), len)),
            ),
            Op::Stat { path } => (
                self.host.stat(PATHS[path], 0),
                self.rump.stat(PATHS[path], true),
            ),
            Op::Lstat { path } => (
                self.host.stat(PATHS[path], libc::AT_SYMLINK_NOFOLLOW),
                self.rump.stat(PATHS[path], false),
            ),
            Op::Chmod { path, mode } => (
                self.host.chmod(PATHS[path], mode),
                rump_unit(sys::chmod(&self.rump.p, PATHS[path].as_bytes(), mode)),
            ),
            Op::List { path } => (
                self.host.list(PATHS[path]),
                rerr(common::names(&self.rump.p, PATHS[path].as_bytes())).map(Out::Names),
            ),
        }
    }

    /// Records a descriptor both sides opened; closes a descriptor only
    /// one side opened (the run fails on that step anyway).
    fn keep(&mut self, r: (Result<i32, i32>, Result<i32, i32>)) -> (Res, Res) {
        match r {
            (Ok(hf), Ok(rf)) => self.handles.push((hf, rf)),
            (Ok(hf), Err(_)) => {
                let _ = host_sys::close(hf);
            }
            (Err(_), Ok(rf)) => {
                let _ = sys::close(&self.rump.p, rf);
            }
            (Err(_), Err(_)) => {}
        }
        (r.0.map(|_| Out::Fd), r.1.map(|_| Out::Fd))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        for (hf, _) in self.handles.drain(..) {
            let _ = host_sys::close(hf);
        }
    }
}

fn skipped() -> (Res, Res) {
    (Ok(Out::Skipped), Ok(Out::Skipped))
}

fn cmp_stat(mode: u32, nlink: u64, size: u64) -> CmpStat {
    let kind = mode & libc::S_IFMT;
    CmpStat {
        kind,
        perm: mode & 0o7777,
        nlink,
        size: (kind != libc::S_IFDIR).then_some(size),
    }
}

fn rerr<T>(r: Result<T, Errno>) -> Result<T, i32> {
    r.map_err(|e| e.raw())
}

fn rump_unit(r: Result<(), Errno>) -> Res {
    r.map(|()| Out::Unit).map_err(|e| e.raw())
}

fn host_unit(r: Result<i64, i32>) -> Res {
    r.map(|_| Out::Unit)
}

fn host_count(r: Result<i64, i32>) -> Res {
    r.map(|n| Out::Count(n as u64))
}

fn host_fd(r: Result<i64, i32>) -> Result<i32, i32> {
    r.map(|n| n as i32)
}

/// The rump side: a kernel and a process working in `/w`.
struct Rump {
    _k: Kernel,
    p: Process,
}

impl Rump {
    fn new((uid, gid): (u32, u32)) -> Rump {
        let k = Kernel::boot().unwrap();
        let root = k.process().unwrap();
        sys::mkdir(&root, b"/w", 0o755).unwrap();
        sys::chmod(&root, b"/w", 0o755).unwrap();
        sys::chown(&root, b"/w", uid, gid).unwrap();
        let p = if uid == 0 {
            root
        } else {
            k.process_as(Cred::user(uid, gid)).unwrap()
        };
        sys::chdir(&p, b"/w").unwrap();
        sys::umask(&p, host_umask()).unwrap();
        Rump { _k: k, p }
    }

    fn open(&self, path: &str, flags: i32, mode: u32) -> Result<i32, i32> {
        sys::open(&self.p, path.as_bytes(), flags, mode).map_err(|e| e.raw())
    }

    fn read(&self, fd: i32, len: usize, off: Option<i64>) -> Res {
        let mut buf = vec![0u8; len];
        let n = match off {
            None => sys::read(&self.p, fd, &mut buf),
            Some(off) => sys::pread(&self.p, fd, &mut buf, off),
        }
        .map_err(|e| e.raw())?;
        buf.truncate(n);
        Ok(Out::Bytes(buf))
    }

    fn write(&self, fd: i32, data: &[u8], off: Option<i64>) -> Res {
        match off {
            None => sys::write(&self.p, fd, data),
            Some(off) => sys::pwrite(&self.p, fd, data, off),
        }
        .map(|n| Out::Count(n as u64))
        .map_err(|e| e.raw())
    }

    fn stat(&self, path: &str, follow: bool) -> Res {
        let r = if follow {
            sys::stat(&self.p, path.as_bytes())
        } else {
            sys::lstat(&self.p, path.as_bytes())
        };
        r.map(|st| Out::Stat(cmp_stat(st.mode, st.nlink, st.size)))
            .map_err(|e| e.raw())
    }
}

/// The host side: a temporary directory and a descriptor of it.
struct Host {
    dir: tempfile::TempDir,
    dirfd: i32,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let dirfd = host_sys::open_dir(dir.path()).unwrap();
        Host { dir, dirfd }
    }

    fn open(&self, path: &str, flags: i32, mode: u32) -> Result<i32, i32> {
        host_fd(host_sys::openat(self.dirfd, &c(path), flags, mode))
    }

    fn read(&self, fd: i32, len: usize, off: Option<i64>) -> Res {
        let mut buf = vec![0u8; len];
        let n = host_sys::read(fd, &mut buf, off)?;
        buf.truncate(n as usize);
        Ok(Out::Bytes(buf))
    }

    fn write(&self, fd: i32, data: &[u8], off: Option<i64>) -> Res {
        host_count(host_sys::write(fd, data, off))
    }

    fn mkdir(&self, path: &str, mode: u32) -> Res {
        host_unit(host_sys::mkdirat(self.dirfd, &c(path), mode))
    }

    fn unlink(&self, path: &str, flags: i32) -> Res {
        host_unit(host_sys::unlinkat(self.dirfd, &c(path), flags))
    }

    fn rename(&self, from: &str, to: &str) -> Res {
        host_unit(host_sys::renameat(self.dirfd, &c(from), &c(to)))
    }

    fn link(&self, from: &str, to: &str) -> Res {
        host_unit(host_sys::linkat(self.dirfd, &c(from), &c(to)))
    }

    fn symlink(&self, target: &str, path: &str) -> Res {
        host_unit(host_sys::symlinkat(&c(target), self.dirfd, &c(path)))
    }

    fn readlink(&self, path: &str) -> Res {
        host_sys::readlinkat(self.dirfd, &c(path)).map(Out::Bytes)
    }

    fn truncate(&self, path: &str, len: i64) -> Res {
        // There is no truncateat: use the absolute path, which stays
        // inside the temporary directory.
        // (`join` keeps a trailing slash.)
        let abs = self.dir.path().join(path);
        let abs = CString::new(abs.as_os_str().as_bytes()).unwrap();
        host_unit(host_sys::truncate(&abs, len))
    }

    fn stat(&self, path: &str, flags: i32) -> Res {
        host_sys::fstatat(self.dirfd, &c(path), flags).map(Out::Stat)
    }

    fn chmod(&self, path: &str, mode: u32) -> Res {
        host_unit(host_sys::fchmodat(self.dirfd, &c(path), mode))
    }

    fn list(&self, path: &str) -> Res {
        let full: PathBuf = self.dir.path().join(path);
        let rd = std::fs::read_dir(&full).map_err(|e| e.raw_os_error().unwrap())?;
        let mut names = Vec::new();
        for e in rd {
            let e = e.map_err(|e| e.raw_os_error().unwrap())?;
            names.push(e.file_name().as_bytes().to_vec());
        }
        names.sort();
        Ok(Out::Names(names))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = host_sys::close(self.dirfd);
        // Make every directory removable again (matters when the test
        // does not run as root and a run chmod'ed one to 0).
        make_removable(self.dir.path());
    }
}

fn make_removable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_removable(&e.path());
            }
        }
    }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// The test process's umask, read once (reading it means setting it).
fn host_umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(host_sys::read_umask)
}

/// The identity the host side acts as on files.
fn host_ids() -> (u32, u32) {
    host_sys::ids()
}

/// Who the unprivileged runs act as.
const NOBODY: (u32, u32) = (65534, 65534);

/// Makes the calling thread act on files as [`NOBODY`], without the
/// file-system capabilities of root (`setfsuid(2)` is per thread and
/// clears them). Returns false, and changes nothing, unless the test runs
/// as root.
fn drop_privilege() -> bool {
    match host_sys::ids() {
        NOBODY => true,
        (0, 0) => host_sys::set_fs_ids(NOBODY) == NOBODY,
        _ => false,
    }
}

/// Thin wrappers over the host's libc calls that return `Err(errno)` on
/// failure; each unsafe block says why it is sound.
mod host_sys {
    use std::ffi::{CStr, CString};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    use super::{cmp_stat, CmpStat};

    fn check(r: i64) -> Result<i64, i32> {
        if r < 0 {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap())
        } else {
            Ok(r)
        }
    }

    pub fn open_dir(path: &Path) -> Result<i32, i32> {
        let p = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: `p` is a valid NUL-terminated string.
        let fd = unsafe {
            libc::open(
                p.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        check(fd as i64).map(|fd| fd as i32)
    }

    pub fn openat(dirfd: i32, path: &CStr, flags: i32, mode: u32) -> Result<i64, i32> {
        // SAFETY: `path` is NUL-terminated; the mode is passed as the
        // variadic argument open expects.
        check(unsafe { libc::openat(dirfd, path.as_ptr(), flags, mode as libc::c_uint) } as i64)
    }

    pub fn close(fd: i32) -> Result<i64, i32> {
        // SAFETY: closing a descriptor this test opened.
        check(unsafe { libc::close(fd) } as i64)
    }

    pub fn dup(fd: i32) -> Result<i64, i32> {
        // SAFETY: no pointers involved.
        check(unsafe { libc::dup(fd) } as i64)
    }

    pub fn read(fd: i32, buf: &mut [u8], off: Option<i64>) -> Result<i64, i32> {
        let r = match off {
            // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
            None => unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) },
            // SAFETY: as above.
            Some(off) => unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), off) },
        };
        check(r as i64)
    }

    pub fn write(fd: i32, buf: &[u8], off: Option<i64>) -> Result<i64, i32> {
        let r = match off {
            // SAFETY: `buf` is valid for `buf.len()` bytes of reads.
            None => unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) },
            // SAFETY: as above.
            Some(off) => unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), off) },
        };
        check(r as i64)
    }

    pub fn lseek(fd: i32, off: i64, whence: i32) -> Result<i64, i32> {
        // SAFETY: no pointers involved.
        check(unsafe { libc::lseek(fd, off, whence) })
    }

    pub fn ftruncate(fd: i32, len: i64) -> Result<i64, i32> {
        // SAFETY: no pointers involved.
        check(unsafe { libc::ftruncate(fd, len) } as i64)
    }

    pub fn truncate(path: &CStr, len: i64) -> Result<i64, i32> {
        // SAFETY: `path` is NUL-terminated.
        check(unsafe { libc::truncate(path.as_ptr(), len) } as i64)
    }

    pub fn getfl(fd: i32) -> Result<i32, i32> {
        // SAFETY: F_GETFL takes no argument.
        check(unsafe { libc::fcntl(fd, libc::F_GETFL) } as i64).map(|f| f as i32)
    }

    pub fn setfl(fd: i32, flags: i32) -> Result<i64, i32> {
        // SAFETY: F_SETFL takes an int.
        check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } as i64)
    }

    fn stat_result(r: i32, st: &libc::stat) -> Result<CmpStat, i32> {
        check(r as i64)?;
        Ok(cmp_stat(st.st_mode, st.st_nlink, st.st_size as u64))
    }

    pub fn fstat(fd: i32) -> Result<CmpStat, i32> {
        // SAFETY: all-zero is a valid `struct stat`.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is a valid out-pointer.
        let r = unsafe { libc::fstat(fd, &mut st) };
        stat_result(r, &st)
    }

    pub fn is_dir_fd(fd: i32) -> bool {
        // SAFETY: all-zero is a valid `struct stat`.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is a valid out-pointer.
        let r = unsafe { libc::fstat(fd, &mut st) };
        r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR
    }

    pub fn fstatat(dirfd: i32, path: &CStr, flags: i32) -> Result<CmpStat, i32> {
        // SAFETY: all-zero is a valid `struct stat`.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is NUL-terminated, `st` a valid out-pointer.
        let r = unsafe { libc::fstatat(dirfd, path.as_ptr(), &mut st, flags) };
        stat_result(r, &st)
    }

    pub fn mkdirat(dirfd: i32, path: &CStr, mode: u32) -> Result<i64, i32> {
        // SAFETY: `path` is NUL-terminated.
        check(unsafe { libc::mkdirat(dirfd, path.as_ptr(), mode) } as i64)
    }

    pub fn unlinkat(dirfd: i32, path: &CStr, flags: i32) -> Result<i64, i32> {
        // SAFETY: `path` is NUL-terminated.
        check(unsafe { libc::unlinkat(dirfd, path.as_ptr(), flags) } as i64)
    }

    pub fn renameat(dirfd: i32, from: &CStr, to: &CStr) -> Result<i64, i32> {
        // SAFETY: both paths are NUL-terminated.
        check(unsafe { libc::renameat(dirfd, from.as_ptr(), dirfd, to.as_ptr()) } as i64)
    }

    pub fn linkat(dirfd: i32, from: &CStr, to: &CStr) -> Result<i64, i32> {
        // SAFETY: both paths are NUL-terminated.
        check(unsafe { libc::linkat(dirfd, from.as_ptr(), dirfd, to.as_ptr(), 0) } as i64)
    }

    pub fn symlinkat(target: &CStr, dirfd: i32, path: &CStr) -> Result<i64, i32> {
        // SAFETY: both paths are NUL-terminated.
        check(unsafe { libc::symlinkat(target.as_ptr(), dirfd, path.as_ptr()) } as i64)
    }

    pub fn readlinkat(dirfd: i32, path: &CStr) -> Result<Vec<u8>, i32> {
        let mut buf = vec![0u8; 4096];
        // SAFETY: `path` is NUL-terminated; `buf` is valid for its length.
        let n = check(unsafe {
            libc::readlinkat(dirfd, path.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        } as i64)?;
        buf.truncate(n as usize);
        Ok(buf)
    }

    pub fn fchmodat(dirfd: i32, path: &CStr, mode: u32) -> Result<i64, i32> {
        // SAFETY: `path` is NUL-terminated.
        check(unsafe { libc::fchmodat(dirfd, path.as_ptr(), mode, 0) } as i64)
    }

    pub fn read_umask() -> u32 {
        // SAFETY: umask cannot fail; the old mask is put back at once.
        unsafe {
            let m = libc::umask(0o022);
            libc::umask(m);
            m as u32
        }
    }

    /// The file-system user and group ids of the calling thread.
    pub fn ids() -> (u32, u32) {
        // SAFETY: an invalid id changes nothing and returns the current one.
        unsafe {
            (
                libc::setfsuid(u32::MAX) as u32,
                libc::setfsgid(u32::MAX) as u32,
            )
        }
    }

    /// Sets the calling thread's file-system ids; returns them afterwards.
    pub fn set_fs_ids((uid, gid): (u32, u32)) -> (u32, u32) {
        // SAFETY: no pointers; these affect only the calling thread (glibc
        // does not broadcast them to other threads).
        unsafe {
            libc::setfsgid(gid);
            libc::setfsuid(uid);
        }
        ids()
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    run_as(host_ids(), ops)
}

fn run_as(ids: (u32, u32), ops: &[Op]) -> Result<(), TestCaseError> {
    let mut run = Run::new(ids);
    for (i, op) in ops.iter().enumerate() {
        let (host, ours) = run.step(op);
        if host != ours {
            let history: Vec<String> = ops[..=i]
                .iter()
                .enumerate()
                .map(|(j, o)| format!("  {j:2}: {o:?}"))
                .collect();
            return Err(TestCaseError::fail(format!(
                "step {i}: {op:?}\n  host: {}\n  rump: {}\nsequence:\n{}",
                show(&host),
                show(&ours),
                history.join("\n")
            )));
        }
    }
    Ok(())
}

fn show(r: &Res) -> String {
    match r {
        Ok(Out::Bytes(b)) if b.len() > 16 => format!("Ok({} bytes)", b.len()),
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({:?})", Errno(*e)),
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn same_results_as_the_host_kernel(ops in proptest::collection::vec(op(), 1..=30)) {
        run(&ops)?;
    }

    /// The same without privilege, so permission checks count. When the
    /// test itself runs unprivileged, the test above already covers this.
    #[test]
    fn same_results_as_the_host_kernel_without_privilege(
        ops in proptest::collection::vec(op(), 1..=30)
    ) {
        if drop_privilege() {
            run_as(NOBODY, &ops)?;
        } else {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| eprintln!("skipped: not root, so the test above ran unprivileged"));
        }
    }
}

/// Sequences that once disagreed, kept as plain tests.
#[test]
fn regressions_agree_with_the_host() {
    use Op::*;
    let creat = o::WRONLY | o::CREAT;
    let cases: Vec<Vec<Op>> = vec![
        // O_CREAT on an existing directory.
        vec![
            Mkdir {
                path: 3,
                mode: 0o755,
            },
            Open {
                path: 3,
                flags: o::RDONLY | o::CREAT,
                mode: 0o644,
            },
        ],
        // O_DIRECTORY|O_NOFOLLOW on a symlink.
        vec![
            Mkdir {
                path: 3,
                mode: 0o755,
            },
            Symlink { target: 2, path: 0 },
            Open {
                path: 0,
                flags: o::RDONLY | o::DIRECTORY | o::NOFOLLOW,
                mode: 0,
            },
        ],
        // An empty write to an O_APPEND file leaves the offset alone.
        vec![
            Open {
                path: 0,
                flags: creat,
                mode: 0o644,
            },
            Write {
                h: 0,
                len: 100,
                byte: 1,
            },
            Open {
                path: 0,
                flags: o::RDWR | o::APPEND,
                mode: 0,
            },
            Write {
                h: 1,
                len: 0,
                byte: 0,
            },
            Lseek {
                h: 1,
                off: 0,
                whence: 1,
            },
        ],
        // Renaming onto an ancestor of the source ("d/e" onto "d").
        vec![
            Mkdir {
                path: 3,
                mode: 0o755,
            },
            Open {
                path: 4,
                flags: creat,
                mode: 0o644,
            },
            Rename { from: 4, to: 3 },
        ],
    ];
    for ops in cases {
        run(&ops).unwrap_or_else(|e| panic!("{e}"));
    }
}
