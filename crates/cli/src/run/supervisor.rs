//! The supervisor of `rump run`: serves the seccomp notifications of the
//! traced program, deciding for each call whether it is the rump kernel's
//! (a path under the prefix, a rump descriptor, a working directory in the
//! rump tree) or the host's, and serving the kernel's through the Linux
//! personality.
//!
//! Descriptors: every rump descriptor the program holds is a host
//! *placeholder*, one end of an `AF_UNIX` socket pair injected with
//! `SECCOMP_IOCTL_NOTIF_ADDFD`; the supervisor keeps the other end. The
//! host kernel does the numbering, `dup*`, close-on-exec and inheritance
//! across fork; the supervisor recognises a placeholder by its socket
//! inode (`/proc/TID/fd/N`), and learns that the program (and all its
//! children) closed it when its own end hangs up, which closes the
//! kernel descriptor. See docs/run.md.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use linux_abi::{nr, Linux, Memory, Namespace};
use rump::sys::{self, consts::at, Errno, Syscalls};

use super::seccomp::{Listener, Notif};

/// Calls the filter sends to the supervisor.
pub const ROUTED: &[u64] = &[
    // names
    nr::OPEN,
    nr::CREAT,
    nr::OPENAT,
    nr::STAT,
    nr::LSTAT,
    nr::NEWFSTATAT,
    nr::STATX,
    nr::ACCESS,
    nr::FACCESSAT,
    nr::FACCESSAT2,
    nr::MKDIR,
    nr::MKDIRAT,
    nr::UNLINK,
    nr::UNLINKAT,
    nr::RMDIR,
    nr::RENAME,
    nr::RENAMEAT,
    nr::RENAMEAT2,
    nr::LINK,
    nr::LINKAT,
    nr::SYMLINK,
    nr::SYMLINKAT,
    nr::READLINK,
    nr::READLINKAT,
    nr::CHMOD,
    nr::FCHMODAT,
    nr::CHOWN,
    nr::LCHOWN,
    nr::FCHOWNAT,
    nr::UTIMENSAT,
    nr::TRUNCATE,
    nr::CHDIR,
    nr::GETCWD,
    nr::STATFS,
    nr::MKNOD,
    nr::MKNODAT,
    NR_EXECVE,
    NR_SETXATTR,
    NR_LSETXATTR,
    NR_GETXATTR,
    NR_LGETXATTR,
    NR_LISTXATTR,
    NR_LLISTXATTR,
    NR_REMOVEXATTR,
    NR_LREMOVEXATTR,
    // descriptors
    nr::READ,
    nr::WRITE,
    nr::PREAD64,
    nr::PWRITE64,
    nr::READV,
    nr::WRITEV,
    nr::PREADV,
    nr::PWRITEV,
    nr::LSEEK,
    nr::FSTAT,
    nr::GETDENTS64,
    NR_GETDENTS,
    nr::FCHMOD,
    nr::FCHOWN,
    nr::FTRUNCATE,
    nr::FSYNC,
    nr::FDATASYNC,
    nr::FSTATFS,
    nr::FCNTL,
    nr::IOCTL,
    nr::FLOCK,
    nr::FCHDIR,
    nr::MMAP,
    NR_FSETXATTR,
    NR_FGETXATTR,
    NR_FLISTXATTR,
    NR_FREMOVEXATTR,
    NR_FADVISE64,
    NR_FALLOCATE,
    NR_SENDFILE,
    NR_SPLICE,
    NR_COPY_FILE_RANGE,
    // sockets
    nr::SOCKET,
    nr::CONNECT,
    nr::ACCEPT,
    nr::ACCEPT4,
    nr::BIND,
    nr::LISTEN,
    nr::GETSOCKNAME,
    nr::GETPEERNAME,
    nr::SETSOCKOPT,
    nr::GETSOCKOPT,
    nr::SHUTDOWN,
    nr::SENDTO,
    nr::RECVFROM,
    nr::SENDMSG,
    nr::RECVMSG,
];

/// Calls refused in the filter itself: io_uring would bypass us.
pub const REFUSED: &[(u64, i32)] = &[
    (nr::IO_URING_SETUP, libc::ENOSYS),
    (426, libc::ENOSYS),
    (427, libc::ENOSYS),
];

const NR_EXECVE: u64 = 59;
const NR_SENDFILE: u64 = 40;
const NR_GETDENTS: u64 = 78;
const NR_SETXATTR: u64 = 188;
const NR_LSETXATTR: u64 = 189;
const NR_FSETXATTR: u64 = 190;
const NR_GETXATTR: u64 = 191;
const NR_LGETXATTR: u64 = 192;
const NR_FGETXATTR: u64 = 193;
const NR_LISTXATTR: u64 = 194;
const NR_LLISTXATTR: u64 = 195;
const NR_FLISTXATTR: u64 = 196;
const NR_REMOVEXATTR: u64 = 197;
const NR_LREMOVEXATTR: u64 = 198;
const NR_FREMOVEXATTR: u64 = 199;
const NR_FADVISE64: u64 = 221;
const NR_SPLICE: u64 = 275;
const NR_FALLOCATE: u64 = 285;
const NR_COPY_FILE_RANGE: u64 = 326;

/// What the program's calls are routed by (`--hijack`).
#[derive(Clone, Debug)]
pub struct Routing {
    /// Paths under this prefix are the kernel's, the prefix stripped.
    pub prefix: Vec<u8>,
    /// Whether AF_INET and AF_INET6 sockets are the kernel's.
    pub inet: bool,
}

impl Routing {
    /// Parses a RUMPHIJACK-style spec: comma-separated `key=value`.
    pub fn parse(spec: &str) -> Result<Routing, String> {
        let mut r = Routing {
            prefix: b"/rump".to_vec(),
            inet: true,
        };
        for item in spec.split(',').filter(|s| !s.is_empty()) {
            // `socket=inet,inet6`: a bare family continues the list.
            if matches!(item, "inet" | "inet6") {
                continue;
            }
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("--hijack {item}: expected key=value"))?;
            match k {
                "path" => {
                    let v = v.trim_end_matches('/');
                    if !v.starts_with('/') || v.len() < 2 {
                        return Err(format!("--hijack path={v}: an absolute path other than /"));
                    }
                    r.prefix = v.as_bytes().to_vec();
                }
                "socket" => {
                    r.inet = match v {
                        "none" => false,
                        "inet" | "inet6" | "inet:inet6" | "inet6:inet" => true,
                        _ => {
                            return Err(format!(
                                "--hijack socket={v}: inet (AF_INET and AF_INET6) or none; all is not supported yet"
                            ))
                        }
                    }
                }
                "blanket" | "vfs" | "sysctl" | "fdoff" => {
                    return Err(format!(
                        "--hijack {k}={v}: not supported yet (only path= and socket=)"
                    ))
                }
                _ => return Err(format!("--hijack {k}: unknown key")),
            }
        }
        Ok(r)
    }

    /// The kernel's path for an absolute host path under the prefix.
    fn strip<'p>(&self, path: &'p [u8]) -> Option<&'p [u8]> {
        let rest = path.strip_prefix(&self.prefix[..])?;
        match rest {
            [] => Some(b"/"),
            [b'/', ..] => Some(rest),
            _ => None,
        }
    }
}

/// Where the kernel's calls go: a local kernel (one kernel process per
/// traced process, sharing one descriptor table) or a remote one.
pub enum Backend {
    Local(rump::Process),
    Remote(Arc<dyn Syscalls>),
}

/// One traced process (thread group).
struct Ctx {
    sys: Arc<dyn Syscalls>,
    /// The local kernel process, to fork children's contexts from.
    local: Option<Arc<rump::Process>>,
    /// Whether its working directory is in the rump tree (then the kernel
    /// process's own cwd is the real one).
    cwd_in_rump: AtomicBool,
}

/// What a placeholder stands for, which decides where its calls run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A file or directory (or a datagram socket): every call routed; the
    /// placeholder is always ready.
    File,
    /// A TCP socket not connected (yet, or after a failed connect):
    /// nothing pumps its placeholder, so every call is routed and the
    /// kernel answers (`ENOTCONN`, `EPIPE`, ...) instead of the program
    /// waiting on a pair nobody writes to.
    Fresh,
    /// A connected TCP socket: data flows through the socket pair (pumped
    /// to and from the kernel socket), so reads, writes and polls run
    /// natively; control calls are routed.
    Stream,
    /// A listening TCP socket: `accept` is routed; the placeholder is
    /// readable while the kernel has a connection waiting.
    Listener,
}

/// A kernel descriptor, closed when the last user lets go (the
/// placeholder's entry and, for streams, the pump threads).
struct KernelFd {
    fd: i32,
    sys: Arc<dyn Syscalls>,
}

impl Drop for KernelFd {
    fn drop(&mut self) {
        let _ = self.sys.call(sys::Request::Close { fd: self.fd });
    }
}

/// The host end of a placeholder and the kernel descriptor it stands for.
struct Hole {
    kind: Kind,
    kfd: Arc<KernelFd>,
    ours: Arc<OwnedFd>,
    /// Listeners: a copy of the program's end (to take the readiness
    /// byte back) and whether the byte is there.
    theirs: Option<OwnedFd>,
    ready: Arc<(Mutex<bool>, std::sync::Condvar)>,
}

pub struct Supervisor {
    pub listener: Listener,
    routing: Routing,
    backend: Backend,
    root: Arc<Ctx>,
    ctxs: Mutex<HashMap<i32, Arc<Ctx>>>,
    tgids: Mutex<HashMap<i32, i32>>,
    holes: Mutex<HashMap<u64, Hole>>,
    epoll: OwnedFd,
    warned: Mutex<Vec<&'static str>>,
    /// Log every notification ($RUMP_RUN_DEBUG), timed from here.
    debug: bool,
    started: std::time::Instant,
}

/// How a notification is answered.
enum Outcome {
    /// Run it in the host kernel.
    Host,
    /// Return this (`-errno` for an error).
    Ret(i64),
    /// Nothing to answer: the caller went away.
    Gone,
}

/// What to do once a routed call has returned.
enum After {
    Nothing,
    /// A stream connected: start its pumps.
    Pumps(u64),
    /// A stream listens (descriptor, inode).
    Listen(i32, u64),
    /// A connection was accepted on this listener.
    Accepted(u64),
}

/// Whether a receive call asks for the error queue (`MSG_ERRQUEUE`).
fn errqueue(nr: u64, args: &[u64; 6]) -> bool {
    let flags = match nr {
        nr::RECVMSG => args[2],
        nr::RECVFROM => args[3],
        _ => return false,
    };
    flags as u32 as i32 & libc::MSG_ERRQUEUE != 0
}

/// Where a name lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Where {
    Host,
    Rump,
}

impl Supervisor {
    pub fn new(listener: Listener, routing: Routing, backend: Backend) -> io::Result<Supervisor> {
        // SAFETY: epoll_create1 takes a flag; the result is checked.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `ep` was just created and is owned by nobody else.
        let epoll = unsafe { OwnedFd::from_raw_fd(ep) };
        let root = Arc::new(match &backend {
            Backend::Local(p) => {
                let child = p.rfork(rump::ForkFds::Share).map_err(rump::io_error)?;
                let child = Arc::new(child);
                Ctx {
                    sys: child.clone() as Arc<dyn Syscalls>,
                    local: Some(child),
                    cwd_in_rump: AtomicBool::new(false),
                }
            }
            Backend::Remote(c) => Ctx {
                sys: c.clone(),
                local: None,
                cwd_in_rump: AtomicBool::new(false),
            },
        });
        Ok(Supervisor {
            listener,
            routing,
            backend,
            root,
            ctxs: Mutex::new(HashMap::new()),
            tgids: Mutex::new(HashMap::new()),
            holes: Mutex::new(HashMap::new()),
            epoll,
            warned: Mutex::new(Vec::new()),
            debug: std::env::var_os("RUMP_RUN_DEBUG").is_some(),
            started: std::time::Instant::now(),
        })
    }

    /// Whether serving `n` may wait (for a connection, a datagram, a
    /// pipe): such calls go to a worker thread, the others are served by
    /// the receiving thread itself, which saves a hand-off per call.
    pub fn may_block(&self, n: &Notif) -> bool {
        let fd = n.data.args[0] as u32 as i32;
        match n.data.nr as u64 {
            nr::ACCEPT
            | nr::ACCEPT4
            | nr::CONNECT
            | nr::RECVFROM
            | nr::RECVMSG
            | nr::SENDTO
            | nr::SENDMSG => true,
            nr::READ
            | nr::READV
            | nr::WRITE
            | nr::WRITEV
            | nr::PREAD64
            | nr::PREADV
            | nr::PWRITE64
            | nr::PWRITEV => self.lookup(n.pid as i32, fd).is_some(),
            nr::OPEN | nr::OPENAT | nr::CREAT => true,
            _ => false,
        }
    }

    /// Serves one notification.
    pub fn handle(&self, n: &Notif) {
        let out = self.serve(n);
        if self.debug {
            let what = match out {
                Outcome::Host => "host".to_string(),
                Outcome::Ret(r) => format!("= {r}"),
                Outcome::Gone => "gone".to_string(),
            };
            eprintln!(
                "rump run: {:.6} [{}] {} {:x?} {what}",
                self.started.elapsed().as_secs_f64(),
                n.pid,
                n.data.nr,
                &n.data.args[..3]
            );
        }
        match out {
            Outcome::Host => self.listener.send(n.id, 0, 0, true),
            Outcome::Ret(r) if r < 0 => self.listener.send(n.id, 0, r as i32, false),
            Outcome::Ret(r) => self.listener.send(n.id, r, 0, false),
            Outcome::Gone => {}
        }
    }

    /// Logs a notification as it arrives ($RUMP_RUN_DEBUG), so that time
    /// spent waiting for a worker shows.
    pub fn trace_received(&self, n: &Notif) {
        if self.debug {
            eprintln!(
                "rump run: {:.6} [{}] {} received",
                self.started.elapsed().as_secs_f64(),
                n.pid,
                n.data.nr
            );
        }
    }

    fn warn_once(&self, what: &'static str) {
        let mut w = self.warned.lock().unwrap();
        if !w.contains(&what) {
            w.push(what);
            eprintln!("rump run: {what}");
        }
    }

    fn serve(&self, n: &Notif) -> Outcome {
        let tid = n.pid as i32;
        let nr = n.data.nr as u64;
        let mut a = n.data.args;
        let orig = n.data.args;
        let mem = ProcMem { pid: tid };
        let ctx = self.ctx(tid);
        let fd_at = |i: usize| orig[i] as u32 as i32;
        let is_hole = |fd: i32| self.kernel_fd(tid, fd).is_some();
        // What a new descriptor will be, and what to do after the call.
        let mut kind = Kind::File;
        let mut nonblock = false;
        let mut after = After::Nothing;
        let where_at = |dirfd: Option<usize>, path: usize| -> Where {
            let Ok(p) = linux_abi::read_cstr(&mem, orig[path]) else {
                // Let the host report the bad pointer.
                return Where::Host;
            };
            self.where_is(tid, &ctx, dirfd.map(fd_at).unwrap_or(at::FDCWD), &p)
        };
        use Where::*;
        let route = match nr {
            nr::OPEN
            | nr::CREAT
            | nr::STAT
            | nr::LSTAT
            | nr::ACCESS
            | nr::MKDIR
            | nr::UNLINK
            | nr::RMDIR
            | nr::READLINK
            | nr::CHMOD
            | nr::CHOWN
            | nr::LCHOWN
            | nr::TRUNCATE
            | nr::STATFS
            | nr::MKNOD
            | nr::CHDIR => where_at(None, 0),
            nr::OPENAT
            | nr::NEWFSTATAT
            | nr::STATX
            | nr::FACCESSAT
            | nr::FACCESSAT2
            | nr::MKDIRAT
            | nr::UNLINKAT
            | nr::READLINKAT
            | nr::FCHMODAT
            | nr::FCHOWNAT
            | nr::MKNODAT => {
                if a[1] == 0 && (nr == nr::STATX || nr == nr::NEWFSTATAT) {
                    // AT_EMPTY_PATH with NULL: the descriptor decides.
                    if is_hole(fd_at(0)) {
                        Rump
                    } else {
                        Host
                    }
                } else {
                    where_at(Some(0), 1)
                }
            }
            nr::UTIMENSAT => {
                if a[1] == 0 {
                    if is_hole(fd_at(0)) {
                        Rump
                    } else {
                        Host
                    }
                } else {
                    where_at(Some(0), 1)
                }
            }
            nr::SYMLINK => where_at(None, 1),
            nr::SYMLINKAT => where_at(Some(1), 2),
            nr::RENAME | nr::LINK | nr::RENAMEAT | nr::RENAMEAT2 | nr::LINKAT => {
                let (x, y) = if nr == nr::RENAME || nr == nr::LINK {
                    (where_at(None, 0), where_at(None, 1))
                } else {
                    (where_at(Some(0), 1), where_at(Some(2), 3))
                };
                match (x, y) {
                    (Host, Host) => Host,
                    (Rump, Rump) => Rump,
                    _ => return Outcome::Ret(-(libc::EXDEV as i64)),
                }
            }
            nr::GETCWD => {
                if ctx.cwd_in_rump.load(Ordering::Relaxed) {
                    Rump
                } else {
                    Host
                }
            }
            NR_EXECVE => {
                if where_at(None, 0) == Rump {
                    self.warn_once(
                        "executing a program stored in the rump tree is not supported yet",
                    );
                    return Outcome::Ret(-(libc::ENOEXEC as i64));
                }
                Host
            }
            NR_SETXATTR | NR_LSETXATTR | NR_GETXATTR | NR_LGETXATTR | NR_LISTXATTR
            | NR_LLISTXATTR | NR_REMOVEXATTR | NR_LREMOVEXATTR => {
                if where_at(None, 0) == Rump {
                    return Outcome::Ret(-(libc::EOPNOTSUPP as i64));
                }
                Host
            }
            NR_FSETXATTR | NR_FGETXATTR | NR_FLISTXATTR | NR_FREMOVEXATTR => {
                if is_hole(fd_at(0)) {
                    return Outcome::Ret(-(libc::EOPNOTSUPP as i64));
                }
                Host
            }
            NR_FADVISE64 => {
                if is_hole(fd_at(0)) {
                    // Advice only; the kernel has no use for it.
                    return Outcome::Ret(0);
                }
                Host
            }
            NR_FALLOCATE => {
                if is_hole(fd_at(0)) {
                    return Outcome::Ret(-(libc::EOPNOTSUPP as i64));
                }
                Host
            }
            NR_GETDENTS => {
                if is_hole(fd_at(0)) {
                    return Outcome::Ret(-(libc::ENOSYS as i64));
                }
                Host
            }
            NR_SENDFILE | NR_SPLICE | NR_COPY_FILE_RANGE => {
                let (x, y) = if nr == NR_SENDFILE { (0, 1) } else { (0, 2) };
                if is_hole(fd_at(x)) || is_hole(fd_at(y)) {
                    // Callers fall back to read and write.
                    let e = if nr == NR_COPY_FILE_RANGE {
                        libc::EXDEV
                    } else {
                        libc::EINVAL
                    };
                    return Outcome::Ret(-(e as i64));
                }
                Host
            }
            nr::MMAP => {
                if a[3] & libc::MAP_ANONYMOUS as u64 == 0 && is_hole(fd_at(4)) {
                    self.warn_once("mmap of a rump file is not supported yet (ENODEV)");
                    return Outcome::Ret(-(libc::ENODEV as i64));
                }
                Host
            }
            nr::FCNTL => {
                let cmd = fd_at(1);
                // Descriptor flags and duplicates are the placeholder's
                // (the host's); status flags and locks the kernel's.
                let kernels = matches!(
                    cmd,
                    libc::F_GETFL | libc::F_SETFL | 5 | 6 | 7 | 36 | 37 | 38
                );
                match self.lookup(tid, fd_at(0)) {
                    Some((_, Kind::File, _)) if kernels => Rump,
                    _ => Host,
                }
            }
            nr::IOCTL => {
                let req = a[1] as u32 as u64;
                match self.lookup(tid, fd_at(0)) {
                    Some((_, Kind::File | Kind::Listener, _))
                        if req != libc::FIOCLEX && req != libc::FIONCLEX =>
                    {
                        Rump
                    }
                    _ => Host,
                }
            }
            nr::SOCKET => {
                let (dom, ty) = (fd_at(0), fd_at(1));
                if !self.routing.inet || (dom != libc::AF_INET && dom != libc::AF_INET6) {
                    Host
                } else {
                    if ty & 0xf == libc::SOCK_STREAM {
                        // The kernel socket stays blocking (the pumps
                        // wait on it); the placeholder carries the flag.
                        kind = Kind::Fresh;
                        nonblock = ty & libc::SOCK_NONBLOCK != 0;
                        a[1] = (ty & !libc::SOCK_NONBLOCK) as u32 as u64;
                    }
                    Rump
                }
            }
            // Data on a stream goes through the placeholder natively.
            nr::READ
            | nr::WRITE
            | nr::READV
            | nr::WRITEV
            | nr::PREAD64
            | nr::PWRITE64
            | nr::PREADV
            | nr::PWRITEV
            | nr::SENDTO
            | nr::RECVFROM
            | nr::SENDMSG
            | nr::RECVMSG
            | nr::SHUTDOWN => match self.lookup(tid, fd_at(0)) {
                // The kernel keeps no error queue; a socket pair would
                // hand out (or wait for) ordinary data instead.
                Some((_, Kind::Stream | Kind::Fresh, _)) if errqueue(nr, &orig) => {
                    return Outcome::Ret(-(libc::EAGAIN as i64));
                }
                Some((_, Kind::Stream, _)) | None => Host,
                Some(_) => Rump,
            },
            nr::CONNECT => match self.lookup(tid, fd_at(0)) {
                None => Host,
                Some((kfd, Kind::Stream | Kind::Fresh, ino)) if is_nonblocking(tid, fd_at(0)) => {
                    // Connect in the background; the program polls the
                    // placeholder (writable at once: what it writes waits
                    // in the pair until the pumps start).
                    let addr = match linux_abi::read_sockaddr(&mem, orig[1], orig[2]) {
                        Ok(a) => a,
                        Err(e) => return Outcome::Ret(-(e.0 as i64)),
                    };
                    self.connect_later(kfd, ino, addr);
                    return Outcome::Ret(-(libc::EINPROGRESS as i64));
                }
                Some((_, Kind::Stream | Kind::Fresh, ino)) => {
                    after = After::Pumps(ino);
                    Rump
                }
                Some(_) => Rump,
            },
            nr::LISTEN => match self.lookup(tid, fd_at(0)) {
                None => Host,
                Some((_, Kind::Stream | Kind::Fresh, ino)) => {
                    after = After::Listen(fd_at(0), ino);
                    Rump
                }
                Some(_) => Rump,
            },
            nr::ACCEPT | nr::ACCEPT4 => match self.lookup(tid, fd_at(0)) {
                None => Host,
                Some((kfd, Kind::Listener, ino)) => {
                    if is_nonblocking(tid, fd_at(0)) && !self.kernel_readable(kfd) {
                        return Outcome::Ret(-(libc::EAGAIN as i64));
                    }
                    let flags = if nr == nr::ACCEPT { 0 } else { fd_at(3) };
                    kind = Kind::Stream;
                    nonblock = flags & libc::SOCK_NONBLOCK != 0;
                    a[3] = (flags & !libc::SOCK_NONBLOCK) as u32 as u64;
                    after = After::Accepted(ino);
                    Rump
                }
                Some(_) => Rump,
            },
            nr::FCHDIR => {
                if is_hole(fd_at(0)) {
                    Rump
                } else {
                    ctx.cwd_in_rump.store(false, Ordering::Relaxed);
                    Host
                }
            }
            _ => {
                if is_hole(fd_at(0)) {
                    Rump
                } else {
                    Host
                }
            }
        };
        if route == Host {
            if nr == nr::CHDIR {
                self.host_chdir(&mem, a[0], &ctx);
            }
            return Outcome::Host;
        }
        // The memory read so far belongs to this caller only while the
        // notification is pending.
        if !self.listener.id_valid(n.id) {
            return Outcome::Gone;
        }
        let ns = Ns {
            sup: self,
            tid,
            id: n.id,
            kind,
            nonblock,
            made: std::cell::Cell::new(None),
        };
        let linux = Linux {
            sys: &*ctx.sys,
            mem: &mem,
            ns: &ns,
        };
        // ACCEPT is served as ACCEPT4 (the flags may have been changed).
        let nr = if nr == nr::ACCEPT { nr::ACCEPT4 } else { nr };
        let r = linux.syscall(nr, a);
        if r == 0 && (nr == nr::CHDIR || nr == nr::FCHDIR) {
            ctx.cwd_in_rump.store(true, Ordering::Relaxed);
        }
        match after {
            After::Nothing => {}
            After::Pumps(ino) if r == 0 => self.start_pumps(ino),
            After::Listen(fd, ino) if r == 0 => self.make_listener(tid, fd, ino),
            After::Accepted(lino) => {
                if r >= 0 {
                    if let Some(ino) = ns.made.get() {
                        self.start_pumps(ino);
                    }
                }
                self.listener_taken(lino);
            }
            _ => {}
        }
        Outcome::Ret(r)
    }

    /// A host `chdir` leaves the rump tree if it will succeed (the host
    /// runs it; we only look).
    fn host_chdir(&self, mem: &ProcMem, path: u64, ctx: &Ctx) {
        if let Ok(p) = linux_abi::read_cstr(mem, path) {
            use std::os::unix::ffi::OsStrExt;
            let p = std::ffi::OsStr::from_bytes(&p);
            if p.as_encoded_bytes().starts_with(b"/") && std::path::Path::new(p).is_dir() {
                ctx.cwd_in_rump.store(false, Ordering::Relaxed);
            }
        }
    }

    fn where_is(&self, tid: i32, ctx: &Ctx, dirfd: i32, path: &[u8]) -> Where {
        if path.starts_with(b"/") {
            return if self.routing.strip(path).is_some() {
                Where::Rump
            } else {
                Where::Host
            };
        }
        if dirfd == at::FDCWD {
            return if ctx.cwd_in_rump.load(Ordering::Relaxed) {
                Where::Rump
            } else {
                Where::Host
            };
        }
        if self.kernel_fd(tid, dirfd).is_some() {
            Where::Rump
        } else {
            Where::Host
        }
    }

    /// The kernel descriptor behind the caller's `fd` and its kind, if it
    /// is one of our placeholders.
    fn lookup(&self, tid: i32, fd: i32) -> Option<(i32, Kind, u64)> {
        if fd < 0 {
            return None;
        }
        let link = std::fs::read_link(format!("/proc/{tid}/fd/{fd}")).ok()?;
        let s = link.to_str()?;
        let ino: u64 = s
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()?;
        self.holes
            .lock()
            .unwrap()
            .get(&ino)
            .map(|h| (h.kfd.fd, h.kind, ino))
    }

    fn kernel_fd(&self, tid: i32, fd: i32) -> Option<i32> {
        self.lookup(tid, fd).map(|(k, _, _)| k)
    }

    /// A placeholder of `kind` for kernel descriptor `kfd`, installed in
    /// the caller of notification `id`; returns its number there.
    fn make_hole(
        &self,
        id: u64,
        kfd: i32,
        kind: Kind,
        cloexec: bool,
        nonblock: bool,
    ) -> Result<(i32, u64), Errno> {
        let mut sv = [0 as RawFd; 2];
        // SAFETY: socketpair writes two descriptors into `sv`.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr(),
            )
        };
        if r < 0 {
            return Err(Errno::EMFILE);
        }
        // SAFETY: both descriptors were just created and are ours alone.
        let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
        // SAFETY: struct stat is plain data; all zeroes is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `theirs` is open; `st` is ours.
        if unsafe { libc::fstat(theirs.as_raw_fd(), &mut st) } < 0 {
            return Err(Errno::EMFILE);
        }
        if kind == Kind::File {
            // A byte waiting makes the placeholder readable, as a regular
            // file always is, for poll and select run by the host.
            // SAFETY: a one-byte write from a static buffer.
            unsafe { libc::write(ours.as_raw_fd(), b"r".as_ptr().cast(), 1) };
        }
        if nonblock {
            // The status flag lives in the open file the program shares.
            // SAFETY: fcntl on our open descriptor.
            unsafe {
                let fl = libc::fcntl(theirs.as_raw_fd(), libc::F_GETFL);
                libc::fcntl(theirs.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
        let n = match self.listener.add_fd(id, theirs.as_raw_fd(), cloexec) {
            Ok(n) => n,
            Err(e) => return Err(Errno(e.raw_os_error().unwrap_or(libc::EMFILE))),
        };
        // Streams hang up only when both directions are shut (the
        // program's half-close is the pump's business); files on any.
        let events = match kind {
            Kind::Stream | Kind::Fresh => libc::EPOLLHUP,
            _ => libc::EPOLLRDHUP | libc::EPOLLHUP,
        };
        let mut ev = libc::epoll_event {
            events: events as u32,
            u64: st.st_ino,
        };
        // SAFETY: registers `ours` (open) with our epoll instance.
        unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                ours.as_raw_fd(),
                &mut ev,
            )
        };
        self.holes.lock().unwrap().insert(
            st.st_ino,
            Hole {
                kind,
                kfd: Arc::new(KernelFd {
                    fd: kfd,
                    sys: self.root.sys.clone(),
                }),
                ours: Arc::new(ours),
                theirs: None,
                ready: Arc::new((Mutex::new(false), std::sync::Condvar::new())),
            },
        );
        // `theirs` closes here: the caller's copy is the only one left.
        Ok((n, st.st_ino))
    }

    /// Whether a kernel descriptor is readable now.
    fn kernel_readable(&self, kfd: i32) -> bool {
        matches!(
            self.root.sys.call(sys::Request::Poll {
                fds: vec![sys::PollFd {
                    fd: kfd,
                    events: libc::POLLIN,
                    revents: 0,
                }],
                timeout_ms: 0,
            }),
            Ok(sys::Response::Poll { n: 1.., .. })
        )
    }

    /// A non-blocking connect: the kernel's blocking connect on another
    /// thread, the pumps started when it succeeds; on failure the
    /// placeholder is shut both ways (the program reads end of file).
    fn connect_later(&self, kfd: i32, ino: u64, addr: sys::SockAddr) {
        // What the program writes from now on waits in the pair for the
        // pumps, so the data calls run natively.
        let Some((k, ours)) = self.holes.lock().unwrap().get_mut(&ino).map(|h| {
            h.kind = Kind::Stream;
            (h.kfd.clone(), h.ours.clone())
        }) else {
            return;
        };
        debug_assert_eq!(k.fd, kfd);
        let _ = std::thread::Builder::new()
            .name("rump-run-connect".into())
            .spawn(move || {
                match k.sys.call(sys::Request::Connect { fd: k.fd, addr }) {
                    Ok(_) => {
                        let (k2, o2) = (k.clone(), ours.clone());
                        let t = std::thread::Builder::new()
                            .name("rump-run-k2h".into())
                            .spawn(move || pump_kernel_to_host(&k2, &o2));
                        if t.is_ok() {
                            pump_host_to_kernel(&k, &ours);
                        }
                    }
                    Err(_) => {
                        // SAFETY: shutdown on our open descriptor.
                        unsafe { libc::shutdown(ours.as_raw_fd(), libc::SHUT_RDWR) };
                    }
                }
            });
    }

    /// Lets go of the kernel: every process context leaves the rump tree
    /// and every kernel descriptor is closed, so that the file systems
    /// unmount (called once the program has exited).
    pub fn release(&self) {
        let ctxs: Vec<Arc<Ctx>> = self.ctxs.lock().unwrap().drain().map(|(_, c)| c).collect();
        for c in ctxs.iter().chain(std::iter::once(&self.root)) {
            let _ = c.sys.call(sys::Request::Chdir {
                path: b"/".to_vec(),
            });
        }
        drop(ctxs);
        let holes: Vec<Hole> = self.holes.lock().unwrap().drain().map(|(_, h)| h).collect();
        for h in &holes {
            if h.kind != Kind::File {
                let _ = self.root.sys.call(sys::Request::Shutdown {
                    fd: h.kfd.fd,
                    how: libc::SHUT_RDWR,
                });
            }
        }
    }

    /// Closes kernel descriptors whose placeholders are all closed. Runs
    /// on its own thread.
    pub fn reap(&self) {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        loop {
            // SAFETY: `evs` has room for 64 events.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), evs.as_mut_ptr(), 64, -1) };
            if n < 0 {
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return;
            }
            for ev in &evs[..n as usize] {
                let ino = ev.u64;
                let hole = self.holes.lock().unwrap().remove(&ino);
                // Streams: the pumps finish moving what is buffered and
                // the last one out closes the kernel socket; everything
                // else closes now.
                drop(hole);
            }
        }
    }

    /// Starts moving bytes between a connected kernel socket and its
    /// placeholder, both ways.
    fn start_pumps(&self, ino: u64) {
        let Some((kfd, ours)) = self.holes.lock().unwrap().get_mut(&ino).map(|h| {
            h.kind = Kind::Stream;
            (h.kfd.clone(), h.ours.clone())
        }) else {
            return;
        };
        let (k2, o2) = (kfd.clone(), ours.clone());
        let _ = std::thread::Builder::new()
            .name("rump-run-k2h".into())
            .spawn(move || pump_kernel_to_host(&k2, &o2));
        let _ = std::thread::Builder::new()
            .name("rump-run-h2k".into())
            .spawn(move || pump_host_to_kernel(&kfd, &ours));
    }

    /// Turns a stream placeholder into a listener's: keeps a copy of the
    /// program's end (to take the readiness byte back) and starts the
    /// thread that mirrors the kernel listener's readiness.
    fn make_listener(&self, tid: i32, fd: i32, ino: u64) {
        let theirs = match copy_fd_of(tid, fd) {
            Some(t) => t,
            None => return,
        };
        let (kfd, ours, ready) = {
            let mut holes = self.holes.lock().unwrap();
            let Some(h) = holes.get_mut(&ino) else {
                return;
            };
            h.kind = Kind::Listener;
            h.theirs = Some(theirs);
            (h.kfd.clone(), h.ours.clone(), h.ready.clone())
        };
        let _ = std::thread::Builder::new()
            .name("rump-run-listen".into())
            .spawn(move || loop {
                {
                    let (m, cv) = &*ready;
                    let mut pending = m.lock().unwrap();
                    while *pending {
                        pending = cv.wait(pending).unwrap();
                    }
                }
                let r = kfd.sys.call(sys::Request::Poll {
                    fds: vec![sys::PollFd {
                        fd: kfd.fd,
                        events: libc::POLLIN,
                        revents: 0,
                    }],
                    timeout_ms: 500,
                });
                match r {
                    Ok(sys::Response::Poll { fds, .. }) => {
                        let rev = fds.first().map(|p| p.revents).unwrap_or(0);
                        if rev & libc::POLLNVAL != 0 {
                            return;
                        }
                        if rev & libc::POLLIN != 0 {
                            *ready.0.lock().unwrap() = true;
                            // SAFETY: a one-byte write from a static buffer.
                            unsafe { libc::write(ours.as_raw_fd(), b"a".as_ptr().cast(), 1) };
                        }
                    }
                    _ => return,
                }
            });
    }

    /// After an accept: take the readiness byte back if no connection is
    /// waiting any more.
    fn listener_taken(&self, ino: u64) {
        let holes = self.holes.lock().unwrap();
        let Some(h) = holes.get(&ino) else {
            return;
        };
        let still = matches!(
            h.kfd.sys.call(sys::Request::Poll {
                fds: vec![sys::PollFd {
                    fd: h.kfd.fd,
                    events: libc::POLLIN,
                    revents: 0,
                }],
                timeout_ms: 0,
            }),
            Ok(sys::Response::Poll { n: 1.., .. })
        );
        if still {
            return;
        }
        let (m, cv) = &*h.ready;
        let mut pending = m.lock().unwrap();
        if *pending {
            if let Some(t) = &h.theirs {
                let mut b = [0u8; 16];
                // SAFETY: a non-blocking read into a stack buffer.
                unsafe {
                    libc::recv(
                        t.as_raw_fd(),
                        b.as_mut_ptr().cast(),
                        b.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
            }
            *pending = false;
            cv.notify_all();
        }
    }

    /// The context of the process `tid` belongs to, made on first sight
    /// from its parent's (a fork: same cwd, same descriptors).
    fn ctx(&self, tid: i32) -> Arc<Ctx> {
        let tgid = {
            let cached = self.tgids.lock().unwrap().get(&tid).copied();
            match cached {
                Some(t) => t,
                None => {
                    let (tgid, _) = status_ids(tid).unwrap_or((tid, 0));
                    self.tgids.lock().unwrap().insert(tid, tgid);
                    tgid
                }
            }
        };
        if let Some(c) = self.ctxs.lock().unwrap().get(&tgid) {
            return c.clone();
        }
        let ppid = status_ids(tgid).map(|(_, pp)| pp).unwrap_or(0);
        let parent = self
            .ctxs
            .lock()
            .unwrap()
            .get(&ppid)
            .cloned()
            .unwrap_or_else(|| self.root.clone());
        let ctx = match (&self.backend, &parent.local) {
            (Backend::Local(_), Some(pl)) => match pl.rfork(rump::ForkFds::Share) {
                Ok(p) => {
                    let p = Arc::new(p);
                    Arc::new(Ctx {
                        sys: p.clone() as Arc<dyn Syscalls>,
                        local: Some(p),
                        cwd_in_rump: AtomicBool::new(parent.cwd_in_rump.load(Ordering::Relaxed)),
                    })
                }
                Err(_) => parent.clone(),
            },
            _ => parent.clone(),
        };
        let mut all = self.ctxs.lock().unwrap();
        // Forget processes that have gone (their kernel processes with them).
        if all.len() > 64 {
            all.retain(|t, _| std::path::Path::new(&format!("/proc/{t}")).exists());
            self.tgids
                .lock()
                .unwrap()
                .retain(|t, _| std::path::Path::new(&format!("/proc/{t}")).exists());
        }
        all.entry(tgid).or_insert(ctx).clone()
    }
}

/// `Tgid` and `PPid` of a task, from `/proc/TID/status`.
fn status_ids(tid: i32) -> Option<(i32, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let field = |name: &str| -> Option<i32> {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((field("Tgid:")?, field("PPid:")?))
}

/// The traced caller's names, as the personality sees them.
struct Ns<'a> {
    sup: &'a Supervisor,
    tid: i32,
    id: u64,
    /// The kind and blocking mode of a descriptor the call creates.
    kind: Kind,
    nonblock: bool,
    /// The inode of the placeholder made.
    made: std::cell::Cell<Option<u64>>,
}

impl Namespace for Ns<'_> {
    fn path(&self, path: Vec<u8>) -> Result<Vec<u8>, Errno> {
        if !path.starts_with(b"/") {
            return Ok(path);
        }
        match self.sup.routing.strip(&path) {
            Some(k) => Ok(k.to_vec()),
            None => Err(Errno::EXDEV),
        }
    }

    fn caller_path(&self, path: Vec<u8>) -> Vec<u8> {
        let mut p = self.sup.routing.prefix.clone();
        if path != b"/" {
            p.extend_from_slice(&path);
        }
        p
    }

    fn fd(&self, fd: i32) -> Result<i32, Errno> {
        if fd == at::FDCWD {
            return Ok(fd);
        }
        self.sup.kernel_fd(self.tid, fd).ok_or(Errno::EBADF)
    }

    fn install(&self, kfd: i32, cloexec: bool) -> Result<i32, Errno> {
        let (n, ino) = self
            .sup
            .make_hole(self.id, kfd, self.kind, cloexec, self.nonblock)?;
        self.made.set(Some(ino));
        Ok(n)
    }
}

/// The traced process's memory, through process_vm_readv/writev (one
/// copy, no stop).
struct ProcMem {
    pid: i32,
}

impl Memory for ProcMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if buf.is_empty() {
            return Ok(());
        }
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: `local` covers `buf`, which we own mutably; the remote
        // range is checked by the kernel against the target's mappings.
        let n = unsafe { libc::process_vm_readv(self.pid, &local, 1, &remote, 1, 0) };
        if n == buf.len() as isize {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        if data.is_empty() {
            return Ok(());
        }
        let local = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: `local` covers `data`, only read; the remote range is
        // checked by the kernel against the target's mappings.
        let n = unsafe { libc::process_vm_writev(self.pid, &local, 1, &remote, 1, 0) };
        if n == data.len() as isize {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }
}

/// Kernel socket to placeholder: until the kernel's end of stream or an
/// error; then the placeholder's write side is shut (the program reads
/// end of file).
fn pump_kernel_to_host(k: &KernelFd, ours: &OwnedFd) {
    loop {
        let data = match k.sys.call(sys::Request::Read {
            fd: k.fd,
            len: 64 * 1024,
        }) {
            Ok(sys::Response::Bytes(b)) if !b.is_empty() => b,
            _ => break,
        };
        let mut off = 0;
        while off < data.len() {
            // SAFETY: sends from `data`, which outlives the call;
            // MSG_NOSIGNAL keeps a closed placeholder from raising SIGPIPE.
            let n = unsafe {
                libc::send(
                    ours.as_raw_fd(),
                    data[off..].as_ptr().cast(),
                    data.len() - off,
                    libc::MSG_NOSIGNAL,
                )
            };
            if n <= 0 {
                if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return;
            }
            off += n as usize;
        }
    }
    // SAFETY: shutdown on our open descriptor.
    unsafe { libc::shutdown(ours.as_raw_fd(), libc::SHUT_WR) };
}

/// Placeholder to kernel socket: until the program shuts its write side
/// (or closes); then the kernel socket's write side is shut.
fn pump_host_to_kernel(k: &KernelFd, ours: &OwnedFd) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: reads into `buf`, which we own.
        let n = unsafe { libc::read(ours.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n <= 0 {
            break;
        }
        let mut data = &buf[..n as usize];
        while !data.is_empty() {
            match k.sys.call(sys::Request::Write {
                fd: k.fd,
                data: data.to_vec(),
            }) {
                Ok(sys::Response::Size(w)) if w > 0 => data = &data[w as usize..],
                _ => return,
            }
        }
    }
    let _ = k.sys.call(sys::Request::Shutdown {
        fd: k.fd,
        how: libc::SHUT_WR,
    });
    // Closed rather than half-closed: nobody will read what the kernel
    // receives, so stop the other pump too.
    let mut p = libc::pollfd {
        fd: ours.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    // SAFETY: one pollfd on our stack.
    unsafe { libc::poll(&mut p, 1, 0) };
    if p.revents & libc::POLLHUP != 0 {
        let _ = k.sys.call(sys::Request::Shutdown {
            fd: k.fd,
            how: libc::SHUT_RD,
        });
    }
}

/// A copy of descriptor `fd` of task `tid` (pidfd_getfd(2)).
fn copy_fd_of(tid: i32, fd: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; the result is checked.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, 0) };
    if pidfd < 0 {
        return None;
    }
    // SAFETY: `pidfd` was just opened and is ours alone.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    // SAFETY: pidfd_getfd takes descriptors and flags; the result is checked.
    let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if got < 0 {
        return None;
    }
    // SAFETY: the new descriptor is ours alone.
    Some(unsafe { OwnedFd::from_raw_fd(got as RawFd) })
}

/// Whether the open file behind `fd` of task `tid` is non-blocking
/// (`/proc/TID/fdinfo/N`, `flags:` in octal).
fn is_nonblocking(tid: i32, fd: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|v| i64::from_str_radix(v.trim(), 8).ok())
        })
        .is_some_and(|f| f & libc::O_NONBLOCK as i64 != 0)
}
