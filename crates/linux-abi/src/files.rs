//! File calls: open, I/O, status, names, attributes, descriptors, poll.

use alloc::vec::Vec;

use sys::consts::{at, f, o, poll as pollev, s};
use sys::{Errno, PollFd, Request, Response, TimeArg, MAX_IO};

use crate::layout::{self, pollfd, statx, timespec};
use crate::mem::{gather, read_bytes, read_cstr, read_iovecs, read_u32, scatter, write_bytes};
use crate::{int, Linux, PollTimeout};

/// `O_TMPFILE` (with `O_DIRECTORY`), which the kernel's file systems lack.
const O_TMPFILE: i32 = 0o20000000;
/// `AT_NO_AUTOMOUNT`: there are no automounts, so it changes nothing.
const AT_NO_AUTOMOUNT: i32 = 0x800;
/// `AT_STATX_SYNC_TYPE`: the two sync bits of `statx` flags.
const AT_STATX_SYNC_TYPE: i32 = 0x6000;
/// `RENAME_NOREPLACE`.
const RENAME_NOREPLACE: u64 = 1;
/// The most a vectored write gathers in one call (a short write beyond).
const WRITEV_MAX: usize = 16 * MAX_IO;
/// The most descriptors a poll or select call may name (Linux's bound is
/// RLIMIT_NOFILE; this bounds the copy).
const MAX_POLL_FDS: usize = 1 << 20;
/// `F_GETLK`, `F_SETLK`, `F_SETLKW` and the open-file-description forms.
const LOCK_CMDS: [i32; 6] = [5, 6, 7, 36, 37, 38];
/// ioctls with a meaning for any descriptor (`asm-generic/ioctls.h`).
const FIONBIO: u64 = 0x5421;
const FIONCLEX: u64 = 0x5450;
const FIOCLEX: u64 = 0x5451;

impl Linux<'_> {
    pub(crate) fn openat(
        &self,
        dirfd: u64,
        path: u64,
        flags: u64,
        mode: u64,
    ) -> Result<u64, Errno> {
        let flags = int(flags);
        if flags & O_TMPFILE != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        // open(2) ignores flags it does not know; the kernel refuses them.
        let mut flags = flags & (o::KNOWN | o::PATH);
        if flags & o::PATH != 0 {
            // The kernel has no path-only descriptors: a read-only open
            // stands in (it needs read permission, and O_NOFOLLOW fails
            // on a symlink instead of opening the link).
            flags = o::RDONLY | (flags & (o::DIRECTORY | o::NOFOLLOW | o::CLOEXEC));
        }
        let dirfd = self.dirfd(dirfd)?;
        let path = self.path(path)?;
        let kfd = self.int_of(Request::Openat {
            dirfd,
            path,
            flags,
            mode: mode as u32 & s::PERM_MASK,
        })?;
        self.install(kfd, flags & o::CLOEXEC != 0)
    }

    pub(crate) fn read(
        &self,
        fd: u64,
        buf: u64,
        count: u64,
        offset: Option<i64>,
    ) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        // One request, so a read on a socket or pipe never waits twice;
        // a read longer than MAX_IO is short, which read(2) allows.
        let len = count.min(MAX_IO as u64) as usize;
        let req = match offset {
            None => Request::Read { fd, len },
            Some(offset) => {
                if offset < 0 {
                    return Err(Errno::EINVAL);
                }
                Request::Pread { fd, len, offset }
            }
        };
        let data = bytes(self.req(req)?)?;
        write_bytes(self.mem, buf, &data)?;
        Ok(data.len() as u64)
    }

    pub(crate) fn write(
        &self,
        fd: u64,
        buf: u64,
        count: u64,
        offset: Option<i64>,
    ) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        if offset.is_some_and(|o| o < 0) {
            return Err(Errno::EINVAL);
        }
        let count = count.min(isize::MAX as u64);
        let mut done: u64 = 0;
        // Chunks of MAX_IO; stop at a short write or an error after
        // progress (the bytes written so far are the result).
        loop {
            let n = (count - done).min(MAX_IO as u64) as usize;
            let data = match read_bytes(self.mem, buf.wrapping_add(done), n) {
                Ok(d) => d,
                Err(e) if done == 0 => return Err(e),
                Err(_) => return Ok(done),
            };
            let r = match offset {
                None => self.req(Request::Write { fd, data }),
                Some(o) => self.req(Request::Pwrite {
                    fd,
                    data,
                    offset: o + done as i64,
                }),
            };
            let w = match r {
                Ok(Response::Size(w)) => w,
                Ok(_) => return Err(Errno::EIO),
                Err(e) if done == 0 => return Err(e),
                Err(_) => return Ok(done),
            };
            done += w;
            if (w as usize) < n || done >= count {
                return Ok(done);
            }
        }
    }

    pub(crate) fn readv(
        &self,
        fd: u64,
        iov: u64,
        cnt: u64,
        offset: Option<i64>,
    ) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        let iovs = read_iovecs(self.mem, iov, cnt)?;
        let total: u64 = iovs.iter().map(|v| v.len).sum();
        let len = total.min(MAX_IO as u64) as usize;
        let req = match offset {
            None => Request::Read { fd, len },
            Some(offset) if offset < 0 => return Err(Errno::EINVAL),
            Some(offset) => Request::Pread { fd, len, offset },
        };
        let data = bytes(self.req(req)?)?;
        Ok(scatter(self.mem, &iovs, &data)? as u64)
    }

    pub(crate) fn writev(
        &self,
        fd: u64,
        iov: u64,
        cnt: u64,
        offset: Option<i64>,
    ) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        let iovs = read_iovecs(self.mem, iov, cnt)?;
        if offset.is_some_and(|o| o < 0) {
            return Err(Errno::EINVAL);
        }
        let data = gather(self.mem, &iovs, WRITEV_MAX)?;
        let mut done = 0usize;
        while done < data.len() || data.is_empty() {
            let chunk = data[done..(done + MAX_IO).min(data.len())].to_vec();
            let n = chunk.len();
            let r = match offset {
                None => self.req(Request::Write { fd, data: chunk }),
                Some(o) => self.req(Request::Pwrite {
                    fd,
                    data: chunk,
                    offset: o + done as i64,
                }),
            };
            let w = match r {
                Ok(Response::Size(w)) => w as usize,
                Ok(_) => return Err(Errno::EIO),
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            done += w;
            if w < n || data.is_empty() {
                break;
            }
        }
        Ok(done as u64)
    }

    pub(crate) fn fstat(&self, fd: u64, buf: u64) -> Result<u64, Errno> {
        let st = stat_of(self.req(Request::Fstat { fd: self.fd(fd)? })?)?;
        write_bytes(self.mem, buf, &layout::encode_stat(&st))?;
        Ok(0)
    }

    /// The path of an `*at` call that may be empty with `AT_EMPTY_PATH`
    /// (and, since Linux 6.11, NULL).
    fn path_or_empty(&self, addr: u64, flags: i32) -> Result<Vec<u8>, Errno> {
        if addr == 0 && flags & at::EMPTY_PATH != 0 {
            return self.ns.path(Vec::new());
        }
        self.path(addr)
    }

    fn stat_at(&self, dirfd: u64, path: u64, flags: i32) -> Result<sys::Stat, Errno> {
        let dirfd = self.dirfd(dirfd)?;
        let path = self.path_or_empty(path, flags)?;
        stat_of(self.req(Request::Fstatat {
            dirfd,
            path,
            flags: flags & !AT_NO_AUTOMOUNT,
        })?)
    }

    pub(crate) fn fstatat(
        &self,
        dirfd: u64,
        path: u64,
        buf: u64,
        flags: u64,
    ) -> Result<u64, Errno> {
        let flags = int(flags);
        if flags & !(at::SYMLINK_NOFOLLOW | at::EMPTY_PATH | AT_NO_AUTOMOUNT) != 0 {
            return Err(Errno::EINVAL);
        }
        let st = self.stat_at(dirfd, path, flags)?;
        write_bytes(self.mem, buf, &layout::encode_stat(&st))?;
        Ok(0)
    }

    pub(crate) fn statx(
        &self,
        dirfd: u64,
        path: u64,
        flags: u64,
        mask: u64,
        buf: u64,
    ) -> Result<u64, Errno> {
        let flags = int(flags);
        let known = at::SYMLINK_NOFOLLOW | at::EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE;
        if flags & !known != 0
            || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
            || mask as u32 & statx::RESERVED != 0
        {
            return Err(Errno::EINVAL);
        }
        let st = self.stat_at(dirfd, path, flags & !AT_STATX_SYNC_TYPE)?;
        write_bytes(self.mem, buf, &layout::encode_statx(&st))?;
        Ok(0)
    }

    pub(crate) fn getdents64(&self, fd: u64, buf: u64, count: u64) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        let len = count.min(MAX_IO as u64) as usize;
        let data = bytes(self.req(Request::Getdents64 { fd, len })?)?;
        write_bytes(self.mem, buf, &data)?;
        Ok(data.len() as u64)
    }

    pub(crate) fn mkdirat(&self, dirfd: u64, path: u64, mode: u64) -> Result<u64, Errno> {
        let dirfd = self.dirfd(dirfd)?;
        let path = self.path(path)?;
        self.unit(Request::Mkdirat {
            dirfd,
            path,
            mode: mode as u32 & s::PERM_MASK,
        })
    }

    pub(crate) fn unlinkat(&self, dirfd: u64, path: u64, flags: u64) -> Result<u64, Errno> {
        let flags = int(flags);
        if flags & !at::REMOVEDIR != 0 {
            return Err(Errno::EINVAL);
        }
        let dirfd = self.dirfd(dirfd)?;
        let path = self.path(path)?;
        self.unit(Request::Unlinkat { dirfd, path, flags })
    }

    pub(crate) fn renameat2(
        &self,
        olddirfd: u64,
        old: u64,
        newdirfd: u64,
        new: u64,
        flags: u64,
    ) -> Result<u64, Errno> {
        let flags = flags as u32 as u64;
        // RENAME_EXCHANGE and RENAME_WHITEOUT need the file system's help,
        // which the layer does not offer: EINVAL, as Linux says for a file
        // system without them.
        if flags & !RENAME_NOREPLACE != 0 {
            return Err(Errno::EINVAL);
        }
        let olddirfd = self.dirfd(olddirfd)?;
        let old = self.path(old)?;
        let newdirfd = self.dirfd(newdirfd)?;
        let new = self.path(new)?;
        if flags & RENAME_NOREPLACE != 0 {
            // Emulated with a look-up first; another caller of the same
            // kernel could slip a file in between (documented).
            match self.req(Request::Fstatat {
                dirfd: newdirfd,
                path: new.clone(),
                flags: at::SYMLINK_NOFOLLOW,
            }) {
                Ok(_) => return Err(Errno::EEXIST),
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        self.unit(Request::Renameat {
            olddirfd,
            old,
            newdirfd,
            new,
        })
    }

    pub(crate) fn linkat(
        &self,
        olddirfd: u64,
        old: u64,
        newdirfd: u64,
        new: u64,
        flags: u64,
    ) -> Result<u64, Errno> {
        let flags = int(flags);
        let olddirfd = self.dirfd(olddirfd)?;
        let old = self.path_or_empty(old, flags)?;
        let newdirfd = self.dirfd(newdirfd)?;
        let new = self.path(new)?;
        self.unit(Request::Linkat {
            olddirfd,
            old,
            newdirfd,
            new,
            flags,
        })
    }

    pub(crate) fn symlinkat(&self, target: u64, dirfd: u64, path: u64) -> Result<u64, Errno> {
        // The target is the link's contents, not a name: not translated.
        let target = read_cstr(self.mem, target)?;
        let dirfd = self.dirfd(dirfd)?;
        let path = self.path(path)?;
        self.unit(Request::Symlinkat {
            target,
            dirfd,
            path,
        })
    }

    pub(crate) fn readlinkat(
        &self,
        dirfd: u64,
        path: u64,
        buf: u64,
        size: u64,
    ) -> Result<u64, Errno> {
        let size = int(size);
        if size <= 0 {
            return Err(Errno::EINVAL);
        }
        let dirfd = self.dirfd(dirfd)?;
        let path = self.path(path)?;
        let target = bytes(self.req(Request::Readlinkat { dirfd, path })?)?;
        let n = target.len().min(size as usize);
        write_bytes(self.mem, buf, &target[..n])?;
        Ok(n as u64)
    }

    pub(crate) fn fchmodat(&self, dirfd: u64, path: u64, mode: u64) -> Result<u64, Errno> {
        let dirfd = self.dirfd(dirfd)?;
        let path = self.path(path)?;
        self.unit(Request::Fchmodat {
            dirfd,
            path,
            mode: mode as u32 & s::PERM_MASK,
            flags: 0,
        })
    }

    pub(crate) fn fchownat(
        &self,
        dirfd: u64,
        path: u64,
        uid: u64,
        gid: u64,
        flags: u64,
    ) -> Result<u64, Errno> {
        let flags = int(flags);
        if flags & !(at::SYMLINK_NOFOLLOW | at::EMPTY_PATH) != 0 {
            return Err(Errno::EINVAL);
        }
        let dirfd = self.dirfd(dirfd)?;
        let path = self.path_or_empty(path, flags)?;
        self.unit(Request::Fchownat {
            dirfd,
            path,
            uid: uid as u32,
            gid: gid as u32,
            flags,
        })
    }

    pub(crate) fn utimensat(
        &self,
        dirfd: u64,
        path: u64,
        times: u64,
        flags: u64,
    ) -> Result<u64, Errno> {
        let flags = int(flags);
        let times = if times == 0 {
            None
        } else {
            let b = read_bytes(self.mem, times, 2 * timespec::SIZE)?;
            let t = |i: usize| TimeArg {
                sec: crate::mem::u64_at(&b, i * timespec::SIZE + timespec::SEC) as i64,
                nsec: crate::mem::u64_at(&b, i * timespec::SIZE + timespec::NSEC) as i64,
            };
            Some([t(0), t(1)])
        };
        let dirfd = self.dirfd(dirfd)?;
        if path == 0 {
            // utimensat(fd, NULL, ...) is futimens(fd, ...) (glibc's
            // futimens is exactly this call).
            if flags & !at::SYMLINK_NOFOLLOW != 0 {
                return Err(Errno::EINVAL);
            }
            if dirfd == at::FDCWD {
                return Err(Errno::EFAULT);
            }
            return self.unit(Request::Futimens { fd: dirfd, times });
        }
        let path = self.path(path)?;
        self.unit(Request::Utimensat {
            dirfd,
            path,
            times,
            flags,
        })
    }

    pub(crate) fn faccessat(
        &self,
        dirfd: u64,
        path: u64,
        mode: u64,
        flags: u64,
    ) -> Result<u64, Errno> {
        let flags = int(flags);
        if flags & !(at::EACCESS | at::SYMLINK_NOFOLLOW | at::EMPTY_PATH) != 0 {
            return Err(Errno::EINVAL);
        }
        let dirfd = self.dirfd(dirfd)?;
        let path = self.path_or_empty(path, flags)?;
        self.unit(Request::Faccessat {
            dirfd,
            path,
            mode: int(mode),
            flags,
        })
    }

    pub(crate) fn getcwd(&self, buf: u64, size: u64) -> Result<u64, Errno> {
        let mut cwd = bytes(self.req(Request::Getcwd)?)?;
        if cwd.last() == Some(&0) {
            cwd.pop();
        }
        let mut cwd = self.ns.caller_path(cwd);
        cwd.push(0);
        if (size as usize) < cwd.len() {
            return Err(Errno::ERANGE);
        }
        write_bytes(self.mem, buf, &cwd)?;
        Ok(cwd.len() as u64)
    }

    pub(crate) fn statfs(
        &self,
        path: Option<u64>,
        fd: Option<u64>,
        buf: u64,
    ) -> Result<u64, Errno> {
        let r = match (path, fd) {
            (Some(p), _) => self.req(Request::Statvfs {
                path: self.path(p)?,
            })?,
            (None, Some(fd)) => self.req(Request::Fstatvfs { fd: self.fd(fd)? })?,
            (None, None) => return Err(Errno::EINVAL),
        };
        let sv = match r {
            Response::StatVfs(sv) => sv,
            _ => return Err(Errno::EIO),
        };
        write_bytes(self.mem, buf, &layout::encode_statfs(&sv))?;
        Ok(0)
    }

    pub(crate) fn fcntl(&self, fd: u64, cmd: u64, arg: u64) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        let cmd = int(cmd);
        if LOCK_CMDS.contains(&cmd) {
            // No record locks in the kernel yet (see flock).
            self.fd_valid(fd as u32 as u64)?;
            return Err(Errno::ENOLCK);
        }
        // Integer arguments: the low 32 bits (fcntl(2) takes an int for
        // every command served here).
        let arg = int(arg) as i64;
        let r = self.int_of(Request::Fcntl { fd, cmd, arg })?;
        match cmd {
            f::DUPFD => self.install(r, false),
            f::DUPFD_CLOEXEC => self.install(r, true),
            _ => Ok(r),
        }
    }

    pub(crate) fn ioctl(&self, fd: u64, req: u64, arg: u64) -> Result<u64, Errno> {
        let kfd = self.fd_valid(fd)?;
        match req as u32 as u64 {
            FIONBIO => {
                let on = read_u32(self.mem, arg)? != 0;
                let fl = self.int_of(Request::Fcntl {
                    fd: kfd,
                    cmd: f::GETFL,
                    arg: 0,
                })? as i32;
                let fl = if on {
                    fl | o::NONBLOCK
                } else {
                    fl & !o::NONBLOCK
                };
                self.unit(Request::Fcntl {
                    fd: kfd,
                    cmd: f::SETFL,
                    arg: fl as i64,
                })
            }
            FIOCLEX | FIONCLEX => self.unit(Request::Fcntl {
                fd: kfd,
                cmd: f::SETFD,
                arg: if req as u32 as u64 == FIOCLEX {
                    f::FD_CLOEXEC as i64
                } else {
                    0
                },
            }),
            // Terminal and device ioctls: none of the kernel's files is a
            // terminal.
            _ => Err(Errno::ENOTTY),
        }
    }

    pub(crate) fn mknodat(&self, dirfd: u64, path: u64, mode: u64, dev: u64) -> Result<u64, Errno> {
        let dirfd = self.dirfd(dirfd)?;
        let path = self.path(path)?;
        self.unit(Request::Mknodat {
            dirfd,
            path,
            mode: mode as u32,
            // `unsigned int dev`, in the encoding of new_encode_dev, which
            // agrees with the 64-bit dev_t for every 32-bit value.
            dev: dev as u32 as u64,
        })
    }

    pub(crate) fn poll(&self, fds: u64, nfds: u64, timeout: PollTimeout) -> Result<u64, Errno> {
        // RLIMIT_NOFILE bounds nfds on Linux; the kernel checks its own
        // descriptor limit, this bounds the copy first.
        if nfds > MAX_POLL_FDS as u64 {
            return Err(Errno::EINVAL);
        }
        let timeout_ms = match timeout {
            PollTimeout::Ms(ms) => ms,
            PollTimeout::Timespec(0) => -1,
            PollTimeout::Timespec(p) => timespec_ms(&read_bytes(self.mem, p, timespec::SIZE)?)?,
        };
        let raw = read_bytes(self.mem, fds, nfds as usize * pollfd::SIZE)?;
        let mut list = Vec::with_capacity(nfds as usize);
        let mut bad = Vec::new();
        for i in 0..nfds as usize {
            let e = &raw[i * pollfd::SIZE..(i + 1) * pollfd::SIZE];
            let fd = i32::from_ne_bytes([e[0], e[1], e[2], e[3]]);
            let events = i16::from_ne_bytes([e[pollfd::EVENTS], e[pollfd::EVENTS + 1]]);
            let kfd = if fd < 0 {
                -1
            } else {
                match self.ns.fd(fd) {
                    Ok(k) => k,
                    Err(_) => {
                        bad.push(i);
                        -1
                    }
                }
            };
            list.push(PollFd {
                fd: kfd,
                events,
                revents: 0,
            });
        }
        let timeout_ms = if bad.is_empty() { timeout_ms } else { 0 };
        let (n, out) = match self.req(Request::Poll {
            fds: list,
            timeout_ms,
        })? {
            Response::Poll { n, fds } => (n, fds),
            _ => return Err(Errno::EIO),
        };
        let mut n = n;
        for (i, pf) in out.iter().enumerate() {
            let revents = if bad.contains(&i) {
                n += 1;
                pollev::NVAL
            } else {
                pf.revents
            };
            let at = fds + (i * pollfd::SIZE + pollfd::REVENTS) as u64;
            write_bytes(self.mem, at, &revents.to_ne_bytes())?;
        }
        Ok(n as u64)
    }

    /// `select` and `pselect6`, through poll. The timeout is not updated
    /// with the time left, and pselect's signal mask is not applied.
    pub(crate) fn select(
        &self,
        nfds: u64,
        rd: u64,
        wr: u64,
        ex: u64,
        tmo: u64,
        is_pselect: bool,
    ) -> Result<u64, Errno> {
        let nfds = int(nfds);
        if nfds < 0 {
            return Err(Errno::EINVAL);
        }
        let nfds = (nfds as usize).min(MAX_POLL_FDS);
        let words = nfds.div_ceil(64);
        let set = |addr: u64| -> Result<Option<Vec<u64>>, Errno> {
            if addr == 0 {
                return Ok(None);
            }
            let b = read_bytes(self.mem, addr, words * 8)?;
            Ok(Some(
                (0..words).map(|i| crate::mem::u64_at(&b, i * 8)).collect(),
            ))
        };
        let sets = [set(rd)?, set(wr)?, set(ex)?];
        let timeout_ms = if tmo == 0 {
            -1
        } else {
            let b = read_bytes(self.mem, tmo, timespec::SIZE)?;
            if is_pselect {
                timespec_ms(&b)?
            } else {
                timeval_ms(&b)?
            }
        };
        let bit = |s: &Option<Vec<u64>>, fd: usize| {
            s.as_ref().is_some_and(|w| w[fd / 64] >> (fd % 64) & 1 != 0)
        };
        let mut list = Vec::new();
        for fd in 0..nfds {
            let mut events = 0;
            if bit(&sets[0], fd) {
                events |= pollev::IN;
            }
            if bit(&sets[1], fd) {
                events |= pollev::OUT;
            }
            if bit(&sets[2], fd) {
                events |= pollev::PRI;
            }
            if events != 0 {
                list.push(PollFd {
                    fd: self.ns.fd(fd as i32)?,
                    events,
                    revents: 0,
                });
            }
        }
        let fds_of: Vec<usize> = (0..nfds)
            .filter(|&fd| sets.iter().any(|s| bit(s, fd)))
            .collect();
        let out = match self.req(Request::Poll {
            fds: list,
            timeout_ms,
        })? {
            Response::Poll { fds, .. } => fds,
            _ => return Err(Errno::EIO),
        };
        let mut res = [
            alloc::vec![0u64; words],
            alloc::vec![0u64; words],
            alloc::vec![0u64; words],
        ];
        let mut count = 0u64;
        for (pf, &fd) in out.iter().zip(&fds_of) {
            if pf.revents & pollev::NVAL != 0 {
                return Err(Errno::EBADF);
            }
            let r = pf.revents;
            let hits = [
                pf.events & pollev::IN != 0 && r & (pollev::IN | pollev::HUP | pollev::ERR) != 0,
                pf.events & pollev::OUT != 0 && r & (pollev::OUT | pollev::ERR) != 0,
                pf.events & pollev::PRI != 0 && r & pollev::PRI != 0,
            ];
            for (k, hit) in hits.iter().enumerate() {
                if *hit {
                    res[k][fd / 64] |= 1 << (fd % 64);
                    count += 1;
                }
            }
        }
        for (addr, words) in [rd, wr, ex].iter().zip(&res) {
            if *addr != 0 {
                let b: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
                write_bytes(self.mem, *addr, &b)?;
            }
        }
        Ok(count)
    }
}

/// The bytes of a `Bytes` response.
pub(crate) fn bytes(r: Response) -> Result<Vec<u8>, Errno> {
    match r {
        Response::Bytes(b) => Ok(b),
        _ => Err(Errno::EIO),
    }
}

fn stat_of(r: Response) -> Result<sys::Stat, Errno> {
    match r {
        Response::Stat(st) => Ok(st),
        _ => Err(Errno::EIO),
    }
}

/// A `struct timespec` as a poll timeout in milliseconds, rounded up;
/// `EINVAL` for a negative or unnormalised one.
fn timespec_ms(b: &[u8]) -> Result<i32, Errno> {
    let sec = crate::mem::u64_at(b, timespec::SEC) as i64;
    let nsec = crate::mem::u64_at(b, timespec::NSEC) as i64;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    let ms = sec
        .saturating_mul(1000)
        .saturating_add((nsec + 999_999) / 1_000_000);
    Ok(ms.min(i32::MAX as i64) as i32)
}

/// A `struct timeval` the same way.
fn timeval_ms(b: &[u8]) -> Result<i32, Errno> {
    let sec = crate::mem::u64_at(b, timespec::SEC) as i64;
    let usec = crate::mem::u64_at(b, timespec::NSEC) as i64;
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(Errno::EINVAL);
    }
    let ms = sec.saturating_mul(1000).saturating_add((usec + 999) / 1000);
    Ok(ms.min(i32::MAX as i64) as i32)
}
